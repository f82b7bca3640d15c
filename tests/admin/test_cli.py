"""The `gateway` admin subcommands (real binary) against a running gateway: tables, --json,
effects checked through stomp.py, errors and exit codes."""

from __future__ import annotations

import json

from gwtest.gateway import free_port


def table(stdout: str) -> list[list[str]]:
    """Rows of a CLI table split on runs of 2+ spaces (cells may hold single spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def test_queues_table_and_json(gateway, client, cli):
    c = client()
    for i in range(3):
        c.send("/queue/cli.orders", f"o{i}", headers={"persistent": "true"})
    consumer = client()
    consumer.subscribe("/queue/cli.orders", ack="client-individual")
    consumer.ack(consumer.get_n(3)[0])
    r = cli(gateway, "queues")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["NAME", "KIND", "READY", "UNACKED", "CONSUMERS", "ENQUEUED", "DELIVERED", "ACKED",
                       "REDELIVERED", "DEAD-LETTERED", "EXPIRED"]
    assert ["cli.orders", "queue", "0", "2", "1", "3", "3", "1", "0", "0", "0"] in rows[1:]

    r = cli(gateway, "queues", "--json")
    assert r.returncode == 0, r.stderr
    q = {q["name"]: q for q in json.loads(r.stdout)["queues"]}["cli.orders"]
    assert (q["ready"], q["unacked"], q["acknowledged"]) == (0, 2, 1)


def test_connections_table(gateway, client, cli):
    c = client(login="carol", passcode="x", connect_headers={"client-id": "cli-conn"})
    r = cli(gateway, "connections")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["ID", "PROTOCOL", "LISTENER", "PEER", "USER", "CLIENT-ID", "AGE", "BYTES-IN", "BYTES-OUT"]
    local = c.conn.transport.socket.getsockname()
    mine = [row for row in rows[1:] if row[3] == f"{local[0]}:{local[1]}"]
    assert len(mine) == 1, rows
    assert mine[0][1:3] == ["stomp", "stomp"] and mine[0][4:6] == ["carol", "cli-conn"]
    assert mine[0][6].endswith("s") and int(mine[0][7]) > 0 and int(mine[0][8]) > 0


def test_queue_purge_and_browse(gateway, client, cli):
    c = client()
    for i in range(4):
        c.send("/queue/cli.purge", f"body {i}")
    r = cli(gateway, "queue", "browse", "cli.purge", "--limit", "2")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["MESSAGE-ID", "STATE", "DELIVERIES", "PRIORITY", "PERSISTENT", "BODY"]
    assert [row[1:] for row in rows[1:]] == [["ready", "0", "4", "false", "body 0"],
                                             ["ready", "0", "4", "false", "body 1"]]
    r = cli(gateway, "queue", "purge", "cli.purge")
    assert (r.returncode, r.stdout) == (0, "purged 4 message(s) from cli.purge\n"), r.stderr
    consumer = client()
    consumer.subscribe("/queue/cli.purge")
    consumer.expect_no_message(0.3)
    r = cli(gateway, "queue", "show", "cli.purge", "--json")
    assert json.loads(r.stdout)["ready"] == 0


def test_dlq_replay(gateway, client, cli):
    c = client()
    c.send("/queue/cli.replay", "again", headers={"persistent": "true"})
    c.subscribe("/queue/cli.replay", ack="client-individual", id="s")
    c.nack(c.get())
    c.unsubscribe("s")
    r = cli(gateway, "dlq", "replay", "cli.replay")
    assert (r.returncode, r.stdout) == (0, "moved 1 message(s) from ActiveMQ.DLQ back to cli.replay\n"), r.stderr
    consumer = client()
    consumer.subscribe("/queue/cli.replay")
    assert consumer.get().body == "again"
    r = cli(gateway, "dlq", "replay", "cli.replay", "--json")
    assert json.loads(r.stdout) == {"dlq": "ActiveMQ.DLQ", "queue": "cli.replay", "moved": 0}


def test_errors_and_exit_codes(gateway, cli):
    r = cli(gateway, "queue", "purge", "cli.unknown")
    assert r.returncode == 1
    assert "no queue" not in r.stdout and "cli.unknown" in r.stderr and "HTTP 404" in r.stderr
    r = cli(gateway, "queues", admin_url=f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 1 and "cannot reach the admin API" in r.stderr
    r = cli(gateway, "queues", admin_url="ftp://nowhere")
    assert r.returncode == 2 and "http://" in r.stderr


def test_consumers_and_overview(gateway, client, cli):
    c = client(connect_headers={"client-id": "cli-consumer"})
    c.subscribe("/queue/cli.consumed", ack="client-individual", headers={"activemq.prefetchSize": "5"})
    c.send("/queue/cli.consumed", "one")
    c.get()
    r = cli(gateway, "consumers")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["ID", "CONNECTION", "CLIENT-ID", "QUEUES", "PREFETCH", "UNACKED", "SELECTOR"]
    mine = [row for row in rows[1:] if row[3] == "cli.consumed"]
    assert len(mine) == 1 and mine[0][2] == "cli-consumer" and mine[0][4:6] == ["5", "1"], rows
    r = cli(gateway, "overview")
    assert r.returncode == 0, r.stderr
    fields = dict(row for row in table(r.stdout)[1:] if len(row) == 2)
    assert fields["consumers"] == "1" and fields["producers"] == "1" and fields["messages"] == "1"


def test_queue_delete(gateway, client, cli, admin):
    c = client()
    for i in range(3):
        c.send("/queue/cli.delete", f"d{i}", headers={"persistent": "true"})
    r = cli(gateway, "queue", "delete", "cli.delete")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "deleted cli.delete (3 message(s))\n"
    status, _ = admin(gateway).get("/api/queues/cli.delete")
    assert status == 404
    # Gone for good: not back after a restart.
    gateway.restart()
    status, _ = admin(gateway).get("/api/queues/cli.delete")
    assert status == 404
    r = cli(gateway, "queue", "delete", "cli.delete", "--json")
    assert r.returncode == 1
    assert "cli.delete" in r.stderr
