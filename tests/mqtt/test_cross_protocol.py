"""MQTT <-> STOMP through the gateway (ActiveMQ's mapping: MQTT `/` levels are `.` levels of a
STOMP `/topic/`, MQTT `+`/`#` are `*`/`>`; user properties are STOMP headers). gateway_only:
mosquitto has no STOMP."""

from __future__ import annotations

import pytest

from gwtest import mqtt as m

pytestmark = pytest.mark.gateway_only


def test_mqtt_publish_reaches_stomp_topic_subscriber(broker, mqtt, stomp):
    s = stomp(broker)
    s.subscribe("/topic/sensors.7.temp")
    mqtt(broker).publish("sensors/7/temp", b"21.5", qos=1)
    frame = s.get()
    assert frame.body == "21.5"
    assert frame.headers["destination"] == "/topic/sensors.7.temp"


def test_stomp_send_reaches_mqtt_subscriber(broker, mqtt, stomp):
    c = mqtt(broker)
    c.subscribe("sensors/7/temp", qos=1)
    stomp(broker).send("/topic/sensors.7.temp", "22.0")
    msg = c.get()
    assert (msg.topic, msg.payload) == ("sensors/7/temp", b"22.0")


def test_mqtt_wildcards_match_stomp_topics(broker, mqtt, stomp):
    plus, hash_ = mqtt(broker), mqtt(broker)
    plus.subscribe("sensors/+/temp", qos=1)
    hash_.subscribe("sensors/#", qos=1)
    st = stomp(broker)
    st.send("/topic/sensors.8.temp", "a")
    st.send("/topic/sensors.8.humidity", "b")
    assert [(x.topic, x.payload) for x in plus.get_n(1)] == [("sensors/8/temp", b"a")]
    assert sorted(x.topic for x in hash_.get_n(2)) == ["sensors/8/humidity", "sensors/8/temp"]
    plus.expect_no_message(0.3)


def test_stomp_wildcard_subscriber_gets_mqtt_publishes(broker, mqtt, stomp):
    s = stomp(broker)
    s.subscribe("/topic/sensors.*.temp")
    mqtt(broker).publish("sensors/9/temp", b"x", qos=1)
    assert s.get().headers["destination"] == "/topic/sensors.9.temp"


def test_mqtt_user_properties_become_stomp_headers(broker, mqtt, stomp):
    s = stomp(broker)
    s.subscribe("/topic/sensors.7.temp")
    mqtt(broker, version=5).publish("sensors/7/temp", b"x", qos=1, properties=m.props(
        UserProperty=[("site", "north"), ("unit", "C")], ContentType="text/plain",
        CorrelationData=b"corr-1"))
    h = s.get().headers
    assert h.get("site") == "north" and h.get("unit") == "C"
    assert h.get("content-type", "").startswith("text/plain")
    assert h.get("correlation-id") == "corr-1"


def test_stomp_headers_become_mqtt_user_properties(broker, mqtt, stomp):
    c = mqtt(broker, version=5)
    c.subscribe("sensors/7/temp", qos=1)
    stomp(broker).send("/topic/sensors.7.temp", "x", headers={"site": "south", "correlation-id": "c-2"},
                       content_type="text/plain")
    msg = c.get()
    props = dict(getattr(msg.properties, "UserProperty", []))
    assert props.get("site") == "south"
    assert msg.properties.CorrelationData == b"c-2"
    assert msg.properties.ContentType.startswith("text/plain")
