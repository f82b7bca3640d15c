"""Exchanges: amq.direct, amq.fanout, amq.topic (`*` / `#`), amq.headers (x-match all / any),
declare / delete / passive, queue.bind / unbind, exchange-to-exchange bindings, mandatory ->
basic.return."""

from __future__ import annotations

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


def queues(ch, *names):
    for n in names:
        ch.queue_declare(n)
        ch.queue_purge(n)


def test_direct_exchange_routes_by_key(amqp):
    ch = amqp().channel()
    queues(ch, "d1", "d2")
    ch.queue_bind("d1", "amq.direct", "red")
    ch.queue_bind("d2", "amq.direct", "blue")
    ch.queue_bind("d2", "amq.direct", "red")
    ch.basic_publish("amq.direct", "red", b"r")
    ch.basic_publish("amq.direct", "blue", b"b")
    ch.basic_publish("amq.direct", "green", b"g")
    assert bodies(ch, "d1") == [b"r"]
    assert bodies(ch, "d2") == [b"r", b"b"]
    ch.queue_unbind("d2", "amq.direct", "red")
    ch.basic_publish("amq.direct", "red", b"r2")
    assert bodies(ch, "d2") == []
    assert bodies(ch, "d1") == [b"r2"]


def test_fanout_exchange_copies_to_every_queue(amqp):
    ch = amqp().channel()
    queues(ch, "f1", "f2")
    ch.queue_bind("f1", "amq.fanout")
    ch.queue_bind("f2", "amq.fanout", "ignored")
    ch.basic_publish("amq.fanout", "any", b"x")
    assert bodies(ch, "f1") == [b"x"] and bodies(ch, "f2") == [b"x"]


@pytest.mark.parametrize(
    "pattern, key, matches",
    [
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#.c", "a.b.c", True),
        ("a.#.c", "a.x.y.c", True),
        ("a.#.c", "a.x.y.d", False),
        ("*.b.*", "x.b.y", True),
        ("#", "anything.at.all", True),
    ],
)
def test_topic_exchange_patterns(amqp, pattern, key, matches):
    ch = amqp().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", pattern)
    ch.basic_publish("amq.topic", key, b"m")
    assert bodies(ch, q) == ([b"m"] if matches else [])


def test_headers_exchange_all_and_any(amqp):
    ch = amqp().channel()
    queues(ch, "hall", "hany")
    ch.queue_bind("hall", "amq.headers", arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind("hany", "amq.headers", arguments={"x-match": "any", "format": "pdf", "type": "report"})
    both = pika.BasicProperties(headers={"format": "pdf", "type": "report"})
    one = pika.BasicProperties(headers={"format": "pdf", "type": "log"})
    none = pika.BasicProperties(headers={"format": "zip"})
    ch.basic_publish("amq.headers", "", b"both", both)
    ch.basic_publish("amq.headers", "", b"one", one)
    ch.basic_publish("amq.headers", "", b"none", none)
    assert bodies(ch, "hall") == [b"both"]
    assert bodies(ch, "hany") == [b"both", b"one"]


def test_declare_passive_delete_and_equivalence(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.exchange_declare("logs", "fanout", durable=True)
    ch.exchange_declare("logs", "fanout", durable=True)  # same again is fine
    ch.exchange_declare("logs", passive=True)
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("logs", "direct", durable=True)
    assert err.value.reply_code == 406
    ch = conn.channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("nope", passive=True)
    assert err.value.reply_code == 404
    ch = conn.channel()
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("amq.custom", "direct")
    assert err.value.reply_code == 403
    ch = conn.channel()
    ch.queue_declare("lq")
    ch.queue_bind("lq", "logs")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_delete("logs", if_unused=True)
    assert err.value.reply_code == 406
    ch = conn.channel()
    ch.exchange_delete("logs")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("logs", passive=True)
    assert err.value.reply_code == 404


def test_unknown_exchange_type_is_a_connection_error(amqp):
    conn = amqp()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        conn.channel().exchange_declare("weird", "x-unknown")
    assert err.value.reply_code == 503


def test_publish_to_missing_exchange_closes_the_channel_404(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.basic_publish("no-such-exchange", "k", b"x")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("after")
    assert err.value.reply_code == 404


def test_bind_to_missing_queue_or_exchange_is_404(amqp):
    conn = amqp()
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_bind("no-queue", "amq.direct", "k")
    assert err.value.reply_code == 404
    ch = conn.channel()
    ch.queue_declare("bq")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_bind("bq", "no-exchange", "k")
    assert err.value.reply_code == 404
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_bind("bq", "", "k")
    assert err.value.reply_code == 403


def test_exchange_to_exchange_bindings(amqp):
    ch = amqp().channel()
    ch.exchange_declare("upstream", "topic")
    ch.exchange_declare("downstream", "fanout")
    queues(ch, "e2e")
    ch.exchange_bind("downstream", "upstream", "orders.#")
    ch.queue_bind("e2e", "downstream")
    ch.basic_publish("upstream", "orders.eu.new", b"yes")
    ch.basic_publish("upstream", "invoices.eu", b"no")
    assert bodies(ch, "e2e") == [b"yes"]
    ch.exchange_unbind("downstream", "upstream", "orders.#")
    ch.basic_publish("upstream", "orders.eu.new", b"gone")
    assert bodies(ch, "e2e") == []


def test_mandatory_unroutable_is_returned(amqp):
    conn = amqp()
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, method, props, body: returned.append((method, props, body)))
    ch.basic_publish("amq.direct", "nobody", b"lost", pika.BasicProperties(message_id="m1"), mandatory=True)
    ch.basic_publish("amq.direct", "nobody", b"silent")  # not mandatory: dropped quietly
    from gwtest.amqp import pump

    pump(conn, lambda: returned, settle=0.3)
    assert len(returned) == 1
    method, props, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key, body) == ("amq.direct", "nobody", b"lost")
    assert props.message_id == "m1"


def test_mandatory_with_confirms_returns_then_acks(amqp):
    ch = amqp().channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", "no-such-queue", b"x", mandatory=True)
    ch.queue_declare("routable")
    ch.basic_publish("", "routable", b"y", mandatory=True)


def test_internal_exchange_refuses_direct_publish(amqp):
    conn = amqp()
    ch = conn.channel()
    ch.exchange_declare("inner", "fanout", internal=True)
    ch.basic_publish("inner", "", b"x")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("x")
    assert err.value.reply_code == 403


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_durable_exchanges_and_bindings_survive_a_restart(make_gateway, stop):
    from gwtest.amqp import pika_connection

    gw = make_gateway()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.exchange_declare("orders", "topic", durable=True)
    ch.exchange_declare("audit", "fanout", durable=True)
    ch.exchange_declare("scratch", "fanout", durable=False)
    ch.queue_declare("eu-orders", durable=True)
    ch.queue_declare("audit-log", durable=True)
    ch.queue_bind("eu-orders", "orders", "eu.#")
    ch.exchange_bind("audit", "orders", "#")
    ch.queue_bind("audit-log", "audit")
    ch.queue_bind("eu-orders", "amq.headers", arguments={"x-match": "any", "region": "eu"})
    if stop == "kill":
        gw.kill()
    else:
        conn.close()
        gw.terminate()
    gw.start()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.basic_publish("orders", "eu.new", b"order-1")
    ch.basic_publish("amq.headers", "", b"by-header", pika.BasicProperties(headers={"region": "eu"}))
    assert bodies(ch, "eu-orders") == [b"order-1", b"by-header"]
    assert bodies(ch, "audit-log") == [b"order-1"]
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("scratch", passive=True)
    assert err.value.reply_code == 404
    conn.close()


def test_direct_reply_to_rpc(amqp):
    from gwtest.amqp import pump

    client = amqp()
    cch = client.channel()
    cch.queue_declare("rpc")
    replies = []
    cch.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append((p, b)), auto_ack=True)
    cch.basic_publish("", "rpc", b"ping",
                      pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="c1"))
    server = amqp().channel()
    method, props, body = None, None, None
    for _ in range(100):
        method, props, body = server.basic_get("rpc", auto_ack=True)
        if method:
            break
        client.process_data_events(time_limit=0.05)
    assert body == b"ping"
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    server.basic_publish("", props.reply_to, b"pong", pika.BasicProperties(correlation_id=props.correlation_id))
    pump(client, lambda: replies)
    assert replies[0][1] == b"pong" and replies[0][0].correlation_id == "c1"


def test_direct_reply_to_needs_its_consumer(amqp):
    ch = amqp().channel()
    ch.basic_publish("", "anything", b"x", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("after")
    assert err.value.reply_code == 406


def test_immediate_flag_is_not_implemented(raw_amqp):
    import struct

    from gwtest.amqp import method_frame, shortstr

    peer = raw_amqp()
    peer.handshake()
    peer.expect_open_ok()
    peer.open_channel(1)
    peer.send(method_frame(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("q") + b"\x02"))
    code, text, _, _ = peer.expect_connection_close()
    assert code == 540 and "immediate" in text


def test_alternate_exchange_takes_unroutable_messages(make_gateway):
    from gwtest.amqp import pika_connection

    gw = make_gateway()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.exchange_declare("unrouted", "fanout", durable=True)
    ch.exchange_declare("main", "direct", durable=True, arguments={"alternate-exchange": "unrouted"})
    ch.queue_declare("routed-q", durable=True)
    ch.queue_declare("unrouted-q", durable=True)
    ch.queue_bind("routed-q", "main", "known")
    ch.queue_bind("unrouted-q", "unrouted")
    ch.basic_publish("main", "known", b"a")
    ch.basic_publish("main", "unknown", b"b")
    assert bodies(ch, "routed-q") == [b"a"]
    assert bodies(ch, "unrouted-q") == [b"b"]
    # The alternate survives a restart with the durable exchange.
    conn.close()
    gw.terminate()
    gw.start()
    conn = pika_connection(gw)
    ch = conn.channel()
    ch.basic_publish("main", "unknown", b"c")
    assert bodies(ch, "unrouted-q") == [b"c"]
    conn.close()


def test_auto_delete_exchange_goes_with_its_last_binding(amqp):
    """RabbitMQ: an auto-delete exchange is deleted when its last binding is removed (by
    unbind, or by deleting the bound queue); one never bound stays."""
    conn = amqp()
    ch = conn.channel()
    ch.exchange_declare("ephemeral", "direct", auto_delete=True)
    ch.exchange_declare("ephemeral", passive=True)  # no binding yet: still there
    ch.queue_declare("ad1")
    ch.queue_declare("ad2")
    ch.queue_bind("ad1", "ephemeral", "k")
    ch.queue_bind("ad2", "ephemeral", "k")
    ch.basic_publish("ephemeral", "k", b"m")
    assert bodies(ch, "ad1") == [b"m"] and bodies(ch, "ad2") == [b"m"]
    ch.queue_unbind("ad1", "ephemeral", "k")
    ch.exchange_declare("ephemeral", passive=True)  # one binding left
    ch.queue_delete("ad2")
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.exchange_declare("ephemeral", passive=True)
    assert err.value.reply_code == 404
