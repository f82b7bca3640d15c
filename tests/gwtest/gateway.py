"""Start, stop, kill and restart the real `gateway` binary for a test.

A `Gateway` owns one directory: its config file (`gateway.toml`), its data directory
(`data/`) and its log (`gateway.log`, stdout and stderr of every run, appended).
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = "target/release/gateway"
READY_TIMEOUT = 20.0


class GatewayError(AssertionError):
    """The gateway could not be found, did not start, or misbehaved while starting/stopping."""


def gateway_binary() -> Path:
    """The binary under test: $GATEWAY_BIN (relative paths are from the repo root)."""
    raw = os.environ.get("GATEWAY_BIN") or DEFAULT_BINARY
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def check_binary() -> Path:
    path = gateway_binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise GatewayError(
            f"gateway binary not found (or not executable) at {path}. Build it with "
            f"`cargo build --release -p gateway`, or point GATEWAY_BIN at it "
            f"(./scripts/test does both)."
        )
    return path


# Ports handed out to listeners come from below the kernel's ephemeral range (32768-60999 on
# Linux): a port the kernel picked for us would also be a candidate for the source port of any
# client connection made before the gateway binds it ("Address already in use"). Each process
# walks its ports in a cycle, so a port comes back only after every other one has been handed
# out (thousands of gateways later: the gateway it was given to is long gone, and a port still
# bound or in TIME_WAIT fails the bind test and is skipped). Under pytest-xdist each worker draws
# from its own residue class, so that two workers never race for the same port.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
_LISTENER_PORTS = range(20000 + _WORKER % _WORKERS, 32000, _WORKERS)
_next_port = random.randrange(len(_LISTENER_PORTS))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, outside the ephemeral range, handed out again
    only after every other port of this process's range."""
    global _next_port
    for _ in range(len(_LISTENER_PORTS)):
        port = _LISTENER_PORTS[_next_port % len(_LISTENER_PORTS)]
        _next_port += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise GatewayError("no free listener port in 20000-31999")


# --- a tiny TOML writer (tomllib only reads) -------------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(str(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def to_toml(doc: dict) -> str:
    """Render nested dicts as TOML: tables for dicts, [[arrays]] for lists of dicts."""
    lines: list[str] = []

    def table(path: str, t: dict, header: str | None):
        scalars = [(k, v) for k, v in t.items() if not isinstance(v, dict) and not _is_table_array(v)]
        if header is not None and (scalars or header.startswith("[[")):
            lines.append(header)
        for k, v in scalars:
            lines.append(f"{k} = {_toml_value(v)}")
        if scalars:
            lines.append("")
        for k, v in t.items():
            sub = f"{path}.{k}" if path else k
            if isinstance(v, dict):
                table(sub, v, f"[{sub}]")
            elif _is_table_array(v):
                for item in v:
                    table(sub, item, f"[[{sub}]]")

    table("", doc, None)
    return "\n".join(lines) + "\n"


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --- the process ----------------------------------------------------------------------------


class Gateway:
    """One gateway process (and its restarts) on a fixed config, ports and data directory."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, overrides: dict | None = None, extra_toml: str = ""):
        self.binary = check_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stomp_port = free_port(self.host)
        # Every listener gets a free port: defaults are fixed ports (1883, ...) that would clash.
        self.mqtt_port = getattr(self, "mqtt_port", None) or free_port(self.host)
        self.admin_port = getattr(self, "admin_port", None) or free_port(self.host)
        self.kafka_port = getattr(self, "kafka_port", None) or free_port(self.host)
        self.amqp_port = getattr(self, "amqp_port", None) or free_port(self.host)
        self.openwire_port = getattr(self, "openwire_port", None) or free_port(self.host)
        # The TLS twins (started only when a test configures [tls]) get free ports too: their
        # defaults (61614, 8883, 5671, 61617, 9093, 8162) would clash between gateways.
        self.tls_ports = {
            name: free_port(self.host)
            for name in ("stomp", "mqtt", "amqp", "openwire", "kafka", "admin")
        }
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "gateway.toml"
        self.log_path = self.workdir / "gateway.log"
        base = {
            "server": {"data_dir": str(self.data_dir)},
            "listeners": {
                "stomp": {"bind": f"{self.host}:{self.stomp_port}", "heartbeat_min_ms": 100,
                          "tls_bind": f"{self.host}:{self.tls_ports['stomp']}"},
                "mqtt": {"bind": f"{self.host}:{self.mqtt_port}",
                         "tls_bind": f"{self.host}:{self.tls_ports['mqtt']}"},
                "kafka": {"bind": f"{self.host}:{self.kafka_port}",
                          "tls_bind": f"{self.host}:{self.tls_ports['kafka']}"},
                "amqp": {"bind": f"{self.host}:{self.amqp_port}",
                         "tls_bind": f"{self.host}:{self.tls_ports['amqp']}"},
                "openwire": {"bind": f"{self.host}:{self.openwire_port}",
                             "tls_bind": f"{self.host}:{self.tls_ports['openwire']}"},
            },
            # ActiveMQ 5.17 has no broker-side redelivery limit for STOMP consumers (the "6" is
            # the OpenWire JMS client's RedeliveryPolicy): unlimited is the equivalent.
            "broker": {"max_redeliveries": -1, "dead_letter_queue": "ActiveMQ.DLQ"},
            "admin": {"bind": f"{self.host}:{self.admin_port}",
                      "tls_bind": f"{self.host}:{self.tls_ports['admin']}"},
        }
        self.config = deep_merge(base, overrides or {})
        text = to_toml(self.config)
        if extra_toml:
            text += "\n" + extra_toml.strip() + "\n"
        self.config_path.write_text(text)
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        # Set when the test itself stopped the process (kill/terminate), so teardown does not
        # report that as a crash.
        self._stopped_on_purpose = False

    # -- lifecycle --

    def start(self, timeout: float = READY_TIMEOUT) -> "Gateway":
        if self.running:
            raise GatewayError("gateway already running")
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== run {self.runs}: {self.binary} --config {self.config_path}\n".encode())
            log.flush()
            env = dict(os.environ, RUST_BACKTRACE="1")
            self.proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )
        self._stopped_on_purpose = False
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        stomp_up = False
        while True:
            code = self.proc.poll()
            if code is not None:
                raise GatewayError(
                    f"gateway exited with code {code} before accepting STOMP connections on "
                    f"{self.host}:{self.stomp_port}\n--- config {self.config_path} ---\n"
                    f"{self.config_path.read_text()}--- log {self.log_path} ---\n{self.log_tail()}"
                )
            if not stomp_up:
                try:
                    with socket.create_connection((self.host, self.stomp_port), timeout=0.5):
                        stomp_up = True
                except OSError:
                    pass
            # STOMP binds first (probed once); /readyz answers 200 once every listener is bound.
            if stomp_up and self._admin_ready():
                return
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise GatewayError(
                    f"gateway did not accept STOMP connections on {self.host}:{self.stomp_port} "
                    f"within {timeout:.0f}s\n--- log {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _admin_ready(self) -> bool:
        """True once /readyz says so (or when the admin listener is disabled)."""
        admin = self.config.get("admin", {})
        if not admin.get("enabled", True):
            return True
        try:
            with urllib.request.urlopen(f"http://{admin['bind']}/readyz", timeout=0.5) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> int:
        """SIGKILL (a crash: nothing gets flushed) and reap. Returns the exit status."""
        assert self.proc is not None, "gateway never started"
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit; returns the exit code (negative = killed by a signal).

        Raises GatewayError (after a SIGKILL) when the process is still alive after `timeout`.
        """
        assert self.proc is not None, "gateway never started"
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise GatewayError(
                f"gateway still running {timeout:.0f}s after SIGTERM (killed it)\n"
                f"--- log ---\n{self.log_tail()}"
            ) from None

    def restart(self, timeout: float = READY_TIMEOUT) -> "Gateway":
        """Start again on the same config, ports and data (SIGTERM first if still running)."""
        if self.running:
            self.terminate()
        return self.start(timeout)

    # -- diagnostics --

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, max_chars: int = 8000) -> str:
        text = self.log_text()
        if len(text) > max_chars:
            text = "[...]\n" + text[-max_chars:]
        return text

    def problems(self) -> list[str]:
        """What teardown should report: an unexpected exit, or a panic in the log."""
        out = []
        if self.proc is not None and not self._stopped_on_purpose:
            code = self.proc.poll()
            if code is not None:
                out.append(f"gateway exited unexpectedly with code {code} during the test")
        if "panicked" in self.log_text():
            out.append("gateway log contains a panic")
        return out

    def stop_quietly(self):
        """Teardown: SIGTERM, then SIGKILL if it hangs; never raises."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._stopped_on_purpose = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __repr__(self):
        return f"<Gateway {self.host}:{self.stomp_port} dir={self.workdir}>"
