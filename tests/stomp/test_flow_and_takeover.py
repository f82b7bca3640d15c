"""Flow control policies and client-id takeover, seen from STOMP clients."""

PERSISTENT = {"persistent": "true"}


def test_fail_policy_rejects_the_send_with_an_error_naming_the_receipt(make_gateway, raw):
    gw = make_gateway(
        extra_toml='[[broker.destinations]]\npattern = "tiny"\nmax_messages = 2\nflow_control = "fail"\n'
    )
    p = raw(gw)
    p.connect()
    for i in range(2):
        p.send_frame("SEND", {"destination": "/queue/tiny", "receipt": f"ok-{i}"}, f"m{i}")
        p.wait_receipt(f"ok-{i}")
    p.send_frame("SEND", {"destination": "/queue/tiny", "receipt": "over"}, "m2")
    frames = p.expect_closed()
    errors = [f for f in frames if f.command == "ERROR"]
    assert errors, frames
    assert errors[0].headers.get("receipt-id") == "over"
    assert "limit" in errors[0].headers.get("message", "")


def test_block_policy_holds_the_producer_until_a_consumer_makes_room(make_gateway, client, raw):
    gw = make_gateway(
        extra_toml='[[broker.destinations]]\npattern = "narrow"\nmax_messages = 1\nflow_control = "block"\n'
    )
    p = raw(gw)
    p.connect()
    p.send_frame("SEND", {"destination": "/queue/narrow", "receipt": "first"}, "1")
    p.wait_receipt("first")
    p.send_frame("SEND", {"destination": "/queue/narrow", "receipt": "second"}, "2")
    p.expect_no_frame(0.5)  # blocked: no receipt while the queue is full
    c = client(gw)
    c.subscribe("/queue/narrow")
    assert c.get().body == "1"
    p.wait_receipt("second")
    assert c.get().body == "2"


def test_drop_oldest_policy_keeps_the_newest_messages(make_gateway, client):
    gw = make_gateway(
        extra_toml='[[broker.destinations]]\npattern = "ring"\nmax_messages = 2\nflow_control = "drop-oldest"\n'
    )
    p = client(gw)
    for i in range(5):
        p.send("/queue/ring", f"m{i}")
    c = client(gw)
    c.subscribe("/queue/ring")
    assert [m.body for m in c.get_n(2)] == ["m3", "m4"]
    c.expect_no_message(0.3)


def test_same_client_id_is_refused_while_the_first_is_connected(gateway, client, raw):
    # ActiveMQ 5.17 (default transportConnector, allowLinkStealing=false), checked: the second
    # CONNECT gets ERROR `message:Broker: <name> - Client: plant-7 already connected from
    # tcp://...` and is closed; the first connection and its durable subscription carry on.
    old = raw(gateway)
    old.connect(headers={"client-id": "plant-7"})
    old.send_frame(
        "SUBSCRIBE",
        {"destination": "/topic/alarms", "id": "s", "activemq.subscriptionName": "alarms", "receipt": "sub"},
    )
    old.wait_receipt("sub")
    new = raw(gateway)
    f = new.connect(headers={"client-id": "plant-7"}, expect="ERROR")
    assert "already connected" in f.headers.get("message", ""), f
    new.expect_closed()
    client(gateway).send("/topic/alarms", "fire", headers=PERSISTENT)
    m = old.expect("MESSAGE")
    assert m.body == b"fire"
