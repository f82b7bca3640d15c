"""Publisher confirms and transactions."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from gwtest.amqp import RawAmqp, method_frame, shortstr


def count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def test_confirms_ack_every_publish_in_order(gateway, raw_amqp):
    # Raw peer: confirm.select, 5 persistent publishes, expect basic.ack 1..5 in order.
    import struct

    from gwtest.amqp import FRAME_BODY, FRAME_HEADER, frame

    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("confirmed") + b"\x02"
                           + struct.pack(">I", 0)))
    assert peer.read_method()[1:3] == (50, 11)
    peer.send(method_frame(1, 85, 10, b"\x00"))
    assert peer.read_method()[1:3] == (85, 11)
    for i in range(5):
        body = f"m{i}".encode()
        peer.send(method_frame(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("confirmed") + b"\x00"))
        # content header: class 60, weight 0, size, flags (delivery-mode bit 0x1000), mode 2
        peer.send(frame(FRAME_HEADER, 1, struct.pack(">HHQHB", 60, 0, len(body), 0x1000, 2)))
        peer.send(frame(FRAME_BODY, 1, body))
    tags = []
    while len(tags) < 5:
        _, c, m, args = peer.read_method()
        assert (c, m) == (60, 80), (c, m)
        tag, multiple = struct.unpack(">QB", args)
        tags.extend(range((tags[-1] + 1) if (multiple and tags) else tag, tag + 1))
    assert tags == [1, 2, 3, 4, 5]


def test_pika_confirm_delivery(amqp):
    ch = amqp().channel()
    ch.confirm_delivery()
    ch.queue_declare("conf", durable=True)
    for i in range(10):
        ch.basic_publish("", "conf", str(i).encode(), pika.BasicProperties(delivery_mode=2))
    assert count(ch, "conf") == 10


def test_tx_commit_and_rollback_of_publishes(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("txq")
    ch.tx_select()
    ch.basic_publish("", "txq", b"a")
    ch.basic_publish("", "txq", b"b")
    observer = conn.channel()
    assert count(observer, "txq") == 0  # not visible before commit
    ch.tx_commit()
    assert count(observer, "txq") == 2
    ch.basic_publish("", "txq", b"c")
    ch.tx_rollback()
    ch.tx_commit()
    assert count(observer, "txq") == 2


def test_tx_acks_apply_at_commit_and_rollback_keeps_them_unacked(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("txa")
    for b in (b"1", b"2"):
        ch.basic_publish("", "txa", b)
    ch.tx_select()
    m1 = ch.basic_get("txa")[0]
    ch.basic_ack(m1.delivery_tag)
    ch.tx_rollback()
    # Still unacked after rollback: acking it again (and committing) works.
    ch.basic_ack(m1.delivery_tag)
    ch.tx_commit()
    m2 = ch.basic_get("txa")[0]
    ch.basic_ack(m2.delivery_tag)
    ch.close()  # uncommitted ack: m2 goes back to the queue
    ch = conn.channel()
    m, _, body = ch.basic_get("txa", auto_ack=True)
    assert body == b"2" and m.redelivered


def test_commit_without_select_is_precondition_failed(amqp):
    ch = amqp().channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.tx_commit()
    assert err.value.reply_code == 406


def test_confirm_and_tx_do_not_mix(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.tx_select()
    assert err.value.reply_code == 406


def test_tx_returns_unroutable_mandatory_publishes_at_commit(amqp):
    conn = amqp()
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, method, props, body: returned.append((method.routing_key, body)))
    ch.queue_declare("txm")
    ch.tx_select()
    ch.basic_publish("", "txm", b"routable", mandatory=True)
    ch.basic_publish("", "no-such-queue", b"lost", mandatory=True)
    assert returned == []
    ch.tx_commit()
    from gwtest.amqp import pump

    pump(conn, lambda: returned)
    assert returned == [("no-such-queue", b"lost")]
    assert count(ch, "txm") == 1


def test_tx_reject_applies_at_commit_and_rollback_undoes_it(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("txr")
    ch.basic_publish("", "txr", b"r")
    ch.tx_select()
    m = ch.basic_get("txr")[0]
    ch.basic_reject(m.delivery_tag, requeue=True)
    ch.tx_rollback()
    # Still ours, unacknowledged: nothing is back in the queue.
    assert count(ch, "txr") == 0
    ch.basic_reject(m.delivery_tag, requeue=True)
    assert count(ch, "txr") == 0  # staged until commit
    ch.tx_commit()
    m2, _, body = ch.basic_get("txr")
    assert body == b"r" and m2.redelivered
    ch.basic_ack(m2.delivery_tag)
    ch.tx_commit()
    assert count(ch, "txr") == 0


@pytest.mark.parametrize("policy", ["fail", "block"])
def test_confirm_nack_when_a_destination_policy_refuses(make_gateway, policy):
    """Besides x-overflow, the broker's own limits nack a confirmed publish: a `fail` policy at
    once, a `block` policy once `send_timeout_ms` runs out; the channel stays open and a publish
    that fits again is acked."""
    from gwtest.amqp import pika_connection

    extra = f'[[broker.destinations]]\npattern = "narrow"\nmax_messages = 1\nflow_control = "{policy}"\n'
    overrides = {"broker": {"send_timeout_ms": 300}} if policy == "block" else None
    gw = make_gateway(overrides, extra_toml=extra)
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("narrow")
    ch.basic_publish("", "narrow", b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", "narrow", b"refused")
    method, _, body = ch.basic_get("narrow", auto_ack=True)
    assert body == b"fits"
    ch.basic_publish("", "narrow", b"fits again")  # acked: no exception
    assert ch.basic_get("narrow", auto_ack=True)[2] == b"fits again"
    conn.close()
