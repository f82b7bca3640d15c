"""The ActiveMQ 5.17 JMS client (tests/openwire/java/JmsProbe.java) against the gateway's OpenWire
listener: negotiation, every message and property type, acknowledgements, transactions, temporary
queues, durable subscriptions, pulls, persistence across restarts, STOMP interop, bad peers."""

from __future__ import annotations

import socket
import struct
import subprocess
import time

import pytest


def test_every_message_type_property_type_ack_tx_and_temp_queue(jms):
    result = jms().run("capture")
    assert result.returncode == 0, result
    assert result.ok("capture"), result
    got = result.received
    types = [r.type for r in got[:7]]
    assert types == [
        "ActiveMQTextMessage",
        "ActiveMQBytesMessage",
        "ActiveMQMapMessage",
        "ActiveMQStreamMessage",
        "ActiveMQObjectMessage",
        "ActiveMQMessage",
        "ActiveMQTextMessage",
    ], result
    text = got[0]
    # 4-byte UTF-8 and NUL survive, and so does every property type (ActiveMQ itself mangles the
    # emoji in a String property: the gateway must not).
    assert text.text == "hello \u00e9\u4e2d\U0001F600 \u0000end"
    assert text.priority == 7 and text.persistent and text.correlation == "corr-1"
    assert text.props == {
        "JMSXGroupID": "String:group-a",
        "JMSXGroupSeq": "Integer:1",
        "p_bool": "Boolean:true",
        "p_byte": "Byte:-7",
        "p_double": "Double:-2.25",
        "p_float": "Float:1.5",
        "p_int": "Integer:123456789",
        "p_long": "Long:-1234567890123",
        "p_short": "Short:-300",
        "p_string": "String:str \\ud83d\\ude00",
        # ActiveMQ's values beyond the JMS types come back as sent.
        "p_char": "Character:c",
        "p_null": "null",
        "p_map": "Map:{k=1, s=v}",
        "p_list": "List:[1, two]",
    }
    assert not got[1].persistent, "the bytes message was sent NON_PERSISTENT"
    assert got[5].props == {"only": "String:headers"}
    assert got[6].text == "compressed compressed compressed compressed"
    # Every body reads back as written, through the JMS API of its type.
    assert [r.body for r in got[1:6]] == [
        "bytes:000102ff0000002a",
        "map:m_bool=Boolean:false,m_byte=Byte:1,m_bytes=bytes:0809,m_char=Character:x,"
        "m_double=Double:6.5,m_float=Float:5.5,m_int=Integer:3,m_long=Long:4,m_short=Short:2,"
        "m_string=String:seven,",
        "stream:Boolean:true,Byte:1,Character:y,Short:2,Integer:3,Long:4,Float:5.5,Double:6.5,"
        "String:seven,bytes:0809,null,",
        "object:ArrayList:[object]",
        "-",
    ], result
    # The headers the client set keep their values: JMSMessageID, JMSTimestamp, JMSExpiration
    # (timestamp + time to live), JMSType and JMSReplyTo.
    sent = result.sent
    assert len(sent) == 7, result
    assert [(r.message_id, r.timestamp, r.expiration) for r in got[:7]] == [
        (s["id"], s["timestamp"], s["expiration"]) for s in sent]
    assert all(r.message_id.startswith("ID:") for r in got[:7])
    assert len({r.message_id for r in got[:7]}) == 7
    assert sent[0]["timestamp"] > 0 and sent[0]["expiration"] == sent[0]["timestamp"] + 600000
    assert [r.expiration for r in got[1:7]] == [0] * 6
    assert (text.jms_type, text.reply_to) == ("probe-type", "topic://capture.replies")
    assert [(r.jms_type, r.reply_to) for r in got[1:7]] == [(None, None)] * 6
    # The rolled-back transacted receive comes back redelivered, delivery count 2.
    tx = got[7]
    assert (tx.text, tx.redelivered, tx.props.get("JMSXDeliveryCount")) == ("tx-1", True, "Integer:2")
    assert [r.text for r in got[8:11]] == ["request", "published", "pulled"]
    refused = [line for line in result.lines if line.startswith("OK refused")]
    assert refused and "javax.jms.InvalidClientIDException" in refused[0], result


def test_persistent_queue_message_survives_a_restart(make_gateway, jms):
    gw = make_gateway()
    sent = jms(gw).run("send", "queue:orders.restart", "kept")
    assert sent.returncode == 0, sent
    gw.restart()
    got = jms(gw).run("receive", "queue:orders.restart", "5000", "1")
    assert got.returncode == 0, got
    [msg] = got.received
    assert (msg.type, msg.text, msg.persistent, msg.redelivered) == (
        "ActiveMQTextMessage", "kept", True, False)
    assert msg.props == {"probe": "String:jms", "seq": "Integer:0"}


def test_acknowledged_persistent_send_survives_sigkill(make_gateway, jms):
    gw = make_gateway()
    assert jms(gw).run("send", "queue:orders.kill", "m", "3").returncode == 0
    gw.kill()
    gw.start()
    got = jms(gw).run("receive", "queue:orders.kill", "5000", "3")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["m-0", "m-1", "m-2"]


def test_unacknowledged_messages_are_redelivered_with_jms_redelivered(jms):
    j = jms()
    assert j.run("send", "queue:orders.noack", "x", "2").returncode == 0
    first = j.run("receive-noack", "queue:orders.noack", "5000", "2")
    assert first.returncode == 0, first
    assert [r.redelivered for r in first.received] == [False, False]
    again = j.run("receive", "queue:orders.noack", "5000", "2")
    assert again.returncode == 0, again
    assert [(r.text, r.redelivered) for r in again.received] == [("x-0", True), ("x-1", True)]
    assert again.received[0].props.get("JMSXDeliveryCount") == "Integer:2"


def test_topic_publish_reaches_subscriber(jms):
    result = jms().run("pubsub", "prices.eur", "1.08")
    assert result.returncode == 0, result
    [msg] = result.received
    assert msg.text == "1.08"


def test_selector_filters_on_properties(jms):
    j = jms()
    # seq is 0, 1, 2: only seq >= 1 matches.
    assert j.run("send", "queue:orders.sel", "s", "3").returncode == 0
    got = j.run("receive-selector", "queue:orders.sel", "seq >= 1", "3000", "3")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["s-1", "s-2"]


def test_client_redelivery_policy_poison_ack_lands_in_dlq(jms):
    fast = "jms.redeliveryPolicy.initialRedeliveryDelay=0&jms.redeliveryPolicy.redeliveryDelay=0"
    j = jms(url_options=fast)
    assert j.run("send", "queue:orders.poison", "bad").returncode == 0
    rolled = j.run("rollback-forever", "queue:orders.poison", "2000")
    assert rolled.returncode == 0, rolled
    # The default policy: the first delivery and 6 redeliveries, then a poison ack.
    assert len(rolled.received) == 7, rolled
    dlq = j.run("receive", "queue:ActiveMQ.DLQ", "5000", "1")
    assert dlq.returncode == 0, dlq
    assert [r.text for r in dlq.received] == ["bad"]
    assert j.run("receive", "queue:orders.poison", "500", "1").received == []


@pytest.mark.parametrize("version", [1, 6, 9, 11])
def test_older_openwire_versions_negotiate_and_work(jms, version):
    j = jms(url_options=f"wireFormat.version={version}")
    assert j.run("send", f"queue:orders.v{version}", "old").returncode == 0
    got = j.run("receive", f"queue:orders.v{version}", "5000", "1")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["old"]
    # The auto-acknowledge matched the delivery (before version 10 a MessageId has no text
    # view): the message is gone, not back in the queue when the consumer closed.
    assert j.run("receive", f"queue:orders.v{version}", "500", "1").received == []


def test_stomp_message_with_content_length_reaches_jms_as_bytes(gateway, jms, client):
    client(gateway).send("/queue/orders.bytes", "raw", headers={"persistent": "true"})
    got = jms(gateway).run("receive", "queue:orders.bytes", "5000", "1")
    assert got.returncode == 0, got
    assert [r.type for r in got.received] == ["ActiveMQBytesMessage"]


def test_jms_text_message_reaches_stomp_subscriber_with_properties(gateway, jms, client):
    s = client(gateway)
    s.subscribe("/queue/orders")
    assert jms(gateway).run("send", "queue:orders", "from-jms").returncode == 0
    frame = s.get()
    assert frame.body == "from-jms"
    assert frame.headers["destination"] == "/queue/orders"
    assert frame.headers["probe"] == "jms"
    assert frame.headers["seq"] == "0"
    assert frame.headers["persistent"] == "true"
    assert frame.headers["message-id"].startswith("ID:")


def test_stomp_message_reaches_jms_consumer_as_text_with_properties(gateway, jms, client):
    s = client(gateway)
    # stomp.py always sends content-length, which makes ActiveMQ deliver a BytesMessage;
    # `amq-msg-type: text` asks for a TextMessage, as on ActiveMQ.
    s.send("/queue/orders.in", "from-stomp \u00e9\U0001F600",
           headers={"color": "red", "persistent": "true", "correlation-id": "c-9", "priority": "6",
                    "amq-msg-type": "text"})
    got = jms(gateway).run("receive", "queue:orders.in", "5000", "1")
    assert got.returncode == 0, got
    [msg] = got.received
    assert msg.type == "ActiveMQTextMessage"
    assert msg.text == "from-stomp \u00e9\U0001F600"
    assert (msg.persistent, msg.priority, msg.correlation) == (True, 6, "c-9")
    assert msg.props.get("color") == "String:red"


def _wire_format_info_frame() -> bytes:
    props = b"\x00\x00\x00\x00"  # an empty options map
    body = b"\x01" + b"ActiveMQ" + struct.pack(">i", 12) + b"\x01" + struct.pack(">i", len(props)) + props
    return struct.pack(">i", len(body)) + body


def _read_frame(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (size,) = struct.unpack(">i", head)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return body


def _closed(sock: socket.socket, within: float = 5.0) -> bool:
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_broker_speaks_first_and_answers_with_loose_encoding(gateway):
    with socket.create_connection((gateway.host, gateway.openwire_port), timeout=5) as sock:
        wfi = _read_frame(sock)
        assert wfi[0] == 1 and wfi[1:9] == b"ActiveMQ"
        assert struct.unpack(">i", wfi[9:13])[0] == 12
        assert b"TightEncodingEnabled" in wfi and b"MaxInactivityDuration" in wfi
        sock.sendall(_wire_format_info_frame())
        broker_info = _read_frame(sock)
        assert broker_info[0] == 2


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x05\x63\x00\x00\x00\x00",        # unknown data type 99
    b"\x00\x00\x00\x02\x03\x00",                    # truncated ConnectionInfo
    b"\x7f\xff\xff\xff",                            # frame larger than the limit
    b"\xff\xff\xff\xff",                            # negative size
])
def test_malformed_commands_close_only_that_connection(gateway, jms, garbage):
    with socket.create_connection((gateway.host, gateway.openwire_port), timeout=5) as sock:
        _read_frame(sock)
        sock.sendall(_wire_format_info_frame())
        _read_frame(sock)
        sock.sendall(garbage)
        assert _closed(sock), "the gateway kept a connection that sent garbage"
    # Everyone else is unaffected.
    result = jms(gateway).run("pubsub", "still.alive", "yes")
    assert result.returncode == 0, result


def test_a_client_that_never_sends_wire_format_info_is_dropped(make_gateway):
    gw = make_gateway({"listeners": {"openwire": {"connect_timeout_ms": 300}}})
    with socket.create_connection((gw.host, gw.openwire_port), timeout=5) as sock:
        _read_frame(sock)
        start = time.monotonic()
        assert _closed(sock, within=5)
        assert time.monotonic() - start < 4


def test_async_sends_through_a_producer_window_get_producer_acks(jms):
    # A 3000-byte window holds about two messages: without ProducerAcks the producer would block.
    j = jms(url_options="jms.useAsyncSend=true&jms.producerWindowSize=3000")
    sent = j.run("send", "queue:orders.window", "w", "30")
    assert sent.returncode == 0, sent
    got = jms().run("receive", "queue:orders.window", "5000", "30")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == [f"w-{i}" for i in range(30)]


def test_durable_subscription_collects_while_disconnected(jms):
    j = jms()
    first = j.run("durable", "dur-client", "news", "daily", "200", "1")
    assert first.returncode == 0 and first.received == [], first
    assert j.run("send", "topic:news", "while-away", "2").returncode == 0
    back = j.run("durable", "dur-client", "news", "daily", "5000", "2")
    assert back.returncode == 0, back
    assert [r.text for r in back.received] == ["while-away-0", "while-away-1"]


def test_failover_transport_reconnects_after_sigkill_and_restart(make_gateway, jms):
    gw = make_gateway()
    j = jms(gw)
    url = f"failover:(tcp://{gw.host}:{gw.openwire_port})?initialReconnectDelay=100&maxReconnectDelay=500"
    proc = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", url,
         "failover-roundtrip", "queue:orders.failover"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("OK phase1"), line + proc.stderr.read()
        gw.kill()
        gw.start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    texts = [l.split(" text=")[1].split(" ")[0] for l in out.splitlines() if l.startswith("RECEIVED")]
    # "before" was acknowledged (persistent) before the crash, so it survived it.
    assert texts == ["before", "after"], out


def _wire_format_info_with(inactivity_ms: int) -> bytes:
    # Options map: {"MaxInactivityDuration": long}.
    name = b"MaxInactivityDuration"
    props = struct.pack(">i", 1) + struct.pack(">H", len(name)) + name + b"\x06" + struct.pack(">q", inactivity_ms)
    body = b"\x01" + b"ActiveMQ" + struct.pack(">i", 12) + b"\x01" + struct.pack(">i", len(props)) + props
    return struct.pack(">i", len(body)) + body


def test_keep_alives_are_sent_and_a_silent_peer_is_dropped(make_gateway):
    gw = make_gateway({"listeners": {"openwire": {"max_inactivity_ms": 600}}})
    with socket.create_connection((gw.host, gw.openwire_port), timeout=5) as sock:
        _read_frame(sock)
        sock.sendall(_wire_format_info_with(600))
        assert _read_frame(sock)[0] == 2  # BrokerInfo
        # A third of the inactivity duration without output: a KeepAliveInfo (type 10).
        assert _read_frame(sock)[0] == 10
        start = time.monotonic()
        assert _closed(sock, within=5), "a silent peer must be disconnected"
        assert time.monotonic() - start < 3


def test_virtual_topic_fans_out_to_consumer_queues(jms):
    j = jms()
    # The consumer queues exist once their first consumer has subscribed (as on ActiveMQ).
    for name in ("A", "B"):
        r = j.run("receive", f"queue:Consumer.{name}.VirtualTopic.Orders", "100", "1")
        assert r.received == [], r
    assert j.run("send", "topic:VirtualTopic.Orders", "o", "2").returncode == 0
    for name in ("A", "B"):
        got = j.run("receive", f"queue:Consumer.{name}.VirtualTopic.Orders", "5000", "2")
        assert got.returncode == 0, got
        assert [r.text for r in got.received] == ["o-0", "o-1"], name
    # Consumers of one consumer queue share its messages.
    assert j.run("send", "topic:VirtualTopic.Orders", "p", "1").returncode == 0
    got = j.run("receive", "queue:Consumer.A.VirtualTopic.Orders", "5000", "1")
    assert [r.text for r in got.received] == ["p"]
    again = j.run("receive", "queue:Consumer.A.VirtualTopic.Orders", "300", "1")
    assert again.received == []


def test_fast_reconnects_leave_no_stuck_consumers_or_prefetched_messages(jms):
    j = jms()
    assert j.run("send", "queue:orders.storm", "s", "5").returncode == 0
    for _ in range(6):
        # Each run opens a consumer with prefetch 1000, takes one message without acking and
        # exits: everything it held must go back.
        r = j.run("receive-noack", "queue:orders.storm", "3000", "1")
        assert r.returncode == 0, r
    got = j.run("receive", "queue:orders.storm", "5000", "5")
    assert got.returncode == 0, got
    assert sorted(r.text for r in got.received) == [f"s-{i}" for i in range(5)]


def test_temporary_queue_request_reply_across_connections(jms):
    j = jms()
    responder = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "respond", "queue:service.echo", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert responder.stdout.readline().startswith("OK listening")
        req = j.run("request", "queue:service.echo", "ping", "15000")
        out, err = responder.communicate(timeout=30)
    finally:
        if responder.poll() is None:
            responder.kill()
            responder.wait()
    assert responder.returncode == 0, out + err
    assert req.returncode == 0, req
    [reply] = req.received
    assert (reply.text, reply.correlation) == ("reply:ping", "req-1")
    # The responder saw the requester's temporary queue as a temporary queue (announced to it by
    # a temp-destination advisory, under its gateway name).
    assert "OK respond temp-queue://ID:gw-" in out, out


def test_temporary_queue_created_before_the_responder_connects_is_replayed(jms):
    # The requester's temporary queue exists before the responder's advisory consumer: the
    # advisory of the live destination is replayed to it, so it may reply.
    j = jms()
    requester = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "request", "queue:service.late", "late", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(2.5)
        responder = j.run("respond", "queue:service.late", "15000")
        out, err = requester.communicate(timeout=30)
    finally:
        if requester.poll() is None:
            requester.kill()
            requester.wait()
    assert responder.returncode == 0, responder
    assert "OK respond temp-queue://ID:gw-" in responder.stdout, responder
    assert requester.returncode == 0, out + err
    assert "text=reply:late" in out, out


def test_client_acknowledge_recover_redelivers_then_ack_removes(jms):
    j = jms()
    assert j.run("send", "queue:orders.recover", "r").returncode == 0
    got = j.run("client-ack-recover", "queue:orders.recover")
    assert got.returncode == 0, got
    assert [(r.text, r.redelivered) for r in got.received] == [("r", False), ("r", True)]
    assert j.run("receive", "queue:orders.recover", "500", "1").received == []


def test_composite_destinations_for_producers_and_consumers(jms):
    j = jms()
    # One send to a composite destination reaches every member; one consumer on a composite
    # destination reads them all; a member's topic:// prefix makes it a topic.
    assert j.run("send", "queue:orders.ca,orders.cb", "both").returncode == 0
    got = j.run("receive", "queue:orders.ca,orders.cb", "5000", "2")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["both", "both"]
    assert j.run("receive", "queue:orders.ca", "300", "1").received == []
    assert j.run("send", "queue:orders.cc,topic://orders.ct", "mixed").returncode == 0
    assert [r.text for r in j.run("receive", "queue:orders.cc", "5000", "1").received] == ["mixed"]


def test_queue_browser_shows_without_consuming(jms):
    j = jms()
    assert j.run("send", "queue:orders.browse", "b", "3").returncode == 0
    seen = j.run("browse", "orders.browse")
    assert seen.returncode == 0, seen
    assert [r.text for r in seen.received] == ["b-0", "b-1", "b-2"]
    filtered = j.run("browse", "orders.browse", "seq = 1")
    assert [r.text for r in filtered.received] == ["b-1"], filtered
    got = j.run("receive", "queue:orders.browse", "5000", "3")
    assert [r.text for r in got.received] == ["b-0", "b-1", "b-2"], got
    assert j.run("browse", "orders.browse").received == []


def test_message_groups_stick_to_one_consumer(jms):
    result = jms().run("groups", "queue:orders.groups")
    assert result.returncode == 0, result
    owners: dict[str, set[str]] = {}
    for line in result.lines:
        if line.startswith("GROUP "):
            fields = dict(f.split("=") for f in line.split()[1:])
            owners.setdefault(fields["group"], set()).add(fields["consumer"])
    assert set(owners) == {"A", "B"}, result
    assert all(len(consumers) == 1 for consumers in owners.values()), owners


def test_jms_topic_message_reaches_mqtt_subscriber(gateway, jms):
    import queue as queue_mod

    import paho.mqtt.client as paho

    got: queue_mod.Queue = queue_mod.Queue()
    subscribed = queue_mod.Queue()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="jms-interop", protocol=paho.MQTTv311)
    c.on_message = lambda _c, _u, msg: got.put((msg.topic, msg.payload))
    c.on_subscribe = lambda *_a: subscribed.put(True)
    c.connect(gateway.host, gateway.mqtt_port)
    c.loop_start()
    try:
        c.subscribe("news/jms", qos=1)
        assert subscribed.get(timeout=5)
        assert jms(gateway).run("send", "topic:news.jms", "to-mqtt \u00e9").returncode == 0
        topic, payload = got.get(timeout=10)
    finally:
        c.loop_stop()
        c.disconnect()
    assert topic == "news/jms"
    assert payload == "to-mqtt \u00e9".encode()


def test_expired_messages_are_not_delivered(jms):
    j = jms()
    assert j.run("send", "queue:orders.ttl", "short", "1", "300").returncode == 0
    assert j.run("send", "queue:orders.ttl", "long", "1", "600000").returncode == 0
    time.sleep(1.0)
    got = j.run("receive", "queue:orders.ttl", "3000", "2")
    assert [r.text for r in got.received] == ["long"], got


def test_a_message_the_client_acks_as_expired_goes_to_the_dlq(jms):
    j = jms()
    held = j.run("expire-held", "queue:orders.expire-held", "600")
    assert held.returncode == 0, held
    # The client drops both expired messages from its prefetch buffer and acks them as EXPIRED.
    assert [r.text for r in held.received] == ["fresh"], held
    # As on ActiveMQ: the persistent one is dead-lettered, the non-persistent one dropped.
    dlq = j.run("receive", "queue:ActiveMQ.DLQ", "3000", "2")
    assert [r.text for r in dlq.received] == ["expiring-p"], dlq
    assert dlq.received[0].expiration == 0, "a dead-lettered expired message must not expire again"
    assert dlq.received[0].props.get("dlqDeliveryFailureCause") == "String:expired", dlq
    assert j.run("receive", "queue:orders.expire-held", "500", "1").received == []


def test_individual_acknowledge_removes_only_that_message(jms):
    j = jms()
    assert j.run("send", "queue:orders.indiv", "i", "3").returncode == 0
    first = j.run("individual-ack", "queue:orders.indiv", "3", "1")
    assert first.returncode == 0, first
    rest = j.run("receive", "queue:orders.indiv", "5000", "2")
    assert rest.returncode == 0, rest
    assert [(r.text, r.redelivered) for r in rest.received] == [("i-0", True), ("i-2", True)]


def test_no_local_subscriber_skips_its_own_connection(jms):
    got = jms().run("nolocal", "chat.room")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["other"]


def test_reconnects_with_the_same_client_id_are_accepted_each_time(jms):
    j = jms()
    for _ in range(5):
        r = j.run("durable", "storm-client", "storm.topic", "storm-sub", "50", "1")
        assert r.returncode == 0 and r.ok("durable"), r
    assert j.run("send", "topic:storm.topic", "kept").returncode == 0
    r = j.run("durable", "storm-client", "storm.topic", "storm-sub", "5000", "1")
    assert [m.text for m in r.received] == ["kept"], r


def test_message_unacknowledged_at_a_crash_is_redelivered_with_jms_redelivered(make_gateway, jms):
    gw = make_gateway()
    j = jms(gw)
    assert j.run("send", "queue:orders.crash", "held").returncode == 0
    holder = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "hold", "queue:orders.crash"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = holder.stdout.readline()
        assert "text=held redelivered=false" in first, first + holder.stderr.read()
        assert holder.stdout.readline().startswith("OK hold")
        gw.kill()
        holder.stdin.write("done\n")
        holder.stdin.flush()
        holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    gw.start()
    got = jms(gw).run("receive", "queue:orders.crash", "5000", "1")
    assert got.returncode == 0, got
    assert [(r.text, r.redelivered) for r in got.received] == [("held", True)]


def test_refused_selectors_and_destinations_raise_the_jms_exception_classes(jms):
    result = jms().run("errors")
    assert result.returncode == 0, result
    errors = {line.split()[1]: line.split()[2] for line in result.lines if line.startswith("ERROR ")}
    # XPATH passes the client's own selector parser: the class comes from the gateway.
    assert errors == {
        "xpath-selector": "javax.jms.InvalidSelectorException:",
        "xpath-browser": "javax.jms.InvalidSelectorException:",
        "bad-selector": "javax.jms.InvalidSelectorException:",
        "durable-composite": "javax.jms.InvalidDestinationException:",
    }, result
    assert [r.text for r in result.received] == ["still-up"], result


def test_an_idle_prefetch_zero_consumer_holds_nothing_back(jms):
    got = jms().run("pull-compete", "orders.pull-compete")
    assert got.returncode == 0, got
    assert [line for line in got.lines if line.startswith("PULL")] == [
        "PULL consumer=1 got=c-0", "PULL consumer=1 got=c-1", "PULL consumer=1 got=c-2"], got
    assert got.ok("pull-compete 3 0"), got


def _pull_steps(result) -> dict:
    steps = {}
    for line in result.lines:
        if line.startswith("PULL step="):
            fields = dict(item.split("=", 1) for item in line.split()[1:])
            steps[fields["step"]] = (fields["got"], int(fields["ms"]))
    return steps


def test_prefetch_zero_receive_timeouts_are_honoured(jms):
    result = jms().run("pull-timing", "orders.pull-timing")
    assert result.returncode == 0, result
    steps = _pull_steps(result)
    # receive(500) on an empty queue: null after about 500 ms, each time (no stale answer).
    for step in ("empty-1", "empty-2", "empty-3"):
        got, ms = steps[step]
        assert got == "null" and 400 <= ms < 2000, (step, result)
    # A message sent 700 ms into a receive(5000) ends it then.
    got, ms = steps["sent-during"]
    assert got == "late" and 500 <= ms < 3000, result
    # receiveNoWait answers at once: null on an empty queue, the message when one waits.
    got, ms = steps["nowait-empty"]
    assert got == "null" and ms < 400, result
    got, ms = steps["nowait-waiting"]
    assert got == "waiting" and ms < 400, result


def _tagged(result, prefix: str) -> list[str]:
    return [line for line in result.lines if line.startswith(prefix)]


def test_an_exclusive_consumer_takes_everything_until_it_closes(jms):
    got = jms().run("exclusive", "orders.exclusive")
    assert got.returncode == 0, got
    assert _tagged(got, "EXCL") == [
        "EXCL consumer=exclusive got=x-0", "EXCL consumer=exclusive got=x-1",
        "EXCL consumer=exclusive got=x-2", "EXCL consumer=exclusive got=x-3",
        "EXCL consumer=plain got=x-4", "EXCL consumer=plain got=x-5"], got


def test_temporary_topic_request_reply_across_connections(jms):
    j = jms()
    responder = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "respond", "queue:service.echo-topic", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert responder.stdout.readline().startswith("OK listening")
        req = j.run("request", "queue:service.echo-topic", "ping", "15000", "temp-topic")
        out, err = responder.communicate(timeout=30)
    finally:
        if responder.poll() is None:
            responder.kill()
            responder.wait()
    assert responder.returncode == 0, out + err
    assert req.returncode == 0, req
    [reply] = req.received
    assert (reply.text, reply.correlation) == ("reply:ping", "req-1")
    assert "OK respond temp-topic://ID:gw-" in out, out


def test_wildcard_queue_and_topic_consumers(jms):
    got = jms().run("wildcards", "wild")
    assert got.returncode == 0, got
    wild = _tagged(got, "WILD")
    # `*` matches one name element, `>` any number; a queue message goes to one consumer, a
    # topic message to every matching subscriber.
    assert sorted(w for w in wild if "consumer=queue.*" in w) == [
        "WILD consumer=queue.* got=q.a", "WILD consumer=queue.* got=q.b"], got
    assert [w for w in wild if "consumer=queue.>" in w] == ["WILD consumer=queue.> got=q.a.b"], got
    assert [w for w in wild if "consumer=topic.*" in w] == ["WILD consumer=topic.* got=t.a"], got
    assert [w for w in wild if "consumer=topic.>" in w] == [
        "WILD consumer=topic.> got=t.a", "WILD consumer=topic.> got=t.a.b"], got


def test_unsubscribe_drops_the_durable_subscription_and_what_it_held(jms):
    got = jms().run("unsubscribe", "news.unsub")
    assert got.returncode == 0, got
    assert _tagged(got, "UNSUB") == ["UNSUB got=kept"], got


def test_a_rolled_back_transacted_send_is_never_delivered(jms):
    got = jms().run("tx-send-rollback", "orders.tx-send")
    assert got.returncode == 0, got
    assert _tagged(got, "TX") == ["TX got=committed"], got


def test_compressed_bytes_and_map_messages_round_trip(jms):
    got = jms().run("compressed", "orders.compressed")
    assert got.returncode == 0, got
    bytes_msg, map_msg = got.received
    assert bytes_msg.type == "ActiveMQBytesMessage"
    assert bytes_msg.body == "bytes:" + bytes(i % 7 for i in range(2000)).hex()
    assert map_msg.type == "ActiveMQMapMessage"
    assert map_msg.body == f"map:long=String:{'abcabc' * 100},n=Integer:42,raw=bytes:010203,"


def test_a_client_without_size_prefix_negotiates_one_and_works(jms):
    # The gateway offers SizePrefixDisabled=false; the negotiated format keeps the prefix, and the
    # client follows it.
    j = jms(url_options="wireFormat.sizePrefixDisabled=true")
    assert j.run("send", "queue:orders.noprefix", "framed").returncode == 0
    got = j.run("receive", "queue:orders.noprefix", "5000", "1")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["framed"]


def test_a_retroactive_consumer_is_accepted_and_receives_live_messages(jms):
    got = jms().run("pubsub", "prices.retro?consumer.retroactive=true", "1.10")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == ["1.10"]


def test_a_higher_priority_consumer_gets_messages_while_it_has_room(jms):
    got = jms().run("priority", "orders.prio")
    assert got.returncode == 0, got
    prio = _tagged(got, "PRIO")
    # Default prefetch: everything goes to the priority 9 consumer, nothing round robin.
    assert [p for p in prio if "queue=1 " in p] == [
        f"PRIO queue=1 consumer=high got=p-{i}" for i in range(6)], got
    # Prefetch 2, never consumed: the high one holds two, the rest overflows to the low one.
    assert [p for p in prio if "queue=2 " in p] == [
        *(f"PRIO queue=2 consumer=low got=p-{i}" for i in range(2, 6)),
        "PRIO queue=2 consumer=high got=p-0", "PRIO queue=2 consumer=high got=p-1"], got


def test_char_null_map_and_list_properties_round_trip_and_reach_stomp_as_far_as_it_can(
        gateway, jms, client):
    j = jms(gateway)
    assert j.run("send-nested", "queue:orders.nested").returncode == 0
    got = j.run("receive", "queue:orders.nested", "5000", "1")
    assert got.returncode == 0, got
    [msg] = got.received
    assert msg.props == {
        "p_char": "Character:c", "p_null": "null", "p_map": "Map:{k=1, s=v}",
        "p_list": "List:[1, two]"}, got
    # STOMP has no char, null, map or list: the char arrives as a string, the rest not at all,
    # and the internal form stays hidden.
    s = client(gateway)
    s.subscribe("/queue/orders.nested2")
    assert j.run("send-nested", "queue:orders.nested2").returncode == 0
    frame = s.get()
    assert frame.headers["p_char"] == "c"
    assert not [h for h in frame.headers if h.startswith(("p_null", "p_map", "p_list", "openwire."))], \
        frame.headers


def test_a_delivery_larger_than_the_clients_max_frame_size_is_dead_lettered(make_gateway, jms, client):
    # The gateway offers MaxFrameSize 64 KiB; the client then drops any larger frame with its
    # connection. A bigger STOMP message goes to the dead-letter queue instead, and the JMS
    # consumer goes on with the next one.
    gw = make_gateway({"listeners": {"openwire": {"max_frame_bytes": 65536}}})
    s = client(gw)
    s.send("/queue/orders.big", "x" * 200_000, headers={"persistent": "true"})
    s.send("/queue/orders.big", "small", headers={"persistent": "true"})
    got = jms(gw).run("receive", "queue:orders.big", "5000", "1")
    assert got.returncode == 0, got
    # stomp.py sends content-length: a BytesMessage, as on ActiveMQ.
    assert [r.body for r in got.received] == ["bytes:" + b"small".hex()], got
    s.subscribe("/queue/ActiveMQ.DLQ")
    dead = s.get()
    assert len(dead.body) == 200_000


def _memory_used(gw) -> float:
    import urllib.request
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("gateway_memory_used_bytes "):
                return float(line.split()[1])
    raise AssertionError("no gateway_memory_used_bytes")


def test_deleting_a_temporary_queue_drops_it_and_its_messages_at_once(gateway, jms):
    j = jms(gateway)
    proc = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url, "temp-delete"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().startswith("OK created"), proc.stderr.read()
        # Temporary queues are not listed by the admin API: their bodies show in memory use.
        assert _memory_used(gateway) >= 3 * 20_000
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("OK deleted"), proc.stderr.read()
        # Gone while its connection is still open (not only when it closes).
        assert _memory_used(gateway) < 20_000
        proc.stdin.write("go\n")
        proc.stdin.flush()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_destroy_destination_deletes_an_unused_queue_and_its_messages(jms):
    got = jms().run("destroy", "orders.destroyed")
    assert got.returncode == 0, got
    assert any(line.startswith("ERROR busy javax.jms.JMSException: Destination still has an active")
               for line in got.lines), got
    assert got.ok("destroy 0"), got
