"""The migration of issue 7, end to end: STOMP producers send to `orders.*` queues, a route
copies every message into stream `orders` keyed by `customerId`, the legacy queue consumers
still receive every message, a kcat consumer group of two members splits the partitions,
commits, and after a gateway restart resumes with no gap and no duplicate, and kafka-python
replays the stream from the beginning and from a timestamp."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from gwtest.kafka import restart, wait_until

CONFIG = """
[[streams]]
name = "orders"
partitions = 4

[[routes]]
name = "orders-to-stream"
from = "queue:orders.*"
to = "stream:orders"
mode = "copy"
key = "customerId"
"""


def send_orders(producer, first: int, count: int):
    for i in range(first, first + count):
        region = ["eu", "us"][i % 2]
        producer.send(f"/queue/orders.{region}", f"order {i}",
                      headers={"customerId": f"c{i % 6}", "persistent": "true"})


def test_queue_orders_copied_to_a_stream_consumed_by_a_group_across_a_restart(
    kafka_gateway, client, kcat_member
):
    gw = kafka_gateway(extra_toml=CONFIG)
    t0 = int(time.time() * 1000)

    # A consumer group of two kcat members splits the 4 partitions.
    a = kcat_member(gw, "fulfilment", "orders")
    b = kcat_member(gw, "fulfilment", "orders")

    def split():
        pa, pb = a.assignment, b.assignment
        return pa is not None and pb is not None and not (pa & pb) and pa | pb == {0, 1, 2, 3}

    wait_until(split, 40, "two members sharing the 4 partitions")
    producer = client(gw)
    send_orders(producer, 0, 40)

    # Legacy queue consumers still receive every message.
    legacy = client(gw)
    legacy.subscribe("/queue/orders.eu")
    legacy.subscribe("/queue/orders.us")
    assert sorted(m.body for m in legacy.get_n(40)) == sorted(f"order {i}" for i in range(40))

    wait_until(lambda: len(a.records()) + len(b.records()) >= 40, 30, "40 records consumed")
    for member in (a, b):
        recs = member.records()
        assert {r["partition"] for r in recs} <= member.assignment
        for r in recs:
            assert r["key"] == f"c{int(r['payload'].split()[1]) % 6}"
    a.stop()
    b.stop()
    first = sorted(r["payload"] for r in a.records() + b.records())
    assert first == sorted(f"order {i}" for i in range(40)), "every order once"
    # One key, one partition.
    key_partitions: dict[str, set[int]] = {}
    for r in a.records() + b.records():
        key_partitions.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(p) == 1 for p in key_partitions.values())

    restart(gw)
    producer = client(gw)
    send_orders(producer, 40, 20)
    c = kcat_member(gw, "fulfilment", "orders")
    d = kcat_member(gw, "fulfilment", "orders")
    wait_until(lambda: len(c.records()) + len(d.records()) >= 20, 40, "the 20 new records")
    wait_until(lambda: (c.assignment or set()) | (d.assignment or set()) == {0, 1, 2, 3}, 20,
               "the group to cover every partition again")
    c.stop()
    d.stop()
    resumed = sorted(r["payload"] for r in c.records() + d.records())
    assert resumed == sorted(f"order {i}" for i in range(40, 60)), "no gap, no duplicate"

    # kafka-python replays from the beginning and from a timestamp.
    tps = [TopicPartition("orders", p) for p in range(4)]
    k = KafkaConsumer(bootstrap_servers=gw.bootstrap, consumer_timeout_ms=3000)
    k.assign(tps)
    k.seek_to_beginning()
    assert sorted(m.value.decode() for m in k) == sorted(f"order {i}" for i in range(60))
    by_time = k.offsets_for_times({tp: t0 for tp in tps})
    for tp, found in by_time.items():
        k.seek(tp, found.offset if found else k.end_offsets([tp])[tp])
    assert len(list(k)) == 60, "every record is at or after the time the test began"
    k.close()
