"""MQTT 5 specifics: message properties round trip, topic aliases, maximum packet size, CONNACK
properties, reason codes and reason strings."""

from __future__ import annotations

import pytest

from gwtest import mqtt as m


def test_publish_properties_round_trip(mqtt):
    topic = m.new_topic("props")
    sub = mqtt(version=5)
    sub.subscribe(topic, qos=1)
    pub = mqtt(version=5)
    pub.publish(topic, "température".encode(), qos=1, properties=m.props(
        UserProperty=[("b", "2"), ("a", "1"), ("a", "again"), ("ünï", "cødé")],
        ContentType="text/plain; charset=utf-8",
        ResponseTopic="replies/42",
        CorrelationData=b"\x00\xffcorr",
        PayloadFormatIndicator=1,
        MessageExpiryInterval=120,
    ))
    msg = sub.get()
    p = msg.properties
    assert msg.payload == "température".encode()
    assert p.UserProperty == [("b", "2"), ("a", "1"), ("a", "again"), ("ünï", "cødé")], "order and repeats kept"
    assert p.ContentType == "text/plain; charset=utf-8"
    assert p.ResponseTopic == "replies/42"
    assert p.CorrelationData == b"\x00\xffcorr"
    assert p.PayloadFormatIndicator == 1
    assert 115 <= p.MessageExpiryInterval <= 120


def test_properties_survive_offline_queue_and_retain(mqtt):
    topic = m.new_topic("props")
    pub = mqtt(version=5)
    pub.publish(topic, b"r", qos=1, retain=True, properties=m.props(
        UserProperty=[("k", "v")], ContentType="ct", CorrelationData=b"c"))
    late = mqtt(version=5)
    late.subscribe(topic, qos=1)
    p = late.get().properties
    assert (p.UserProperty, p.ContentType, p.CorrelationData) == ([("k", "v")], "ct", b"c")


def test_v311_subscriber_gets_v5_message_without_properties(mqtt):
    topic = m.new_topic("props")
    old = mqtt(version=4)
    old.subscribe(topic, qos=1)
    mqtt(version=5).publish(topic, b"x", qos=1, properties=m.props(UserProperty=[("k", "v")]))
    assert old.get().payload == b"x"


def test_request_response_pattern(mqtt):
    req_topic, reply_topic = m.new_topic("req"), m.new_topic("reply")
    server = mqtt(version=5)
    server.subscribe(req_topic, qos=1)
    client = mqtt(version=5)
    client.subscribe(reply_topic, qos=1)
    client.publish(req_topic, b"ping", qos=1, properties=m.props(ResponseTopic=reply_topic, CorrelationData=b"id-1"))
    req = server.get()
    server.publish(req.properties.ResponseTopic, b"pong", qos=1,
                   properties=m.props(CorrelationData=req.properties.CorrelationData))
    reply = client.get()
    assert (reply.payload, reply.properties.CorrelationData) == (b"pong", b"id-1")


def test_connack_properties(make_broker, raw):
    b = make_broker(max_keepalive=10)
    r = raw(b, version=5)
    ack = r.connect(keepalive=60)
    assert ack.reason == 0
    assert ack.props.get("server_keep_alive") == 10, "keep-alive above the broker maximum is lowered"
    assert ack.props.get("topic_alias_maximum", 0) >= 1, "the broker accepts topic aliases"
    assert ack.props.get("receive_maximum", 65535) >= 1


def test_v5_keepalive_zero_gets_server_keep_alive(make_broker, raw):
    b = make_broker(max_keepalive=10)
    r = raw(b, version=5)
    ack = r.connect(keepalive=0)
    assert ack.props.get("server_keep_alive") == 10


# --- topic aliases -----------------------------------------------------------------------------


def test_topic_alias_client_to_server(raw, mqtt):
    base = m.new_topic("alias")
    sub = mqtt(version=5)
    sub.subscribe(f"{base}/#", qos=1)
    r = raw(version=5)
    r.connect()
    r.publish(f"{base}/a", b"1", qos=1, pid=1, properties={"topic_alias": 1})
    r.publish("", b"2", qos=1, pid=2, properties={"topic_alias": 1})
    r.publish(f"{base}/b", b"3", qos=1, pid=3, properties={"topic_alias": 1})  # remap
    r.publish("", b"4", qos=1, pid=4, properties={"topic_alias": 1})
    for pid in (1, 2, 3, 4):
        assert r.expect(m.PUBACK).pid == pid
    got = [(x.topic, x.payload) for x in sub.get_n(4)]
    assert got == [(f"{base}/a", b"1"), (f"{base}/a", b"2"), (f"{base}/b", b"3"), (f"{base}/b", b"4")]


def test_topic_aliases_are_per_connection(raw):
    base = m.new_topic("alias")
    a = raw(version=5)
    a.connect()
    a.publish(f"{base}/a", b"1", properties={"topic_alias": 1})
    b = raw(version=5)
    b.connect()
    b.publish("", b"2", properties={"topic_alias": 1})  # unknown on this connection
    got = b.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.DISCONNECT, 0x82)]


def test_topic_alias_above_maximum_is_0x94(raw):
    r = raw(version=5)
    ack = r.connect()
    top = ack.props.get("topic_alias_maximum", 0)
    r.publish("a/b", b"x", properties={"topic_alias": top + 1})
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.DISCONNECT, 0x94)]


def test_topic_alias_zero_refused(raw):
    """Spec: 0x94 (Topic Alias invalid); mosquitto 2.0.11 sends 0x81 (malformed)."""
    r = raw(version=5)
    r.connect()
    r.publish("a/b", b"x", properties={"topic_alias": 0})
    got = r.expect_closed()
    assert len(got) == 1 and got[0].type == m.DISCONNECT and got[0].reason in (0x81, 0x94), got


def _resolve(packets, aliases):
    out = []
    for p in packets:
        alias = p.props.get("topic_alias")
        if alias is not None:
            assert 1 <= alias <= 5, f"alias {alias} above what the client allowed"
            if p.topic:
                aliases[alias] = p.topic
            else:
                assert alias in aliases, f"alias {alias} used before it was set"
        out.append(aliases[alias] if alias is not None and not p.topic else p.topic)
    return out


def test_topic_alias_server_to_client_resolves(raw, mqtt):
    """A client allowing 5 aliases always sees the right topics (mosquitto 2.0.11 never sends
    aliases; a broker that does must set each one before using it, within the limit)."""
    base = m.new_topic("alias")
    r = raw(version=5)
    r.connect(properties={"topic_alias_maximum": 5})
    r.subscribe([(f"{base}/#", 0)])
    pub = mqtt()
    topics = [f"{base}/{i % 3}" for i in range(12)]
    for i, t in enumerate(topics):
        pub.publish(t, str(i).encode(), qos=1)
    got = [r.expect(m.PUBLISH) for _ in topics]
    assert _resolve(got, {}) == topics


def test_no_topic_alias_to_client_that_allows_none(raw, mqtt):
    base = m.new_topic("alias")
    r = raw(version=5)
    r.connect()  # Topic Alias Maximum absent = 0
    r.subscribe([(f"{base}/#", 0)])
    pub = mqtt()
    for i in range(6):
        pub.publish(f"{base}/{i % 2}", b"x", qos=1)
    got = [r.expect(m.PUBLISH) for _ in range(6)]
    assert all("topic_alias" not in p.props and p.topic for p in got)


@pytest.mark.gateway_only
def test_topic_alias_server_to_client_used(raw, mqtt):
    """'Topic aliases both ways': the gateway uses aliases towards clients that allow them
    (mosquitto 2.0.11 never does)."""
    base = m.new_topic("alias")
    r = raw(version=5)
    r.connect(properties={"topic_alias_maximum": 5})
    r.subscribe([(f"{base}/#", 0)])
    pub = mqtt()
    topics = [f"{base}/same"] * 4
    for t in topics:
        pub.publish(t, b"x", qos=1)
    got = [r.expect(m.PUBLISH) for _ in topics]
    assert _resolve(got, {}) == topics
    assert any(p.topic == "" for p in got[1:]), f"no alias used: {got}"


# --- maximum packet size (client side) ---------------------------------------------------------


def test_client_maximum_packet_size_respected(raw, mqtt):
    """The broker must not send a packet larger than the client's Maximum Packet Size: it drops
    that message for this client (and carries on with the next)."""
    topic = m.new_topic("big")
    r = raw(version=5)
    r.connect(properties={"maximum_packet_size": 256})
    r.subscribe([(topic, 1)])
    other = mqtt(version=5)
    other.subscribe(topic, qos=1)
    pub = mqtt()
    pub.publish(topic, b"x" * 1000, qos=1)
    pub.publish(topic, b"small", qos=1)
    p = r.expect(m.PUBLISH)
    assert p.payload == b"small"
    r.ack(m.PUBACK, p.pid)
    assert [x.payload for x in other.get_n(2)] == [b"x" * 1000, b"small"]


# --- reason codes / strings --------------------------------------------------------------------


def test_suback_reason_codes_v5(raw):
    r = raw(version=5)
    r.connect()
    ack = r.subscribe([("rc/0", 0), ("rc/1", 1), ("rc/2", 2)])
    assert ack.codes == [0x00, 0x01, 0x02]


def test_no_reason_string_when_problem_information_not_requested(raw):
    """Request Problem Information = 0: no Reason String / User Property on acks other than
    PUBLISH, CONNACK and DISCONNECT."""
    r = raw(version=5)
    r.connect(properties={"request_problem_info": 0})
    ack = r.subscribe([("rp/a", 1)])
    assert "reason_string" not in ack.props
    r.publish("rp/nobody", b"x", qos=1, pid=2)
    assert "reason_string" not in r.expect(m.PUBACK).props
    r.send(m.unsubscribe_packet(3, ["never"], version=5))
    assert "reason_string" not in r.expect(m.UNSUBACK).props


@pytest.mark.gateway_only
def test_server_disconnect_carries_reason_string(raw):
    """The issue asks for reason strings on server DISCONNECTs (mosquitto 2.0.11 sends none)."""
    r = raw(version=5)
    r.connect()
    r.publish("", b"x")  # empty topic without alias: protocol error
    got = r.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.DISCONNECT, 0x82)]
    assert got[0].props.get("reason_string"), got


def test_client_disconnect_reason_code_accepted(raw, mqtt):
    """A client DISCONNECT with a reason code and a reason string is a normal close (no will
    unless 0x04)."""
    topic = m.new_topic("will")
    watcher = mqtt()
    watcher.subscribe(topic, qos=1)
    r = raw(version=5)
    r.connect(will={"topic": topic, "payload": b"w", "qos": 1})
    r.send(m.disconnect_packet(5, 0x00, {"reason_string": "bye", "user_property": [("k", "v")]}))
    assert r.expect_closed() == []
    watcher.expect_no_message(0.4)
