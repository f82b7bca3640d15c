"""AMQP 0-9-1 authentication against the real gateway with pika: the same users and loopback rules
as STOMP and MQTT (docs/security.md); a refused login is `connection.close` 403 ACCESS_REFUSED,
as RabbitMQ answers it."""

from __future__ import annotations

import time

import pika
import pytest

from gwtest.amqp import pika_connection
from gwtest.security import security_toml

USERS = {"alice": ("s3cret", ["admins"])}


def connect(gw, user: str, password: str):
    return pika_connection(
        gw,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
    )


def test_loopback_default_admits_guest_and_any_name_but_not_a_wrong_guest_password(gateway):
    for user, password in [("guest", "guest"), ("someone", "anything")]:
        conn = connect(gateway, user, password)
        ch = conn.channel()
        ch.queue_declare("sec.default")
        conn.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
        connect(gateway, "guest", "wrong")


def test_configured_users_are_checked_and_others_refused(make_gateway):
    gw = make_gateway(extra_toml=security_toml(users=USERS))
    conn = connect(gw, "alice", "s3cret")
    ch = conn.channel()
    ch.queue_declare("sec.users")
    ch.basic_publish("", "sec.users", b"hello")
    method, _, body = ch.basic_get("sec.users", auto_ack=True)
    assert method is not None and body == b"hello"
    conn.close()
    for user, password in [("alice", "wrong"), ("mallory", "s3cret"), ("guest", "guest")]:
        with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
            connect(gw, user, password)
    # The refusals do not disturb anyone else.
    conn = connect(gw, "alice", "s3cret")
    assert conn.is_open
    conn.close()
    log = gw.log_path.read_text()
    assert "s3cret" not in log


def test_amqplain_with_py_amqp_against_configured_users(make_gateway):
    """AMQPLAIN (the mechanism py-amqp, and so Celery and kombu, pick by default) is checked
    against the configured argon2 hash like PLAIN: the good password logs in and round-trips, a
    wrong one or an unknown user gets 403 ACCESS_REFUSED."""
    try:
        import amqp
    except ImportError:
        pytest.fail("py-amqp not installed: run scripts/install-test-deps (tests/requirements.txt)")
    gw = make_gateway(extra_toml=security_toml(users=USERS))

    def login(user, password):
        conn = amqp.Connection(host=f"{gw.host}:{gw.amqp_port}", userid=user, password=password,
                               login_method="AMQPLAIN", connect_timeout=10)
        conn.connect()
        return conn

    conn = login("alice", "s3cret")
    try:
        # The server offered it and the client used it (py-amqp would fall back to nothing else).
        assert b"AMQPLAIN" in conn.mechanisms
        ch = conn.channel()
        ch.queue_declare("sec.amqplain")
        ch.basic_publish(amqp.Message(b"by amqplain"), routing_key="sec.amqplain")
        deadline = time.monotonic() + 5
        while (msg := ch.basic_get("sec.amqplain", no_ack=True)) is None:
            assert time.monotonic() < deadline, "nothing on sec.amqplain"
            time.sleep(0.05)
        assert msg.body == b"by amqplain"
    finally:
        conn.close()
    for user, password in [("alice", "wrong"), ("mallory", "s3cret")]:
        with pytest.raises(amqp.exceptions.AccessRefused) as refused:
            login(user, password)
        assert refused.value.reply_code == 403
        assert "ACCESS_REFUSED" in str(refused.value)
        assert "AMQPLAIN" in str(refused.value)
    assert "s3cret" not in gw.log_path.read_text()


# --- authorization --------------------------------------------------------------------------------

ROLES = {
    "admin": ("admin-pw", ["admins"]),
    "producer": ("producer-pw", ["producers"]),
    "consumer": ("consumer-pw", ["consumers"]),
}
ACL = [
    {"queue": "orders.>", "read": ["consumers", "admins"], "write": ["producers", "admins"],
     "admin": ["admins"]},
    {"topic": "prices.>", "read": ["consumers", "admins"], "write": ["producers", "admins"],
     "admin": ["admins"]},
    # The exchange `events` is checked as the topic of its name.
    {"topic": "events", "read": ["consumers", "admins"], "write": ["producers", "admins"],
     "admin": ["admins"]},
]


@pytest.fixture
def acl_gateway(make_gateway):
    gw = make_gateway(extra_toml=security_toml(users=ROLES, authorization=ACL))
    conn = connect(gw, "admin", "admin-pw")
    ch = conn.channel()
    ch.queue_declare("orders.eu", durable=True)
    ch.exchange_declare("events", "fanout")
    ch.queue_bind("orders.eu", "events")
    conn.close()
    return gw


def refused(fn, text: str):
    """Runs `fn`, which must close its channel with 403 ACCESS_REFUSED naming `text`."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        fn()
    assert info.value.reply_code == 403
    assert info.value.reply_text.startswith("ACCESS_REFUSED - "), info.value.reply_text
    assert text in info.value.reply_text, info.value.reply_text


def test_declare_and_delete_need_admin(acl_gateway):
    conn = connect(acl_gateway, "producer", "producer-pw")
    refused(lambda: conn.channel().queue_declare("orders.us"),
            "User producer is not authorized to create: queue://orders.us")
    refused(lambda: conn.channel().exchange_declare("prices.feed", "topic"),
            "User producer is not authorized to create: topic://prices.feed")
    refused(lambda: conn.channel().queue_delete("orders.eu"),
            "User producer is not authorized to create: queue://orders.eu")
    refused(lambda: conn.channel().exchange_delete("events"),
            "User producer is not authorized to create: topic://events")
    # A passive declare only looks: no right needed.
    assert conn.channel().queue_declare("orders.eu", passive=True).method.queue == "orders.eu"
    # The refusals closed their channels only.
    assert conn.is_open
    conn.close()
    admin = connect(acl_gateway, "admin", "admin-pw")
    ch = admin.channel()
    ch.queue_declare("orders.us")
    ch.exchange_declare("prices.feed", "topic")
    ch.exchange_delete("prices.feed")
    ch.queue_delete("orders.us")
    admin.close()


def test_publish_needs_write_and_consume_get_purge_need_read(acl_gateway):
    producer = connect(acl_gateway, "producer", "producer-pw")
    consumer = connect(acl_gateway, "consumer", "consumer-pw")
    pch = producer.channel()
    pch.confirm_delivery()
    pch.basic_publish("", "orders.eu", b"direct")
    pch.basic_publish("events", "", b"via exchange")
    refused(lambda: pch.basic_publish("", "invoices", b"x"),
            "User producer is not authorized to write to: queue://invoices")
    refused(lambda: producer.channel().basic_get("orders.eu"),
            "User producer is not authorized to read from: queue://orders.eu")
    refused(lambda: producer.channel().queue_purge("orders.eu"),
            "User producer is not authorized to read from: queue://orders.eu")

    def consume_as_producer():
        ch = producer.channel()
        ch.basic_consume("orders.eu", lambda *a: None)
        ch.start_consuming()

    refused(consume_as_producer, "User producer is not authorized to read from: queue://orders.eu")
    cch = consumer.channel()
    cch.confirm_delivery()
    refused(lambda: cch.basic_publish("events", "", b"x"),
            "User consumer is not authorized to write to: topic://events")
    cch = consumer.channel()
    bodies = []
    for _ in range(2):
        method, _, body = cch.basic_get("orders.eu", auto_ack=True)
        assert method is not None
        bodies.append(body)
    assert sorted(bodies) == [b"direct", b"via exchange"]
    producer.close()
    consumer.close()


def test_bind_needs_read_on_the_exchange_and_write_on_the_queue(acl_gateway):
    consumer = connect(acl_gateway, "consumer", "consumer-pw")
    # consumer may read topic events but not write queue orders.eu.
    refused(lambda: consumer.channel().queue_bind("orders.eu", "events", "k"),
            "User consumer is not authorized to write to: queue://orders.eu")
    # A server-named exclusive queue is the connection's own (like a temporary queue): declaring
    # and consuming it needs no entry; binding it to amq.topic needs read on the topic pattern.
    ch = consumer.channel()
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(queue, "amq.topic", "prices.*")
    refused(lambda: consumer.channel().queue_bind(queue, "amq.topic", "#"),
            "User consumer is not authorized to read from: topic://#")
    producer = connect(acl_gateway, "producer", "producer-pw")
    pch = producer.channel()
    pch.confirm_delivery()
    pch.basic_publish("amq.topic", "prices.eur", b"1.08")
    refused(lambda: pch.basic_publish("amq.topic", "rates.eur", b"x"),
            "User producer is not authorized to write to: topic://rates.eur")
    got = []
    for _ in range(50):
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            got.append(body)
            break
        consumer.sleep(0.05)
    assert got == [b"1.08"]
    producer.close()
    consumer.close()


def test_a_refusal_closes_only_its_channel(acl_gateway):
    conn = connect(acl_gateway, "producer", "producer-pw")
    kept = conn.channel()
    kept.confirm_delivery()
    doomed = conn.channel()
    refused(lambda: doomed.basic_get("orders.eu"), "not authorized to read from")
    assert doomed.is_closed and kept.is_open
    kept.basic_publish("", "orders.eu", b"still here")
    conn.close()
    admin = connect(acl_gateway, "admin", "admin-pw")
    method, _, body = admin.channel().basic_get("orders.eu", auto_ack=True)
    assert body == b"still here"
    admin.close()


def test_amqp_tools_get_the_same_refusals(acl_gateway):
    """Debian's amqp-tools (rabbitmq-c): a command outside the user's entries fails with the
    broker's 403, one inside them works."""
    import shutil
    import subprocess

    if shutil.which("amqp-get") is None:
        pytest.fail("amqp-tools not installed: run scripts/install-test-deps")

    def tool(user, password, *args):
        return subprocess.run(
            [args[0], "--server", acl_gateway.host, "--port", str(acl_gateway.amqp_port),
             "--username", user, "--password", password, *args[1:]],
            capture_output=True, timeout=15,
        )

    ok = tool("producer", "producer-pw", "amqp-publish", "--routing-key", "orders.eu",
              "--body", "from amqp-publish")
    assert ok.returncode == 0, ok.stderr
    refused = tool("producer", "producer-pw", "amqp-get", "--queue", "orders.eu")
    assert refused.returncode != 0
    assert b"ACCESS_REFUSED" in refused.stderr or b"403" in refused.stderr, refused.stderr
    refused = tool("consumer", "consumer-pw", "amqp-declare-queue", "--queue", "orders.new")
    assert refused.returncode != 0
    assert b"ACCESS_REFUSED" in refused.stderr or b"403" in refused.stderr, refused.stderr
    got = tool("consumer", "consumer-pw", "amqp-get", "--queue", "orders.eu")
    assert got.returncode == 0 and got.stdout == b"from amqp-publish", got.stderr


def test_a_refused_publish_in_a_transaction_closes_the_channel_and_nothing_is_committed(acl_gateway):
    conn = connect(acl_gateway, "producer", "producer-pw")
    ch = conn.channel()
    ch.tx_select()
    ch.basic_publish("", "orders.eu", b"staged")
    ch.basic_publish("", "invoices", b"refused")

    def commit():
        ch.tx_commit()

    refused(commit, "User producer is not authorized to write to: queue://invoices")
    assert conn.is_open
    conn.close()
    admin = connect(acl_gateway, "admin", "admin-pw")
    method, _, _ = admin.channel().basic_get("orders.eu", auto_ack=True)
    assert method is None  # the staged publish went with the channel
    admin.close()


def test_consumers_past_max_subscriptions_per_connection_close_only_their_channel(make_gateway):
    """`security.max_subscriptions_per_connection` counts basic.consume over all the channels of
    a connection: the consumer past it closes its channel with 530 NOT_ALLOWED, the connection
    and its consumers go on, and a cancelled consumer gives its place back."""
    import urllib.request

    gw = make_gateway(extra_toml="[security]\nmax_subscriptions_per_connection = 2\n")
    conn = connect(gw, "guest", "guest")
    first, second = conn.channel(), conn.channel()
    for ch, queue in ((first, "lim.a"), (second, "lim.b")):
        ch.queue_declare(queue)
    tag_a = first.basic_consume("lim.a", lambda *a: None, auto_ack=True)
    second.basic_consume("lim.b", lambda *a: None, auto_ack=True)
    third = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        third.basic_consume("lim.a", lambda *a: None, auto_ack=True)
    assert info.value.reply_code == 530
    assert info.value.reply_text == "NOT_ALLOWED - reached maximum (2) of consumers per connection"
    assert conn.is_open and first.is_open and second.is_open
    # A place given back can be taken again.
    got = []
    first.basic_cancel(tag_a)
    fourth = conn.channel()
    fourth.basic_consume("lim.a", lambda ch, m, p, body: got.append(body), auto_ack=True)
    fourth.basic_publish("", "lim.a", b"after the cancel")
    deadline = time.monotonic() + 5
    while b"after the cancel" not in got:
        assert time.monotonic() < deadline, got
        conn.process_data_events(time_limit=0.1)
    conn.close()
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    counted = [line for line in metrics.splitlines() if line.startswith("gateway_limit_refusals_total{")
               and 'protocol="amqp"' in line and 'limit="max_subscriptions"' in line]
    assert len(counted) == 1 and counted[0].endswith(" 1"), counted
