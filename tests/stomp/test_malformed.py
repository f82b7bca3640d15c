"""Hostile and broken input: the offender gets ERROR (and is closed), nobody else notices."""

from gwtest import reference
import pytest

FRAME_LIMIT = {"listeners": {"stomp": {"max_frame_bytes": 4096}}}
HEADER_LIMITS = {"listeners": {"stomp": {"max_headers": 16, "max_header_bytes": 256}}}


@pytest.fixture
def small_gateway(make_gateway):
    # ActiveMQ equivalent: stomp://...?wireFormat.maxFrameSize=4096 (gwtest/reference.py).
    return make_gateway(FRAME_LIMIT)


@pytest.fixture
def small_header_gateway(make_gateway):
    # No ActiveMQ equivalent (its 1000-header / 10 KiB-header limits are fixed): skipped there.
    return make_gateway(HEADER_LIMITS)


def assert_error_then_close(r, timeout=5.0):
    frames = r.expect_closed(timeout)
    assert frames, "connection closed without an ERROR frame"
    assert frames[0].command == "ERROR", frames
    assert frames[0].headers.get("message"), frames[0]
    return frames[0]


GARBAGE = [
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not stomp\n\n\x00\n", id="tls-hello"),
    pytest.param(b"\xff\xfe\xfd\xfc\n\n\x00", id="binary-command"),
    pytest.param(b"SEND\ndestination:/queue/x\ncontent-length:abc\n\nbody\x00", id="bad-content-length"),
    pytest.param(b"SEND\ndestination:/queue/x\ncontent-length:2\n\nbody\x00", id="content-length-mismatch"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_after_connect_gets_error_and_close(raw, client, garbage):
    bystander = client()  # opened before the bad connection
    bystander.subscribe("/queue/bystander")
    r = raw()
    r.connect("1.2")
    r.send_raw(garbage)
    assert_error_then_close(r)
    client().send("/queue/bystander", "unaffected")
    assert bystander.get().body == "unaffected"
    assert not bystander.errors


def test_http_request_instead_of_connect_is_closed(make_gateway, raw, client):
    # An HTTP request never sends the NUL that ends a frame: the gateway may reject the
    # command line at once (ERROR) or wait for CONNECT until connect_timeout_ms; either way
    # the connection is closed and nobody else notices.
    gw = make_gateway({"listeners": {"stomp": {"connect_timeout_ms": 1500}}})
    bystander = client(gw)
    r = raw(gw)
    r.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    frames = r.expect_closed(5)
    assert all(f.command == "ERROR" for f in frames), frames
    bystander.send("/queue/after-http", "ok")


def test_header_line_without_colon(raw):
    # STOMP 1.2's grammar has no header without ':'. Our gateway: a malformed frame, ERROR and
    # close (a deliberate difference, see docs/reference-runs.md).
    # ActiveMQ 5.17 (checked): no parse error. A line without ':' is a header named by the whole
    # line with an empty value; so `destination /queue/x` leaves the SEND without a destination:
    # ERROR `message:SEND received without a Destination specified!`, connection kept open.
    r = raw()
    r.connect("1.2")
    if not reference.mode():
        r.send_raw(b"SEND\ndestination:/queue/nocolon\nnocolonhere\nreceipt:nc-1\n\nbody\x00")
        assert_error_then_close(r)
        return
    r.request("SUBSCRIBE", {"destination": "/queue/nocolon", "id": "s"})
    r.send_raw(b"SEND\ndestination:/queue/nocolon\nnocolonhere\nreceipt:nc-1\n\nbody\x00")
    r.wait_receipt("nc-1")
    m = r.expect("MESSAGE")
    assert m.body == b"body"
    assert m.headers.get("nocolonhere") == ""
    r.send_raw(b"SEND\ndestination /queue/nocolon\nreceipt:nc-2\n\nbody\x00")
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "nc-2"
    assert "Destination" in f.headers.get("message", ""), f
    r.request("SEND", {"destination": "/queue/nocolon"}, b"still connected")
    assert r.expect("MESSAGE").body == b"still connected"


def test_undefined_escape_in_1_2_header(raw):
    # STOMP 1.2: undefined escape sequences such as `\t` MUST be treated as a fatal protocol
    # error. Our gateway does so: ERROR and close (a deliberate difference).
    # ActiveMQ 5.17 (checked): `\t` is not rejected; the backslash is kept, so the value is the
    # two characters `\t`, re-escaped as `\\t` on the MESSAGE.
    r = raw()
    r.connect("1.2")
    if not reference.mode():
        r.send_raw(b"SEND\ndestination:/queue/esc\nbad:\\t\nreceipt:esc-1\n\nx\x00")
        assert_error_then_close(r)
        return
    r.request("SUBSCRIBE", {"destination": "/queue/esc", "id": "s"})
    r.send_raw(b"SEND\ndestination:/queue/esc\nbad:\\t\nreceipt:esc-1\n\nx\x00")
    r.wait_receipt("esc-1")
    m = r.expect("MESSAGE")
    assert m.headers["bad"] == "\\t"


def test_oversize_frame_gets_error_and_close(small_gateway, raw, client):
    bystander = client(small_gateway)
    bystander.subscribe("/queue/big")
    r = raw(small_gateway)
    r.connect("1.2")
    r.request("SEND", {"destination": "/queue/big"}, b"small enough")  # under the limit: fine
    assert bystander.get().body == "small enough"
    big = b"x" * 8192
    try:
        r.send_frame("SEND", {"destination": "/queue/big", "content-length": str(len(big))}, big)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close while we are still writing
    assert_error_then_close(r)
    bystander.expect_no_message(0.3)


def test_oversize_frame_without_content_length(small_gateway, raw):
    r = raw(small_gateway)
    r.connect("1.2")
    try:
        r.send_raw(b"SEND\ndestination:/queue/big2\n\n" + b"y" * 20000)  # no NUL ever comes
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert_error_then_close(r)


def test_too_many_headers_is_an_error(small_header_gateway, raw):
    r = raw(small_header_gateway)
    r.connect("1.2")
    headers = [("destination", "/queue/hdrs")] + [(f"h{i}", "v") for i in range(40)]
    r.send_frame("SEND", headers, b"x")
    assert_error_then_close(r)


def test_too_long_header_is_an_error(small_header_gateway, raw):
    r = raw(small_header_gateway)
    r.connect("1.2")
    r.send_frame("SEND", {"destination": "/queue/long", "long": "z" * 1000}, b"x")
    assert_error_then_close(r)


def test_client_vanishing_mid_frame_does_not_disturb_others(raw, client):
    watcher = client()
    watcher.subscribe("/queue/midframe")
    r = raw()
    r.connect("1.2")
    r.send_raw(b"SEND\ndestination:/queue/midframe\ncontent-length:100\n\nonly part of the bo")
    r.close()
    r2 = raw()
    r2.connect("1.2")
    r2.send_raw(b"SEND\ndestination:/queue/midf")  # cut inside the headers
    r2.close()
    client().send("/queue/midframe", "complete")
    m = watcher.get()
    assert m.body == "complete"
    watcher.expect_no_message(0.3)


def test_many_connections_opened_and_dropped(raw, client):
    for _ in range(50):
        r = raw()
        r.close()
    for _ in range(20):
        r = raw()
        r.connect("1.2")
        r.close()
    c = client()
    c.send("/queue/churn", "alive")
    c.subscribe("/queue/churn")
    assert c.get().body == "alive"


def test_connection_without_connect_is_closed_after_timeout(make_gateway, raw):
    gw = make_gateway({"listeners": {"stomp": {"connect_timeout_ms": 500}}})
    r = raw(gw)
    r.expect_closed(5.0)
