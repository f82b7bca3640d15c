"""All 14 basic properties and a headers table with every field type pika writes (it has no float
writer) round trip
AMQP -> AMQP unchanged; so does a table with every type lapin writes (published by the
`lapin_probe` example, read by pika); the mapping to STOMP/MQTT is in test_cross_protocol.py."""

from __future__ import annotations

import datetime
import decimal
import os
import subprocess
from pathlib import Path

import pika
import pytest

from gwtest.gateway import gateway_binary


def lapin_probe() -> Path:
    """The `lapin_probe` example: $LAPIN_PROBE_BIN, else the debug build beside the release
    gateway (`cargo build -p gateway --example lapin_probe`, which ./scripts/test runs)."""
    raw = os.environ.get("LAPIN_PROBE_BIN")
    path = Path(raw) if raw else gateway_binary().parent.parent / "debug" / "examples" / "lapin_probe"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"lapin_probe not found at {path}: run `cargo build -p gateway --example lapin_probe` "
                    f"(./scripts/test does) or set LAPIN_PROBE_BIN")
    return path


def test_all_basic_properties_and_headers_round_trip(amqp):
    ch = amqp().channel()
    ch.queue_declare("props")
    headers = {
        "string": "text ü 𝄞",
        "bytes": b"\x00\x01\xff",
        "int": 42,
        "negative": -7,
        "long": 2**40,
        "bool": True,
        "decimal": decimal.Decimal("12.34"),
        "timestamp": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        "table": {"nested": "yes", "deeper": {"n": 1}},
        "array": [1, "two", {"three": 3}],
        "void": None,
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-1",
        reply_to="replies",
        expiration="600000",
        message_id="msg-1",
        timestamp=1_700_000_000,
        type="order.created",
        user_id="guest",
        app_id="shop",
        cluster_id="c1",
    )
    ch.basic_publish("", "props", b"{}", props)
    method, got, body = ch.basic_get("props", auto_ack=True)
    assert body == b"{}"
    for name in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
                 "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
                 "cluster_id"):
        assert getattr(got, name) == getattr(props, name), name
    assert got.headers == headers


def test_user_id_must_match_the_login(amqp):
    import pytest
    from pika.exceptions import ChannelClosedByBroker

    ch = amqp().channel()
    ch.basic_publish("", "x", b"x", pika.BasicProperties(user_id="somebody-else"))
    with pytest.raises(ChannelClosedByBroker) as err:
        ch.queue_declare("y")
    assert err.value.reply_code == 406


def test_absent_properties_stay_absent(amqp):
    ch = amqp().channel()
    ch.queue_declare("bare")
    ch.basic_publish("", "bare", b"x")
    _, got, _ = ch.basic_get("bare", auto_ack=True)
    assert got.delivery_mode is None and got.headers is None and got.message_id is None


def test_every_field_type_lapin_writes_reaches_pika(gateway, amqp):
    """lapin writes all 17 value types (RabbitMQ's letters t b B s u I i l f d D S A T F x V);
    the gateway keeps the table as sent and pika reads each value back (pika reads f / d as
    integers, so the probe's floats are integral)."""
    ch = amqp().channel()
    ch.queue_declare("from-lapin")
    run = subprocess.run([str(lapin_probe()), str(gateway.amqp_port), "publish-every-type", "from-lapin"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.strip() == "OK", run.stderr
    _, props, body = ch.basic_get("from-lapin", auto_ack=True)
    assert body == b"every type"
    assert props.headers == {
        "Boolean": True,
        "ShortShortInt": -100,
        "ShortShortUInt": 200,
        "ShortInt": -30_000,
        "ShortUInt": 60_000,
        "LongInt": -2_000_000_000,
        "LongUInt": 4_000_000_000,
        "LongLongInt": -9_000_000_000_000,
        "Float": 1_048_577,
        "Double": 1_099_511_627_779,
        "DecimalValue": decimal.Decimal("123.45"),
        "LongString": "text \U0001F600",
        "FieldArray": [1, "two", [False]],
        "Timestamp": datetime.datetime.fromtimestamp(1_700_000_000, datetime.timezone.utc),
        "FieldTable": {"inner": "deep", "n": -7},
        "ByteArray": b"\x00\x01\xfe\xff",
        "Void": None,
    }
