"""Fixtures for the admin API, metrics and CLI tests (tests/admin).

- `admin(gw)`: an `Admin` for a running gateway: `get/post/delete(path)` return
  (status, parsed JSON), `metrics()` scrapes `/metrics` and parses it with the real Prometheus
  text-format parser (prometheus_client), `value(name, **labels)` reads one sample.
- `cli(gw, *args)`: runs the `gateway` binary's admin subcommands against `gw`; returns the
  CompletedProcess.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gwtest.gateway import gateway_binary


class Admin:
    def __init__(self, gw):
        self.gw = gw
        self.base = f"http://{gw.host}:{gw.admin_port}"

    def request(self, method: str, path: str):
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            body = e.read()
            status = e.code
            ctype = e.headers.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(body)
        return status, body.decode()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path):
        return self.request("POST", path)

    def delete(self, path):
        return self.request("DELETE", path)

    def metrics_text(self) -> str:
        status, text = self.get("/metrics")
        assert status == 200, text
        return text

    def metrics(self) -> dict:
        """{(sample name, frozenset(labels.items())): value} from one scrape."""
        out = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def value(self, name: str, **labels):
        """One sample's value from a fresh scrape (None when absent)."""
        return self.metrics().get((name, frozenset(labels.items())))

    def wait_value(self, name: str, expected, timeout: float = 5.0, **labels):
        """Polls until the sample equals `expected` (state that settles asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.value(name, **labels)
            if got == expected:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}{labels} is {got}, expected {expected}")
            time.sleep(0.05)

    def queue(self, name: str) -> dict:
        status, body = self.get(f"/api/queues/{name}")
        assert status == 200, body
        return body


@pytest.fixture
def admin():
    return Admin


@pytest.fixture
def cli():
    def run(gw, *args, admin_url: str | None = None):
        url = admin_url or f"http://{gw.host}:{gw.admin_port}"
        return subprocess.run(
            [str(gateway_binary()), "--admin", url, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    return run
