"""Fixtures for the security tests: MQTT gateways and clients (the STOMP fixtures come from the
root conftest), with teardown that reports a crashed gateway like the root `make_gateway`."""

from __future__ import annotations

import pytest

from gwtest import mqtt as m


@pytest.fixture
def make_mqtt_gateway(request, tmp_path):
    """make_mqtt_gateway(overrides=None, extra_toml="", start=True) -> MqttGateway."""
    gateways: list = []
    request.node._gateways = gateways

    def make(overrides: dict | None = None, extra_toml: str = "", start: bool = True):
        gw = m.MqttGateway(tmp_path / f"mqtt{len(gateways)}", None, overrides, extra_toml)
        gateways.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    problems = []
    for gw in gateways:
        problems += [f"{gw}: {p}" for p in gw.problems()]
        gw.stop_quietly()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def paho(make_mqtt_gateway):
    """paho(gw, **MqttClient kwargs) -> connected (or refused, with expect_ok=False) client."""
    clients: list = []

    def make(gw, **kwargs):
        c = m.MqttClient(gw, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass


@pytest.fixture
def raw_mqtt(make_mqtt_gateway):
    """raw_mqtt(gw, version=4) -> RawMqtt peer, TCP connected, nothing sent."""
    peers: list = []

    def make(gw, version: int = 4):
        r = m.RawMqtt(gw, version=version)
        peers.append(r)
        return r

    yield make
    for r in peers:
        r.close()
