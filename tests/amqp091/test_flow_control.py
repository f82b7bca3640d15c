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


def test_heartbeats_go_on_while_a_publish_waits(make_gateway):
    import struct

    from gwtest.amqp import (FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, RawAmqp, frame,
                             method_frame, shortstr, table)

    gw = make_gateway({"broker": {"memory_limit_bytes": 1000, "flow_control": "block"}})
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake(heartbeat=1)
        peer.expect_open_ok()
        peer.open_channel(1)
        peer.send(method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("hbq") + b"\x00" + table({})))
        assert peer.read_method()[1:3] == (50, 11)
        for size in (800, 800):  # the second waits for memory
            peer.send(method_frame(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("hbq") + b"\x00"))
            peer.send(frame(FRAME_HEADER, 1, struct.pack(">HHQH", 60, 0, size, 0)))
            peer.send(frame(FRAME_BODY, 1, b"x" * size))
        beats = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            ftype, _, _ = peer.read_frame(timeout=3)
            if ftype == FRAME_HEARTBEAT:
                beats += 1
                peer.send(frame(FRAME_HEARTBEAT, 0, b""))
        assert beats >= 3
        # Draining the queue from another connection lets the waiting publish through.
        other = pika_connection(gw)
        och = other.channel()
        assert och.basic_get("hbq", auto_ack=True)[2] == b"x" * 800
        deadline = time.monotonic() + 5
        while True:
            method, _, body = och.basic_get("hbq", auto_ack=True)
            if method:
                break
            assert time.monotonic() < deadline, "the waiting publish never went through"
            time.sleep(0.05)
        assert body == b"x" * 800
        other.close()
    finally:
        peer.close()
