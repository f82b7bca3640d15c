"""Routes that move (issue 7) from a queue pattern or from a topic: every matching send goes to
the route only (the queue it was sent to, or the topic's subscribers, never get it) and the
route delivers it on at least once; a selector leaves the other sends where they were sent;
messages already in the queues when the route starts stay there; reload adds and removes the
redirect."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from gwtest.kafka import wait_until


def _admin_get(gw, path: str) -> dict:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}{path}", timeout=10) as r:
        return json.loads(r.read())


def _post_reload(gw) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{gw.host}:{gw.admin_port}/api/reload", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


MOVE_TO_STREAM = """
[[streams]]
name = "orders"
partitions = 2

[[routes]]
name = "orders-move"
from = "queue:orders.*"
to = "stream:orders"
mode = "move"
key = "customerId"
"""


def test_a_queue_pattern_is_moved_to_a_stream_and_the_legacy_queues_get_nothing(
    kafka_gateway, client
):
    from kafka import KafkaConsumer, TopicPartition

    gw = kafka_gateway(extra_toml=MOVE_TO_STREAM)
    legacy = client(gw)
    legacy.subscribe("/queue/orders.*")
    producer = client(gw)
    for i in range(30):
        producer.send(f"/queue/orders.{['eu', 'us', 'apac'][i % 3]}", f"order {i}",
                      headers={"customerId": f"c{i % 4}", "persistent": "true"})
    # Elsewhere than the pattern: untouched.
    producer.send("/queue/invoices", "not an order")
    k = KafkaConsumer(bootstrap_servers=gw.bootstrap, consumer_timeout_ms=3000)
    k.assign([TopicPartition("orders", p) for p in range(2)])
    k.seek_to_beginning()
    seen = []
    deadline = time.time() + 20
    while len(seen) < 30 and time.time() < deadline:
        seen.extend(k)
    k.close()
    assert sorted(m.value.decode() for m in seen) == sorted(f"order {i}" for i in range(30))
    by_key: dict[bytes, list[int]] = {}
    for m in seen:
        n = int(m.value.decode().split()[1])
        assert m.key == f"c{n % 4}".encode()
        by_key.setdefault(m.key, []).append(n)
    assert all(v == sorted(v) for v in by_key.values()), "one key keeps its order"
    # Moved: the legacy consumer got none, and nothing is left in the queues.
    legacy.expect_no_message(1.0)
    for q in ("orders.eu", "orders.us", "orders.apac"):
        assert _admin_get(gw, f"/api/queues/{q}")["messages"] == 0
    other = client(gw)
    other.subscribe("/queue/invoices")
    assert other.get().body == "not an order"


MOVE_TO_QUEUE = """
[[routes]]
name = "escalate"
from = "queue:tickets.*"
to = "queue:escalated"
mode = "move"
selector = "severity IN ('high', 'critical')"
"""


def test_a_queue_pattern_is_moved_to_a_queue_with_a_selector_added_and_removed_by_reload(
    kafka_gateway, client
):
    gw = kafka_gateway()
    original = gw.config_path.read_text()
    producer = client(gw)
    # Already in a matching queue when the route starts: it stays there.
    producer.send("/queue/tickets.a", "before the route", headers={"severity": "high"})

    gw.config_path.write_text(original + MOVE_TO_QUEUE)
    status, body = _post_reload(gw)
    assert status == 200, body
    assert body["result"]["started"] == 1
    severities = ["low", "high", "normal", "critical", "high", "low"]
    for i, severity in enumerate(severities):
        producer.send(f"/queue/tickets.{'ab'[i % 2]}", f"ticket {i}",
                      headers={"severity": severity, "persistent": "true", "seq": str(i)})
    escalated = client(gw)
    escalated.subscribe("/queue/escalated")
    got = escalated.get_n(3)
    assert [m.body for m in got] == ["ticket 1", "ticket 3", "ticket 4"]
    for m in got:
        assert m.headers["destination"] == "/queue/escalated"
        assert m.headers["seq"] == m.body.split()[1]
        assert m.headers["persistent"] == "true"
    escalated.expect_no_message(0.5)
    # What does not match the selector went where it was sent, with what was there before.
    legacy = client(gw)
    legacy.subscribe("/queue/tickets.*")
    assert sorted(m.body for m in legacy.get_n(4)) == [
        "before the route", "ticket 0", "ticket 2", "ticket 5"]
    legacy.expect_no_message(0.5)

    # Removed: the sends go to their queue again.
    gw.config_path.write_text(original)
    status, body = _post_reload(gw)
    assert status == 200, body
    assert body["result"]["stopped"] == 1
    producer.send("/queue/tickets.b", "after removal", headers={"severity": "critical"})
    assert legacy.get().body == "after removal"
    escalated.expect_no_message(1.0)


MOVE_FROM_TOPIC = """
[[routes]]
name = "prices-in"
from = "topic:prices.>"
to = "queue:prices.archive"
mode = "move"

[[routes]]
name = "alerts-in"
from = "topic:alerts.*"
to = "queue:alerts.severe"
mode = "move"
selector = "level = 'severe'"
"""


def test_a_topic_pattern_is_moved_to_a_queue_and_its_subscribers_get_nothing(
    kafka_gateway, client
):
    gw = kafka_gateway(extra_toml=MOVE_FROM_TOPIC)
    subscriber = client(gw)
    subscriber.subscribe("/topic/prices.>")
    alerts = client(gw)
    alerts.subscribe("/topic/alerts.*")
    other = client(gw)
    other.subscribe("/topic/news")
    producer = client(gw)
    for i in range(12):
        producer.send(f"/topic/prices.{['fx', 'eq.eu'][i % 2]}", f"price {i}",
                      headers={"persistent": "true", "seq": str(i)})
    for i, level in enumerate(["info", "severe", "info", "severe"]):
        producer.send(f"/topic/alerts.{i}", f"alert {i}", headers={"level": level})
    producer.send("/topic/news", "not moved")
    archive = client(gw)
    archive.subscribe("/queue/prices.archive")
    got = archive.get_n(12)
    assert [m.body for m in got] == [f"price {i}" for i in range(12)]
    for m in got:
        assert m.headers["destination"] == "/queue/prices.archive"
        assert m.headers["seq"] == m.body.split()[1]
    archive.expect_no_message(0.5)
    # Moved: the topic's subscriber got none; the selector left the other alerts on the topic.
    subscriber.expect_no_message(1.0)
    assert sorted(m.body for m in alerts.get_n(2)) == ["alert 0", "alert 2"]
    alerts.expect_no_message(0.5)
    severe = client(gw)
    severe.subscribe("/queue/alerts.severe")
    assert [m.body for m in severe.get_n(2)] == ["alert 1", "alert 3"]
    assert other.get().body == "not moved"
    wait_until(lambda: _admin_get(gw, "/api/queues/route.prices-in")["messages"] == 0, 10,
               "the route's queue drained")

    # An MQTT publish, retained, is moved too: no subscriber gets it, now or later.
    from gwtest.mqtt import MqttClient

    mqtt_sub = MqttClient(gw, version=5)
    mqtt_sub.subscribe("prices/#", qos=1)
    pub = MqttClient(gw, version=5)
    pub.publish("prices/fx", b"retained price", qos=1, retain=True)
    assert archive.get().body == "retained price"
    mqtt_sub.expect_no_message(1.0)
    late = MqttClient(gw, version=5)
    late.subscribe("prices/#", qos=1)
    late.expect_no_message(1.0)
    for c in (mqtt_sub, pub, late):
        c.disconnect()


COPY_FROM_QUEUES = """
[[routes]]
name = "audit"
from = "queue:payments.*"
to = "queue:audit.payments"
mode = "copy"
"""


def test_amqp_publishes_are_moved_and_copied_by_routes_as_other_sends_are(kafka_gateway, client):
    """A RabbitMQ producer keeps publishing through exchanges: the default exchange's key is
    the queue a route moves or copies from, and `amq.topic`'s key the topic a route moves from."""
    import pika

    from gwtest.amqp import pika_connection

    gw = kafka_gateway(extra_toml=MOVE_TO_QUEUE + MOVE_FROM_TOPIC + COPY_FROM_QUEUES)
    subscriber = client(gw)
    subscriber.subscribe("/topic/prices.>")
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.confirm_delivery()
    for queue in ("tickets.a", "tickets.b", "payments.eu"):
        ch.queue_declare(queue, durable=True)
    # Through a direct exchange too: the queue it reaches is what the route looks at.
    ch.exchange_declare("helpdesk", exchange_type="direct", durable=True)
    ch.queue_bind("tickets.b", "helpdesk", routing_key="b")
    severities = ["low", "high", "critical", "normal"]
    for i, severity in enumerate(severities):
        exchange, key = ("", "tickets.a") if i % 2 == 0 else ("helpdesk", "b")
        ch.basic_publish(exchange, key, f"ticket {i}".encode(), pika.BasicProperties(
            delivery_mode=2, headers={"severity": severity, "seq": str(i)}))
    ch.basic_publish("amq.topic", "prices.fx", b"price 0", pika.BasicProperties(delivery_mode=2))
    ch.basic_publish("", "payments.eu", b"payment 0", pika.BasicProperties(delivery_mode=2))

    # Moved from the queues: the selector's matches reach the route's queue only.
    escalated = client(gw)
    escalated.subscribe("/queue/escalated")
    got = escalated.get_n(2)
    assert sorted(m.body for m in got) == ["ticket 1", "ticket 2"]
    for m in got:
        assert m.headers["seq"] == m.body.split()[1]
    escalated.expect_no_message(0.5)
    legacy = client(gw)
    legacy.subscribe("/queue/tickets.*")
    assert sorted(m.body for m in legacy.get_n(2)) == ["ticket 0", "ticket 3"]
    legacy.expect_no_message(0.5)
    # Moved from the topic: the route's queue has it, the topic's subscriber does not.
    archive = client(gw)
    archive.subscribe("/queue/prices.archive")
    assert archive.get().body == "price 0"
    subscriber.expect_no_message(1.0)
    # Copied: the audit queue has a copy and the queue it was published to keeps it.
    audit = client(gw)
    audit.subscribe("/queue/audit.payments")
    assert audit.get().body == "payment 0"
    ok, _, body = ch.basic_get("payments.eu", auto_ack=True)
    assert body == b"payment 0", ok
    conn.close()
