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


# --- raw frames, for what no client sends ---------------------------------------------------


def kstr(s: str | None) -> bytes:
    """A classic (non-compact) nullable string."""
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def kbytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


class RawKafka:
    """A raw-socket Kafka peer: sends hand-built request frames, reads size-prefixed frames."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.correlation = 0

    def send_frame(self, payload: bytes):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def request(self, api_key: int, version: int, body: bytes, flexible: bool = False) -> int:
        """Sends a request with header v1 (v2 when flexible); returns its correlation id."""
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + kstr("raw-test")
        if flexible:
            header += b"\x00"
        self.send_frame(header + body)
        return self.correlation

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def read_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._exact(4))
        return self._exact(size)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the peer closes the connection (reads until EOF or timeout)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def join_group_v5(group: str, member_id: str, metadata: bytes = b"\x00\x01") -> bytes:
    """A JoinGroup v5 body: group, session 10 s, rebalance 10 s, member, no instance id,
    protocol type `consumer`, one protocol `range`."""
    return (
        kstr(group)
        + struct.pack(">ii", 10_000, 10_000)
        + kstr(member_id)
        + kstr(None)
        + kstr("consumer")
        + struct.pack(">i", 1)
        + kstr("range")
        + kbytes(metadata)
    )


def parse_join_response_v5(frame: bytes) -> dict:
    """correlation id, throttle, error, generation, protocol, leader, member id, members."""
    corr, throttle, err, gen = struct.unpack(">iihi", frame[:14])
    pos = 14

    def read_str():
        nonlocal pos
        (n,) = struct.unpack(">h", frame[pos:pos + 2])
        pos += 2
        s = frame[pos:pos + n].decode() if n >= 0 else None
        pos += max(n, 0)
        return s

    protocol = read_str()
    leader = read_str()
    member = read_str()
    (count,) = struct.unpack(">i", frame[pos:pos + 4])
    return {"correlation": corr, "error": err, "generation": gen, "protocol": protocol,
            "leader": leader, "member_id": member, "members": count}


# --- SASL: users with both an argon2 hash and a SCRAM-SHA-256 credential --------------------


def scram_credential(password: str) -> str:
    """The credential `gateway hash-password --scram` prints for `password` (on stdin)."""
    from gwtest.gateway import check_binary

    out = subprocess.run(
        [str(check_binary()), "hash-password", "--scram"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def sasl_users_toml(users: dict, scram: bool = True) -> str:
    """`[[users]]` tables for Kafka SASL tests: `users` maps a name to (password, [groups]);
    each user gets the argon2 `password_hash` (PLAIN) and, with `scram`, a `scram_sha256`."""
    from gwtest.security import hash_password

    out = []
    for name, (password, groups) in users.items():
        out.append("[[users]]")
        out.append(f'name = "{name}"')
        out.append(f'password_hash = "{hash_password(password)}"')
        if scram:
            out.append(f'scram_sha256 = "{scram_credential(password)}"')
        out.append("groups = [" + ", ".join(f'"{g}"' for g in groups) + "]")
        out.append("")
    return "\n".join(out)


def sasl_handshake(raw: "RawKafka", mechanism: str, version: int = 1) -> tuple[int, list[str]]:
    """Sends SaslHandshake; returns (error code, enabled mechanisms)."""
    raw.request(17, version, kstr(mechanism))
    frame = raw.read_frame()
    (err,) = struct.unpack(">h", frame[4:6])
    (count,) = struct.unpack(">i", frame[6:10])
    pos, mechanisms = 10, []
    for _ in range(count):
        (n,) = struct.unpack(">h", frame[pos:pos + 2])
        mechanisms.append(frame[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
    return err, mechanisms


def sasl_authenticate_v1(raw: "RawKafka", token: bytes) -> tuple[int, str | None, bytes]:
    """Sends SaslAuthenticate v1; returns (error code, error message, server token)."""
    raw.request(36, 1, kbytes(token))
    frame = raw.read_frame()
    (err,) = struct.unpack(">h", frame[4:6])
    (n,) = struct.unpack(">h", frame[6:8])
    pos = 8
    message = None
    if n >= 0:
        message = frame[pos:pos + n].decode()
        pos += n
    (size,) = struct.unpack(">i", frame[pos:pos + 4])
    return err, message, frame[pos + 4:pos + 4 + size]
