"""Virtual topics as on ActiveMQ 5 (docs/mapping.md#virtual-topics): `Consumer.<name>.VirtualTopic.<t>`
queues fed by publishes to topic `VirtualTopic.<t>` from every protocol, consumers with their own
selectors, and ActiveMQ's `selectorAware` option (off by default, as on ActiveMQ)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import paho.mqtt.client as paho
import pika

from gwtest.amqp import pika_connection


def queue_state(gw, name: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/api/queues/{name}",
                                    timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def wait_for_consumers(gw, name: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = queue_state(gw, name)
        if state is not None and state["consumers"] == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never had {count} consumer(s): {queue_state(gw, name)}")


def texts(result) -> list[str]:
    return [r.text for r in result.received]


def test_consumers_of_one_queue_use_their_own_selectors_and_unselected_messages_wait(gateway, jms):
    j = jms(gateway)
    queue = "queue:Consumer.A.VirtualTopic.Paint"
    # The consumer queue exists from its first consumer on (as on ActiveMQ).
    assert j.run("receive", queue, "100", "1").received == []
    # seq is 0, 1, 2.
    assert j.run("send", "topic:VirtualTopic.Paint", "p", "3").returncode == 0
    one = j.run("receive-selector", queue, "seq = 1", "5000", "1")
    assert texts(one) == ["p-1"], one
    # Another selector on the same consumer queue is its own consumer (no "subscription in use").
    two = j.run("receive-selector", queue, "seq = 2", "5000", "1")
    assert texts(two) == ["p-2"], two
    # Not selector-aware (ActiveMQ's default): what no selector took waits in the queue.
    assert queue_state(gateway, "Consumer.A.VirtualTopic.Paint")["ready"] == 1
    rest = j.run("receive", queue, "5000", "1")
    assert texts(rest) == ["p-0"], rest


def test_selector_aware_consumer_queues_take_only_what_a_current_consumer_selects(make_gateway, jms):
    gw = make_gateway({"broker": {"virtual_topic_selector_aware": True}})
    j = jms(gw)
    # Consumer.B exists but has no consumer: it gets nothing while selector-aware.
    assert j.run("receive", "queue:Consumer.B.VirtualTopic.Paint", "100", "1").received == []
    selective = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "receive-selector", "queue:Consumer.A.VirtualTopic.Paint", "seq = 1", "20000", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_consumers(gw, "Consumer.A.VirtualTopic.Paint", 1)
        assert j.run("send", "topic:VirtualTopic.Paint", "p", "3").returncode == 0
        out, err = selective.communicate(timeout=30)
    finally:
        if selective.poll() is None:
            selective.kill()
            selective.wait()
    assert "text=p-1 " in out, out + err
    # The messages its consumer would not select were never enqueued.
    for name in ("Consumer.A.VirtualTopic.Paint", "Consumer.B.VirtualTopic.Paint"):
        state = queue_state(gw, name)
        assert (state["ready"], state["unacked"]) == (0, 0), state
    assert j.run("receive", "queue:Consumer.A.VirtualTopic.Paint", "500", "1").received == []


def test_stomp_mqtt_and_amqp_publishes_reach_consumer_queues_of_every_protocol(gateway, jms, client):
    j = jms(gateway)
    # Two consumer queues: one read by JMS, one by STOMP.
    assert j.run("receive", "queue:Consumer.Jms.VirtualTopic.Orders", "100", "1").received == []
    stomp = client(gateway)
    stomp.subscribe("/queue/Consumer.Stomp.VirtualTopic.Orders")
    wait_for_consumers(gateway, "Consumer.Stomp.VirtualTopic.Orders", 1)

    publisher = client(gateway)
    publisher.send("/topic/VirtualTopic.Orders", "from-stomp",
                   headers={"persistent": "true", "amq-msg-type": "text"})

    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="vt-mqtt", protocol=paho.MQTTv311)
    mqtt.connect(gateway.host, gateway.mqtt_port)
    mqtt.loop_start()
    try:
        mqtt.publish("VirtualTopic/Orders", b"from-mqtt", qos=1).wait_for_publish(timeout=10)
    finally:
        mqtt.loop_stop()
        mqtt.disconnect()

    conn = pika_connection(gateway)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("amq.topic", "VirtualTopic.Orders", b"from-amqp",
                         pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()

    got_stomp = sorted(stomp.get().body for _ in range(3))
    assert got_stomp == ["from-amqp", "from-mqtt", "from-stomp"]
    got_jms = j.run("receive", "queue:Consumer.Jms.VirtualTopic.Orders", "5000", "3")
    assert got_jms.returncode == 0, got_jms
    # MQTT and AMQP bodies reach JMS as BytesMessages (docs/mapping.md), STOMP's as asked.
    assert sorted((r.type, r.text) for r in got_jms.received) == [
        ("ActiveMQBytesMessage", "-"), ("ActiveMQBytesMessage", "-"),
        ("ActiveMQTextMessage", "from-stomp")], got_jms


def test_consumer_queue_keeps_collecting_across_a_restart(make_gateway, jms):
    gw = make_gateway()
    j = jms(gw)
    assert j.run("receive", "queue:Consumer.A.VirtualTopic.Kept", "100", "1").received == []
    gw.restart()
    # No consumer has come back yet: the queue is fed all the same.
    assert j.run("send", "topic:VirtualTopic.Kept", "k", "2").returncode == 0
    gw.restart()
    got = j.run("receive", "queue:Consumer.A.VirtualTopic.Kept", "5000", "2")
    assert texts(got) == ["k-0", "k-1"], got


def test_custom_virtual_topic_naming_as_activemq_name_and_prefix(make_gateway, jms):
    gw = make_gateway({"broker": {"virtual_topic_name": "events.>",
                                  "virtual_topic_consumer_prefix": "VirtualTopicConsumers.*."}})
    j = jms(gw)
    queue = "queue:VirtualTopicConsumers.billing.events.orders"
    assert j.run("receive", queue, "100", "1").received == []
    assert j.run("receive", "queue:Consumer.A.VirtualTopic.orders", "100", "1").received == []
    assert j.run("send", "topic:events.orders", "e").returncode == 0
    assert j.run("send", "topic:VirtualTopic.orders", "v").returncode == 0
    assert texts(j.run("receive", queue, "5000", "1")) == ["e"]
    # The default naming is not in force any more.
    assert queue_state(gw, "Consumer.A.VirtualTopic.orders")["messages"] == 0
