"""Protocol details that clients rely on and that no well-behaved client exercises on its own:
ApiVersions negotiation, the JoinGroup member-id handshake, rebalance signalling through
heartbeats, and malformed requests closing only their own connection."""

from __future__ import annotations

import struct
import time

from gwtest.kafka import RawKafka, join_group_v5, kstr, parse_join_response_v5

API_VERSIONS, JOIN_GROUP, HEARTBEAT, PRODUCE, METADATA = 18, 11, 12, 0, 3


def raw(gw):
    return RawKafka(gw.host, gw.kafka_port)


def test_api_versions_v3_has_a_v0_response_header(kafka_gateway):
    gw = kafka_gateway()
    r = raw(gw)
    # Flexible request body: compact client software name and version, empty tags.
    corr = r.request(API_VERSIONS, 3, b"\x05test\x041.0\x00", flexible=True)
    frame = r.read_frame()
    (got_corr, error) = struct.unpack(">ih", frame[:6])
    assert (got_corr, error) == (corr, 0)
    # No tag byte after the correlation id: the error code follows at once, then the
    # compact array of API keys.
    count = frame[6] - 1
    keys = {struct.unpack(">h", frame[7 + i * 7:9 + i * 7])[0]: struct.unpack(">hh", frame[9 + i * 7:13 + i * 7])
            for i in range(count)}
    assert keys[PRODUCE][1] >= 3, "Produce >= 3 keeps clients on record batch v2"
    assert keys[1][1] >= 4, "Fetch >= 4"
    for k in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 32):
        assert k in keys, f"API {k} advertised"
    r.close()


def test_unsupported_api_versions_version_gets_unsupported_version_and_a_v0_body(kafka_gateway):
    gw = kafka_gateway()
    r = raw(gw)
    corr = r.request(API_VERSIONS, 99, b"\x00whatever", flexible=True)
    frame = r.read_frame()
    got_corr, error, count = struct.unpack(">ihi", frame[:10])
    assert (got_corr, error) == (corr, 35)
    assert count >= 15
    # v0 body: exactly count * (key, min, max), no throttle time, no tags.
    assert len(frame) == 10 + count * 6
    # The connection stays usable: ask again with v0.
    corr = r.request(API_VERSIONS, 0, b"")
    got_corr, error = struct.unpack(">ih", r.read_frame()[:6])
    assert (got_corr, error) == (corr, 0)
    r.close()


def test_join_with_empty_member_id_requires_a_member_id_then_rebalances(kafka_gateway):
    gw = kafka_gateway()
    a = raw(gw)
    a.request(JOIN_GROUP, 5, join_group_v5("g", ""))
    first = parse_join_response_v5(a.read_frame())
    assert first["error"] == 79, "MEMBER_ID_REQUIRED"
    assert first["member_id"]
    a.request(JOIN_GROUP, 5, join_group_v5("g", first["member_id"]))
    joined = parse_join_response_v5(a.read_frame())
    assert joined["error"] == 0
    assert joined["generation"] == 1
    assert joined["leader"] == first["member_id"] == joined["member_id"]
    assert joined["members"] == 1
    assert joined["protocol"] == "range"
    # A member id nobody handed out is refused.
    a.request(JOIN_GROUP, 5, join_group_v5("g", "made-up"))
    assert parse_join_response_v5(a.read_frame())["error"] == 25, "UNKNOWN_MEMBER_ID"

    # A second member arrives: the first learns from its heartbeat that it must rejoin.
    b = raw(gw)
    b.request(JOIN_GROUP, 5, join_group_v5("g", ""))
    b_id = parse_join_response_v5(b.read_frame())["member_id"]
    b.request(JOIN_GROUP, 5, join_group_v5("g", b_id))  # waits for the rebalance
    heartbeat = kstr("g") + struct.pack(">i", 1) + kstr(first["member_id"]) + kstr(None)
    errors = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and 27 not in errors:
        corr = a.request(HEARTBEAT, 3, heartbeat)
        got_corr, _throttle, error = struct.unpack(">iih", a.read_frame())
        assert got_corr == corr
        errors.append(error)
        time.sleep(0.05)
    # NONE until b's JoinGroup (on another connection) has been handled, then the signal.
    assert errors[-1] == 27, f"REBALANCE_IN_PROGRESS expected, got {errors}"
    assert set(errors) <= {0, 27}
    a.request(JOIN_GROUP, 5, join_group_v5("g", first["member_id"]))
    a2 = parse_join_response_v5(a.read_frame())
    b2 = parse_join_response_v5(b.read_frame())
    assert a2["generation"] == b2["generation"] == 2
    assert a2["leader"] == b2["leader"] == first["member_id"]
    assert (a2["members"], b2["members"]) == (2, 0), "only the leader sees the members"
    a.close()
    b.close()


def test_malformed_requests_close_only_their_connection(kafka_gateway, kcat):
    gw = kafka_gateway()
    bystander = raw(gw)
    bystander.request(API_VERSIONS, 0, b"")
    bystander.read_frame()

    garbage = raw(gw)
    garbage.send_frame(b"\x00\x03\x00\x01\x00\x00\x00\x01\xff\xff\xff")  # Metadata v1, cut short
    assert garbage.closed_by_peer()

    unknown = raw(gw)
    unknown.request(999, 0, b"")
    assert unknown.closed_by_peer()

    bad_version = raw(gw)
    bad_version.request(METADATA, 99, b"")
    assert bad_version.closed_by_peer()

    huge = raw(gw)
    huge.sock.sendall(struct.pack(">i", 2**31 - 1))
    assert huge.closed_by_peer()

    negative_array = raw(gw)
    negative_array.request(METADATA, 1, struct.pack(">i", -5))
    assert negative_array.closed_by_peer()

    # Everyone else carries on.
    corr = bystander.request(API_VERSIONS, 0, b"")
    assert struct.unpack(">i", bystander.read_frame()[:4])[0] == corr
    kcat(gw, "-P", "-t", "after", input="still works\n")
    assert kcat(gw, "-C", "-t", "after", "-e", "-q").text == "still works\n"


def test_a_waiting_fetch_is_answered_when_a_record_arrives(kafka_gateway, kcat):
    gw = kafka_gateway()
    kcat(gw, "-P", "-t", "waits", "-p", "0", input="first\n")
    r = raw(gw)
    # Fetch v4 from offset 1 (the end): max_wait 20 s, min_bytes 1, so only an append answers.
    body = (struct.pack(">iiiib", -1, 20_000, 1, 1 << 20, 0) + struct.pack(">i", 1) + kstr("waits")
            + struct.pack(">i", 1) + struct.pack(">iqi", 0, 1, 1 << 20))
    corr = r.request(1, 4, body)
    kcat(gw, "-P", "-t", "waits", "-p", "0", input="woken\n")
    frame = r.read_frame()
    assert struct.unpack(">i", frame[:4])[0] == corr
    pos = 4 + 4 + 4  # correlation, throttle, topic count
    (name_len,) = struct.unpack(">h", frame[pos:pos + 2])
    pos += 2 + name_len + 4  # topic name, partition count
    partition, error, high_watermark = struct.unpack(">ihq", frame[pos:pos + 14])
    assert (partition, error, high_watermark) == (0, 0, 2)
    assert b"woken" in frame and b"first" not in frame
    r.close()


def fetch_v7(session_id: int, epoch: int, topic: str = "sessions", offset: int = 0) -> bytes:
    """A Fetch v7 body: no wait, one partition of `topic` from `offset`, no forgotten topics."""
    return (
        struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, session_id, epoch)
        + struct.pack(">i", 1) + kstr(topic)
        + struct.pack(">i", 1) + struct.pack(">iqqi", 0, offset, -1, 1 << 20)
        + struct.pack(">i", 0)
    )


def test_fetch_sessions_are_answered_as_by_a_broker_without_sessions(kafka_gateway, kcat):
    """No incremental fetch sessions (KIP-227): a full fetch (session 0, epoch 0 or -1) gets a
    full answer with session id 0, which tells the client not to use sessions; an incremental
    fetch naming a session gets FETCH_SESSION_ID_NOT_FOUND (70), as from a broker that does
    not know it."""
    gw = kafka_gateway()
    kcat(gw, "-P", "-t", "sessions", input="a\nb\n")
    r = raw(gw)
    for epoch in (0, -1):
        r.request(1, 7, fetch_v7(0, epoch))
        frame = r.read_frame()
        _corr, _throttle, error, session = struct.unpack(">iihi", frame[:14])
        assert (error, session) == (0, 0)
        assert b"sessions" in frame and b"a" in frame and b"b" in frame
    r.request(1, 7, fetch_v7(42, 1))
    frame = r.read_frame()
    _corr, _throttle, error, session = struct.unpack(">iihi", frame[:14])
    assert (error, session) == (70, 0)
    # The connection stays usable.
    r.request(1, 7, fetch_v7(0, 0, offset=1))
    frame = r.read_frame()
    assert struct.unpack(">h", frame[8:10]) == (0,)
    r.close()


def _fetch_v4(topic: str, offset: int, max_wait_ms: int, min_bytes: int) -> bytes:
    return (struct.pack(">iiiib", -1, max_wait_ms, min_bytes, 1 << 20, 0) + struct.pack(">i", 1)
            + kstr(topic) + struct.pack(">i", 1) + struct.pack(">iqi", 0, offset, 1 << 20))


def test_a_fetch_with_min_bytes_waits_for_enough_bytes_or_its_max_wait(kafka_gateway, kcat):
    """min_bytes 1000: a small append does not answer the fetch, its max wait does (with the
    small record); a later fetch is answered as soon as the appends reach 1000 bytes."""
    import socket
    import time

    gw = kafka_gateway()
    kcat(gw, "-P", "-t", "minbytes", "-p", "0", input="first\n")
    r = raw(gw)
    r.sock.settimeout(30)
    started = time.monotonic()
    corr = r.request(1, 4, _fetch_v4("minbytes", 1, 3000, 1000))
    kcat(gw, "-P", "-t", "minbytes", "-p", "0", input="tiny\n")
    frame = r.read_frame()
    waited = time.monotonic() - started
    assert struct.unpack(">i", frame[:4])[0] == corr
    assert 2.7 <= waited < 10, f"answered after {waited:.2f}s, not at the 3 s max wait"
    assert b"tiny" in frame and b"first" not in frame

    # max_wait 20 s: one small append is not enough; a large one answers at once.
    started = time.monotonic()
    corr = r.request(1, 4, _fetch_v4("minbytes", 2, 20_000, 1000))
    kcat(gw, "-P", "-t", "minbytes", "-p", "0", input="small\n")
    r.sock.settimeout(1.5)
    try:
        early = r.sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        early = b""
    assert early == b"", "answered before min_bytes were available"
    r.sock.settimeout(30)
    kcat(gw, "-P", "-t", "minbytes", "-p", "0", input="B" * 2000 + "\n")
    frame = r.read_frame()
    waited = time.monotonic() - started
    assert struct.unpack(">i", frame[:4])[0] == corr
    assert waited < 10, f"answered after {waited:.2f}s: the 2000-byte append should answer it"
    assert b"small" in frame and b"B" * 2000 in frame
    r.close()
