"""Acknowledgement windows with the real ActiveMQ 5.17 JMS client: `DELIVERED` acks (sent by the
client for messages its application has consumed but not yet acknowledged or committed) widen
the consumer's prefetch window, as ActiveMQ's prefetch extension does, so a CLIENT_ACKNOWLEDGE or
transacted consumer may hold more messages than its prefetch before it acknowledges; batched
acknowledgements (`jms.optimizeAcknowledge`); and message groups closed by `JMSXGroupSeq` -1."""

from __future__ import annotations

import json
import urllib.request

import pytest


def queue_state(gw, name: str) -> dict:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}/api/queues/{name}",
                                timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("mode", ["client", "transacted"])
def test_delivered_acks_widen_the_prefetch_window(gateway, jms, mode):
    queue = f"orders.window.{mode}"
    assert jms(gateway).run("send", f"queue:{queue}", "w", "40").returncode == 0
    # A prefetch of 5: without the window extension the consumer would stall after 5 messages
    # it has not acknowledged yet.
    small = jms(gateway, "jms.prefetchPolicy.queuePrefetch=5")
    held = small.run("hold-many", f"queue:{queue}", mode, "40")
    assert held.returncode == 0, held
    assert held.ok("hold-many 40"), held
    state = queue_state(gateway, queue)
    assert (state["messages"], state["consumers"]) == (0, 0), state


@pytest.mark.parametrize("mode", ["client", "transacted"])
def test_a_prefetch_zero_consumer_may_hold_messages_it_pulled_before_acknowledging(gateway, jms, mode):
    queue = f"orders.window.pull.{mode}"
    assert jms(gateway).run("send", f"queue:{queue}", "p", "10").returncode == 0
    # Each receive pulls one more message while the earlier ones are still unacknowledged.
    puller = jms(gateway, "jms.prefetchPolicy.queuePrefetch=0")
    held = puller.run("hold-many", f"queue:{queue}", mode, "10")
    assert held.returncode == 0, held
    assert held.ok("hold-many 10"), held
    state = queue_state(gateway, queue)
    assert (state["messages"], state["consumers"]) == (0, 0), state


def test_held_messages_beyond_the_prefetch_come_back_when_the_consumer_leaves_unacknowledged(gateway, jms):
    queue = "orders.window.noack"
    assert jms(gateway).run("send", f"queue:{queue}", "n", "20").returncode == 0
    small = jms(gateway, "jms.prefetchPolicy.queuePrefetch=5")
    held = small.run("hold-many", f"queue:{queue}", "client-noack", "20")
    assert held.returncode == 0, held
    # Closed without acknowledging: every one of the 20 comes back, redelivered, in order.
    again = jms(gateway).run("receive", f"queue:{queue}", "5000", "20")
    assert again.returncode == 0, again
    assert [(r.text, r.redelivered) for r in again.received] == [
        (f"n-{i}", True) for i in range(20)], again
    assert queue_state(gateway, queue)["messages"] == 0


def test_optimize_acknowledge_batches_acks_and_nothing_is_redelivered(gateway, jms):
    queue = "orders.window.optimized"
    assert jms(gateway).run("send", f"queue:{queue}", "o", "50").returncode == 0
    # jms.optimizeAcknowledge: the client acknowledges auto-ack deliveries in batches.
    optimized = jms(gateway, "jms.optimizeAcknowledge=true&jms.prefetchPolicy.queuePrefetch=10")
    got = optimized.run("receive", f"queue:{queue}", "5000", "50")
    assert got.returncode == 0, got
    assert [r.text for r in got.received] == [f"o-{i}" for i in range(50)], got
    assert not any(r.redelivered for r in got.received), got
    # Closing the connection acknowledged the last batch: nothing is left or redelivered.
    assert queue_state(gateway, queue)["messages"] == 0
    assert jms(gateway).run("receive", f"queue:{queue}", "500", "1").received == []


def test_jmsxgroupseq_minus_one_closes_a_message_group(gateway, jms):
    # Prefetch 1: an owner holding an unacknowledged message takes nothing more, so where the
    # group's next message goes shows whether the group was still assigned.
    result = jms(gateway, "jms.prefetchPolicy.queuePrefetch=1").run("group-close", "queue:orders.groups.close")
    assert result.returncode == 0, result
    line = next(l for l in result.lines if l.startswith("OK group-close"))
    assert line.endswith("sticky=true moved=true"), result
    assert queue_state(gateway, "orders.groups.close")["messages"] == 0
