"""STOMP authentication and authorization against the real gateway, with stomp.py and raw frames.

The wording of refusals is ActiveMQ 5's (`User name [x] or password is invalid.`, `User x is not
authorized to write to: queue://y`). Configs use `gwtest.security` (real argon2 hashes made by
`gateway hash-password`, back-off off).
"""

from __future__ import annotations

import socket
import time

import pytest

from gwtest.client import Client
from gwtest.raw import RawStomp
from gwtest.security import security_toml

USERS = {
    "alice": ("s3cret", ["admins"]),
    "producer": ("p-pass", ["writers"]),
    "consumer": ("c-pass", ["readers"]),
}
ACL = [
    {"queue": "orders.>", "read": ["readers", "admins"], "write": ["writers", "admins"],
     "admin": ["admins"]},
    {"topic": "prices.>", "read": ["*"], "write": ["admins"]},
]


def refused(raw_peer, headers: dict) -> tuple[str, list]:
    """CONNECT with `headers`; expect ERROR then close. Returns (message header, frames)."""
    raw_peer.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost", **headers})
    frames = raw_peer.expect_closed()
    assert [f.command for f in frames] == ["ERROR"], frames
    return frames[0].headers.get("message"), frames


# --- the friendly default: loopback, no users ---------------------------------------------------


def test_loopback_default_admits_anonymous_and_guest(gateway, client):
    assert client(gateway).connected_frame is not None
    assert client(gateway, login="guest", passcode="guest").connected_frame is not None


def test_loopback_default_refuses_guest_with_wrong_password(gateway, raw):
    message, _ = refused(raw(gateway), {"login": "guest", "passcode": "nope"})
    assert message == "User name [guest] or password is invalid."


def on_all_interfaces(make_gateway, extra_toml: str):
    """A gateway whose STOMP listener binds 0.0.0.0 (not loopback) on its usual port."""
    gw = make_gateway(extra_toml=extra_toml, start=False)
    text = gw.config_path.read_text()
    loopback = f'bind = "127.0.0.1:{gw.stomp_port}"'
    assert loopback in text
    gw.config_path.write_text(text.replace(loopback, f'bind = "0.0.0.0:{gw.stomp_port}"'))
    gw.start()
    return gw


def test_non_loopback_listener_admits_only_configured_users(make_gateway, raw):
    """Bound to 0.0.0.0: no anonymous client and no built-in guest, even from loopback."""
    gw = on_all_interfaces(make_gateway, security_toml())
    message, _ = refused(raw(gw), {})
    assert message == "User name [null] or password is invalid."
    message, _ = refused(raw(gw), {"login": "guest", "passcode": "guest"})
    assert message == "User name [guest] or password is invalid."


def test_non_loopback_listener_admits_configured_user(make_gateway, client):
    gw = on_all_interfaces(make_gateway, security_toml(users=USERS))
    c = client(gw, login="alice", passcode="s3cret")
    c.send("/queue/orders.x", "hi")


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def test_guest_refused_from_non_loopback_peer(make_gateway):
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    gw = on_all_interfaces(make_gateway, security_toml(users={"guest": ("guest", ["guests"])}))
    r = RawStomp(addr, gw.stomp_port)
    try:
        message, _ = refused(r, {"login": "guest", "passcode": "guest"})
        assert message == "User name [guest] is only allowed to connect from localhost."
    finally:
        r.close()
    # The same user from loopback is fine.
    r = RawStomp("127.0.0.1", gw.stomp_port)
    try:
        r.connect(headers={"login": "guest", "passcode": "guest"})
    finally:
        r.close()


# --- configured users ---------------------------------------------------------------------------


@pytest.fixture
def secured(make_gateway):
    gw = make_gateway(
        overrides={"server": {"log_level": "debug"}},
        extra_toml=security_toml(users=USERS, authorization=ACL),
    )
    # As on a secured ActiveMQ, an administrator creates the queues the others use (creating
    # one by first use needs `admin`).
    create_queues(gw, "orders.eu", "orders.us")
    return gw


def create_queues(gw, *names, headers=None):
    r = RawStomp(gw.host, gw.stomp_port)
    try:
        r.connect(headers=headers or {"login": "alice", "passcode": "s3cret"})
        for i, name in enumerate(names):
            r.send_frame("SUBSCRIBE", {"destination": f"/queue/{name}", "id": f"c{i}", "receipt": f"c{i}"})
            r.wait_receipt(f"c{i}")
            # Gone before anyone sends: it must take none of the test's messages.
            r.send_frame("UNSUBSCRIBE", {"id": f"c{i}", "receipt": f"u{i}"})
            r.wait_receipt(f"u{i}")
    finally:
        r.close()


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_good_credentials_connect(secured, client, version):
    c = client(secured, version=version, login="alice", passcode="s3cret")
    c.send("/queue/orders.eu", "hello")


def test_wrong_password_refused_with_activemq_words(secured, raw):
    message, frames = refused(raw(secured), {"login": "alice", "passcode": "wrong-pass-123"})
    assert message == "User name [alice] or password is invalid."
    assert b"wrong-pass-123" not in frames[0].body


def test_unknown_user_refused(secured, raw):
    message, _ = refused(raw(secured), {"login": "mallory", "passcode": "s3cret"})
    assert message == "User name [mallory] or password is invalid."


def test_anonymous_refused_when_users_configured(secured, raw):
    message, _ = refused(raw(secured), {})
    assert message == "User name [null] or password is invalid."


def test_guest_refused_when_users_configured(secured, raw):
    message, _ = refused(raw(secured), {"login": "guest", "passcode": "guest"})
    assert message == "User name [guest] or password is invalid."


def test_stomp_py_sees_the_refusal(secured):
    with pytest.raises(AssertionError, match=r"or password is invalid"):
        Client(secured, login="alice", passcode="nope")


def test_passwords_never_logged(secured, raw, client):
    refused(raw(secured), {"login": "alice", "passcode": "NotInTheLog-1"})
    client(secured, login="alice", passcode="s3cret").send("/queue/orders.a", "x")
    log = secured.log_text()
    assert "authentication failed" in log  # the debug log did record the attempt...
    assert "NotInTheLog-1" not in log  # ...but never the password
    assert "s3cret" not in log


def test_failures_back_off(make_gateway, raw):
    """With auth_failure_delay_ms, each failure from one address waits twice as long as the last."""
    gw = make_gateway(
        extra_toml=security_toml(users=USERS).replace(
            "auth_failure_delay_ms = 0", "auth_failure_delay_ms = 300"
        )
    )
    times = []
    for _ in range(3):
        r = raw(gw)
        start = time.monotonic()
        refused(r, {"login": "alice", "passcode": "bad"})
        times.append(time.monotonic() - start)
    # 300 ms, 600 ms, 1200 ms: each at least the configured delay for its rank.
    assert times[0] >= 0.3 and times[1] >= 0.6 and times[2] >= 1.2, times


# --- authorization ------------------------------------------------------------------------------


def test_authorized_send_and_subscribe(secured, client):
    consumer = client(secured, login="consumer", passcode="c-pass")
    consumer.subscribe("/queue/orders.eu")
    producer = client(secured, login="producer", passcode="p-pass")
    producer.send("/queue/orders.eu", "order-1")
    consumer.listener.wait(lambda: len(consumer.listener.messages) >= 1, 5.0, "MESSAGE")
    assert consumer.listener.messages[0].body == "order-1"


def test_send_outside_entries_is_an_error_and_the_connection_stays(secured, raw):
    r = raw(secured)
    r.connect(headers={"login": "producer", "passcode": "p-pass"})
    r.send_frame("SEND", {"destination": "/queue/invoices", "receipt": "r1"}, "x")
    err = r.expect("ERROR")
    assert err.headers["message"] == "User producer is not authorized to write to: queue://invoices"
    assert err.headers.get("receipt-id") == "r1"
    # Still connected: an allowed send is confirmed.
    r.send_frame("SEND", {"destination": "/queue/orders.us", "receipt": "r2"}, "y")
    r.wait_receipt("r2")


def test_subscribe_outside_entries_is_an_error(secured, raw):
    r = raw(secured)
    r.connect(headers={"login": "producer", "passcode": "p-pass"})
    r.send_frame("SUBSCRIBE", {"destination": "/queue/orders.eu", "id": "s1", "receipt": "r1"})
    err = r.expect("ERROR")
    assert err.headers["message"] == "User producer is not authorized to read from: queue://orders.eu"


def test_reader_cannot_write_and_topic_star_group_reads(secured, raw):
    r = raw(secured)
    r.connect(headers={"login": "consumer", "passcode": "c-pass"})
    r.send_frame("SEND", {"destination": "/queue/orders.eu", "receipt": "r1"}, "x")
    assert r.expect("ERROR").headers["message"] == (
        "User consumer is not authorized to write to: queue://orders.eu"
    )
    # "*" in a read list: every admitted user may subscribe.
    r.send_frame("SUBSCRIBE", {"destination": "/topic/prices.eur", "id": "t1", "receipt": "r2"})
    r.wait_receipt("r2")
    r.send_frame("SEND", {"destination": "/topic/prices.eur", "receipt": "r3"}, "1.0")
    assert r.expect("ERROR").headers["message"] == (
        "User consumer is not authorized to write to: topic://prices.eur"
    )


def test_wildcard_subscription_needs_a_covering_entry(secured, raw):
    r = raw(secured)
    r.connect(headers={"login": "consumer", "passcode": "c-pass"})
    r.send_frame("SUBSCRIBE", {"destination": "/queue/orders.>", "id": "w1", "receipt": "r1"})
    r.wait_receipt("r1")
    r.send_frame("SUBSCRIBE", {"destination": "/queue/>", "id": "w2", "receipt": "r2"})
    assert r.expect("ERROR").headers["message"] == (
        "User consumer is not authorized to read from: queue://>"
    )


def test_unauthorized_message_never_reaches_consumers(secured, client, raw):
    consumer = client(secured, login="alice", passcode="s3cret")
    consumer.subscribe("/topic/prices.eur")
    r = raw(secured)
    r.connect(headers={"login": "producer", "passcode": "p-pass"})
    r.send_frame("SEND", {"destination": "/topic/prices.eur", "receipt": "r1"}, "forged")
    r.expect("ERROR")
    consumer.send("/topic/prices.eur", "real")
    consumer.listener.wait(lambda: len(consumer.listener.messages) >= 1, 5.0, "MESSAGE")
    time.sleep(0.3)
    assert [m.body for m in consumer.listener.messages] == ["real"]


def test_creating_a_queue_by_first_use_needs_admin(secured, raw):
    """As ActiveMQ's STOMP transport: SEND or SUBSCRIBE to a queue that does not exist yet needs
    `admin` besides `write` / `read`; once it exists, `write` / `read` are enough. The
    connection stays."""
    r = raw(secured)
    r.connect(headers={"login": "producer", "passcode": "p-pass"})
    r.send_frame("SEND", {"destination": "/queue/orders.new", "receipt": "r1"}, "x")
    err = r.expect("ERROR")
    assert err.headers["message"] == "User producer is not authorized to create: queue://orders.new"
    assert err.headers.get("receipt-id") == "r1"
    c = raw(secured)
    c.connect(headers={"login": "consumer", "passcode": "c-pass"})
    c.send_frame("SUBSCRIBE", {"destination": "/queue/orders.new", "id": "s1", "receipt": "s1"})
    assert c.expect("ERROR").headers["message"] == (
        "User consumer is not authorized to create: queue://orders.new")
    create_queues(secured, "orders.new")
    r.send_frame("SEND", {"destination": "/queue/orders.new", "receipt": "r2"}, "y")
    r.wait_receipt("r2")
    c.send_frame("SUBSCRIBE", {"destination": "/queue/orders.new", "id": "s2", "receipt": "s2"})
    c.wait_receipt("s2")
    assert c.expect("MESSAGE").body == b"y"


def test_implicit_create_needs_admin_can_be_turned_off(make_gateway, raw):
    gw = make_gateway(extra_toml=security_toml(users=USERS, authorization=ACL).replace(
        "[security]\n", "[security]\nimplicit_create_needs_admin = false\n"))
    r = raw(gw)
    r.connect(headers={"login": "producer", "passcode": "p-pass"})
    r.send_frame("SEND", {"destination": "/queue/orders.free", "receipt": "r1"}, "x")
    r.wait_receipt("r1")
