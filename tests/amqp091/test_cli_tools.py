"""Interop with Debian's amqp-tools (rabbitmq-c 0.11): amqp-declare-queue, amqp-publish,
amqp-consume, amqp-get, amqp-delete-queue against the gateway."""

from __future__ import annotations

import shutil
import subprocess

import pika
import pytest


@pytest.fixture(autouse=True)
def amqp_tools_installed():
    """scripts/install-test-deps installs amqp-tools: a missing tool fails the tests instead of
    skipping them, so that a run without them never looks green."""
    missing = [t for t in ("amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-get",
                           "amqp-delete-queue") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/install-test-deps "
                    f"(apt-get install amqp-tools)")


def run(gw, tool, *args, input=None, timeout=15):
    return subprocess.run(
        [tool, "--server", gw.host, "--port", str(gw.amqp_port), "--username", "guest",
         "--password", "guest", *args],
        input=input, capture_output=True, timeout=timeout, check=True,
    )


def test_cli_declare_publish_get_and_consume(gateway, amqp):
    out = run(gateway, "amqp-declare-queue", "--queue", "cli", "--durable")
    assert out.stdout.strip() == b"cli"
    run(gateway, "amqp-publish", "--routing-key", "cli", "--persistent", "--content-type",
        "text/plain", "--header", "source: cli", "--body", "from amqp-publish")
    ch = amqp().channel()
    method, props, body = ch.basic_get("cli", auto_ack=True)
    assert body == b"from amqp-publish"
    assert props.delivery_mode == 2 and props.content_type == "text/plain"
    assert props.headers == {"source": "cli"}
    ch.basic_publish("", "cli", b"for amqp-get")
    assert run(gateway, "amqp-get", "--queue", "cli").stdout == b"for amqp-get"
    for i in range(3):
        ch.basic_publish("", "cli", f"c{i}\n".encode())
    out = run(gateway, "amqp-consume", "--queue", "cli", "--count", "3", "cat")
    assert out.stdout == b"c0\nc1\nc2\n"
    assert ch.queue_declare("cli", passive=True).method.message_count == 0
    run(gateway, "amqp-delete-queue", "--queue", "cli")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.queue_declare("cli", passive=True)


def test_cli_consume_bound_to_amq_topic(gateway, amqp):
    consumer = subprocess.Popen(
        ["amqp-consume", "--server", gateway.host, "--port", str(gateway.amqp_port),
         "--exchange", "amq.topic", "--routing-key", "logs.#", "--count", "1", "cat"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        ch = amqp().channel()
        # Publish until the consumer's exclusive queue is bound (it starts asynchronously).
        import time

        deadline = time.monotonic() + 10
        while consumer.poll() is None and time.monotonic() < deadline:
            ch.basic_publish("amq.topic", "logs.app.error", b"disk full")
            time.sleep(0.2)
        out, err = consumer.communicate(timeout=5)
        assert consumer.returncode == 0, err
        assert out == b"disk full"
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
