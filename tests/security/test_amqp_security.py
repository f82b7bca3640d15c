"""AMQP 0-9-1 authentication against the real gateway with pika: the same users and loopback rules
as STOMP and MQTT (docs/security.md); a refused login is `connection.close` 403 ACCESS_REFUSED,
as RabbitMQ answers it."""

from __future__ import annotations

import pika
import pytest

from gwtest.amqp import pika_connection
from gwtest.security import security_toml

USERS = {"alice": ("s3cret", ["admins"])}


def connect(gw, user: str, password: str):
    return pika_connection(
        gw,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
    )


def test_loopback_default_admits_guest_and_any_name_but_not_a_wrong_guest_password(gateway):
    for user, password in [("guest", "guest"), ("someone", "anything")]:
        conn = connect(gateway, user, password)
        ch = conn.channel()
        ch.queue_declare("sec.default")
        conn.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
        connect(gateway, "guest", "wrong")


def test_configured_users_are_checked_and_others_refused(make_gateway):
    gw = make_gateway(extra_toml=security_toml(users=USERS))
    conn = connect(gw, "alice", "s3cret")
    ch = conn.channel()
    ch.queue_declare("sec.users")
    ch.basic_publish("", "sec.users", b"hello")
    method, _, body = ch.basic_get("sec.users", auto_ack=True)
    assert method is not None and body == b"hello"
    conn.close()
    for user, password in [("alice", "wrong"), ("mallory", "s3cret"), ("guest", "guest")]:
        with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403.*ACCESS_REFUSED"):
            connect(gw, user, password)
    # The refusals do not disturb anyone else.
    conn = connect(gw, "alice", "s3cret")
    assert conn.is_open
    conn.close()
    log = gw.log_path.read_text()
    assert "s3cret" not in log
