"""SUBSCRIBE / UNSUBSCRIBE: wildcards, $-topics, shared subscriptions, QoS downgrade, MQTT 5
subscription options and reason codes."""

from __future__ import annotations

import time

import pytest

from gwtest import mqtt as m

# (filter, topic, matches) with "P" replaced by a per-test prefix.
MATCHING = [
    ("P/+", "P/a", True),
    ("P/+", "P/", True),
    ("P/+", "P", False),
    ("P/+", "P/a/b", False),
    ("P/#", "P", True),
    ("P/#", "P/a", True),
    ("P/#", "P/a/b/c", True),
    ("P/+/c", "P/b/c", True),
    ("P/+/c", "P/b/d", False),
    ("P/+/c", "P/b/x/c", False),
    ("P/a/b", "P/a/b", True),
    ("P/a/b", "P/A/b", False),
    ("P/a/b", "P/a/b/", False),
    ("P/+/+", "P/x/y", True),
    ("P/+/#", "P/x", True),
    ("P//x", "P//x", True),
    ("P/+/x", "P//x", True),
]


@pytest.mark.parametrize("version", [4, 5])
def test_wildcard_matching(mqtt, version):
    sub = mqtt(version=version)
    pub = mqtt(version=version)
    prefix = m.new_topic("w").replace("/", "_")
    for i, (flt, topic, expect) in enumerate(MATCHING):
        p = f"{prefix}{i}"
        sub.subscribe(flt.replace("P", p), qos=0)
        sentinel = f"{p}-end"
        sub.subscribe(sentinel, qos=0)
        pub.publish(topic.replace("P", p), b"probe", qos=1)
        pub.publish(sentinel, b"end", qos=1)
        got = []
        while True:
            msg = sub.get()
            if msg.topic == sentinel:
                break
            got.append(msg.topic)
        assert got == ([topic.replace("P", p)] if expect else []), f"{flt!r} vs {topic!r}"


@pytest.mark.parametrize("version", [4, 5])
def test_dollar_topics_not_matched_by_leading_wildcards(mqtt, version):
    tag = m.new_id("d")
    dollar = f"$gwtest/{tag}/x"
    hash_sub = mqtt(version=version)
    hash_sub.subscribe("#", qos=1)
    plus_sub = mqtt(version=version)
    plus_sub.subscribe(f"+/{tag}/x", qos=1)
    plus_hash = mqtt(version=version)
    plus_hash.subscribe("+/#", qos=1)
    explicit = mqtt(version=version)
    explicit.subscribe(f"$gwtest/{tag}/#", qos=1)
    explicit_plus = mqtt(version=version)
    explicit_plus.subscribe(f"$gwtest/+/x", qos=1)
    pub = mqtt(version=version)
    pub.publish(dollar, b"dollar", qos=1)
    normal = f"gwtest/{tag}/x"
    pub.publish(normal, b"plain", qos=1)
    assert explicit.get().payload == b"dollar"
    assert explicit_plus.get().payload == b"dollar"
    for c in (hash_sub, plus_sub, plus_hash):
        topics = [x.topic for x in c.get_n(1)]
        topics += [x.topic for x in c.drain() if not x.topic.startswith("$SYS/")]
        assert topics == [normal], f"{c.client_id}: {topics}"


def test_hash_subscriber_sees_no_sys_topics(mqtt):
    c = mqtt()
    c.subscribe("#", qos=0)
    c.expect_no_message(0.5)  # mosquitto has retained $SYS/... topics; none may match '#'


@pytest.mark.parametrize("version", [4, 5])
def test_subscription_qos_downgrade(mqtt, version):
    topic = m.new_topic()
    sub = mqtt(version=version)
    assert [int(getattr(g, "value", g)) for g in sub.subscribe(topic, qos=1)] == [1]
    pub = mqtt(version=version)
    pub.publish(topic, b"two", qos=2)
    msg = sub.get()
    assert (msg.payload, msg.qos) == (b"two", 1)


def test_raw_suback_one_code_per_filter(raw):
    r = raw()
    r.connect()
    ack = r.subscribe([("a/0", 0), ("a/1", 1), ("a/2", 2)], pid=99)
    assert ack.pid == 99 and ack.codes == [0, 1, 2]


def test_resubscribe_replaces_qos_without_duplicates(mqtt):
    topic = m.new_topic()
    sub = mqtt()
    sub.subscribe(topic, qos=0)
    sub.subscribe(topic, qos=2)
    mqtt().publish(topic, b"once", qos=2)
    msg = sub.get()
    assert (msg.payload, msg.qos) == (b"once", 2)
    sub.expect_no_message(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery(mqtt, version):
    topic = m.new_topic()
    sub = mqtt(version=version)
    sub.subscribe(f"{topic}/#", qos=1)
    sub.subscribe(f"{topic}/keep", qos=1)
    codes = sub.unsubscribe(f"{topic}/#")
    if version == 5:
        assert [c.value for c in codes] == [0x00]
    pub = mqtt()
    pub.publish(f"{topic}/gone", b"no", qos=1)
    pub.publish(f"{topic}/keep", b"yes", qos=1)
    assert sub.get().payload == b"yes"
    sub.expect_no_message(0.3)


def test_v5_unsuback_no_subscription_existed(raw):
    r = raw(version=5)
    r.connect()
    r.subscribe([("u/a", 1)])
    r.send(m.unsubscribe_packet(5, ["u/a", "u/never"], version=5))
    ack = r.expect(m.UNSUBACK)
    assert ack.pid == 5 and ack.codes == [0x00, 0x11]


def test_v311_unsuback(raw):
    r = raw()
    r.connect()
    r.send(m.unsubscribe_packet(7, ["never/subscribed"]))
    ack = r.expect(m.UNSUBACK)
    assert ack.pid == 7 and ack.body == b"\x00\x07"


@pytest.mark.parametrize("version", [4, 5])
def test_shared_subscription_each_message_once_per_group(mqtt, version):
    topic = m.new_topic("sh")
    g1 = [mqtt(version=version) for _ in range(2)]
    for c in g1:
        c.subscribe(f"$share/g1/{topic}/#", qos=1)
    g2 = mqtt(version=version)
    g2.subscribe(f"$share/g2/{topic}/#", qos=1)
    plain = mqtt(version=version)
    plain.subscribe(f"{topic}/#", qos=1)
    pub = mqtt()
    n = 20
    for i in range(n):
        pub.publish(f"{topic}/{i}", str(i).encode(), qos=1)
    assert sorted(int(x.payload) for x in g2.get_n(n)) == list(range(n))
    assert sorted(int(x.payload) for x in plain.get_n(n)) == list(range(n))
    deadline = time.monotonic() + 5
    while sum(len(c.messages) for c in g1) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # any duplicate would show up now
    per_member = [c.drain() for c in g1]
    got = sorted(int(x.payload) for ms in per_member for x in ms)
    assert got == list(range(n)), "each message exactly once across the group"
    assert all(per_member), f"both members get a share: {[len(x) for x in per_member]}"
    for ms in per_member:
        assert all(x.topic.startswith(topic) for x in ms), "delivered under the real topic name"


def test_shared_subscription_survivor_gets_everything(mqtt):
    topic = m.new_topic("sh")
    a, b = mqtt(version=5), mqtt(version=5)
    a.subscribe(f"$share/g/{topic}", qos=1)
    b.subscribe(f"$share/g/{topic}", qos=1)
    a.disconnect()
    pub = mqtt()
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=1)
    assert [int(x.payload) for x in b.get_n(5)] == list(range(5))


def test_shared_unsubscribe(mqtt):
    topic = m.new_topic("sh")
    a, b = mqtt(version=5), mqtt(version=5)
    a.subscribe(f"$share/g/{topic}", qos=1)
    b.subscribe(f"$share/g/{topic}", qos=1)
    a.unsubscribe(f"$share/g/{topic}")
    pub = mqtt()
    for i in range(4):
        pub.publish(topic, str(i).encode(), qos=1)
    assert len(b.get_n(4)) == 4
    a.expect_no_message(0.2)


@pytest.mark.parametrize("bad", [
    pytest.param("$share/g", marks=pytest.mark.gateway_only),
    pytest.param("$share//t", marks=pytest.mark.gateway_only),
    "$share/g+/t",
    "$share/g#/t",
])
def test_v5_invalid_shared_filter_refused(raw, bad):
    """An invalid share name / missing filter: SUBACK failure or a closed connection. mosquitto
    2.0.11 refuses wildcards in the share name (DISCONNECT 0x81) but grants `$share/g` and
    `$share//t` as if they were ordinary filters (hence gateway_only for those two)."""
    r = raw(version=5)
    r.connect()
    r.send(m.subscribe_packet(1, [(bad, 1)], version=5))
    try:
        p = r.recv(3)
    except m.Closed:
        return
    if p.type == m.SUBACK:
        assert p.codes[0] >= 0x80, p
    else:
        assert (p.type, p.reason) in ((m.DISCONNECT, 0x81), (m.DISCONNECT, 0x82), (m.DISCONNECT, 0x8F)), p
        r.expect_closed()


# --- MQTT 5 subscription options ---------------------------------------------------------------


def test_v5_no_local(raw):
    topic = m.new_topic()
    r = raw(version=5)
    r.connect()
    r.subscribe([(topic, 0x01 | 0x04)])  # QoS 1, no local
    r.publish(topic, b"mine", qos=1, pid=1)
    assert r.expect(m.PUBACK).pid == 1
    r.expect_silence(0.3)


def test_v5_subscription_identifier(raw, mqtt):
    topic = m.new_topic()
    r = raw(version=5)
    r.connect()
    r.subscribe([(f"{topic}/#", 1)], pid=1, properties={"subscription_id": 7})
    mqtt().publish(f"{topic}/x", b"x", qos=1)
    p = r.expect(m.PUBLISH)
    assert p.props.get("subscription_id") == [7]
