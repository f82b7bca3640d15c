"""Redelivery and dead-lettering.

ActiveMQ 5.17 (checked) has no broker-side redelivery limit for STOMP consumers: a message whose
consumer goes away unacked is redelivered for ever (the "6 then DLQ" rule is the OpenWire JMS
client's RedeliveryPolicy). The fixture's base config therefore sets broker.max_redeliveries = -1;
the gateway's own limit is tested with an explicit override (skipped against ActiveMQ).
"""


def _bound(client, gw):
    return lambda **kw: client(gw, **kw)


def _deliver_and_drop(client, dest):
    c = client()
    c.subscribe(dest, ack="client-individual")
    m = c.get()
    c.disconnect()  # without ACK: the message goes back for redelivery
    return m


def test_unacked_message_is_redelivered_without_limit(client):
    client().send("/queue/endless", "again", headers={"persistent": "true"})
    seen = [_deliver_and_drop(client, "/queue/endless") for _ in range(10)]
    assert [m.body for m in seen] == ["again"] * 10
    assert seen[0].headers.get("redelivered", "false") == "false"
    assert all(m.headers.get("redelivered") == "true" for m in seen[1:])
    assert len({m.headers["message-id"] for m in seen}) == 1
    dlq = client()
    dlq.subscribe("/queue/ActiveMQ.DLQ")
    dlq.expect_no_message(0.5)
    c = client()
    c.subscribe("/queue/endless")
    assert c.get().body == "again"


def test_message_dead_lettered_after_max_redeliveries(make_gateway, client):
    # Our gateway's broker.max_redeliveries (no ActiveMQ equivalent for STOMP: skipped there).
    gw = make_gateway({"broker": {"max_redeliveries": 6}})
    client = _bound(client, gw)
    client().send("/queue/flaky", "poison pill", headers={"persistent": "true"})
    seen = [_deliver_and_drop(client, "/queue/flaky") for _ in range(7)]
    assert [m.body for m in seen] == ["poison pill"] * 7
    assert seen[0].headers.get("redelivered", "false") == "false"
    assert all(m.headers.get("redelivered") == "true" for m in seen[1:])
    # 1 delivery + 6 redeliveries used up: the 7th rollback dead-letters it.
    c = client()
    c.subscribe("/queue/flaky")
    c.expect_no_message(0.5)
    dlq = client()
    dlq.subscribe("/queue/ActiveMQ.DLQ")
    d = dlq.get()
    assert d.body == "poison pill"


def test_per_destination_redelivery_policy(make_gateway, client):
    gw = make_gateway(
        extra_toml="""
[[broker.destinations]]
pattern = "retry.twice"
max_redeliveries = 2
dead_letter_queue = "retry.dead"
"""
    )
    client(gw).send("/queue/retry.twice", "x", headers={"persistent": "true"})
    for _ in range(3):
        c = client(gw)
        c.subscribe("/queue/retry.twice", ack="client-individual")
        c.get()
        c.disconnect()
    dead = client(gw)
    dead.subscribe("/queue/retry.dead")
    assert dead.get().body == "x"
    nothing = client(gw)
    nothing.subscribe("/queue/ActiveMQ.DLQ")
    nothing.expect_no_message(0.3)


def test_dlq_messages_can_be_consumed_and_acked(client):
    p = client()
    p.send("/queue/todlq", "dead", headers={"persistent": "true"})
    c = client()
    c.subscribe("/queue/todlq", ack="client-individual")
    c.nack(c.get())
    dlq = client()
    dlq.subscribe("/queue/ActiveMQ.DLQ", ack="client-individual")
    d = dlq.get()
    dlq.ack(d)
    dlq.disconnect()
    again = client()
    again.subscribe("/queue/ActiveMQ.DLQ")
    again.expect_no_message(0.5)
