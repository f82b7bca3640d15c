"""The Kafka endpoint driven by kcat (librdkafka 2.x): produce and consume with keys, headers
and every compression codec, consumer groups that split partitions, commit, and resume after
a gateway restart with no gap and no duplicate."""

from __future__ import annotations

import pytest

from gwtest.kafka import json_records, restart, wait_until


def produce(kcat, gw, topic, lines, *args):
    kcat(gw, "-P", "-t", topic, *args, input="".join(f"{line}\n" for line in lines))


def consume_all(kcat, gw, topic, *args):
    return json_records(kcat(gw, "-C", "-t", topic, "-e", "-J", *args).text)


def test_produce_and_consume_keys_and_headers(kafka_gateway, kcat):
    gw = kafka_gateway({"log": {"default_partitions": 3}})
    lines = [f"customer-{i % 5}:order {i} ✓" for i in range(40)]
    produce(kcat, gw, "orders", lines, "-K:", "-H", "source=kcat", "-H", "trace=abc")
    records = consume_all(kcat, gw, "orders")
    assert len(records) == 40
    got = sorted((r["key"], r["payload"]) for r in records)
    assert got == sorted(tuple(line.split(":", 1)) for line in lines)
    for r in records:
        assert r["headers"] == ["source", "kcat", "trace", "abc"]
    # Keyed records: one key, one partition (Kafka's murmur2 partitioner), offsets dense.
    by_key = {}
    for r in records:
        by_key.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(p) == 1 for p in by_key.values())
    for p in range(3):
        offsets = sorted(r["offset"] for r in records if r["partition"] == p)
        assert offsets == list(range(len(offsets)))
    meta = kcat(gw, "-L", "-t", "orders").text
    assert 'topic "orders" with 3 partitions' in meta


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_each_compression_codec(kafka_gateway, kcat, codec):
    gw = kafka_gateway()
    lines = [f"{codec} message {i} " + "x" * (i % 50) for i in range(300)]
    produce(kcat, gw, f"compressed-{codec}", lines, "-z", codec)
    records = consume_all(kcat, gw, f"compressed-{codec}")
    assert [r["payload"] for r in records] == lines
    assert [r["offset"] for r in records] == list(range(300))


def test_fetch_from_the_middle_of_a_batch(kafka_gateway, kcat):
    gw = kafka_gateway()
    # One kcat run sends these as one batch, stored as one log batch.
    produce(kcat, gw, "middle", [f"m{i}" for i in range(20)])
    records = consume_all(kcat, gw, "middle", "-o", "7")
    assert [r["payload"] for r in records] == [f"m{i}" for i in range(7, 20)]
    assert [r["offset"] for r in records] == list(range(7, 20))


def test_group_of_two_splits_partitions_commits_and_resumes_after_restart(
    kafka_gateway, kcat, kcat_member
):
    gw = kafka_gateway(extra_toml='[[streams]]\nname = "orders"\npartitions = 4\n')
    a = kcat_member(gw, "billing", "orders")
    b = kcat_member(gw, "billing", "orders")

    def split():
        pa, pb = a.assignment, b.assignment
        return pa is not None and pb is not None and not (pa & pb) and pa | pb == {0, 1, 2, 3}

    wait_until(split, 40, "both members to share the 4 partitions")
    first = [f"c{i % 7}:first {i}" for i in range(60)]
    produce(kcat, gw, "orders", first, "-K:")
    wait_until(lambda: len(a.records()) + len(b.records()) >= 60, 30, "60 records consumed")
    assert {r["partition"] for r in a.records()} <= a.assignment
    assert {r["partition"] for r in b.records()} <= b.assignment
    a.stop()
    b.stop()
    seen = a.records() + b.records()
    assert sorted(r["payload"] for r in seen) == sorted(line.split(":", 1)[1] for line in first)

    restart(gw)
    second = [f"c{i % 7}:second {i}" for i in range(30)]
    produce(kcat, gw, "orders", second, "-K:")
    c = kcat_member(gw, "billing", "orders")
    wait_until(lambda: len(c.records()) >= 30, 40, "the resumed member to get the new records")
    # Give a duplicate the chance to show up before judging.
    wait_until(lambda: c.assignment == {0, 1, 2, 3}, 10, "the full assignment")
    c.stop()
    resumed = sorted(r["payload"] for r in c.records())
    assert resumed == sorted(line.split(":", 1)[1] for line in second), "gap or duplicate"


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_levels(kafka_gateway, kcat, acks):
    gw = kafka_gateway()
    produce(kcat, gw, "acked", [f"a{i}" for i in range(25)], "-X", f"acks={acks}")
    # With acks=0 no response may be sent; librdkafka would report one for an unknown request.
    records = consume_all(kcat, gw, "acked")
    assert [r["payload"] for r in records] == [f"a{i}" for i in range(25)]


def test_list_offsets_earliest_latest_and_by_time(kafka_gateway, kcat):
    gw = kafka_gateway()
    produce(kcat, gw, "timed", [f"t{i}" for i in range(10)])
    records = consume_all(kcat, gw, "timed")
    ts = records[4]["ts"]
    # -o s@<ms>: start at the first record at or after the timestamp (ListOffsets by time).
    later = consume_all(kcat, gw, "timed", "-o", f"s@{ts}")
    assert later[0]["offset"] <= 4 and later[-1]["offset"] == 9
    assert all(r["ts"] >= ts for r in later)
    assert [r["offset"] for r in consume_all(kcat, gw, "timed", "-o", "beginning")] == list(range(10))
    assert consume_all(kcat, gw, "timed", "-o", "end") == []
    assert [r["payload"] for r in consume_all(kcat, gw, "timed", "-o", "-3")] == ["t7", "t8", "t9"]


def test_a_member_that_dies_is_expired_and_the_other_takes_over(kafka_gateway, kcat, kcat_member):
    gw = kafka_gateway(extra_toml='[[streams]]\nname = "work"\npartitions = 2\n')
    fast = ("-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500")
    a = kcat_member(gw, "crew", "work", fast)
    b = kcat_member(gw, "crew", "work", fast)
    wait_until(lambda: a.assignment == {0} and b.assignment == {1}
               or a.assignment == {1} and b.assignment == {0}, 40, "a 1+1 split")
    b.proc.kill()  # no LeaveGroup: only the session timeout can tell
    b.proc.wait()
    wait_until(lambda: a.assignment == {0, 1}, 30, "the survivor to own both partitions")
    produce(kcat, gw, "work", [f"p{p}:item" for p in range(6)], "-K:")
    wait_until(lambda: len(a.records()) >= 6, 20, "the survivor to consume everything")
    assert {r["partition"] for r in a.records()} == {0, 1}
