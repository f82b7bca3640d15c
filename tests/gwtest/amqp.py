"""A raw-socket AMQP 0-9-1 peer for the tests pika cannot express: bad frames, AMQPLAIN,
silent peers, exact reply codes. Frames are built by hand from the 0-9-1 specification."""

from __future__ import annotations

import socket
import struct
import time

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


def shortstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def table_entries(entries: dict) -> bytes:
    """Field-table entries (no length prefix); string values only ('S')."""
    out = b""
    for k, v in entries.items():
        out += shortstr(k) + b"S" + longstr(v)
    return out


def table(entries: dict) -> bytes:
    body = table_entries(entries)
    return struct.pack(">I", len(body)) + body


def frame(frame_type: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def method_frame(channel: int, class_id: int, method_id: int, args: bytes = b"") -> bytes:
    return frame(FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + args)


class Closed(Exception):
    """The server closed the socket."""


class RawAmqp:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, n: int, timeout: float):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited {timeout}s for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed(f"closed with {len(self.buf)} bytes buffered: {self.buf[:16]!r}")
            self.buf += chunk

    def read_bytes(self, n: int, timeout: float = 5.0) -> bytes:
        self._fill(n, timeout)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout: float = 5.0):
        """(type, channel, payload)."""
        head = self.read_bytes(7, timeout)
        ftype, channel, size = struct.unpack(">BHI", head)
        payload = self.read_bytes(size, timeout)
        end = self.read_bytes(1, timeout)
        assert end == bytes([FRAME_END]), f"bad frame end {end!r}"
        return ftype, channel, payload

    def read_method(self, timeout: float = 5.0, skip_heartbeats: bool = True):
        """(channel, class_id, method_id, args) of the next method frame."""
        while True:
            ftype, channel, payload = self.read_frame(timeout)
            if ftype == FRAME_HEARTBEAT and skip_heartbeats:
                continue
            assert ftype == FRAME_METHOD, f"expected a method frame, got type {ftype}"
            class_id, method_id = struct.unpack(">HH", payload[:4])
            return channel, class_id, method_id, payload[4:]

    def expect_closed(self, timeout: float = 5.0):
        """Waits until the server closes the socket (anything sent before is discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.read_bytes(1, max(0.01, deadline - time.monotonic()))
            except Closed:
                return
            self.buf = b""

    def expect_connection_close(self, timeout: float = 5.0):
        """Reads until connection.close; returns (reply_code, reply_text, class_id, method_id)
        and answers close-ok."""
        while True:
            channel, c, m, args = self.read_method(timeout)
            if (c, m) == (10, 50):
                code, tlen = struct.unpack(">HB", args[:3])
                text = args[3 : 3 + tlen].decode()
                cls, meth = struct.unpack(">HH", args[3 + tlen : 7 + tlen])
                try:
                    self.send(method_frame(0, 10, 51))
                except OSError:
                    pass
                return code, text, cls, meth

    def expect_channel_close(self, timeout: float = 5.0):
        while True:
            channel, c, m, args = self.read_method(timeout)
            if (c, m) == (20, 40):
                code, tlen = struct.unpack(">HB", args[:3])
                return channel, code, args[3 : 3 + tlen].decode()

    # -- handshake --

    def handshake(self, *, mechanism="PLAIN", response=b"\x00guest\x00guest", heartbeat=0,
                  frame_max=131072, channel_max=0, vhost="/", open_connection=True):
        """Runs the handshake; returns the server's tune arguments (channel_max, frame_max, heartbeat)."""
        self.send(PROTOCOL_HEADER)
        _, c, m, _ = self.read_method()
        assert (c, m) == (10, 10), (c, m)
        self.send(method_frame(0, 10, 11, table({"product": "raw"}) + shortstr(mechanism)
                               + longstr(response) + shortstr("en_US")))
        _, c, m, args = self.read_method()
        assert (c, m) == (10, 30), f"expected connection.tune, got {(c, m)}"
        tune = struct.unpack(">HIH", args)
        self.send(method_frame(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat)))
        if open_connection:
            self.send(method_frame(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        return tune

    def expect_open_ok(self):
        _, c, m, _ = self.read_method()
        assert (c, m) == (10, 41), f"expected connection.open-ok, got {(c, m)}"

    def open_channel(self, channel: int):
        self.send(method_frame(channel, 20, 10, shortstr("")))
        ch, c, m, _ = self.read_method()
        assert (ch, c, m) == (channel, 20, 11), (ch, c, m)


def pika_connection(gw, **params):
    """A pika BlockingConnection to the gateway's AMQP port."""
    import pika

    params.setdefault("blocked_connection_timeout", 30)
    params.setdefault("connection_attempts", 3)
    params.setdefault("retry_delay", 0.2)
    return pika.BlockingConnection(
        pika.ConnectionParameters(host=gw.host, port=gw.amqp_port, **params)
    )


def pump(conn, until, timeout: float = 5.0, settle: float = 0.0):
    """Runs pika's I/O loop until `until()` is true (fails after `timeout`), then `settle` seconds
    more so that anything that should NOT arrive has had its chance."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not reached in time"
        conn.process_data_events(time_limit=0.05)
    end = time.monotonic() + settle
    while time.monotonic() < end:
        conn.process_data_events(time_limit=0.05)
