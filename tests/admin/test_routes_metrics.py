"""Route throughput and bridge lag (issue 8), on a migration-style configuration (as
examples/migration.toml): a Kafka producer feeds a stream routed into a legacy queue, and a
STOMP producer's queue is copied into a stream. Also the producers counted per destination."""

from __future__ import annotations

from kafka import KafkaProducer

from gwtest.kafka import wait_for_port, wait_until
from gwtest.mqtt import MqttClient

MIGRATION = """
[[streams]]
name = "payments"
partitions = 2

[[routes]]
name = "payments-to-legacy"
from = "stream:payments"
to = "queue:legacy.payments"

[[streams]]
name = "orders"
partitions = 3

[[routes]]
name = "orders-to-stream"
from = "queue:orders.*"
to = "stream:orders"
mode = "copy"
key = "customerId"

# The legacy queue holds at most two messages and refuses more (flow control "fail"): the
# route cannot carry the rest until a consumer makes room, so its lag shows.
[[broker.destinations]]
pattern = "legacy.payments"
max_messages = 2
flow_control = "fail"
"""


def test_route_throughput_errors_and_bridge_lag(make_gateway, client, admin):
    gw = make_gateway(extra_toml=MIGRATION)
    wait_for_port(gw.host, gw.kafka_port)
    a = admin(gw)
    m = a.metrics()
    for route in ("payments-to-legacy", "orders-to-stream"):
        assert m[("gateway_route_messages_total", frozenset({("route", route)}))] == 0
        assert m[("gateway_route_errors_total", frozenset({("route", route)}))] == 0
    assert m[("gateway_route_lag_messages", frozenset({("route", "payments-to-legacy")}))] == 0

    # Stream -> queue: five payments, of which the queue takes two.
    p = KafkaProducer(bootstrap_servers=f"{gw.host}:{gw.kafka_port}")
    for i in range(5):
        p.send("payments", value=b"pay%d" % i, partition=0)
    p.flush(10)
    p.close()
    a.wait_value("gateway_queue_ready_messages", 2, timeout=10, queue="legacy.payments")
    wait_until(lambda: (a.value("gateway_route_errors_total", route="payments-to-legacy") or 0) >= 1,
               timeout=10, what="a refused enqueue")
    assert a.value("gateway_route_messages_total", route="payments-to-legacy") == 2
    assert a.value("gateway_route_lag_messages", route="payments-to-legacy") == 3
    # The route's group is a consumer group like any other, attributed to the route.
    status, groups = a.get("/api/groups")
    assert status == 200
    [g] = [g for g in groups["groups"] if g["route"] == "payments-to-legacy"]
    assert g["lag"] == 3
    assert a.post(f"/api/groups/{g['name']}/reset?to=earliest")[0] == 409

    # A legacy consumer drains the queue: the route catches up, lag 0.
    c = client(gw)
    c.subscribe("/queue/legacy.payments", ack="auto")
    got = c.get_n(5, timeout=15)
    assert sorted(f.body for f in got) == [f"pay{i}" for i in range(5)]
    a.wait_value("gateway_route_messages_total", 5, timeout=10, route="payments-to-legacy")
    a.wait_value("gateway_route_lag_messages", 0, timeout=10, route="payments-to-legacy")

    # Queue -> stream (copy): three STOMP sends are appended to the stream.
    s = client(gw)
    for i in range(3):
        s.send("/queue/orders.eu", f"order{i}", headers={"customerId": f"c{i}", "persistent": "true"})
    a.wait_value("gateway_route_messages_total", 3, timeout=10, route="orders-to-stream")
    assert a.value("gateway_route_errors_total", route="orders-to-stream") == 0
    m = a.metrics()
    ends = [m[("gateway_stream_end_offset", frozenset({("stream", "orders"), ("partition", str(p))}))]
            for p in range(3)]
    assert sum(ends) == 3, ends


def test_producers_per_destination_by_protocol(gateway, client, admin):
    a = admin(gateway)
    s1 = client()
    s1.send("/queue/prod.q", "x")
    s1.send("/topic/prod.t", "y")
    s1.send("/queue/prod.q", "z")
    m = MqttClient(gateway, client_id="obs-producer", version=4)
    m.publish("prod/mqtt", b"m", qos=1)
    figures = a.metrics()

    def producers(kind, destination, metrics=None):
        return (metrics or a.metrics()).get(
            ("gateway_destination_producers", frozenset({("kind", kind), ("destination", destination)})))

    assert producers("queue", "prod.q", figures) == 1
    assert producers("topic", "prod.t", figures) == 1
    assert producers("topic", "prod.mqtt", figures) == 1
    s2 = client()
    s2.send("/queue/prod.q", "again")
    assert producers("queue", "prod.q") == 2
    s1.disconnect()
    a.wait_value("gateway_destination_producers", 1, kind="queue", destination="prod.q")
    assert producers("topic", "prod.t") == 0
    m.disconnect()
    a.wait_value("gateway_destination_producers", 0, kind="topic", destination="prod.mqtt")


def test_amqp_producers_count_per_exchange_and_queue(gateway, admin):
    import pika

    a = admin(gateway)
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=gateway.host, port=gateway.amqp_port))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("prod.amqp", durable=True)
        ch.basic_publish("", "prod.amqp", b"via default exchange")
        ch.basic_publish("amq.topic", "prod.amqp.t", b"via amq.topic")
        m = a.metrics()
        key = "gateway_destination_producers"
        assert m[(key, frozenset({("kind", "queue"), ("destination", "prod.amqp")}))] == 1
        assert m[(key, frozenset({("kind", "exchange"), ("destination", "amq.topic")}))] == 1
    finally:
        conn.close()
    a.wait_value("gateway_destination_producers", 0, kind="queue", destination="prod.amqp")


def test_open_transactions_and_spill_files_in_store_use(make_gateway, client, admin):
    # A page window of 10: a deeper queue's messages go to spill files.
    gw = make_gateway({"broker": {"queue_page_window": 10}})
    a = admin(gw)
    c = client(gw)
    tx = c.begin()
    c.send("/queue/tx.q", "in a transaction", transaction=tx)
    assert a.value("gateway_transactions_open") == 1
    c.commit(tx)
    assert a.value("gateway_transactions_open") == 0

    # Non-persistent messages never reach the journal: what store use gains is spill files.
    before = a.value("gateway_store_used_bytes")
    body = "x" * 2000
    for _ in range(60):
        c.send("/queue/spill.q", body, headers={"persistent": "false"})
    assert a.value("gateway_queue_ready_messages", queue="spill.q") == 60
    paged = a.value("gateway_store_used_bytes") - before
    # 50 of the 60 bodies are behind the window, on disk.
    assert paged >= 50 * 2000, paged
    status, overview = a.get("/api/overview")
    assert status == 200 and overview["store_used_bytes"] == a.value("gateway_store_used_bytes")
    # Drained, the spill files are given back.
    c.subscribe("/queue/spill.q", ack="auto")
    c.get_n(60)
    a.wait_value("gateway_queue_ready_messages", 0, queue="spill.q")
    assert a.value("gateway_store_used_bytes") - before < 50 * 2000
