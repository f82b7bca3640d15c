"""TLS twins of the AMQP (5671), OpenWire (61617), Kafka (9093) and admin HTTPS (8162) listeners,
each driven by its real client: pika with `ssl_options` (PLAIN and EXTERNAL), the ActiveMQ 5.17 JMS
client with `ssl://` (truststore made with keytool from the PEM), kcat and confluent-kafka with
`security.protocol=SSL`, curl and urllib against the admin server; TLS 1.1 refused by each (openssl
s_client); a SIGHUP certificate reload seen by new connections on each port.

The server certificate comes from `gateway gen-cert`; client certificates from a test CA (openssl),
their common name mapped to configured users."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pika
import pytest
import stomp

from gwtest.gateway import check_binary
from gwtest.kafka import KCAT
from gwtest.security import TlsFiles, security_toml

USERS = {
    "alice": (None, ["admins"]),  # certificate login only
    "bob": ("bob-pass", ["users"]),
}
ACL = [{"queue": "secure.>", "read": ["admins", "users"], "write": ["admins", "users"],
        "admin": ["admins", "users"]},
       {"topic": "secure.>", "read": ["admins", "users"], "write": ["admins", "users"],
        "admin": ["admins", "users"]},
       # The JMS client's default advisory consumer, granted to everyone as on ActiveMQ.
       {"topic": "ActiveMQ.Advisory.>", "read": ["*"], "write": ["*"], "admin": ["*"]}]
# Kafka clients log in as bob with SASL PLAIN (users are configured, so SASL is required unless
# a verified client certificate names the user).
BOB_SASL = ["-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=bob", "-X", "sasl.password=bob-pass"]
NEW_TLS_LISTENERS = ("amqp", "openwire", "kafka", "admin")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return TlsFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_gateway(make_gateway, tls_files):
    """tls_gateway(client_certificates="none", files=tls_files) -> a started gateway with [tls],
    the users above, and every TLS twin on the free port in `gw.tls_ports[listener]`."""

    def make(client_certificates: str = "none", files: TlsFiles | None = None):
        files = files or tls_files
        return make_gateway(
            overrides={"tls": files.config(client_certificates)},
            extra_toml=security_toml(users=USERS, authorization=ACL),
        )

    return make


def client_context(tls_files, cert=None, key=None) -> ssl.SSLContext:
    """Verifies the gateway's certificate (gen-cert names localhost and 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=str(tls_files.cert))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def server_certificate(port: int) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


# --- AMQP 0-9-1 with pika ----------------------------------------------------------------------


def pika_tls(gw, tls_files, credentials, cert=None, key=None):
    ctx = client_context(tls_files, cert, key)
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=gw.tls_ports["amqp"], credentials=credentials,
        ssl_options=pika.SSLOptions(ctx, "localhost"), connection_attempts=1,
        blocked_connection_timeout=30))


def roundtrip(conn, queue: str, body: bytes):
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.basic_publish("", queue, body)
    deadline = time.monotonic() + 5
    while True:
        method, _, got = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return got
        assert time.monotonic() < deadline, f"nothing on {queue}"
        time.sleep(0.05)


def test_pika_over_tls_with_password_and_a_wrong_one_refused(tls_gateway, tls_files):
    gw = tls_gateway()
    conn = pika_tls(gw, tls_files, pika.PlainCredentials("bob", "bob-pass"))
    assert roundtrip(conn, "secure.amqps", b"over amqps") == b"over amqps"
    conn.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
        pika_tls(gw, tls_files, pika.PlainCredentials("bob", "wrong"))
    # The plain port still serves beside its TLS twin.
    plain = pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=gw.amqp_port, credentials=pika.PlainCredentials("bob", "bob-pass"),
        connection_attempts=1))
    assert roundtrip(plain, "secure.amqp", b"plain") == b"plain"
    plain.close()
    assert "bob-pass" not in gw.log_text()


def test_pika_external_login_with_a_client_certificate(tls_gateway, tls_files):
    """EXTERNAL is offered when the client presented a verified certificate; its CN is the user
    (alice has no password at all). An unknown CN, or EXTERNAL without a certificate, is refused."""
    gw = tls_gateway(client_certificates="optional")
    cert, key = tls_files.client("alice")
    conn = pika_tls(gw, tls_files, pika.credentials.ExternalCredentials(), cert, key)
    assert roundtrip(conn, "secure.external", b"by certificate") == b"by certificate"
    conn.close()
    carol_cert, carol_key = tls_files.client("carol")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
        pika_tls(gw, tls_files, pika.credentials.ExternalCredentials(), carol_cert, carol_key)
    # No certificate: EXTERNAL is not offered, pika cannot pick a mechanism.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_tls(gw, tls_files, pika.credentials.ExternalCredentials())
    # A password login beside it still works on the same port.
    conn = pika_tls(gw, tls_files, pika.PlainCredentials("bob", "bob-pass"), cert, key)
    assert roundtrip(conn, "secure.external", b"by password") == b"by password"
    conn.close()


def test_amqp_tls_port_sniffs_the_protocol_header_inside_tls(tls_gateway, tls_files):
    """As on 5672: an AMQP 1.0 header (not served yet) is answered with the 0-9-1 header."""
    gw = tls_gateway()
    ctx = client_context(tls_files)
    with socket.create_connection(("127.0.0.1", gw.tls_ports["amqp"]), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"AMQP\x00\x01\x00\x00")
            answer = b""
            while len(answer) < 8:
                chunk = t.recv(8 - len(answer))
                if not chunk:
                    break
                answer += chunk
    assert answer == b"AMQP\x00\x00\x09\x01"


# --- OpenWire with the ActiveMQ JMS client --------------------------------------------------------


def _openwire_helpers():
    """JmsProbe compilation and its output parser, from tests/openwire/conftest.py."""
    name = "_gateway_openwire_probe"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class JavaStores:
    """A PKCS#12 truststore holding the gateway's certificate (keytool -importcert), and keystores
    holding client certificates (openssl pkcs12 -export)."""

    PASSWORD = "changeit"

    def __init__(self, tls_files: TlsFiles, directory: Path):
        self.files = tls_files
        self.dir = directory
        self.truststore = directory / "truststore.p12"
        subprocess.run(
            ["keytool", "-importcert", "-noprompt", "-alias", "gateway", "-file", str(tls_files.cert),
             "-keystore", str(self.truststore), "-storetype", "PKCS12", "-storepass", self.PASSWORD],
            check=True, capture_output=True, timeout=60,
        )

    def keystore(self, common_name: str) -> Path:
        cert, key = self.files.client(common_name)
        out = self.dir / f"{common_name}.p12"
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-name", common_name,
             "-out", str(out), "-passout", f"pass:{self.PASSWORD}"],
            check=True, capture_output=True, timeout=60,
        )
        return out

    def properties(self, keystore: Path | None = None) -> list[str]:
        props = [f"-Djavax.net.ssl.trustStore={self.truststore}",
                 f"-Djavax.net.ssl.trustStorePassword={self.PASSWORD}",
                 "-Djavax.net.ssl.trustStoreType=PKCS12"]
        if keystore:
            props += [f"-Djavax.net.ssl.keyStore={keystore}",
                      f"-Djavax.net.ssl.keyStorePassword={self.PASSWORD}",
                      "-Djavax.net.ssl.keyStoreType=PKCS12"]
        return props


def run_probe(url: str, props: list[str], *args: str, timeout: float = 50):
    helpers = _openwire_helpers()
    classes = helpers.compiled_probe()
    proc = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *props,
         "-cp", helpers.classpath() + ":" + str(classes), "JmsProbe", url, *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return helpers.ProbeResult(proc.returncode, proc.stdout, proc.stderr)


def test_activemq_jms_client_over_ssl_transport(tls_gateway, tls_files, tmp_path):
    gw = tls_gateway(client_certificates="optional")
    stores = JavaStores(tls_files, tmp_path)
    base = f"ssl://127.0.0.1:{gw.tls_ports['openwire']}"
    bob = f"{base}?jms.userName=bob&jms.password=bob-pass"
    sent = run_probe(bob, stores.properties(), "send", "queue:secure.jms", "over ssl")
    assert sent.returncode == 0 and sent.ok("send"), sent
    got = run_probe(bob, stores.properties(), "receive", "queue:secure.jms", "10000")
    assert got.returncode == 0, got
    assert [m.text for m in got.received] == ["over ssl"]
    # A certificate and no user name: the certificate's user (alice) is the connection's user,
    # and so the JMSXUserID of what it sends.
    alice = stores.keystore("alice")
    sent = run_probe(base, stores.properties(alice), "send", "queue:secure.jms-cert", "by certificate")
    assert sent.returncode == 0 and sent.ok("send"), sent
    got = run_probe(bob, stores.properties(), "receive", "queue:secure.jms-cert", "10000")
    assert [m.text for m in got.received] == ["by certificate"], got
    assert got.received[0].props.get("JMSXUserID", "").endswith("alice"), got
    # The client refuses a gateway its truststore does not trust.
    other = tmp_path / "other"
    other.mkdir()
    untrusted = JavaStores(TlsFiles(other), other)
    refused = run_probe(bob, untrusted.properties(), "send", "queue:secure.jms", "x", timeout=50)
    assert refused.returncode != 0, refused
    # The JDK reports its certificate refusal either as an SSLHandshakeException (PKIX) or, when
    # ActiveMQ's reader thread hit it first, as the TLS socket being closed under the writer.
    assert ("javax.net.ssl." in refused.stderr
            or "Connection or outbound has closed" in refused.stderr), refused
    assert "OK send" not in refused.stdout


# --- Kafka with kcat and confluent-kafka ----------------------------------------------------------


def kcat_ssl(gw, tls_files, *args, input: bytes | None = None, timeout: float = 30.0,
             sasl: bool = True):
    if KCAT is None:
        pytest.fail("kcat not installed: run scripts/install-test-deps (apt-get install kcat)")
    protocol = ["-X", "security.protocol=SASL_SSL", *BOB_SASL] if sasl else ["-X", "security.protocol=SSL"]
    cmd = [KCAT, "-b", f"127.0.0.1:{gw.tls_ports['kafka']}", *protocol,
           "-X", f"ssl.ca.location={tls_files.cert}", *args]
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode()


def test_kcat_over_ssl_produces_and_consumes_and_is_sent_back_to_the_tls_port(tls_gateway, tls_files):
    gw = tls_gateway()
    kcat_ssl(gw, tls_files, "-P", "-t", "secure.kcat", "-K", ":", input=b"k1:one\nk2:two\n")
    out = kcat_ssl(gw, tls_files, "-C", "-t", "secure.kcat", "-o", "beginning", "-e", "-f", "%k=%s\n")
    assert out.splitlines() == ["k1=one", "k2=two"]
    # Metadata on the TLS listener names the TLS port (kcat reconnects there for data).
    meta = json.loads(kcat_ssl(gw, tls_files, "-L", "-J"))
    assert [b["name"] for b in meta["brokers"]] == [f"127.0.0.1:{gw.tls_ports['kafka']}"]
    # ... and the plain listener still names the plain port, and serves the same stream.
    plain = subprocess.run([KCAT, "-b", f"127.0.0.1:{gw.kafka_port}", "-X", "security.protocol=SASL_PLAINTEXT",
                            *BOB_SASL, "-L", "-J"],
                           capture_output=True, timeout=30, check=True)
    assert [b["name"] for b in json.loads(plain.stdout)["brokers"]] == [f"127.0.0.1:{gw.kafka_port}"]


def test_kafka_tls_advertised_port_and_host(make_gateway, tls_files):
    gw = make_gateway(overrides={"tls": tls_files.config(),
                                 "listeners": {"kafka": {"tls_advertised_port": 29093,
                                                         "advertised_host": "localhost"}}})
    meta = json.loads(kcat_ssl(gw, tls_files, "-L", "-J"))
    assert [b["name"] for b in meta["brokers"]] == ["localhost:29093"]


def test_confluent_kafka_with_security_protocol_sasl_ssl(tls_gateway, tls_files):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    gw = tls_gateway()
    common = {"bootstrap.servers": f"127.0.0.1:{gw.tls_ports['kafka']}", "security.protocol": "SASL_SSL",
              "ssl.ca.location": str(tls_files.cert), "sasl.mechanisms": "PLAIN",
              "sasl.username": "bob", "sasl.password": "bob-pass"}
    producer = confluent_kafka.Producer(common)
    delivered = []
    for i in range(5):
        producer.produce("secure.confluent", f"m{i}".encode(), callback=lambda e, m: delivered.append(e))
    assert producer.flush(20) == 0
    assert delivered == [None] * 5
    consumer = confluent_kafka.Consumer(dict(common, **{"group.id": "secure-group",
                                                        "auto.offset.reset": "earliest"}))
    consumer.subscribe(["secure.confluent"])
    got = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < 5:
            assert time.monotonic() < deadline, f"only {got}"
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert got == [f"m{i}".encode() for i in range(5)]


# --- the admin server over HTTPS -----------------------------------------------------------------


def test_admin_api_over_https_with_curl_and_urllib(tls_gateway, tls_files):
    gw = tls_gateway()
    base = f"https://127.0.0.1:{gw.tls_ports['admin']}"
    assert shutil.which("curl"), "curl not installed: run scripts/install-test-deps"
    out = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(tls_files.cert),
                          f"{base}/api/overview"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), dict)
    ctx = client_context(tls_files)
    with urllib.request.urlopen(f"{base}/readyz", context=ctx, timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{base}/api/overview", context=ctx, timeout=10) as r:
        overview = json.loads(r.read())
    assert isinstance(overview, dict) and overview
    with urllib.request.urlopen(f"{base}/metrics", context=ctx, timeout=10) as r:
        metrics = r.read().decode()
    # Each TLS twin has its own `listener` label (ActiveMQ's `+ssl` schemes); the HTTPS requests
    # above went through the admin server, which is no broker listener.
    for protocol in ("stomp", "mqtt", "amqp", "openwire", "kafka"):
        assert (f'gateway_connections_accepted_total{{listener="{protocol}+ssl",protocol="{protocol}"}} 0'
                in metrics or
                f'gateway_connections_accepted_total{{protocol="{protocol}",listener="{protocol}+ssl"}} 0'
                in metrics), protocol
    # Plain HTTP on the HTTPS port gets no HTTP answer.
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{gw.tls_ports['admin']}/healthz", timeout=5).read()
    # The HTTP admin server is still there.
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/healthz", timeout=10) as r:
        assert r.status == 200


# --- every new TLS port: versions, reload --------------------------------------------------------


def s_client(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args],
        input="", capture_output=True, text=True, errors="replace", timeout=30,
    )


@pytest.mark.parametrize("listener", NEW_TLS_LISTENERS + ("stomp", "mqtt"))
def test_tls_1_1_is_refused_and_1_2_accepted(tls_gateway, listener):
    gw = tls_gateway()
    port = gw.tls_ports[listener]
    ok = s_client(port, "-tls1_2")
    assert "Protocol  : TLSv1.2" in ok.stdout or "TLSv1.2" in ok.stdout, ok.stdout + ok.stderr
    # SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.1 otherwise; the refusal must be the server's.
    old = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert old.returncode != 0
    # rustls answers a ClientHello without TLS 1.2 or 1.3 with a handshake_failure alert.
    assert "alert handshake failure" in old.stderr, old.stdout + old.stderr
    assert "Cipher is (NONE)" in old.stdout
    assert gw.running


def test_sighup_reload_is_seen_by_new_connections_on_every_new_port(tls_gateway, tmp_path):
    files = TlsFiles(tmp_path / "own-tls")  # this test rewrites its files
    gw = tls_gateway(files=files)
    ports = [gw.tls_ports[name] for name in NEW_TLS_LISTENERS]
    first = ssl.PEM_cert_to_DER_cert(files.cert.read_text())
    assert [server_certificate(p) for p in ports] == [first] * len(ports)
    subprocess.run([str(check_binary()), "gen-cert", "--cert", str(files.cert), "--key", str(files.key),
                    "--name", "reloaded.test", "--force"], check=True, capture_output=True, timeout=60)
    second = ssl.PEM_cert_to_DER_cert(files.cert.read_text())
    assert second != first
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while server_certificate(ports[0]) != second:
        assert time.monotonic() < deadline, "certificate not reloaded after SIGHUP"
        time.sleep(0.05)
    assert [server_certificate(p) for p in ports] == [second] * len(ports)


def closed_by_server(sock: socket.socket, timeout: float) -> bytes:
    """Reads until the server closes the connection (failing after `timeout`); returns what it
    sent before closing (a TLS alert record at most)."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got
    except socket.timeout:
        pytest.fail(f"port {sock.getpeername()[1]} still open after {timeout}s (got {got!r})")


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.0\r\n\r\n", b"AMQP\x00\x00\x09\x01",
                                     b"\x16\x03\x01\xff\xff" + b"\x00" * 64])
def test_garbage_before_client_hello_closes_only_that_connection(tls_gateway, tls_files, garbage):
    """Plain protocol bytes or a bogus TLS record on each new TLS port: the server answers at
    most with a TLS alert (content type 21) and closes; the port keeps serving TLS."""
    gw = tls_gateway()
    for name in NEW_TLS_LISTENERS:
        port = gw.tls_ports[name]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(garbage)
            answer = closed_by_server(s, 5)
        assert answer == b"" or answer[0] == 21, (name, answer)
        assert server_certificate(port) == ssl.PEM_cert_to_DER_cert(tls_files.cert.read_text())
    assert gw.running


def test_silent_clients_are_closed_after_the_handshake_timeout_on_every_new_port(make_gateway, tls_files):
    """A client that connects and never sends its ClientHello is closed: after the listener's
    `connect_timeout_ms` on AMQP and OpenWire, after 10 s on Kafka and the admin server."""
    gw = make_gateway(overrides={"tls": tls_files.config(),
                                 "listeners": {"amqp": {"connect_timeout_ms": 500},
                                               "openwire": {"connect_timeout_ms": 500}}})
    idle = {name: socket.create_connection(("127.0.0.1", gw.tls_ports[name]), timeout=5)
            for name in NEW_TLS_LISTENERS}
    try:
        for name in ("amqp", "openwire"):
            assert closed_by_server(idle[name], 5) == b"", name
        for name in ("kafka", "admin"):
            assert closed_by_server(idle[name], 15) == b"", name
    finally:
        for s in idle.values():
            s.close()
    assert gw.running
    for name in NEW_TLS_LISTENERS:
        assert server_certificate(gw.tls_ports[name])


def test_required_client_certificates_on_kafka_openwire_and_admin(tls_gateway, tls_files, tmp_path):
    """Mutual TLS (`client_certificates = "required"`): kcat, the JMS client and curl get through
    with a certificate from the client CA, and not without one."""
    gw = tls_gateway(client_certificates="required")
    cert, key = tls_files.client("alice")
    with_cert = ["-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
    # No SASL: the verified certificate makes the connection alice's (certificate login only).
    kcat_ssl(gw, tls_files, *with_cert, "-P", "-t", "secure.mtls", input=b"by alice\n", sasl=False)
    out = kcat_ssl(gw, tls_files, *with_cert, "-C", "-t", "secure.mtls", "-o", "beginning", "-e",
                   sasl=False)
    assert out.splitlines() == ["by alice"]
    no_cert = subprocess.run([KCAT, "-b", f"127.0.0.1:{gw.tls_ports['kafka']}", "-X", "security.protocol=SSL",
                              "-X", f"ssl.ca.location={tls_files.cert}", "-m", "5", "-L"],
                             capture_output=True, timeout=30)
    assert no_cert.returncode != 0
    stores = JavaStores(tls_files, tmp_path)
    url = f"ssl://127.0.0.1:{gw.tls_ports['openwire']}"
    sent = run_probe(url, stores.properties(stores.keystore("alice")), "send", "queue:secure.mtls", "x")
    assert sent.returncode == 0 and sent.ok("send"), sent
    refused = run_probe(url, stores.properties(), "send", "queue:secure.mtls", "x")
    assert refused.returncode != 0, refused
    base = f"https://127.0.0.1:{gw.tls_ports['admin']}/healthz"
    ok = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(tls_files.cert), "--cert", str(cert),
                         "--key", str(key), base], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(tls_files.cert), base],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0
    assert gw.running


def test_cli_reaches_the_https_admin_twin_with_cacert(make_gateway, tls_files, tmp_path):
    """`gateway --admin https://...:8162 --cacert cert.pem`: the admin subcommands over TLS,
    with credentials (never in clear off loopback); refused without a CA file, or with one that
    did not sign the gateway's certificate."""
    gw = make_gateway(overrides={"tls": tls_files.config(), "admin": {"users": ["ops"]}},
                      extra_toml=security_toml(users={"ops": ("ops-pass", ["ops"])}))
    url = f"https://localhost:{gw.tls_ports['admin']}"

    def cli(*args, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_ADMIN_")}
        env.update(env_extra or {})
        return subprocess.run([str(check_binary()), "--admin", url, *args, "--json", "overview"],
                              capture_output=True, text=True, timeout=30, env=env)

    ok = cli("--cacert", str(tls_files.cert), "--user", "ops", "--password", "ops-pass")
    assert ok.returncode == 0, ok.stderr
    assert isinstance(json.loads(ok.stdout), dict)
    # The CA file and the password from the environment.
    ok = cli(env_extra={"GATEWAY_ADMIN_CACERT": str(tls_files.cert), "GATEWAY_ADMIN_USER": "ops",
                        "GATEWAY_ADMIN_PASSWORD": "ops-pass"})
    assert ok.returncode == 0, ok.stderr
    # Credentials are still checked over TLS.
    unauthorized = cli("--cacert", str(tls_files.cert))
    assert unauthorized.returncode != 0 and "401" in unauthorized.stderr, unauthorized.stderr
    no_ca = cli("--user", "ops", "--password", "ops-pass")
    assert no_ca.returncode == 2 and "--cacert" in no_ca.stderr, no_ca.stderr
    other = TlsFiles(tmp_path / "other")
    untrusted = cli("--cacert", str(other.cert), "--user", "ops", "--password", "ops-pass")
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower(), untrusted.stderr
    assert "ops-pass" not in gw.log_text()
