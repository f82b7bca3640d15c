"""Last will: published when the connection ends without a clean DISCONNECT, not otherwise;
MQTT 5 will delay and DISCONNECT 0x04."""

from __future__ import annotations

import time

import pytest

from gwtest import mqtt as m


def _will(topic, payload=b"gone", qos=1, retain=False, properties=None):
    w = {"topic": topic, "payload": payload, "qos": qos, "retain": retain}
    if properties is not None:
        w["properties"] = properties
    return w


@pytest.mark.parametrize("version", [3, 4, 5])
def test_will_published_on_abrupt_close(mqtt, version):
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    c = mqtt(version=version, will=_will(topic, b"died", qos=1))
    c.close_abruptly()
    msg = watcher.get()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (topic, b"died", 1, False)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_no_will_on_clean_disconnect(mqtt, version):
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    c = mqtt(version=version, will=_will(topic))
    c.disconnect()
    watcher.expect_no_message(0.5)


def test_v5_disconnect_with_will_message_reason_publishes_will(mqtt):
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    c = mqtt(version=5, will=_will(topic, b"asked for it"))
    c.disconnect(reasoncode=0x04)
    assert watcher.get().payload == b"asked for it"


def test_retained_will_reaches_late_subscriber(mqtt):
    topic = m.new_topic("will")
    c = mqtt(will=_will(topic, b"last words", qos=1, retain=True))
    c.close_abruptly()
    time.sleep(0.3)
    late = mqtt()
    late.subscribe(topic, qos=1)
    msg = late.get()
    assert (msg.payload, msg.retain) == (b"last words", True)


def test_will_published_when_broker_closes_on_protocol_error(mqtt, raw):
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    r = raw()
    r.connect(will=_will(topic, b"protocol error"))
    # SUBSCRIBE with reserved flags 0000: malformed. (Not a second CONNECT: mosquitto 2.0.11
    # closes on that but discards the will.)
    r.send(m.packet(m.SUBSCRIBE, 0, b"\x00\x01" + m.enc_str("a") + b"\x01"))
    r.expect_closed()
    assert watcher.get().payload == b"protocol error"


def test_will_properties_round_trip(mqtt, raw):
    topic = m.new_topic("will")
    watcher = mqtt(version=5)
    watcher.subscribe(topic, qos=1)
    r = raw(version=5)
    r.connect(will=_will(topic, b"{}", properties={
        "content_type": "application/json", "user_property": [("k", "v")],
        "response_topic": "reply/here", "correlation_data": b"\x01\x02",
    }))
    r.close()
    msg = watcher.get()
    p = msg.properties
    assert p.ContentType == "application/json"
    assert p.UserProperty == [("k", "v")]
    assert p.ResponseTopic == "reply/here"
    assert p.CorrelationData == b"\x01\x02"


def test_v5_will_delay_interval(mqtt, raw):
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    r = raw(version=5)
    r.connect(clean=False, properties={"session_expiry": 60},
              will=_will(topic, b"late", properties={"will_delay": 2}))
    r.close()
    start = time.monotonic()
    watcher.expect_no_message(1.2)
    msg = watcher.get(timeout=5)
    elapsed = time.monotonic() - start
    assert msg.payload == b"late"
    assert 1.5 <= elapsed <= 4.5, f"will after {elapsed:.2f}s, delay was 2s"


def test_v5_will_delay_cancelled_by_reconnect(mqtt, raw):
    topic, cid = m.new_topic("will"), m.new_id()
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    r = raw(version=5)
    r.connect(client_id=cid, clean=False, properties={"session_expiry": 60},
              will=_will(topic, b"never", properties={"will_delay": 2}))
    r.close()
    time.sleep(0.3)
    r2 = raw(version=5)
    assert r2.connect(client_id=cid, clean=False, properties={"session_expiry": 60}).session_present
    watcher.expect_no_message(3.0)


def test_v5_will_sent_at_session_end_when_shorter_than_delay(mqtt, raw):
    """The will goes out at the earlier of will delay and session expiry."""
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    r = raw(version=5)
    r.connect(clean=False, properties={"session_expiry": 1},
              will=_will(topic, b"session over", properties={"will_delay": 30}))
    r.close()
    start = time.monotonic()
    msg = watcher.get(timeout=5)
    assert msg.payload == b"session over"
    assert time.monotonic() - start <= 4.5
