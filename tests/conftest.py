"""Fixtures for the black-box tests: a real gateway process per test, and clients for it.

- `make_gateway(overrides=None, extra_toml="", start=True)`: a fresh gateway in its own temp
  directory with free ports. `overrides` is merged into the base config (nested dicts), and
  `extra_toml` is appended verbatim (e.g. `[[broker.destinations]]` tables).
- `gateway`: `make_gateway()` with the base config.
- `client(gw=None, version="1.2", ...)`: a connected stomp.py client (gwtest.client.Client).
- `raw(gw=None)`: a raw socket STOMP peer (gwtest.raw.RawStomp), not yet connected.

Everything is stopped at teardown. A test fails at teardown if its gateway died on its own or
logged a panic, and a failing test shows the gateway's log.

Opt-in reference mode (never the default): `STOMP_REFERENCE=activemq` makes `make_gateway` start
a real ActiveMQ 5.17 instead (see gwtest/reference.py and docs/reference-runs.md).
"""

from __future__ import annotations

import pytest

import warnings

try:
    # kafka-python must own the name `kafka` before pytest (importlib mode) collects the
    # tests/kafka folder and makes a package of that name for it. Its schema loading uses a
    # deprecated importlib API (about 100 warnings, not ours to fix).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka  # noqa: F401
except ImportError:
    pass

from gwtest.client import Client
from gwtest.gateway import Gateway, GatewayError, check_binary
from gwtest.raw import RawStomp
from gwtest import reference


def pytest_report_header(config):
    if reference.mode():
        port = reference.os.environ.get("STOMP_REFERENCE_PORT")
        where = f"external broker on port {port}" if port else "a fresh ActiveMQ per test"
        return f"STOMP_REFERENCE={reference.mode()}: testing the REFERENCE broker ({where}), not our gateway"
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("call", "setup"):
        for gw in getattr(item, "_gateways", []):
            report.sections.append((f"gateway log ({gw.log_path})", gw.log_tail()))
    return report


def _fail_cleanly(fn):
    """Run fn; turn a GatewayError into a plain test failure showing just its message."""
    try:
        return fn()
    except GatewayError as e:
        message = str(e)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def make_gateway(request, tmp_path):
    broker_class = reference.broker_class()
    if broker_class is None:
        _fail_cleanly(check_binary)
    gateways: list[Gateway] = []
    request.node._gateways = gateways

    def make(overrides: dict | None = None, extra_toml: str = "", start: bool = True) -> Gateway:
        gw = (broker_class or Gateway)(tmp_path / f"gw{len(gateways)}", overrides, extra_toml)
        gateways.append(gw)
        if start:
            _fail_cleanly(gw.start)
        return gw

    yield make

    problems = []
    for gw in gateways:
        problems += [f"{gw}: {p}" for p in gw.problems()]
        gw.stop_quietly()
    if problems:
        pytest.fail(
            "\n".join(problems) + "\n" + "\n".join(f"--- {g.log_path} ---\n{g.log_tail()}" for g in gateways),
            pytrace=False,
        )


@pytest.fixture
def gateway(make_gateway) -> Gateway:
    return make_gateway()


# `client` and `raw` depend on make_gateway so that they are torn down first: connections
# close before the gateway gets its SIGTERM.
@pytest.fixture
def client(request, make_gateway):
    """Factory: client(gw=None, version="1.2", **Client kwargs) -> connected Client."""
    clients: list[Client] = []

    def make(gw: Gateway | None = None, version: str = "1.2", **kwargs) -> Client:
        gw = gw or request.getfixturevalue("gateway")
        c = Client(gw, version=version, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.conn.transport.disconnect_socket()
        except Exception:
            pass


@pytest.fixture
def raw(request, make_gateway):
    """Factory: raw(gw=None, timeout=5.0) -> RawStomp (TCP connected, nothing sent)."""
    peers: list[RawStomp] = []

    def make(gw: Gateway | None = None, timeout: float = 5.0) -> RawStomp:
        gw = gw or request.getfixturevalue("gateway")
        r = RawStomp(gw.host, gw.stomp_port, timeout=timeout)
        peers.append(r)
        return r

    yield make
    for r in peers:
        r.close()
