"""Retained messages: last value per topic, delivered to late subscribers, cleared by an empty
retained publish, stored durably (survive a broker restart)."""

from __future__ import annotations

import pytest

from gwtest import mqtt as m


@pytest.mark.parametrize("version", [3, 4, 5])
def test_retained_delivered_to_late_subscriber_with_retain_flag(mqtt, version):
    topic = m.new_topic("ret")
    pub = mqtt(version=version)
    live = mqtt(version=version)
    live.subscribe(topic, qos=1)
    pub.publish(topic, b"v1", qos=1, retain=True)
    msg = live.get()
    assert msg.payload == b"v1" and msg.retain is False, "live delivery clears the retain flag"
    late = mqtt(version=version)
    late.subscribe(topic, qos=1)
    msg = late.get()
    assert (msg.payload, msg.retain, msg.qos) == (b"v1", True, 1)


def test_only_last_retained_value_kept(mqtt):
    topic = m.new_topic("ret")
    pub = mqtt()
    for v in (b"1", b"2", b"3"):
        pub.publish(topic, v, qos=1, retain=True)
    pub.publish(topic, b"not retained", qos=1)
    late = mqtt()
    late.subscribe(topic, qos=1)
    assert late.get().payload == b"3"
    late.expect_no_message(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_empty_retained_publish_clears(mqtt, version):
    topic = m.new_topic("ret")
    pub = mqtt(version=version)
    pub.publish(topic, b"v", qos=1, retain=True)
    live = mqtt(version=version)
    live.subscribe(topic, qos=1)
    assert live.get().retain
    pub.publish(topic, b"", qos=1, retain=True)
    cleared = live.get()
    assert cleared.payload == b"", "the clearing publish is delivered to current subscribers"
    late = mqtt(version=version)
    late.subscribe(topic, qos=1)
    late.expect_no_message(0.4)


def test_retained_matched_by_wildcards(mqtt):
    base = m.new_topic("ret")
    pub = mqtt()
    for leaf in ("a", "b/c", "d"):
        pub.publish(f"{base}/{leaf}", leaf.encode(), qos=1, retain=True)
    late = mqtt()
    late.subscribe(f"{base}/#", qos=1)
    got = sorted(x.payload for x in late.get_n(3))
    assert got == [b"a", b"b/c", b"d"]
    plus = mqtt()
    plus.subscribe(f"{base}/+", qos=1)
    assert sorted(x.payload for x in plus.get_n(2)) == [b"a", b"d"]
    plus.expect_no_message(0.3)


def test_retained_delivered_at_min_qos(mqtt):
    topic = m.new_topic("ret")
    mqtt().publish(topic, b"q2", qos=2, retain=True)
    late = mqtt()
    late.subscribe(topic, qos=1)
    msg = late.get()
    assert (msg.payload, msg.qos, msg.retain) == (b"q2", 1, True)


def test_resubscribe_redelivers_retained(mqtt):
    topic = m.new_topic("ret")
    mqtt().publish(topic, b"r", qos=1, retain=True)
    c = mqtt()
    c.subscribe(topic, qos=1)
    assert c.get().payload == b"r"
    c.subscribe(topic, qos=1)
    assert c.get().payload == b"r", "3.1.1 / v5 retain handling 0: sent on every SUBSCRIBE"


@pytest.mark.parametrize("stop", ["terminate", "crash"])
def test_retained_survives_broker_restart(make_broker, mqtt, stop):
    """terminate = SIGTERM (mosquitto saves on clean shutdown); crash = SIGKILL (for mosquitto,
    which runs with autosave_on_changes + autosave_interval 1, after a 1.5 s settle: its
    autosave lags the PUBACK; the gateway is killed at once)."""
    b = make_broker()
    topic = m.new_topic("ret")
    pub = mqtt(b)
    pub.publish(topic, b"durable", qos=1, retain=True)
    pub.disconnect()
    getattr(b, stop)()
    b.start()
    late = mqtt(b)
    late.subscribe(f"{topic}/#", qos=1)
    msg = late.get()
    assert (msg.topic, msg.payload, msg.retain) == (topic, b"durable", True)
    late.expect_no_message(0.3)


@pytest.mark.parametrize("stop", ["terminate", "crash"])
def test_retained_clear_survives_broker_restart(make_broker, mqtt, stop):
    """A cleared retained message stays cleared after a restart (also after SIGKILL; mosquitto
    needs crash()'s settle time here: killed right after the clearing PUBACK it brings the
    message back)."""
    b = make_broker()
    topic = m.new_topic("ret")
    pub = mqtt(b)
    pub.publish(f"{topic}/kept", b"k", qos=1, retain=True)
    pub.publish(f"{topic}/cleared", b"x", qos=1, retain=True)
    pub.publish(f"{topic}/cleared", b"", qos=1, retain=True)
    pub.disconnect()
    getattr(b, stop)()
    b.start()
    late = mqtt(b)
    late.subscribe(f"{topic}/#", qos=1)
    msg = late.get()
    assert (msg.topic, msg.payload) == (f"{topic}/kept", b"k")
    late.expect_no_message(0.3)


# --- MQTT 5 retain options ---------------------------------------------------------------------


def test_v5_retain_handling(raw, mqtt):
    topic = m.new_topic("ret")
    mqtt().publish(topic, b"r", qos=1, retain=True)
    r = raw(version=5)
    r.connect()
    r.subscribe([(topic, 0x01 | 0x20)], pid=1)  # retain handling 2: never
    r.expect_silence(0.3)
    r2 = raw(version=5)
    r2.connect()
    r2.subscribe([(topic, 0x01 | 0x10)], pid=1)  # 1: only if the subscription is new
    assert r2.expect(m.PUBLISH).retain
    r2.ack(m.PUBACK, r2.received[-1].pid)
    r2.subscribe([(topic, 0x01 | 0x10)], pid=2)
    r2.expect_silence(0.3)


def test_v5_retain_as_published(raw, mqtt):
    topic = m.new_topic("ret")
    keep = raw(version=5)
    keep.connect()
    keep.subscribe([(topic, 0x01 | 0x08)])  # retain as published
    plain = raw(version=5)
    plain.connect()
    plain.subscribe([(topic, 0x01)])
    mqtt().publish(topic, b"r", qos=1, retain=True)
    assert keep.expect(m.PUBLISH).retain is True
    assert plain.expect(m.PUBLISH).retain is False
