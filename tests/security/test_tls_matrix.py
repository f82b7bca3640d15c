"""Issue 9's last bullet: each real client over its TLS port (stomp.py on 61614, paho-mqtt on
8883, pika on 5671, the ActiveMQ 5.17 JMS client with `ssl://` on 61617, kcat with
`security.protocol=SASL_SSL` on 9093), four checks each:

- good credentials log in and round-trip a message inside the user's entries;
- a wrong password is refused with the protocol's own refusal;
- a send or subscribe outside the user's entries is refused with the protocol's error (STOMP
  ERROR, MQTT PUBACK / SUBACK 0x87, AMQP 403 ACCESS_REFUSED, `JMSSecurityException`, Kafka
  TOPIC_AUTHORIZATION_FAILED) and the connection stays usable where the protocol keeps it;
- `max_connections_per_user` refuses one connection too many while the user's first connection
  goes on being served, and `gateway_limit_refusals_total` counts each refusal.

One gateway serves the whole module (a JVM start and an argon2 check per login are the slow
parts); each client has its own users so that the tests do not share connection places.
"""

from __future__ import annotations

import importlib.util
import json
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pika
import pytest
import stomp

from gwtest import mqtt as m
from gwtest.gateway import Gateway
from gwtest.kafka import KCAT, sasl_users_toml
from gwtest.security import TlsFiles, authorization_toml

CLIENTS = ("stomp", "mqtt", "amqp", "jms", "kafka")
# Per client and check: its own user (`stomp-good`, `stomp-outside`, `stomp-limited`, ...), so that
# a connection a previous test closed a moment ago never holds a place another test needs.
USERS = {f"{c}-{kind}": (f"{c}-{kind}-pw", ["users"])
         for c in CLIENTS for kind in ("good", "outside", "limited")}
USERS.update({f"{c}-helper": (f"{c}-helper-pw", ["users"]) for c in ("jms", "kafka")})
ACL = [{"queue": "secure.>", "read": ["users"], "write": ["users"], "admin": ["users"]},
       {"topic": "secure.>", "read": ["users"], "write": ["users"], "admin": ["users"]},
       # The JMS client's advisory consumer, granted to everyone as a secured ActiveMQ needs.
       {"topic": "ActiveMQ.Advisory.>", "read": ["*"], "write": ["*"], "admin": ["*"]}]
# One connection per user: enough for a kcat run too (librdkafka reuses its bootstrap connection
# for the broker the metadata names, same address).
PER_USER = 1
SECURITY = "javax.jms.JMSSecurityException"


def password(user: str) -> str:
    return USERS[user][0]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return TlsFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory, tls_files):
    extra = (f"[security]\nauth_failure_delay_ms = 0\nmax_connections_per_user = {PER_USER}\n\n"
             + sasl_users_toml(USERS) + authorization_toml(ACL))
    gw = Gateway(tmp_path_factory.mktemp("matrix"), overrides={"tls": tls_files.config()},
                 extra_toml=extra)
    gw.start()
    yield gw
    problems = gw.problems()
    gw.stop_quietly()
    if problems:
        pytest.fail(f"{gw}: {problems}\n{gw.log_tail()}", pytrace=False)


@pytest.fixture
def gw(request, module_gateway):
    # The root conftest shows the log of the gateways in `_gateways` when a test fails.
    request.node._gateways = [module_gateway]
    assert module_gateway.running
    return module_gateway


def limit_refusals(gw, protocol: str, limit: str = "max_connections_per_user") -> int:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if (line.startswith("gateway_limit_refusals_total{") and f'protocol="{protocol}"' in line
                and f'limit="{limit}"' in line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def until(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


# --- STOMP: stomp.py ------------------------------------------------------------------------------


class StompTls(stomp.ConnectionListener):
    """A stomp.py 1.2 connection over TLS that records what it receives."""

    def __init__(self, gw, tls_files):
        self.cond = threading.Condition()
        self.connected = self.error = None
        self.errors = []
        self.messages = []
        self.receipts = set()
        port = gw.tls_ports["stomp"]
        self.conn = stomp.Connection12([(gw.host, port)], reconnect_attempts_max=1)
        self.conn.set_ssl(for_hosts=[(gw.host, port)], ca_certs=str(tls_files.cert))
        self.conn.set_listener("t", self)

    def _set(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._set(lambda: setattr(self, "connected", frame))

    def on_error(self, frame):
        self._set(lambda: (setattr(self, "error", frame), self.errors.append(frame)))

    def on_message(self, frame):
        self._set(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._set(lambda: self.receipts.add(frame.headers["receipt-id"]))

    def wait(self, predicate, what, timeout=10.0):
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f"timed out waiting for {what}; error={self.error}"

    def connect(self, login, passcode):
        self.conn.connect(login, passcode, wait=False)
        self.wait(lambda: self.connected or self.error, "CONNECTED or ERROR")
        return self

    def roundtrip(self, destination: str, body: str, tag: str):
        self.conn.subscribe(destination, id=tag, receipt=f"sub-{tag}")
        self.wait(lambda: f"sub-{tag}" in self.receipts, f"RECEIPT sub-{tag}")
        self.conn.send(destination, body)
        self.wait(lambda: any(f.body == body for f in self.messages), f"MESSAGE {body}")
        self.conn.unsubscribe(id=tag)

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:
            pass


@pytest.fixture
def stomp_tls(gw, tls_files):
    conns = []

    def make(user, pw=None):
        c = StompTls(gw, tls_files)
        conns.append(c)
        return c.connect(user, pw if pw is not None else password(user))

    yield make
    for c in conns:
        c.close()


def test_stomp_good_login(stomp_tls):
    c = stomp_tls("stomp-good")
    assert c.error is None
    c.roundtrip("/queue/secure.stomp", "over tls", "s1")


def test_stomp_wrong_password(stomp_tls):
    c = stomp_tls("stomp-good", "wrong")
    assert c.connected is None
    assert c.error.headers["message"] == "User name [stomp-good] or password is invalid."


def test_stomp_outside_entries(stomp_tls):
    c = stomp_tls("stomp-outside")
    c.conn.send("/queue/other.stomp", "nope", receipt="r-send")
    c.wait(lambda: c.errors, "ERROR for the send")
    assert c.errors[0].headers["message"] == "User stomp-outside is not authorized to write to: queue://other.stomp"
    c.conn.subscribe("/topic/other.stomp", id="s-out", receipt="r-sub")
    c.wait(lambda: len(c.errors) >= 2, "ERROR for the subscribe")
    assert c.errors[1].headers["message"] == "User stomp-outside is not authorized to read from: topic://other.stomp"
    # ActiveMQ keeps the connection after an authorization ERROR; so does the gateway.
    c.roundtrip("/queue/secure.stomp-after", "still here", "s2")


def test_stomp_per_user_limit(gw, stomp_tls):
    before = limit_refusals(gw, "stomp")
    held = [stomp_tls("stomp-limited") for _ in range(PER_USER)]
    assert all(h.error is None for h in held)
    extra = stomp_tls("stomp-limited")
    assert extra.connected is None
    assert extra.error.headers["message"] == (
        f"User stomp-limited already has the maximum of {PER_USER} connections.")
    held[0].roundtrip("/queue/secure.stomp-limited", "first still served", "s1")
    assert until(lambda: limit_refusals(gw, "stomp") == before + 1, "the stomp refusal counted")


# --- MQTT: paho-mqtt ------------------------------------------------------------------------------


class TlsMqttClient(m.MqttClient):
    """MqttClient on paho's own network thread (`loop_start`). Over TLS the reads of a loop
    thread and the writes of the test thread must not race on one SSL socket (a lost connection
    now and then); with paho's thread, paho does every write on it."""

    def connect(self, expect_ok: bool = True, timeout: float = m.DEFAULT_TIMEOUT):
        self.connack = self.disconnected = None
        kwargs = {"clean_start": self.clean, "properties": self.properties} if self.version == 5 else {}
        self.c._reconnect_on_failure = False  # a dropped connection stays dropped, as in MqttClient
        self.c.connect(self.broker.host, self.broker.mqtt_port, keepalive=self.keepalive, **kwargs)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None or self.disconnected is not None, timeout, "CONNACK")
        if expect_ok:
            assert self.connack is not None and not self.connack[0].is_failure, self.connack
        return self.connack

    def stop(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


@pytest.fixture
def paho_tls(gw, tls_files):
    clients = []
    view = type("TlsBroker", (), {"host": gw.host, "mqtt_port": gw.tls_ports["mqtt"]})()

    def make(user, pw=None, version=5, expect_ok=True):
        c = TlsMqttClient(view, version=version, username=user,
                         password=pw if pw is not None else password(user), connect=False)
        clients.append(c)
        c.c.tls_set(ca_certs=str(tls_files.cert))
        c.connect(expect_ok=expect_ok)
        return c

    yield make
    for c in clients:
        c.stop()


def mqtt_roundtrip(c, topic: str, payload: bytes):
    assert [rc.value for rc in c.subscribe(topic, qos=1)] == [1]
    info = c.publish(topic, payload, qos=1)
    assert c.puback_reason(info.mid).value == 0
    assert c.get().payload == payload
    result, mid = c.c.unsubscribe(topic)
    assert result == 0, (result, c.disconnected)


def test_mqtt_good_login(paho_tls):
    for version in (4, 5):
        c = paho_tls("mqtt-good", version=version)
        mqtt_roundtrip(c, f"secure/mqtt/v{version}", b"over tls")
        c.stop()  # one place per user
        time.sleep(0.2)  # the gateway gives the place back when it has seen the DISCONNECT


def test_mqtt_wrong_password(paho_tls):
    v5 = paho_tls("mqtt-good", "wrong", version=5, expect_ok=False)
    assert v5.connack is not None and v5.connack[0].value == 0x86  # Bad User Name or Password
    v311 = paho_tls("mqtt-good", "wrong", version=4, expect_ok=False)
    # 3.1.1 return code 5 (not authorized, as ActiveMQ answers), which paho reports as 0x87.
    assert v311.connack is not None and str(v311.connack[0]) == "Not authorized"


def test_mqtt_outside_entries(paho_tls):
    c = paho_tls("mqtt-outside", version=5)
    info = c.publish("other/mqtt", b"nope", qos=1)
    assert c.puback_reason(info.mid).value == 0x87  # Not authorized
    assert [rc.value for rc in c.subscribe("other/mqtt", qos=1)] == [0x87]
    # The connection stays; its rights inside the entries are untouched.
    mqtt_roundtrip(c, "secure/mqtt/after", b"still here")
    c.stop()  # one place per user
    time.sleep(0.2)
    v311 = paho_tls("mqtt-outside", version=4)
    assert [rc.value for rc in v311.subscribe("other/mqtt", qos=1)] == [0x80]  # 3.1.1 SUBACK failure


def test_mqtt_per_user_limit(gw, paho_tls):
    before = limit_refusals(gw, "mqtt")
    held = [paho_tls("mqtt-limited") for _ in range(PER_USER)]
    extra = paho_tls("mqtt-limited", expect_ok=False)
    assert extra.connack is not None and extra.connack[0].value == 0x97  # Quota exceeded
    assert held[0].disconnected is None
    mqtt_roundtrip(held[0], "secure/mqtt/limited", b"first still served")
    assert until(lambda: limit_refusals(gw, "mqtt") == before + 1, "the mqtt refusal counted")


# --- AMQP 0-9-1: pika -----------------------------------------------------------------------------


@pytest.fixture
def pika_tls(gw, tls_files):
    conns = []
    ctx = ssl.create_default_context(cafile=str(tls_files.cert))

    def make(user, pw=None):
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=gw.host, port=gw.tls_ports["amqp"], connection_attempts=1,
            credentials=pika.PlainCredentials(user, pw if pw is not None else password(user)),
            ssl_options=pika.SSLOptions(ctx, "localhost")))
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        try:
            conn.close()
        except Exception:
            pass


def amqp_roundtrip(conn, queue: str, body: bytes):
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.basic_publish("", queue, body)
    deadline = time.monotonic() + 5
    while True:
        method, _, got = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            assert got == body
            break
        assert time.monotonic() < deadline, f"nothing on {queue}"
        time.sleep(0.05)
    ch.close()


def access_refused(fn, text: str):
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        fn()
    assert info.value.reply_code == 403
    assert info.value.reply_text == f"ACCESS_REFUSED - {text}"


def test_amqp_good_login(pika_tls):
    amqp_roundtrip(pika_tls("amqp-good"), "secure.amqp", b"over tls")


def test_amqp_wrong_password(pika_tls):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
        pika_tls("amqp-good", "wrong")


def test_amqp_outside_entries(pika_tls):
    conn = pika_tls("amqp-outside")
    access_refused(lambda: conn.channel().queue_declare("other.amqp"),
                   "User amqp-outside is not authorized to create: queue://other.amqp")

    def publish_then_sync():
        ch = conn.channel()
        ch.confirm_delivery()  # the refusal arrives instead of the confirm
        ch.basic_publish("amq.topic", "other.amqp", b"nope")

    access_refused(publish_then_sync, "User amqp-outside is not authorized to write to: topic://other.amqp")
    access_refused(lambda: conn.channel().basic_get("other.amqp"),
                   "User amqp-outside is not authorized to read from: queue://other.amqp")
    # Only the channel closed: the connection serves on.
    amqp_roundtrip(conn, "secure.amqp-after", b"still here")


def test_amqp_per_user_limit(gw, pika_tls):
    before = limit_refusals(gw, "amqp")
    held = [pika_tls("amqp-limited") for _ in range(PER_USER)]
    with pytest.raises(pika.exceptions.ProbableAuthenticationError,
                       match=f"403.*ACCESS_REFUSED.*amqp-limited already has the maximum of {PER_USER}"):
        pika_tls("amqp-limited")
    amqp_roundtrip(held[0], "secure.amqp-limited", b"first still served")
    assert until(lambda: limit_refusals(gw, "amqp") == before + 1, "the amqp refusal counted")


# --- OpenWire: the ActiveMQ JMS client with ssl:// ------------------------------------------------


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


@pytest.fixture(scope="module")
def truststore(tls_files, tmp_path_factory):
    """JVM properties trusting the gateway's certificate (a PKCS#12 store made with keytool)."""
    store = tmp_path_factory.mktemp("jks") / "truststore.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "gateway", "-file", str(tls_files.cert),
                    "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, timeout=60)
    return [f"-Djavax.net.ssl.trustStore={store}", "-Djavax.net.ssl.trustStorePassword=changeit",
            "-Djavax.net.ssl.trustStoreType=PKCS12"]


def jms_command(gw, truststore, user, pw, *args):
    helpers = _openwire_helpers()
    url = (f"ssl://{gw.host}:{gw.tls_ports['openwire']}"
           f"?jms.userName={user}&jms.password={pw if pw is not None else password(user)}")
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *truststore,
            "-cp", helpers.classpath() + ":" + str(helpers.compiled_probe()), "JmsProbe", url, *args]


def jms(gw, truststore, user, *args, pw=None):
    proc = subprocess.run(jms_command(gw, truststore, user, pw, *args),
                          capture_output=True, text=True, timeout=60)
    return _openwire_helpers().ProbeResult(proc.returncode, proc.stdout, proc.stderr)


def test_jms_good_login_and_outside_entries(gw, truststore):
    """One JVM for both checks: the refusals come on the connection that just round-tripped,
    and it stays up after them (a send inside the entries works last)."""
    got = jms(gw, truststore, "jms-outside", "secure", "send:queue:secure.jms", "consume:queue:secure.jms",
              "send:queue:other.jms", "consume:topic:other.jms", "send:queue:secure.jms-after")
    assert got.returncode == 0, got
    assert got.lines == [
        "OK send:queue:secure.jms",
        *[line for line in got.lines if line.startswith("RECEIVED ")],
        "OK consume:queue:secure.jms",
        f"DENIED send:queue:other.jms {SECURITY}: User jms-outside is not authorized to write to: queue://other.jms",
        f"DENIED consume:topic:other.jms {SECURITY}: User jms-outside is not authorized to read from: topic://other.jms",
        "OK send:queue:secure.jms-after",
    ], got
    assert [r.text for r in got.received] == ["secure"], got


def test_jms_wrong_password(gw, truststore):
    got = jms(gw, truststore, "jms-good", "secure", "send:queue:secure.jms", pw="wrong")
    assert got.returncode == 0, got
    assert got.lines == [f"REFUSED {SECURITY}: User name [jms-good] or password is invalid."], got


def test_jms_per_user_limit(gw, truststore, stomp_tls):
    """JMS connections hold the user's places (each takes a message, then waits on its stdin),
    one more is refused, and the held ones still close cleanly."""
    before = limit_refusals(gw, "openwire")
    sender = stomp_tls("jms-helper")
    for i in range(PER_USER):
        sender.conn.send(f"/queue/secure.jms-hold-{i}", f"hold {i}", receipt=f"h{i}")
        sender.wait(lambda: f"h{i}" in sender.receipts, f"RECEIPT h{i}")
    holders = [subprocess.Popen(jms_command(gw, truststore, "jms-limited", None, "hold", f"queue:secure.jms-hold-{i}"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(PER_USER)]
    try:
        for h in holders:
            lines = []
            while not lines or lines[-1] != "OK hold":
                line = h.stdout.readline()
                assert line, f"holder ended early: {lines} {h.stderr.read()}"
                lines.append(line.strip())
        refused = jms(gw, truststore, "jms-limited", "secure", "send:queue:secure.jms")
        assert refused.lines == [
            f"REFUSED {SECURITY}: User jms-limited already has the maximum of {PER_USER} connections."], refused
        for h in holders:
            _, err = h.communicate("\n", timeout=30)
            assert h.returncode == 0, err
    finally:
        for h in holders:
            if h.poll() is None:
                h.kill()
                h.wait()
    assert until(lambda: limit_refusals(gw, "openwire") == before + 1, "the openwire refusal counted")
    # The places came back with the holders.
    again = until(lambda: (r := jms(gw, truststore, "jms-limited", "secure", "send:queue:secure.jms"))
                  .ok("send:queue:secure.jms") and r, "a place given back", timeout=20)
    assert again.returncode == 0


# --- Kafka: kcat with SASL_SSL --------------------------------------------------------------------


def kcat_cmd(gw, tls_files, user, pw, *args):
    if KCAT is None:
        pytest.fail("kcat not installed: run scripts/install-test-deps (apt-get install kcat)")
    return [KCAT, "-b", f"{gw.host}:{gw.tls_ports['kafka']}", "-X", "security.protocol=SASL_SSL",
            "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", f"sasl.username={user}",
            "-X", f"sasl.password={pw if pw is not None else password(user)}",
            "-X", f"ssl.ca.location={tls_files.cert}", *args]


def kcat(gw, tls_files, user, *args, pw=None, input: bytes | None = None, timeout: float = 30.0):
    return subprocess.run(kcat_cmd(gw, tls_files, user, pw, *args), input=input, capture_output=True,
                          timeout=timeout)


def test_kafka_good_login(gw, tls_files):
    made = kcat(gw, tls_files, "kafka-good", "-P", "-t", "secure.kafka", "-K", ":", input=b"k1:one\n")
    assert made.returncode == 0, made.stderr
    got = kcat(gw, tls_files, "kafka-good", "-C", "-t", "secure.kafka", "-o", "beginning", "-e",
               "-f", "%k=%s\n")
    assert got.returncode == 0, got.stderr
    assert got.stdout.decode().splitlines() == ["k1=one"]


def test_kafka_wrong_password(gw, tls_files):
    bad = kcat(gw, tls_files, "kafka-good", "-L", "-m", "5", pw="wrong")
    assert bad.returncode != 0
    assert "Authentication failed" in bad.stderr.decode(errors="replace"), bad.stderr


def test_kafka_outside_entries(gw, tls_files):
    bad = kcat(gw, tls_files, "kafka-outside", "-P", "-t", "other.kafka", "-X", "message.timeout.ms=5000",
               input=b"nope\n")
    assert b"Broker: Topic authorization failed" in bad.stderr, bad.stderr
    bad = kcat(gw, tls_files, "kafka-outside", "-C", "-t", "other.kafka", "-e", "-m", "5")
    assert bad.returncode != 0
    assert b"Topic authorization failed" in bad.stderr, bad.stderr
    # The topic is not listed either; the user's own are.
    kcat(gw, tls_files, "kafka-outside", "-P", "-t", "secure.kafka-listed", input=b"x\n")
    listing = json.loads(kcat(gw, tls_files, "kafka-outside", "-L", "-J").stdout)
    names = [t["topic"] for t in listing["topics"]]
    assert "secure.kafka-listed" in names and "other.kafka" not in names


def test_kafka_per_user_limit(gw, tls_files):
    """A kcat consumer of `kafka-limited` holds the user's place; another kcat of the same user
    is refused at SASL (librdkafka retries: each retry is refused and counted), and the consumer
    goes on receiving what another user produces meanwhile."""
    before = limit_refusals(gw, "kafka")
    assert kcat(gw, tls_files, "kafka-helper", "-P", "-t", "secure.kafka-limited", input=b"first\n").returncode == 0
    holder = subprocess.Popen(kcat_cmd(gw, tls_files, "kafka-limited", None, "-C", "-t", "secure.kafka-limited",
                                       "-o", "beginning", "-u"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"first\n"
        refused = kcat(gw, tls_files, "kafka-limited", "-L", "-m", "5")
        assert refused.returncode != 0
        assert (f"kafka-limited already has the maximum of {PER_USER} connections"
                in refused.stderr.decode(errors="replace")), refused.stderr
        assert kcat(gw, tls_files, "kafka-helper", "-P", "-t", "secure.kafka-limited", input=b"second\n").returncode == 0
        assert holder.stdout.readline() == b"second\n"
    finally:
        holder.terminate()
        holder.wait(10)
    assert until(lambda: limit_refusals(gw, "kafka") >= before + 1, "the kafka refusal counted")


def test_every_refusal_left_the_gateway_serving(gw, stomp_tls):
    """After the whole matrix (refusals on every protocol), a fresh login still round-trips."""
    stomp_tls("stomp-good").roundtrip("/queue/secure.final", "served", "final")
    assert re.search(r"panicked", gw.log_text()) is None
