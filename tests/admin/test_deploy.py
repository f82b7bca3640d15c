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
