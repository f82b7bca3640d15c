"""Reply codes of channel-level (soft) errors: the channel closes with the code, the connection
and its other channels go on."""

from __future__ import annotations

import pytest
from pika.exceptions import ChannelClosedByBroker


def soft(conn, action):
    ch = conn.channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        action(ch)
    assert conn.is_open
    return err.value.reply_code, err.value.reply_text


def test_not_found_404(amqp):
    conn = amqp()
    assert soft(conn, lambda ch: ch.basic_consume("ghost", lambda *a: None))[0] == 404
    assert soft(conn, lambda ch: ch.queue_purge("ghost"))[0] == 404
    assert soft(conn, lambda ch: ch.basic_get("ghost"))[0] == 404
    assert soft(conn, lambda ch: ch.exchange_bind("ghost-x", "amq.direct", "k"))[0] == 404
    code, text = soft(conn, lambda ch: ch.queue_bind("ghost", "amq.topic", "k"))
    assert code == 404 and "no queue 'ghost' in vhost '/'" in text


def test_access_refused_403(amqp):
    conn = amqp()
    assert soft(conn, lambda ch: ch.exchange_delete("amq.direct"))[0] == 403
    assert soft(conn, lambda ch: ch.exchange_declare("amq.new", "direct"))[0] == 403
    conn.channel().queue_declare("q403")
    assert soft(conn, lambda ch: ch.queue_unbind("q403", "", "q403"))[0] == 403


def test_resource_locked_405(amqp):
    owner = amqp().channel()
    owner.queue_declare("locked", exclusive=True)
    other = amqp()
    for action in (
        lambda ch: ch.basic_consume("locked", lambda *a: None),
        lambda ch: ch.basic_get("locked"),
        lambda ch: ch.queue_purge("locked"),
        lambda ch: ch.queue_delete("locked"),
        lambda ch: ch.queue_bind("locked", "amq.fanout"),
        lambda ch: ch.queue_declare("locked"),
    ):
        assert soft(other, action)[0] == 405


def test_precondition_failed_406(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.queue_declare("q406")
    ch.basic_publish("", "q406", b"x")
    m = ch.basic_get("q406")[0]
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)  # twice: unknown the second time
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("q406", passive=True)
    assert err.value.reply_code == 406


def test_reused_consumer_tag_is_not_allowed_530(raw_amqp):
    import struct

    from gwtest.amqp import method_frame, shortstr, table

    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 50, 10, struct.pack(">H", 0) + shortstr("tags") + b"\x00" + table({})))
    assert peer.read_method()[1:3] == (50, 11)
    consume = method_frame(1, 60, 20, struct.pack(">H", 0) + shortstr("tags") + shortstr("same")
                           + b"\x00" + table({}))
    peer.send(consume)
    assert peer.read_method()[1:3] == (60, 21)
    peer.send(consume)
    code, _, cls, meth = peer.expect_connection_close()
    assert (code, cls, meth) == (530, 60, 20)
