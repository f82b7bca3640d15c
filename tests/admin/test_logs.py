"""Structured logs: one span per connection (id, protocol, listener, peer, user), as text or JSON
(`server.log_format`, overridden by GATEWAY_LOG_FORMAT)."""

from __future__ import annotations

import json
import time

from gwtest.mqtt import MqttClient


def wait_for_log(gw, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = gw.log_text().splitlines()
        found = [line for line in lines if predicate(line)]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching log line in:\n{gw.log_tail()}")
        time.sleep(0.05)


def test_text_log_lines_carry_the_connection_span(make_gateway, client, admin):
    gw = make_gateway({"server": {"log_level": "info,gateway=debug"}})
    c = client(gw, login="dave", passcode="pw")
    local = c.conn.transport.socket.getsockname()
    conn = [x for x in admin(gw).get("/api/connections")[1]["connections"] if x["protocol"] == "stomp"][0]
    c.disconnect()
    span = (f'connection{{id={conn["id"]} protocol="stomp" listener=stomp '
            f'peer={local[0]}:{local[1]} user="dave"}}')
    lines = wait_for_log(gw, lambda line: "STOMP session closed" in line)
    assert span in lines[0], lines


def test_json_log_format_from_config_and_environment(make_gateway, admin, monkeypatch):
    gw = make_gateway({"server": {"log_level": "info,gateway=debug", "log_format": "json"}})
    m = MqttClient(gw, client_id="log-json", username="erin", password="pw")
    local = m.c.socket().getsockname()
    m.disconnect()

    def closed(line):
        return line.startswith("{") and "MQTT session closed" in line

    record = json.loads(wait_for_log(gw, closed)[0])
    assert record["level"] == "DEBUG"
    spans = [s for s in record["spans"] if s["name"] == "connection"]
    assert len(spans) == 1, record
    span = spans[0]
    assert (span["protocol"], span["listener"], span["peer"], span["user"]) == (
        "mqtt", "mqtt", f"{local[0]}:{local[1]}", "erin")
    assert isinstance(span["id"], int)

    # The environment wins over the file.
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "text")
    gw.restart()
    last_run = gw.log_text().rsplit("===== run", 1)[1]
    assert "store recovered" in last_run and '"level"' not in last_run
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "yaml")
    gw.terminate()
    gw.runs += 1
    import subprocess

    r = subprocess.run([str(gw.binary), "--config", str(gw.config_path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "GATEWAY_LOG_FORMAT" in r.stderr


def test_amqp_openwire_and_kafka_spans_carry_the_user(make_gateway):
    """The connection span of AMQP 0-9-1 (pika), OpenWire (the JMS client) and Kafka (kcat, SASL
    PLAIN) connections names the authenticated user once the handshake is done."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    import pika

    from gwtest.amqp import pika_connection
    from gwtest.security import security_toml

    gw = make_gateway({"server": {"log_level": "info,gateway=debug"}},
                      extra_toml=security_toml({"alice": "alice-Pa55"}) + '[[streams]]\nname = "logs.k"\npartitions = 1\n')
    conn = pika_connection(gw, credentials=pika.PlainCredentials("alice", "alice-Pa55"))
    conn.close()
    [line] = wait_for_log(gw, lambda l: "AMQP 0-9-1 connection closed" in l)
    assert 'protocol="amqp"' in line and 'user="alice"' in line, line

    path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
    name = "_gateway_openwire_probe"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    jms = sys.modules[name].Jms(gw.host, gw.openwire_port, "jms.userName=alice&jms.password=alice-Pa55")
    sent = jms.run("send", "queue:logs.q", "x")
    assert sent.returncode == 0, sent
    [line] = wait_for_log(gw, lambda l: "OpenWire connection closed" in l)
    assert 'protocol="openwire"' in line and 'user="alice"' in line, line

    r = subprocess.run(
        ["kcat", "-P", "-b", f"{gw.host}:{gw.kafka_port}", "-t", "logs.k",
         "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
         "-X", "sasl.username=alice", "-X", "sasl.password=alice-Pa55"],
        input="k\n", capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    lines = wait_for_log(gw, lambda l: "Kafka connection closed" in l and 'user="alice"' in l)
    assert all('protocol="kafka"' in l for l in lines), lines


def test_rust_log_overrides_the_configured_level(make_gateway, monkeypatch):
    gw = make_gateway({"server": {"log_level": "info,gateway=debug"}})
    first = gw.log_text()
    assert "store recovered" in first and " INFO " in first
    monkeypatch.setenv("RUST_LOG", "warn")
    gw.restart()
    last_run = gw.log_text().rsplit("===== run", 1)[1]
    # Neither the configured debug lines nor info ones: the environment's level wins.
    assert " INFO " not in last_run and " DEBUG " not in last_run, last_run
    assert "store recovered" not in last_run
