"""Queue arguments: x-message-ttl, per-message expiration, x-max-length with x-overflow,
x-dead-letter-exchange / -routing-key, x-max-priority, x-expires, x-queue-type."""

from __future__ import annotations

import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker


def bodies(ch, queue):
    out = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def test_queue_message_ttl_expires_messages(amqp):
    ch = amqp().channel()
    ch.queue_declare("ttl", arguments={"x-message-ttl": 200})
    ch.basic_publish("", "ttl", b"old")
    time.sleep(0.6)
    ch.basic_publish("", "ttl", b"new")
    assert bodies(ch, "ttl") == [b"new"]


def test_per_message_expiration(amqp):
    ch = amqp().channel()
    ch.queue_declare("exp")
    ch.basic_publish("", "exp", b"short", pika.BasicProperties(expiration="150"))
    ch.basic_publish("", "exp", b"long", pika.BasicProperties(expiration="60000"))
    time.sleep(0.5)
    assert bodies(ch, "exp") == [b"long"]


def test_invalid_expiration_is_precondition_failed(amqp):
    ch = amqp().channel()
    ch.basic_publish("", "whatever", b"x", pika.BasicProperties(expiration="soon"))
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("after")
    assert err.value.reply_code == 406


def test_max_length_drops_the_head(amqp):
    ch = amqp().channel()
    ch.queue_declare("cap", arguments={"x-max-length": 2})
    for b in (b"1", b"2", b"3"):
        ch.basic_publish("", "cap", b)
    assert bodies(ch, "cap") == [b"2", b"3"]


def test_max_length_reject_publish_nacks_with_confirms(amqp):
    ch = amqp().channel()
    ch.confirm_delivery()
    ch.queue_declare("full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish("", "full", b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", "full", b"refused")
    assert bodies(ch, "full") == [b"fits"]


def test_dead_letter_exchange_on_reject_and_expiry(amqp):
    ch = amqp().channel()
    ch.queue_declare("dead")
    ch.queue_declare("live", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    ch.basic_publish("", "live", b"rejected", pika.BasicProperties(headers={"k": "v"}))
    method, _, _ = ch.basic_get("live")
    ch.basic_reject(method.delivery_tag, requeue=False)
    method, props, body = ch.basic_get("dead", auto_ack=True)
    assert body == b"rejected"
    assert props.headers["k"] == "v"
    assert props.headers["x-first-death-reason"] == "rejected"
    assert props.headers["x-first-death-queue"] == "live"
    assert method.routing_key == "dead"
    # Expired messages go the same way.
    ch.queue_declare("short-lived", arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "amq.direct"})
    ch.queue_bind("dead", "amq.direct", "short-lived")
    ch.basic_publish("", "short-lived", b"expired")
    deadline = time.monotonic() + 5
    while True:
        method, props, body = ch.basic_get("dead", auto_ack=True)
        if method:
            break
        assert time.monotonic() < deadline, "expired message never dead-lettered"
        time.sleep(0.1)
    assert body == b"expired"
    assert props.headers["x-first-death-reason"] == "expired"


def test_reject_without_dead_letter_exchange_discards(amqp):
    ch = amqp().channel()
    ch.queue_declare("plain")
    ch.basic_publish("", "plain", b"x")
    method, _, _ = ch.basic_get("plain")
    ch.basic_nack(method.delivery_tag, requeue=False)
    assert bodies(ch, "plain") == []


def test_max_priority_orders_by_priority(amqp):
    ch = amqp().channel()
    ch.queue_declare("prio", arguments={"x-max-priority": 10})
    for p in (1, 9, 5):
        ch.basic_publish("", "prio", str(p).encode(), pika.BasicProperties(priority=p))
    assert bodies(ch, "prio") == [b"9", b"5", b"1"]


def test_x_expires_deletes_an_unused_queue(amqp):
    ch = amqp().channel()
    ch.queue_declare("fleeting", arguments={"x-expires": 300})
    time.sleep(1.2)
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("fleeting", passive=True)
    assert err.value.reply_code == 404


@pytest.mark.parametrize("kind", ["classic", "quorum"])
def test_queue_types_accepted(amqp, kind):
    ch = amqp().channel()
    q = f"typed-{kind}"
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": kind})
    ch.basic_publish("", q, b"ok")
    assert bodies(ch, q) == [b"ok"]


def test_invalid_and_inequivalent_arguments(amqp):
    conn = amqp()
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("bad", arguments={"x-queue-type": "weird"})
    assert err.value.reply_code == 406
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("bad", arguments={"x-message-ttl": -1})
    assert err.value.reply_code == 406
    conn.channel().queue_declare("args", arguments={"x-max-length": 5})
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("args", arguments={"x-max-length": 6})
    assert err.value.reply_code == 406
    assert "x-max-length" in err.value.reply_text
