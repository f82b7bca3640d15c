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


def test_max_length_reject_publish_dlx_nacks_and_dead_letters(amqp):
    """x-overflow reject-publish-dlx (RabbitMQ 3.10): the refused message is nacked to the
    publisher and dead-lettered with reason maxlen; the queue keeps what it had."""
    ch = amqp().channel()
    ch.confirm_delivery()
    ch.queue_declare("overflowed")
    ch.queue_declare("full-dlx", arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                            "x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": "overflowed"})
    ch.basic_publish("", "full-dlx", b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", "full-dlx", b"refused", pika.BasicProperties(headers={"k": "v"}))
    assert bodies(ch, "full-dlx") == [b"fits"]
    method, props, body = get_one(ch, "overflowed")
    assert body == b"refused" and method.routing_key == "overflowed"
    assert props.headers["k"] == "v"
    assert props.headers["x-first-death-reason"] == "maxlen"
    assert props.headers["x-death"][0]["queue"] == "full-dlx"
    assert props.headers["x-death"][0]["reason"] == "maxlen"
    # Plain reject-publish dead-letters nothing.
    ch.queue_declare("full-plain", arguments={"x-max-length": 1, "x-overflow": "reject-publish",
                                              "x-dead-letter-exchange": "",
                                              "x-dead-letter-routing-key": "overflowed"})
    ch.basic_publish("", "full-plain", b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", "full-plain", b"refused-too")
    time.sleep(0.3)
    assert bodies(ch, "overflowed") == []


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


def test_max_priority_absent_priority_is_the_lowest(amqp):
    """RabbitMQ 3.10 treats a message without a priority as priority 0 (not the JMS default 4):
    published first, it still comes after a priority-1 message; two of them keep their order."""
    ch = amqp().channel()
    ch.queue_declare("prio-absent", arguments={"x-max-priority": 10})
    ch.basic_publish("", "prio-absent", b"none-1")
    ch.basic_publish("", "prio-absent", b"zero", pika.BasicProperties(priority=0))
    ch.basic_publish("", "prio-absent", b"none-2")
    ch.basic_publish("", "prio-absent", b"one", pika.BasicProperties(priority=1))
    ch.basic_publish("", "prio-absent", b"three", pika.BasicProperties(priority=3))
    assert bodies(ch, "prio-absent") == [b"three", b"one", b"none-1", b"zero", b"none-2"]
    # The consumer sees no priority where the publisher set none.
    ch.basic_publish("", "prio-absent", b"bare")
    _, props, _ = ch.basic_get("prio-absent", auto_ack=True)
    assert props.priority is None


def test_max_priority_caps_priorities_above_the_maximum(amqp):
    """Priorities above x-max-priority count as the maximum: with max 2, priorities 5, 2 and 9
    are one level, delivered in publish order, ahead of 1."""
    ch = amqp().channel()
    ch.queue_declare("prio-cap", arguments={"x-max-priority": 2})
    for body, p in ((b"one", 1), (b"five", 5), (b"two", 2), (b"nine", 9), (b"none", None)):
        ch.basic_publish("", "prio-cap", body, pika.BasicProperties(priority=p))
    assert bodies(ch, "prio-cap") == [b"five", b"two", b"nine", b"one", b"none"]
    # What a consumer sees is the priority as published, not the capped one.
    ch.basic_publish("", "prio-cap", b"x", pika.BasicProperties(priority=9))
    _, props, _ = ch.basic_get("prio-cap", auto_ack=True)
    assert props.priority == 9


def test_max_priority_has_more_than_ten_levels(amqp):
    """x-max-priority up to 255 is honoured level by level (RabbitMQ allows 255 levels)."""
    ch = amqp().channel()
    ch.queue_declare("prio-wide", arguments={"x-max-priority": 200})
    for p in (12, 150, 10, 11, 255, 0):
        ch.basic_publish("", "prio-wide", str(p).encode(), pika.BasicProperties(priority=p))
    assert bodies(ch, "prio-wide") == [b"255", b"150", b"12", b"11", b"10", b"0"]
    # Above 255 is refused, as RabbitMQ does.
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("prio-huge", arguments={"x-max-priority": 256})
    assert err.value.reply_code == 406


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


def get_one(ch, queue, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue)
        if method:
            return method, props, body
        assert time.monotonic() < deadline, f"nothing arrived in {queue}"
        time.sleep(0.05)


def test_x_death_history_counts_each_queue_and_reason(amqp):
    """RabbitMQ 3.10's x-death: an array of tables, most recent first, one per (queue, reason),
    with count, exchange, routing-keys and time; x-first-death-* stay at the first death."""
    ch = amqp().channel()
    ch.exchange_declare("jobs", "direct")
    ch.queue_declare("work", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retry"})
    ch.queue_bind("work", "jobs", "job")
    ch.queue_declare("retry", arguments={
        "x-message-ttl": 50, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "work"})
    before = time.time()
    ch.basic_publish("jobs", "job", b"task", pika.BasicProperties(headers={"attempt": 1}))
    method, props, _ = get_one(ch, "work")
    assert "x-death" not in (props.headers or {})
    ch.basic_reject(method.delivery_tag, requeue=False)
    # rejected from work -> retry -> expired -> back into work
    method, props, body = get_one(ch, "work")
    assert body == b"task"
    deaths = props.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [
        ("retry", "expired", 1), ("work", "rejected", 1)]
    assert deaths[1]["exchange"] == "jobs" and deaths[1]["routing-keys"] == ["job"]
    assert deaths[0]["exchange"] == "" and deaths[0]["routing-keys"] == ["retry"]
    assert all(abs(d["time"].timestamp() - before) < 60 for d in deaths)
    assert sorted(deaths[0]) == ["count", "exchange", "queue", "reason", "routing-keys", "time"]
    ch.basic_reject(method.delivery_tag, requeue=False)
    method, props, _ = get_one(ch, "work")
    deaths = props.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [
        ("retry", "expired", 2), ("work", "rejected", 2)]
    assert props.headers["x-first-death-queue"] == "work"
    assert props.headers["x-first-death-reason"] == "rejected"
    assert props.headers["x-first-death-exchange"] == "jobs"
    assert props.headers["attempt"] == 1
    # Delivered from the dead-letter exchange with the dead-letter routing key.
    assert (method.exchange, method.routing_key) == ("", "work")
    ch.basic_ack(method.delivery_tag)


def test_x_death_on_max_length(amqp):
    ch = amqp().channel()
    ch.queue_declare("overflowed")
    ch.queue_declare("bounded", arguments={
        "x-max-length": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "overflowed"})
    ch.basic_publish("", "bounded", b"first")
    ch.basic_publish("", "bounded", b"second")
    method, props, body = get_one(ch, "overflowed")
    assert body == b"first"
    [death] = props.headers["x-death"]
    assert (death["queue"], death["reason"], death["count"]) == ("bounded", "maxlen", 1)
    assert death["routing-keys"] == ["bounded"]


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_queue_arguments_survive_a_restart(make_gateway, stop):
    """A durable queue keeps its arguments across a restart (even SIGKILL): they are in force
    before any client declares it again, the same declaration is accepted and another one is
    refused with 406, as RabbitMQ does."""
    from gwtest.amqp import pika_connection

    gw = make_gateway()
    args = {"x-max-length": 2, "x-overflow": "reject-publish", "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "parked", "x-max-priority": 5, "x-queue-type": "classic"}
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.queue_declare("parked", durable=True)
    ch.queue_declare("shaped", durable=True, arguments=args)
    ch.queue_bind("shaped", "amq.direct", "shape")
    if stop == "kill":
        gw.kill()
    else:
        conn.close()
        gw.terminate()
    gw.start()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.confirm_delivery()
    # The binding holds too (even for a queue the journal had not recorded before a SIGKILL).
    ch.basic_publish("amq.direct", "shape", b"low", pika.BasicProperties(priority=1, delivery_mode=2),
                     mandatory=True)
    ch.basic_publish("", "shaped", b"high", pika.BasicProperties(priority=5, delivery_mode=2))
    with pytest.raises(pika.exceptions.NackError):  # x-max-length 2 with reject-publish
        ch.basic_publish("", "shaped", b"third", pika.BasicProperties(delivery_mode=2))
    method, _, body = ch.basic_get("shaped")
    assert body == b"high"  # x-max-priority
    ch.basic_reject(method.delivery_tag, requeue=False)
    _, props, body = get_one(ch, "parked")  # x-dead-letter-*
    assert body == b"high" and props.headers["x-death"][0]["queue"] == "shaped"
    ch.queue_declare("shaped", durable=True, arguments=args)
    for other in ({**args, "x-max-length": 3}, {k: v for k, v in args.items() if k != "x-max-priority"}):
        with pytest.raises(ChannelClosedByBroker) as err:
            conn.channel().queue_declare("shaped", durable=True, arguments=other)
        assert err.value.reply_code == 406
        assert "inequivalent arg" in err.value.reply_text
    conn.close()


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_max_priority_levels_survive_a_restart(make_gateway, stop):
    """A durable x-max-priority 20 queue comes back with its 20 levels and its cap: persistent
    messages of priorities 12, 30 (capped to 20) and 15 are delivered 30, 15, 12 after a restart
    (even SIGKILL), and so are new ones."""
    from gwtest.amqp import pika_connection

    gw = make_gateway()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("levels", durable=True, arguments={"x-max-priority": 20})
    for p in (12, 30, 15):
        ch.basic_publish("", "levels", str(p).encode(), pika.BasicProperties(priority=p, delivery_mode=2))
    if stop == "kill":
        gw.kill()
    else:
        conn.close()
        gw.terminate()
    gw.start()
    conn = pika_connection(gw)
    ch = conn.channel()
    assert bodies(ch, "levels") == [b"30", b"15", b"12"]
    for p in (12, 30, 15):
        ch.basic_publish("", "levels", str(p).encode(), pika.BasicProperties(priority=p))
    assert bodies(ch, "levels") == [b"30", b"15", b"12"]
    conn.close()
