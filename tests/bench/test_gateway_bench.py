"""`gateway-bench` against the gateway: every driver of the bench tool (its STOMP client,
lapin and amqprs for AMQP 0-9-1, rumqttc for MQTT) completes a small run with every message
delivered exactly once, so that `bench/compare` measures working clients. The speeds are not
checked here (benchmarks live in bench/compare, never in tests)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest


def bench_binary() -> Path:
    env = os.environ.get("GATEWAY_BENCH_BIN")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    return root / "target" / "debug" / "gateway-bench"


def bench_json(*args: str) -> tuple[int, dict, str]:
    """Runs the bench tool; returns its exit code, its JSON line and the tail of its stderr."""
    binary = bench_binary()
    assert binary.exists(), f"{binary} is missing: cargo build -p gateway-bench (scripts/test does)"
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    line = next((l for l in reversed(r.stdout.splitlines()) if l.startswith("{")), None)
    assert line is not None, f"no JSON line (exit {r.returncode}): {r.stderr[-2000:]}"
    return r.returncode, json.loads(line), r.stderr[-2000:]


def run_bench(*args: str) -> dict:
    code, result, stderr = bench_json(*args)
    assert code == 0 and result["ok"], f"run failed: {result} {stderr}"
    return result


def port_of(gateway, kind: str) -> str:
    return str({"stomp": gateway.stomp_port, "amqp": gateway.amqp_port, "amqprs": gateway.amqp_port,
                "mqtt": gateway.mqtt_port}[kind])


@pytest.mark.parametrize(
    "kind,args,deliveries",
    [
        ("stomp", ["--count", "2000"], 2000),
        ("stomp", ["--count", "500", "--persistent", "--window", "1"], 500),
        ("amqp", ["--count", "2000", "--persistent", "--window", "100", "--ack", "individual"], 2000),
        ("amqp", ["--count", "1000", "--fanout", "--consumers", "2"], 2000),
        ("amqprs", ["--count", "2000"], 2000),
        ("amqprs", ["--count", "2000", "--persistent", "--ack", "client", "--prefetch", "100"], 2000),
        ("amqprs", ["--count", "1000", "--fanout", "--consumers", "2"], 2000),
        ("mqtt", ["--count", "2000", "--qos", "1", "--window", "100"], 2000),
    ],
    ids=["stomp", "stomp-sync", "amqp-confirms", "amqp-fanout", "amqprs", "amqprs-client-ack",
         "amqprs-fanout", "mqtt-qos1"],
)
def test_every_driver_delivers_exactly_once(gateway, kind, args, deliveries):
    result = run_bench(kind, "--port", port_of(gateway, kind), *args)
    assert result["deliveries"] == deliveries
    assert (result["lost"], result["duplicates"], result["unexpected"]) == (0, 0, 0)


def test_amqprs_refuses_publisher_confirms(gateway):
    """amqprs reports confirms through a callback: the driver says so instead of measuring
    something else."""
    code, result, _ = bench_json("amqprs", "--port", str(gateway.amqp_port), "--count", "10",
                                 "--window", "5")
    assert code != 0
    assert "publisher confirms" in result["error"]
