"""A raw-socket STOMP peer for the cases a real client library cannot express.

`RawStomp` writes exact bytes and parses what comes back into `Frame`s, honouring
`content-length` (bodies with NUL bytes), skipping and timing heart-beat EOLs, and unescaping
header values in 1.1/1.2 (except on CONNECTED, as the spec says).
"""

from __future__ import annotations

import socket
import time
import uuid

_UNESCAPE_11 = {b"n": b"\n", b"c": b":", b"\\": b"\\"}
_UNESCAPE_12 = {**_UNESCAPE_11, b"r": b"\r"}


def _escape(value: str, version: str) -> str:
    if version == "1.0":
        return value
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
    if version == "1.2":
        value = value.replace("\r", "\\r")
    return value


def _unescape(raw: bytes, version: str) -> bytes:
    if version == "1.0" or b"\\" not in raw:
        return raw
    table = _UNESCAPE_12 if version == "1.2" else _UNESCAPE_11
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i : i + 1]
        if c == b"\\" and i + 1 < len(raw) and raw[i + 1 : i + 2] in table:
            out += table[raw[i + 1 : i + 2]]
            i += 2
        else:
            out += c
            i += 1
    return bytes(out)


def new_id(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Frame:
    def __init__(self, command: str, header_list: list[tuple[str, str]], body: bytes):
        self.command = command
        self.header_list = header_list
        # Repeated headers: the first one wins (STOMP 1.2).
        self.headers: dict[str, str] = {}
        for k, v in header_list:
            self.headers.setdefault(k, v)
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def __repr__(self):
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"Frame({self.command!r}, {self.headers!r}, {body!r})"


class Closed(AssertionError):
    """The server closed the connection while we were waiting for a frame."""


class RawStomp:
    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = host
        self.timeout = timeout
        self.buf = b""
        self.version = "1.0"  # what the parser assumes until CONNECTED says otherwise
        self.eof = False
        self.heartbeats: list[float] = []  # monotonic arrival time of every heart-beat EOL
        self.pending: list[Frame] = []  # frames read while waiting for something else

    # -- writing --

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def encode(self, command: str, headers=(), body: bytes | str = b"", escape: bool = True) -> bytes:
        if isinstance(body, str):
            body = body.encode("utf-8")
        items = headers.items() if isinstance(headers, dict) else headers
        out = [command.encode()]
        for k, v in items:
            k, v = str(k), str(v)
            if escape and command not in ("CONNECT", "STOMP"):
                k, v = _escape(k, self.version), _escape(v, self.version)
            out.append(f"{k}:{v}".encode("utf-8"))
        return b"\n".join(out) + b"\n\n" + body + b"\x00"

    def send_frame(self, command: str, headers=(), body: bytes | str = b"", escape: bool = True):
        self.send_raw(self.encode(command, headers, body, escape))

    # -- reading --

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on timeout. Sets self.eof (and returns True) on close."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return True

    def _parse_one(self) -> Frame | None:
        # Heart-beats (EOLs between frames).
        while self.buf[:1] == b"\n" or self.buf[:2] == b"\r\n":
            self.heartbeats.append(time.monotonic())
            self.buf = self.buf[1:] if self.buf[:1] == b"\n" else self.buf[2:]
        end = self.buf.find(b"\n\n")
        end_crlf = self.buf.find(b"\r\n\r\n")
        if end < 0 and end_crlf < 0:
            return None
        if end < 0 or (0 <= end_crlf < end):
            head, body_start = self.buf[:end_crlf], end_crlf + 4
        else:
            head, body_start = self.buf[:end], end + 2
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]
        command = lines[0].decode("utf-8", errors="replace")
        version = "1.0" if command == "CONNECTED" else self.version
        header_list = []
        for line in lines[1:]:
            k, sep, v = line.partition(b":")
            if not sep:
                raise AssertionError(f"malformed header line from server: {line!r} in {head!r}")
            header_list.append(
                (_unescape(k, version).decode("utf-8"), _unescape(v, version).decode("utf-8"))
            )
        length = None
        for k, v in header_list:
            if k == "content-length":
                length = int(v)
                break
        if length is not None:
            if len(self.buf) < body_start + length + 1:
                return None
            body = self.buf[body_start : body_start + length]
            if self.buf[body_start + length : body_start + length + 1] != b"\x00":
                raise AssertionError(f"frame body not followed by NUL (content-length {length})")
            self.buf = self.buf[body_start + length + 1 :]
        else:
            nul = self.buf.find(b"\x00", body_start)
            if nul < 0:
                return None
            body = self.buf[body_start:nul]
            self.buf = self.buf[nul + 1 :]
        # One EOL that came with the frame, right after its NUL, is padding, not a heart-beat
        # (ActiveMQ writes every frame as ...NUL LF; STOMP allows EOLs after the NUL).
        if self.buf[:1] == b"\n":
            self.buf = self.buf[1:]
        elif self.buf[:2] == b"\r\n":
            self.buf = self.buf[2:]
        frame = Frame(command, header_list, body)
        if command == "CONNECTED":
            self.version = frame.headers.get("version", "1.0")
        return frame

    def recv_frame(self, timeout: float | None = None) -> Frame:
        """The next frame off the wire (heart-beats are skipped and recorded)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._parse_one()
            if frame is not None:
                return frame
            if self.eof:
                raise Closed(f"connection closed by the server; unparsed bytes: {self.buf[:300]!r}")
            if not self._fill(deadline):
                raise AssertionError(
                    f"no frame within {timeout if timeout is not None else self.timeout}s; "
                    f"buffered: {self.buf[:300]!r}"
                )

    def next_frame(self, timeout: float | None = None) -> Frame:
        """Like recv_frame, but frames stashed by wait_receipt come first."""
        if self.pending:
            return self.pending.pop(0)
        return self.recv_frame(timeout)

    def expect(self, command: str, timeout: float | None = None) -> Frame:
        frame = self.next_frame(timeout)
        assert frame.command == command, f"expected {command}, got {frame!r}"
        return frame

    def wait_receipt(self, receipt_id: str, timeout: float | None = None) -> Frame:
        """Read until RECEIPT receipt-id; MESSAGEs read meanwhile are kept for next_frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.command == "RECEIPT" and frame.headers.get("receipt-id") == receipt_id:
                return frame
            if frame.command == "ERROR":
                raise AssertionError(f"ERROR while waiting for receipt {receipt_id}: {frame!r}")
            self.pending.append(frame)

    def request(self, command: str, headers=None, body: bytes | str = b"") -> Frame:
        """Send a frame with a fresh receipt header and wait for its RECEIPT."""
        rid = new_id()
        hdrs = list((headers or {}).items()) if isinstance(headers, dict) or headers is None else list(headers)
        hdrs.append(("receipt", rid))
        self.send_frame(command, hdrs, body)
        return self.wait_receipt(rid)

    def expect_no_frame(self, wait: float = 0.5):
        if self.pending:
            raise AssertionError(f"unexpected frame: {self.pending[0]!r}")
        try:
            frame = self.recv_frame(wait)
        except Closed:
            raise
        except AssertionError:
            return
        raise AssertionError(f"unexpected frame: {frame!r}")

    def expect_closed(self, timeout: float | None = None) -> list[Frame]:
        """Wait until the server closes the connection; returns the frames it sent first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames = list(self.pending)
        self.pending.clear()
        while True:
            try:
                while True:
                    frame = self._parse_one()
                    if frame is None:
                        break
                    frames.append(frame)
            except AssertionError:
                # Bytes that are not a frame (e.g. half a frame then close): fine here.
                self.buf = b""
            if self.eof:
                return frames
            if not self._fill(deadline):
                raise AssertionError(
                    f"server did not close the connection within "
                    f"{timeout if timeout is not None else self.timeout}s (frames: {frames!r})"
                )

    def is_closed_by_peer(self, wait: float = 0.2) -> bool:
        try:
            self.expect_closed(wait)
            return True
        except AssertionError:
            return False

    # -- session helpers --

    def connect(
        self,
        version: str | None = "1.2",
        command: str = "CONNECT",
        heart_beat: str | None = None,
        headers: dict | None = None,
        expect: str = "CONNECTED",
    ) -> Frame:
        """CONNECT (accept-version omitted when version is None) and expect `expect`."""
        hdrs = {}
        if version is not None:
            hdrs["accept-version"] = version
            hdrs["host"] = "localhost"
        if heart_beat is not None:
            hdrs["heart-beat"] = heart_beat
        hdrs.update(headers or {})
        self.send_frame(command, hdrs)
        frame = self.recv_frame()
        assert frame.command == expect, f"expected {expect} in answer to {command}, got {frame!r}"
        return frame

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
