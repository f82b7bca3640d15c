"""Crash (SIGKILL) and graceful shutdown (SIGTERM): what survives a restart."""

import time

from gwtest import reference

PERSISTENT = {"persistent": "true"}


def test_persistent_message_survives_kill(gateway, client):
    p = client(gateway)
    p.send("/queue/durable", "keep me", headers=PERSISTENT)  # RECEIPT = it is on disk
    gateway.kill()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/durable")
    m = c.get()
    assert m.body == "keep me"
    assert m.headers.get("persistent") == "true"
    c.expect_no_message(0.3)


def test_non_persistent_message_is_gone_after_restart(gateway, client):
    p = client(gateway)
    p.send("/queue/mixed", "volatile")
    p.send("/queue/mixed", "durable", headers=PERSISTENT)
    gateway.kill()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/mixed")
    assert c.get().body == "durable"
    c.expect_no_message(0.5)


def test_many_persistent_messages_survive_kill_in_order(gateway, client):
    p = client(gateway)
    for i in range(200):
        p.send("/queue/many", f"m{i}", headers=PERSISTENT, receipt=True)
    gateway.kill()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/many")
    assert [m.body for m in c.get_n(200, timeout=15)] == [f"m{i}" for i in range(200)]


def test_acked_not_redelivered_and_unacked_redelivered_after_kill(gateway, client):
    p = client(gateway)
    p.send("/queue/acks", "acked", headers=PERSISTENT)
    p.send("/queue/acks", "unacked", headers=PERSISTENT)
    c = client(gateway)
    c.subscribe("/queue/acks", ack="client-individual")
    first, second = c.get_n(2)
    assert (first.body, second.body) == ("acked", "unacked")
    c.ack(first)  # RECEIPT: the ack is durable
    gateway.kill()
    gateway.restart()
    c2 = client(gateway)
    c2.subscribe("/queue/acks", ack="client-individual")
    m = c2.get()
    assert m.body == "unacked"
    # Not asserted: `redelivered`. ActiveMQ 5.17 (KahaDB, default persistJMSRedelivered=false)
    # forgets the delivery across a crash and sends it without `redelivered`.
    c2.expect_no_message(0.5)


def test_committed_transaction_survives_kill_and_aborted_does_not(gateway, client):
    p = client(gateway)
    t1 = p.begin()
    p.send("/queue/txdur", "committed", headers=PERSISTENT, transaction=t1)
    p.commit(t1)
    t2 = p.begin()
    p.send("/queue/txdur", "aborted", headers=PERSISTENT, transaction=t2)
    p.abort(t2)
    t3 = p.begin()
    p.send("/queue/txdur", "in-flight", headers=PERSISTENT, transaction=t3)
    gateway.kill()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/txdur")
    assert c.get().body == "committed"
    c.expect_no_message(0.5)


def test_durable_subscription_survives_restart(gateway, client):
    sub = {"activemq.subscriptionName": "keeper"}
    d = client(gateway, connect_headers={"client-id": "restart-client"})
    d.subscribe("/topic/restart", id="d", headers=sub)
    d.disconnect()
    client(gateway).send("/topic/restart", "kept for keeper", headers=PERSISTENT)
    gateway.kill()
    gateway.restart()
    back = client(gateway, connect_headers={"client-id": "restart-client"})
    back.subscribe("/topic/restart", id="d", headers=sub)
    assert back.get().body == "kept for keeper"


def test_sigterm_exits_zero_promptly_and_keeps_messages(gateway, client):
    p = client(gateway)
    p.send("/queue/graceful", "before shutdown", headers=PERSISTENT)
    idle = client(gateway)  # a connected client must not hold the shutdown up for long
    idle.subscribe("/queue/unrelated")
    start = time.monotonic()
    code = gateway.terminate(timeout=10)
    elapsed = time.monotonic() - start
    # Our gateway exits 0; ActiveMQ's JVM exits 143 (128 + SIGTERM) after a clean shutdown.
    assert code == (143 if reference.mode() else 0), f"exit code {code} after SIGTERM"
    assert elapsed < 7, f"took {elapsed:.1f}s to exit after SIGTERM"
    assert "panicked" not in gateway.log_text()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/graceful")
    assert c.get().body == "before shutdown"


def test_restart_twice_keeps_messages_once(gateway, client):
    p = client(gateway)
    p.send("/queue/twice", "only once", headers=PERSISTENT)
    gateway.kill()
    gateway.restart()
    gateway.terminate()
    gateway.restart()
    c = client(gateway)
    c.subscribe("/queue/twice")
    assert c.get().body == "only once"
    c.expect_no_message(0.5)
