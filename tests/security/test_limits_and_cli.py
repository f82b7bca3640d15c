"""Connection limits (`[security] max_connections`, `max_connections_per_address`) and the
`gateway hash-password` / `gen-cert` subcommands."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time

import pika
import pytest

from gwtest import mqtt as m
from gwtest.client import Client
from gwtest.gateway import check_binary
from gwtest.raw import RawStomp


def limit_refusals(gw, protocol: str, limit: str) -> int:
    """`gateway_limit_refusals_total{protocol, limit}` from /metrics (0 when absent)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if (line.startswith("gateway_limit_refusals_total{") and f'protocol="{protocol}"' in line
                and f'limit="{limit}"' in line):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def limits_toml(total: int = 0, per_address: int = 0) -> str:
    return (
        "[security]\n"
        f"max_connections = {total}\n"
        f"max_connections_per_address = {per_address}\n"
    )


def admitted_stomp(gw) -> RawStomp:
    """A connected STOMP peer, retrying while the places are still held by connections that
    just closed (the readiness probes of the fixture, a peer the test closed)."""
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


def test_per_address_limit_answers_the_extra_connection_and_serves_the_others(make_gateway):
    gw = make_gateway(extra_toml=limits_toml(per_address=2))
    first = admitted_stomp(gw)
    second = admitted_stomp(gw)
    third = RawStomp(gw.host, gw.stomp_port)
    try:
        # Past the limit the CONNECT is answered with an ERROR naming the limit, then closed.
        third.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost"})
        frames = third.expect_closed(5.0)
        assert [f.command for f in frames] == ["ERROR"], frames
        message = frames[0].headers["message"]
        assert "maximum connections reached" in message, message
        assert "max_connections_per_address = 2" in message, message
        # The admitted connections keep working.
        first.send_frame("SEND", {"destination": "/queue/limits", "receipt": "r1"}, "x")
        first.wait_receipt("r1")
        # A place given back can be taken again.
        second.close()
        admitted_stomp(gw).close()
    finally:
        for p in (first, second, third):
            p.close()


def test_a_silent_refused_connection_is_closed_within_the_refusal_deadline(make_gateway):
    """A refused client that never sends its CONNECT holds nothing for long."""
    gw = make_gateway(extra_toml=limits_toml(per_address=1))
    first = admitted_stomp(gw)
    silent = RawStomp(gw.host, gw.stomp_port)
    try:
        start = time.monotonic()
        assert silent.expect_closed(6.0) == []
        assert time.monotonic() - start < 4.5
    finally:
        first.close()
        silent.close()


def test_total_limit_counts_every_listener(make_mqtt_gateway, raw_mqtt):
    gw = make_mqtt_gateway(extra_toml=limits_toml(total=2))
    stomp_peer = admitted_stomp(gw)
    try:
        deadline = time.monotonic() + 5
        while True:  # the MQTT readiness probe may still hold the second place for a moment
            mqtt_peer = raw_mqtt(gw, version=4)
            try:
                assert mqtt_peer.connect().reason == 0
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        before = limit_refusals(gw, "mqtt", "max_connections")
        # Past the limit, the CONNECT is answered "server unavailable" (3.1.1: 3; 5.0: 0x97
        # quota exceeded), then the connection closes.
        for version, code in ((4, 3), (5, 0x97)):
            extra = raw_mqtt(gw, version=version)
            extra.send(m.connect_packet(m.new_id(), version=version))
            packets = extra.expect_closed(5.0)
            assert [p.type for p in packets] == [m.CONNACK], packets
            assert packets[0].reason == code, packets
        mqtt_peer.publish("limits/t", b"x", qos=1, pid=1)
        assert mqtt_peer.expect(m.PUBACK).pid == 1
        # Counted on the listener that refused it (the admin scrape is no broker connection).
        assert limit_refusals(gw, "mqtt", "max_connections") == before + 2
    finally:
        stomp_peer.close()


def held_place(gw) -> Client:
    """A stomp.py connection holding the only place (`max_connections = 1`), retrying while the
    fixture's readiness probe still holds it."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return Client(gw)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_connection_cap_refusals_in_each_protocol_with_real_clients(make_gateway):
    """`max_connections = 1`, held by a stomp.py connection: stomp.py, paho (3.1.1 and 5) and
    pika are told in their protocol why they are refused, Kafka is just closed, each refusal is
    counted, and the connection holding the place keeps working and gives it back."""
    gw = make_gateway(extra_toml=limits_toml(total=1))
    holder = held_place(gw)
    try:
        before = {p: limit_refusals(gw, p, "max_connections") for p in ("stomp", "mqtt", "amqp", "kafka")}
        with pytest.raises(AssertionError, match="maximum connections reached"):
            Client(gw)
        v311 = m.MqttClient(gw, version=4, connect=False)
        v311.connect(expect_ok=False)
        assert v311.connack is not None and str(v311.connack[0]) == "Server unavailable", v311.connack
        v311.stop()
        v5 = m.MqttClient(gw, version=5, connect=False)
        v5.connect(expect_ok=False)
        assert v5.connack is not None and v5.connack[0].value == 0x97, v5.connack  # Quota exceeded
        v5.stop()
        with pytest.raises(pika.exceptions.AMQPConnectionError,
                           match=r"530.*NOT_ALLOWED.*access to vhost '/' refused for user 'guest'.*"
                                 r"maximum connections reached"):
            pika.BlockingConnection(pika.ConnectionParameters(
                gw.host, gw.amqp_port, credentials=pika.PlainCredentials("guest", "guest"),
                connection_attempts=1))
        # Kafka has no error for it: the socket is closed at once, before any byte.
        with socket.create_connection((gw.host, gw.kafka_port), timeout=5) as sock:
            sock.settimeout(2)
            assert sock.recv(1) == b""
        after = {p: limit_refusals(gw, p, "max_connections") for p in before}
        assert after == {"stomp": before["stomp"] + 1, "mqtt": before["mqtt"] + 2,
                         "amqp": before["amqp"] + 1, "kafka": before["kafka"] + 1}, (before, after)
        # The connection holding the place was never disturbed.
        holder.send("/queue/caps", "still served")  # waits for its RECEIPT
    finally:
        holder.disconnect()
    # The place comes back: pika gets in now.
    deadline = time.monotonic() + 5
    while True:
        try:
            conn = pika.BlockingConnection(pika.ConnectionParameters(gw.host, gw.amqp_port, connection_attempts=1))
            break
        except pika.exceptions.AMQPConnectionError:
            assert time.monotonic() < deadline, "the place was not given back"
            time.sleep(0.1)
    conn.close()


def test_hash_password_prints_an_argon2id_phc_string():
    out = subprocess.run([str(check_binary()), "hash-password"], input="correct horse\n",
                         capture_output=True, text=True, timeout=60, check=True)
    phc = out.stdout.strip()
    assert phc.startswith("$argon2id$v=19$"), phc
    assert "correct horse" not in out.stdout + out.stderr
    # Salted: the same password hashes differently each time.
    again = subprocess.run([str(check_binary()), "hash-password"], input="correct horse\n",
                           capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.strip() != phc


def test_hash_password_refuses_an_empty_password():
    out = subprocess.run([str(check_binary()), "hash-password"], input="\n",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and out.stdout == ""


def test_gen_cert_writes_a_private_key_and_refuses_to_overwrite(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    args = [str(check_binary()), "gen-cert", "--cert", str(cert), "--key", str(key), "--name", "broker.test"]
    subprocess.run(args, capture_output=True, timeout=60, check=True)
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in key.read_text()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "subjectAltName"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "CN = broker.test" in text and "DNS:broker.test" in text
    refused = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert subprocess.run(args + ["--force"], capture_output=True, timeout=60).returncode == 0


def test_check_config_names_a_bad_password_hash_without_echoing_it(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[[users]]\nname = "alice"\npassword_hash = "plaintext-oops"\n')
    out = subprocess.run([str(check_binary()), "check-config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"{path}:3: users[0].password_hash:" in out.stderr
    assert "plaintext-oops" not in out.stderr


def test_per_user_limit_refuses_in_each_protocol(make_mqtt_gateway, raw_mqtt):
    from gwtest.security import security_toml

    extra = security_toml(users={"alice": ("pw", [])}).replace(
        "[security]\n", "[security]\nmax_connections_per_user = 1\n"
    )
    gw = make_mqtt_gateway(extra_toml=extra)
    first = RawStomp(gw.host, gw.stomp_port)
    try:
        first.connect(headers={"login": "alice", "passcode": "pw"})
        second = RawStomp(gw.host, gw.stomp_port)
        second.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost",
                                      "login": "alice", "passcode": "pw"})
        frames = second.expect_closed()
        assert [f.headers.get("message") for f in frames] == [
            "User alice already has the maximum of 1 connections."
        ]
        for version, code in ((4, 3), (5, 0x97)):
            r = raw_mqtt(gw, version=version)
            r.send(m.connect_packet(m.new_id(), version=version, username="alice", password="pw"))
            assert [(p.type, p.reason) for p in r.expect_closed()] == [(m.CONNACK, code)]
        assert limit_refusals(gw, "stomp", "max_connections_per_user") == 1
        assert limit_refusals(gw, "mqtt", "max_connections_per_user") == 2
    finally:
        first.close()
    # The place comes back when the connection ends.
    deadline = time.monotonic() + 5
    while True:
        r = raw_mqtt(gw, version=5)
        ack = r.connect(username="alice", password="pw")
        if ack.reason == 0:
            break
        assert time.monotonic() < deadline, "the user's place was never given back"
        time.sleep(0.05)


def test_subscription_limit_per_connection(make_mqtt_gateway, raw_mqtt):
    gw = make_mqtt_gateway(extra_toml="[security]\nmax_subscriptions_per_connection = 2\n")
    s = RawStomp(gw.host, gw.stomp_port)
    try:
        s.connect()
        for i in (1, 2):
            s.send_frame("SUBSCRIBE", {"destination": f"/queue/lim.{i}", "id": f"s{i}", "receipt": f"r{i}"})
            s.wait_receipt(f"r{i}")
        s.send_frame("SUBSCRIBE", {"destination": "/queue/lim.3", "id": "s3", "receipt": "r3"})
        err = s.expect("ERROR")
        assert err.headers["message"] == "Too many subscriptions: the gateway allows 2 per connection"
        # Still connected; a place freed by UNSUBSCRIBE can be used again.
        s.send_frame("UNSUBSCRIBE", {"id": "s1", "receipt": "u1"})
        s.wait_receipt("u1")
        s.send_frame("SUBSCRIBE", {"destination": "/queue/lim.3", "id": "s3", "receipt": "r4"})
        s.wait_receipt("r4")
    finally:
        s.close()
    for version, code in ((4, 0x80), (5, 0x97)):
        r = raw_mqtt(gw, version=version)
        assert r.connect().reason == 0
        assert r.subscribe([("a/1", 1), ("a/2", 1), ("a/3", 1)]).codes == [1, 1, code]
        # Re-subscribing to a held filter is not a new subscription.
        assert r.subscribe([("a/1", 0)], pid=2).codes == [0]


def test_silent_tls_client_is_closed_after_the_handshake_timeout(make_mqtt_gateway, tmp_path):
    """Slow-loris guard: a TCP connection to a TLS port that never says hello is closed after
    connect_timeout_ms, and the gateway keeps serving."""
    from gwtest.gateway import free_port
    from gwtest.security import TlsFiles

    files = TlsFiles(tmp_path / "tls")
    tls_port = free_port()
    gw = make_mqtt_gateway(overrides={
        "tls": files.config(),
        "listeners": {"stomp": {"tls_bind": f"127.0.0.1:{tls_port}", "connect_timeout_ms": 500},
                      "mqtt": {"tls_enabled": False}},
    })
    m.wait_for_port(gw.host, tls_port, gw.proc, 20, "STOMP TLS listener", gw.log_tail)
    import socket

    with socket.create_connection((gw.host, tls_port), timeout=5) as idle:
        start = time.monotonic()
        assert idle.recv(1) == b""  # closed by the gateway
        waited = time.monotonic() - start
    assert 0.3 < waited < 4.0, waited
    assert gw.running


def test_connection_cap_refusal_over_tls(make_gateway, tmp_path):
    """On a TLS listener the refused connection still completes its handshake (within the
    refusal deadline) and is told why in its protocol: a STOMP ERROR over TLS."""
    import ssl

    from gwtest.security import TlsFiles

    files = TlsFiles(tmp_path / "tls")
    gw = make_gateway(overrides={"tls": files.config()}, extra_toml=limits_toml(total=1))
    holder = held_place(gw)
    try:
        before = limit_refusals(gw, "stomp", "max_connections")
        context = ssl.create_default_context(cafile=str(files.cert))
        context.check_hostname = False
        with socket.create_connection((gw.host, gw.tls_ports["stomp"]), timeout=5) as raw_sock:
            with context.wrap_socket(raw_sock) as tls:
                tls.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
                received = b""
                while chunk := tls.recv(4096):
                    received += chunk
        assert received.startswith(b"ERROR\n"), received
        assert b"maximum connections reached (security.max_connections = 1)" in received, received
        assert limit_refusals(gw, "stomp", "max_connections") == before + 1
        holder.send("/queue/caps", "still served")  # waits for its RECEIPT
    finally:
        holder.disconnect()
