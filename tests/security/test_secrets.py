"""Issue 9: passwords and secrets never appear in logs, metrics or admin responses.

Good and wrong logins on every protocol with its real client (stomp.py, paho-mqtt, pika, kcat
with SASL PLAIN and SCRAM-SHA-256, the ActiveMQ JMS client), the gateway at `log_level =
"debug"`; then `/metrics`, `/api/connections`, `/api/consumers`, `/api/overview`, and the error
list of a `POST /api/reload` whose users table is broken (a password pasted where its hash
belongs), are searched for every password, every stored hash and SCRAM credential, and the
admin's Basic token. So is the whole log.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request

import pika
import pytest

from gwtest import mqtt as m
from gwtest.client import Client
from gwtest.kafka import KCAT, sasl_users_toml
from gwtest.raw import RawStomp

OPS_PASSWORD = "Ops-Secret-4711"
ALICE_PASSWORD = "Alice-Secret-0815"
WRONG_PASSWORD = "Wrong-Secret-1234"
USERS = {"ops": (OPS_PASSWORD, ["admin"]), "alice": (ALICE_PASSWORD, ["apps"])}
ACL = """
[[authorization]]
queue = "app.>"
read = ["apps"]
write = ["apps"]
admin = ["apps"]

[[authorization]]
topic = "app.>"
read = ["apps"]
write = ["apps"]
admin = ["apps"]

[[authorization]]
topic = "ActiveMQ.Advisory.>"
read = ["*"]
write = ["*"]
admin = ["*"]
"""


def admin_get(gw, path: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(f"http://{gw.host}:{gw.admin_port}{path}", method=method)
    token = base64.b64encode(f"ops:{OPS_PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def run_jms(gw, user: str, password: str, *args: str):
    import importlib.util
    import sys
    from pathlib import Path

    name = "_gateway_openwire_probe"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    helpers = sys.modules[name]
    return helpers.Jms(gw.host, gw.openwire_port,
                       f"jms.userName={user}&jms.password={password}").run(*args)


def kcat(gw, mechanism: str, password: str, *args, input: bytes | None = None):
    if KCAT is None:
        pytest.fail("kcat not installed: run scripts/install-test-deps (apt-get install kcat)")
    return subprocess.run([KCAT, "-b", f"{gw.host}:{gw.kafka_port}", "-X", "security.protocol=SASL_PLAINTEXT",
                           "-X", f"sasl.mechanisms={mechanism}", "-X", "sasl.username=alice",
                           "-X", f"sasl.password={password}", *args],
                          input=input, capture_output=True, timeout=30)


def test_no_secret_in_logs_metrics_or_admin_responses(make_gateway):
    users = sasl_users_toml(USERS)
    gw = make_gateway(overrides={"server": {"log_level": "debug"}},
                      extra_toml="[security]\nauth_failure_delay_ms = 0\n\n" + users + ACL)
    stored = re.findall(r'(?:password_hash|scram_sha256) = "([^"]+)"', users)
    assert len(stored) == 4
    # What a leak would show: the passwords, the stored credentials, the Basic token, and the
    # SCRAM credential's parts (salt, stored and server keys).
    secrets = [OPS_PASSWORD, ALICE_PASSWORD, WRONG_PASSWORD, *stored,
               base64.b64encode(f"ops:{OPS_PASSWORD}".encode()).decode()]
    secrets += [part for s in stored if not s.startswith("$argon2") for part in re.split(r"[$:]", s)
                if len(part) >= 16]
    held = []
    try:
        # STOMP: stomp.py logs in; a wrong passcode is refused.
        stomp_client = Client(gw, login="alice", passcode=ALICE_PASSWORD)
        held.append(stomp_client)
        stomp_client.conn.subscribe("/queue/app.secrets", id="s1")
        wrong = RawStomp(gw.host, gw.stomp_port)
        wrong.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost", "login": "alice",
                                     "passcode": WRONG_PASSWORD})
        assert [f.command for f in wrong.expect_closed()] == ["ERROR"]
        # MQTT 5 and 3.1.1 with paho.
        for version in (5, 4):
            ok = m.MqttClient(gw, version=version, username="alice", password=ALICE_PASSWORD)
            held.append(ok)
            ok.subscribe("app/secrets", qos=1)
            bad = m.MqttClient(gw, version=version, username="alice", password=WRONG_PASSWORD, expect_ok=False)
            assert bad.connack is not None and bad.connack[0].is_failure
            bad.stop()
        # AMQP 0-9-1 with pika.
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host=gw.host, port=gw.amqp_port, connection_attempts=1,
            credentials=pika.PlainCredentials("alice", ALICE_PASSWORD)))
        held.append(conn)
        conn.channel().queue_declare("app.secrets-amqp")
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.ConnectionParameters(
                host=gw.host, port=gw.amqp_port, connection_attempts=1,
                credentials=pika.PlainCredentials("alice", WRONG_PASSWORD)))
        # Kafka: SASL PLAIN and SCRAM-SHA-256 with kcat.
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            assert kcat(gw, mechanism, ALICE_PASSWORD, "-P", "-t", "app.secrets", input=b"x\n").returncode == 0
            assert kcat(gw, mechanism, WRONG_PASSWORD, "-L", "-m", "5").returncode != 0
        # OpenWire with the JMS client.
        ok = run_jms(gw, "alice", ALICE_PASSWORD, "secure", "send:queue:app.secrets-jms")
        assert "OK send:queue:app.secrets-jms" in ok.lines, ok
        bad = run_jms(gw, "alice", WRONG_PASSWORD, "secure", "send:queue:app.secrets-jms")
        assert bad.lines and bad.lines[0].startswith("REFUSED javax.jms.JMSSecurityException"), bad

        # Metrics and admin responses, with connections of alice still open.
        responses = {}
        for path in ("/metrics", "/api/connections", "/api/consumers", "/api/overview", "/api/queues"):
            status, body = admin_get(gw, path)
            assert status == 200, (path, status, body)
            responses[path] = body
        connections = json.loads(responses["/api/connections"])
        assert "alice" in json.dumps(connections)  # the user is shown, as ActiveMQ's console does
        assert "auth_failure" in responses["/metrics"]  # the refusals were counted
        for path, body in responses.items():
            assert secrets_in(body, secrets) == [], path

        # A reload whose users table is broken: the error names the place, never the value.
        text = gw.config_path.read_text()
        broken = text.replace(stored[0], ALICE_PASSWORD, 1)  # a password pasted for its hash
        broken = broken.replace(stored[1], "not-a-scram-" + OPS_PASSWORD, 1)
        assert broken != text
        gw.config_path.write_text(broken)
        status, body = admin_get(gw, "/api/reload", method="POST")
        assert status == 400, body
        errors = json.loads(body)["errors"]
        assert any("users[0].password_hash" in e for e in errors), errors
        assert secrets_in(body, secrets) == [], body
        gw.config_path.write_text(text)
    finally:
        for c in held:
            try:
                if isinstance(c, Client):
                    c.conn.disconnect()
                elif isinstance(c, m.MqttClient):
                    c.stop()
                else:
                    c.close()
            except Exception:
                pass
    log = gw.log_text()
    assert "authentication failed" in log  # debug logging did record the refusals
    assert secrets_in(log, secrets) == []
