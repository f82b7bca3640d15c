"""Streams and consumer groups in /metrics, the admin API and the CLI (issue 8): kafka-python
produces and consumes in a group, the scrape shows exactly the offsets and lag the traffic made,
and a group's offsets reset (earliest, latest, datetime) makes a consumer re-read from there;
a reset is refused (409) while the group has members, as Kafka refuses it."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from gwtest.kafka import wait_for_port, wait_until

STREAM = "obs.orders"
# 2023-11-14T22:13:20Z: records get explicit timestamps so a reset to a datetime is exact.
T0 = 1_700_000_000_000


@pytest.fixture
def kgw(make_gateway):
    gw = make_gateway(extra_toml=f'[[streams]]\nname = "{STREAM}"\npartitions = 2\n')
    wait_for_port(gw.host, gw.kafka_port)
    gw.bootstrap = f"{gw.host}:{gw.kafka_port}"
    return gw


def produce(gw, partition: int, values: list[bytes], timestamps: list[int] | None = None):
    p = KafkaProducer(bootstrap_servers=gw.bootstrap)
    for i, v in enumerate(values):
        p.send(STREAM, value=v, partition=partition,
               timestamp_ms=timestamps[i] if timestamps else None)
    p.flush(10)
    p.close()


def group_consumer(gw, group: str, **kw) -> KafkaConsumer:
    kw.setdefault("consumer_timeout_ms", 3000)
    return KafkaConsumer(bootstrap_servers=gw.bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, **kw)


def consume_all(c: KafkaConsumer, expected: int, timeout: float = 30.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
    return got


def series(m: dict, name: str, **labels):
    return m.get((name, frozenset(labels.items())))


def test_stream_and_group_metrics_follow_produce_consume_and_commit(kgw, admin, cli):
    a = admin(kgw)
    m = a.metrics()
    for p in ("0", "1"):
        assert series(m, "gateway_stream_end_offset", stream=STREAM, partition=p) == 0
        assert series(m, "gateway_stream_start_offset", stream=STREAM, partition=p) == 0
        assert series(m, "gateway_stream_segments", stream=STREAM, partition=p) == 1

    produce(kgw, 0, [b"a%d" % i for i in range(7)])
    produce(kgw, 1, [b"b%d" % i for i in range(3)])
    c = group_consumer(kgw, "obs-g")
    c.subscribe([STREAM])
    assert len(consume_all(c, 10)) == 10
    c.commit({TopicPartition(STREAM, 0): OffsetAndMetadata(5, "", -1),
              TopicPartition(STREAM, 1): OffsetAndMetadata(3, "", -1)})
    # While the consumer is in the group it is a member.
    a.wait_value("gateway_consumer_group_members", 1, group="obs-g")
    status, g = a.get("/api/groups/obs-g")
    assert status == 200 and g["state"] == "Stable" and g["members"] == 1, g
    assert len(g["member_list"]) == 1
    c.close()
    a.wait_value("gateway_consumer_group_members", 0, timeout=15, group="obs-g")

    m = a.metrics()
    assert series(m, "gateway_stream_end_offset", stream=STREAM, partition="0") == 7
    assert series(m, "gateway_stream_end_offset", stream=STREAM, partition="1") == 3
    sizes = [series(m, "gateway_stream_size_bytes", stream=STREAM, partition=p) for p in ("0", "1")]
    assert all(s > 0 for s in sizes), sizes
    assert series(m, "gateway_consumer_group_committed_offset", group="obs-g", stream=STREAM, partition="0") == 5
    assert series(m, "gateway_consumer_group_committed_offset", group="obs-g", stream=STREAM, partition="1") == 3
    assert series(m, "gateway_consumer_group_lag_messages", group="obs-g", stream=STREAM, partition="0") == 2
    assert series(m, "gateway_consumer_group_lag_messages", group="obs-g", stream=STREAM, partition="1") == 0

    # Four more records on partition 1: lag there moves by exactly four.
    produce(kgw, 1, [b"c%d" % i for i in range(4)])
    m = a.metrics()
    assert series(m, "gateway_stream_end_offset", stream=STREAM, partition="1") == 7
    assert series(m, "gateway_consumer_group_lag_messages", group="obs-g", stream=STREAM, partition="1") == 4

    # The admin API says the same.
    status, s = a.get(f"/api/streams/{STREAM}")
    assert status == 200
    assert (s["partition_count"], s["messages"], s["segments"]) == (2, 14, 2)
    assert [(p["partition"], p["start_offset"], p["end_offset"]) for p in s["partitions"]] == [(0, 0, 7), (1, 0, 7)]
    assert [p["size_bytes"] for p in s["partitions"]][0] == sizes[0]
    status, listed = a.get("/api/streams")
    assert status == 200 and [x["name"] for x in listed["streams"]] == [STREAM]
    status, g = a.get("/api/groups/obs-g")
    assert status == 200
    assert (g["state"], g["members"], g["lag"], g["streams"]) == ("Empty", 0, 6, [STREAM])
    assert [(o["partition"], o["committed_offset"], o["end_offset"], o["lag"]) for o in g["offsets"]] == [
        (0, 5, 7, 2), (1, 3, 7, 4)]
    status, groups = a.get("/api/groups")
    assert status == 200 and [(x["name"], x["lag"]) for x in groups["groups"]] == [("obs-g", 6)]
    assert a.get("/api/groups/nobody")[0] == 404
    assert a.get("/api/streams/nothing")[0] == 404

    # The CLI prints the same figures as tables.
    r = cli(kgw, "streams")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "PARTITIONS", "MESSAGES", "BYTES", "SEGMENTS"]
    assert lines[1].split()[:3] == [STREAM, "2", "14"]
    r = cli(kgw, "groups")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[:5] == ["obs-g", "Empty", "0", STREAM, "6"]
    r = cli(kgw, "groups", "show", "obs-g")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[2:]]
    assert rows == [[STREAM, "0", "5", "0", "7", "2"], [STREAM, "1", "3", "0", "7", "4"]]
    r = cli(kgw, "streams", "show", STREAM, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["messages"] == 14


def test_stream_and_group_figures_survive_a_restart(kgw, admin):
    produce(kgw, 0, [b"x"] * 4)
    c = group_consumer(kgw, "obs-restart")
    c.assign([TopicPartition(STREAM, 0)])
    c.commit({TopicPartition(STREAM, 0): OffsetAndMetadata(1, "", -1)})
    c.close()
    kgw.restart()
    wait_for_port(kgw.host, kgw.kafka_port)
    a = admin(kgw)
    assert a.value("gateway_stream_end_offset", stream=STREAM, partition="0") == 4
    assert a.value("gateway_consumer_group_committed_offset", group="obs-restart", stream=STREAM,
                   partition="0") == 1
    assert a.value("gateway_consumer_group_lag_messages", group="obs-restart", stream=STREAM,
                   partition="0") == 3


def test_reset_offsets_refused_with_members_then_consumer_rereads(kgw, admin, cli):
    a = admin(kgw)
    # Partition 0: three records at T0, two a minute later.
    produce(kgw, 0, [b"old0", b"old1", b"old2", b"new0", b"new1"],
            timestamps=[T0, T0, T0, T0 + 60_000, T0 + 60_000])
    produce(kgw, 1, [b"p1-0", b"p1-1"], timestamps=[T0, T0 + 60_000])
    c = group_consumer(kgw, "obs-reset")
    c.subscribe([STREAM])
    assert len(consume_all(c, 7)) == 7
    c.commit()
    a.wait_value("gateway_consumer_group_members", 1, group="obs-reset")

    # A member is joined: refused, as kafka-consumer-groups --reset-offsets is.
    status, body = a.post("/api/groups/obs-reset/reset?to=earliest")
    assert status == 409, body
    assert "active member" in body["error"]
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-earliest")
    assert r.returncode != 0 and "HTTP 409" in r.stderr, (r.stdout, r.stderr)
    c.close()
    a.wait_value("gateway_consumer_group_members", 0, timeout=15, group="obs-reset")
    assert a.value("gateway_consumer_group_lag_messages", group="obs-reset", stream=STREAM, partition="0") == 0

    # A dry run shows the plan and commits nothing.
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-earliest", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("would reset (dry run"), r.stdout
    assert [line.split() for line in r.stdout.splitlines()[2:]] == [[STREAM, "0", "5", "0"], [STREAM, "1", "2", "0"]]
    assert a.value("gateway_consumer_group_committed_offset", group="obs-reset", stream=STREAM, partition="0") == 5

    # To the earliest offsets: everything is lag again, and a consumer re-reads it all.
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-earliest")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[2:]]
    assert rows == [[STREAM, "0", "5", "0"], [STREAM, "1", "2", "0"]]
    assert a.value("gateway_consumer_group_lag_messages", group="obs-reset", stream=STREAM, partition="0") == 5
    c = group_consumer(kgw, "obs-reset")
    c.subscribe([STREAM])
    got = consume_all(c, 7)
    c.commit()
    c.close()
    assert sorted(r.value for r in got) == sorted(
        [b"old0", b"old1", b"old2", b"new0", b"new1", b"p1-0", b"p1-1"])

    # To a datetime between the two batches: the first record at or after it.
    a.wait_value("gateway_consumer_group_members", 0, timeout=15, group="obs-reset")
    status, body = a.post("/api/groups/obs-reset/reset?to=datetime&datetime=2023-11-14T22:13:50Z")
    assert status == 200, body
    assert [(o["partition"], o["offset"]) for o in body["offsets"]] == [(0, 3), (1, 1)]
    c = group_consumer(kgw, "obs-reset")
    c.subscribe([STREAM])
    got = consume_all(c, 3)
    c.commit()
    c.close()
    assert sorted(r.value for r in got) == [b"new0", b"new1", b"p1-1"]

    # To the latest offsets: nothing left; the same with a datetime after every record.
    a.wait_value("gateway_consumer_group_members", 0, timeout=15, group="obs-reset")
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-datetime", "2030-01-01T00:00:00+02:00", "--json")
    assert r.returncode == 0, r.stderr
    assert [o["offset"] for o in json.loads(r.stdout)["offsets"]] == [5, 2]
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-earliest", "--stream", STREAM)
    assert r.returncode == 0, r.stderr
    r = cli(kgw, "groups", "reset", "obs-reset", "--to-latest")
    assert r.returncode == 0, r.stderr
    m = a.metrics()
    for p in ("0", "1"):
        assert series(m, "gateway_consumer_group_lag_messages", group="obs-reset", stream=STREAM, partition=p) == 0

    # Bad requests.
    assert a.post("/api/groups/obs-reset/reset?to=sideways")[0] == 400
    assert a.post("/api/groups/obs-reset/reset?to=datetime&datetime=tomorrow")[0] == 400
    assert a.post("/api/groups/nobody/reset?to=earliest")[0] == 404
    # A group with no offsets yet can be positioned on a named stream.
    status, body = a.post(f"/api/groups/fresh/reset?to=datetime&datetime={T0 + 30_000}&stream={STREAM}")
    assert status == 200, body
    assert [(o["partition"], o["previous_offset"], o["offset"]) for o in body["offsets"]] == [(0, None, 3), (1, None, 1)]


def test_data_dir_use_counts_stream_segments(kgw, admin):
    """gateway_data_dir_used_bytes = the store's bytes (journal, spill) + every partition's
    segment bytes; without a disk limit the usage ratio is of that figure."""
    a = admin(kgw)

    def figures():
        m = a.metrics()
        streams = sum(series(m, "gateway_stream_size_bytes", stream=STREAM, partition=p) for p in ("0", "1"))
        return (series(m, "gateway_data_dir_used_bytes"), series(m, "gateway_store_used_bytes"), streams,
                series(m, "gateway_data_dir_free_bytes"), series(m, "gateway_store_usage_ratio"))

    used, store, streams, free, ratio = figures()
    assert used == store + streams
    payload = 200_000
    produce(kgw, 0, [b"x" * 1000] * (payload // 1000))
    used2, store2, streams2, free2, ratio2 = figures()
    assert streams2 - streams >= payload
    assert used2 == store2 + streams2
    assert used2 - used >= payload
    assert ratio2 == pytest.approx(used2 / (used2 + free2), rel=1e-9)
    status, overview = a.get("/api/overview")
    assert status == 200
    assert overview["data_dir_used_bytes"] == overview["store_used_bytes"] + streams2


def test_stream_appends_are_timed_one_per_produce_batch(kgw, admin):
    a = admin(kgw)
    name = "gateway_stream_append_durable_seconds"
    before = a.value(f"{name}_count") or 0
    p = KafkaProducer(bootstrap_servers=kgw.bootstrap, linger_ms=0)
    for i in range(5):
        # One record per request: each send waits for its acknowledgement.
        p.send(STREAM, value=f"t{i}".encode(), partition=i % 2).get(timeout=10)
    p.close()
    m = a.metrics()
    assert series(m, f"{name}_count") == before + 5
    assert series(m, f"{name}_bucket", le="+Inf") == before + 5
    assert series(m, f"{name}_sum") > 0
