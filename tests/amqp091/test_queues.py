"""Default exchange and queues: declare (durable, exclusive, auto-delete, passive, server-named),
publish / consume / ack, get / get-empty, qos prefetch, cancel, nack / reject, recover,
redelivered flag, persistence across restarts."""

from __future__ import annotations

import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from gwtest.amqp import pika_connection as connect, pump


def drain(ch, queue, n, timeout=5.0, auto_ack=False):
    """Consume n messages from queue with a fresh consumer; returns [(method, props, body)]."""
    got = []
    for method, props, body in ch.consume(queue, auto_ack=auto_ack, inactivity_timeout=timeout):
        if method is None:
            break
        got.append((method, props, body))
        if len(got) == n:
            break
    ch.cancel()
    return got


def test_declare_returns_counts_and_passive_checks_existence(amqp):
    ch = amqp().channel()
    ok = ch.queue_declare("orders", durable=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == ("orders", 0, 0)
    ch.basic_publish("", "orders", b"1")
    ch.basic_publish("", "orders", b"2")
    ok = ch.queue_declare("orders", passive=True).method
    assert ok.message_count == 2
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("missing", passive=True)
    assert err.value.reply_code == 404


def test_server_named_queue(amqp):
    ch = amqp().channel()
    name = ch.queue_declare("", exclusive=True).method.queue
    assert name.startswith("amq.gen-")
    ch.basic_publish("", name, b"to me")
    assert ch.basic_get(name, auto_ack=True)[2] == b"to me"
    # "" names the channel's last declared queue.
    ch.basic_publish("", name, b"again")
    assert ch.basic_get("", auto_ack=True)[2] == b"again"


def test_reserved_queue_names_are_refused(amqp):
    ch = amqp().channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("amq.mine")
    assert err.value.reply_code == 403


def test_inequivalent_redeclare_is_precondition_failed(amqp):
    conn = amqp()
    conn.channel().queue_declare("dur", durable=True)
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("dur", durable=False)
    assert err.value.reply_code == 406
    assert "durable" in err.value.reply_text


def test_exclusive_queue_is_locked_to_its_connection_and_goes_with_it(gateway, amqp):
    owner = amqp()
    ch = owner.channel()
    ch.queue_declare("mine", exclusive=True)
    other = amqp().channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        other.queue_declare("mine", passive=True)
    assert err.value.reply_code == 405
    owner.close()
    probe = amqp().channel()
    deadline = time.monotonic() + 5
    while True:
        try:
            probe.queue_declare("mine", passive=True)
        except ChannelClosedByBroker as e:
            assert e.reply_code == 404
            break
        assert time.monotonic() < deadline, "exclusive queue survived its connection"
        time.sleep(0.1)


def test_auto_delete_queue_goes_with_its_last_consumer(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("temp-ad", auto_delete=True)
    tag = ch.basic_consume("temp-ad", lambda *a: None)
    assert ch.queue_declare("temp-ad", passive=True).method.consumer_count == 1
    ch.basic_cancel(tag)
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("temp-ad", passive=True)
    assert err.value.reply_code == 404


def test_publish_consume_ack(amqp):
    amqp_conn = amqp()
    ch = amqp_conn.channel()
    ch.queue_declare("work")
    for i in range(5):
        ch.basic_publish("", "work", f"m{i}".encode())
    got = drain(ch, "work", 5)
    assert [b for _, _, b in got] == [f"m{i}".encode() for i in range(5)]
    m = got[0][0]
    assert (m.exchange, m.routing_key, m.redelivered) == ("", "work", False)
    assert [g[0].delivery_tag for g in got] == [1, 2, 3, 4, 5]
    # As RabbitMQ: after basic.cancel the unacked deliveries stay unacked, still ackable.
    assert ch.queue_declare("work", passive=True).method.message_count == 0
    ch.basic_ack(got[2][0].delivery_tag, multiple=True)
    # Closing the channel returns the other two, redelivered.
    ch.close()
    ch = amqp_conn.channel()
    again = drain(ch, "work", 2)
    assert [b for _, _, b in again] == [b"m3", b"m4"]
    assert all(g[0].redelivered for g in again)
    ch.basic_ack(again[-1][0].delivery_tag, multiple=True)
    assert ch.queue_declare("work", passive=True).method.message_count == 0


def test_get_and_get_empty(amqp):
    ch = amqp().channel()
    ch.queue_declare("g")
    assert ch.basic_get("g") == (None, None, None)
    ch.basic_publish("", "g", b"a")
    ch.basic_publish("", "g", b"b")
    method, _, body = ch.basic_get("g", auto_ack=False)
    assert body == b"a" and method.message_count == 1
    ch.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = ch.basic_get("g", auto_ack=False)
    assert body == b"a" and method.redelivered
    ch.basic_ack(method.delivery_tag)
    assert ch.basic_get("g", auto_ack=True)[2] == b"b"
    assert ch.basic_get("g") == (None, None, None)


def test_qos_prefetch_limits_unacked_deliveries(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("pf")
    for i in range(6):
        ch.basic_publish("", "pf", str(i).encode())
    ch.basic_qos(prefetch_count=2)
    received = []
    ch.basic_consume("pf", lambda c, m, p, b: received.append(m))
    pump(conn, lambda: len(received) >= 2, settle=0.5)
    assert len(received) == 2
    ch.basic_ack(received[1].delivery_tag, multiple=True)
    pump(conn, lambda: len(received) >= 4, settle=0.5)
    assert len(received) == 4
    ch.basic_ack(received[3].delivery_tag, multiple=True)
    pump(conn, lambda: len(received) >= 6)
    assert len(received) == 6


def fill(ch, queues, n):
    for q in queues:
        ch.queue_declare(q)
        for i in range(n):
            ch.basic_publish("", q, f"{q}-{i}".encode())


def test_qos_prefetch_is_per_consumer_without_global(amqp):
    """basic.qos global=false (RabbitMQ 3's meaning): each consumer of the channel may hold
    that many unacknowledged deliveries, so two consumers on one channel hold 2 each, and
    acknowledging one consumer's deliveries frees only that consumer."""
    conn = amqp()
    ch = conn.channel()
    fill(ch, ("pc1", "pc2"), 4)
    ch.basic_qos(prefetch_count=2)
    received = {"pc1": [], "pc2": []}
    ch.basic_consume("pc1", lambda c, m, p, b: received["pc1"].append(m))
    ch.basic_consume("pc2", lambda c, m, p, b: received["pc2"].append(m))
    pump(conn, lambda: len(received["pc1"]) + len(received["pc2"]) >= 4, settle=0.5)
    assert (len(received["pc1"]), len(received["pc2"])) == (2, 2)  # 4 in all, not 2
    ch.basic_ack(received["pc1"][1].delivery_tag)  # frees one place of pc1's consumer
    pump(conn, lambda: len(received["pc1"]) >= 3, settle=0.5)
    assert (len(received["pc1"]), len(received["pc2"])) == (3, 2)


def test_qos_applies_to_consumers_started_after_it(amqp):
    """A per-consumer limit is fixed when the consumer starts (RabbitMQ): a later basic.qos
    changes only the consumers started after it."""
    conn = amqp()
    ch = conn.channel()
    fill(ch, ("early", "late"), 5)
    ch.basic_qos(prefetch_count=1)
    received = {"early": [], "late": []}
    ch.basic_consume("early", lambda c, m, p, b: received["early"].append(m))
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume("late", lambda c, m, p, b: received["late"].append(m))
    pump(conn, lambda: len(received["early"]) + len(received["late"]) >= 4, settle=0.5)
    assert (len(received["early"]), len(received["late"])) == (1, 3)


def test_per_consumer_and_global_qos_together(amqp):
    """Both limits at once, as RabbitMQ 3 allows: each consumer at most 2, the channel at most 3."""
    conn = amqp()
    ch = conn.channel()
    fill(ch, ("both1", "both2"), 4)
    ch.basic_qos(prefetch_count=2)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    received = {"both1": [], "both2": []}
    ch.basic_consume("both1", lambda c, m, p, b: received["both1"].append(m))
    ch.basic_consume("both2", lambda c, m, p, b: received["both2"].append(m))
    pump(conn, lambda: len(received["both1"]) + len(received["both2"]) >= 3, settle=0.5)
    counts = (len(received["both1"]), len(received["both2"]))
    assert sum(counts) == 3 and max(counts) == 2, counts


def test_cancel_stops_deliveries(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("c")
    received = []
    tag = ch.basic_consume("c", lambda c, m, p, b: received.append(b), auto_ack=True)
    ch.basic_publish("", "c", b"1")
    pump(conn, lambda: received == [b"1"])
    ch.basic_cancel(tag)
    ch.basic_publish("", "c", b"2")
    pump(conn, lambda: True, settle=0.5)
    assert received == [b"1"]
    assert ch.queue_declare("c", passive=True).method.message_count == 1


def test_nack_requeue_multiple_and_reject_discard(amqp):
    ch = amqp().channel()
    ch.queue_declare("n")
    for b in (b"a", b"b", b"c"):
        ch.basic_publish("", "n", b)
    tags = [ch.basic_get("n")[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[1], multiple=True, requeue=True)  # a and b back
    m, _, body = ch.basic_get("n")
    assert body == b"a" and m.redelivered
    ch.basic_reject(m.delivery_tag, requeue=False)  # dropped
    ch.basic_nack(tags[2], requeue=False)  # c dropped
    m, _, body = ch.basic_get("n")
    assert body == b"b" and m.redelivered
    ch.basic_ack(m.delivery_tag)
    assert ch.queue_declare("n", passive=True).method.message_count == 0


def test_recover_redelivers_unacked(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("r")
    ch.basic_publish("", "r", b"x")
    received = []
    ch.basic_consume("r", lambda c, m, p, b: received.append(m))
    pump(conn, lambda: len(received) >= 1)
    assert len(received) == 1 and not received[0].redelivered
    ch.basic_recover(requeue=True)
    pump(conn, lambda: len(received) >= 2)
    assert len(received) == 2 and received[1].redelivered
    ch.basic_ack(received[1].delivery_tag)


def test_recover_without_requeue_is_not_implemented(amqp):
    """RabbitMQ 3 never implemented basic.recover requeue=false (redelivery to the same
    consumer): it closes the connection with 540 NOT_IMPLEMENTED, and so does the gateway; the
    unacknowledged message goes back to its queue."""
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("r-false")
    ch.basic_publish("", "r-false", b"x")
    received = []
    ch.basic_consume("r-false", lambda c, m, p, b: received.append(m))
    pump(conn, lambda: len(received) >= 1)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        ch.basic_recover(requeue=False)
    assert err.value.reply_code == 540
    assert err.value.reply_text == "NOT_IMPLEMENTED - requeue=false"
    ch2 = amqp().channel()
    method, _, body = get_with_retry(ch2, "r-false")
    assert body == b"x" and method.redelivered


def get_with_retry(ch, queue, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method:
            return method, props, body
        assert time.monotonic() < deadline, f"nothing in {queue}"
        time.sleep(0.05)


def test_unknown_delivery_tag_is_precondition_failed(amqp):
    ch = amqp().channel()
    ch.queue_declare("t")
    ch.basic_ack(99)
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("t", passive=True)  # the close arrives before this reply
    assert err.value.reply_code == 406
    assert "unknown delivery tag 99" in err.value.reply_text


def test_queue_purge_and_delete_if_unused_if_empty(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("p")
    for _ in range(3):
        ch.basic_publish("", "p", b"x")
    assert ch.queue_purge("p").method.message_count == 3
    ch.basic_publish("", "p", b"y")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_delete("p", if_empty=True)
    assert err.value.reply_code == 406
    ch = conn.channel()
    tag = ch.basic_consume("p", lambda *a: None)
    other = conn.channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        other.queue_delete("p", if_unused=True)
    assert err.value.reply_code == 406
    ch.basic_cancel(tag)
    assert conn.channel().queue_delete("p").method.message_count == 1


def test_consumer_cancel_notification_when_queue_deleted(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("doomed")
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume("doomed", lambda *a: None)
    conn.channel().queue_delete("doomed")
    pump(conn, lambda: cancelled)
    assert cancelled == [tag]


def test_exclusive_consumer(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("ex")
    ch.basic_consume("ex", lambda *a: None, exclusive=True)
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().basic_consume("ex", lambda *a: None)
    assert err.value.reply_code == 403


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_persistent_messages_survive_a_restart(make_gateway, stop):
    gw = make_gateway()
    conn = connect(gw)
    ch = conn.channel()
    ch.confirm_delivery()  # acks only once on disk
    ch.queue_declare("keep", durable=True)
    for i in range(20):
        ch.basic_publish("", "keep", f"p{i}".encode(),
                         pika.BasicProperties(delivery_mode=2, headers={"i": i}))
    ch.basic_publish("", "keep", b"transient", pika.BasicProperties(delivery_mode=1))
    # Consume and ack the first 5: acked deliveries never come back.
    for _ in range(5):
        m, _, _ = ch.basic_get("keep")
        ch.basic_ack(m.delivery_tag)
    # One more delivered but unacked: comes back, redelivered.
    ch.basic_get("keep")
    time.sleep(0.3)
    if stop == "kill":
        gw.kill()
    else:
        conn.close()
        gw.terminate()
    gw.start()
    conn = connect(gw)
    ch = conn.channel()
    got = drain(ch, "keep", 15, timeout=3)
    bodies = [b for _, _, b in got]
    assert bodies == [f"p{i}".encode() for i in range(5, 20)]
    assert got[0][0].redelivered
    assert got[0][1].delivery_mode == 2 and got[0][1].headers == {"i": 5}
    conn.close()


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_non_durable_and_exclusive_queues_do_not_survive_a_restart(make_gateway, stop):
    gw = make_gateway()
    conn = connect(gw)
    ch = conn.channel()
    ch.queue_declare("transient", durable=False)
    ch.queue_declare("mine-only", durable=True, exclusive=True)
    ch.queue_declare("kept", durable=True)
    ch.confirm_delivery()  # on disk before the kill
    for q in ("transient", "mine-only", "kept"):
        ch.basic_publish("", q, b"p", pika.BasicProperties(delivery_mode=2))
    if stop == "kill":
        gw.kill()
    else:
        conn.close()
        gw.terminate()
    gw.start()
    conn = connect(gw)
    assert conn.channel().queue_declare("kept", passive=True).method.message_count == 1
    for q in ("transient", "mine-only"):
        with pytest.raises(ChannelClosedByBroker) as err:
            conn.channel().queue_declare(q, passive=True)
        assert err.value.reply_code == 404, q
    conn.close()


def test_global_qos_limits_the_channel_as_a_whole(amqp):
    conn = amqp()
    ch = conn.channel()
    for q in ("g1", "g2"):
        ch.queue_declare(q)
        for i in range(4):
            ch.basic_publish("", q, f"{q}-{i}".encode())
    ch.basic_qos(prefetch_count=3, global_qos=True)
    received = []
    ch.basic_consume("g1", lambda c, m, p, b: received.append(m))
    ch.basic_consume("g2", lambda c, m, p, b: received.append(m))
    pump(conn, lambda: len(received) >= 3, settle=0.5)
    assert len(received) == 3  # across both consumers
    ch.basic_ack(received[0].delivery_tag)
    pump(conn, lambda: len(received) >= 4, settle=0.5)
    assert len(received) == 4
    ch.basic_ack(0, multiple=True)
    pump(conn, lambda: len(received) >= 7, settle=0.3)
    ch.basic_ack(0, multiple=True)
    pump(conn, lambda: len(received) >= 8)
    assert [m.delivery_tag for m in received] == list(range(1, 9))
