"""Routes from a stream into the queue world: records produced by Kafka clients reach STOMP
consumers with their headers, at least once, and the route resumes after a restart from its
committed offset (no repeats of what was already enqueued)."""

from __future__ import annotations

from gwtest.kafka import restart

ROUTE = """
[[streams]]
name = "payments"
partitions = 2

[[routes]]
name = "payments-to-legacy"
from = "stream:payments"
to = "queue:legacy.payments"
"""


def test_records_reach_a_stomp_queue_consumer_with_their_headers_and_resume_after_restart(
    kafka_gateway, kcat, client
):
    gw = kafka_gateway(extra_toml=ROUTE)
    first = [f"cust-{i % 4}:payment {i} €" for i in range(20)]
    kcat(gw, "-P", "-t", "payments", "-K:", "-H", "tenant=acme", "-H", "content-type=text/plain",
         input="".join(line + "\n" for line in first))
    c = client(gw)
    c.subscribe("/queue/legacy.payments", ack="client-individual")
    got = c.get_n(20)
    for m in got:
        c.ack(m)
    assert sorted(m.body for m in got) == sorted(line.split(":", 1)[1] for line in first)
    for m in got:
        h = m.headers
        assert h["tenant"] == "acme"
        assert h["content-type"].startswith("text/plain")
        assert h["kafka.topic"] == "payments"
        assert h["kafka.key"] == f"cust-{int(m.body.split()[1]) % 4}"
        assert h["persistent"] == "true"
    # Per partition the queue order is the stream order.
    for p in ("0", "1"):
        offsets = [int(m.headers["kafka.offset"]) for m in got if m.headers["kafka.partition"] == p]
        assert offsets == sorted(offsets)
    c.disconnect()

    restart(gw)
    second = [f"cust-{i % 4}:later {i}" for i in range(5)]
    kcat(gw, "-P", "-t", "payments", "-K:", input="".join(line + "\n" for line in second))
    c = client(gw)
    c.subscribe("/queue/legacy.payments")
    again = c.get_n(5)
    assert sorted(m.body for m in again) == sorted(line.split(":", 1)[1] for line in second)
    c.expect_no_message(1.0)


def test_records_reach_an_mqtt5_subscriber_through_a_topic_route(kafka_gateway, kcat):
    from gwtest.mqtt import MqttClient

    gw = kafka_gateway(extra_toml="""
[[routes]]
name = "events-to-mqtt"
from = "stream:events"
to = "topic:legacy.events"
""")
    sub = MqttClient(gw, version=5)
    sub.subscribe("legacy/events", qos=1)
    # The route waits for its stream: producing creates it (auto-creation).
    kcat(gw, "-P", "-t", "events", "-K:", "-H", "source=billing",
         input="".join(f"k{i}:event {i}\n" for i in range(10)))
    got = sub.get_n(10, timeout=20)
    assert sorted(m.payload for m in got) == sorted(f"event {i}".encode() for i in range(10))
    for m in got:
        assert m.topic == "legacy/events"
        props = dict(m.properties.UserProperty)
        assert props["source"] == "billing"
        assert props["kafka.key"] == "k" + m.payload.decode().split()[1]
    sub.disconnect()
