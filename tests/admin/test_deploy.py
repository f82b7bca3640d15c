"""deploy/: the Prometheus alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and every metric the rules and the Grafana dashboard query is one the
real gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from gwtest.gateway import REPO_ROOT
from gwtest.kafka import wait_for_port

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "gateway-dashboard.json"
METRIC = re.compile(r"\bgateway_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool not found: ./scripts/install-test-deps installs it (Debian package prometheus)"
    return path


def test_alert_rules_check_and_unit_tests_pass():
    r = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 10 rules found" in r.stdout
    r = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=PROMETHEUS, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def queried_metrics() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]
    exprs.append((PROMETHEUS / "alerts.yml").read_text())
    names = set()
    for e in exprs:
        for name in METRIC.findall(e):
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            names.add(name)
    return names


# A stream routed into a queue: streams, consumer groups and routes have series to show.
STREAM_ROUTE = """
[[streams]]
name = "deploy.events"
partitions = 1

[[routes]]
name = "deploy-route"
from = "stream:deploy.events"
to = "queue:deploy.routed"
"""


def test_dashboard_and_rules_query_only_exported_metrics(make_gateway, client, admin):
    from kafka import KafkaProducer

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "message-gateway"
    assert len([p for p in dashboard["panels"] if p["type"] == "timeseries"]) >= 28
    gateway = make_gateway(extra_toml=STREAM_ROUTE)
    wait_for_port(gateway.host, gateway.kafka_port)
    c = client(gateway)
    c.send("/queue/deploy.q", "x", headers={"persistent": "true"})
    p = KafkaProducer(bootstrap_servers=f"{gateway.host}:{gateway.kafka_port}")
    p.send("deploy.events", value=b"e")
    p.flush(10)
    p.close()
    a = admin(gateway)
    # The route carried the record and committed its group's offset.
    a.wait_value("gateway_route_messages_total", 1, timeout=10, route="deploy-route")
    a.wait_value("gateway_route_lag_messages", 0, timeout=10, route="deploy-route")
    text = a.metrics_text()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    wanted = queried_metrics()
    assert len(wanted) >= 25
    assert wanted - families == set()


OPERATIONS = REPO_ROOT / "docs" / "operations.md"

# Documented metrics a scrape shows only once their event happened: none, today. Listeners
# register their connection, decode-error and limit series at 0, and refresh() writes every
# gauge at each scrape; the traffic below produces the rest. A name added here must say, in
# docs/operations.md, that it "appears with the first" such event.
AFTER_AN_EVENT: set[str] = set()


def documented_metrics() -> set[str]:
    names = set()
    for name in METRIC.findall(OPERATIONS.read_text()):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        names.add(name)
    return names


def test_operations_doc_and_scrape_name_the_same_metrics(make_gateway, client, admin):
    """Every gateway_* name in docs/operations.md is exported once every protocol carried
    traffic (STOMP, MQTT, AMQP 0-9-1, OpenWire, Kafka, a route), and every exported gateway_*
    family is documented there."""
    import importlib.util
    import sys
    from pathlib import Path

    import pika
    from kafka import KafkaProducer

    from gwtest.amqp import pika_connection
    from gwtest.mqtt import MqttClient

    gw = make_gateway(extra_toml=STREAM_ROUTE)
    wait_for_port(gw.host, gw.kafka_port)
    a = admin(gw)
    # STOMP: a persistent send (journal histograms), a topic publish.
    c = client(gw)
    c.send("/queue/deploy.q", "x", headers={"persistent": "true"})
    c.send("/topic/deploy.t", "t")
    # MQTT: a QoS 1 publish.
    m = MqttClient(gw, client_id="deploy-mqtt")
    m.publish("deploy/m", b"m", qos=1)
    # AMQP 0-9-1: a publish through the default exchange.
    conn = pika_connection(gw, credentials=pika.PlainCredentials("guest", "guest"))
    conn.channel().basic_publish("", "deploy.q", b"a")
    # OpenWire: the ActiveMQ JMS client sends one message.
    path = Path(__file__).resolve().parents[1] / "openwire" / "conftest.py"
    name = "_gateway_openwire_probe"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    sent = sys.modules[name].Jms(gw.host, gw.openwire_port).run("send", "queue:deploy.q", "j")
    assert sent.returncode == 0, sent
    # Kafka: a record into the routed stream.
    p = KafkaProducer(bootstrap_servers=f"{gw.host}:{gw.kafka_port}")
    p.send("deploy.events", value=b"e")
    p.flush(10)
    p.close()
    a.wait_value("gateway_route_messages_total", 1, timeout=10, route="deploy-route")
    # The route committed its group's offset: the consumer-group series exist.
    a.wait_value("gateway_route_lag_messages", 0, timeout=10, route="deploy-route")
    a.wait_value("gateway_consumer_group_lag_messages", 0, timeout=10, group="route.deploy-route",
                 stream="deploy.events", partition="0")
    try:
        text = a.metrics_text()
    finally:
        conn.close()
        m.disconnect()
    exported = {n for n in re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE) if n.startswith("gateway_")}
    documented = documented_metrics()
    assert len(documented) >= 60
    assert documented - exported - AFTER_AN_EVENT == set(), "documented but not exported"
    assert exported - documented == set(), "exported but not documented in docs/operations.md"
    assert AFTER_AN_EVENT <= documented
