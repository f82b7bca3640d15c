"""MQTT test helpers: the broker under test (our gateway or a private mosquitto), a synchronous
paho-mqtt 2.2.0 wrapper, and a raw-socket MQTT peer with its own codec (for the cases a real
client library will not produce: malformed packets, chosen packet ids, DUP resends, topic
aliases, withheld acks).

Which broker: env MQTT_TARGET=gateway (our `gateway` binary with a `[listeners.mqtt]` table)
or MQTT_TARGET=mosquitto (a private mosquitto 2.0 on a free loopback port, temp config and
persistence directory; the system service is never touched). See tests/mqtt/README.md.

Broker settings a test may ask for (`make_broker(**settings)`), and what each becomes:

| setting            | mosquitto                              | gateway (assumed key, see README)          |
|--------------------|----------------------------------------|--------------------------------------------|
| max_packet_size=N  | `max_packet_size N`                    | `[listeners.mqtt] max_packet_bytes = N`    |
| users={"u": "p"}   | password_file + allow_anonymous false  | `[[users]] name, password_hash` (gwtest.security) |
| max_keepalive=N    | `max_keepalive N`                      | `[listeners.mqtt] max_keepalive = N`       |
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gwtest.gateway import Gateway, GatewayError, free_port

DEFAULT_TIMEOUT = 5.0
READY_TIMEOUT = 20.0


def target() -> str | None:
    value = os.environ.get("MQTT_TARGET", "").strip().lower()
    if not value:
        return None
    if value not in ("mosquitto", "gateway"):
        raise ValueError(f"MQTT_TARGET={value!r}: use 'mosquitto' or 'gateway'")
    return value


def new_id(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_topic(prefix: str = "t") -> str:
    """A topic no other test uses (levels separated by '/')."""
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float, what: str, log):
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise GatewayError(f"{what} exited with code {code} before listening on {host}:{port}\n{log()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise GatewayError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s\n{log()}")
        time.sleep(0.02)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


# --- brokers -----------------------------------------------------------------------------------


class MqttGateway(Gateway):
    """Our gateway with an MQTT listener on a free port (`mqtt_port`)."""

    kind = "gateway"

    def __init__(self, workdir: Path, settings: dict | None = None, overrides: dict | None = None, extra_toml: str = ""):
        self.mqtt_port = free_port(self.host)
        mqtt = {"bind": f"{self.host}:{self.mqtt_port}"}
        settings = dict(settings or {})
        if "max_packet_size" in settings:
            mqtt["max_packet_bytes"] = settings.pop("max_packet_size")
        if "max_keepalive" in settings:
            mqtt["max_keepalive"] = settings.pop("max_keepalive")
        users = settings.pop("users", None)
        if settings:
            raise ValueError(f"unknown MQTT broker settings {settings}")
        if users:
            from gwtest.security import security_toml

            extra_toml += "\n" + security_toml(users=users)
        overrides = dict(overrides or {})
        overrides.setdefault("listeners", {})
        overrides["listeners"] = dict(overrides["listeners"], mqtt=dict(mqtt, **overrides["listeners"].get("mqtt", {})))
        super().__init__(workdir, overrides, extra_toml)

    def crash(self) -> int:
        """SIGKILL right now: whatever the gateway acknowledged must already be durable."""
        return self.kill()

    def _wait_ready(self, timeout: float):
        super()._wait_ready(timeout)
        wait_for_port(self.host, self.mqtt_port, self.proc, timeout, "gateway (MQTT listener)", self.log_tail)

    def __repr__(self):
        return f"<MqttGateway mqtt={self.host}:{self.mqtt_port} stomp={self.stomp_port} dir={self.workdir}>"


class Mosquitto:
    """A private mosquitto 2.0 (the reference broker) with the same lifecycle API as Gateway.

    Persistence: `persistence true` in the broker's own directory with `autosave_on_changes true`
    and `autosave_interval 1`, i.e. the database is rewritten after every change, so state
    survives even SIGKILL (mosquitto otherwise saves only on clean shutdown / periodic autosave).
    """

    kind = "mosquitto"
    host = "127.0.0.1"
    binary = os.environ.get("MOSQUITTO_BIN", "mosquitto")

    def __init__(self, workdir: Path, settings: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mqtt_port = free_port(self.host)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        settings = dict(settings or {})
        lines = [
            "per_listener_settings false",
            # Started as root, mosquitto would drop to user `mosquitto`, which cannot read the
            # test's private temp directory: stay whoever started it.
            f"user {_user_name()}",
            f"listener {self.mqtt_port} {self.host}",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_on_changes true",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "max_inflight_messages 20",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
        ]
        if "max_packet_size" in settings:
            lines.append(f"max_packet_size {settings.pop('max_packet_size')}")
        if "max_keepalive" in settings:
            lines.append(f"max_keepalive {settings.pop('max_keepalive')}")
        users = settings.pop("users", None)
        if settings:
            raise ValueError(f"unknown MQTT broker settings {settings}")
        if users:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("")
            for u, p in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pwfile), u, p], check=True, capture_output=True)
            lines += [f"password_file {pwfile}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        self.config_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self._stopped_on_purpose = False

    def start(self, timeout: float = READY_TIMEOUT):
        if self.running:
            raise GatewayError("mosquitto already running")
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== run {self.runs}: {self.binary} -c {self.config_path}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        self._stopped_on_purpose = False
        wait_for_port(self.host, self.mqtt_port, self.proc, timeout, "mosquitto", self.log_tail)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int:
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int:
        self._stopped_on_purpose = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    # mosquitto's autosave runs from its main loop after the change, not before the ack: a SIGKILL
    # right after a PUBACK can lose the last change(s). Measured on 2.0.11: 3 retained publishes
    # then an immediate SIGKILL kept 2. `crash()` therefore waits this long first.
    CRASH_SETTLE = 1.5

    def crash(self) -> int:
        """SIGKILL after letting autosave catch up (see CRASH_SETTLE); the gateway's crash() does not wait."""
        time.sleep(self.CRASH_SETTLE)
        return self.kill()

    def restart(self, timeout: float = READY_TIMEOUT):
        if self.running:
            self.terminate()
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, max_chars: int = 8000) -> str:
        text = self.log_text()
        return ("[...]\n" + text[-max_chars:]) if len(text) > max_chars else text

    def problems(self) -> list[str]:
        if self.proc is not None and not self._stopped_on_purpose and self.proc.poll() is not None:
            return [f"mosquitto exited unexpectedly with code {self.proc.poll()} during the test"]
        return []

    def stop_quietly(self):
        """Teardown: SIGKILL (its state is thrown away; saves ~0.1 s per test over SIGTERM)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._stopped_on_purpose = True
        self.proc.kill()
        self.proc.wait()

    def __repr__(self):
        return f"<Mosquitto {self.host}:{self.mqtt_port} dir={self.workdir}>"


# --- paho wrapper ------------------------------------------------------------------------------

PROTOCOLS = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}


def props(packet_type=PacketTypes.PUBLISH, **kwargs) -> Properties:
    """paho Properties from keyword names, e.g. props(UserProperty=[("a", "1")], ContentType="x")."""
    p = Properties(packet_type)
    for k, v in kwargs.items():
        setattr(p, k, v)
    return p


class MqttClient:
    """One paho-mqtt connection, driven by its own network thread, with bounded waits.

    Never reconnects on its own (unlike paho's loop_start): a dropped connection stays dropped,
    which the takeover and keep-alive tests rely on. `version` is 3 (3.1), 4 (3.1.1) or 5.
    """

    def __init__(self, broker, client_id: str | None = None, version: int = 4, clean: bool = True,
                 keepalive: int = 30, username: str | None = None, password: str | None = None,
                 will: dict | None = None, properties: Properties | None = None, manual_ack: bool = False,
                 connect: bool = True, expect_ok: bool = True):
        self.broker = broker
        self.version = version
        self.client_id = new_id() if client_id is None else client_id
        kwargs = {}
        if version != 5:
            kwargs["clean_session"] = clean
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=PROTOCOLS[version], manual_ack=manual_ack, **kwargs)
        self.clean = clean
        self.keepalive = keepalive
        self.properties = properties
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(**will)
        self.cond = threading.Condition()
        self.messages: list[paho.MQTTMessage] = []
        self.connack = None  # (reason_code, flags, properties)
        self.disconnected = None  # (reason_code, properties) once the connection is gone
        self.subacks: dict[int, tuple] = {}
        self.unsubacks: dict[int, tuple] = {}
        self.published: dict[int, object] = {}
        self._stop = False
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        # paho writes a queued packet at once from the calling thread when it runs no thread of
        # its own, popping it before it sends: with `_run` writing too, two packets published
        # back to back could reach the socket swapped. Registering for write notifications
        # (and ignoring them) leaves every write to `_run`, one thread.
        self.c.on_socket_register_write = lambda client, userdata, sock: None
        if connect:
            self.connect(expect_ok=expect_ok)

    # -- callbacks --

    def _add(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def _on_connect(self, c, u, flags, rc, properties):
        self._add(lambda: setattr(self, "connack", (rc, flags, properties)))

    def _on_message(self, c, u, msg):
        self._add(lambda: self.messages.append(msg))

    def _on_disconnect(self, c, u, flags, rc, properties):
        self._add(lambda: setattr(self, "disconnected", (rc, properties)))

    def _on_subscribe(self, c, u, mid, rcs, properties):
        self._add(lambda: self.subacks.__setitem__(mid, (rcs, properties)))

    def _on_unsubscribe(self, c, u, mid, rcs, properties):
        self._add(lambda: self.unsubacks.__setitem__(mid, (rcs, properties)))

    def _on_publish(self, c, u, mid, rc, properties):
        self._add(lambda: self.published.__setitem__(mid, rc))

    def wait(self, predicate, timeout: float = DEFAULT_TIMEOUT, what: str = "something"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.client_id}: timed out after {timeout}s waiting for {what}; "
                        f"connack={self.connack} disconnected={self.disconnected} "
                        f"messages={[(m.topic, m.payload) for m in self.messages]}"
                    )
                self.cond.wait(min(remaining, 0.05))

    # -- connection --

    def _run(self):
        while not self._stop:
            rc = self.c.loop(timeout=0.02)
            if rc == paho.MQTT_ERR_SUCCESS and self.c.want_write():
                # (paho reports a full socket buffer as success: `loop` selects on writable.)
                rc = self.c.loop_write()
            if rc != paho.MQTT_ERR_SUCCESS:
                # paho calls on_disconnect itself on network errors; make sure waiters wake up.
                with self.cond:
                    if self.disconnected is None:
                        self.disconnected = (rc, None)
                    self.cond.notify_all()
                return

    def connect(self, expect_ok: bool = True, timeout: float = DEFAULT_TIMEOUT):
        self.connack = None
        self.disconnected = None
        kwargs = {}
        if self.version == 5:
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = self.properties
        self.c.connect(self.broker.host, self.broker.mqtt_port, keepalive=self.keepalive, **kwargs)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"mqtt-{self.client_id}")
        self._thread.start()
        self.wait(lambda: self.connack is not None or self.disconnected is not None, timeout, "CONNACK")
        if expect_ok:
            assert self.connack is not None, f"no CONNACK; disconnected={self.disconnected}"
            rc = self.connack[0]
            assert not rc.is_failure, f"CONNECT refused: {rc} ({rc.value:#x})"
        return self.connack

    @property
    def session_present(self) -> bool:
        return bool(self.connack[1].session_present)

    @property
    def connack_properties(self):
        return self.connack[2]

    def is_connected(self) -> bool:
        return self.disconnected is None and self.c.is_connected()

    def wait_disconnected(self, timeout: float = DEFAULT_TIMEOUT):
        self.wait(lambda: self.disconnected is not None, timeout, "the connection to close")
        return self.disconnected

    def disconnect(self, reasoncode=None, properties=None):
        """A clean DISCONNECT (v5: with optional reason code / properties), then stop the thread."""
        if self.is_connected():
            rc = None
            if reasoncode is not None:
                from paho.mqtt.reasoncodes import ReasonCode
                rc = ReasonCode(PacketTypes.DISCONNECT, identifier=reasoncode)
            self.c.disconnect(reasoncode=rc, properties=properties)
            try:
                self.wait_disconnected()
            except AssertionError:
                pass
        self.stop()

    def close_abruptly(self):
        """Drop the TCP connection without DISCONNECT (a crashed client)."""
        self._stop = True
        if self._thread:
            self._thread.join(5)
        self._flush()
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.disconnected = self.disconnected or ("closed by test", None)

    def _flush(self):
        """Writes what was published but not yet written, once `_run` has stopped (a packet
        published just before stopping is on the wire, as if paho had written it at once)."""
        if self.c.socket() is not None and self.c.want_write():
            self.c.loop_write()

    def stop(self):
        self._stop = True
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(5)
            self._flush()
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- operations --

    def subscribe(self, topic, qos: int = 1, options=None, properties=None, timeout: float = DEFAULT_TIMEOUT):
        """SUBSCRIBE and wait for SUBACK; returns the list of reason codes (granted QoS)."""
        if self.version == 5:
            opts = options or paho.SubscribeOptions(qos=qos)
            if isinstance(topic, list):
                result, mid = self.c.subscribe(topic, properties=properties)
            else:
                result, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            result, mid = self.c.subscribe(topic, qos=qos)
        assert result == paho.MQTT_ERR_SUCCESS, f"subscribe failed locally: {result}"
        self.wait(lambda: mid in self.subacks, timeout, f"SUBACK {mid}")
        return self.subacks[mid][0]

    def unsubscribe(self, topic, properties=None, timeout: float = DEFAULT_TIMEOUT):
        result, mid = self.c.unsubscribe(topic, properties=properties)
        assert result == paho.MQTT_ERR_SUCCESS
        self.wait(lambda: mid in self.unsubacks, timeout, f"UNSUBACK {mid}")
        return self.unsubacks[mid][0]

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False, properties=None,
                wait: bool = True, timeout: float = DEFAULT_TIMEOUT):
        """PUBLISH; with wait=True (and QoS > 0) waits for PUBACK / PUBCOMP. Returns paho's info."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == paho.MQTT_ERR_SUCCESS, f"publish failed locally: {info.rc}"
        if wait and qos > 0:
            self.wait(lambda: info.mid in self.published, timeout, f"the ack for publish mid {info.mid}")
        return info

    def puback_reason(self, mid):
        return self.published.get(mid)

    def ack(self, msg):
        self.c.ack(msg.mid, msg.qos)

    # -- receiving --

    def get(self, timeout: float = DEFAULT_TIMEOUT) -> paho.MQTTMessage:
        self.wait(lambda: self.messages, timeout, "a message")
        with self.cond:
            return self.messages.pop(0)

    def get_n(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> list:
        self.wait(lambda: len(self.messages) >= n, timeout, f"{n} messages")
        with self.cond:
            out, self.messages[:n] = self.messages[:n], []
            return out

    def expect_no_message(self, wait: float = 0.5):
        time.sleep(wait)
        with self.cond:
            assert not self.messages, f"unexpected messages: {[(m.topic, m.payload) for m in self.messages]}"

    def drain(self) -> list:
        with self.cond:
            out, self.messages[:] = list(self.messages), []
            return out


# --- raw codec ---------------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
                8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ",
                13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# MQTT 5 property id -> (name, type)
PROPS = {
    0x01: ("payload_format", "byte"), 0x02: ("message_expiry", "u32"), 0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"), 0x09: ("correlation_data", "bin"), 0x0B: ("subscription_id", "varint"),
    0x11: ("session_expiry", "u32"), 0x12: ("assigned_client_id", "str"), 0x13: ("server_keep_alive", "u16"),
    0x15: ("auth_method", "str"), 0x16: ("auth_data", "bin"), 0x17: ("request_problem_info", "byte"),
    0x18: ("will_delay", "u32"), 0x19: ("request_response_info", "byte"), 0x1A: ("response_info", "str"),
    0x1C: ("server_reference", "str"), 0x1F: ("reason_string", "str"), 0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"), 0x23: ("topic_alias", "u16"), 0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"), 0x26: ("user_property", "pair"), 0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_sub_available", "byte"), 0x29: ("sub_id_available", "byte"),
    0x2A: ("shared_sub_available", "byte"),
}
PROP_IDS = {name: (pid, typ) for pid, (name, typ) in PROPS.items()}


def enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def enc_str(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def enc_props(p: dict | None) -> bytes:
    """MQTT 5 properties from {name: value}; user_property takes a list of (key, value)."""
    out = bytearray()
    for name, value in (p or {}).items():
        pid, typ = PROP_IDS[name]
        values = value if typ == "pair" else [value]
        for v in values:
            out += enc_varint(pid)
            if typ == "byte":
                out += bytes([v])
            elif typ == "u16":
                out += struct.pack("!H", v)
            elif typ == "u32":
                out += struct.pack("!I", v)
            elif typ == "varint":
                out += enc_varint(v)
            elif typ in ("str", "bin"):
                out += enc_str(v)
            elif typ == "pair":
                out += enc_str(v[0]) + enc_str(v[1])
    return enc_varint(len(out)) + bytes(out)


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + enc_varint(len(body)) + body


def connect_packet(client_id: str = "", version: int = 4, clean: bool = True, keepalive: int = 30,
                   username=None, password=None, will: dict | None = None, properties: dict | None = None) -> bytes:
    """CONNECT. will = {topic, payload, qos, retain, properties (v5)}."""
    name, level = (b"MQIsdp", 3) if version == 3 else (b"MQTT", version)
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = enc_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += enc_props(properties)
    body += enc_str(client_id)
    if will:
        if version == 5:
            body += enc_props(will.get("properties"))
        body += enc_str(will["topic"]) + enc_str(will.get("payload", b""))
    if username is not None:
        body += enc_str(username)
    if password is not None:
        body += enc_str(password)
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload=b"", qos: int = 0, retain: bool = False, dup: bool = False, pid: int | None = None,
                   version: int = 4, properties: dict | None = None) -> bytes:
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = enc_str(topic)
    if qos:
        body += struct.pack("!H", pid)
    if version == 5:
        body += enc_props(properties)
    body += payload if isinstance(payload, bytes) else payload.encode()
    return packet(PUBLISH, flags, body)


def ack_packet(ptype: int, pid: int, version: int = 4, reason: int | None = None) -> bytes:
    """PUBACK / PUBREC / PUBREL / PUBCOMP (PUBREL gets its mandatory flags 0b0010)."""
    body = struct.pack("!H", pid)
    if version == 5 and reason is not None:
        body += bytes([reason])
    return packet(ptype, 0x02 if ptype == PUBREL else 0, body)


def subscribe_packet(pid: int, filters, version: int = 4, properties: dict | None = None) -> bytes:
    """filters: [(filter, options_byte)] (for v3/v4 the options byte is just the QoS)."""
    body = struct.pack("!H", pid)
    if version == 5:
        body += enc_props(properties)
    for f, opts in filters:
        body += enc_str(f) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe_packet(pid: int, filters, version: int = 4) -> bytes:
    body = struct.pack("!H", pid)
    if version == 5:
        body += enc_props(None)
    for f in filters:
        body += enc_str(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def disconnect_packet(version: int = 4, reason: int | None = None, properties: dict | None = None) -> bytes:
    if version == 5 and (reason is not None or properties):
        return packet(DISCONNECT, 0, bytes([reason or 0]) + enc_props(properties))
    return packet(DISCONNECT, 0, b"")


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("short packet")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        mult, value = 1, 0
        while True:
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128

    def bin(self):
        return self.take(self.u16())

    def str(self):
        return self.bin().decode()

    def left(self):
        return len(self.data) - self.pos

    def rest(self):
        return self.take(self.left())

    def props(self) -> dict:
        end = self.varint() + self.pos
        out: dict = {}
        while self.pos < end:
            pid = self.varint()
            name, typ = PROPS[pid]
            v = {"byte": self.byte, "u16": self.u16, "u32": self.u32, "varint": self.varint,
                 "str": self.str, "bin": self.bin}.get(typ)
            if typ == "pair":
                out.setdefault(name, []).append((self.str(), self.str()))
            elif name == "subscription_id":
                out.setdefault(name, []).append(v())
            else:
                out[name] = v()
        return out


class Packet:
    """A decoded packet: .type, .flags, .body and the type's fields as attributes."""

    def __init__(self, ptype: int, flags: int, body: bytes, version: int):
        self.type, self.flags, self.body = ptype, flags, body
        self.props: dict = {}
        self.reason = 0
        r = Reader(body)
        if ptype == CONNACK:
            self.session_present = bool(r.byte() & 1)
            self.reason = r.byte()
            if version == 5 and r.left():
                self.props = r.props()
        elif ptype == PUBLISH:
            self.dup = bool(flags & 0x08)
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            self.topic = r.str()
            self.pid = r.u16() if self.qos else None
            if version == 5:
                self.props = r.props()
            self.payload = r.rest()
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK):
            self.pid = r.u16()
            if ptype in (SUBACK, UNSUBACK):
                if version == 5:
                    self.props = r.props()
                self.codes = list(r.rest())
            elif version == 5 and r.left():
                self.reason = r.byte()
                if r.left():
                    self.props = r.props()
        elif ptype == DISCONNECT:
            if r.left():
                self.reason = r.byte()
                if r.left():
                    self.props = r.props()

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, str(self.type))

    def __repr__(self):
        fields = {k: v for k, v in vars(self).items() if k not in ("type", "flags", "body")}
        return f"<{self.name} flags={self.flags:#x} {fields}>"


class Closed(Exception):
    pass


class RawMqtt:
    """A raw TCP MQTT peer: send any bytes, read decoded packets with bounded waits."""

    def __init__(self, broker, version: int = 4, timeout: float = DEFAULT_TIMEOUT):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((broker.host, broker.mqtt_port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        self.received: list[Packet] = []  # everything read so far, in order

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise Closed()
        self.buf += data
        return True

    def _try_parse(self):
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + length:
            return None
        first, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        p = Packet(first >> 4, first & 0x0F, body, self.version)
        self.received.append(p)
        return p

    def recv(self, timeout: float | None = None) -> Packet | None:
        """The next packet, or None on timeout; raises Closed when the peer closed first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            p = self._try_parse()
            if p is not None:
                return p
            if self.closed:
                raise Closed()
            if not self._fill(deadline):
                return None

    def expect(self, ptype: int, timeout: float | None = None, skip=()) -> Packet:
        """The next packet, which must be of `ptype` (types in `skip` are dropped first)."""
        while True:
            try:
                p = self.recv(timeout)
            except Closed:
                raise AssertionError(f"connection closed while waiting for {PACKET_NAMES[ptype]}; "
                                     f"received {self.received}") from None
            assert p is not None, f"timed out waiting for {PACKET_NAMES[ptype]}; received {self.received}"
            if p.type in skip:
                continue
            assert p.type == ptype, f"expected {PACKET_NAMES[ptype]}, got {p}"
            return p

    def expect_closed(self, timeout: float | None = None) -> list[Packet]:
        """Wait until the broker closes the connection; returns the packets it sent first."""
        before = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                p = self.recv(max(0.0, deadline - time.monotonic()))
            except Closed:
                return before
            if p is None:
                raise AssertionError(f"connection still open after {timeout or self.timeout}s; received {before}")
            before.append(p)

    def expect_silence(self, wait: float = 0.5):
        p = self.recv(wait)
        assert p is None, f"unexpected packet {p}"

    # -- conveniences --

    def connect(self, client_id: str | None = None, **kwargs) -> Packet:
        """CONNECT (version of this peer) and return the CONNACK."""
        self.client_id = new_id("raw") if client_id is None else client_id
        self.send(connect_packet(self.client_id, version=self.version, **kwargs))
        return self.expect(CONNACK)

    def publish(self, topic, payload=b"", qos=0, pid=None, **kwargs):
        self.send(publish_packet(topic, payload, qos=qos, pid=pid, version=self.version, **kwargs))

    def subscribe(self, filters, pid: int = 1, properties=None) -> Packet:
        if isinstance(filters, str):
            filters = [(filters, 1)]
        self.send(subscribe_packet(pid, filters, self.version, properties))
        return self.expect(SUBACK)

    def ack(self, ptype, pid, reason=None):
        self.send(ack_packet(ptype, pid, self.version, reason))

    def disconnect(self, reason=None, properties=None):
        try:
            self.send(disconnect_packet(self.version, reason, properties))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
