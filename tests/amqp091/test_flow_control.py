"""connection.blocked / connection.unblocked when the gateway applies flow control (memory)."""

from __future__ import annotations

import time

from gwtest.amqp import pika_connection


def test_publisher_is_told_blocked_then_unblocked(make_gateway):
    gw = make_gateway({"broker": {"memory_limit_bytes": 3000, "flow_control": "block"}})
    publisher = pika_connection(gw)
    events = []
    publisher.add_on_connection_blocked_callback(lambda conn, frame: events.append("blocked"))
    publisher.add_on_connection_unblocked_callback(lambda conn, frame: events.append("unblocked"))
    ch = publisher.channel()
    ch.queue_declare("mem")
    ch.basic_publish("", "mem", b"a" * 1000)
    ch.basic_publish("", "mem", b"b" * 1000)
    ch.basic_publish("", "mem", b"c" * 1500)  # over the limit: waits
    deadline = time.monotonic() + 5
    while "blocked" not in events and time.monotonic() < deadline:
        publisher.process_data_events(time_limit=0.1)
    assert events == ["blocked"]
    # A consumer on another connection frees memory: the waiting publish goes through.
    consumer = pika_connection(gw)
    cch = consumer.channel()
    got = [cch.basic_get("mem", auto_ack=True)[2] for _ in range(2)]
    assert got == [b"a" * 1000, b"b" * 1000]
    deadline = time.monotonic() + 5
    while "unblocked" not in events and time.monotonic() < deadline:
        publisher.process_data_events(time_limit=0.1)
    assert events == ["blocked", "unblocked"]
    deadline = time.monotonic() + 5
    while True:
        method, _, body = cch.basic_get("mem", auto_ack=True)
        if method:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert body == b"c" * 1500
    publisher.close()
    consumer.close()
