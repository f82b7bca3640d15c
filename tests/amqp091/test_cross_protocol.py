"""AMQP 0-9-1 exchanges and queues live in the same address/queue model as STOMP and MQTT:
amq.topic is the topic space, the default exchange reaches queues by name."""

from __future__ import annotations

import time

import pika
import pytest

from gwtest import mqtt as m


@pytest.fixture
def mqtt_client(gateway):
    clients = []

    def make(**kwargs):
        c = m.MqttClient(gateway, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass


def get_one(ch, queue, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return method, props, body
        time.sleep(0.05)
    raise AssertionError(f"nothing arrived on {queue}")


def test_amqp_topic_publish_reaches_stomp_and_mqtt_subscribers(gateway, amqp, client, mqtt_client):
    stomp = client(gateway)
    stomp.subscribe("/topic/a.b")
    mq = mqtt_client()
    mq.subscribe("a/b", qos=1)
    ch = amqp().channel()
    ch.basic_publish("amq.topic", "a.b", "héllo 𝄞".encode(),
                     pika.BasicProperties(content_type="text/plain", headers={"shade": "blue", "n": 7},
                                          correlation_id="c-1", delivery_mode=2, priority=6))
    frame = stomp.get()
    assert frame.body == "héllo 𝄞"
    assert frame.headers["destination"] == "/topic/a.b"
    assert frame.headers["shade"] == "blue" and frame.headers["n"] == "7"
    assert frame.headers["correlation-id"] == "c-1"
    assert frame.headers["persistent"] == "true" and frame.headers["priority"] == "6"
    assert not any(h.startswith("amqp.") for h in frame.headers), frame.headers
    msg = mq.get()
    assert (msg.topic, msg.payload) == ("a/b", "héllo 𝄞".encode())


def test_stomp_queue_send_reaches_amqp_consumer(gateway, amqp, client):
    ch = amqp().channel()
    ch.queue_declare("x")
    client(gateway).send("/queue/x", "from stomp", headers={"color": "red"}, content_type="text/plain")
    method, props, body = get_one(ch, "x")
    assert body == b"from stomp"
    assert (method.exchange, method.routing_key) == ("", "x")
    assert props.content_type == "text/plain"
    assert props.headers["color"] == "red"


def test_stomp_topic_send_reaches_queue_bound_to_amq_topic(gateway, amqp, client):
    ch = amqp().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", "prices.*")
    client(gateway).send("/topic/prices.eur", "1.08")
    method, _, body = get_one(ch, q)
    assert body == b"1.08"
    assert (method.exchange, method.routing_key) == ("amq.topic", "prices.eur")


def test_mqtt_publish_reaches_amqp_queue_bound_with_hash(gateway, amqp, mqtt_client):
    ch = amqp().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", "sensors.#")
    mqtt_client().publish("sensors/7/temp", b"21.5", qos=1)
    method, _, body = get_one(ch, q)
    assert body == b"21.5"
    assert method.routing_key == "sensors.7.temp"


def test_amqp_default_exchange_reaches_stomp_queue_consumer(gateway, amqp, client):
    stomp = client(gateway)
    stomp.subscribe("/queue/jobs")
    ch = amqp().channel()
    ch.queue_declare("jobs")
    ch.basic_publish("", "jobs", b"job-1", pika.BasicProperties(reply_to="answers", message_id="mid-9"))
    frame = stomp.get()
    assert frame.body == "job-1"
    assert frame.headers["destination"] == "/queue/jobs"
    assert frame.headers["reply-to"] == "/queue/answers"
    assert frame.headers["amqp-message-id"] == "mid-9"
