"""Security limits in /metrics (issue 9): each limit that refuses a client counts it in
`gateway_limit_refusals_total{protocol, limit}`, tripped here by real clients (stomp.py,
paho-mqtt) and raw sockets; the gateway keeps serving the others."""

from __future__ import annotations

import time

import pytest

from gwtest.client import Client
from gwtest.mqtt import MqttClient
from gwtest.raw import RawStomp
from gwtest.security import users_toml

REFUSALS = "gateway_limit_refusals_total"


def refusals(a, protocol: str, limit: str) -> float:
    return a.value(REFUSALS, protocol=protocol, limit=limit) or 0


def admitted(gw) -> RawStomp:
    """A connected raw STOMP peer, retrying while places are still held by closing probes."""
    deadline = time.monotonic() + 5
    while True:
        peer = RawStomp(gw.host, gw.stomp_port)
        try:
            peer.connect()
            return peer
        except AssertionError:
            peer.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_per_address_connection_limit_is_counted(make_gateway, admin):
    gw = make_gateway(extra_toml="[security]\nmax_connections_per_address = 2\n")
    a = admin(gw)
    first, second = admitted(gw), admitted(gw)
    before = refusals(a, "stomp", "max_connections_per_address")
    third = RawStomp(gw.host, gw.stomp_port)
    try:
        third.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost"})
        assert [f.command for f in third.expect_closed(5.0)] == ["ERROR"]
        a.wait_value(REFUSALS, before + 1, protocol="stomp", limit="max_connections_per_address")
        first.send_frame("SEND", {"destination": "/queue/limits", "receipt": "r1"}, "x")
        first.wait_receipt("r1")
    finally:
        for p in (first, second, third):
            p.close()


def test_subscription_auth_frame_and_handshake_limits_are_counted(make_gateway, admin):
    users = {"alice": ("alice-Pa55", ["apps"])}
    gw = make_gateway(
        {"listeners": {"stomp": {"max_frame_bytes": 1024, "connect_timeout_ms": 300}}},
        extra_toml="[security]\nauth_failure_delay_ms = 0\nmax_subscriptions_per_connection = 1\n\n"
        + users_toml(users),
    )
    a = admin(gw)

    # STOMP: a second subscription is refused with an ERROR frame.
    c = Client(gw, login="alice", passcode="alice-Pa55")
    c.subscribe("/queue/lim.a")
    c.subscribe("/queue/lim.b", receipt=False)
    c.expect_error()
    assert refusals(a, "stomp", "max_subscriptions") == 1

    # MQTT: the second topic filter gets a SUBACK failure.
    m = MqttClient(gw, client_id="lim-mqtt", version=4, username="alice", password="alice-Pa55")
    try:
        assert not m.subscribe("lim/a", qos=1)[0].is_failure
        assert m.subscribe("lim/b", qos=1)[0].is_failure
        assert refusals(a, "mqtt", "max_subscriptions") == 1
    finally:
        m.disconnect()

    # Wrong passwords, one per protocol.
    with pytest.raises(AssertionError, match="CONNECT refused"):
        Client(gw, login="alice", passcode="wrong")
    a.wait_value(REFUSALS, 1, protocol="stomp", limit="auth_failure")
    bad = MqttClient(gw, client_id="lim-bad", version=4, username="alice", password="wrong",
                     expect_ok=False)
    bad.close_abruptly()
    a.wait_value(REFUSALS, 1, protocol="mqtt", limit="auth_failure")

    # A STOMP frame over max_frame_bytes.
    peer = RawStomp(gw.host, gw.stomp_port)
    try:
        peer.connect(headers={"login": "alice", "passcode": "alice-Pa55"})
        peer.send_frame("SEND", {"destination": "/queue/lim.big"}, "x" * 4096)
        frames = peer.expect_closed(5.0)
        assert [f.command for f in frames] == ["ERROR"], frames
    finally:
        peer.close()
    assert refusals(a, "stomp", "frame_too_large") == 1

    # A connection that never sends CONNECT (slow loris) is closed after connect_timeout_ms.
    idle = RawStomp(gw.host, gw.stomp_port)
    try:
        idle.expect_closed(5.0)
    finally:
        idle.close()
    a.wait_value(REFUSALS, 1, protocol="stomp", limit="handshake_timeout")

    # The gateway keeps serving well-behaved clients.
    ok = Client(gw, login="alice", passcode="alice-Pa55")
    ok.send("/queue/lim.ok", "still here")
    ok.disconnect()


def test_oversized_kafka_frame_is_counted(make_gateway, admin):
    import struct

    from gwtest.kafka import RawKafka, wait_for_port

    gw = make_gateway()
    wait_for_port(gw.host, gw.kafka_port)
    a = admin(gw)
    assert refusals(a, "kafka", "frame_too_large") == 0
    peer = RawKafka(gw.host, gw.kafka_port)
    try:
        # A size prefix of 2 GiB - 1: refused before anything is buffered.
        peer.sock.sendall(struct.pack(">i", 0x7FFFFFFF))
        assert peer.closed_by_peer()
    finally:
        peer.close()
    a.wait_value(REFUSALS, 1, protocol="kafka", limit="frame_too_large")
    assert a.value("gateway_decode_errors_total", protocol="kafka") == 1


def test_tls_handshake_timeout_is_counted(make_gateway, admin, tmp_path):
    import socket

    from gwtest.gateway import free_port
    from gwtest.kafka import wait_for_port
    from gwtest.security import TlsFiles

    tls = TlsFiles(tmp_path / "tls")
    stomp_tls = free_port()
    gw = make_gateway({
        "tls": tls.config(),
        "listeners": {"stomp": {"tls_bind": f"127.0.0.1:{stomp_tls}", "connect_timeout_ms": 300},
                      "mqtt": {"tls_bind": f"127.0.0.1:{free_port()}"}},
    })
    wait_for_port(gw.host, stomp_tls)
    a = admin(gw)
    before = refusals(a, "stomp", "handshake_timeout")
    # A TCP connection that never sends a ClientHello is closed after the handshake timeout.
    with socket.create_connection((gw.host, stomp_tls), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(1) == b""
    a.wait_value(REFUSALS, before + 1, protocol="stomp", limit="handshake_timeout")


def test_amqp_frame_over_frame_max_and_channel_over_channel_max_are_counted(make_gateway, admin):
    from gwtest.amqp import RawAmqp, frame, method_frame, shortstr

    gw = make_gateway({"listeners": {"amqp": {"frame_max": 8192, "channel_max": 2}}})
    a = admin(gw)
    # A channel above the negotiated channel_max: connection.close 530 NOT_ALLOWED.
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake(frame_max=8192, channel_max=2)
        peer.expect_open_ok()
        peer.send(method_frame(3, 20, 10, shortstr("")))
        assert peer.expect_connection_close()[0] == 530
    finally:
        peer.close()
    assert refusals(a, "amqp", "max_sessions") == 1
    # A frame larger than frame_max: connection.close 501 FRAME_ERROR.
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake(frame_max=8192)
        peer.expect_open_ok()
        peer.open_channel(1)
        peer.send(frame(3, 1, b"x" * 10_000))
        assert peer.expect_connection_close()[0] == 501
    finally:
        peer.close()
    a.wait_value(REFUSALS, 1, protocol="amqp", limit="frame_too_large")
