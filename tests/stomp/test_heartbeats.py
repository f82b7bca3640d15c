"""Heart-beating (STOMP 1.1+). As ActiveMQ, the gateway honours the intervals the client asks
for and offers, raised to `listeners.stomp.heartbeat_min_ms` (100 ms here)."""

import time

import pytest

FAST = {"listeners": {"stomp": {"heartbeat_min_ms": 100}}}


@pytest.fixture
def hb_gateway(make_gateway):
    return make_gateway(FAST)


def test_server_sends_heartbeats_at_requested_interval(hb_gateway, raw):
    r = raw(hb_gateway)
    f = r.connect("1.2", heart_beat="0,500")
    sx = int(f.headers["heart-beat"].split(",")[0])
    assert sx > 0, "server must offer to send heart-beats when the client asks for them"
    start = time.monotonic()
    r.heartbeats.clear()
    try:
        r.recv_frame(2.6)
        pytest.fail("unexpected frame instead of heart-beats")
    except AssertionError as e:
        if "no frame within" not in str(e):
            raise
    beats = [t - start for t in r.heartbeats]
    assert len(beats) >= 3, f"expected a heart-beat about every 500 ms, got {beats}"
    gaps = [b - a for a, b in zip([0.0] + beats, beats)]
    assert max(gaps) < 1.0, f"heart-beats too far apart: {gaps}"
    assert len(beats) <= 14, f"heart-beats far more often than every 500 ms: {beats}"


def test_no_heartbeats_when_client_does_not_want_them(hb_gateway, raw):
    r = raw(hb_gateway)
    r.connect("1.2", heart_beat="0,0")
    r.heartbeats.clear()
    try:
        r.recv_frame(1.0)
        pytest.fail("unexpected frame")
    except AssertionError as e:
        if "no frame within" not in str(e):
            raise
    assert r.heartbeats == []


def test_silent_client_is_disconnected(hb_gateway, raw):
    r = raw(hb_gateway)
    f = r.connect("1.2", heart_beat="500,0")
    sy = int(f.headers["heart-beat"].split(",")[1])
    assert sy > 0, "server must agree to receive heart-beats the client offers"
    start = time.monotonic()
    r.expect_closed(4.0)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.45, f"closed after {elapsed:.2f}s: earlier than the 500 ms the client promised"
    assert elapsed <= 2.0, f"silent client kept {elapsed:.2f}s, expected about 2x 500 ms"


def test_client_sending_heartbeats_stays_connected(hb_gateway, raw):
    r = raw(hb_gateway)
    r.connect("1.2", heart_beat="500,0")
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        r.send_raw(b"\n")
        time.sleep(0.2)
    r.request("SEND", {"destination": "/queue/alive"}, b"still here")


def test_stomp_py_heartbeats_keep_connection_alive(hb_gateway, client):
    c = client(hb_gateway, heartbeats=(300, 300))
    time.sleep(1.5)
    c.send("/queue/hb", "after idle")
    c.subscribe("/queue/hb")
    assert c.get().body == "after idle"
    assert c.listener.heartbeats >= 1
    assert not c.listener.disconnected
