"""PUBLISH QoS 0/1/2 in both directions: packet ids, acks, DUP, exactly-once across reconnects,
in-flight windows (MQTT 5 Receive Maximum), ordering."""

from __future__ import annotations

import pytest

from gwtest import mqtt as m


@pytest.mark.parametrize("version", [3, 4, 5])
def test_qos_matrix_delivered_at_min_of_publish_and_subscription(mqtt, version):
    sub = mqtt(version=version)
    pub = mqtt(version=version)
    base = m.new_topic("qos")
    for sq in (0, 1, 2):
        granted = sub.subscribe(f"{base}/s{sq}/#", qos=sq)
        assert [int(getattr(g, "value", g)) for g in granted] == [sq]
    for pq in (0, 1, 2):
        for sq in (0, 1, 2):
            pub.publish(f"{base}/s{sq}/p{pq}", f"{pq}{sq}".encode(), qos=pq)
    got = {msg.topic: msg for msg in sub.get_n(9)}
    for pq in (0, 1, 2):
        for sq in (0, 1, 2):
            msg = got[f"{base}/s{sq}/p{pq}"]
            assert msg.payload == f"{pq}{sq}".encode()
            assert msg.qos == min(pq, sq), f"publish QoS {pq} to a QoS {sq} subscription"
    sub.expect_no_message(0.2)


@pytest.mark.parametrize("version", [4, 5])
def test_raw_qos1_inbound_puback_carries_packet_id(raw, version):
    r = raw(version=version)
    r.connect()
    topic = m.new_topic()
    for pid in (1, 0x1234, 0xFFFF):
        r.publish(topic, b"x", qos=1, pid=pid)
        ack = r.expect(m.PUBACK)
        assert ack.pid == pid


@pytest.mark.parametrize("version", [4, 5])
def test_raw_qos2_inbound_flow(raw, version):
    sub = raw(version=version)
    sub.connect()
    topic = m.new_topic()
    sub.subscribe([(topic, 0)])
    r = raw(version=version)
    r.connect()
    r.publish(topic, b"once", qos=2, pid=42)
    assert r.expect(m.PUBREC).pid == 42
    r.ack(m.PUBREL, 42)
    assert r.expect(m.PUBCOMP).pid == 42
    got = sub.expect(m.PUBLISH)
    assert got.payload == b"once" and got.qos == 0
    sub.expect_silence(0.3)


@pytest.mark.parametrize("sub_qos", [1, 2])
def test_raw_outbound_packet_ids_nonzero_and_distinct_while_in_flight(raw, mqtt, sub_qos):
    sub = raw()
    sub.connect()
    topic = m.new_topic()
    assert sub.subscribe([(topic, sub_qos)]).codes == [sub_qos]
    pub = mqtt()
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=sub_qos)
    pubs = [sub.expect(m.PUBLISH) for _ in range(5)]
    assert [p.payload for p in pubs] == [b"0", b"1", b"2", b"3", b"4"], "in order"
    pids = [p.pid for p in pubs]
    assert all(pids) and len(set(pids)) == 5, pids
    assert all(p.qos == sub_qos and not p.dup for p in pubs)
    for p in pubs:
        if sub_qos == 1:
            sub.ack(m.PUBACK, p.pid)
        else:
            sub.ack(m.PUBREC, p.pid)
            assert sub.expect(m.PUBREL).pid == p.pid
            sub.ack(m.PUBCOMP, p.pid)
    sub.expect_silence(0.3)


def test_raw_outbound_qos2_pubrel_has_flags_0010(raw, mqtt):
    sub = raw()
    sub.connect()
    topic = m.new_topic()
    sub.subscribe([(topic, 2)])
    mqtt().publish(topic, b"x", qos=2)
    p = sub.expect(m.PUBLISH)
    sub.ack(m.PUBREC, p.pid)
    rel = sub.expect(m.PUBREL)
    assert rel.pid == p.pid and rel.flags == 0x02
    sub.ack(m.PUBCOMP, p.pid)
    sub.expect_silence(0.3)


def test_qos2_duplicate_publish_before_pubrel_delivered_once(raw, mqtt):
    topic = m.new_topic()
    sub = mqtt()
    sub.subscribe(topic, qos=2)
    r = raw()
    r.connect()
    r.publish(topic, b"exactly once", qos=2, pid=9)
    assert r.expect(m.PUBREC).pid == 9
    r.publish(topic, b"exactly once", qos=2, pid=9, dup=True)
    assert r.expect(m.PUBREC).pid == 9
    r.ack(m.PUBREL, 9)
    assert r.expect(m.PUBCOMP).pid == 9
    assert sub.get().payload == b"exactly once"
    sub.expect_no_message(0.4)


def test_qos1_duplicate_publish_acked_each_time(raw, mqtt):
    """QoS 1 is at least once: a DUP resend is acked again; the subscriber sees it 1 or 2 times."""
    topic = m.new_topic()
    sub = mqtt()
    sub.subscribe(topic, qos=1)
    r = raw()
    r.connect()
    r.publish(topic, b"a", qos=1, pid=3)
    assert r.expect(m.PUBACK).pid == 3
    r.publish(topic, b"a", qos=1, pid=3, dup=True)
    assert r.expect(m.PUBACK).pid == 3
    assert sub.get().payload == b"a"
    extra = sub.drain()
    assert all(x.payload == b"a" for x in extra) and len(extra) <= 1


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("resend_publish", [True, False], ids=["resend-publish", "pubrel-only"])
def test_qos2_inbound_exactly_once_across_publisher_reconnect(raw, mqtt, version, resend_publish):
    topic, cid = m.new_topic(), m.new_id()
    sub = mqtt()
    sub.subscribe(topic, qos=2)
    sess = {"session_expiry": 60} if version == 5 else None
    r = raw(version=version)
    r.connect(client_id=cid, clean=False, properties=sess)
    r.publish(topic, b"x2", qos=2, pid=77)
    assert r.expect(m.PUBREC).pid == 77
    r.close()  # crash before PUBREL
    r = raw(version=version)
    assert r.connect(client_id=cid, clean=False, properties=sess).session_present
    if resend_publish:
        r.publish(topic, b"x2", qos=2, pid=77, dup=True)
        assert r.expect(m.PUBREC).pid == 77
    r.ack(m.PUBREL, 77)
    assert r.expect(m.PUBCOMP).pid == 77
    assert sub.get().payload == b"x2"
    sub.expect_no_message(0.4)


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_outbound_unacked_publish_resent_with_dup_after_reconnect(raw, mqtt, version):
    topic, cid = m.new_topic(), m.new_id()
    sess = {"session_expiry": 60} if version == 5 else None
    s = raw(version=version)
    s.connect(client_id=cid, clean=False, properties=sess)
    s.subscribe([(topic, 2)])
    mqtt().publish(topic, b"q2", qos=2)
    first = s.expect(m.PUBLISH)
    assert not first.dup
    s.close()  # crash before PUBREC
    s = raw(version=version)
    assert s.connect(client_id=cid, clean=False, properties=sess).session_present
    again = s.expect(m.PUBLISH)
    assert (again.pid, again.payload, again.qos, again.dup) == (first.pid, b"q2", 2, True)
    s.ack(m.PUBREC, again.pid)
    assert s.expect(m.PUBREL).pid == again.pid
    s.ack(m.PUBCOMP, again.pid)
    s.expect_silence(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_outbound_after_pubrec_only_pubrel_is_resent(raw, mqtt, version):
    """Once the subscriber sent PUBREC it owns the message: on reconnect the broker resends
    PUBREL, never the PUBLISH (no second delivery)."""
    topic, cid = m.new_topic(), m.new_id()
    sess = {"session_expiry": 60} if version == 5 else None
    s = raw(version=version)
    s.connect(client_id=cid, clean=False, properties=sess)
    s.subscribe([(topic, 2)])
    mqtt().publish(topic, b"q2", qos=2)
    p = s.expect(m.PUBLISH)
    s.ack(m.PUBREC, p.pid)
    assert s.expect(m.PUBREL).pid == p.pid
    s.close()  # crash before PUBCOMP
    s = raw(version=version)
    assert s.connect(client_id=cid, clean=False, properties=sess).session_present
    rel = s.expect(m.PUBREL)
    assert rel.pid == p.pid
    s.ack(m.PUBCOMP, p.pid)
    s.expect_silence(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_outbound_unacked_redelivered_with_dup(raw, mqtt, version):
    topic, cid = m.new_topic(), m.new_id()
    sess = {"session_expiry": 60} if version == 5 else None
    s = raw(version=version)
    s.connect(client_id=cid, clean=False, properties=sess)
    s.subscribe([(topic, 1)])
    mqtt().publish(topic, b"q1", qos=1)
    first = s.expect(m.PUBLISH)
    s.close()
    s = raw(version=version)
    assert s.connect(client_id=cid, clean=False, properties=sess).session_present
    again = s.expect(m.PUBLISH)
    assert (again.pid, again.payload, again.dup) == (first.pid, b"q1", True)
    s.ack(m.PUBACK, again.pid)
    s.expect_silence(0.3)


def test_v5_receive_maximum_limits_initial_window(raw, mqtt):
    """With nothing acked, the broker sends at most Receive Maximum QoS>0 PUBLISHes; acking
    them all releases the rest, in order."""
    topic = m.new_topic()
    s = raw(version=5)
    s.connect(properties={"receive_maximum": 2})
    s.subscribe([(topic, 1)])
    pub = mqtt()
    for i in range(6):
        pub.publish(topic, str(i).encode(), qos=1)
    window = [s.expect(m.PUBLISH), s.expect(m.PUBLISH)]
    assert [p.payload for p in window] == [b"0", b"1"]
    s.expect_silence(0.5)
    got = list(window)
    while len(got) < 6:
        for p in window:
            s.ack(m.PUBACK, p.pid)
        window = [s.expect(m.PUBLISH)]
        while (p := s.recv(0.2)) is not None:
            window.append(p)
        got += window
    assert [p.payload for p in got] == [b"0", b"1", b"2", b"3", b"4", b"5"]


@pytest.mark.gateway_only
def test_v5_receive_maximum_each_ack_releases_exactly_one(raw, mqtt):
    """The window stays at Receive Maximum for the whole session. mosquitto 2.0.11 honours only
    the first window: each later PUBACK releases a whole window's worth (see README)."""
    topic = m.new_topic()
    s = raw(version=5)
    s.connect(properties={"receive_maximum": 2})
    s.subscribe([(topic, 1)])
    pub = mqtt()
    for i in range(6):
        pub.publish(topic, str(i).encode(), qos=1)
    a, b = s.expect(m.PUBLISH), s.expect(m.PUBLISH)
    assert [a.payload, b.payload] == [b"0", b"1"]
    s.expect_silence(0.5)
    s.ack(m.PUBACK, a.pid)
    c = s.expect(m.PUBLISH)
    assert c.payload == b"2"
    s.expect_silence(0.3)
    for p in (b, c):
        s.ack(m.PUBACK, p.pid)
    rest = [s.expect(m.PUBLISH) for _ in range(2)]
    assert [p.payload for p in rest] == [b"3", b"4"]
    s.expect_silence(0.3)


def test_v5_receive_maximum_qos2_counts_until_pubcomp(raw, mqtt):
    topic = m.new_topic()
    s = raw(version=5)
    s.connect(properties={"receive_maximum": 1})
    s.subscribe([(topic, 2)])
    pub = mqtt()
    pub.publish(topic, b"a", qos=2)
    pub.publish(topic, b"b", qos=2)
    a = s.expect(m.PUBLISH)
    s.ack(m.PUBREC, a.pid)
    assert s.expect(m.PUBREL).pid == a.pid
    s.expect_silence(0.4)  # still in flight until PUBCOMP
    s.ack(m.PUBCOMP, a.pid)
    assert s.expect(m.PUBLISH).payload == b"b"


def test_v5_qos0_not_limited_by_receive_maximum(raw, mqtt):
    topic = m.new_topic()
    s = raw(version=5)
    s.connect(properties={"receive_maximum": 1})
    s.subscribe([(topic, 0)])
    pub = mqtt()
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=1)
    got = [s.expect(m.PUBLISH) for _ in range(5)]
    assert [p.payload for p in got] == [b"0", b"1", b"2", b"3", b"4"]
    assert all(p.qos == 0 for p in got)


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_order_preserved_many(mqtt, version):
    topic = m.new_topic()
    sub = mqtt(version=version)
    sub.subscribe(topic, qos=1)
    pub = mqtt(version=version)
    for i in range(200):
        pub.publish(topic, str(i).encode(), qos=1, wait=False)
    got = sub.get_n(200, timeout=10)
    assert [int(x.payload) for x in got] == list(range(200))


def test_v5_puback_reason_codes(mqtt):
    pub = mqtt(version=5)
    nobody = m.new_topic()
    info = pub.publish(nobody, b"x", qos=1)
    assert pub.puback_reason(info.mid).value in (0x00, 0x10), "success or 'no matching subscribers'"
    topic = m.new_topic()
    mqtt(version=5).subscribe(topic, qos=1)
    info = pub.publish(topic, b"x", qos=1)
    assert pub.puback_reason(info.mid).value == 0x00
