"""Persistent sessions: subscriptions and QoS 1/2 messages queued while offline, surviving a
broker restart; MQTT 5 session expiry."""

from __future__ import annotations

import time

import pytest

from gwtest import mqtt as m


def _session(version, expiry=300):
    if version == 5:
        return dict(version=5, clean=False, properties=m.props(m.PacketTypes.CONNECT, SessionExpiryInterval=expiry))
    return dict(version=version, clean=False)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_offline_qos1_qos2_queued_and_delivered_in_order(mqtt, version):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, **_session(version))
    c.subscribe(f"{topic}/#", qos=2)
    c.disconnect()
    pub = mqtt()
    for i in range(10):
        pub.publish(f"{topic}/{i % 2 + 1}", str(i).encode(), qos=i % 2 + 1)
    c = mqtt(client_id=cid, **_session(version))
    if version != 3:  # the 3.1 CONNACK has no session-present flag
        assert c.session_present
    got = c.get_n(10)
    # Order holds per topic (= per QoS here). Not across them: mosquitto 2.0.11 sends the queued
    # QoS 1 messages before the QoS 2 ones.
    for q in (1, 2):
        mine = [x for x in got if x.topic == f"{topic}/{q}"]
        assert [int(x.payload) for x in mine] == [i for i in range(10) if i % 2 + 1 == q]
        assert all(x.qos == q for x in mine)
    c.expect_no_message(0.3)


@pytest.mark.parametrize("stop", ["terminate", "crash"])
def test_session_and_queued_messages_survive_broker_restart(make_broker, mqtt, stop):
    """crash = SIGKILL (mosquitto after its autosave settle, see gwtest/mqtt.py)."""
    b = make_broker()
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(b, client_id=cid, clean=False)
    c.subscribe(topic, qos=2)
    c.disconnect()
    pub = mqtt(b)
    pub.publish(topic, b"before-1", qos=1)
    pub.publish(topic, b"before-2", qos=2)
    pub.disconnect()
    getattr(b, stop)()
    b.start()
    mqtt(b).publish(topic, b"after", qos=1)  # the subscription itself survived
    c = mqtt(b, client_id=cid, clean=False)
    assert c.session_present
    got = c.get_n(3)
    assert [x.payload for x in got if x.qos == 1] == [b"before-1", b"after"]
    assert [x.payload for x in got if x.qos == 2] == [b"before-2"]
    c.expect_no_message(0.3)


def test_v5_session_survives_restart(make_broker, mqtt):
    b = make_broker()
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(b, client_id=cid, **_session(5))
    c.subscribe(topic, qos=1)
    c.disconnect()
    mqtt(b).publish(topic, b"queued", qos=1)
    b.terminate()
    b.start()
    c = mqtt(b, client_id=cid, **_session(5))
    assert c.session_present
    assert c.get().payload == b"queued"


def test_clean_session_messages_not_queued(mqtt):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, clean=True)
    c.subscribe(topic, qos=1)
    c.disconnect()
    mqtt().publish(topic, b"lost", qos=1)
    c = mqtt(client_id=cid, clean=False)
    assert not c.session_present
    c.expect_no_message(0.3)


def test_clean_start_discards_queued_messages(mqtt):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, **_session(5))
    c.subscribe(topic, qos=1)
    c.disconnect()
    mqtt().publish(topic, b"dropped", qos=1)
    c = mqtt(client_id=cid, version=5, clean=True)
    assert not c.session_present
    c.expect_no_message(0.3)


def test_v5_session_expiry_interval_honoured(mqtt):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, **_session(5, expiry=1))
    c.subscribe(topic, qos=1)
    c.disconnect()
    time.sleep(2.5)
    mqtt().publish(topic, b"after expiry", qos=1)
    c = mqtt(client_id=cid, **_session(5, expiry=1))
    assert not c.session_present, "session expired after 1 s"
    c.expect_no_message(0.3)


def test_v5_session_kept_within_expiry(mqtt):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, **_session(5, expiry=5))
    c.subscribe(topic, qos=1)
    c.disconnect()
    time.sleep(1.0)
    mqtt().publish(topic, b"in time", qos=1)
    c = mqtt(client_id=cid, **_session(5, expiry=5))
    assert c.session_present
    assert c.get().payload == b"in time"


def test_v5_session_expiry_zero_ends_at_disconnect(mqtt):
    cid = m.new_id()
    c = mqtt(client_id=cid, version=5, clean=False)  # no Session Expiry Interval = 0
    c.disconnect()
    c = mqtt(client_id=cid, version=5, clean=False)
    assert not c.session_present


def test_v5_disconnect_can_shorten_session_expiry(raw):
    cid = m.new_id()
    r = raw(version=5)
    r.connect(client_id=cid, clean=False, properties={"session_expiry": 300})
    r.disconnect(reason=0, properties={"session_expiry": 0})
    r2 = raw(version=5)
    assert not r2.connect(client_id=cid, clean=False, properties={"session_expiry": 300}).session_present


def test_v5_disconnect_setting_expiry_after_zero_is_protocol_error(raw):
    r = raw(version=5)
    r.connect(clean=True)  # session expiry 0
    r.send(m.disconnect_packet(5, 0, {"session_expiry": 60}))
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] in ([], [(m.DISCONNECT, 0x82)])


def test_message_expiry_while_queued(mqtt):
    cid, topic = m.new_id(), m.new_topic("sess")
    c = mqtt(client_id=cid, **_session(5))
    c.subscribe(topic, qos=1)
    c.disconnect()
    pub = mqtt(version=5)
    pub.publish(topic, b"short", qos=1, properties=m.props(MessageExpiryInterval=1))
    pub.publish(topic, b"long", qos=1, properties=m.props(MessageExpiryInterval=60))
    time.sleep(2.2)
    c = mqtt(client_id=cid, **_session(5))
    msg = c.get()
    assert msg.payload == b"long"
    assert 55 <= msg.properties.MessageExpiryInterval <= 59, "remaining lifetime, not the original"
    c.expect_no_message(0.3)
