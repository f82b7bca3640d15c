"""MQTT authentication and authorization against the real gateway, with paho-mqtt and raw packets.

As mosquitto 2.0 with a password file and an ACL: a refused login is CONNACK 5 (3.x) / 0x86 or
0x87 (5.0); a PUBLISH outside the user's rights is PUBACK 0x87 in 5.0 and acknowledged but
dropped in 3.x; a SUBSCRIBE outside them is SUBACK 0x87 (5.0) / 0x80 (3.x); a will the user may
not publish refuses the CONNECT.
"""

from __future__ import annotations

import pytest

from gwtest import mqtt as m
from gwtest.security import security_toml

USERS = {
    "sensor": ("sensor-pass", ["devices"]),
    "dashboard": ("dash-pass", ["viewers"]),
    "ops": ("ops-pass", ["admins"]),
}
ACL = [
    {"topic": "sensors.>", "read": ["viewers", "admins"], "write": ["devices", "admins"]},
    {"topic": "control.>", "read": ["devices", "admins"], "write": ["admins"]},
]


@pytest.fixture
def gw(make_mqtt_gateway):
    return make_mqtt_gateway(extra_toml=security_toml(users=USERS, authorization=ACL))


@pytest.mark.parametrize("version", [4, 5])
def test_authorized_publish_reaches_authorized_subscriber(gw, paho, version):
    sub = paho(gw, version=version, username="dashboard", password="dash-pass")
    codes = sub.subscribe("sensors/+/temp", qos=1)
    assert [getattr(c, "value", c) for c in codes] == [1]
    pub = paho(gw, version=version, username="sensor", password="sensor-pass")
    info = pub.publish("sensors/room1/temp", b"21.5", qos=1)
    assert pub.puback_reason(info.mid).value == 0
    assert sub.get().payload == b"21.5"


def test_v5_publish_outside_rights_gets_puback_0x87(gw, paho):
    pub = paho(gw, version=5, username="sensor", password="sensor-pass")
    info = pub.publish("control/valve", b"open", qos=1)
    assert pub.puback_reason(info.mid).value == 0x87
    assert pub.is_connected()


def test_v5_qos2_publish_outside_rights_gets_pubrec_0x87(gw, raw_mqtt):
    r = raw_mqtt(gw, version=5)
    assert r.connect(username="sensor", password="sensor-pass").reason == 0
    r.publish("control/valve", b"open", qos=2, pid=7)
    rec = r.expect(m.PUBREC)
    assert (rec.pid, rec.reason) == (7, 0x87)


def test_v311_publish_outside_rights_is_acked_and_dropped(gw, paho, raw_mqtt):
    watcher = paho(gw, version=4, username="ops", password="ops-pass")
    watcher.subscribe("control/#", qos=1)
    r = raw_mqtt(gw, version=4)
    assert r.connect(username="sensor", password="sensor-pass").reason == 0
    r.publish("control/valve", b"forged", qos=1, pid=3)
    assert r.expect(m.PUBACK).pid == 3
    watcher.expect_no_message(0.5)
    # The connection is still usable for what the user may do.
    r.publish("sensors/room1/temp", b"20", qos=1, pid=4)
    assert r.expect(m.PUBACK).pid == 4


@pytest.mark.parametrize("version,code", [(4, 0x80), (5, 0x87)])
def test_subscribe_outside_rights_fails_per_filter(gw, raw_mqtt, version, code):
    r = raw_mqtt(gw, version=version)
    assert r.connect(username="dashboard", password="dash-pass").reason == 0
    ack = r.subscribe([("sensors/#", 1), ("control/#", 1), ("#", 0)])
    assert ack.codes == [1, code, code]


@pytest.mark.parametrize("version,code", [(4, 5), (5, 0x87)])
def test_will_outside_rights_refuses_connect(gw, raw_mqtt, version, code):
    r = raw_mqtt(gw, version=version)
    r.send(m.connect_packet(m.new_id(), version=version, username="sensor", password="sensor-pass",
                            will={"topic": "control/valve", "payload": b"x"}))
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.CONNACK, code)]


def test_v5_wrong_password_is_0x86_and_unknown_user_too(gw, raw_mqtt):
    for user in ("sensor", "nobody"):
        r = raw_mqtt(gw, version=5)
        r.send(m.connect_packet(m.new_id(), version=5, username=user, password="wrong"))
        got = r.expect_closed()
        assert [(p.type, p.reason) for p in got] == [(m.CONNACK, 0x86)]


def test_loopback_default_admits_anonymous_and_guest(make_mqtt_gateway, paho):
    gw = make_mqtt_gateway()
    assert paho(gw, version=5).connack[0].value == 0
    assert paho(gw, version=4, username="guest", password="guest").connack[0].value == 0
    refused = paho(gw, version=4, username="guest", password="nope", expect_ok=False)
    # paho reports the 3.1.1 return code 5 as its MQTT 5 equivalent, "Not authorized".
    assert str(refused.connack[0]) == "Not authorized"


def test_non_loopback_mqtt_listener_refuses_anonymous(make_mqtt_gateway, raw_mqtt):
    gw = make_mqtt_gateway(extra_toml=security_toml(), start=False)
    text = gw.config_path.read_text()
    loopback = f'bind = "127.0.0.1:{gw.mqtt_port}"'
    assert loopback in text
    gw.config_path.write_text(text.replace(loopback, f'bind = "0.0.0.0:{gw.mqtt_port}"'))
    gw.start()
    r = raw_mqtt(gw, version=4)
    r.send(m.connect_packet(m.new_id(), version=4))
    assert [(p.type, p.reason) for p in r.expect_closed()] == [(m.CONNACK, 5)]


def test_stored_session_of_another_user_resumes_only_what_the_new_user_may_read(gw, paho):
    """ops subscribes control/# in a persistent session; dashboard (no read on control.>) takes
    the same client id over: the stored subscription is dropped, not served to dashboard."""
    cid = m.new_id("shared-id")
    ops = paho(gw, version=4, client_id=cid, clean=False, username="ops", password="ops-pass")
    ops.subscribe("control/#", qos=1)
    ops.subscribe("sensors/#", qos=1)
    ops.disconnect()
    dash = paho(gw, version=4, client_id=cid, clean=False, username="dashboard", password="dash-pass")
    publisher = paho(gw, version=4, username="ops", password="ops-pass")
    publisher.publish("control/valve", b"secret", qos=1)
    publisher.publish("sensors/room1/temp", b"19", qos=1)
    got = dash.get()
    assert (got.topic, got.payload) == ("sensors/room1/temp", b"19")
    dash.expect_no_message(0.5)
