#!/usr/bin/env python3
"""Capture golden STOMP frames from the real `stomp.py` client.

Usage (from anywhere):

    python3 -m venv /tmp/stompvenv
    /tmp/stompvenv/bin/pip install stomp.py==9.0.0
    /tmp/stompvenv/bin/python codecs/testdata/stomp/capture.py

A tiny TCP server on 127.0.0.1 records the raw bytes the client sends, splits
them into frames (without altering a byte) and answers CONNECT/STOMP with
CONNECTED and DISCONNECT with RECEIPT so the client proceeds. Each frame is
written next to this script as `stomppy-<ver>_<frame>_v<stomp-version>.bin`.
A whole heart-beating session is also saved raw, to test bare-EOL heart-beats.

Only loopback traffic, bounded in count and time.
"""

import os
import socket
import sys
import threading
import time

import stomp

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
CLIENT = "stomppy"


def client_tag():
    try:
        from importlib.metadata import version

        return "stomppy-" + version("stomp.py")
    except Exception:  # pragma: no cover - best effort
        return CLIENT


def split_frame(buf):
    """Return (frame_bytes, rest) if buf holds a complete frame, else None.

    Leading EOLs (heart-beats) are returned as frames of their own (b"\\n")."""
    if buf.startswith(b"\r\n"):
        return buf[:2], buf[2:]
    if buf.startswith(b"\n"):
        return buf[:1], buf[1:]
    head_end = buf.find(b"\n\n")
    head_end_crlf = buf.find(b"\r\n\r\n")
    if head_end < 0 and head_end_crlf < 0:
        return None
    if head_end < 0 or (0 <= head_end_crlf < head_end):
        body_start = head_end_crlf + 4
    else:
        body_start = head_end + 2
    length = None
    for line in buf[:body_start].split(b"\n")[1:]:
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1].strip())
            break
    if length is not None:
        end = body_start + length
        if len(buf) <= end:
            return None
        assert buf[end] == 0, "content-length not followed by NUL"
    else:
        end = buf.find(b"\0", body_start)
        if end < 0:
            return None
    return buf[: end + 1], buf[end + 1 :]


class Recorder:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.frames = []  # raw frames, in order
        self.raw = bytearray()  # every byte of the (last) connection
        self.heartbeat = None  # heart-beat value to answer in CONNECTED
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        conn.settimeout(10)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                chunk = conn.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            with self.lock:
                self.raw.extend(chunk)
            buf += chunk
            while True:
                got = split_frame(buf)
                if got is None:
                    break
                frame, buf = got
                with self.lock:
                    self.frames.append(frame)
                self._answer(conn, frame)
        conn.close()

    def _answer(self, conn, frame):
        command = frame.split(b"\n", 1)[0].rstrip(b"\r")
        headers = {}
        for line in frame.split(b"\n\n", 1)[0].split(b"\n")[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers.setdefault(k, v.rstrip(b"\r"))
        if command in (b"CONNECT", b"STOMP"):
            reply = b"CONNECTED\n"
            if b"accept-version" in headers:
                version = sorted(headers[b"accept-version"].split(b","))[-1]
                reply += b"version:" + version + b"\n"
            if self.heartbeat:
                reply += b"heart-beat:" + self.heartbeat + b"\n"
            conn.sendall(reply + b"\n\0")
        elif command == b"DISCONNECT" and b"receipt" in headers:
            conn.sendall(b"RECEIPT\nreceipt-id:" + headers[b"receipt"] + b"\n\n\0")

    def take(self, n, timeout=5.0):
        """Wait until n frames (not heart-beats) were recorded; return and clear them."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                real = [f for f in self.frames if f not in (b"\n", b"\r\n")]
                if len(real) >= n:
                    self.frames = []
                    return real
            time.sleep(0.02)
        raise SystemExit(f"timed out waiting for {n} frames, got {self.frames!r}")


def connection(version, port, heartbeats=(0, 0)):
    cls = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}[version]
    if version == "1.0":
        return cls([("127.0.0.1", port)])
    return cls([("127.0.0.1", port)], heartbeats=heartbeats, vhost="localhost")


# Header values that need escaping in 1.1/1.2 (stomp.py escapes values only).
CUSTOM = {
    "x-colon": "a:b",
    "x-newline": "line1\nline2",
    "x-backslash": "back\\slash",
    "x-utf8": "h\u00e9llo \u2603",
}
BINARY = bytes([0, 1, 2, 0, 255, 10, 0]) + b"tail"


def capture_version(rec, version, tag):
    out = []  # (name, expected command)
    conn = connection(version, rec.port)
    conn.connect("guest", "secret", wait=True)
    out.append(("connect", "CONNECT" if version == "1.0" else "STOMP"))

    custom = dict(CUSTOM)
    if version == "1.2":
        custom["x-cr"] = "cr\rhere"
    if version == "1.0":
        # 1.0 has no escaping: stick to values 1.0 can carry.
        custom = {"x-plain": "plain value", "x-utf8": CUSTOM["x-utf8"]}
    conn.send("/queue/golden", "hello world", content_type="text/plain", headers=custom)
    out.append(("send", "SEND"))
    conn.send("/queue/golden", BINARY, content_type="application/octet-stream")
    out.append(("send-binary", "SEND"))
    if version == "1.0":
        conn.subscribe("/queue/golden", id="sub-1", ack="client")
        out.append(("subscribe", "SUBSCRIBE"))
        conn.ack("msg-1", transaction="tx-1")
        out.append(("ack", "ACK"))
        conn.unsubscribe(id="sub-1")
    elif version == "1.1":
        conn.subscribe("/queue/golden", "sub-1", ack="client-individual")
        out.append(("subscribe", "SUBSCRIBE"))
        conn.ack("msg-1", "sub-1", transaction="tx-1")
        out.append(("ack", "ACK"))
        conn.nack("msg-2", "sub-1")
        out.append(("nack", "NACK"))
        conn.unsubscribe("sub-1")
    else:
        conn.subscribe("/queue/golden", "sub-1", ack="client-individual")
        out.append(("subscribe", "SUBSCRIBE"))
        conn.ack("ack-1", transaction="tx-1")
        out.append(("ack", "ACK"))
        conn.nack("ack-2")
        out.append(("nack", "NACK"))
        conn.unsubscribe("sub-1")
    out.append(("unsubscribe", "UNSUBSCRIBE"))
    conn.begin("tx-1")
    out.append(("begin", "BEGIN"))
    conn.commit("tx-1")
    out.append(("commit", "COMMIT"))
    conn.begin("tx-2")
    out.append(("begin-2", "BEGIN"))
    conn.abort("tx-2")
    out.append(("abort", "ABORT"))
    conn.disconnect(receipt="bye-1")
    out.append(("disconnect", "DISCONNECT"))

    frames = rec.take(len(out))
    for (name, command), frame in zip(out, frames):
        got = frame.split(b"\n", 1)[0].decode()
        assert got == command, f"{version} {name}: expected {command}, got {got}"
        if name == "begin-2":
            continue
        path = os.path.join(OUT_DIR, f"{tag}_{name}_v{version}.bin")
        with open(path, "wb") as f:
            f.write(frame)
        print("wrote", os.path.relpath(path), len(frame), "bytes")

    if version != "1.0":
        # The CONNECT command (not STOMP) as well.
        conn = connection(version, rec.port)
        conn.connect("guest", "secret", wait=True, with_connect_command=True)
        conn.disconnect(receipt="bye-2")
        frame = rec.take(2)[0]
        path = os.path.join(OUT_DIR, f"{tag}_connect-command_v{version}.bin")
        with open(path, "wb") as f:
            f.write(frame)
        print("wrote", os.path.relpath(path), len(frame), "bytes")


def capture_heartbeats(rec, tag):
    """A whole 1.2 session with client heart-beats every 200 ms (server sends none), byte for byte."""
    with rec.lock:
        rec.raw = bytearray()
        rec.frames = []
    rec.heartbeat = b"0,200"
    conn = connection("1.2", rec.port, heartbeats=(200, 0))
    conn.connect("guest", "secret", wait=True)
    time.sleep(1.0)
    conn.disconnect(receipt="bye-hb")
    rec.take(2)
    time.sleep(0.2)
    with rec.lock:
        raw = bytes(rec.raw)
    rec.heartbeat = None
    assert b"\0\n" in raw, "expected at least one heart-beat after CONNECT"
    path = os.path.join(OUT_DIR, f"{tag}_session-heartbeat_v1.2.bin")
    with open(path, "wb") as f:
        f.write(raw)
    print("wrote", os.path.relpath(path), len(raw), "bytes")


def main():
    tag = client_tag()
    rec = Recorder()
    for version in ("1.0", "1.1", "1.2"):
        capture_version(rec, version, tag)
    capture_heartbeats(rec, tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
