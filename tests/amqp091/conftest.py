"""Fixtures for the AMQP 0-9-1 black-box tests (pika 1.4.4, raw sockets, stomp.py, paho-mqtt).

- `gateway`: a started gateway (the base config binds AMQP on a free port: `gw.amqp_port`).
- `amqp(gw=None, **params)`: a connected `pika.BlockingConnection` (closed at teardown).
- `raw_amqp(gw=None)`: a `gwtest.amqp.RawAmqp` socket, nothing sent yet.
"""

from __future__ import annotations

import pytest

from gwtest.amqp import RawAmqp, pika_connection as connect


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()


@pytest.fixture
def amqp(gateway):
    opened = []

    def make(gw=None, **params):
        conn = connect(gw or gateway, **params)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        try:
            if conn.is_open:
                conn.close()
        except Exception:
            pass


@pytest.fixture
def raw_amqp(gateway):
    opened = []

    def make(gw=None):
        peer = RawAmqp((gw or gateway).amqp_port)
        opened.append(peer)
        return peer

    yield make
    for peer in opened:
        peer.close()
