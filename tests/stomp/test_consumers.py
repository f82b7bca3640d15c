"""Consumer options: selectors, prefetch, exclusive consumers, message groups (ActiveMQ 5.17)."""

from gwtest.client import collect


def test_selector_on_custom_header(client):
    p = client()
    for i, color in enumerate(["blue", "red", "green", "red"]):
        p.send("/queue/sel", f"{color}-{i}", headers={"color": color})
    reds = client()
    reds.subscribe("/queue/sel", headers={"selector": "color = 'red'"})
    assert [m.body for m in reds.get_n(2)] == ["red-1", "red-3"]
    reds.expect_no_message(0.3)
    # Messages the selector skipped stay on the queue for others.
    rest = client()
    rest.subscribe("/queue/sel")
    assert [m.body for m in rest.get_n(2)] == ["blue-0", "green-2"]


def test_selector_with_boolean_logic_and_in(client):
    p = client()
    p.send("/queue/sel2", "a", headers={"region": "eu", "kind": "order"})
    p.send("/queue/sel2", "b", headers={"region": "us", "kind": "order"})
    p.send("/queue/sel2", "c", headers={"region": "apac", "kind": "order"})
    p.send("/queue/sel2", "d", headers={"region": "eu", "kind": "refund"})
    c = client()
    c.subscribe("/queue/sel2", headers={"selector": "kind = 'order' AND region IN ('eu', 'us')"})
    assert [m.body for m in c.get_n(2)] == ["a", "b"]
    c.expect_no_message(0.3)


def test_selector_on_priority_header(client):
    # STOMP's priority header is the JMS priority, which selectors see as JMSPriority.
    p = client()
    for prio in (2, 8, 5, 9):
        p.send("/queue/sel3", f"p{prio}", headers={"priority": str(prio)})
    c = client()
    c.subscribe("/queue/sel3", headers={"selector": "JMSPriority > 5"})
    assert sorted(m.body for m in c.get_n(2)) == ["p8", "p9"]
    c.expect_no_message(0.3)


def test_selector_on_topic_subscription(client):
    c = client()
    c.subscribe("/topic/sel", headers={"selector": "level = 'error'"})
    p = client()
    p.send("/topic/sel", "info", headers={"level": "info"})
    p.send("/topic/sel", "boom", headers={"level": "error"})
    assert c.get().body == "boom"
    c.expect_no_message(0.3)


def test_bad_selector_gets_error_frame(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame(
        "SUBSCRIBE",
        {"destination": "/queue/badsel", "id": "s1", "selector": "color = = 'red' AND (", "receipt": "bad-sel"},
    )
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "bad-sel"
    assert f.headers.get("message")


def test_prefetch_one_with_client_ack(client):
    p = client()
    p.send("/queue/prefetch", "first")
    p.send("/queue/prefetch", "second")
    c = client()
    c.subscribe("/queue/prefetch", ack="client-individual", headers={"activemq.prefetchSize": "1"})
    m1 = c.get()
    assert m1.body == "first"
    c.expect_no_message(0.5)  # window full until the ack
    c.ack(m1)
    assert c.get().body == "second"


def test_prefetch_one_spreads_work_across_consumers(client):
    p = client()
    for i in range(4):
        p.send("/queue/prefetch2", f"job{i}")
    a, b = client(), client()
    a.subscribe("/queue/prefetch2", ack="client-individual", headers={"activemq.prefetchSize": "1"})
    b.subscribe("/queue/prefetch2", ack="client-individual", headers={"activemq.prefetchSize": "1"})
    got_a, got_b = collect([a, b], 2)
    assert len(got_a) == 1 and len(got_b) == 1
    a.expect_no_message(0.3)
    b.expect_no_message(0.0)


def test_exclusive_consumer(client):
    first, second = client(), client()
    first.subscribe("/queue/excl", headers={"activemq.exclusive": "true"})
    second.subscribe("/queue/excl", headers={"activemq.exclusive": "true"})
    p = client()
    for i in range(4):
        p.send("/queue/excl", f"m{i}")
    assert [m.body for m in first.get_n(4)] == ["m0", "m1", "m2", "m3"]
    second.expect_no_message(0.3)
    first.disconnect()
    for i in range(4, 6):
        p.send("/queue/excl", f"m{i}")
    assert [m.body for m in second.get_n(2)] == ["m4", "m5"]


def test_consumer_priority_serves_the_higher_one_while_it_has_room(client):
    low, high = client(), client()
    low.subscribe("/queue/prio", ack="client-individual")
    high.subscribe("/queue/prio", ack="client-individual",
                   headers={"activemq.priority": "9", "activemq.prefetchSize": "2"})
    p = client()
    for i in range(5):
        p.send("/queue/prio", f"m{i}")
    # The priority 9 consumer takes what its window allows, the rest overflows to the other.
    assert [m.body for m in high.get_n(2)] == ["m0", "m1"]
    assert [m.body for m in low.get_n(3)] == ["m2", "m3", "m4"]
    high.expect_no_message(0.3)


def test_prefetch_zero_still_delivers_one_at_a_time(client):
    # STOMP has no pull: a prefetch of 0 is taken as 1 rather than starving the subscription.
    p = client()
    p.send("/queue/prefetch0", "first")
    p.send("/queue/prefetch0", "second")
    c = client()
    c.subscribe("/queue/prefetch0", ack="client-individual", headers={"activemq.prefetchSize": "0"})
    m1 = c.get()
    assert m1.body == "first"
    c.expect_no_message(0.5)
    c.ack(m1)
    assert c.get().body == "second"


def test_message_groups_stick_to_one_consumer(client):
    a, b = client(), client()
    a.subscribe("/queue/groups")
    b.subscribe("/queue/groups")
    p = client()
    groups = ["g1", "g2", "g3", "g4"]
    for i in range(24):
        g = groups[i % len(groups)]
        p.send("/queue/groups", f"{g}:{i}", headers={"JMSXGroupID": g})
    got_a, got_b = collect([a, b], 24)
    owner = {}
    for name, frames in (("a", got_a), ("b", got_b)):
        for m in frames:
            g = m.body.split(":")[0]
            # (ActiveMQ 5.17 does not echo JMSXGroupID on MESSAGE frames; not asserted.)
            assert owner.setdefault(g, name) == name, f"group {g} delivered to both consumers"
    assert set(owner) == set(groups)
    # Within a group, order is preserved.
    for frames in (got_a, got_b):
        for g in groups:
            seq = [int(m.body.split(":")[1]) for m in frames if m.body.startswith(g + ":")]
            assert seq == sorted(seq)


def test_message_group_moves_when_owner_leaves(client):
    a = client()
    a.subscribe("/queue/groups2", ack="client-individual")
    p = client()
    p.send("/queue/groups2", "1", headers={"JMSXGroupID": "G"})
    assert a.get().body == "1"
    b = client()
    b.subscribe("/queue/groups2", ack="client-individual")
    p.send("/queue/groups2", "2", headers={"JMSXGroupID": "G"})
    assert a.get().body == "2"  # still a's group
    b.expect_no_message(0.2)
    a.disconnect()
    # Unacked 1 and 2 and the new 3 all go to b now.
    p.send("/queue/groups2", "3", headers={"JMSXGroupID": "G"})
    assert [m.body for m in b.get_n(3)] == ["1", "2", "3"]
