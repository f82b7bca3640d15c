"""CONNECT / STOMP, version negotiation (reference: ActiveMQ 5.17)."""

import pytest

from gwtest.raw import Closed


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stomp_py_connects_with_each_version(client, version):
    c = client(version=version)
    h = c.connected_frame.headers
    assert h["version"] == version
    assert h.get("session"), h
    assert h.get("server"), h


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("with_connect_command", [False, True], ids=["STOMP", "CONNECT"])
def test_stomp_and_connect_commands_both_accepted(client, version, with_connect_command):
    c = client(version=version, with_connect_command=with_connect_command)
    assert c.connected_frame.headers["version"] == version


@pytest.mark.parametrize("command", ["CONNECT", "STOMP"])
def test_raw_connected_headers(raw, command):
    r = raw()
    f = r.connect("1.2", command=command)
    assert f.headers["version"] == "1.2"
    assert f.headers.get("session")
    assert f.headers.get("server")
    # A session id is per connection.
    f2 = raw().connect("1.2", command=command)
    assert f2.headers["session"] != f.headers["session"]


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,1.1,1.0", "1.2"),
        ("1.0,1.1", "1.1"),
        ("1.1,1.0", "1.1"),
        ("1.0", "1.0"),
        ("1.1,2.0", "1.1"),
        ("1.2,9.9", "1.2"),
    ],
)
def test_accept_version_picks_highest_common(raw, accept, expected):
    f = raw().connect(accept)
    assert f.headers["version"] == expected


def test_no_accept_version_means_1_0(raw):
    r = raw()
    f = r.connect(version=None)
    assert f.headers.get("version") == "1.0"
    assert f.headers.get("session")
    # A 1.0 session works: SEND/SUBSCRIBE/MESSAGE without subscription ids.
    r.request("SUBSCRIBE", {"destination": "/queue/v10"})
    r.request("SEND", {"destination": "/queue/v10"}, b"hello 1.0")
    m = r.expect("MESSAGE")
    assert m.body == b"hello 1.0"
    assert m.headers["destination"] == "/queue/v10"


def test_unsupported_version_gets_error_and_close(raw):
    r = raw()
    f = r.connect("3.0", expect="ERROR")
    assert f.headers.get("message")
    r.expect_closed(5)


def test_frame_before_connect_is_an_error(raw):
    # ActiveMQ 5.17 (checked): ERROR `message:Not connected.` carrying the receipt-id, and the
    # connection stays open: a CONNECT sent afterwards gets CONNECTED.
    r = raw()
    r.send_frame("SEND", {"destination": "/queue/early", "receipt": "early-1"}, b"too soon")
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "early-1"
    assert f.headers.get("message")
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/early", "id": "s"})
    r.expect_no_frame(0.3)  # the early SEND was not accepted


def test_connect_twice_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost"})
    try:
        f = r.recv_frame()
    except Closed:
        pytest.fail("connection closed without an ERROR frame")
    assert f.command == "ERROR", f
