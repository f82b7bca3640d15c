#!/usr/bin/env python3
"""Captures the Kafka request frames real clients send, as golden bytes for the codec tests.

Starts the gateway (GATEWAY_BIN, default target/debug/gateway) on private ports with its Kafka
listener advertising a recording proxy's port, so that every client connection, bootstrap and
later ones, passes through the proxy. The proxy writes the first request of each API key and
version from each client to `<client>_<api>_v<version>.bin` in this directory (the frame
without its 4-byte size prefix), then forwards it.

Clients: kcat (librdkafka 2.0.2 on Debian 12) producing with every compression codec,
consuming, and in a consumer group; kafka-python 3.0.12 producing (idempotent, gzip),
consuming in a group with commits, offsets by time, and topic administration. The SASL frames
come from `capture_sasl.py` (same proxy).

Run from the repository root:  .venv/bin/python codecs/testdata/kafka/capture.py
(needs kcat and kafka-python, see scripts/install-test-deps).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
API_NAMES = {
    0: "produce", 1: "fetch", 2: "list-offsets", 3: "metadata", 8: "offset-commit",
    9: "offset-fetch", 10: "find-coordinator", 11: "join-group", 12: "heartbeat",
    13: "leave-group", 14: "sync-group", 18: "api-versions", 19: "create-topics",
    15: "describe-groups", 16: "list-groups", 20: "delete-topics", 22: "init-producer-id",
    32: "describe-configs", 17: "sasl-handshake", 36: "sasl-authenticate",
}
label = "unknown"
seen: set[tuple[str, int, int]] = set()
lock = threading.Lock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def pump_requests(client, server):
    while True:
        head = exact(client, 4)
        if head is None:
            break
        body = exact(client, struct.unpack(">i", head)[0])
        if body is None:
            break
        key, version = struct.unpack(">hh", body[:4])
        with lock:
            tag = (label, key, version)
            # "client+codec" labels record only Produce frames (one per compression codec),
            # "client+mechanism" labels only the SASL frames.
            wanted = "+" not in label or key == 0 if "sasl" not in label else key in (17, 36)
            if tag not in seen and key in API_NAMES and wanted:
                seen.add(tag)
                (HERE / f"{label}_{API_NAMES[key]}_v{version}.bin").write_bytes(body)
        server.sendall(head + body)
    server.close()


def pump_responses(server, client):
    try:
        while True:
            data = server.recv(65536)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
    client.close()


def proxy(listen_port, target_port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen()
    while True:
        client, _ = ls.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=pump_requests, args=(client, server), daemon=True).start()
        threading.Thread(target=pump_responses, args=(server, client), daemon=True).start()


def kcat(bootstrap, *args, input=None):
    subprocess.run(["kcat", "-b", bootstrap, *args], input=input, capture_output=True, timeout=60,
                   check=True)


def main():
    global label
    gw_port, proxy_port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="kafka-capture-"))
    (work / "gw.toml").write_text(
        f'[server]\ndata_dir = "{work / "data"}"\n'
        f'[listeners.stomp]\nbind = "127.0.0.1:{free_port()}"\n'
        f'[listeners.mqtt]\nbind = "127.0.0.1:{free_port()}"\n'
        f'[listeners.kafka]\nbind = "127.0.0.1:{gw_port}"\nadvertised_port = {proxy_port}\n'
        f'[log]\ndefault_partitions = 2\n'
    )
    binary = os.environ.get("GATEWAY_BIN", str(ROOT / "target/debug/gateway"))
    gw = subprocess.Popen([binary, "--config", str(work / "gw.toml")],
                          stdout=open(work / "gw.log", "wb"), stderr=subprocess.STDOUT)
    try:
        threading.Thread(target=proxy, args=(proxy_port, gw_port), daemon=True).start()
        time.sleep(1.0)
        bootstrap = f"127.0.0.1:{proxy_port}"

        for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
            label = "kcat-1.7.1" if codec == "none" else f"kcat-1.7.1+{codec}"
            kcat(bootstrap, "-P", "-t", f"golden-{codec}", "-z", codec, "-K:", "-H", "h=v",
                 input=b"key-1:" + b"value one " * 30 + b"\nkey-2:" + b"value two " * 30 + b"\n")
        label = "kcat-1.7.1"
        kcat(bootstrap, "-C", "-t", "golden-gzip", "-e", "-o", "1")
        kcat(bootstrap, "-C", "-t", "golden-gzip", "-e", "-o", "s@0")
        group = subprocess.Popen(["kcat", "-b", bootstrap, "-G", "golden", "-X",
                                  "auto.offset.reset=earliest", "-X",
                                  "auto.commit.interval.ms=500", "golden-none"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)
        group.terminate()
        group.wait(timeout=20)
        kcat(bootstrap, "-L")

        label = "kafka-python-3.0.12"
        from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("golden-py", 2, 1, topic_configs={"retention.ms": "60000"})])
        admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "golden-py")])
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
        p.send("golden-py", key=b"k", value=b"v" * 300, headers=[("h", b"x")], timestamp_ms=1_700_000_000_000)
        p.flush()
        p.close()
        c = KafkaConsumer("golden-py", bootstrap_servers=bootstrap, group_id="golden-py-group",
                          auto_offset_reset="earliest", consumer_timeout_ms=3000,
                          enable_auto_commit=False)
        list(c)
        tp = TopicPartition("golden-py", 0)
        c.commit({tp: OffsetAndMetadata(1, "meta", -1)})
        c.committed(tp)
        c.offsets_for_times({tp: 1_700_000_000_000})
        admin.list_groups()
        admin.describe_groups(["golden-py-group"])
        c.close()
        admin.delete_topics(["golden-py"])
        admin.close()
    finally:
        gw.terminate()
        gw.wait(timeout=20)
    for f in sorted(HERE.glob("*.bin")):
        print(f.name, f.stat().st_size)


if __name__ == "__main__":
    sys.exit(main())
