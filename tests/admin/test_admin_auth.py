"""Admin API credentials (issue 9): with admin users configured, the API and /metrics need HTTP
Basic credentials of an `admin`-group user or an `[admin] users` entry (401 with a Basic
challenge otherwise), /healthz and /readyz stay open, `[admin] metrics_auth = false` leaves
/metrics open for Prometheus, the CLI authenticates with --user/--password or environment
variables, and the password never reaches the log. An admin listener bound to a non-loopback
address always requires credentials."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gwtest.gateway import free_port, gateway_binary
from gwtest.security import security_toml

OPS_PASSWORD = "s3cret-ops-Pa55"
APP_PASSWORD = "app-Pa55word"
USERS = {
    "ops": (OPS_PASSWORD, ["admin"]),
    "auditor": ("auditor-Pa55", ["audit"]),
    "app": (APP_PASSWORD, ["apps"]),
}


def request(gw, path: str, method: str = "GET", user: str | None = None, password: str | None = None,
            bind: str | None = None):
    url = f"http://{bind or f'{gw.host}:{gw.admin_port}'}{path}"
    req = urllib.request.Request(url, method=method)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def run_cli(gw, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_ADMIN_")}
    env.update(env_extra or {})
    return subprocess.run([str(gateway_binary()), "--admin", f"http://{gw.host}:{gw.admin_port}", *args],
                          capture_output=True, text=True, timeout=30, env=env)


def test_api_and_metrics_need_admin_credentials(make_gateway):
    gw = make_gateway({"admin": {"users": ["auditor"]}}, extra_toml=security_toml(USERS))
    for path in ("/api/queues", "/api/overview", "/api/streams", "/metrics"):
        status, headers, body = request(gw, path)
        assert status == 401, (path, status, body)
        assert headers.get("WWW-Authenticate", "").startswith("Basic realm="), headers
        assert "authentication required" in json.loads(body)["error"]
    # Probes stay open.
    assert request(gw, "/healthz")[0] == 200
    assert request(gw, "/readyz")[0] == 200
    # Wrong password, unknown user, a configured user outside the admin group: refused.
    assert request(gw, "/api/queues", user="ops", password="wrong")[0] == 401
    assert request(gw, "/api/queues", user="nobody", password=OPS_PASSWORD)[0] == 401
    assert request(gw, "/api/queues", user="app", password=APP_PASSWORD)[0] == 401
    # Each refused login is counted (read with credentials: /metrics is protected too).
    status, _, text = request(gw, "/metrics", user="ops", password=OPS_PASSWORD)
    assert status == 200
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("gateway_limit_refusals_total", frozenset({("protocol", "admin"), ("limit", "auth_failure")}))] == 3
    # The admin group's member and the listed user are let in, on the API and on /metrics.
    status, _, body = request(gw, "/api/queues", user="ops", password=OPS_PASSWORD)
    assert status == 200 and json.loads(body) == {"queues": []}
    assert request(gw, "/api/overview", user="auditor", password="auditor-Pa55")[0] == 200
    status, _, text = request(gw, "/metrics", user="ops", password=OPS_PASSWORD)
    assert status == 200 and "gateway_build_info" in text
    # Actions too.
    assert request(gw, "/api/queues/none/purge", method="POST", user="ops", password=OPS_PASSWORD)[0] == 404
    assert request(gw, "/api/queues/none/purge", method="POST")[0] == 401

    # The CLI: refused without credentials, with a clear message; works with flags or env.
    r = run_cli(gw, "queues")
    assert r.returncode != 0 and "needs credentials" in r.stderr, r.stderr
    r = run_cli(gw, "--user", "ops", "--password", "wrong", "queues")
    assert r.returncode != 0 and "HTTP 401" in r.stderr, r.stderr
    r = run_cli(gw, "--user", "ops", "--password", OPS_PASSWORD, "queues")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["NAME", "KIND"]
    r = run_cli(gw, "overview", "--json",
                env_extra={"GATEWAY_ADMIN_USER": "ops", "GATEWAY_ADMIN_PASSWORD": OPS_PASSWORD})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["queues"] == 0

    # Passwords never reach the log, even at debug level of the refusals.
    log = gw.log_text()
    for secret in (OPS_PASSWORD, APP_PASSWORD, "auditor-Pa55", base64.b64encode(f"ops:{OPS_PASSWORD}".encode()).decode()):
        assert secret not in log


def test_metrics_can_stay_open_for_prometheus(make_gateway):
    gw = make_gateway({"admin": {"metrics_auth": False}}, extra_toml=security_toml(USERS))
    status, _, text = request(gw, "/metrics")
    assert status == 200 and "gateway_build_info" in text
    assert request(gw, "/api/queues")[0] == 401
    assert request(gw, "/api/queues", user="ops", password=OPS_PASSWORD)[0] == 200


def test_without_admin_users_loopback_is_open(make_gateway):
    # Users exist but none is an admin: a loopback admin listener stays open (the default).
    gw = make_gateway(extra_toml=security_toml({"app": (APP_PASSWORD, ["apps"])}))
    assert request(gw, "/api/queues")[0] == 200
    assert request(gw, "/metrics")[0] == 200


def test_non_loopback_admin_listener_always_requires_credentials(make_gateway):
    bind = f"0.0.0.0:{free_port()}"
    gw = make_gateway({"admin": {"bind": bind}}, extra_toml=security_toml(USERS))
    assert request(gw, "/healthz", bind=bind)[0] == 200
    assert request(gw, "/api/queues", bind=bind)[0] == 401
    assert request(gw, "/api/queues", user="ops", password=OPS_PASSWORD, bind=bind)[0] == 200

    # No admin user at all: nobody gets in, the probes still answer.
    bind = f"0.0.0.0:{free_port()}"
    lonely = make_gateway({"admin": {"bind": bind}})
    assert request(lonely, "/readyz", bind=bind)[0] == 200
    assert request(lonely, "/api/queues", bind=bind)[0] == 401
    assert request(lonely, "/metrics", bind=bind, user="guest", password="guest")[0] == 401
    assert "no admin user configured" in lonely.log_text()
