"""AMQP 0-9-1, OpenWire and Kafka connections in the connection registry and its metrics: real
clients (pika, the ActiveMQ JMS client, kcat) show up in `/api/connections` with their user and
client id, their consumers point at their connection, refused logins move
`gateway_connections_rejected_total` by exactly one, and raw garbage moves
`gateway_decode_errors_total{protocol}` by exactly one."""

from __future__ import annotations

import importlib.util
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from gwtest.amqp import PROTOCOL_HEADER, RawAmqp, pika_connection
from gwtest.kafka import RawKafka, sasl_authenticate_v1, sasl_handshake, wait_until
from gwtest.security import security_toml

USERS = {"alice": "alice-Pa55"}


def _openwire_helpers():
    """JmsProbe compilation and its runner, from tests/openwire/conftest.py."""
    name = "_gateway_openwire_probe"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def labels(protocol: str) -> dict:
    return {"protocol": protocol, "listener": protocol}


def counters(a, protocol: str) -> tuple:
    """(open, accepted, rejected, decode errors) of one protocol's listener."""
    m = a.metrics()
    lab = labels(protocol)

    def get(name, **extra):
        return m.get((name, frozenset({**extra}.items())))

    return (
        get("gateway_connections_open", **lab),
        get("gateway_connections_accepted_total", **lab),
        get("gateway_connections_rejected_total", **lab),
        get("gateway_decode_errors_total", protocol=protocol),
    )


def connections(a, protocol: str) -> list[dict]:
    status, body = a.get("/api/connections")
    assert status == 200, body
    return [c for c in body["connections"] if c["protocol"] == protocol]


def consumer_of(a, queue: str) -> dict:
    status, body = a.get("/api/consumers")
    assert status == 200, body
    [c] = [c for c in body["consumers"] if c["queues"] == [queue]]
    return c


@pytest.fixture
def secured(make_gateway):
    return make_gateway(extra_toml=security_toml(USERS))


def test_amqp_connection_is_registered_and_refused_logins_counted(secured, admin):
    gw, a = secured, admin(secured)
    assert counters(a, "amqp") == (0, 0, 0, 0)
    conn = pika_connection(
        gw,
        credentials=pika.PlainCredentials("alice", "alice-Pa55"),
        client_properties={"connection_name": "obs-pika"},
        connection_attempts=1,
    )
    try:
        ch = conn.channel()
        ch.queue_declare("obs.amqp")
        ch.basic_consume("obs.amqp", lambda *args: None)
        assert counters(a, "amqp") == (1, 1, 0, 0)
        [c] = connections(a, "amqp")
        assert (c["user"], c["client_id"], c["listener"], c["established"]) == (
            "alice", "obs-pika", "amqp", True)
        assert len(c["sessions"]) == 1
        assert c["peer"].startswith(f"{gw.host}:")
        assert consumer_of(a, "obs.amqp")["connection"] == c["id"]

        # A wrong password: ACCESS_REFUSED (pika raises), counted once as rejected.
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika_connection(gw, credentials=pika.PlainCredentials("alice", "wrong"),
                            connection_attempts=1)
        a.wait_value("gateway_connections_open", 1, **labels("amqp"))
        assert counters(a, "amqp") == (1, 2, 1, 0)
        assert a.value("gateway_limit_refusals_total", protocol="amqp", limit="auth_failure") == 1
        assert [x["id"] for x in connections(a, "amqp")] == [c["id"]]
    finally:
        conn.close()
    a.wait_value("gateway_connections_open", 0, **labels("amqp"))
    assert counters(a, "amqp") == (0, 2, 1, 0)


def test_openwire_connection_is_registered_and_refused_logins_counted(secured, admin):
    gw, a = secured, admin(secured)
    ow = _openwire_helpers()
    creds = "jms.userName=alice&jms.password=alice-Pa55"
    assert counters(a, "openwire") == (0, 0, 0, 0)
    assert a.value("gateway_limit_refusals_total", protocol="openwire", limit="auth_failure") == 0
    sent = ow.Jms(gw.host, gw.openwire_port, creds).run("send", "queue:obs.jms", "x")
    assert sent.returncode == 0, sent
    a.wait_value("gateway_connections_open", 0, **labels("openwire"))
    holder = ow.Jms(gw.host, gw.openwire_port, creds + "&jms.clientID=obs-jms")
    hold = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", holder.classpath, "JmsProbe", holder.url,
         "hold", "queue:obs.jms"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        while not any(line.startswith("OK hold") for line in lines):
            line = hold.stdout.readline()
            assert line, f"JmsProbe hold ended: {lines} {hold.stderr.read()}"
            lines.append(line)
        assert counters(a, "openwire") == (1, 2, 0, 0)
        [c] = connections(a, "openwire")
        assert (c["user"], c["client_id"], c["established"]) == ("alice", "obs-jms", True)
        assert len(c["sessions"]) == 1
        consumer = consumer_of(a, "obs.jms")
        assert (consumer["connection"], consumer["client_id"], consumer["unacked"]) == (
            c["id"], "obs-jms", 1)

        # A wrong password: JMSSecurityException at connect, counted once as rejected.
        bad = ow.Jms(gw.host, gw.openwire_port, "jms.userName=alice&jms.password=wrong")
        refused = bad.run("secure", "send:queue:obs.jms")
        assert any(line.startswith("REFUSED") for line in refused.lines), refused
        a.wait_value("gateway_connections_open", 1, **labels("openwire"))
        assert counters(a, "openwire") == (1, 3, 1, 0)
        assert a.value("gateway_limit_refusals_total", protocol="openwire", limit="auth_failure") == 1
    finally:
        try:
            hold.communicate("\n", timeout=30)
        finally:
            if hold.poll() is None:
                hold.kill()
                hold.wait()
    a.wait_value("gateway_connections_open", 0, **labels("openwire"))
    assert counters(a, "openwire") == (0, 3, 1, 0)


def test_kafka_connection_is_registered_and_refused_logins_counted(make_gateway, admin):
    gw = make_gateway(extra_toml=security_toml(USERS) + '[[streams]]\nname = "obs.k"\npartitions = 1\n')
    a = admin(gw)
    assert counters(a, "kafka") == (0, 0, 0, 0)
    assert a.value("gateway_limit_refusals_total", protocol="kafka", limit="auth_failure") == 0
    kcat = subprocess.Popen(
        ["kcat", "-C", "-b", f"{gw.host}:{gw.kafka_port}", "-t", "obs.k", "-q",
         "-X", "client.id=obs-kcat", "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-Pa55"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def registered():
            return any(c["established"] for c in connections(a, "kafka"))

        wait_until(registered, 20, "kcat's connection to be established")
        mine = [c for c in connections(a, "kafka") if c["established"]]
        # librdkafka may open a bootstrap connection beside the broker one: each is alice's.
        assert {(c["user"], c["client_id"]) for c in mine} == {("alice", "obs-kcat")}
        # Kafka clients use the log directly: no engine session.
        assert all(c["sessions"] == [] for c in mine)
        open_before, accepted_before, rejected_before, _ = counters(a, "kafka")
        assert rejected_before == 0 and open_before >= 1

        # A wrong password (raw SASL PLAIN): SASL_AUTHENTICATION_FAILED, counted once.
        raw = RawKafka(gw.host, gw.kafka_port)
        assert sasl_handshake(raw, "PLAIN")[0] == 0
        assert sasl_authenticate_v1(raw, b"\0alice\0wrong")[0] == 58
        assert raw.closed_by_peer()
        raw.close()
        a.wait_value("gateway_connections_open", open_before, **labels("kafka"))
        assert counters(a, "kafka")[1:] == (accepted_before + 1, 1, 0)
        assert a.value("gateway_limit_refusals_total", protocol="kafka", limit="auth_failure") == 1
    finally:
        kcat.kill()
        kcat.wait()
    a.wait_value("gateway_connections_open", 0, **labels("kafka"))


# --- decode errors: raw garbage, exact counter moves ------------------------------------------


def _read_openwire_frame(sock: socket.socket) -> bytes:
    def exact(n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    (size,) = struct.unpack(">i", exact(4))
    return exact(size)


def _closed(sock: socket.socket, within: float = 5.0) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def _openwire_wire_format_info() -> bytes:
    """A loose-encoding WireFormatInfo, version 12, as the ActiveMQ client sends it."""
    props = b""
    for key, value in ((b"TightEncodingEnabled", b"\x01\x00"), (b"CacheEnabled", b"\x01\x00"),
                       (b"MaxInactivityDuration", b"\x06" + struct.pack(">q", 30000))):
        props += struct.pack(">h", len(key)) + key + value
    props = struct.pack(">i", 3) + props
    body = b"\x01" + b"ActiveMQ" + struct.pack(">i", 12) + b"\x01" + struct.pack(">i", len(props)) + props
    return struct.pack(">i", len(body)) + body


def test_amqp_garbage_counts_decode_errors_and_refusals(gateway, admin):
    a = admin(gateway)
    assert counters(a, "amqp") == (0, 0, 0, 0)
    # A valid header, then a frame of unknown type 9 during the handshake: 501 frame error.
    raw = RawAmqp(gateway.amqp_port)
    raw.send(PROTOCOL_HEADER)
    _, c, m, _ = raw.read_method()
    assert (c, m) == (10, 10)
    raw.send(b"\x09\x00\x00\x00\x00\x00\x00\xce")
    code, _, _, _ = raw.expect_connection_close()
    assert code == 501
    raw.expect_closed()
    raw.close()
    a.wait_value("gateway_connections_open", 0, **labels("amqp"))
    assert counters(a, "amqp") == (0, 1, 1, 1)
    # Not AMQP at all: the port answers with its protocol header and closes.
    with socket.create_connection((gateway.host, gateway.amqp_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        answer = b""
        while chunk := s.recv(64):
            answer += chunk
    assert answer == PROTOCOL_HEADER
    a.wait_value("gateway_connections_open", 0, **labels("amqp"))
    assert counters(a, "amqp") == (0, 2, 2, 2)
    # Another AMQP version is declined (a refusal) but is no decode error.
    with socket.create_connection((gateway.host, gateway.amqp_port), timeout=5) as s:
        s.sendall(b"AMQP\x01\x01\x00\x0a")
        assert s.recv(64) == PROTOCOL_HEADER
    a.wait_value("gateway_connections_open", 0, **labels("amqp"))
    assert counters(a, "amqp") == (0, 3, 3, 2)
    # After the handshake: a bad frame end is a decode error, not a refused connection.
    raw = RawAmqp(gateway.amqp_port)
    raw.handshake()
    raw.expect_open_ok()
    raw.send(b"\x08\x00\x00\x00\x00\x00\x00\x00")
    assert raw.expect_connection_close()[0] == 501
    raw.close()
    a.wait_value("gateway_connections_open", 0, **labels("amqp"))
    assert counters(a, "amqp") == (0, 4, 3, 3)


def test_openwire_garbage_counts_decode_errors_and_refusals(gateway, admin):
    a = admin(gateway)
    assert counters(a, "openwire") == (0, 0, 0, 0)
    garbage = b"\x00\x00\x00\x05\x63\x00\x00\x00\x00"  # unknown data type 99
    # As the first command (instead of WireFormatInfo): a decode error and a refused handshake.
    with socket.create_connection((gateway.host, gateway.openwire_port), timeout=5) as s:
        _read_openwire_frame(s)
        s.sendall(garbage)
        assert _closed(s)
    a.wait_value("gateway_connections_open", 0, **labels("openwire"))
    assert counters(a, "openwire") == (0, 1, 1, 1)
    # A first command that is not WireFormatInfo: refused, but decodable.
    with socket.create_connection((gateway.host, gateway.openwire_port), timeout=5) as s:
        _read_openwire_frame(s)
        s.sendall(b"\x00\x00\x00\x06\x0a\x00\x00\x00\x00\x01")  # KeepAliveInfo
        assert _closed(s)
    a.wait_value("gateway_connections_open", 0, **labels("openwire"))
    assert counters(a, "openwire")[1:] == (2, 2, 1)
    # After the negotiation: a decode error only.
    with socket.create_connection((gateway.host, gateway.openwire_port), timeout=5) as s:
        _read_openwire_frame(s)
        s.sendall(_openwire_wire_format_info())
        assert _read_openwire_frame(s)[0] == 2  # BrokerInfo
        s.sendall(garbage)
        assert _closed(s)
    a.wait_value("gateway_connections_open", 0, **labels("openwire"))
    assert counters(a, "openwire") == (0, 3, 2, 2)


def test_kafka_garbage_counts_decode_errors(gateway, admin):
    a = admin(gateway)
    assert counters(a, "kafka") == (0, 0, 0, 0)
    # A well-framed request with an unknown API key: unreadable, the connection closes.
    raw = RawKafka(gateway.host, gateway.kafka_port)
    raw.request(0x7F00, 0, b"")
    assert raw.closed_by_peer()
    raw.close()
    a.wait_value("gateway_connections_open", 0, **labels("kafka"))
    assert counters(a, "kafka") == (0, 1, 0, 1)
    # A truncated body of a known request (Metadata v1 without its topic array).
    raw = RawKafka(gateway.host, gateway.kafka_port)
    raw.request(3, 1, b"\x00")
    assert raw.closed_by_peer()
    raw.close()
    a.wait_value("gateway_connections_open", 0, **labels("kafka"))
    assert counters(a, "kafka") == (0, 2, 0, 2)
    # A negative frame size: the codec refuses it.
    with socket.create_connection((gateway.host, gateway.kafka_port), timeout=5) as s:
        s.sendall(b"\xff\xff\xff\xff")
        assert _closed(s)
    a.wait_value("gateway_connections_open", 0, **labels("kafka"))
    assert counters(a, "kafka") == (0, 3, 0, 3)
