"""Fixtures for the OpenWire black-box tests: the real ActiveMQ 5.17 JMS client against the gateway.

- `jms(gw=None)`: a `JmsProbe` runner for the gateway's OpenWire port (see java/JmsProbe.java):
  `jms().run("send", "queue:orders", "hello")` runs the compiled program with
  `java -XX:TieredStopAtLevel=1` and returns a `ProbeResult` (exit code, output lines, parsed
  `RECEIVED` lines). `url_options` adds `?...` options to the `tcp://` URL (e.g.
  `wireFormat.version=6`).

The program is compiled once per source version with `javac` against Debian's jars in
/usr/share/java (`libactivemq-java` and friends, installed by scripts/install-test-deps) into a
cache directory keyed by the source's hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "java" / "JmsProbe.java"
JARS = [
    "activemq-client.jar",
    # OpenWire versions 2 to 8 live in the legacy jar.
    "activemq-openwire-legacy.jar",
    "geronimo-jms_1.1_spec.jar",
    "geronimo-j2ee-management-1.1-spec.jar",
    "hawtbuf.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
]
JAR_DIR = Path(os.environ.get("JMS_JAR_DIR", "/usr/share/java"))


def classpath() -> str:
    missing = [j for j in JARS if not (JAR_DIR / j).is_file()]
    if missing or shutil.which("javac") is None or shutil.which("java") is None:
        pytest.fail(
            f"OpenWire tests need a JDK and the ActiveMQ client jars ({', '.join(missing) or 'javac'} "
            f"missing in {JAR_DIR}): run scripts/install-test-deps as root",
            pytrace=False,
        )
    return ":".join(str(JAR_DIR / j) for j in JARS)


def compiled_probe() -> Path:
    """Compiles JmsProbe.java once per source version; returns the classes directory."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"gateway-jmsprobe-{digest}"
    if (out / "JmsProbe.class").is_file():
        return out
    staging = Path(tempfile.mkdtemp(prefix="gateway-jmsprobe-build-"))
    run = subprocess.run(
        ["javac", "-nowarn", "-cp", classpath(), "-d", str(staging), str(SOURCE)],
        capture_output=True, text=True, timeout=180,
    )
    if run.returncode != 0:
        pytest.fail(f"javac failed:\n{run.stdout}{run.stderr}", pytrace=False)
    try:
        staging.rename(out)
    except OSError:
        # Another test process compiled it meanwhile.
        shutil.rmtree(staging, ignore_errors=True)
    return out


RECEIVED = re.compile(
    r"RECEIVED type=(?P<type>\S+) text=(?P<text>.*?) redelivered=(?P<redelivered>\S+) "
    r"persistent=(?P<persistent>\S+) priority=(?P<priority>\d+) correlation=(?P<correlation>\S*) "
    r"props=(?P<props>.*?)(?: \|\| (?P<detail>.*))?$"
)


DETAIL = re.compile(
    r"id=(?P<id>\S+) jmstype=(?P<jms_type>\S+) timestamp=(?P<timestamp>-?\d+) "
    r"expiration=(?P<expiration>-?\d+) replyto=(?P<reply_to>\S+) body=(?P<body>.*)$"
)
SENT = re.compile(r"SENT id=(?P<id>\S+) timestamp=(?P<timestamp>-?\d+) expiration=(?P<expiration>-?\d+)$")


@dataclass
class Received:
    type: str
    text: str
    redelivered: bool
    persistent: bool
    priority: int
    correlation: str | None
    props: dict = field(default_factory=dict)
    # From the end of the RECEIVED line (after " || ").
    message_id: str | None = None
    jms_type: str | None = None
    timestamp: int = 0
    expiration: int = 0
    reply_to: str | None = None
    # "bytes:<hex>", "map:<name=Class:value,...>", "stream:<Class:value,...>", "object:..." or "-".
    body: str = "-"


def _unescape(text: str) -> str:
    # JmsProbe prints non-ASCII UTF-16 units as \\uXXXX.
    raw = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("utf-16", "surrogatepass").decode("utf-16")


@dataclass
class ProbeResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def received(self) -> list[Received]:
        out = []
        for line in self.lines:
            m = RECEIVED.match(line)
            if not m:
                continue
            props = {}
            for item in filter(None, m.group("props").split(";")):
                name, _, typed = item.partition("=")
                props[name] = typed
            out.append(Received(
                type=m.group("type"),
                text=_unescape(m.group("text")),
                redelivered=m.group("redelivered") == "true",
                persistent=m.group("persistent") == "true",
                priority=int(m.group("priority")),
                correlation=None if m.group("correlation") == "null" else m.group("correlation"),
                props=props,
            ))
            d = DETAIL.match(m.group("detail") or "")
            if d:
                last = out[-1]
                last.message_id = d.group("id")
                last.jms_type = None if d.group("jms_type") == "null" else _unescape(d.group("jms_type"))
                last.timestamp = int(d.group("timestamp"))
                last.expiration = int(d.group("expiration"))
                last.reply_to = None if d.group("reply_to") == "null" else d.group("reply_to")
                last.body = _unescape(d.group("body"))
        return out

    @property
    def sent(self) -> list[dict]:
        """The SENT lines (capture): JMSMessageID, timestamp and expiration the client set."""
        return [
            {"id": m.group("id"), "timestamp": int(m.group("timestamp")),
             "expiration": int(m.group("expiration"))}
            for m in map(SENT.match, self.lines) if m
        ]

    def ok(self, step: str) -> bool:
        return any(line.startswith(f"OK {step}") for line in self.lines)

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"


class Jms:
    def __init__(self, host: str, port: int, url_options: str = ""):
        self.url = f"tcp://{host}:{port}" + (f"?{url_options}" if url_options else "")
        self.classes = compiled_probe()
        self.classpath = classpath() + ":" + str(self.classes)

    def run(self, scenario: str, *args: str, timeout: float = 50) -> ProbeResult:
        try:
            proc = subprocess.run(
                ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
                 "-cp", classpath() + ":" + str(self.classes), "JmsProbe", self.url, scenario, *args],
                capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"JmsProbe {scenario} {args} hung for {timeout}s:\n{e.stdout}\n{e.stderr}",
                        pytrace=False)
        return ProbeResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def jms(request, make_gateway):
    """Factory: jms(gw=None, url_options="") -> Jms runner for the gateway's OpenWire port."""

    def make(gw=None, url_options: str = "") -> Jms:
        gw = gw or request.getfixturevalue("gateway")
        return Jms(gw.host, gw.openwire_port, url_options)

    return make
