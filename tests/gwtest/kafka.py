"""Helpers for the Kafka black-box tests (tests/kafka): kcat group members, waiting, and raw
Kafka frames for the tests that must send what no client would."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

KCAT = shutil.which("kcat")


def wait_for_port(host: str, port: int, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)



def restart(gw):
    """SIGTERM the gateway, start it again on the same data, wait for the Kafka port."""
    gw.restart()
    wait_for_port(gw.host, gw.kafka_port)



def json_records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class KcatMember:
    """One `kcat -G` consumer-group member running in the background."""

    ASSIGNED = re.compile(r"rebalanced \(memberid [^)]*\): assigned: (.*)$")

    def __init__(self, gw, group: str, topic: str, workdir: Path, name: str, extra=()):
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [KCAT, "-b", gw.bootstrap, "-G", group, "-J", "-u",
             "-X", "auto.offset.reset=earliest", "-X", "enable.partition.eof=false",
             *extra, topic],
            stdout=self.out,
            stderr=self.err,
        )

    @property
    def assignment(self) -> set[int] | None:
        """The partitions of the latest assignment, None before the first, or after a revoke."""
        current = None
        for line in self.err_path.read_text(errors="replace").splitlines():
            m = self.ASSIGNED.search(line)
            if m:
                current = {int(p) for p in re.findall(r"\[(\d+)\]", m.group(1))}
            elif "revoked:" in line:
                current = None
        return current

    def records(self) -> list[dict]:
        return json_records(self.out_path.read_text(errors="replace"))

    def stop(self, timeout: float = 15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")



def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
