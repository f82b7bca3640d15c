"""Message headers, bodies and encodings; temp queues; priority; expiry (reference: ActiveMQ 5.17)."""

import time

import pytest


def test_standard_and_custom_headers_round_trip(client):
    p = client()
    p.send(
        "/queue/hdrs",
        "body",
        headers={
            "persistent": "true",
            "priority": "7",
            "correlation-id": "corr-42",
            "reply-to": "/queue/replies",
            "type": "OrderPlaced",
            "x-custom": "custom value",
            "tenant": "acme",
        },
        content_type="text/plain",
    )
    c = client()
    c.subscribe("/queue/hdrs")
    m = c.get()
    h = m.headers
    assert m.body == "body"
    assert h["destination"] == "/queue/hdrs"
    assert h.get("message-id")
    assert h["persistent"] == "true"
    assert h["priority"] == "7"
    assert h["correlation-id"] == "corr-42"
    assert h["reply-to"] == "/queue/replies"
    assert h["type"] == "OrderPlaced"
    assert h["x-custom"] == "custom value"
    assert h["tenant"] == "acme"
    assert h["content-type"].startswith("text/plain")
    assert int(h.get("timestamp", "1")) > 0


def test_non_persistent_is_the_default(client):
    p = client()
    p.send("/queue/np", "x")
    c = client()
    c.subscribe("/queue/np")
    assert c.get().headers.get("persistent", "false") != "true"


@pytest.mark.parametrize(
    "version, value",
    [
        ("1.1", "a:b\nc\\d"),
        ("1.2", "a:b\nc\\d\re"),
        ("1.2", "::\\\\\n\n"),
    ],
)
def test_header_escaping_round_trips(client, version, value):
    p = client(version=version)
    # stomp.py escapes header values (not names) on the way out and unescapes on the way in.
    p.send("/queue/escape", "x", headers={"weird": value})
    c = client(version=version)
    c.subscribe("/queue/escape")
    assert c.get().headers["weird"] == value


def test_raw_escaped_header_reaches_the_wire_escaped(raw):
    """Check the bytes, not just a client's decoding: 1.2 MESSAGE headers are escaped."""
    r = raw()
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/wire", "id": "s"})
    r.send_raw(b"SEND\ndestination:/queue/wire\nk:a\\cb\\nc\\\\d\\re\nna\\cme:v\n\nx\x00")
    m = r.expect("MESSAGE")
    # RawStomp unescapes what it reads; a raw LF or CR in the value would have broken the
    # header line, so reading the value back intact shows it travelled escaped.
    assert m.headers["k"] == "a:b\nc\\d\re"
    assert m.headers["na:me"] == "v"


def test_binary_body_with_nul_bytes_round_trips(raw):
    body = bytes(range(256)) * 8 + b"\x00\x00end\x00"
    r = raw()
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/binary", "id": "s"})
    r.request(
        "SEND",
        {"destination": "/queue/binary", "content-length": str(len(body)), "content-type": "application/octet-stream"},
        body,
    )
    m = r.expect("MESSAGE")
    assert m.body == body
    assert int(m.headers["content-length"]) == len(body)


def test_empty_body_round_trips(raw):
    r = raw()
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/empty", "id": "s"})
    r.request("SEND", {"destination": "/queue/empty"}, b"")
    assert r.expect("MESSAGE").body == b""


def test_four_byte_utf8_round_trips(client):
    text = "emoji 😀 clef 𝄞 cjk 中文 accents éà"
    p = client()
    p.send("/queue/utf8", text, headers={"label": "𝄞😀"})
    c = client()
    c.subscribe("/queue/utf8")
    m = c.get()
    assert m.body == text
    assert m.headers["label"] == "𝄞😀"


def test_large_body_round_trips(raw):
    body = (b"0123456789abcdef" * 65536)[: 1024 * 1024]  # 1 MiB, under the 10 MiB default
    r = raw()
    r.connect("1.2")
    r.request("SUBSCRIBE", {"destination": "/queue/large", "id": "s"})
    r.request("SEND", {"destination": "/queue/large", "content-length": str(len(body))}, body)
    assert r.expect("MESSAGE", timeout=10).body == body


def test_priority_does_not_reorder_a_queue_by_default(client):
    # ActiveMQ 5.17 orders a queue by priority only with the `prioritizedMessages` destination
    # policy, which is off by default: checked, the queue stays FIFO (persistent or not).
    p = client()
    sent = [("low-1", 1), ("mid", 4), ("high-1", 9), ("low-2", 1), ("high-2", 9)]
    for body, prio in sent:
        p.send("/queue/prio", body, headers={"priority": str(prio)})
    c = client()
    c.subscribe("/queue/prio")
    got = c.get_n(5)
    assert [m.body for m in got] == [body for body, _ in sent]
    assert [int(m.headers["priority"]) for m in got] == [prio for _, prio in sent]


def test_expired_message_is_not_delivered_and_goes_to_dlq(make_gateway, client):
    gw = make_gateway({"broker": {"expiry_check_interval_ms": 100}})
    p = client(gw)
    expires = int(time.time() * 1000) + 300
    p.send("/queue/expiring", "stale", headers={"persistent": "true", "expires": str(expires)})
    p.send("/queue/expiring", "fresh", headers={"persistent": "true"})
    far = str(int(time.time() * 1000) + 600_000)
    p.send("/queue/expiring", "long-lived", headers={"persistent": "true", "expires": far})
    time.sleep(0.8)
    c = client(gw)
    c.subscribe("/queue/expiring")
    got = c.get_n(2)
    assert [m.body for m in got] == ["fresh", "long-lived"]
    assert got[1].headers["expires"] == far
    c.expect_no_message(0.3)
    dlq = client(gw)
    dlq.subscribe("/queue/ActiveMQ.DLQ")
    assert dlq.get().body == "stale"


def test_temp_queue_request_reply(client):
    service = client()
    service.subscribe("/queue/rpc.service")

    requester = client()
    requester.subscribe("/temp-queue/replies")
    requester.send("/queue/rpc.service", "ping", headers={"reply-to": "/temp-queue/replies", "correlation-id": "c-1"})

    req = service.get()
    assert req.body == "ping"
    reply_to = req.headers["reply-to"]
    assert reply_to, req.headers
    service.send(reply_to, "pong", headers={"correlation-id": req.headers["correlation-id"]})

    resp = requester.get()
    assert resp.body == "pong"
    assert resp.headers["correlation-id"] == "c-1"


def test_temp_queues_are_private_per_connection(client):
    a, b = client(), client()
    a.subscribe("/temp-queue/mine")
    b.subscribe("/temp-queue/mine")  # same name, different connection: a different queue
    a.send("/temp-queue/mine", "for a")
    assert a.get().body == "for a"
    b.expect_no_message(0.3)
