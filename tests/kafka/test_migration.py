"""The migration of issue 7, end to end: STOMP producers send to `orders.*` queues, a route
copies every message into stream `orders` keyed by `customerId`, the legacy queue consumers
still receive every message, a kcat consumer group of two members splits the partitions,
commits, and after a gateway restart resumes with no gap and no duplicate, and kafka-python
replays the stream from the beginning and from a timestamp. The same with the ActiveMQ JMS
client on both ends: a JMS producer's messages reach the stream with their properties as record
headers, and records produced by kafka-python reach a JMS consumer with their headers as
properties."""

from __future__ import annotations

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from gwtest.kafka import json_records, restart, wait_until

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
    # Every record after t1 is one of the 20 later orders (record time = the gateway's clock
    # when the send arrived).
    time.sleep(0.05)
    t1 = int(time.time() * 1000)
    time.sleep(0.05)
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
    by_time = k.offsets_for_times({tp: t1 for tp in tps})
    later = {}
    for r in c.records() + d.records():
        p = r["partition"]
        later[p] = min(later.get(p, r["offset"]), r["offset"])
    for tp, found in by_time.items():
        # The exact first offset at or after t1, per partition (None: nothing that late).
        assert (found.offset if found else None) == later.get(tp.partition), (tp, found)
        k.seek(tp, found.offset if found else k.end_offsets([tp])[tp])
    assert sorted(m.value.decode() for m in k) == sorted(f"order {i}" for i in range(40, 60))
    k.close()


def _headers(record) -> dict[str, bytes]:
    return {name: value for name, value in record.headers}


def test_jms_orders_copied_to_a_stream_keyed_by_customer_with_properties_as_headers(
    kafka_gateway, kcat, jms
):
    gw = kafka_gateway(extra_toml=CONFIG)
    probe = jms(gw)
    for region in ("eu", "us"):
        sent = probe.run("send-keyed", f"queue:orders.{region}", f"{region}-order", "20", "6")
        assert sent.returncode == 0, str(sent)

    # The legacy JMS consumers still get every message of their queue.
    for region in ("eu", "us"):
        got = probe.run("receive", f"queue:orders.{region}", "5000", "20")
        assert got.returncode == 0, str(got)
        assert sorted(m.text for m in got.received) == sorted(
            f"{region}-order-{i}" for i in range(20))

    # kcat sees every order once, keyed by its customerId property, one key in one partition.
    def records():
        return json_records(kcat(gw, "-C", "-t", "orders", "-e", "-J").text)

    wait_until(lambda: len(records()) >= 40, 20, "40 records in the stream")
    got = records()
    assert sorted(r["payload"] for r in got) == sorted(
        f"{region}-order-{i}" for region in ("eu", "us") for i in range(20))
    partitions: dict[str, set[int]] = {}
    for r in got:
        seq = int(r["payload"].rsplit("-", 1)[1])
        assert r["key"] == f"c{seq % 6}"
        headers = dict(zip(r["headers"][::2], r["headers"][1::2]))
        assert headers["customerId"] == r["key"]
        assert headers["seq"] == str(seq)
        partitions.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(p) == 1 for p in partitions.values()), "one key, one partition"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "keys spread over partitions"

    # kafka-python reads the same records with the JMS properties as record headers.
    k = KafkaConsumer(bootstrap_servers=gw.bootstrap, consumer_timeout_ms=3000)
    k.assign([TopicPartition("orders", p) for p in range(4)])
    k.seek_to_beginning()
    seen = list(k)
    k.close()
    assert len(seen) == 40
    for m in seen:
        h = _headers(m)
        assert h["customerId"] == m.key
        assert m.key == f"c{int(m.value.decode().rsplit('-', 1)[1]) % 6}".encode()
        assert h["message-id"].startswith(b"ID:"), h


PAYMENTS = """
[[streams]]
name = "payments"
partitions = 2

[[routes]]
name = "payments-to-legacy"
from = "stream:payments"
to = "queue:legacy.payments"
"""


def test_kafka_payments_reach_a_jms_consumer_with_headers_as_properties(kafka_gateway, jms):
    gw = kafka_gateway(extra_toml=PAYMENTS)
    producer = KafkaProducer(bootstrap_servers=gw.bootstrap, acks="all")
    for i in range(20):
        producer.send("payments", key=f"acct-{i % 3}".encode(), value=f"payment {i} \u20ac".encode(),
                      headers=[("tenant", b"acme"), ("attempt", str(i).encode())])
    producer.flush()
    producer.close()

    got = jms(gw).run("receive-bodies", "queue:legacy.payments", "10000", "20")
    assert got.returncode == 0, str(got)
    bodies = [line[len("BODY "):] for line in got.lines if line.startswith("BODY ")]
    assert len(got.received) == len(bodies) == 20
    by_attempt = {}
    for m, body in zip(got.received, bodies):
        props = m.props
        attempt = int(props["attempt"].split(":", 1)[1])
        by_attempt[attempt] = (m, bytes.fromhex(body))
        assert props["tenant"] == "String:acme"
        assert props["kafka.topic"] == "String:payments"
        assert props["kafka.key"] == f"String:acct-{attempt % 3}"
        # The key is the JMS message group, so one account keeps its order for group consumers.
        assert props["JMSXGroupID"] == f"String:acct-{attempt % 3}"
        assert props["kafka.partition"] in ("Integer:0", "Integer:1")
        assert props["kafka.offset"].startswith("Long:")
        assert m.persistent
    assert sorted(by_attempt) == list(range(20)), "every record once"
    for i, (_, body) in by_attempt.items():
        assert body == f"payment {i} \u20ac".encode(), "the body byte for byte"


def test_the_walkthrough_in_docs_migration_md_works_as_written(kafka_gateway):
    """examples/migration.toml passes `gateway check-config`; its streams and routes (on test
    ports) run the shell blocks of docs/migration.md sections 2 and 3 as written (addresses
    swapped for the test's), printing what the walkthrough says they print."""
    import re
    import subprocess
    from pathlib import Path

    from gwtest.gateway import gateway_binary

    root = Path(__file__).resolve().parents[2]
    example = root / "examples" / "migration.toml"
    check = subprocess.run([str(gateway_binary()), "check-config", str(example)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and check.stdout.strip().endswith("ok"), check

    text = example.read_text()
    gw = kafka_gateway(overrides={"log": {"auto_create_streams": True, "default_partitions": 3}},
                       extra_toml=text[text.index("[[streams]]"):])
    doc = (root / "docs" / "migration.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)

    def run(block: str) -> str:
        script = (block.replace("127.0.0.1:9092", gw.bootstrap)
                  .replace('("127.0.0.1", 61613)', f'("{gw.host}", {gw.stomp_port})'))
        python = str(Path(sys.executable))
        script = script.replace("python3 -", f"{python} -")
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                             text=True, timeout=40)
        assert out.returncode == 0, f"{script}\n--- stdout ---\n{out.stdout}\n{out.stderr}"
        return out.stdout

    feed = next(b for b in blocks if "/queue/orders." in b)
    lines = [line for line in run(feed).splitlines() if line.startswith("partition ")]
    # The route appends asynchronously: a fast machine may run kcat before the last copies
    # are in (a reader of the walkthrough never is that fast). Re-run just the kcat line.
    reread = "\n".join(line for line in feed.splitlines() if line.startswith("kcat "))
    deadline = time.monotonic() + 20
    while len(lines) < 10 and time.monotonic() < deadline:
        time.sleep(0.5)
        lines = [line for line in run(reread).splitlines() if line.startswith("partition ")]
    assert sorted(line.split(": ", 1)[1] for line in lines) == sorted(
        f"order {i}" for i in range(10))
    partitions: dict[str, set[str]] = {}
    for line in lines:
        m = re.match(r"partition (\d+) offset \d+ key (c\d): order (\d+)$", line)
        assert m, line
        assert m.group(2) == f"c{int(m.group(3)) % 3}"
        partitions.setdefault(m.group(2), set()).add(m.group(1))
    assert all(len(p) == 1 for p in partitions.values()), "each key stays in one partition"

    legacy = next(b for b in blocks if "legacy.payments" in b)
    assert 'new-service acct-7 {"amount": 12.5}' in run(legacy).splitlines()
