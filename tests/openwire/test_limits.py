"""OpenWire abuse limits with a raw peer (no JMS client can be made to misbehave this way): the
authentication deadline after `WireFormatInfo` (a slow-loris that negotiated no inactivity
monitoring, or that keeps sending `KeepAliveInfo`, and never sends `ConnectionInfo`), and a
command over `max_frame_bytes`. Each closes that connection, counts
`gateway_limit_refusals_total{protocol="openwire"}`, and the listener keeps serving the JMS
client."""

from __future__ import annotations

import socket
import struct
import time
import urllib.request

CONNECTION_ERROR = 16
KEEP_ALIVE_INFO = 10


def wire_format_info(inactivity_ms: int) -> bytes:
    # Options map {"MaxInactivityDuration": long}; 0 disables the inactivity monitor.
    name = b"MaxInactivityDuration"
    props = struct.pack(">i", 1) + struct.pack(">H", len(name)) + name + b"\x06" + struct.pack(">q", inactivity_ms)
    body = b"\x01" + b"ActiveMQ" + struct.pack(">i", 12) + b"\x01" + struct.pack(">i", len(props)) + props
    return struct.pack(">i", len(body)) + body


def keep_alive_info() -> bytes:
    # Loose encoding: type 10, command id 0, response required false.
    body = bytes([KEEP_ALIVE_INFO]) + struct.pack(">i", 0) + b"\x00"
    return struct.pack(">i", len(body)) + body


def read_frame(sock: socket.socket) -> bytes | None:
    """One command body, or None when the peer closed."""
    head = b""
    while len(head) < 4:
        try:
            chunk = sock.recv(4 - len(head))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        head += chunk
    (size,) = struct.unpack(">i", head)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def frames_until_closed(sock: socket.socket, within: float) -> list[bytes]:
    sock.settimeout(within)
    out = []
    while (frame := read_frame(sock)) is not None:
        out.append(frame)
    return out


def refusals(gw, limit: str) -> int:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if (line.startswith("gateway_limit_refusals_total{") and 'protocol="openwire"' in line
                and f'limit="{limit}"' in line):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def negotiated(gw) -> socket.socket:
    sock = socket.create_connection((gw.host, gw.openwire_port), timeout=5)
    assert read_frame(sock)[0] == 1  # the broker's WireFormatInfo comes first
    return sock


def test_no_connection_info_after_negotiation_is_closed_and_counted(make_gateway, jms):
    gw = make_gateway({"listeners": {"openwire": {"connect_timeout_ms": 500}}})
    before = refusals(gw, "handshake_timeout")
    # No inactivity monitoring negotiated, then silence: only the authentication deadline ends it.
    with negotiated(gw) as sock:
        sock.sendall(wire_format_info(0))
        start = time.monotonic()
        frames = frames_until_closed(sock, within=5)
        waited = time.monotonic() - start
    assert frames[0][0] == 2  # BrokerInfo
    assert [f[0] for f in frames[1:]] == [CONNECTION_ERROR], frames
    assert b"java.lang.SecurityException" in frames[-1] and b"No ConnectionInfo within 500 ms" in frames[-1]
    assert 0.3 < waited < 3, waited
    # Keep-alives do not extend it.
    with negotiated(gw) as sock:
        sock.sendall(wire_format_info(200))
        assert read_frame(sock)[0] == 2
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 4:
            try:
                sock.sendall(keep_alive_info())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.05)
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        assert closed, "a peer sending only KeepAliveInfo was kept past the authentication deadline"
        assert time.monotonic() - start < 2
    assert refusals(gw, "handshake_timeout") == before + 2
    # A real client, which logs in at once, is not affected.
    got = jms(gw).run("pubsub", "limits.alive", "yes")
    assert got.returncode == 0, got


def test_command_over_max_frame_bytes_is_closed_and_counted(make_gateway, jms):
    gw = make_gateway({"listeners": {"openwire": {"max_frame_bytes": 4096}}})
    before = refusals(gw, "frame_too_large")
    # As the first command, and after negotiation.
    with negotiated(gw) as sock:
        sock.sendall(struct.pack(">i", 4097) + b"\x01")
        assert frames_until_closed(sock, within=5) == []
    with negotiated(gw) as sock:
        sock.sendall(wire_format_info(0))
        assert read_frame(sock)[0] == 2
        sock.sendall(struct.pack(">i", 1_000_000) + b"\x03" * 64)
        assert [f[0] for f in frames_until_closed(sock, within=5)] == [CONNECTION_ERROR]
    assert refusals(gw, "frame_too_large") == before + 2
    got = jms(gw).run("pubsub", "limits.alive", "yes")
    assert got.returncode == 0, got


def test_consumers_past_max_subscriptions_per_connection_are_refused(make_gateway, jms):
    """As ActiveMQ's `maximumConsumersAllowedPerConnection`: the consumer past the limit is
    refused with an IllegalStateException (a JMSException to the application); the client's
    advisory consumer does not count, and the connection goes on sending."""
    gw = make_gateway(extra_toml="[security]\nmax_subscriptions_per_connection = 2\n")
    before = refusals(gw, "max_subscriptions")
    got = jms(gw).run("secure", "open:queue:lim.a", "open:topic:lim.b", "open:queue:lim.c",
                      "send:queue:lim.a")
    assert got.returncode == 0, got
    assert got.lines[:2] == ["OK open:queue:lim.a", "OK open:topic:lim.b"], got
    assert got.lines[2].startswith("DENIED open:queue:lim.c javax.jms.JMSException: "
                                   "Can't add consumer on connection ID:"), got
    assert got.lines[2].endswith(": at maximum limit: 2"), got
    # The connection stayed up: its send after the refusal went through.
    assert "OK send:queue:lim.a" in got.lines, got
    assert refusals(gw, "max_subscriptions") == before + 1
    # Another connection has its own places.
    again = jms(gw).run("secure", "open:queue:lim.c", "open:queue:lim.d")
    assert again.lines == ["OK open:queue:lim.c", "OK open:queue:lim.d"], again


def test_sessions_past_max_sessions_per_connection_are_refused(make_gateway, jms):
    """`max_sessions_per_connection`: the JMS client sends SessionInfo without waiting, so the
    refusal (worded as ActiveMQ's per-connection consumer limit) reaches its exception listener,
    and the refused session's consumer gets ActiveMQ's answer for a session it never
    registered. The connection and its admitted sessions go on; the refusal is counted."""
    gw = make_gateway(extra_toml="[security]\nmax_sessions_per_connection = 2\n")
    before = refusals(gw, "max_sessions")
    # The probe's own session is the first; one more fits, the third does not.
    got = jms(gw).run("secure", "session:queue:ses.a", "session:queue:ses.b", "send:queue:ses.a")
    assert got.returncode == 0, got
    assert "OK session:queue:ses.a" in got.lines, got
    denied = [line for line in got.lines if line.startswith("DENIED session:queue:ses.b ")]
    assert len(denied) == 1, got
    assert "Cannot add a consumer to a session that had not been registered" in denied[0], got
    async_errors = [line for line in got.lines if line.startswith("ASYNC ")]
    assert len(async_errors) == 1, got
    assert async_errors[0].startswith("ASYNC Can't add session on connection ID:"), got
    assert async_errors[0].endswith(": at maximum limit: 2"), got
    # The connection stayed up: its send after the refusal went through.
    assert "OK send:queue:ses.a" in got.lines, got
    assert refusals(gw, "max_sessions") == before + 1
    # Another connection has its own places.
    again = jms(gw).run("secure", "session:queue:ses.c")
    assert again.lines == ["OK session:queue:ses.c"], again


def test_connection_past_max_connections_is_told_why(make_gateway, jms):
    """Past `max_connections` (held by a raw STOMP connection here), the JMS client's
    ConnectionInfo gets an ExceptionResponse with ActiveMQ's `maximumConnections` exception and
    words, so `createConnection`/`start` throws; the connection holding the place goes on, and
    the place comes back when it closes."""
    from gwtest.raw import RawStomp

    gw = make_gateway(extra_toml="[security]\nmax_connections = 1\n")
    deadline = time.monotonic() + 5
    while True:  # the fixture's readiness probe may still hold the place for a moment
        holder = RawStomp(gw.host, gw.stomp_port)
        try:
            holder.connect()
            break
        except AssertionError:
            holder.close()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    try:
        before = refusals(gw, "max_connections")
        got = jms(gw).run("secure", "send:queue:caps.jms")
        assert got.returncode == 0, got
        assert got.lines == [
            "REFUSED javax.jms.JMSException: Exceeded the maximum number of allowed client connections: "
            "maximum connections reached (security.max_connections = 1)"], got
        assert refusals(gw, "max_connections") == before + 1
        holder.send_frame("SEND", {"destination": "/queue/caps.jms", "receipt": "r1"}, "x")
        holder.wait_receipt("r1")
    finally:
        holder.close()
    time.sleep(0.2)
    again = jms(gw).run("secure", "send:queue:caps.jms")
    assert again.lines == ["OK send:queue:caps.jms"], again
