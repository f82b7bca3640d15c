"""RECEIPT for every command; ERROR frames carry the offending frame's receipt-id."""

import pytest


def test_every_command_gets_its_receipt(raw):
    r = raw()
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/rcpt", "id": "s1", "ack": "client-individual"})
    r.request("SEND", {"destination": "/queue/rcpt"}, b"one")
    m = r.expect("MESSAGE")
    r.request("ACK", {"id": m.headers["ack"]})
    r.request("SEND", {"destination": "/queue/rcpt", "persistent": "true"}, b"two")
    m2 = r.expect("MESSAGE")
    r.request("NACK", {"id": m2.headers["ack"]})
    r.request("BEGIN", {"transaction": "t1"})
    r.request("SEND", {"destination": "/queue/rcpt", "transaction": "t1"}, b"three")
    r.request("COMMIT", {"transaction": "t1"})
    m3 = r.expect("MESSAGE")
    assert m3.body == b"three"
    r.request("BEGIN", {"transaction": "t2"})
    r.request("ACK", {"id": m3.headers["ack"], "transaction": "t2"})
    r.request("ABORT", {"transaction": "t2"})
    r.request("UNSUBSCRIBE", {"id": "s1"})
    r.send_frame("DISCONNECT", {"receipt": "bye"})
    frames = r.expect_closed(5)
    # (A MESSAGE may precede it, if the aborted ack made the gateway redeliver m3 at once.)
    assert [f.command for f in frames if f.command != "MESSAGE"] == ["RECEIPT"], frames
    assert frames[-1].headers["receipt-id"] == "bye"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_receipts_in_older_versions(raw, version):
    r = raw()
    r.connect(version)
    sub = {"destination": "/queue/rcpt.old", "ack": "client"}
    if version == "1.1":
        sub["id"] = "s1"
    r.request("SUBSCRIBE", sub)
    r.request("SEND", {"destination": "/queue/rcpt.old"}, b"x")
    m = r.expect("MESSAGE")
    ack = {"message-id": m.headers["message-id"]}
    if version == "1.1":
        ack["subscription"] = "s1"
    r.request("ACK", ack)
    r.send_frame("DISCONNECT", {"receipt": "bye-old"})
    frames = r.expect_closed(5)
    assert frames and frames[0].command == "RECEIPT" and frames[0].headers["receipt-id"] == "bye-old"


def test_disconnect_with_stomp_py_gets_receipt(client):
    c = client()
    c.subscribe("/queue/bye")
    c.disconnect()  # waits for the RECEIPT of its DISCONNECT, fails if none comes
    assert not c.errors


def test_send_without_destination_is_an_error_with_receipt_id(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("SEND", {"receipt": "no-dest"}, b"lost")
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "no-dest"
    assert f.headers.get("message")


def test_subscribe_without_destination_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("SUBSCRIBE", {"id": "s", "receipt": "sub-no-dest"})
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "sub-no-dest"


def test_ack_of_unknown_message_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("ACK", {"id": "never-delivered", "receipt": "ack-unknown"})
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "ack-unknown"


def test_unknown_command_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("FROBNICATE", {"receipt": "frob"})
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("message")


def test_error_does_not_leak_into_other_connections(raw, client):
    good = client()
    good.subscribe("/queue/iso")
    bad = raw()
    bad.connect("1.2")
    bad.send_frame("FROBNICATE", {})
    assert bad.recv_frame().command == "ERROR"
    client().send("/queue/iso", "still fine")
    assert good.get().body == "still fine"
    assert not good.errors
