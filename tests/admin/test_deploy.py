"""deploy/: the Prometheus alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and every metric the rules and the Grafana dashboard query is one the
real gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from gwtest.gateway import REPO_ROOT

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
    assert "SUCCESS: 8 rules found" in r.stdout
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


def test_dashboard_and_rules_query_only_exported_metrics(gateway, client, admin):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "message-gateway"
    assert len([p for p in dashboard["panels"] if p["type"] == "timeseries"]) >= 20
    c = client()
    c.send("/queue/deploy.q", "x", headers={"persistent": "true"})
    text = admin(gateway).metrics_text()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    wanted = queried_metrics()
    assert len(wanted) >= 25
    assert wanted - families == set()
