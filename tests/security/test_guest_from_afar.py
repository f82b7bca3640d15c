"""Issue 9: `guest` is refused from non-loopback peers on every protocol (RabbitMQ's
`loopback_users`), even when configured with a password; the same login from loopback works.
STOMP has its own test in test_stomp_security.py; here paho-mqtt, pika, kcat (SASL PLAIN and
SCRAM-SHA-256) and the ActiveMQ JMS client connect to listeners bound to 0.0.0.0 through this
machine's non-loopback address."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from gwtest import mqtt as m
from gwtest.kafka import KCAT, sasl_users_toml

REFUSAL = "User name [guest] is only allowed to connect from localhost."


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def jms_helpers():
    name = "_gateway_openwire_probe"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def afar(make_gateway):
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    gw = make_gateway(extra_toml="[security]\nauth_failure_delay_ms = 0\n\n"
                      + sasl_users_toml({"guest": ("guest", ["guests"])}), start=False)
    text = gw.config_path.read_text()
    for port in (gw.mqtt_port, gw.amqp_port, gw.kafka_port, gw.openwire_port):
        loopback = f'bind = "127.0.0.1:{port}"'
        assert loopback in text
        text = text.replace(loopback, f'bind = "0.0.0.0:{port}"')
    gw.config_path.write_text(text)
    gw.start()
    gw.afar = addr
    return gw


def test_mqtt(afar):
    for host, ok in ((afar.afar, False), ("127.0.0.1", True)):
        view = type("Broker", (), {"host": host, "mqtt_port": afar.mqtt_port})()
        c = m.MqttClient(view, version=5, username="guest", password="guest", expect_ok=ok)
        try:
            assert (c.connack[0].value == 0) is ok, c.connack
            if not ok:
                assert c.connack[0].value == 0x87  # Not authorized
        finally:
            c.stop()


def test_amqp(afar):
    def login(host):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=host, port=afar.amqp_port, connection_attempts=1,
            credentials=pika.PlainCredentials("guest", "guest")))

    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        login(afar.afar)
    assert "403" in str(refused.value) and REFUSAL in str(refused.value)
    login("127.0.0.1").close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_kafka(afar, mechanism):
    if KCAT is None:
        pytest.fail("kcat not installed: run scripts/install-test-deps (apt-get install kcat)")

    def kcat(host):
        return subprocess.run([KCAT, "-b", f"{host}:{afar.kafka_port}", "-X", "security.protocol=SASL_PLAINTEXT",
                               "-X", f"sasl.mechanisms={mechanism}", "-X", "sasl.username=guest",
                               "-X", "sasl.password=guest", "-L", "-m", "5"],
                              capture_output=True, timeout=30)

    refused = kcat(afar.afar)
    assert refused.returncode != 0
    assert REFUSAL in refused.stderr.decode(errors="replace"), refused.stderr
    ok = kcat("127.0.0.1")
    assert ok.returncode == 0, ok.stderr


def test_openwire(afar):
    def probe(host):
        return jms_helpers().Jms(host, afar.openwire_port, "jms.userName=guest&jms.password=guest").run(
            "secure", "send:queue:afar")

    refused = probe(afar.afar)
    assert refused.lines == [f"REFUSED javax.jms.JMSSecurityException: {REFUSAL}"], refused
    ok = probe("127.0.0.1")
    assert "OK send:queue:afar" in ok.lines, ok
