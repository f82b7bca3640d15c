"""The Kafka endpoint driven by confluent-kafka 2.16 (librdkafka 2.16, much newer than Debian's
kcat): an idempotent producer with every codec, a consumer group that commits, and offsets by
timestamp."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def test_idempotent_producer_every_codec_group_commit_and_offsets_for_times(kafka_gateway):
    gw = kafka_gateway()
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    for future in admin.create_topics([NewTopic("ledger", num_partitions=2, replication_factor=1)]).values():
        assert future.result() is None
    sent = []
    start = int(time.time() * 1000)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        p = Producer({"bootstrap.servers": gw.bootstrap, "compression.type": codec,
                      "enable.idempotence": True})
        for i in range(10):
            value = f"{codec} {i} ".encode() * 20
            p.produce("ledger", key=f"{codec}-{i}".encode(), value=value, headers=[("codec", codec.encode())])
            sent.append((f"{codec}-{i}".encode(), value))
        assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": "ledger-readers",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["ledger"])
    got = []
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < len(sent):
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is None, m.error()
            got.append(m)
    assert sorted((m.key(), m.value()) for m in got) == sorted(sent)
    assert all(m.headers() == [("codec", m.key().split(b"-")[0])] for m in got)
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition("ledger", 0), TopicPartition("ledger", 1)], timeout=10)
    assert sum(tp.offset for tp in committed) == len(sent)
    found = c.offsets_for_times([TopicPartition("ledger", 0, start - 60_000)], timeout=10)
    assert found[0].offset == 0
    c.close()


def test_describe_configs_gives_each_topic_its_retention(kafka_gateway):
    """DescribeConfigs for retention: set values come back with their source (topic), unset
    ones as Kafka's defaults (-1, default source)."""
    from confluent_kafka.admin import ConfigResource, ConfigSource

    gw = kafka_gateway(extra_toml="""
[[streams]]
name = "kept"
partitions = 1
retention_ms = 86400000
retention_bytes = 1073741824
""")
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    created = admin.create_topics([NewTopic("plain", num_partitions=1, replication_factor=1,
                                            config={"retention.ms": "60000"})])
    assert created["plain"].result(15) is None
    resources = [ConfigResource("topic", "kept"), ConfigResource("topic", "plain")]
    got = {r.name: f.result(15) for r, f in admin.describe_configs(resources).items()}
    kept, plain = got["kept"], got["plain"]
    assert kept["retention.ms"].value == "86400000"
    assert kept["retention.bytes"].value == "1073741824"
    assert kept["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert plain["retention.ms"].value == "60000"
    assert plain["retention.bytes"].value == "-1"
    assert plain["retention.bytes"].is_default
    assert plain["cleanup.policy"].value == "delete"
