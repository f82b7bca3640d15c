"""Failover, redelivery and reconnect storms with the real ActiveMQ 5.17 JMS client: a transacted
consumer holding a message across a gateway SIGKILL and restart gets it back redelivered through its
`failover:` transport, and its redelivery policy ends with the message in `ActiveMQ.DLQ`; a storm of
crashed connections with one client id leaves exactly the live consumer and nothing in flight."""

from __future__ import annotations

import json
import subprocess
import urllib.request


def queue_state(gw, name: str) -> dict:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/api/queues/{name}",
                                timeout=5) as resp:
        return json.loads(resp.read())


def openwire_connections(gw) -> list[dict]:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/api/connections",
                                timeout=5) as resp:
        body = json.loads(resp.read())
    return [c for c in body["connections"] if c.get("protocol") == "openwire"]


def test_failover_redelivers_after_sigkill_then_poison_ack_lands_in_dlq(make_gateway, jms):
    gw = make_gateway()
    fast = "jms.redeliveryPolicy.initialRedeliveryDelay=0&jms.redeliveryPolicy.redeliveryDelay=0"
    j = jms(gw, fast)
    assert j.run("send", "queue:orders.failover.poison", "doomed").returncode == 0
    url = (f"failover:(tcp://{gw.host}:{gw.openwire_port})?initialReconnectDelay=100"
           f"&maxReconnectDelay=500&{fast}")
    proc = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", url,
         "failover-poison", "queue:orders.failover.poison"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        held = proc.stdout.readline()
        assert held.startswith("OK held"), first + held + proc.stderr.read()
        assert " redelivered=false " in first, first
        gw.kill()
        gw.start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    deliveries = [line for line in out.splitlines() if line.startswith("RECEIVED")]
    # After the restart the failover transport resubscribed and the message came back, marked
    # redelivered (it was unacknowledged at the crash), then was rolled back until the policy's
    # limit (6 redeliveries) made the client poison-ack it.
    assert all(" text=doomed " in line and " redelivered=true " in line for line in deliveries), out
    # The first delivery (before the crash) and 6 redeliveries, ActiveMQ's default policy.
    counts = [line.split("JMSXDeliveryCount=Integer:")[1].split(";")[0] for line in deliveries]
    assert counts == ["2", "3", "4", "5", "6", "7"], out
    dlq = j.run("receive", "queue:ActiveMQ.DLQ", "5000", "1")
    assert [r.text for r in dlq.received] == ["doomed"], dlq
    assert queue_state(gw, "orders.failover.poison")["messages"] == 0


def test_reconnect_storm_with_one_client_id_leaks_no_consumer_or_prefetched_message(make_gateway, jms):
    gw = make_gateway()
    j = jms(gw)
    assert j.run("send", "queue:orders.storm2", "s", "30").returncode == 0
    storm = j.run("storm", "queue:orders.storm2", "storm-client", "25", timeout=120)
    assert storm.returncode == 0, storm
    assert storm.ok("storm 25"), storm
    # Every crashed connection's consumer, and the up to 30 messages each had prefetched, are
    # gone back to the queue: one live consumer now holds one message, the rest are ready.
    holder = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe", j.url,
         "hold", "queue:orders.storm2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        received = holder.stdout.readline()
        held = holder.stdout.readline()
        assert held.startswith("OK hold"), received + held + holder.stderr.read()
        assert " redelivered=true " in received, received
        state = queue_state(gw, "orders.storm2")
        assert state["consumers"] == 1, state
        # prefetch 1000 > 30: the live consumer got them all, only they are in flight.
        assert (state["messages"], state["unacked"], state["ready"]) == (30, 30, 0), state
        assert len(openwire_connections(gw)) == 1, openwire_connections(gw)
        holder.stdin.write("done\n")
        holder.stdin.flush()
        holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    state = queue_state(gw, "orders.storm2")
    assert (state["consumers"], state["unacked"], state["ready"]) == (0, 0, 30), state


def test_a_frozen_client_is_dropped_by_inactivity_and_its_prefetched_messages_return(make_gateway, jms):
    import signal
    import time

    gw = make_gateway({"listeners": {"openwire": {"max_inactivity_ms": 1000}}})
    j = jms(gw)
    assert j.run("send", "queue:orders.frozen", "f", "3").returncode == 0
    # The client negotiates a 1 s MaxInactivityDuration, takes the three messages (prefetch) and
    # acknowledges none; then the process is frozen (SIGSTOP): its socket stays open, nothing is
    # read or written on it any more, as with a peer behind a dead link.
    frozen = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", j.classpath, "JmsProbe",
         j.url + "?wireFormat.maxInactivityDuration=1000", "hold", "queue:orders.frozen"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        frozen.stdout.readline()
        held = frozen.stdout.readline()
        assert held.startswith("OK hold"), held + frozen.stderr.read()
        state = queue_state(gw, "orders.frozen")
        assert (state["consumers"], state["unacked"]) == (1, 3), state
        frozen.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = queue_state(gw, "orders.frozen")
            if state["consumers"] == 0:
                break
            time.sleep(0.2)
        assert (state["consumers"], state["unacked"], state["ready"]) == (0, 0, 3), state
        assert openwire_connections(gw) == [], openwire_connections(gw)
    finally:
        frozen.kill()
        frozen.wait()
    again = j.run("receive", "queue:orders.frozen", "5000", "3")
    assert [(r.text, r.redelivered) for r in again.received] == [
        ("f-0", True), ("f-1", True), ("f-2", True)], again
