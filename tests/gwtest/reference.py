"""Opt-in reference mode: run the black-box suite against real ActiveMQ 5.17 instead of our gateway.

Off by default: `./scripts/test` and plain `pytest tests/` always test our `gateway` binary.

    STOMP_REFERENCE=activemq pytest tests/          # a fresh ActiveMQ process per test
    STOMP_REFERENCE=activemq STOMP_REFERENCE_PORT=61613 pytest tests/
                                                    # an ActiveMQ you started yourself

With `STOMP_REFERENCE=activemq` alone, `make_gateway()` starts a private ActiveMQ (Debian's
`activemq` package, /usr/share/activemq) in the test's temp directory: its own `activemq.xml`
with only a STOMP connector on 127.0.0.1 and a free port, KahaDB persistence in the test's
directory, no JMX, no web console. `kill()` (SIGKILL), `terminate()` (SIGTERM) and `restart()`
work as for the gateway, on the same port and data, so the durability tests run too. A cold
JVM starts in about 2 s.

The gateway config the tests ask for is translated where ActiveMQ has an equivalent (see
`_translate`); a test that needs a gateway setting ActiveMQ cannot express is skipped with the
reason. Tests of our command line (check-config, flags) are skipped in this mode.

With `STOMP_REFERENCE_PORT` the tests share one broker you run (state leaks between tests:
queue names and the DLQ are reused across tests, so expect spurious failures; prefer the
per-test mode). Tests that kill/restart the broker or need config are skipped there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ACTIVEMQ_HOME = Path(os.environ.get("ACTIVEMQ_HOME", "/usr/share/activemq"))
READY_TIMEOUT = 60.0


def mode() -> str | None:
    """"activemq" when the suite runs against ActiveMQ, else None (our gateway)."""
    value = os.environ.get("STOMP_REFERENCE", "").strip().lower()
    if not value:
        return None
    if value != "activemq":
        raise pytest.UsageError(f"STOMP_REFERENCE={value!r}: only 'activemq' is supported")
    return value


def skip_unless_gateway(why: str):
    """Skip the current test in reference mode (it tests something only our gateway has)."""
    if mode():
        pytest.skip(f"reference mode ({mode()}): {why}")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Unsupported(Exception):
    """A gateway setting with no ActiveMQ equivalent."""


def _translate(overrides: dict | None, extra_toml: str) -> tuple[dict, dict]:
    """Gateway config -> (stomp connector URI options, <policyEntry> attributes for all destinations).

    Equivalents used:
      listeners.stomp.max_frame_bytes     -> wireFormat.maxFrameSize
      listeners.stomp.connect_timeout_ms  -> transport.connectAttemptTimeout
      broker.expiry_check_interval_ms     -> policyEntry expireMessagesPeriod
      broker.max_redeliveries = -1, broker.dead_letter_queue = "ActiveMQ.DLQ",
      listeners.stomp.heartbeat_min_ms    -> nothing to do (ActiveMQ's own defaults / behaviour)
    Anything else raises Unsupported.
    """
    uri: dict[str, str] = {}
    policy: dict[str, str] = {}
    o = overrides or {}
    for section, values in o.items():
        for key, value in (values or {}).items():
            if section == "listeners" and key == "stomp":
                for k, v in value.items():
                    if k == "max_frame_bytes":
                        uri["wireFormat.maxFrameSize"] = str(v)
                    elif k == "connect_timeout_ms":
                        uri["transport.connectAttemptTimeout"] = str(v)
                    elif k == "heartbeat_min_ms":
                        pass
                    else:
                        raise Unsupported(
                            f"listeners.stomp.{k}: ActiveMQ's STOMP limits on header count (1000) and "
                            f"header length (10240) are fixed in StompWireFormat, not configurable"
                            if k in ("max_headers", "max_header_bytes")
                            else f"listeners.stomp.{k} has no ActiveMQ equivalent here"
                        )
            elif section == "broker" and key == "expiry_check_interval_ms":
                policy["expireMessagesPeriod"] = str(value)
            elif section == "broker" and (key, value) in (("max_redeliveries", -1), ("dead_letter_queue", "ActiveMQ.DLQ")):
                pass
            else:
                raise Unsupported(f"{section}.{key} = {value!r} has no ActiveMQ equivalent here")
    if extra_toml.strip():
        raise Unsupported(
            "per-destination gateway policies ([[broker.destinations]]: message-count flow control, "
            "per-destination redelivery limits) have no like-for-like activemq.xml translation here:\n"
            + extra_toml.strip()
        )
    return uri, policy


ACTIVEMQ_XML = """\
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="reference" useJmx="false"
          persistent="true" dataDirectory="{data}" schedulerSupport="false">
    <destinationPolicy>
      <policyMap>
        <policyEntries>
          <policyEntry queue=">" {policy}/>
          <policyEntry topic=">" {policy}/>
        </policyEntries>
      </policyMap>
    </destinationPolicy>
    <persistenceAdapter>
      <kahaDB directory="{data}/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="{uri}"/>
    </transportConnectors>
  </broker>
</beans>
"""

LOG4J = """\
log4j.rootLogger=INFO, out
log4j.logger.org.apache.activemq.transport.stomp=INFO
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n
"""


class ActiveMQ:
    """One ActiveMQ process (and its restarts) with the interface of gwtest.gateway.Gateway."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, overrides: dict | None = None, extra_toml: str = ""):
        try:
            uri_opts, policy = _translate(overrides, extra_toml)
        except Unsupported as e:
            pytest.skip(f"reference mode (activemq): {e}")
        if not (ACTIVEMQ_HOME / "bin" / "activemq.jar").is_file():
            pytest.fail(
                f"STOMP_REFERENCE=activemq but {ACTIVEMQ_HOME}/bin/activemq.jar is missing: "
                f"`apt-get install -y activemq` (Debian, 5.17.x)",
                pytrace=False,
            )
        self.workdir = Path(workdir)
        self.conf_dir = self.workdir / "conf"
        self.data_dir = self.workdir / "data"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stomp_port = _free_port(self.host)
        self.log_path = self.workdir / "activemq.log"
        self.config_path = self.conf_dir / "activemq.xml"
        uri = f"stomp://{self.host}:{self.stomp_port}"
        if uri_opts:
            uri += "?" + "&amp;".join(f"{k}={v}" for k, v in uri_opts.items())
        policy_attrs = " ".join(f'{k}="{v}"' for k, v in policy.items())
        self.config_path.write_text(ACTIVEMQ_XML.format(data=self.data_dir, uri=uri, policy=policy_attrs))
        (self.conf_dir / "log4j.properties").write_text(LOG4J)
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self._stopped_on_purpose = False

    def _command(self) -> list[str]:
        return [
            os.environ.get("JAVA", "java"),
            "-Xms128M",
            "-Xmx512M",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
            f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.base={self.workdir}",
            f"-Dactivemq.conf={self.conf_dir}",
            f"-Dactivemq.data={self.data_dir}",
            "-jar",
            str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
            "start",
            f"xbean:file:{self.config_path}",
        ]

    # -- lifecycle (same contract as Gateway) --

    def start(self, timeout: float = READY_TIMEOUT) -> "ActiveMQ":
        if self.running:
            raise AssertionError("activemq already running")
        self.runs += 1
        cmd = self._command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== run {self.runs}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        self._stopped_on_purpose = False
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise AssertionError(f"activemq exited with {code} while starting\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.stomp_port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"activemq not listening within {timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> int:
        assert self.proc is not None, "activemq never started"
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None, "activemq never started"
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"activemq still running {timeout:.0f}s after SIGTERM (killed it)")

    def restart(self, timeout: float = READY_TIMEOUT) -> "ActiveMQ":
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
        return text if len(text) <= max_chars else "[...]\n" + text[-max_chars:]

    def problems(self) -> list[str]:
        if self.proc is not None and not self._stopped_on_purpose and self.proc.poll() is not None:
            return [f"activemq exited unexpectedly with code {self.proc.poll()} during the test"]
        return []

    def stop_quietly(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self._stopped_on_purpose = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __repr__(self):
        return f"<ActiveMQ {self.host}:{self.stomp_port} dir={self.workdir}>"


class ExternalBroker:
    """A broker someone else runs (STOMP_REFERENCE_PORT): no lifecycle, no config."""

    def __init__(self, workdir: Path, overrides: dict | None = None, extra_toml: str = ""):
        if overrides or extra_toml.strip():
            pytest.skip("reference mode with STOMP_REFERENCE_PORT: the test needs broker config")
        self.host = os.environ.get("STOMP_REFERENCE_HOST", "127.0.0.1")
        self.stomp_port = int(os.environ["STOMP_REFERENCE_PORT"])
        self.workdir = Path(workdir)
        self.log_path = Path("(external broker: no log)")

    def start(self, timeout: float = READY_TIMEOUT):
        return self

    def kill(self, *args, **kwargs):
        pytest.skip("reference mode with STOMP_REFERENCE_PORT: cannot kill/restart an external broker")

    terminate = restart = kill

    running = True

    def log_text(self) -> str:
        return ""

    def log_tail(self, max_chars: int = 8000) -> str:
        return ""

    def problems(self) -> list[str]:
        return []

    def stop_quietly(self):
        pass


def broker_class():
    """The class make_gateway should use: ActiveMQ, ExternalBroker, or None for our gateway."""
    if not mode():
        return None
    if os.environ.get("STOMP_REFERENCE_PORT"):
        return ExternalBroker
    return ActiveMQ
