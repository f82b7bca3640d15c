"""Connection level: protocol header sniffing, handshake (PLAIN, AMQPLAIN), tune, heartbeats,
connection and channel close with the specification's reply codes."""

from __future__ import annotations

import socket
import struct
import time

import pika
import pytest

from gwtest.amqp import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    PROTOCOL_HEADER,
    Closed,
    RawAmqp,
    frame,
    longstr,
    method_frame,
    shortstr,
    table,
    table_entries,
)


def header_answer(gw, sent: bytes) -> bytes:
    with socket.create_connection((gw.host, gw.amqp_port), timeout=5) as s:
        s.sendall(sent)
        data = b""
        while True:
            chunk = s.recv(64)
            if not chunk:
                return data
            data += chunk


@pytest.mark.parametrize(
    "sent",
    [
        b"AMQP\x01\x01\x00\x09",  # AMQP 0-9
        b"AMQP\x01\x01\x08\x00",  # AMQP 0-8
        b"GET / HTTP/1.1\r\n\r\n",
        b"AMQP\x00\x01\x00\x00",  # AMQP 1.0 (hook: not served yet)
        b"AMQP\x03\x01\x00\x00",  # AMQP 1.0 SASL
    ],
)
def test_unsupported_protocol_header_gets_the_supported_header_and_close(gateway, sent):
    assert header_answer(gateway, sent) == PROTOCOL_HEADER


def test_pika_connects_with_plain_and_sees_server_capabilities(amqp):
    conn = amqp(credentials=pika.PlainCredentials("guest", "guest"))
    props = conn._impl.server_properties
    assert props["product"] == b"gateway" or props["product"] == "gateway"
    caps = conn._impl.server_capabilities
    for cap in ("publisher_confirms", "basic.nack", "consumer_cancel_notify",
                "exchange_exchange_bindings", "connection.blocked"):
        assert caps[cap] is True, cap
    ch = conn.channel()
    assert ch.is_open
    ch.close()
    assert ch.is_closed
    conn.close()
    assert conn.is_closed


def test_start_offers_plain_and_amqplain(raw_amqp):
    peer = raw_amqp()
    peer.send(PROTOCOL_HEADER)
    _, c, m, args = peer.read_method()
    assert (c, m) == (10, 10)
    assert args[:2] == b"\x00\x09"  # version 0-9
    assert b"PLAIN AMQPLAIN" in args


def test_amqplain_login(raw_amqp):
    peer = raw_amqp()
    tune = peer.handshake(mechanism="AMQPLAIN",
                          response=table_entries({"LOGIN": "guest", "PASSWORD": "guest"}))
    peer.expect_open_ok()
    assert tune == (2047, 131072, 60)
    peer.open_channel(1)


def start_ok(peer, mechanism: str, response: bytes):
    peer.send(PROTOCOL_HEADER)
    peer.read_method()
    peer.send(method_frame(0, 10, 11, table({}) + shortstr(mechanism) + longstr(response)
                           + shortstr("en_US")))


def test_amqplain_takes_a_byte_array_beside_a_long_string(raw_amqp):
    """RabbitMQ 3.10 takes LOGIN / PASSWORD when one of them is a long string and uses a byte
    array ('x') beside it as it is."""
    peer = raw_amqp()
    start_ok(peer, "AMQPLAIN", shortstr("LOGIN") + b"S" + longstr("guest")
             + shortstr("PASSWORD") + b"x" + longstr("guest"))
    _, c, m, _ = peer.read_method()
    assert (c, m) == (10, 30)  # connection.tune: logged in


@pytest.mark.parametrize("response,why", [
    (shortstr("LOGIN") + b"S" + longstr("guest"), "missing LOGIN or PASSWORD"),
    (shortstr("LOGIN") + b"x" + longstr("guest") + shortstr("PASSWORD") + b"x" + longstr("guest"),
     "unsupported type"),
    (b"\x05LOG", "AMQPLAIN auth info"),
], ids=["missing password", "two byte arrays", "not a table"])
def test_malformed_amqplain_is_a_syntax_error(raw_amqp, response, why):
    """What RabbitMQ 3.10 calls a protocol error (SYNTAX_ERROR) in an AMQPLAIN response: the
    gateway closes with 502 and says why (RabbitMQ closes the socket without a close frame)."""
    peer = raw_amqp()
    start_ok(peer, "AMQPLAIN", response)
    code, text, cls, meth = peer.expect_connection_close()
    assert code == 502 and why in text and (cls, meth) == (10, 11)


@pytest.mark.parametrize("response", [
    table_entries({"LOGIN": "guest", "PASSWORD": "nope"}),
    shortstr("LOGIN") + b"S" + longstr("guest") + shortstr("PASSWORD") + b"I" + struct.pack(">i", 7),
], ids=["wrong password", "integer password"])
def test_amqplain_refused_login_is_access_refused(raw_amqp, response):
    """A wrong password, or a password RabbitMQ 3.10 reads but cannot match (an integer beside
    a long-string LOGIN), is 403 ACCESS_REFUSED, as RabbitMQ answers both."""
    peer = raw_amqp()
    start_ok(peer, "AMQPLAIN", response)
    code, text, _, _ = peer.expect_connection_close()
    assert code == 403 and "AMQPLAIN" in text


def test_unknown_mechanism_is_refused(raw_amqp):
    peer = raw_amqp()
    peer.send(PROTOCOL_HEADER)
    peer.read_method()
    peer.send(method_frame(0, 10, 11, table({}) + shortstr("CRAM-MD5") + longstr("x") + shortstr("en_US")))
    code, text, _, _ = peer.expect_connection_close()
    assert code == 503 and "CRAM-MD5" in text


def test_tune_is_configurable_and_frame_max_negotiated(make_gateway):
    gw = make_gateway({"listeners": {"amqp": {"frame_max": 8192, "channel_max": 4, "heartbeat_s": 7}}})
    peer = RawAmqp(gw.amqp_port)
    try:
        assert peer.handshake(frame_max=8192) == (4, 8192, 7)
        peer.expect_open_ok()
    finally:
        peer.close()
    # pika takes the smaller frame_max; a body larger than a frame arrives split and whole.
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=gw.host, port=gw.amqp_port, frame_max=8192))
    try:
        ch = conn.channel()
        ch.queue_declare("big")
        body = bytes(range(256)) * 200  # 51200 bytes: 7 frames each way
        ch.basic_publish("", "big", body)
        method, _, got = ch.basic_get("big", auto_ack=True)
        assert got == body
    finally:
        conn.close()


def test_frame_max_above_the_servers_is_refused(make_gateway):
    gw = make_gateway({"listeners": {"amqp": {"frame_max": 8192}}})
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake(frame_max=65536, open_connection=False)
        code, _, _, _ = peer.expect_connection_close()
        assert code == 530
    finally:
        peer.close()


def test_channel_above_channel_max_is_not_allowed(raw_amqp):
    peer = raw_amqp()
    peer.handshake(channel_max=2)
    peer.expect_open_ok()
    peer.open_channel(2)
    peer.send(method_frame(3, 20, 10, shortstr("")))
    code, _, cls, meth = peer.expect_connection_close()
    assert (code, cls, meth) == (530, 20, 10)


def test_unknown_vhost_is_not_allowed(raw_amqp):
    peer = raw_amqp()
    peer.handshake(vhost="/other")
    code, text, _, _ = peer.expect_connection_close()
    assert code == 530 and "/other" in text


def test_server_sends_heartbeats_at_the_negotiated_interval(raw_amqp):
    peer = raw_amqp()
    peer.handshake(heartbeat=1)
    peer.expect_open_ok()
    start = time.monotonic()
    seen = 0
    while seen < 2:
        ftype, channel, payload = peer.read_frame(timeout=3)
        if ftype == FRAME_HEARTBEAT:
            assert channel == 0 and payload == b""
            seen += 1
            peer.send(frame(FRAME_HEARTBEAT, 0, b""))
    assert time.monotonic() - start < 5


def test_silent_peer_is_dropped_and_its_deliveries_redelivered(gateway, raw_amqp, amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("hb")
    ch.basic_publish("", "hb", b"payload")
    peer = raw_amqp()
    peer.handshake(heartbeat=1)
    peer.expect_open_ok()
    peer.open_channel(1)
    # basic.consume on "hb", manual ack; the delivery arrives and is never acked.
    peer.send(method_frame(1, 60, 20, struct.pack(">H", 0) + shortstr("hb") + shortstr("silent")
                           + b"\x00" + table({})))
    while True:
        ch_no, c, m, _ = peer.read_method()
        if (c, m) == (60, 60):
            break
    # The peer says nothing from now on (no heartbeats): dropped after two missed intervals.
    peer.expect_closed(timeout=6)
    method, _, body = None, None, None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        method, _, body = ch.basic_get("hb", auto_ack=False)
        if method:
            break
        time.sleep(0.1)
    assert body == b"payload"
    assert method.redelivered is True
    ch.basic_ack(method.delivery_tag)


def test_pika_heartbeats_keep_an_idle_connection_open(amqp):
    conn = amqp(heartbeat=1)
    ch = conn.channel()
    ch.queue_declare("idle")
    conn.sleep(3.5)  # pika answers heartbeats while sleeping
    ch.basic_publish("", "idle", b"still here")
    method, _, body = ch.basic_get("idle", auto_ack=True)
    assert body == b"still here"


def test_client_connection_close_gets_close_ok(raw_amqp):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.send(method_frame(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0)))
    _, c, m, _ = peer.read_method()
    assert (c, m) == (10, 51)
    peer.expect_closed()


@pytest.mark.parametrize(
    "bad, code",
    [
        (frame(1, 0, struct.pack(">HH", 10, 50), end=0x00), 501),  # bad frame end octet
        (method_frame(1, 60, 999), 540),  # unknown method
        (method_frame(1, 99, 10), 540),  # unknown class
        (frame(7, 1, b"x"), 501),  # unknown frame type
        (frame(FRAME_BODY, 0, b"x"), 505),  # content on channel 0
        (frame(FRAME_HEADER, 1, struct.pack(">HHQH", 60, 0, 1, 0)), 505),  # header without publish
        (frame(FRAME_BODY, 1, b"x"), 505),  # body without publish
        (method_frame(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("q")
                      + b"\x00" + b"junk"), 501),  # trailing bytes after the arguments
        (method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("q") + b"\x00"
                      + struct.pack(">I", 5) + shortstr("k") + b"Z"), 501),  # table truncated
        (method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("q") + b"\x00"
                      + struct.pack(">I", 3) + shortstr("k") + b"?"), 502),  # unknown field type
    ],
)
def test_malformed_frames_close_the_connection_with_the_right_code(raw_amqp, amqp, bad, code):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    other = amqp()  # another connection is unaffected
    other_ch = other.channel()
    other_ch.queue_declare("unaffected")
    peer.send(bad)
    got, text, _, _ = peer.expect_connection_close()
    assert got == code, text
    peer.expect_closed()
    other_ch.basic_publish("", "unaffected", b"fine")
    assert other_ch.basic_get("unaffected", auto_ack=True)[2] == b"fine"


def nested_dict(levels: int) -> dict:
    value = {"leaf": "bottom"}
    for _ in range(levels):
        value = {"n": value}
    return value


def nested_table_bytes(levels: int) -> bytes:
    """A field table (with its length) holding `levels` nested tables, built without recursion
    and with every declared length consistent."""
    inner = shortstr("k") + b"S" + longstr("v")
    for _ in range(levels):
        inner = shortstr("a") + b"F" + struct.pack(">I", len(inner)) + inner
    return struct.pack(">I", len(inner)) + inner


def test_nested_tables_up_to_the_depth_limit_round_trip(amqp):
    """pika writes nested dicts as nested field tables: the headers table plus 63 levels (depth
    64, the limit) reaches a consumer unchanged, in headers and in queue arguments."""
    ch = amqp().channel()
    deep = nested_dict(62)  # the headers table, "n" x 62, then the leaf table: depth 64
    ch.queue_declare("deep", arguments={"x-custom": nested_dict(62)})
    ch.basic_publish("", "deep", b"x", pika.BasicProperties(headers={"d": deep}))
    _, props, _ = ch.basic_get("deep", auto_ack=True)
    assert props.headers == {"d": deep}


@pytest.mark.parametrize("where", ["headers", "arguments"])
def test_tables_nested_past_the_limit_are_a_syntax_error(amqp, where):
    """One level more is refused with connection.close 502 SYNTAX_ERROR (the code RabbitMQ
    gives a table it cannot read; RabbitMQ itself has no depth limit), and only that
    connection goes."""
    other = amqp().channel()
    other.queue_declare("bystander")
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("too-deep")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        if where == "headers":
            ch.basic_publish("", "too-deep", b"x", pika.BasicProperties(headers={"d": nested_dict(63)}))
            conn.process_data_events(time_limit=2)
            ch.queue_declare("too-deep", passive=True)
        else:
            ch.queue_declare("too-deep-2", arguments={"x-custom": nested_dict(63)})
    assert err.value.reply_code == 502 and "nested deeper than 64" in err.value.reply_text
    other.basic_publish("", "bystander", b"fine")
    assert other.basic_get("bystander", auto_ack=True)[2] == b"fine"


def test_absurdly_nested_table_is_refused_without_harm(raw_amqp, amqp):
    """A queue.declare whose arguments nest 10,000 tables deep (70 KB, every length consistent,
    under frame_max) is refused with 502 after a bounded look, never a stack overflow: the
    gateway keeps serving others."""
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    other = amqp().channel()
    other.queue_declare("still-alive")
    peer.send(method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("q") + b"\x00"
                           + nested_table_bytes(10_000)))
    code, text, cls, meth = peer.expect_connection_close()
    assert code == 502 and (cls, meth) == (50, 10), text
    peer.expect_closed()
    other.basic_publish("", "still-alive", b"ok")
    assert other.basic_get("still-alive", auto_ack=True)[2] == b"ok"
    # And a fresh connection is served as usual.
    assert amqp().channel().queue_declare("after", passive=False).method.queue == "after"


def test_shutdown_closes_connections_with_320_connection_forced(make_gateway):
    """On SIGTERM the gateway closes every AMQP connection with 320 CONNECTION_FORCED and
    RabbitMQ's text, as RabbitMQ does when it stops; pika sees ConnectionClosedByBroker."""
    import threading

    from gwtest.amqp import pika_connection

    gw = make_gateway()
    conn = pika_connection(gw)
    conn.channel().queue_declare("stopping")
    exit_code = []
    stopper = threading.Thread(target=lambda: exit_code.append(gw.terminate()))
    stopper.start()
    try:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.2)
    finally:
        stopper.join(15)
    assert err.value.reply_code == 320
    assert err.value.reply_text == ("CONNECTION_FORCED - broker forced connection closure "
                                    "with reason 'shutdown'")
    assert exit_code == [0]


def test_shutdown_close_is_on_channel_0_and_close_ok_ends_it(make_gateway):
    """The raw view of the same: connection.close 320 on channel 0 with no failing method (0, 0);
    the peer's close-ok lets the gateway finish at once."""
    import threading

    gw = make_gateway()
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake()
        peer.expect_open_ok()
        stopper = threading.Thread(target=gw.terminate)
        stopper.start()
        started = time.monotonic()
        code, text, cls, meth = peer.expect_connection_close()  # answers close-ok
        assert (code, cls, meth) == (320, 0, 0), text
        stopper.join(15)
        assert time.monotonic() - started < 2.5  # not the 3 s it waits for a silent peer
    finally:
        peer.close()


def test_frame_over_frame_max_is_a_frame_error(make_gateway):
    gw = make_gateway({"listeners": {"amqp": {"frame_max": 4096}}})
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.handshake(frame_max=4096)
        peer.expect_open_ok()
        peer.open_channel(1)
        peer.send(frame(FRAME_BODY, 1, b"x" * 5000))
        code, _, _, _ = peer.expect_connection_close()
        assert code == 501
    finally:
        peer.close()


def test_method_on_a_channel_not_open_is_a_channel_error(raw_amqp):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.send(method_frame(5, 60, 10, struct.pack(">IHB", 0, 10, 0)))  # basic.qos on channel 5
    code, _, cls, meth = peer.expect_connection_close()
    assert (code, cls, meth) == (504, 60, 10)


def test_reopening_an_open_channel_is_a_channel_error(raw_amqp):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 20, 10, shortstr("")))
    code, _, _, _ = peer.expect_connection_close()
    assert code == 504


def test_method_during_content_is_unexpected_frame(raw_amqp):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("q") + b"\x00"))
    peer.send(method_frame(1, 60, 10, struct.pack(">IHB", 0, 10, 0)))
    code, _, _, _ = peer.expect_connection_close()
    assert code == 505


def test_channel_error_closes_only_that_channel(amqp):
    conn = amqp()
    ch1 = conn.channel()
    ch2 = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch1.queue_declare("does-not-exist", passive=True)
    assert err.value.reply_code == 404
    assert "NOT_FOUND" in err.value.reply_text
    assert ch1.is_closed and conn.is_open
    ch2.queue_declare("alive")
    ch2.basic_publish("", "alive", b"ok")
    assert ch2.basic_get("alive", auto_ack=True)[2] == b"ok"


def test_handshake_timeout_drops_a_silent_client(make_gateway):
    gw = make_gateway({"listeners": {"amqp": {"connect_timeout_ms": 300}}})
    peer = RawAmqp(gw.amqp_port)
    try:
        peer.send(PROTOCOL_HEADER)
        peer.read_method()  # connection.start; no start-ok follows
        with pytest.raises(Closed):
            peer.read_bytes(1, timeout=5)
    finally:
        peer.close()


def test_channel_flow(raw_amqp):
    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 20, 20, b"\x01"))  # active=true: flow-ok
    assert peer.read_method()[1:] == (20, 21, b"\x01")
    peer.send(method_frame(1, 20, 20, b"\x00"))  # active=false: not implemented, as RabbitMQ 3
    code, text, cls, meth = peer.expect_connection_close()
    assert (code, cls, meth) == (540, 20, 20)


def test_random_frames_never_take_the_gateway_down(gateway, raw_amqp, amqp):
    import random

    rng = random.Random(5672)
    survivor = amqp().channel()
    survivor.queue_declare("survivor")
    for _ in range(40):
        peer = raw_amqp()
        peer.handshake()
        peer.expect_open_ok()
        peer.open_channel(1)
        junk = b""
        for _ in range(rng.randint(1, 6)):
            ftype = rng.choice([1, 1, 1, 2, 3, 8, rng.randint(0, 255)])
            channel = rng.choice([0, 1, 1, 2, rng.randint(0, 65535)])
            if ftype == 1 and rng.random() < 0.7:
                cls, meth = rng.choice([(10, 50), (20, 10), (40, 10), (50, 10), (60, 40), (60, 80),
                                        (85, 10), (90, 20), (rng.randint(0, 200), rng.randint(0, 200))])
                payload = struct.pack(">HH", cls, meth) + rng.randbytes(rng.randint(0, 40))
            else:
                payload = rng.randbytes(rng.randint(0, 60))
            end = 0xCE if rng.random() < 0.9 else rng.randint(0, 255)
            junk += frame(ftype, channel, payload, end=end)
        try:
            peer.send(junk)
            peer.expect_closed(timeout=5)
        except (TimeoutError, OSError):
            pass  # the junk happened to be valid enough to keep the connection: fine
        peer.close()
    survivor.basic_publish("", "survivor", b"alive")
    assert survivor.basic_get("survivor", auto_ack=True)[2] == b"alive"
    assert gateway.running
