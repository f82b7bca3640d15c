"""Kafka SASL (PLAIN and SCRAM-SHA-256 over SASL_PLAINTEXT) and topic authorization, with kcat
(librdkafka 2.0), confluent-kafka (librdkafka 2.16), kafka-python and raw frames.

Users come from `[[users]]` (argon2 `password_hash` for PLAIN, `scram_sha256` from
`gateway hash-password --scram` for SCRAM); topics are authorized by `[[authorization]]`
entries written `topic = "pattern"`: produce needs write, fetch and offset commits read,
CreateTopics / DeleteTopics admin. Refusals: SASL_AUTHENTICATION_FAILED (58) then close,
TOPIC_AUTHORIZATION_FAILED (29).
"""

from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as PyKafkaError

from gwtest.kafka import (
    RawKafka,
    kstr,
    sasl_authenticate_v1,
    sasl_handshake,
    sasl_users_toml,
    wait_for_port,
)

USERS = {
    "alice": ("alice-pw", ["admins"]),
    "producer": ("p-pass", ["writers"]),
    "consumer": ("c-pass", ["readers"]),
}
ACL = """
[[authorization]]
topic = "orders.>"
read = ["readers", "admins"]
write = ["writers", "admins"]
admin = ["admins"]
"""
SECURITY = "[security]\nauth_failure_delay_ms = 0\n\n"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256"]
SASL_ERROR = 58
TOPIC_AUTHORIZATION_FAILED = 29


@pytest.fixture
def secured(kafka_gateway):
    """A gateway with USERS and the ACL (users configured: SASL is required everywhere)."""
    return kafka_gateway({"server": {"log_level": "debug"}},
                         extra_toml=SECURITY + sasl_users_toml(USERS) + ACL + """
[[streams]]
name = "orders.eu"
partitions = 1
""")


def sasl_args(mechanism: str, user: str, password: str) -> list[str]:
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]


def confluent(gw, mechanism: str, user: str, password: str, **extra) -> dict:
    return {"bootstrap.servers": gw.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password,
            **extra}


def confluent_auth_error(gw, mechanism: str, user: str, password: str) -> KafkaError:
    """The error librdkafka reports when authentication fails (through error_cb)."""
    errors: list[KafkaError] = []
    admin = AdminClient(confluent(gw, mechanism, user, password, error_cb=errors.append,
                                  **{"reconnect.backoff.ms": 2000, "log_level": 0}))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        admin.poll(0.5)  # serves error_cb
    del admin
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    return auth[0]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_authenticates_and_a_wrong_password_is_refused(secured, kcat, mechanism):
    gw = secured
    kcat(gw, *sasl_args(mechanism, "alice", "alice-pw"), "-P", "-t", "orders.eu",
         "-k", "k", input="hello\n")
    out = kcat(gw, *sasl_args(mechanism, "alice", "alice-pw"), "-C", "-t", "orders.eu",
               "-e", "-f", "%k=%s\n").text
    assert out == "k=hello\n"
    bad = kcat(gw, *sasl_args(mechanism, "alice", "wrong"), "-L", "-m", "5", check=False)
    assert bad.returncode != 0
    assert "Authentication failed" in bad.stderr.decode(errors="replace")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_authenticates_and_wrong_credentials_fail(secured, mechanism):
    gw = secured
    p = Producer(confluent(gw, mechanism, "producer", "p-pass"))
    p.produce("orders.eu", value=b"from confluent")
    assert p.flush(15) == 0
    c = Consumer(confluent(gw, mechanism, "consumer", "c-pass", **{
        "group.id": "ck-sasl", "auto.offset.reset": "earliest"}))
    c.subscribe(["orders.eu"])
    got = None
    deadline = time.time() + 30
    while got is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is None, m.error()
            got = m.value()
    c.close()
    assert got == b"from confluent"
    for user, password in [("consumer", "nope"), ("mallory", "c-pass")]:
        err = confluent_auth_error(gw, mechanism, user, password)
        assert "Authentication failed" in err.str()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_authenticates_and_wrong_credentials_fail(secured, mechanism):
    gw = secured
    kw = dict(bootstrap_servers=gw.bootstrap, security_protocol="SASL_PLAINTEXT",
              sasl_mechanism=mechanism)
    p = KafkaProducer(sasl_plain_username="producer", sasl_plain_password="p-pass", **kw)
    p.send("orders.eu", b"from kafka-python").get(timeout=15)
    p.close()
    c = KafkaConsumer(sasl_plain_username="alice", sasl_plain_password="alice-pw",
                      consumer_timeout_ms=3000, auto_offset_reset="earliest", **kw)
    c.assign([TopicPartition("orders.eu", 0)])
    assert [m.value for m in c] == [b"from kafka-python"]
    c.close()
    with pytest.raises(PyKafkaError):
        bad = KafkaProducer(sasl_plain_username="producer", sasl_plain_password="wrong",
                            max_block_ms=5000, bootstrap_timeout_ms=3000, **kw)
        bad.send("orders.eu", b"never").get(timeout=10)
    log = gw.log_text()
    assert "Kafka SASL authentication failed" in log
    # Debug logging is on: still no password in the log.
    for secret in ("p-pass", "alice-pw", "wrong"):
        assert secret not in log, secret


def test_wrong_credentials_get_sasl_authentication_failed_then_close(secured):
    gw = secured
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "PLAIN") == (0, MECHANISMS)
    err, message, _ = sasl_authenticate_v1(raw, b"\0producer\0wrong")
    assert err == SASL_ERROR
    assert message == "Authentication failed: User name [producer] or password is invalid."
    assert raw.closed_by_peer()
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33) with the enabled list, then close.
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "GSSAPI") == (33, MECHANISMS)
    assert raw.closed_by_peer()
    # The refusal is counted as a rejected Kafka connection.
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    rejected = re.search(
        r'^gateway_connections_rejected_total\{[^}]*protocol="kafka"[^}]*\} (\S+)$', metrics, re.M)
    assert rejected and float(rejected.group(1)) >= 1, metrics


def test_handshake_v0_then_bare_tokens(secured):
    """SaslHandshake v0: the PLAIN token and the (empty) answer travel as bare frames."""
    gw = secured
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "PLAIN", version=0) == (0, MECHANISMS)
    raw.send_frame(b"\0alice\0alice-pw")
    assert raw.read_frame() == b""
    # Authenticated: Metadata v1 for orders.eu answers with the topic.
    raw.request(3, 1, struct.pack(">i", 1) + kstr("orders.eu"))
    frame = raw.read_frame()
    assert b"orders.eu" in frame
    raw.close()
    # A wrong password after v0: the connection just closes.
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "PLAIN", version=0)[0] == 0
    raw.send_frame(b"\0alice\0wrong")
    assert raw.closed_by_peer()


def test_requests_before_authentication_close_the_connection(secured):
    gw = secured
    # Before authentication, frames above 512 KiB close the connection (Kafka's
    # sasl.server.max.receive.size).
    big = RawKafka(gw.host, gw.kafka_port)
    big.sock.sendall(struct.pack(">i", 600 * 1024) + b"\0" * 1024)
    assert big.closed_by_peer()
    raw = RawKafka(gw.host, gw.kafka_port)
    # ApiVersions is answered before authentication ...
    raw.request(18, 0, b"")
    assert struct.unpack(">h", raw.read_frame()[4:6]) == (0,)
    # ... Metadata is not: users are configured, so anonymous clients are refused.
    raw.request(3, 1, struct.pack(">i", -1))
    assert raw.closed_by_peer()


def test_non_loopback_listener_requires_sasl_and_admits_configured_users(make_gateway, kcat):
    gw = make_gateway(extra_toml=SECURITY + sasl_users_toml(USERS, scram=False), start=False)
    text = gw.config_path.read_text()
    loopback = f'bind = "127.0.0.1:{gw.kafka_port}"'
    assert loopback in text
    gw.config_path.write_text(text.replace(loopback, f'bind = "0.0.0.0:{gw.kafka_port}"'))
    gw.start()
    wait_for_port(gw.host, gw.kafka_port)
    gw.bootstrap = f"{gw.host}:{gw.kafka_port}"
    raw = RawKafka(gw.host, gw.kafka_port)
    raw.request(3, 1, struct.pack(">i", -1))
    assert raw.closed_by_peer()
    # guest/guest is not a user here.
    err = confluent_auth_error(gw, "PLAIN", "guest", "guest")
    assert "Authentication failed" in err.str()
    out = kcat(gw, *sasl_args("PLAIN", "alice", "alice-pw"), "-L", "-m", "10").text
    assert "broker" in out


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_loopback_default_admits_guest_and_anonymous(kafka_gateway, kcat, mechanism):
    """No [[users]], loopback listener: guest/guest over SASL (both mechanisms), and clients
    without SASL, are admitted, as on every protocol."""
    gw = kafka_gateway()
    kcat(gw, *sasl_args(mechanism, "guest", "guest"), "-P", "-t", "plain", input="g\n")
    assert kcat(gw, "-C", "-t", "plain", "-e", "-f", "%s\n").text == "g\n"
    bad = kcat(gw, *sasl_args(mechanism, "guest", "nope"), "-L", "-m", "5", check=False)
    assert bad.returncode != 0


def test_require_sasl_on_a_loopback_listener(kafka_gateway, kcat):
    gw = kafka_gateway(overrides={"listeners": {"kafka": {"require_sasl": True}}})
    raw = RawKafka(gw.host, gw.kafka_port)
    raw.request(3, 1, struct.pack(">i", -1))
    assert raw.closed_by_peer()
    out = kcat(gw, *sasl_args("SCRAM-SHA-256", "guest", "guest"), "-L", "-m", "10").text
    assert "broker" in out


def test_only_the_configured_mechanisms_are_offered(kafka_gateway):
    gw = kafka_gateway(overrides={"listeners": {"kafka": {"sasl_mechanisms": ["SCRAM-SHA-256"]}}})
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "PLAIN") == (33, ["SCRAM-SHA-256"])
    assert raw.closed_by_peer()


# --- authorization -------------------------------------------------------------------------


def test_producer_may_write_but_not_read(secured):
    gw = secured
    p = Producer(confluent(gw, "SCRAM-SHA-256", "producer", "p-pass"))
    p.produce("orders.eu", value=b"ok")
    assert p.flush(15) == 0
    c = Consumer(confluent(gw, "SCRAM-SHA-256", "producer", "p-pass", **{
        "group.id": "thieves", "auto.offset.reset": "earliest"}))
    c.subscribe(["orders.eu"])
    error = None
    deadline = time.time() + 20
    while error is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is not None, f"producer read a record: {m.value()!r}"
            error = m.error()
    c.close()
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def test_consumer_may_read_but_not_write_nor_create(secured):
    gw = secured
    reports = []
    p = Producer(confluent(gw, "PLAIN", "consumer", "c-pass", **{"message.timeout.ms": 10000}))
    p.produce("orders.eu", value=b"forbidden", on_delivery=lambda err, msg: reports.append(err))
    p.flush(15)
    assert len(reports) == 1 and reports[0] is not None
    assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports[0]
    admin = AdminClient(confluent(gw, "PLAIN", "consumer", "c-pass"))
    future = admin.create_topics([NewTopic("orders.us", num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as refused:
        future["orders.us"].result(15)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The admin may create and delete.
    root = AdminClient(confluent(gw, "PLAIN", "alice", "alice-pw"))
    root.create_topics([NewTopic("orders.us", num_partitions=1, replication_factor=1)])[
        "orders.us"].result(15)
    future = admin.delete_topics(["orders.us"])
    with pytest.raises(KafkaException) as refused:
        future["orders.us"].result(15)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    root.delete_topics(["orders.us"])["orders.us"].result(15)


def test_topics_outside_the_entries_are_invisible_and_refused(secured, kcat):
    gw = secured
    alice = sasl_args("PLAIN", "alice", "alice-pw")
    kcat(gw, *alice, "-P", "-t", "orders.eu", input="x\n")
    # invoices matches no entry: even alice (admins) may not create it by producing.
    bad = kcat(gw, *alice, "-P", "-t", "invoices", "-X", "message.timeout.ms=5000",
               input="y\n", check=False)
    assert bad.returncode != 0 or "Authorization" in bad.stderr.decode(errors="replace")
    listing = kcat(gw, *sasl_args("PLAIN", "consumer", "c-pass"), "-L", "-m", "10").text
    assert "orders.eu" in listing and "invoices" not in listing


def test_group_entries_authorize_consumer_groups(kafka_gateway):
    """`group = "pattern"` entries authorize Kafka consumer groups (read: join, commit, fetch
    offsets, describe); a group outside them gets GROUP_AUTHORIZATION_FAILED (30)."""
    gw = kafka_gateway(extra_toml=SECURITY + sasl_users_toml(USERS, scram=False) + ACL + """
[[authorization]]
group = "billing.>"
read = ["readers"]

[[streams]]
name = "orders.eu"
partitions = 1
""")
    p = Producer(confluent(gw, "PLAIN", "producer", "p-pass"))
    p.produce("orders.eu", value=b"grouped")
    assert p.flush(15) == 0

    def first_event(group: str):
        c = Consumer(confluent(gw, "PLAIN", "consumer", "c-pass", **{
            "group.id": group, "auto.offset.reset": "earliest"}))
        c.subscribe(["orders.eu"])
        deadline = time.time() + 30
        try:
            while time.time() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    return m
        finally:
            c.close()
        return None

    allowed = first_event("billing.readers")
    assert allowed is not None and allowed.error() is None and allowed.value() == b"grouped"
    refused = first_event("other.readers")
    assert refused is not None and refused.error() is not None
    assert refused.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED, refused.error()


def scram_client_final(password: str, client_first_bare: str, server_first: str) -> str:
    """The RFC 5802 client-final message for `server_first` (hashlib/hmac, independent of the
    gateway's code)."""
    import base64
    import hashlib
    import hmac

    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return f"{without_proof},p={base64.b64encode(proof).decode()}"


def test_scram_over_handshake_v0_bare_tokens(secured):
    """SCRAM-SHA-256 after a SaslHandshake v0: client-first, server-first, client-final and
    server-final travel as bare frames; then requests are served as the user."""
    gw = secured
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "SCRAM-SHA-256", version=0) == (0, MECHANISMS)
    bare = "n=alice,r=rawclientnonce"
    raw.send_frame(f"n,,{bare}".encode())
    server_first = raw.read_frame().decode()
    assert server_first.startswith("r=rawclientnonce") and ",i=4096" in server_first
    raw.send_frame(scram_client_final("alice-pw", bare, server_first).encode())
    assert raw.read_frame().startswith(b"v=")
    raw.request(3, 1, struct.pack(">i", 1) + kstr("orders.eu"))
    assert b"orders.eu" in raw.read_frame()
    raw.close()
    # The same with a wrong password: the connection closes after the client-final message.
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "SCRAM-SHA-256", version=0)[0] == 0
    raw.send_frame(f"n,,{bare}".encode())
    server_first = raw.read_frame().decode()
    raw.send_frame(scram_client_final("wrong", bare, server_first).encode())
    assert raw.closed_by_peer()


def test_sasl_requests_out_of_turn_get_illegal_sasl_state(secured):
    """SaslAuthenticate without a SaslHandshake v1, and a second SaslHandshake after
    authenticating (re-authentication is not offered), get ILLEGAL_SASL_STATE (34), then close."""
    gw = secured
    raw = RawKafka(gw.host, gw.kafka_port)
    err, message, _ = sasl_authenticate_v1(raw, b"\0alice\0alice-pw")
    assert err == 34 and "SaslHandshake" in (message or "")
    assert raw.closed_by_peer()
    raw = RawKafka(gw.host, gw.kafka_port)
    assert sasl_handshake(raw, "PLAIN")[0] == 0
    assert sasl_authenticate_v1(raw, b"\0alice\0alice-pw")[0] == 0
    assert sasl_handshake(raw, "PLAIN")[0] == 34
    assert raw.closed_by_peer()
