"""CONNECT / CONNACK: protocol levels, sessions, credentials, client ids, takeover, keep-alive."""

from __future__ import annotations

import time

import pytest

from gwtest import mqtt as m


@pytest.mark.parametrize("version", [3, 4, 5])
def test_connect_each_protocol_level(mqtt, version):
    c = mqtt(version=version)
    rc, flags, _ = c.connack
    assert rc.value == 0
    assert not flags.session_present
    topic = m.new_topic()
    c.subscribe(topic, qos=1)
    c.publish(topic, b"hello", qos=1)
    msg = c.get()
    assert (msg.topic, msg.payload) == (topic, b"hello")
    c.disconnect()


@pytest.mark.parametrize("version", [3, 4, 5])
def test_raw_connack_bytes_per_level(raw, version):
    r = raw(version=version)
    ack = r.connect()
    assert ack.reason == 0 and not ack.session_present
    if version != 5:
        assert ack.body == b"\x00\x00", "3.1 / 3.1.1 CONNACK is exactly 2 bytes"


def test_unsupported_protocol_level_refused(raw):
    r = raw(version=4)
    # protocol name MQTT, level 6 (does not exist)
    r.send(m.packet(m.CONNECT, 0, m.enc_str("MQTT") + bytes([6, 2]) + b"\x00\x1e" + m.enc_str("x")))
    got = r.expect_closed()
    assert [p.type for p in got] == [m.CONNACK]
    assert got[0].reason == 0x01, "3.1.1 rc 1: unacceptable protocol version"


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_present_flag(mqtt, version):
    cid = m.new_id()
    kw = dict(client_id=cid, version=version)
    if version == 5:
        kw["properties"] = m.props(m.PacketTypes.CONNECT, SessionExpiryInterval=60)
    c = mqtt(clean=False, **kw)
    assert not c.session_present
    c.disconnect()
    c = mqtt(clean=False, **kw)
    assert c.session_present
    c.disconnect()
    c = mqtt(clean=True, **kw)
    assert not c.session_present, "clean session / clean start discards the old session"
    c.disconnect()


def test_v311_clean_session_discards_subscriptions(mqtt):
    cid, topic = m.new_id(), m.new_topic()
    c = mqtt(client_id=cid, clean=False)
    c.subscribe(topic, qos=1)
    c.disconnect()
    c = mqtt(client_id=cid, clean=True)
    assert not c.session_present
    mqtt().publish(topic, b"x", qos=1)
    c.expect_no_message(0.3)


# --- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 4, 5])
def test_username_password_accepted(make_broker, mqtt, version):
    b = make_broker(users={"alice": "s3cret"})
    c = mqtt(b, version=version, username="alice", password="s3cret")
    assert c.connack[0].value == 0


@pytest.mark.parametrize("version,codes", [(3, {5}), (4, {5}), (5, {0x86, 0x87})])
def test_wrong_password_refused(make_broker, raw, version, codes):
    """3.x: rc 5 (not authorized). v5: 0x86 (bad user name or password) or 0x87 (not
    authorized); mosquitto 2.0 sends 0x87."""
    b = make_broker(users={"alice": "s3cret"})
    r = raw(b, version=version)
    r.send(m.connect_packet(m.new_id(), version=version, username="alice", password="nope"))
    got = r.expect_closed()
    assert [p.type for p in got] == [m.CONNACK]
    assert got[0].reason in codes


@pytest.mark.parametrize("version,code", [(4, 5), (5, 0x87)])
def test_anonymous_refused_when_users_configured(make_broker, raw, version, code):
    b = make_broker(users={"alice": "s3cret"})
    r = raw(b, version=version)
    r.send(m.connect_packet(m.new_id(), version=version))
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.CONNACK, code)]


# --- client identifiers ------------------------------------------------------------------------


def test_v311_empty_client_id_with_clean_session_accepted(raw):
    r = raw(version=4)
    ack = r.connect(client_id="", clean=True)
    assert ack.reason == 0
    r.send(m.packet(m.PINGREQ, 0, b""))
    r.expect(m.PINGRESP)


def test_v311_empty_client_id_without_clean_session_rejected(raw):
    r = raw(version=4)
    r.send(m.connect_packet("", version=4, clean=False))
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.CONNACK, 0x02)], "identifier rejected"


def test_v5_empty_client_id_assigned(raw):
    r = raw(version=5)
    ack = r.connect(client_id="", clean=True)
    assert ack.reason == 0
    assigned = ack.props.get("assigned_client_id")
    assert assigned, f"v5 CONNACK must carry an assigned client identifier: {ack.props}"
    r2 = raw(version=5)
    ack2 = r2.connect(client_id="", clean=True)
    assert ack2.props["assigned_client_id"] != assigned


@pytest.mark.parametrize("version", [4, 5])
def test_client_id_takeover_closes_first_connection(mqtt, version):
    cid, topic = m.new_id(), m.new_topic()
    first = mqtt(client_id=cid, version=version)
    second = mqtt(client_id=cid, version=version)
    first.wait_disconnected()
    assert second.is_connected()
    second.subscribe(topic, qos=1)
    second.publish(topic, b"still here", qos=1)
    assert second.get().payload == b"still here"


def test_takeover_v5_closes_first_raw(raw):
    """The old connection is closed; if a DISCONNECT comes first it says 0x8E (session taken
    over). mosquitto 2.0.11 just closes the socket, without a DISCONNECT."""
    cid = m.new_id()
    first = raw(version=5)
    first.connect(client_id=cid)
    second = raw(version=5)
    assert second.connect(client_id=cid).reason == 0
    got = first.expect_closed()
    assert [(p.type, p.reason) for p in got] in ([], [(m.DISCONNECT, 0x8E)])


@pytest.mark.gateway_only
def test_takeover_v5_sends_disconnect_session_taken_over(raw):
    """The issue asks for server-sent DISCONNECT reason codes: 0x8E before closing a taken-over
    connection (mosquitto 2.0.11 closes without one)."""
    cid = m.new_id()
    first = raw(version=5)
    first.connect(client_id=cid)
    second = raw(version=5)
    assert second.connect(client_id=cid).reason == 0
    got = first.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.DISCONNECT, 0x8E)]


def test_takeover_keeps_persistent_session(mqtt):
    cid, topic = m.new_id(), m.new_topic()
    first = mqtt(client_id=cid, clean=False)
    first.subscribe(topic, qos=1)
    second = mqtt(client_id=cid, clean=False)
    assert second.session_present
    first.wait_disconnected()
    mqtt().publish(topic, b"to the new connection", qos=1)
    assert second.get().payload == b"to the new connection"


# --- protocol order ----------------------------------------------------------------------------


def test_first_packet_must_be_connect(raw):
    r = raw()
    r.send(m.packet(m.PINGREQ, 0, b""))
    assert r.expect_closed() == []


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_is_protocol_error(raw, version):
    r = raw(version=version)
    r.connect()
    r.send(m.connect_packet(m.new_id(), version=version))
    got = r.expect_closed()
    if version == 5:
        assert [(p.type, p.reason) for p in got] in ([], [(m.DISCONNECT, 0x82)])
    else:
        assert got == []


# --- keep-alive --------------------------------------------------------------------------------


def test_keepalive_silent_client_dropped(raw):
    """A client silent past 1.5 x its keep-alive is dropped. mosquitto 2.0.11 checks keep-alives
    only every few seconds (keep-alive 1 s: dropped after ~5.7 s), so the bound here is loose;
    test_keepalive_dropped_at_one_and_a_half_intervals holds the gateway to 1.5x."""
    peers = []
    for version in (3, 4, 5):
        r = raw(version=version, timeout=10)
        r.connect(keepalive=1)
        peers.append(r)
    start = time.monotonic()
    for r in peers:
        r.expect_closed(timeout=9)
    elapsed = time.monotonic() - start
    assert elapsed >= 1.0, f"dropped after {elapsed:.2f}s, before 1.5 x keep-alive"


@pytest.mark.gateway_only
@pytest.mark.parametrize("version", [4, 5])
def test_keepalive_dropped_at_one_and_a_half_intervals(raw, version):
    r = raw(version=version, timeout=6)
    r.connect(keepalive=1)
    start = time.monotonic()
    got = r.expect_closed(timeout=5)
    elapsed = time.monotonic() - start
    assert 1.4 <= elapsed <= 2.5, f"dropped after {elapsed:.2f}s, expected 1.5s (+ scheduling)"
    if version == 5:
        assert [(p.type, p.reason) for p in got] in ([], [(m.DISCONNECT, 0x8D)]), "0x8D keep alive timeout"


def test_keepalive_pinging_client_survives(raw):
    r = raw(version=4)
    r.connect(keepalive=1)
    for _ in range(4):
        time.sleep(0.5)
        r.send(m.packet(m.PINGREQ, 0, b""))
        r.expect(m.PINGRESP, timeout=2)


def test_keepalive_any_packet_counts_as_activity(raw):
    r = raw(version=4)
    r.connect(keepalive=1)
    topic = m.new_topic()
    for i in range(4):
        time.sleep(0.5)
        r.publish(topic, b"x", qos=1, pid=i + 1)
        r.expect(m.PUBACK, timeout=2)


def test_keepalive_zero_never_dropped(raw):
    r = raw(version=4)
    r.connect(keepalive=0)
    r.expect_silence(1.6)
    r.send(m.packet(m.PINGREQ, 0, b""))
    r.expect(m.PINGRESP)
