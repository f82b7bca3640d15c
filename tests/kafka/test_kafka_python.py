"""The Kafka endpoint driven by kafka-python: produce with keys, headers and compression,
replay from the beginning and from a timestamp, committed offsets with their metadata,
consumer groups, and topic administration."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from gwtest.kafka import restart, wait_until


def producer(gw, **kw):
    return KafkaProducer(bootstrap_servers=gw.bootstrap, **kw)


def consumer(gw, **kw):
    kw.setdefault("consumer_timeout_ms", 3000)
    kw.setdefault("auto_offset_reset", "earliest")
    return KafkaConsumer(bootstrap_servers=gw.bootstrap, **kw)


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_produce_consume_with_headers_and_compression(kafka_gateway, codec):
    gw = kafka_gateway()
    p = producer(gw, compression_type=codec)
    for i in range(50):
        p.send("events", key=f"k{i % 3}".encode(), value=f"v{i} 🚀".encode(),
               headers=[("n", str(i).encode()), ("empty", b"")])
    p.flush(10)
    p.close()
    c = consumer(gw)
    c.assign([TopicPartition("events", 0)])
    got = list(c)
    c.close()
    assert [m.value.decode() for m in got] == [f"v{i} 🚀" for i in range(50)]
    assert [m.key for m in got] == [f"k{i % 3}".encode() for i in range(50)]
    assert [m.headers for m in got] == [[("n", str(i).encode()), ("empty", b"")] for i in range(50)]
    assert [m.offset for m in got] == list(range(50))


def test_replay_from_beginning_and_from_timestamp(kafka_gateway):
    gw = kafka_gateway()
    p = producer(gw)
    base = int(time.time() * 1000) - 100_000
    for i in range(20):
        p.send("replay", value=b"r%d" % i, timestamp_ms=base + i * 1000, partition=0)
    p.flush(10)
    p.close()
    tp = TopicPartition("replay", 0)
    c = consumer(gw)
    c.assign([tp])
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: 20}
    found = c.offsets_for_times({tp: base + 12_500})[tp]
    assert (found.offset, found.timestamp) == (13, base + 13_000)
    assert c.offsets_for_times({tp: base + 1_000_000})[tp] is None
    c.seek(tp, found.offset)
    assert [m.value for m in c] == [b"r%d" % i for i in range(13, 20)]
    c.seek_to_beginning(tp)
    replayed = list(c)
    assert [m.value for m in replayed] == [b"r%d" % i for i in range(20)]
    assert [m.timestamp for m in replayed] == [base + i * 1000 for i in range(20)]
    c.close()


def test_committed_offsets_keep_their_metadata_across_restart(kafka_gateway):
    gw = kafka_gateway()
    p = producer(gw)
    for i in range(10):
        p.send("ledger", value=b"x", partition=0)
    p.flush(10)
    p.close()
    tp = TopicPartition("ledger", 0)
    c = consumer(gw, group_id="auditors", enable_auto_commit=False)
    c.assign([tp])
    c.commit({tp: OffsetAndMetadata(7, "checkpoint-7", -1)})
    assert c.committed(tp) == 7
    assert c.committed(tp, metadata=True).metadata == "checkpoint-7"
    c.close()
    restart(gw)
    c = consumer(gw, group_id="auditors", enable_auto_commit=False)
    c.assign([tp])
    meta = c.committed(tp, metadata=True)
    assert (meta.offset, meta.metadata) == (7, "checkpoint-7")
    assert [m.offset for m in c] == [7, 8, 9]
    c.close()


def test_two_group_members_split_partitions(kafka_gateway):
    """Two members, each polled by its own thread as two processes would be (a consumer's
    poll blocks while its group rebalances, so one thread cannot drive both)."""
    import threading

    gw = kafka_gateway(extra_toml='[[streams]]\nname = "jobs"\npartitions = 4\n')
    stop = threading.Event()
    got: list[list] = [[], []]
    assignments: list[set] = [set(), set()]
    errors: list[BaseException] = []

    def member(i: int):
        try:
            c = consumer(gw, group_id="workers", consumer_timeout_ms=500)
            c.subscribe(["jobs"])
            while not stop.is_set():
                for batch in c.poll(timeout_ms=200).values():
                    got[i].extend(batch)
                assignments[i] = {tp.partition for tp in c.assignment()}
            c.commit()
            c.close()
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(len(a) == 2 for a in assignments)
                   and assignments[0].isdisjoint(assignments[1]), 40,
                   "two members with two partitions each")
        p = producer(gw)
        for i in range(40):
            p.send("jobs", value=b"job%d" % i, partition=i % 4)
        p.flush(10)
        p.close()
        wait_until(lambda: len(got[0]) + len(got[1]) >= 40, 30, "40 jobs consumed")
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not errors, errors
    for i in range(2):
        assert {r.partition for r in got[i]} <= assignments[i]
    assert sorted(r.value for r in got[0] + got[1]) == sorted(b"job%d" % i for i in range(40))


def test_topic_administration(kafka_gateway):
    gw = kafka_gateway({"log": {"auto_create_streams": False}})
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    admin.create_topics([NewTopic("audit", 3, 1, topic_configs={"retention.ms": "3600000"})])
    assert "audit" in admin.list_topics()
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "audit")])
    assert "3600000" in str(configs)
    with pytest.raises(Exception, match="TopicAlreadyExists"):
        admin.create_topics([NewTopic("audit", 3, 1)])
    with pytest.raises(Exception, match="InvalidReplicationFactor"):
        admin.create_topics([NewTopic("replicated", 3, 3)])
    admin.delete_topics(["audit"])
    assert "audit" not in admin.list_topics()
    # Auto-creation is off: asking for a topic does not create it.
    c = consumer(gw)
    assert not c.partitions_for_topic("nowhere")
    c.close()
    assert "nowhere" not in admin.list_topics()
    admin.close()


@pytest.mark.parametrize("api_version", [(0, 10, 1), (0, 9)], ids=["magic1", "magic0"])
def test_legacy_message_formats_are_accepted_and_down_converted(kafka_gateway, api_version):
    """A client pinned to an old broker version produces message sets v1/v0 (Produce v2/v1,
    gzip-wrapped) and fetches with Fetch < 4, which gets message format v1 back."""
    gw = kafka_gateway()
    p = producer(gw, api_version=api_version, compression_type="gzip")
    for i in range(5):
        p.send("legacy", key=b"k", value=b"old %d" % i, partition=0)
    p.flush(10)
    p.close()
    for reader_version in (api_version, None):
        c = consumer(gw, api_version=reader_version) if reader_version else consumer(gw)
        c.assign([TopicPartition("legacy", 0)])
        got = list(c)
        c.close()
        assert [(m.offset, m.key, m.value) for m in got] == [(i, b"k", b"old %d" % i) for i in range(5)]


def test_admin_lists_and_describes_groups(kafka_gateway):
    gw = kafka_gateway(extra_toml='[[streams]]\nname = "views"\npartitions = 2\n')
    c = consumer(gw, group_id="viewers", consumer_timeout_ms=500, client_id="viewer-1")
    c.subscribe(["views"])

    def assigned():
        c.poll(timeout_ms=200)
        return len(c.assignment()) == 2

    wait_until(assigned, 30, "the member to own both partitions")
    admin = KafkaAdminClient(bootstrap_servers=gw.bootstrap)
    listed = {g["group_id"]: g for g in admin.list_groups()}
    assert listed["viewers"]["protocol_type"] == "consumer"
    described = admin.describe_groups(["viewers"])["viewers"]
    assert described["error"] is None
    assert described["group_state"] == "Stable"
    assert described["protocol_type"] == "consumer"
    assert [m["client_id"] for m in described["members"]] == ["viewer-1"]
    assert described["members"][0]["client_host"] == "/127.0.0.1"
    c.commit({TopicPartition("views", 0): OffsetAndMetadata(0, "", -1)})
    c.close()
    # Without members, a group that has offsets is Empty; an unknown one is Dead.
    wait_until(lambda: admin.describe_groups(["viewers"])["viewers"]["group_state"] == "Empty",
               15, "the group to become empty")
    assert "viewers" in {g["group_id"] for g in admin.list_groups()}
    assert admin.describe_groups(["nobody"])["nobody"]["group_state"] == "Dead"
    admin.close()


def test_null_value_tombstone_is_kept_apart_from_empty_value(kafka_gateway):
    # A null value (a tombstone: "delete this key") and an empty value are different records for
    # Kafka clients; both survive the log and a gateway restart.
    gw = kafka_gateway()
    p = producer(gw)
    p.send("tombstones", key=b"deleted", value=None, partition=0)
    p.send("tombstones", key=b"blank", value=b"", partition=0)
    p.send("tombstones", key=b"kept", value=b"v", partition=0)
    p.flush(10)
    p.close()
    restart(gw)
    tp = TopicPartition("tombstones", 0)
    c = consumer(gw)
    c.assign([tp])
    got = [(m.key, m.value) for m in c]
    c.close()
    assert got == [(b"deleted", None), (b"blank", b""), (b"kept", b"v")]


def test_a_member_that_leaves_hands_its_partitions_to_the_survivor_at_once(kafka_gateway):
    """LeaveGroup: with a 30 s session timeout, a member that closes (kafka-python sends
    LeaveGroup) makes the group rebalance well before its session could expire, and the
    survivor gets every partition."""
    import threading

    gw = kafka_gateway(extra_toml='[[streams]]\nname = "tasks"\npartitions = 4\n')
    stops = [threading.Event(), threading.Event()]
    assignments: list[set] = [set(), set()]
    errors: list[BaseException] = []

    def member(i: int):
        try:
            c = consumer(gw, group_id="leavers", session_timeout_ms=30_000,
                         heartbeat_interval_ms=1_000)
            c.subscribe(["tasks"])
            while not stops[i].is_set():
                c.poll(timeout_ms=200)
                assignments[i] = {tp.partition for tp in c.assignment()}
            c.close()  # LeaveGroup
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(len(a) == 2 for a in assignments)
                   and assignments[0].isdisjoint(assignments[1]), 40,
                   "two members with two partitions each")
        stops[1].set()
        threads[1].join(15)
        # Within 20 s, before the 30 s session could expire: the LeaveGroup did it.
        wait_until(lambda: assignments[0] == {0, 1, 2, 3}, 20, "the survivor to take all four")
    finally:
        for s in stops:
            s.set()
        for t in threads:
            t.join(15)
    assert not errors, errors
