"""Retention seen from outside: with tiny segments and a short check interval, the gateway
deletes old sealed segments by size and by age; Kafka clients see the log start move
(ListOffsets earliest, a replay from the beginning), and a group that committed before the
log start lags from the log start (lag = high watermark - max(committed, log start))."""

from __future__ import annotations

import json
import time
import urllib.request

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from gwtest.kafka import json_records, wait_until

CONFIG = """
[log]
segment_bytes = 1024
retention_check_interval_ms = 200

[[streams]]
name = "by-size"
partitions = 1
retention_bytes = 4096

[[streams]]
name = "by-age"
partitions = 1
retention_ms = 1500

[[streams]]
name = "kept"
partitions = 1
"""


def _admin(gw, path: str) -> dict:
    with urllib.request.urlopen(f"http://{gw.host}:{gw.admin_port}{path}", timeout=10) as r:
        return json.loads(r.read())


def _earliest(gw, topic: str) -> int:
    k = KafkaConsumer(bootstrap_servers=gw.bootstrap)
    tp = TopicPartition(topic, 0)
    try:
        return k.beginning_offsets([tp])[tp]
    finally:
        k.close()


def test_retention_deletes_old_segments_by_size_and_age(kafka_gateway, kcat):
    gw = kafka_gateway(extra_toml=CONFIG)
    lines = "".join(f"record {i:04d} " + "z" * 90 + "\n" for i in range(200))
    # Small batches: a batch is appended whole to one segment, so each must be < 1 KiB.
    small = ("-X", "batch.num.messages=5")
    # A group commits offset 1 on by-size before retention runs past it.
    kcat(gw, "-P", "-t", "by-size", *small, input=lines)
    k = KafkaConsumer(bootstrap_servers=gw.bootstrap, group_id="laggard",
                      enable_auto_commit=False)
    k.commit({TopicPartition("by-size", 0): OffsetAndMetadata(1, "", -1)})
    k.close()
    kcat(gw, "-P", "-t", "by-age", *small, input=lines)
    kcat(gw, "-P", "-t", "kept", *small, input=lines)

    # By size: the oldest sealed segments go while at least 4 KiB remains.
    wait_until(lambda: _earliest(gw, "by-size") > 1, 20, "retention by size to delete segments")
    wait_until(lambda: "log retention deleted segments" in gw.log_text(), 5, "the retention log")
    start = _earliest(gw, "by-size")
    stream = _admin(gw, "/api/streams/by-size")
    assert 4096 <= stream["size_bytes"] < 200 * 100, stream
    assert stream["partitions"][0]["start_offset"] == start
    replay = json_records(kcat(gw, "-C", "-t", "by-size", "-o", "beginning", "-e", "-J").text)
    assert [r["offset"] for r in replay] == list(range(start, 200)), "replay starts at log start"
    assert replay[0]["payload"].startswith(f"record {start:04d} ")
    # The group committed before the log start: its lag counts from the log start.
    group = _admin(gw, "/api/groups/laggard")
    assert group["lag"] == 200 - start, group

    # By age: once the records are older than 1.5 s, every sealed segment goes; the active
    # segment (the newest records) stays.
    wait_until(lambda: _earliest(gw, "by-age") > 0, 20, "retention by age to delete segments")
    age_start = _earliest(gw, "by-age")
    assert 0 < age_start < 200
    left = json_records(kcat(gw, "-C", "-t", "by-age", "-o", "beginning", "-e", "-J").text)
    assert [r["offset"] for r in left] == list(range(age_start, 200))

    # Without retention nothing is deleted.
    time.sleep(0.5)
    assert _earliest(gw, "kept") == 0
    assert len(json_records(kcat(gw, "-C", "-t", "kept", "-e", "-J").text)) == 200
