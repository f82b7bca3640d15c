"""All 14 basic properties and a headers table with every field type pika writes (it has no float
writer) round trip
AMQP -> AMQP unchanged; the mapping to STOMP/MQTT is in test_cross_protocol.py."""

from __future__ import annotations

import datetime
import decimal

import pika


def test_all_basic_properties_and_headers_round_trip(amqp):
    ch = amqp().channel()
    ch.queue_declare("props")
    headers = {
        "string": "text ü 𝄞",
        "bytes": b"\x00\x01\xff",
        "int": 42,
        "negative": -7,
        "long": 2**40,
        "bool": True,
        "decimal": decimal.Decimal("12.34"),
        "timestamp": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        "table": {"nested": "yes", "deeper": {"n": 1}},
        "array": [1, "two", {"three": 3}],
        "void": None,
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-1",
        reply_to="replies",
        expiration="600000",
        message_id="msg-1",
        timestamp=1_700_000_000,
        type="order.created",
        user_id="guest",
        app_id="shop",
        cluster_id="c1",
    )
    ch.basic_publish("", "props", b"{}", props)
    method, got, body = ch.basic_get("props", auto_ack=True)
    assert body == b"{}"
    for name in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
                 "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
                 "cluster_id"):
        assert getattr(got, name) == getattr(props, name), name
    assert got.headers == headers


def test_user_id_must_match_the_login(amqp):
    import pytest
    from pika.exceptions import ChannelClosedByBroker

    ch = amqp().channel()
    ch.basic_publish("", "x", b"x", pika.BasicProperties(user_id="somebody-else"))
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("y")
    assert err.value.reply_code == 406


def test_absent_properties_stay_absent(amqp):
    ch = amqp().channel()
    ch.queue_declare("bare")
    ch.basic_publish("", "bare", b"x")
    _, got, _ = ch.basic_get("bare", auto_ack=True)
    assert got.delivery_mode is None and got.headers is None and got.message_id is None
