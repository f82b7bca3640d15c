"""Publish/subscribe: /topic/ fan-out, wildcards, durable subscriptions (reference: ActiveMQ 5.17)."""

from gwtest.client import collect


def test_topic_fans_out_to_every_subscriber(client):
    a, b = client(), client()
    sa = a.subscribe("/topic/news")
    sb = b.subscribe("/topic/news")
    p = client()
    p.send("/topic/news", "extra!")
    ma, mb = a.get(), b.get()
    assert ma.body == mb.body == "extra!"
    assert ma.headers["destination"] == mb.headers["destination"] == "/topic/news"
    assert ma.headers["subscription"] == sa
    assert mb.headers["subscription"] == sb
    assert ma.headers["message-id"] == mb.headers["message-id"]


def test_topic_keeps_nothing_for_later_subscribers(client):
    p = client()
    p.send("/topic/ephemeral", "nobody listens")
    c = client()
    c.subscribe("/topic/ephemeral")
    c.expect_no_message(0.5)
    p.send("/topic/ephemeral", "now someone does")
    assert c.get().body == "now someone does"


def test_two_subscriptions_on_one_connection_each_get_a_copy(client):
    c = client()
    s1 = c.subscribe("/topic/twice")
    s2 = c.subscribe("/topic/twice")
    client().send("/topic/twice", "copy")
    m = c.get_n(2)
    assert {f.headers["subscription"] for f in m} == {s1, s2}
    assert all(f.body == "copy" for f in m)


def test_wildcard_subscriptions(client):
    one_level = client()
    any_depth = client()
    one_level.subscribe("/topic/a.*")
    any_depth.subscribe("/topic/a.>")
    p = client()
    p.send("/topic/a.b", "ab")
    p.send("/topic/a.b.c", "abc")
    p.send("/topic/x.b", "xb")
    p.send("/topic/a", "a")
    m = one_level.get()
    assert m.body == "ab"
    # ActiveMQ puts the concrete destination in `destination`, not the pattern.
    assert m.headers["destination"] == "/topic/a.b"
    one_level.expect_no_message(0.3)
    # ActiveMQ 5.17 (checked): `a.>` also matches `a` itself (">" is zero or more elements).
    got = any_depth.get_n(3)
    assert [(f.body, f.headers["destination"]) for f in got] == [
        ("ab", "/topic/a.b"),
        ("abc", "/topic/a.b.c"),
        ("a", "/topic/a"),
    ]
    any_depth.expect_no_message(0.3)


def test_queue_wildcard_subscription(client):
    c = client()
    c.subscribe("/queue/orders.*")
    p = client()
    p.send("/queue/orders.eu", "eu")
    p.send("/queue/orders.us", "us")
    p.send("/queue/other.eu", "no")
    got = sorted((f.body, f.headers["destination"]) for f in c.get_n(2))
    assert got == [("eu", "/queue/orders.eu"), ("us", "/queue/orders.us")]
    c.expect_no_message(0.3)


def test_durable_subscription_gets_messages_sent_while_away(client):
    sub_headers = {"activemq.subscriptionName": "audit"}
    first = client(connect_headers={"client-id": "durable-client-1"})
    first.subscribe("/topic/events", id="d1", headers=sub_headers)
    p = client()
    p.send("/topic/events", "while connected", headers={"persistent": "true"})
    assert first.get().body == "while connected"
    first.disconnect()

    for i in range(3):
        p.send("/topic/events", f"offline {i}", headers={"persistent": "true"})

    # A plain (non-durable) subscriber that joins now sees none of those.
    plain = client()
    plain.subscribe("/topic/events")

    back = client(connect_headers={"client-id": "durable-client-1"})
    back.subscribe("/topic/events", id="d1", headers=sub_headers)
    got = [m.body for m in back.get_n(3)]
    assert got == ["offline 0", "offline 1", "offline 2"]
    back.expect_no_message(0.3)
    plain.expect_no_message(0.1)


def test_durable_subscription_removed_by_unsubscribe(client):
    sub_headers = {"activemq.subscriptionName": "temp-audit"}
    c = client(connect_headers={"client-id": "durable-client-2"})
    c.subscribe("/topic/removable", id="d2", headers=sub_headers)
    # ActiveMQ 5.17 (checked): UNSUBSCRIBE carrying activemq.subscriptionName destroys the
    # durable subscription only when it is inactive; while its consumer is open the answer is
    # ERROR `message:Durable consumer is in use` (with receipt-id; the connection stays open).
    # A plain UNSUBSCRIBE first deactivates it, then the named one removes it.
    rid = "unsub-active"
    c.conn.unsubscribe("d2", headers={**sub_headers, "receipt": rid})
    err = c.expect_error()
    assert err.headers.get("receipt-id") == rid, err.headers
    assert "in use" in err.headers.get("message", ""), err.headers
    c.listener.errors.clear()
    c.unsubscribe("d2")
    c.unsubscribe("d2", headers=sub_headers)
    c.disconnect()
    client().send("/topic/removable", "after removal", headers={"persistent": "true"})
    back = client(connect_headers={"client-id": "durable-client-2"})
    back.subscribe("/topic/removable", id="d2", headers=sub_headers)
    back.expect_no_message(0.5)


def test_durable_subscription_removed_while_offline(client):
    # The usual ActiveMQ way: reconnect with the client-id and UNSUBSCRIBE by name, no SUBSCRIBE.
    sub_headers = {"activemq.subscriptionName": "offline-audit"}
    c = client(connect_headers={"client-id": "durable-client-3"})
    c.subscribe("/topic/removable3", id="d3", headers=sub_headers)
    c.disconnect()
    c = client(connect_headers={"client-id": "durable-client-3"})
    c.unsubscribe("d3", headers=sub_headers)
    c.disconnect()
    client().send("/topic/removable3", "after removal", headers={"persistent": "true"})
    back = client(connect_headers={"client-id": "durable-client-3"})
    back.subscribe("/topic/removable3", id="d3", headers=sub_headers)
    back.expect_no_message(0.5)


def test_two_durable_subscribers_are_independent(client):
    a = client(connect_headers={"client-id": "dur-a"})
    b = client(connect_headers={"client-id": "dur-b"})
    a.subscribe("/topic/multi", headers={"activemq.subscriptionName": "s"})
    b.subscribe("/topic/multi", headers={"activemq.subscriptionName": "s"})
    a.disconnect()
    client().send("/topic/multi", "m", headers={"persistent": "true"})
    assert b.get().body == "m"
    a2 = client(connect_headers={"client-id": "dur-a"})
    a2.subscribe("/topic/multi", headers={"activemq.subscriptionName": "s"})
    assert a2.get().body == "m"


def test_topic_fan_out_many_messages_in_order(client):
    subs = [client() for _ in range(3)]
    for s in subs:
        s.subscribe("/topic/bulk")
    p = client()
    for i in range(50):
        p.send("/topic/bulk", str(i), receipt=(i == 49))
    per_client = [[m.body for m in s.get_n(50)] for s in subs]
    for got in per_client:
        assert got == [str(i) for i in range(50)]
    assert collect(subs, 0) == [[], [], []]
