"""TLS listeners (STOMP 61614 / MQTT 8883 twins) with stomp.py and paho-mqtt: server certificate
from `gateway gen-cert`, TLS 1.2 minimum, client certificates (a test CA made with openssl) mapped
to configured users by their common name."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest
import stomp

from gwtest import mqtt as m
from gwtest.gateway import free_port
from gwtest.mqtt import wait_for_port
from gwtest.security import TlsFiles, security_toml

USERS = {
    "alice": (None, ["admins"]),  # certificate login only
    "bob": ("bob-pass", ["users"]),
}
# `admin` too: a STOMP SEND or SUBSCRIBE that creates a queue needs it, as on ActiveMQ.
ACL = [{"queue": "secure.>", "read": ["admins", "users"], "write": ["admins", "users"],
        "admin": ["admins", "users"]},
       {"topic": "secure.>", "read": ["admins", "users"], "write": ["admins", "users"]}]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return TlsFiles(tmp_path_factory.mktemp("tls"))


def tls_gateway(make_mqtt_gateway, tls_files, client_certificates="none", users=USERS):
    stomp_tls, mqtt_tls = free_port(), free_port()
    gw = make_mqtt_gateway(
        overrides={
            "tls": tls_files.config(client_certificates),
            "listeners": {"stomp": {"tls_bind": f"127.0.0.1:{stomp_tls}"},
                          "mqtt": {"tls_bind": f"127.0.0.1:{mqtt_tls}"}},
        },
        extra_toml=security_toml(users=users, authorization=ACL),
    )
    wait_for_port(gw.host, stomp_tls, gw.proc, 20, "STOMP TLS listener", gw.log_tail)
    wait_for_port(gw.host, mqtt_tls, gw.proc, 20, "MQTT TLS listener", gw.log_tail)
    gw.stomp_tls_port, gw.mqtt_tls_port = stomp_tls, mqtt_tls
    return gw


class StompTls(stomp.ConnectionListener):
    """A stomp.py 1.2 connection over TLS that records what it receives."""

    def __init__(self, gw, ca, cert=None, key=None):
        self.cond = threading.Condition()
        self.connected = self.error = None
        self.messages = []
        self.receipts = set()
        self.conn = stomp.Connection12([(gw.host, gw.stomp_tls_port)], reconnect_attempts_max=1)
        self.conn.set_ssl(for_hosts=[(gw.host, gw.stomp_tls_port)], ca_certs=str(ca),
                          cert_file=cert and str(cert), key_file=key and str(key))
        self.conn.set_listener("t", self)

    def _set(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._set(lambda: setattr(self, "connected", frame))

    def on_error(self, frame):
        self._set(lambda: setattr(self, "error", frame))

    def on_message(self, frame):
        self._set(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._set(lambda: self.receipts.add(frame.headers["receipt-id"]))

    def wait(self, predicate, what, timeout=10.0):
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f"timed out waiting for {what}; error={self.error}"

    def connect(self, login=None, passcode=None):
        self.conn.connect(login, passcode, wait=False)
        self.wait(lambda: self.connected or self.error, "CONNECTED or ERROR")
        return self

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:
            pass


@pytest.fixture
def stomp_tls():
    conns = []

    def make(*args, **kwargs):
        c = StompTls(*args, **kwargs)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()


def test_stomp_py_over_tls_with_password(make_mqtt_gateway, tls_files, stomp_tls):
    gw = tls_gateway(make_mqtt_gateway, tls_files)
    c = stomp_tls(gw, tls_files.cert).connect("bob", "bob-pass")
    assert c.connected is not None and c.error is None
    c.conn.subscribe("/queue/secure.q", id="s1", receipt="r1")
    c.wait(lambda: "r1" in c.receipts, "RECEIPT r1")
    c.conn.send("/queue/secure.q", "over tls")
    c.wait(lambda: c.messages, "MESSAGE")
    assert c.messages[0].body == "over tls"


def test_stomp_tls_wrong_password_refused(make_mqtt_gateway, tls_files, stomp_tls):
    gw = tls_gateway(make_mqtt_gateway, tls_files)
    c = stomp_tls(gw, tls_files.cert).connect("bob", "wrong")
    assert c.connected is None
    assert c.error.headers["message"] == "User name [bob] or password is invalid."


def test_plain_listener_still_serves_beside_tls(make_mqtt_gateway, tls_files, client):
    gw = tls_gateway(make_mqtt_gateway, tls_files)
    client(gw, login="bob", passcode="bob-pass").send("/queue/secure.plain", "x")


def _handshake(port, ciphers=None, **ctx_settings):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    for k, v in ctx_settings.items():
        setattr(ctx, k, v)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.version()


def test_tls_1_2_minimum(make_mqtt_gateway, tls_files):
    gw = tls_gateway(make_mqtt_gateway, tls_files)
    assert _handshake(gw.stomp_tls_port) == "TLSv1.3"
    assert _handshake(gw.stomp_tls_port, maximum_version=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(gw.mqtt_tls_port, maximum_version=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    # A client that offers at most TLS 1.1 (security level 0 so that OpenSSL will offer it) is
    # refused by the server with an alert.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ssl.SSLError, match="ALERT"):
            _handshake(gw.stomp_tls_port, ciphers="DEFAULT:@SECLEVEL=0",
                       minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)


def test_paho_over_tls_v5_and_v311(make_mqtt_gateway, tls_files):
    gw = tls_gateway(make_mqtt_gateway, tls_files)
    tls_view = type("TlsBroker", (), {"host": gw.host, "mqtt_port": gw.mqtt_tls_port})()
    clients = []
    try:
        for version in (4, 5):
            c = m.MqttClient(tls_view, version=version, username="bob", password="bob-pass", connect=False)
            clients.append(c)
            c.c.tls_set(ca_certs=str(tls_files.cert))
            c.connect()
            c.subscribe(f"secure/v{version}", qos=1)
            c.publish(f"secure/v{version}", b"tls", qos=1)
            assert c.get().payload == b"tls"
        bad = m.MqttClient(tls_view, version=5, username="bob", password="nope", connect=False)
        clients.append(bad)
        bad.c.tls_set(ca_certs=str(tls_files.cert))
        bad.connect(expect_ok=False)
        assert bad.connack is not None and bad.connack[0].value == 0x86
    finally:
        for c in clients:
            c.stop()


def test_client_certificate_logs_in_as_its_user(make_mqtt_gateway, tls_files, stomp_tls):
    """mTLS required: alice has no password, her certificate (CN=alice) is her login."""
    gw = tls_gateway(make_mqtt_gateway, tls_files, client_certificates="required")
    cert, key = tls_files.client("alice")
    c = stomp_tls(gw, tls_files.cert, cert, key).connect()
    assert c.connected is not None, c.error
    c.conn.send("/queue/secure.mtls", "x", receipt="r1")
    c.wait(lambda: "r1" in c.receipts, "RECEIPT r1")
    # MQTT over the same certificate, no user name.
    tls_view = type("TlsBroker", (), {"host": gw.host, "mqtt_port": gw.mqtt_tls_port})()
    p = m.MqttClient(tls_view, version=5, connect=False)
    try:
        p.c.tls_set(ca_certs=str(tls_files.cert), certfile=str(cert), keyfile=str(key))
        p.connect()
        assert p.subscribe("secure/#", qos=1)[0].value == 1
    finally:
        p.stop()


def test_required_client_certificate_refuses_handshake_without_one(make_mqtt_gateway, tls_files):
    gw = tls_gateway(make_mqtt_gateway, tls_files, client_certificates="required")
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError)):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(tls_files.cert))
        with socket.create_connection(("127.0.0.1", gw.stomp_tls_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                # TLS 1.3: the server's verdict on the (missing) certificate arrives with the
                # first read.
                t.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
                if not t.recv(1024):
                    raise ConnectionResetError("closed")
    assert gw.running


def test_certificate_of_unknown_user_is_not_a_login(make_mqtt_gateway, tls_files, stomp_tls):
    gw = tls_gateway(make_mqtt_gateway, tls_files, client_certificates="optional")
    cert, key = tls_files.client("carol")
    c = stomp_tls(gw, tls_files.cert, cert, key).connect()
    assert c.connected is None
    assert c.error.headers["message"] == "User name [null] or password is invalid."
    # Optional: no certificate, password login works.
    ok = stomp_tls(gw, tls_files.cert).connect("bob", "bob-pass")
    assert ok.connected is not None


def _server_certificate(port) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_and_keeps_it_when_the_new_files_are_bad(make_mqtt_gateway, tmp_path):
    from gwtest.gateway import check_binary

    files = TlsFiles(tmp_path / "own-tls")  # this test rewrites its files
    gw = tls_gateway(make_mqtt_gateway, files)
    der = lambda: ssl.PEM_cert_to_DER_cert(files.cert.read_text())  # noqa: E731
    first = der()
    assert _server_certificate(gw.stomp_tls_port) == first
    # An open connection is not disturbed by a reload.
    open_conn = StompTls(gw, files.cert).connect("bob", "bob-pass")
    subprocess.run([str(check_binary()), "gen-cert", "--cert", str(files.cert), "--key", str(files.key),
                    "--name", "reloaded.test", "--force"], check=True, capture_output=True, timeout=60)
    second = der()
    assert second != first
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while _server_certificate(gw.stomp_tls_port) != second:
        assert time.monotonic() < deadline, "certificate not reloaded after SIGHUP"
        time.sleep(0.05)
    assert _server_certificate(gw.mqtt_tls_port) == second  # every TLS listener
    open_conn.conn.send("/queue/secure.reload", "x", receipt="r1")
    open_conn.wait(lambda: "r1" in open_conn.receipts, "RECEIPT r1")
    open_conn.close()
    # A broken file: the reload fails, the gateway keeps serving the certificate it has.
    files.cert.write_text("not a certificate\n")
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "TLS reload failed" not in gw.log_text():
        assert time.monotonic() < deadline, "no reload failure logged"
        time.sleep(0.05)
    assert gw.running
    assert _server_certificate(gw.stomp_tls_port) == second


@pytest.mark.skipif(not shutil.which("mosquitto_pub"), reason="mosquitto-clients not installed")
def test_mosquitto_clients_over_tls_with_password_and_certificate(make_mqtt_gateway, tls_files):
    """Debian's mosquitto_sub / mosquitto_pub (libmosquitto + OpenSSL) on the MQTT TLS port: a
    password login subscribes, a client-certificate login (CN=alice) publishes."""
    gw = tls_gateway(make_mqtt_gateway, tls_files, client_certificates="optional")
    common = ["-h", "127.0.0.1", "-p", str(gw.mqtt_tls_port), "--cafile", str(tls_files.cert)]
    sub = subprocess.Popen(
        ["mosquitto_sub", *common, "-u", "bob", "-P", "bob-pass", "-t", "secure/cli", "-C", "1",
         "-W", "20", "-q", "1", "-V", "mqttv5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        cert, key = tls_files.client("alice")
        deadline = time.monotonic() + 15
        while sub.poll() is None:
            # Publish until the subscriber (whose SUBACK we cannot see) has one message.
            subprocess.run(["mosquitto_pub", *common, "--cert", str(cert), "--key", str(key),
                            "-t", "secure/cli", "-m", "hello over tls", "-q", "1"],
                           check=True, capture_output=True, timeout=20)
            try:
                sub.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                assert time.monotonic() < deadline, "mosquitto_sub got nothing"
        out, err = sub.communicate(timeout=5)
        assert sub.returncode == 0, err
        assert out.strip() == "hello over tls"
        refused = subprocess.run(["mosquitto_pub", *common, "-u", "bob", "-P", "wrong", "-t", "secure/cli",
                                  "-m", "x"], capture_output=True, text=True, timeout=20)
        assert refused.returncode != 0
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
