"""Point-to-point: /queue/ destinations, ack modes, redelivery, NACK (reference: ActiveMQ 5.17)."""

import pytest

from gwtest.client import collect


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_send_receive_auto_ack(client, version):
    producer = client(version=version)
    producer.send("/queue/auto", "hello")
    consumer = client(version=version)
    sub = consumer.subscribe("/queue/auto")
    m = consumer.get()
    assert m.body == "hello"
    assert m.headers["destination"] == "/queue/auto"
    assert m.headers.get("message-id")
    if version != "1.0":
        assert m.headers["subscription"] == sub
    # auto ack: consumed for good, nothing comes back after the consumer leaves.
    consumer.disconnect()
    again = client(version=version)
    again.subscribe("/queue/auto")
    again.expect_no_message(0.5)


def test_queue_messages_are_fifo_and_each_goes_to_one_consumer(client):
    p = client()
    a, b = client(), client()
    a.subscribe("/queue/share")
    b.subscribe("/queue/share")
    for i in range(20):
        p.send("/queue/share", f"m{i}", receipt=(i == 19))
    frames_a, frames_b = collect([a, b], 20)
    got_a = [m.body for m in frames_a]
    got_b = [m.body for m in frames_b]
    assert sorted(got_a + got_b, key=lambda s: int(s[1:])) == [f"m{i}" for i in range(20)]
    assert len(set(got_a) & set(got_b)) == 0
    # Each consumer sees its share in send order.
    assert got_a == sorted(got_a, key=lambda s: int(s[1:]))
    assert got_b == sorted(got_b, key=lambda s: int(s[1:]))
    a.expect_no_message(0.2)
    b.expect_no_message(0.2)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_client_ack_is_cumulative(client, version):
    p = client(version=version)
    for i in (1, 2, 3):
        p.send("/queue/cumulative", f"m{i}")
    c = client(version=version)
    c.subscribe("/queue/cumulative", ack="client")
    m1, m2, m3 = c.get_n(3)
    assert [m1.body, m2.body, m3.body] == ["m1", "m2", "m3"]
    c.ack(m2)  # acknowledges m1 and m2
    c.disconnect()
    c2 = client(version=version)
    c2.subscribe("/queue/cumulative", ack="client")
    m = c2.get()
    assert m.body == "m3"
    assert m.headers.get("redelivered") == "true"
    c2.ack(m)
    c2.expect_no_message(0.3)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_client_individual_ack(client, version):
    p = client(version=version)
    for i in (1, 2, 3):
        p.send("/queue/individual", f"m{i}")
    c = client(version=version)
    c.subscribe("/queue/individual", ack="client-individual")
    m1, m2, m3 = c.get_n(3)
    if version == "1.2":
        assert m2.headers.get("ack"), "1.2 MESSAGE for a client-individual subscription needs an ack header"
    c.ack(m2)  # only m2
    c.disconnect()
    c2 = client(version=version)
    c2.subscribe("/queue/individual", ack="client-individual")
    r1, r3 = c2.get_n(2)
    assert [r1.body, r3.body] == ["m1", "m3"]
    assert r1.headers.get("redelivered") == "true"
    assert r3.headers.get("redelivered") == "true"
    c2.expect_no_message(0.3)


def test_first_delivery_is_not_marked_redelivered(client):
    c = client()
    c.send("/queue/fresh", "x")
    c.subscribe("/queue/fresh", ack="client-individual")
    m = c.get()
    assert m.headers.get("redelivered", "false") == "false"


def test_unacked_redelivered_to_other_consumer_after_disconnect(client):
    p = client()
    p.send("/queue/unacked", "precious")
    a = client()
    a.subscribe("/queue/unacked", ack="client-individual")
    assert a.get().body == "precious"
    b = client()
    b.subscribe("/queue/unacked", ack="client-individual")
    b.expect_no_message(0.3)  # still held by a
    a.disconnect()
    m = b.get()
    assert m.body == "precious"
    assert m.headers.get("redelivered") == "true"


def test_unacked_redelivered_after_abrupt_close(client):
    p = client()
    p.send("/queue/crashy", "survive")
    a = client()
    a.subscribe("/queue/crashy", ack="client")
    a.get()
    a.close_abruptly()  # no DISCONNECT: a crashed client
    b = client()
    b.subscribe("/queue/crashy", ack="client")
    m = b.get()
    assert m.body == "survive"
    assert m.headers.get("redelivered") == "true"


def test_unsubscribe_returns_unacked_and_stops_delivery(client):
    p = client()
    p.send("/queue/unsub", "one")
    c = client()
    sub = c.subscribe("/queue/unsub", ack="client-individual")
    c.get()
    c.unsubscribe(sub)
    p.send("/queue/unsub", "two")
    c.expect_no_message(0.3)
    d = client()
    d.subscribe("/queue/unsub")
    assert [m.body for m in d.get_n(2)] == ["one", "two"]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_nack_sends_message_to_dlq(client, version):
    p = client(version=version)
    p.send("/queue/nacked", "poison", headers={"persistent": "true"})
    c = client(version=version)
    c.subscribe("/queue/nacked", ack="client-individual")
    m = c.get()
    c.nack(m)
    # ActiveMQ: a STOMP NACK is a poison ack, the message goes to the dead-letter queue.
    dlq = client(version=version)
    dlq.subscribe("/queue/ActiveMQ.DLQ")
    d = dlq.get()
    assert d.body == "poison"
    c.disconnect()
    again = client(version=version)
    again.subscribe("/queue/nacked")
    again.expect_no_message(0.5)
