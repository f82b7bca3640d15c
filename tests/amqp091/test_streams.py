"""Stream queues (`x-queue-type: stream`), as RabbitMQ streams: the queue is a stream of the
partitioned log, consumers (manual ack, a prefetch) read from their `x-stream-offset` and get
it on each delivery, acknowledging removes nothing; the same stream is readable and writable
with Kafka clients (kafka-python, kcat) on the Kafka port."""

from __future__ import annotations

import datetime
import subprocess
import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from gwtest.amqp import pika_connection, pump
from gwtest.kafka import KCAT, wait_for_port

STREAM = {"x-queue-type": "stream"}


def declare_stream(ch, name: str):
    ch.queue_declare(name, durable=True, arguments=STREAM)


def publish(ch, queue: str, bodies, **props):
    for body in bodies:
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **props))


def consume(conn, queue: str, offset=None, *, count: int, prefetch: int = 100, ack=True,
            settle: float = 0.3):
    """Starts a stream consumer and pumps until `count` deliveries arrived (and `settle` more
    seconds): returns (channel, [(x-stream-offset, body, method, properties)])."""
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    got = []

    def on(channel, method, props, body):
        got.append(((props.headers or {}).get("x-stream-offset"), body, method, props))
        if ack:
            channel.basic_ack(method.delivery_tag)

    args = {} if offset is None else {"x-stream-offset": offset}
    ch.basic_consume(queue, on, arguments=args)
    pump(conn, lambda: len(got) >= count, timeout=10, settle=settle)
    return ch, got


def wait_in_stream(conn, queue: str, n: int):
    """Waits until the stream holds `n` records (what publishes route is moved into the log
    asynchronously): a `first` consumer sees them."""
    deadline = time.monotonic() + 10
    while True:
        ch, got = consume(conn, queue, "first", count=0, settle=0.2)
        ch.close()
        if len(got) >= n:
            return
        assert time.monotonic() < deadline, f"stream {queue} holds {len(got)} of {n}"


@pytest.fixture
def conn(gateway):
    c = pika_connection(gateway)
    yield c
    if c.is_open:
        c.close()


def test_consumers_start_at_their_offset_and_acks_remove_nothing(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    declare_stream(ch, "events.s")
    publish(ch, "events.s", [f"e{i}".encode() for i in range(5)], headers={"kind": "test"})
    wait_in_stream(conn, "events.s", 5)
    _, got = consume(conn, "events.s", "first", count=5)
    assert [(o, b) for o, b, _, _ in got] == [(i, f"e{i}".encode()) for i in range(5)]
    method, props = got[0][2], got[0][3]
    assert (method.exchange, method.routing_key, method.redelivered) == ("", "events.s", False)
    assert props.headers["kind"] == "test" and props.delivery_mode == 2
    _, got = consume(conn, "events.s", 3, count=2)
    assert [o for o, *_ in got] == [3, 4]
    _, got = consume(conn, "events.s", "last", count=1)
    assert [o for o, *_ in got] == [4]
    # `next` (also the default) waits for what comes after it started.
    nxt, got_next = consume(conn, "events.s", "next", count=0, settle=0.3)
    _, got_default = consume(conn, "events.s", None, count=0, settle=0.1)
    assert got_next == [] and got_default == []
    publish(ch, "events.s", [b"e5"])
    pump(conn, lambda: len(got_next) == 1 and len(got_default) == 1, timeout=10)
    assert got_next[0][:2] == (5, b"e5") and got_default[0][:2] == (5, b"e5")
    # Everything acknowledged above is still there.
    _, got = consume(conn, "events.s", "first", count=6)
    assert [o for o, *_ in got] == list(range(6))


def test_timestamp_offset(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    declare_stream(ch, "stamped.s")
    publish(ch, "stamped.s", [b"old1", b"old2"])
    wait_in_stream(conn, "stamped.s", 2)
    time.sleep(1.1)
    since = datetime.datetime.fromtimestamp(int(time.time()), tz=datetime.timezone.utc)
    publish(ch, "stamped.s", [b"new1", b"new2"])
    _, got = consume(conn, "stamped.s", since, count=2)
    assert [b for _, b, *_ in got] == [b"new1", b"new2"]


def test_prefetch_bounds_unacknowledged_deliveries(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    declare_stream(ch, "bounded.s")
    publish(ch, "bounded.s", [b"%d" % i for i in range(5)])
    wait_in_stream(conn, "bounded.s", 5)
    cch, got = consume(conn, "bounded.s", "first", count=2, prefetch=2, ack=False, settle=0.5)
    assert [o for o, *_ in got] == [0, 1]
    cch.basic_ack(got[0][2].delivery_tag)
    pump(conn, lambda: len(got) >= 3, timeout=5, settle=0.3)
    assert [o for o, *_ in got] == [0, 1, 2]
    # nack (requeue or not) does not requeue a stream delivery; it gives credit back too.
    cch.basic_nack(got[1][2].delivery_tag, requeue=True)
    cch.basic_reject(got[2][2].delivery_tag, requeue=False)
    pump(conn, lambda: len(got) >= 5, timeout=5, settle=0.3)
    assert [o for o, *_ in got] == [0, 1, 2, 3, 4]
    cch.basic_ack(0, multiple=True)
    assert cch.is_open


def test_stream_rules_as_rabbitmq(gateway, conn):
    ch = conn.channel()
    declare_stream(ch, "rules.s")
    for kwargs, text in [({"durable": False}, "non-durable"), ({"exclusive": True}, "exclusive"),
                         ({"auto_delete": True}, "auto-delete")]:
        with pytest.raises(ChannelClosedByBroker) as err:
            conn.channel().queue_declare("other.s", **{"durable": True, **kwargs}, arguments=STREAM)
        assert err.value.reply_code == 406 and text in err.value.reply_text
    with pytest.raises(ChannelClosedByBroker) as err:  # no basic.qos
        conn.channel().basic_consume("rules.s", lambda *a: None)
    assert err.value.reply_code == 406 and "prefetch count is not set" in err.value.reply_text
    nack = conn.channel()
    nack.basic_qos(prefetch_count=5)
    with pytest.raises(ChannelClosedByBroker) as err:
        nack.basic_consume("rules.s", lambda *a: None, auto_ack=True)
    assert err.value.reply_code == 406 and "automatic acknowledgement" in err.value.reply_text
    bad = conn.channel()
    bad.basic_qos(prefetch_count=5)
    with pytest.raises(ChannelClosedByBroker) as err:
        bad.basic_consume("rules.s", lambda *a: None, arguments={"x-stream-offset": "sometime"})
    assert err.value.reply_code == 406
    # Redeclared as another type: inequivalent.
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("rules.s", durable=True, arguments={"x-queue-type": "classic"})
    assert err.value.reply_code == 406
    # basic.get is not for streams (RabbitMQ: 540 NOT_IMPLEMENTED, a connection error).
    with pytest.raises(ConnectionClosedByBroker) as err:
        conn.channel().basic_get("rules.s")
    assert err.value.reply_code == 540


def test_deleting_a_stream_queue_cancels_its_consumers(gateway, conn):
    ch = conn.channel()
    declare_stream(ch, "gone.s")
    cch, got = consume(conn, "gone.s", "first", count=0, settle=0.1)
    cancelled = []
    cch.add_on_cancel_callback(lambda frame: cancelled.append(frame))
    # A consumer on another connection is told too.
    other = pika_connection(gateway)
    och, _ = consume(other, "gone.s", "first", count=0, settle=0.1)
    other_cancelled = []
    och.add_on_cancel_callback(lambda frame: other_cancelled.append(frame))
    ch.queue_delete("gone.s")
    pump(conn, lambda: cancelled, timeout=5)
    pump(other, lambda: other_cancelled, timeout=5)
    other.close()
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("gone.s", passive=True)
    assert err.value.reply_code == 404


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_a_stream_survives_a_restart(make_gateway, stop):
    gw = make_gateway()
    c = pika_connection(gw)
    ch = c.channel()
    ch.confirm_delivery()
    declare_stream(ch, "kept.s")
    publish(ch, "kept.s", [b"a", b"b"])
    wait_in_stream(c, "kept.s", 2)
    if stop == "kill":
        gw.kill()
    else:
        c.close()
        gw.terminate()
    gw.start()
    c = pika_connection(gw)
    ch = c.channel()
    ch.confirm_delivery()
    declare_stream(ch, "kept.s")
    publish(ch, "kept.s", [b"c"])
    _, got = consume(c, "kept.s", "first", count=3)
    assert [(o, b) for o, b, *_ in got] == [(0, b"a"), (1, b"b"), (2, b"c")]
    c.close()


def test_kafka_clients_read_and_write_the_same_stream(gateway):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    wait_for_port(gateway.host, gateway.kafka_port)
    bootstrap = f"{gateway.host}:{gateway.kafka_port}"
    c = pika_connection(gateway)
    ch = c.channel()
    ch.confirm_delivery()
    declare_stream(ch, "shared.s")
    publish(ch, "shared.s", ["amqp \U0001F680".encode(), b"amqp-2"],
            content_type="text/plain", correlation_id="corr-1")
    wait_in_stream(c, "shared.s", 2)
    # AMQP -> Kafka: kafka-python sees the bodies as values, the properties as headers.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    consumer.assign([TopicPartition("shared.s", 0)])
    records = list(consumer)
    consumer.close()
    assert [r.value for r in records] == ["amqp \U0001F680".encode(), b"amqp-2"]
    assert [r.offset for r in records] == [0, 1]
    assert ("correlation-id", b"corr-1") in records[0].headers
    # Kafka -> AMQP: records produced by kafka-python reach a stream consumer.
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send("shared.s", key=b"k1", value=b"from kafka-python",
                  headers=[("origin", b"kafka")])
    producer.flush(10)
    producer.close()
    _, got = consume(c, "shared.s", 2, count=1)
    offset, body, method, props = got[0]
    assert (offset, body) == (2, b"from kafka-python")
    assert props.headers["origin"] == "kafka" and props.headers["kafka.key"] == "k1"
    if KCAT is None:
        pytest.fail("kcat not installed: run scripts/install-test-deps (apt-get install kcat)")
    # kcat reads what both wrote, and writes too.
    out = subprocess.run([KCAT, "-b", bootstrap, "-C", "-t", "shared.s", "-e", "-f", "%o %s\n"],
                         capture_output=True, timeout=30, check=True).stdout.decode()
    assert out.splitlines() == ["0 amqp \U0001F680", "1 amqp-2", "2 from kafka-python"]
    subprocess.run([KCAT, "-b", bootstrap, "-P", "-t", "shared.s", "-p", "0"],
                   input=b"from kcat\n", capture_output=True, timeout=30, check=True)
    _, got = consume(c, "shared.s", 3, count=1)
    assert got[0][:2] == (3, b"from kcat")
    c.close()


def test_stream_retention_arguments_and_interval_offsets(conn):
    """`x-max-age` / `x-max-length-bytes` are the stream's retention in the log (checked by
    a bad value is refused with 406); `x-stream-offset` also takes
    an interval back from now (`10m`), as RabbitMQ."""
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("aged.s", durable=True,
                     arguments={**STREAM, "x-max-age": "7D", "x-max-length-bytes": 10_000_000})
    publish(ch, "aged.s", [b"recent"])
    _, got = consume(conn, "aged.s", "10m", count=1)
    assert got[0][:2] == (0, b"recent")
    with pytest.raises(ChannelClosedByBroker) as err:
        conn.channel().queue_declare("badage.s", durable=True,
                                     arguments={**STREAM, "x-max-age": "a week"})
    assert err.value.reply_code == 406 and "x-max-age" in err.value.reply_text


def test_exchange_bindings_and_stomp_sends_reach_a_stream(gateway, conn, client):
    """A stream queue is a queue of the shared model: bound to an exchange it takes what the
    exchange routes, and a STOMP send to `/queue/<name>` lands in the stream too."""
    ch = conn.channel()
    ch.confirm_delivery()
    declare_stream(ch, "mixed.s")
    ch.queue_bind("mixed.s", "amq.topic", "audit.#")
    ch.basic_publish("amq.topic", "audit.login", b"via amq.topic")
    stomp = client(gateway)
    stomp.send("/queue/mixed.s", "via stomp", headers={"persistent": "true", "origin": "stomp"})
    _, got = consume(conn, "mixed.s", "first", count=2)
    by_body = {body: (method, props) for _, body, method, props in got}
    assert set(by_body) == {b"via amq.topic", b"via stomp"}
    method, _ = by_body[b"via amq.topic"]
    assert method.exchange == "amq.topic"
    _, props = by_body[b"via stomp"]
    assert props.headers["origin"] == "stomp"


def test_a_stream_kafka_made_with_partitions_is_read_in_all_of_them(gateway, conn):
    """A stream created by a Kafka client with 3 partitions, then declared as a stream queue:
    a consumer reads every partition (offsets are per partition); AMQP publishes spread over
    them and Kafka consumers of each partition see them."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    wait_for_port(gateway.host, gateway.kafka_port)
    bootstrap = f"{gateway.host}:{gateway.kafka_port}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("parts.s", 3, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for p in range(3):
        producer.send("parts.s", value=b"k%d" % p, partition=p)
    producer.flush(10)
    producer.close()
    ch = conn.channel()
    ch.confirm_delivery()
    declare_stream(ch, "parts.s")
    _, got = consume(conn, "parts.s", "first", count=3)
    assert sorted(b for _, b, *_ in got) == [b"k0", b"k1", b"k2"]
    assert [o for o, *_ in got] == [0, 0, 0]
    publish(ch, "parts.s", [b"a%d" % i for i in range(6)])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    consumer.assign([TopicPartition("parts.s", p) for p in range(3)])
    deadline = time.monotonic() + 10
    values = []
    while len(values) < 9 and time.monotonic() < deadline:
        values += [r.value for r in consumer]
    consumer.close()
    assert sorted(values) == sorted([b"k0", b"k1", b"k2"] + [b"a%d" % i for i in range(6)])
