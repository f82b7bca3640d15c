"""The admin JSON API against the real gateway; every effect is checked through real clients
(stomp.py, paho-mqtt) and, where it must last, across a restart."""

from __future__ import annotations

import json

from gwtest.mqtt import MqttClient


def test_unknown_paths_are_404(gateway, admin):
    a = admin(gateway)
    assert a.get("/api/nothing-here")[0] == 404
    assert a.get("/")[0] == 404


def test_list_and_inspect_queues(gateway, client, admin):
    a = admin(gateway)
    c = client()
    for i in range(4):
        c.send("/queue/api.list", f"b{i}", headers={"persistent": "true"})
    c.send("/queue/api.other", "x")
    status, body = a.get("/api/queues")
    assert status == 200
    by_name = {q["name"]: q for q in body["queues"]}
    assert set(by_name) >= {"api.list", "api.other"}
    q = by_name["api.list"]
    assert (q["kind"], q["ready"], q["unacked"], q["messages"], q["consumers"], q["enqueued"]) == (
        "queue", 4, 0, 4, 0, 4)
    assert q["bytes"] == 8 and q["durable"] is True
    assert a.queue("api.list") == q
    status, body = a.get("/api/queues/no.such.queue")
    assert status == 404 and "no.such.queue" in body["error"]


def test_browse_does_not_consume(gateway, client, admin):
    a = admin(gateway)
    c = client()
    c.send("/queue/api.browse", "first", headers={"persistent": "true", "color": "red"})
    c.send("/queue/api.browse", "second", headers={"priority": "7"})
    c.send("/queue/api.browse", "\u00e9t\u00e9 \U0001F600")
    status, body = a.get("/api/queues/api.browse/messages?limit=10")
    assert status == 200
    msgs = body["messages"]
    assert [m["body"] for m in msgs] == ["first", "second", "\u00e9t\u00e9 \U0001F600"]
    assert msgs[0]["persistent"] is True and msgs[1]["persistent"] is False
    assert msgs[0]["properties"]["color"] == "red"
    assert msgs[1]["priority"] == 7
    assert all(m["state"] == "ready" and m["delivery_count"] == 0 for m in msgs)
    assert [m["body"] for m in a.get("/api/queues/api.browse/messages?limit=2")[1]["messages"]] == [
        "first", "second"]
    assert a.queue("api.browse")["ready"] == 3
    consumer = client()
    consumer.subscribe("/queue/api.browse", ack="client-individual")
    got = consumer.get_n(3)
    assert [f.body for f in got] == ["first", "second", "\u00e9t\u00e9 \U0001F600"]
    # Delivered, not acked: browse still shows them, as unacked.
    msgs = a.get("/api/queues/api.browse/messages")[1]["messages"]
    assert [(m["body"], m["state"], m["delivery_count"]) for m in msgs] == [
        ("first", "unacked", 1), ("second", "unacked", 1), ("\u00e9t\u00e9 \U0001F600", "unacked", 1)]


def test_purge_removes_ready_messages_durably(gateway, client, admin):
    a = admin(gateway)
    c = client()
    for i in range(5):
        c.send("/queue/api.purge", f"p{i}", headers={"persistent": "true"})
    status, body = a.post("/api/queues/api.purge/purge")
    assert (status, body) == (200, {"queue": "api.purge", "purged": 5})
    assert a.queue("api.purge")["ready"] == 0
    c.send("/queue/api.purge", "after", headers={"persistent": "true"})
    c.disconnect()
    gateway.restart()
    assert a.queue("api.purge")["ready"] == 1
    consumer = client()
    consumer.subscribe("/queue/api.purge")
    assert consumer.get().body == "after"
    consumer.expect_no_message(0.3)
    assert a.post("/api/queues/nope/purge")[0] == 404


def test_delete_queue_cancels_consumers_and_lasts(gateway, client, admin):
    a = admin(gateway)
    c = client()
    for i in range(3):
        c.send("/queue/api.delete", f"d{i}", headers={"persistent": "true"})
    c.send("/queue/api.keep", "k", headers={"persistent": "true"})
    status, body = a.delete("/api/queues/api.delete")
    assert (status, body) == (200, {"queue": "api.delete", "deleted": True, "messages": 3})
    names = [q["name"] for q in a.get("/api/queues")[1]["queues"]]
    assert "api.delete" not in names and "api.keep" in names
    c.disconnect()
    gateway.restart()
    names = [q["name"] for q in a.get("/api/queues")[1]["queues"]]
    assert "api.delete" not in names and "api.keep" in names
    consumer = client()
    consumer.subscribe("/queue/api.delete")
    consumer.expect_no_message(0.3)
    assert a.delete("/api/queues/api.delete")[0] == 200  # recreated empty by the subscribe
    assert a.delete("/api/queues/api.delete")[0] == 404


def test_replay_moves_dead_letters_back_to_their_queue(gateway, client, admin):
    a = admin(gateway)
    c = client()
    for body in ("r1", "r2", "r3"):
        c.send("/queue/api.replay", body, headers={"persistent": "true"})
    c.send("/queue/api.elsewhere", "e1", headers={"persistent": "true"})
    c.subscribe("/queue/api.replay", ack="client-individual", id="s1")
    for f in c.get_n(3):
        c.nack(f)
    c.subscribe("/queue/api.elsewhere", ack="client-individual", id="s2")
    c.nack(c.get())
    c.unsubscribe("s1")
    c.unsubscribe("s2")
    dlq = a.queue("ActiveMQ.DLQ")
    assert dlq["ready"] == 4
    browsed = a.get("/api/queues/ActiveMQ.DLQ/messages")[1]["messages"]
    assert sorted(m["properties"]["originalDestination"] for m in browsed) == [
        "api.elsewhere", "api.replay", "api.replay", "api.replay"]

    status, body = a.post("/api/dlq/replay?queue=api.replay")
    assert (status, body) == (200, {"dlq": "ActiveMQ.DLQ", "queue": "api.replay", "moved": 3})
    assert a.queue("ActiveMQ.DLQ")["ready"] == 1
    assert a.queue("api.replay")["ready"] == 3
    c.disconnect()
    gateway.restart()
    assert a.queue("ActiveMQ.DLQ")["ready"] == 1
    consumer = client()
    consumer.subscribe("/queue/api.replay")
    got = consumer.get_n(3)
    assert sorted(f.body for f in got) == ["r1", "r2", "r3"]
    assert all("originalDestination" not in f.headers for f in got)
    assert a.post("/api/dlq/replay")[0] == 400


def test_connections_and_consumers(gateway, client, admin):
    a = admin(gateway)
    s = client(login="alice", passcode="secret", connect_headers={"client-id": "api-stomp"})
    s.subscribe("/queue/api.conns", ack="client-individual", headers={"selector": "color = 'red'"})
    m = MqttClient(gateway, client_id="api-mqtt", username="bob", password="pw")
    try:
        status, body = a.get("/api/connections")
        assert status == 200
        conns = {c["protocol"]: c for c in body["connections"]}
        stomp_local = s.conn.transport.socket.getsockname()
        assert conns["stomp"]["peer"] == f"{stomp_local[0]}:{stomp_local[1]}"
        assert (conns["stomp"]["user"], conns["stomp"]["client_id"], conns["stomp"]["listener"]) == (
            "alice", "api-stomp", "stomp")
        assert (conns["mqtt"]["user"], conns["mqtt"]["client_id"]) == ("bob", "api-mqtt")
        assert conns["stomp"]["established"] and conns["stomp"]["bytes_in"] > 0
        assert conns["stomp"]["since_ms"] > 0
        status, body = a.get("/api/consumers")
        mine = [c for c in body["consumers"] if c["queues"] == ["api.conns"]]
        assert len(mine) == 1
        assert mine[0]["client_id"] == "api-stomp"
        assert mine[0]["connection"] == conns["stomp"]["id"]
        # The STOMP session stores ActiveMQ's string-conversion flag in front of the selector.
        assert mine[0]["selector"].endswith("color = 'red'")
        assert mine[0]["unacked"] == 0
    finally:
        m.disconnect()
    s.disconnect()
    status, body = a.get("/api/connections")
    assert [c for c in body["connections"] if c["protocol"] in ("stomp", "mqtt")] == []


def test_overview(gateway, client, admin):
    a = admin(gateway)
    c = client()
    c.send("/queue/api.ov", "1")
    c.send("/queue/api.ov", "2")
    status, body = a.get("/api/overview")
    assert status == 200
    assert (body["connections"], body["sessions"], body["producers"], body["messages"]) == (1, 1, 1, 2)
    assert body["recovery"]["messages"] == 0
    json.dumps(body)


def test_inspect_one_connection_and_one_consumer(gateway, client, admin, cli):
    a = admin(gateway)
    s = client(login="alice", passcode="secret", connect_headers={"client-id": "api-one"})
    s.subscribe("/queue/api.one.a", ack="client-individual")
    s.subscribe("/queue/api.one.b")
    other = client()
    other.subscribe("/queue/api.one.other")
    status, body = a.get("/api/connections")
    [mine] = [c for c in body["connections"] if c["client_id"] == "api-one"]
    status, conn = a.get(f"/api/connections/{mine['id']}")
    assert status == 200, conn
    assert (conn["id"], conn["protocol"], conn["user"], conn["client_id"]) == (mine["id"], "stomp", "alice", "api-one")
    # Only this connection's consumers, each pointing back at it.
    assert sorted(c["queues"][0] for c in conn["consumers"]) == ["api.one.a", "api.one.b"]
    assert {c["connection"] for c in conn["consumers"]} == {mine["id"]}
    [ca] = [c for c in conn["consumers"] if c["queues"] == ["api.one.a"]]
    status, consumer = a.get(f"/api/consumers/{ca['id']}")
    assert status == 200, consumer
    assert consumer == ca
    # The CLI's view of the same connection.
    r = cli(gateway, "connections", "show", str(mine["id"]))
    assert r.returncode == 0, r.stderr
    first, *rest = r.stdout.splitlines()
    assert first.startswith(f"connection {mine['id']}: stomp on stomp from ")
    assert "user alice, client id api-one" in first
    assert rest[0].split() == ["CONSUMER", "QUEUES", "PREFETCH", "UNACKED", "SELECTOR"]
    assert sorted(line.split()[1] for line in rest[1:]) == ["api.one.a", "api.one.b"]
    r = cli(gateway, "connections", "show", str(mine["id"]), "--json")
    assert json.loads(r.stdout)["id"] == mine["id"]
    # Unknown ids: 404, CLI exit code 1.
    s.disconnect()
    assert a.get(f"/api/connections/{mine['id']}")[0] == 404
    assert a.get(f"/api/consumers/{ca['id']}")[0] == 404
    assert a.get("/api/connections/not-a-number")[0] == 400
    r = cli(gateway, "connections", "show", str(mine["id"]))
    assert r.returncode == 1 and f"no open connection {mine['id']}" in r.stderr
