"""/metrics scraped with the Prometheus text-format parser while real clients (stomp.py,
paho-mqtt, raw sockets) send and consume: the figures must move exactly as the traffic did."""

from __future__ import annotations

import re
import socket
import time

from gwtest.mqtt import MqttClient


def depth(admin, queue):
    ready = admin.value("gateway_queue_ready_messages", queue=queue)
    unacked = admin.value("gateway_queue_unacked_messages", queue=queue)
    return ready, unacked


def test_health_and_readiness(gateway, admin):
    a = admin(gateway)
    m = a.metrics()
    versions = [dict(labels)["version"] for (name, labels) in m if name == "gateway_build_info"]
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions[0]), versions
    started = m[("gateway_start_time_seconds", frozenset())]
    assert time.time() - 60 < started <= time.time()
    assert a.get("/healthz") == (200, {"status": "ok"})
    status, body = a.get("/readyz")
    assert status == 200
    assert body == {"ready": True, "store_recovered": True, "listeners_bound": True}


def test_queue_depth_and_counters_follow_sends_and_acks_and_survive_restart(gateway, client, admin):
    a = admin(gateway)
    producer = client()
    for i in range(5):
        producer.send("/queue/obs.depth", f"m{i}", headers={"persistent": "true"})
    assert depth(a, "obs.depth") == (5, 0)
    assert a.value("gateway_queue_enqueued_messages_total", queue="obs.depth") == 5
    assert a.value("gateway_queue_delivered_messages_total", queue="obs.depth") == 0

    consumer = client()
    consumer.subscribe("/queue/obs.depth", ack="client-individual")
    frames = consumer.get_n(5)
    assert a.value("gateway_queue_consumers", queue="obs.depth") == 1
    consumer.ack(frames[0])
    consumer.ack(frames[1])
    m = a.metrics()
    key = frozenset({("queue", "obs.depth")})
    assert m[("gateway_queue_ready_messages", key)] == 0
    assert m[("gateway_queue_unacked_messages", key)] == 3
    assert m[("gateway_queue_delivered_messages_total", key)] == 5
    assert m[("gateway_queue_acknowledged_messages_total", key)] == 2
    assert m[("gateway_queue_redelivered_messages_total", key)] == 0
    assert m[("gateway_messages", frozenset())] == 3

    # The consumer leaves without acking the other three: they are ready again.
    consumer.disconnect()
    a.wait_value("gateway_queue_ready_messages", 3, queue="obs.depth")
    assert depth(a, "obs.depth") == (3, 0)
    assert a.value("gateway_queue_consumers", queue="obs.depth") == 0

    producer.disconnect()
    gateway.restart()
    # Depth comes from the recovered state; counters start again from zero.
    assert depth(a, "obs.depth") == (3, 0)
    assert a.value("gateway_queue_enqueued_messages_total", queue="obs.depth") == 0
    assert a.value("gateway_store_recovered_messages") == 3
    assert a.value("gateway_store_recovered_queues") >= 1
    assert a.value("gateway_store_recovery_seconds") >= 0

    again = client()
    again.subscribe("/queue/obs.depth", ack="client-individual")
    frames = again.get_n(3)
    assert sorted(f.body for f in frames) == ["m2", "m3", "m4"]
    assert a.value("gateway_queue_redelivered_messages_total", queue="obs.depth") == 3
    for f in frames:
        again.ack(f)
    assert depth(a, "obs.depth") == (0, 0)
    assert a.value("gateway_queue_acknowledged_messages_total", queue="obs.depth") == 3


def test_dead_lettered_and_expired_counters(make_gateway, client, admin):
    gw = make_gateway({"broker": {"expiry_check_interval_ms": 50}})
    a = admin(gw)
    c = client(gw)
    c.send("/queue/obs.dlq", "reject me", headers={"persistent": "true"})
    c.subscribe("/queue/obs.dlq", ack="client-individual")
    c.nack(c.get())
    assert a.value("gateway_queue_dead_lettered_messages_total", queue="obs.dlq") == 1
    assert depth(a, "obs.dlq") == (0, 0)
    assert depth(a, "ActiveMQ.DLQ") == (1, 0)
    assert a.value("gateway_queue_enqueued_messages_total", queue="ActiveMQ.DLQ") == 1

    expires = int(time.time() * 1000) + 200
    c.send("/queue/obs.expiry", "short-lived", headers={"persistent": "true", "expires": str(expires)})
    c.send("/queue/obs.expiry", "non-persistent", headers={"expires": str(expires)})
    assert a.value("gateway_queue_enqueued_messages_total", queue="obs.expiry") == 2
    a.wait_value("gateway_queue_expired_messages_total", 2, queue="obs.expiry")
    assert depth(a, "obs.expiry") == (0, 0)
    # ActiveMQ: the persistent one goes to the DLQ, the other is dropped.
    assert depth(a, "ActiveMQ.DLQ") == (2, 0)
    assert a.value("gateway_queue_dead_lettered_messages_total", queue="obs.expiry") == 0


def test_connections_open_accepted_rejected_by_protocol(gateway, client, admin):
    a = admin(gateway)
    stomp_labels = {"protocol": "stomp", "listener": "stomp"}
    mqtt_labels = {"protocol": "mqtt", "listener": "mqtt"}
    assert a.value("gateway_connections_open", **stomp_labels) == 0
    assert a.value("gateway_connections_accepted_total", **mqtt_labels) == 0
    # The harness probed the STOMP port once while waiting for the gateway to start; the
    # gateway may accept that probe a little later (the kernel completes the handshake first).
    a.wait_value("gateway_connections_accepted_total", 1, **stomp_labels)
    a.wait_value("gateway_connections_open", 0, **stomp_labels)
    accepted_before = 1

    first = client(connect_headers={"client-id": "obs-c1"})
    client()
    m = MqttClient(gateway, client_id="obs-m1")
    try:
        assert a.value("gateway_connections_open", **stomp_labels) == 2
        assert a.value("gateway_connections_open", **mqtt_labels) == 1
        assert a.value("gateway_connections_accepted_total", **stomp_labels) == accepted_before + 2
        assert a.value("gateway_connections_accepted_total", **mqtt_labels) == 1

        # Same client id again: ActiveMQ refuses it (STOMP ERROR, close).
        try:
            client(connect_headers={"client-id": "obs-c1"})
            raise AssertionError("a second connection with a live client id was accepted")
        except AssertionError as e:
            assert "CONNECT refused" in str(e), e
        assert a.value("gateway_connections_rejected_total", **stomp_labels) == 1
        assert a.value("gateway_connections_accepted_total", **stomp_labels) == accepted_before + 3
        a.wait_value("gateway_connections_open", 2, **stomp_labels)

        first.disconnect()
        a.wait_value("gateway_connections_open", 1, **stomp_labels)
        assert a.value("gateway_sessions") == 2  # one STOMP, one MQTT
    finally:
        m.disconnect()
    a.wait_value("gateway_connections_open", 0, **mqtt_labels)
    assert a.value("gateway_connections_rejected_total", **mqtt_labels) == 0


def test_network_bytes_are_counted_exactly(gateway, admin):
    a = admin(gateway)
    labels = {"protocol": "stomp", "listener": "stomp"}
    received_before = a.value("gateway_network_received_bytes_total", **labels)
    sent_before = a.value("gateway_network_sent_bytes_total", **labels)
    frames = [
        b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00",
        b"SEND\ndestination:/queue/obs.bytes\n\nhello bytes\x00",
        b"DISCONNECT\nreceipt:bye\n\n\x00",
    ]
    got = b""
    with socket.create_connection((gateway.host, gateway.stomp_port), timeout=5) as s:
        for f in frames:
            s.sendall(f)
        # The gateway closes after the RECEIPT to DISCONNECT: read everything it wrote.
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    assert got.startswith(b"CONNECTED") and b"RECEIPT" in got, got
    sent = sum(len(f) for f in frames)
    a.wait_value("gateway_connections_open", 0, **labels)
    assert a.value("gateway_network_received_bytes_total", **labels) == received_before + sent
    assert a.value("gateway_network_sent_bytes_total", **labels) == sent_before + len(got)


def test_decode_errors_by_protocol(gateway, admin):
    a = admin(gateway)
    assert a.value("gateway_decode_errors_total", protocol="stomp") == 0
    assert a.value("gateway_decode_errors_total", protocol="mqtt") == 0
    with socket.create_connection((gateway.host, gateway.stomp_port), timeout=5) as s:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
        s.sendall(b"SEND\ndestination:/queue/x\nnocolonhere\n\nbody\x00")
        while s.recv(65536):
            pass
    assert a.value("gateway_decode_errors_total", protocol="stomp") == 1
    with socket.create_connection((gateway.host, gateway.mqtt_port), timeout=5) as s:
        # Packet type 0 is reserved: malformed.
        s.sendall(b"\x00\x00")
        while s.recv(65536):
            pass
    assert a.value("gateway_decode_errors_total", protocol="mqtt") == 1
    assert a.value("gateway_decode_errors_total", protocol="stomp") == 1


def test_journal_histograms_count_every_durable_append(gateway, client, admin):
    a = admin(gateway)
    c = client()
    for i in range(10):
        c.send("/queue/obs.journal", f"j{i}", headers={"persistent": "true"})
    m = a.metrics()

    def durable_count(metrics, op):
        return metrics.get(("gateway_journal_append_durable_seconds_count", frozenset({("op", op)})), 0)

    durable = sum(durable_count(m, op) for op in ("publish", "ack", "other"))
    appends = m[("gateway_journal_group_commit_appends_sum", frozenset())]
    groups = m[("gateway_journal_group_commit_appends_count", frozenset())]
    fsyncs = m[("gateway_journal_fsync_seconds_count", frozenset())]
    # Every append is timed once, under what it was; each send with a receipt waited for its
    # own append.
    assert durable == appends
    assert durable_count(m, "publish") == 10
    assert durable_count(m, "ack") == 0
    # Three acknowledgements of persistent messages, then a transaction of two sends: one
    # append at commit.
    c.subscribe("/queue/obs.journal", ack="client-individual")
    for frame in c.get_n(10)[:3]:
        c.ack(frame)
    tx = c.begin()
    c.send("/queue/obs.journal", "t1", headers={"persistent": "true"}, transaction=tx)
    c.send("/queue/obs.journal", "t2", headers={"persistent": "true"}, transaction=tx)
    c.commit(tx)
    m2 = a.metrics()
    assert durable_count(m2, "publish") == 11
    assert durable_count(m2, "ack") == 3
    # sync = "always": one fdatasync per group commit at least.
    assert fsyncs >= groups >= 1
    assert m[("gateway_journal_fsync_seconds_bucket", frozenset({("le", "+Inf")}))] == fsyncs
    assert m[("gateway_journal_fsyncs_total", frozenset())] >= fsyncs
    assert m[("gateway_store_used_bytes", frozenset())] > 0
    assert m[("gateway_data_dir_free_bytes", frozenset())] > 0
    assert m[("gateway_data_dir_total_bytes", frozenset())] >= m[("gateway_data_dir_free_bytes", frozenset())]
    assert 0 < m[("gateway_store_usage_ratio", frozenset())] <= 1


def test_memory_producers_and_flow_control(make_gateway, client, admin):
    gw = make_gateway({"broker": {"memory_limit_bytes": 1000, "flow_control": "block"}})
    a = admin(gw)
    assert a.value("gateway_memory_limit_bytes") == 1000
    assert a.value("gateway_producers") == 0
    p = client(gw)
    p.send("/queue/obs.mem", "x" * 600)
    assert a.value("gateway_memory_used_bytes") == 600
    assert a.value("gateway_queue_bytes", queue="obs.mem") == 600
    assert a.value("gateway_producers") == 1
    assert a.value("gateway_producers_blocked") == 0
    # Over the limit: the send waits (no receipt yet), counted as a blocked producer.
    p.send("/queue/obs.mem", "y" * 600, receipt=False)
    a.wait_value("gateway_producers_blocked", 1)
    assert a.value("gateway_memory_used_bytes") == 600
    c = client(gw)
    c.subscribe("/queue/obs.mem", ack="client-individual")
    c.ack(c.get())
    second = c.get()
    assert second.body == "y" * 600
    a.wait_value("gateway_producers_blocked", 0)
    assert a.value("gateway_memory_used_bytes") == 600
    c.ack(second)
    assert a.value("gateway_memory_used_bytes") == 0
    p.disconnect()
    a.wait_value("gateway_producers", 0)


def test_deleted_queue_reads_zero(gateway, client, admin):
    a = admin(gateway)
    c = client()
    c.send("/queue/obs.gone", "1")
    assert a.value("gateway_queue_ready_messages", queue="obs.gone") == 1
    assert a.delete("/api/queues/obs.gone")[0] == 200
    assert a.value("gateway_queue_ready_messages", queue="obs.gone") == 0


def test_durable_subscription_gauges(gateway, client, admin):
    a = admin(gateway)
    c = client(connect_headers={"client-id": "obs-dur"})
    c.subscribe("/topic/obs.news", headers={"activemq.subscriptionName": "news"})
    assert a.value("gateway_durable_subscriptions") == 1
    assert a.value("gateway_durable_subscriptions_inactive") == 0
    assert a.value("gateway_consumers") == 1
    c.disconnect()
    a.wait_value("gateway_durable_subscriptions_inactive", 1)
    assert a.value("gateway_durable_subscriptions") == 1


def test_open_transactions(gateway, client, admin):
    a = admin(gateway)
    assert a.value("gateway_transactions_open") == 0
    c = client()
    t1 = c.begin()
    t2 = c.begin()
    c.send("/queue/obs.tx", "in tx", transaction=t1)
    assert a.value("gateway_transactions_open") == 2
    assert a.value("gateway_queue_ready_messages", queue="obs.tx") in (None, 0)
    c.commit(t1)
    assert a.value("gateway_transactions_open") == 1
    assert a.value("gateway_queue_ready_messages", queue="obs.tx") == 1
    c.abort(t2)
    assert a.value("gateway_transactions_open") == 0
    c.begin()
    assert a.value("gateway_transactions_open") == 1
    # A connection that goes away rolls its transactions back.
    c.close_abruptly()
    a.wait_value("gateway_transactions_open", 0)


def test_failed_handshakes_count_as_rejected(make_gateway, admin):
    gw = make_gateway({"listeners": {"stomp": {"connect_timeout_ms": 200}, "mqtt": {"connect_timeout_ms": 200}}})
    a = admin(gw)
    stomp_labels = {"protocol": "stomp", "listener": "stomp"}
    mqtt_labels = {"protocol": "mqtt", "listener": "mqtt"}
    # A connection that closes without sending anything is not a refusal (port probes).
    socket.create_connection((gw.host, gw.mqtt_port), timeout=5).close()
    a.wait_value("gateway_connections_open", 0, **mqtt_labels)
    assert a.value("gateway_connections_rejected_total", **mqtt_labels) == 0
    # Silent until the CONNECT timeout: refused.
    with socket.create_connection((gw.host, gw.stomp_port), timeout=5) as s:
        while s.recv(65536):
            pass
    assert a.value("gateway_connections_rejected_total", **stomp_labels) == 1
    # MQTT: a PINGREQ before CONNECT is a protocol error (the codec rejects it: a decode error too).
    with socket.create_connection((gw.host, gw.mqtt_port), timeout=5) as s:
        s.sendall(b"\xc0\x00")
        while s.recv(65536):
            pass
    assert a.value("gateway_connections_rejected_total", **mqtt_labels) == 1
    with socket.create_connection((gw.host, gw.mqtt_port), timeout=5) as s:
        while s.recv(65536):
            pass
    assert a.value("gateway_connections_rejected_total", **mqtt_labels) == 2
    assert a.value("gateway_decode_errors_total", protocol="mqtt") == 1


def test_mqtt_persistent_session_queue_depth_survives_restart(gateway, admin):
    a = admin(gateway)
    sub = MqttClient(gateway, client_id="obs-mqtt-sub", version=4, clean=False)
    sub.subscribe("obs/mqtt/+", qos=1)
    sub.disconnect()
    pub = MqttClient(gateway, client_id="obs-mqtt-pub", version=4)
    for i in range(3):
        pub.publish(f"obs/mqtt/{i}", f"q{i}".encode(), qos=1)
    pub.disconnect()

    def subscription_queue():
        queues = a.get("/api/queues")[1]["queues"]
        mine = [q for q in queues if (q.get("subscription") or "").startswith("obs-mqtt-sub.")]
        assert len(mine) == 1, queues
        return mine[0]

    q = subscription_queue()
    assert (q["kind"], q["ready"], q["consumers"], q["enqueued"]) == ("subscription", 3, 0, 3)
    assert a.value("gateway_queue_ready_messages", queue=q["name"]) == 3
    assert a.value("gateway_durable_subscriptions_inactive") == 1
    gateway.restart()
    assert a.value("gateway_queue_ready_messages", queue=q["name"]) == 3
    back = MqttClient(gateway, client_id="obs-mqtt-sub", version=4, clean=False)
    try:
        got = back.get_n(3)
        assert sorted(m.payload for m in got) == [b"q0", b"q1", b"q2"]
        a.wait_value("gateway_queue_acknowledged_messages_total", 3, queue=q["name"])
        assert a.value("gateway_queue_ready_messages", queue=q["name"]) == 0
        assert a.value("gateway_durable_subscriptions_inactive") == 0
    finally:
        back.disconnect()


def test_per_topic_series_count_publishes_subscriptions_and_consumers(gateway, client, admin):
    """Amazon MQ's Topic dimension: publishes per topic, and the subscriptions (non-durable,
    durable, wildcard) matching it with their consumers and in-flight messages."""
    a = admin(gateway)
    topic = {"topic": "obs.t"}
    assert a.value("gateway_topic_enqueued_messages_total", **topic) is None
    auto = client()
    auto.subscribe("/topic/obs.t")
    held = client()
    held.subscribe("/topic/obs.t", ack="client")
    m = MqttClient(gateway, client_id="obs-topic")
    m.subscribe("obs/#", qos=1)
    # Known through its subscriptions before anything was published.
    assert a.value("gateway_topic_subscriptions", **topic) == 3
    assert a.value("gateway_topic_consumers", **topic) == 3
    assert a.value("gateway_topic_enqueued_messages_total", **topic) == 0
    # A wildcard pattern is no topic of its own.
    assert a.value("gateway_topic_subscriptions", topic="obs.>") is None

    sender = client()
    for i in range(5):
        sender.send("/topic/obs.t", f"m{i}")
    m.publish("obs/t", b"from mqtt", qos=1)
    auto.get_n(6)
    got = held.get_n(6)
    assert len(m.get_n(6)) == 6
    assert a.value("gateway_topic_enqueued_messages_total", **topic) == 6
    # Only the client-ack subscriber holds its deliveries.
    a.wait_value("gateway_topic_unacked_messages", 6, **topic)
    # An MQTT-only topic under the wildcard: one subscription matches it.
    m.publish("obs/other", b"x", qos=1)
    m.get()
    assert a.value("gateway_topic_enqueued_messages_total", topic="obs.other") == 1
    assert a.value("gateway_topic_subscriptions", topic="obs.other") == 1
    assert a.value("gateway_topic_enqueued_messages_total", **topic) == 6
    # No queue series for the non-durable subscriptions.
    assert not [k for k in a.metrics() if k[0] == "gateway_queue_ready_messages"
                and dict(k[1])["queue"].startswith("ID:")]

    held.ack(got[-1])  # cumulative: all six
    a.wait_value("gateway_topic_unacked_messages", 0, **topic)
    held.disconnect()
    auto.disconnect()
    a.wait_value("gateway_topic_subscriptions", 1, **topic)
    assert a.value("gateway_topic_consumers", **topic) == 1
    m.disconnect()
    a.wait_value("gateway_topic_subscriptions", 0, **topic)
    assert a.value("gateway_topic_consumers", **topic) == 0
    assert a.value("gateway_topic_enqueued_messages_total", **topic) == 6


def test_residence_time_sums_seconds_from_send_to_ack(gateway, client, admin):
    """Amazon MQ's EnqueueTime: gateway_queue_residence_seconds_total grows by the whole seconds
    a message waited between its send and its acknowledgement."""
    a = admin(gateway)
    c = client()
    start = time.monotonic()
    c.send("/queue/obs.residence", "slow")
    c.subscribe("/queue/obs.residence", ack="client")
    frame = c.get()
    time.sleep(1.2)
    c.ack(frame)
    elapsed = time.monotonic() - start
    a.wait_value("gateway_queue_acknowledged_messages_total", 1, queue="obs.residence")
    residence = a.value("gateway_queue_residence_seconds_total", queue="obs.residence")
    assert 1 <= residence <= elapsed, (residence, elapsed)
