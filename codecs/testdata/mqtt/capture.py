#!/usr/bin/env python3
"""Capture golden MQTT packets from real clients and a real broker.

Usage (from anywhere; needs Debian's mosquitto and mosquitto-clients):

    apt-get install -y mosquitto mosquitto-clients
    python3 -m venv /tmp/mqttvenv
    /tmp/mqttvenv/bin/pip install paho-mqtt==2.2.0
    /tmp/mqttvenv/bin/python codecs/testdata/mqtt/capture.py

Three captures, each for MQTT 3.1, 3.1.1 and 5.0:

1. paho-mqtt 2.2.0 against a tiny fake server on 127.0.0.1 that records
   what the client sends and answers CONNACK / SUBACK / UNSUBACK / PUBACK /
   PUBREC / PUBCOMP / PINGRESP so the client proceeds. After SUBACK it also
   sends the client a QoS 1 and a QoS 2 PUBLISH (and PUBREL after the
   client's PUBREC), so the client's PUBACK / PUBREC / PUBCOMP are captured.
2. Debian's mosquitto_pub and mosquitto_sub against the same fake server.
3. A real mosquitto broker on a private loopback port (its own config, not
   the system service), with a recording proxy between paho clients and the
   broker: the broker's CONNACK / SUBACK / PUBLISH / PUBACK / PUBREC / PUBREL
   / PUBCOMP / UNSUBACK / PINGRESP / DISCONNECT are saved.

Each packet's bytes are saved unaltered, one packet per file, next to this
script as `<client>_<packet>_v<version>.bin`. Only loopback traffic, bounded
in count and time.
"""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
VERSIONS = [("3.1", mqtt.MQTTv31), ("3.1.1", mqtt.MQTTv311), ("5", mqtt.MQTTv5)]
MOSQ_VERSIONS = [("3.1", "mqttv31"), ("3.1.1", "mqttv311"), ("5", "mqttv5")]
BROKER_PORT = 18830
TIMEOUT = 10.0

NAMES = {
    1: "connect", 2: "connack", 3: "publish", 4: "puback", 5: "pubrec",
    6: "pubrel", 7: "pubcomp", 8: "subscribe", 9: "suback", 10: "unsubscribe",
    11: "unsuback", 12: "pingreq", 13: "pingresp", 14: "disconnect", 15: "auth",
}


def paho_tag():
    from importlib.metadata import version

    return "paho-" + version("paho-mqtt")


def mosquitto_version():
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    # "mosquitto version 2.0.11"
    return out.split("version", 1)[1].split()[0]


# ----- framing -----------------------------------------------------------------


def split_packet(buf):
    """(packet, rest) if buf starts with a whole packet, else None."""
    if len(buf) < 2:
        return None
    value, mult, i = 0, 1, 1
    while True:
        if i >= len(buf):
            return None
        b = buf[i]
        value += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
        if i > 4:
            raise ValueError("bad remaining length")
    end = i + value
    if len(buf) < end:
        return None
    return buf[:end], buf[end:]


def body_of(packet):
    i = 1
    while packet[i] & 0x80:
        i += 1
    return packet[i + 1:]


def read_varint(b, i):
    value, mult = 0, 1
    while True:
        byte = b[i]
        value += (byte & 0x7F) * mult
        mult *= 128
        i += 1
        if not byte & 0x80:
            return value, i


def varint(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


# ----- saving ------------------------------------------------------------------


SAVED = []


def save(tag, name, version, data):
    fname = f"{tag}_{name}_v{version}.bin"
    path = os.path.join(OUT_DIR, fname)
    with open(path, "wb") as f:
        f.write(data)
    SAVED.append(fname)


class Namer:
    """Names packets by type, adding a label when the caller gives one."""

    def __init__(self, tag, version):
        self.tag = tag
        self.version = version
        self.seen = set()

    def save(self, data, label=None):
        name = NAMES[data[0] >> 4]
        if label:
            name = f"{name}-{label}"
        if name in self.seen:
            return
        self.seen.add(name)
        save(self.tag, name, self.version, data)


def publish_label(data, version):
    """qos0 / qos1 / qos2, plus -retain or -dup."""
    flags = data[0] & 0x0F
    label = f"qos{(flags >> 1) & 3}"
    if flags & 1:
        label += "-retain"
    if flags & 8:
        label += "-dup"
    return label


# ----- the fake server ---------------------------------------------------------


class FakeServer:
    """Accepts connections on 127.0.0.1, records every client packet and
    answers enough for a client to go through its session."""

    def __init__(self, deliver=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.deliver = deliver
        self.packets = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except socket.timeout:
            self.done.set()
            return
        conn.settimeout(TIMEOUT)
        buf = b""
        self.level = 4
        deadline = time.time() + TIMEOUT
        try:
            while time.time() < deadline:
                split = split_packet(buf)
                if split is None:
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    continue
                pkt, buf = split
                self.packets.append(pkt)
                if not self.answer(conn, pkt):
                    break
        finally:
            conn.close()
            self.sock.close()
            self.done.set()

    def answer(self, conn, pkt):
        kind = pkt[0] >> 4
        body = body_of(pkt)
        v5 = self.level == 5
        if kind == 1:  # CONNECT
            name_len = struct.unpack(">H", body[:2])[0]
            self.level = body[2 + name_len]
            v5 = self.level == 5
            conn.sendall(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
        elif kind == 8:  # SUBSCRIBE
            pid = body[:2]
            i = 2
            if v5:
                plen, i = read_varint(body, i)
                i += plen
            granted = bytearray()
            while i < len(body):
                n = struct.unpack(">H", body[i:i + 2])[0]
                i += 2 + n
                granted.append(body[i] & 3)
                i += 1
            props = b"\x00" if v5 else b""
            conn.sendall(packet(0x90, pid + props + bytes(granted)))
            if self.deliver:
                props = b"\x00" if v5 else b""
                topic = b"\x00\x0egolden/deliver"
                conn.sendall(packet(0x32, topic + b"\x00\x01" + props + b"one"))
                conn.sendall(packet(0x34, topic + b"\x00\x02" + props + b"two"))
        elif kind == 10:  # UNSUBSCRIBE
            pid = body[:2]
            if v5:
                i = 2
                plen, i = read_varint(body, i)
                i += plen
                count = 0
                while i < len(body):
                    n = struct.unpack(">H", body[i:i + 2])[0]
                    i += 2 + n
                    count += 1
                conn.sendall(packet(0xB0, pid + b"\x00" + b"\x00" * count))
            else:
                conn.sendall(packet(0xB0, pid))
        elif kind == 3:  # PUBLISH
            qos = (pkt[0] >> 1) & 3
            if qos:
                n = struct.unpack(">H", body[:2])[0]
                pid = body[2 + n:4 + n]
                conn.sendall(packet(0x40 if qos == 1 else 0x50, pid))
        elif kind == 5:  # PUBREC (for our QoS 2 delivery)
            conn.sendall(packet(0x62, body[:2]))
        elif kind == 6:  # PUBREL
            conn.sendall(packet(0x70, body[:2]))
        elif kind == 12:  # PINGREQ
            conn.sendall(b"\xd0\x00")
        elif kind == 14:  # DISCONNECT
            return False
        return True

    def wait(self):
        self.done.wait(TIMEOUT + 2)


def save_client_packets(tag, version, packets):
    namer = Namer(tag, version)
    for pkt in packets:
        kind = pkt[0] >> 4
        label = publish_label(pkt, version) if kind == 3 else None
        namer.save(pkt, label)


# ----- paho against the fake server -------------------------------------------


def wait_for(pred, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def paho_session(port, protocol, keepalive=1):
    v5 = protocol == mqtt.MQTTv5
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="golden-paho", protocol=protocol
    )
    client.username_pw_set("golden-user", "golden-pass")
    will_props = None
    if v5:
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 5
        will_props.PayloadFormatIndicator = 1
        will_props.MessageExpiryInterval = 120
        will_props.ContentType = "text/plain"
        will_props.UserProperty = [("will-key", "will-value")]
    client.will_set("golden/will", b"client gone", qos=1, retain=True, properties=will_props)
    state = {"connected": False, "got": 0, "subscribed": False, "unsubscribed": False}
    client.on_connect = lambda c, u, f, rc, p: state.update(connected=True)
    client.on_subscribe = lambda c, u, mid, rc, p: state.update(subscribed=True)
    client.on_unsubscribe = lambda c, u, mid, rc, p: state.update(unsubscribed=True)
    client.on_message = lambda c, u, m: state.update(got=state["got"] + 1)
    connect_props = None
    if v5:
        connect_props = Properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = 300
        connect_props.ReceiveMaximum = 20
        connect_props.MaximumPacketSize = 65536
        connect_props.TopicAliasMaximum = 10
        connect_props.RequestProblemInformation = 1
        connect_props.UserProperty = [("client", "paho"), ("purpose", "golden")]
    kwargs = {"properties": connect_props, "clean_start": True} if v5 else {}
    client.connect("127.0.0.1", port, keepalive=keepalive, **kwargs)
    client.loop_start()
    try:
        assert wait_for(lambda: state["connected"]), "no CONNACK"
        if v5:
            sub_props = Properties(PacketTypes.SUBSCRIBE)
            sub_props.SubscriptionIdentifier = 7
            sub_props.UserProperty = [("sub-key", "sub-value")]
            client.subscribe(
                [
                    (
                        "golden/a",
                        SubscribeOptions(
                            qos=1, noLocal=True, retainAsPublished=True, retainHandling=2
                        ),
                    ),
                    ("golden/+/b", SubscribeOptions(qos=2, retainHandling=1)),
                    ("golden/#", SubscribeOptions(qos=0)),
                ],
                properties=sub_props,
            )
        else:
            client.subscribe([("golden/a", 1), ("golden/+/b", 2), ("golden/#", 0)])
        assert wait_for(lambda: state["subscribed"]), "no SUBACK"
        pub_props = {0: None, 1: None, 2: None}
        if v5:
            p0 = Properties(PacketTypes.PUBLISH)
            p0.TopicAlias = 1
            p0.UserProperty = [("k", "v")]
            p1 = Properties(PacketTypes.PUBLISH)
            p1.PayloadFormatIndicator = 1
            p1.MessageExpiryInterval = 60
            p1.ContentType = "text/plain; charset=utf-8"
            p1.ResponseTopic = "golden/reply"
            p1.CorrelationData = b"\x00\x01corr\xff"
            p1.UserProperty = [("a", "1"), ("b", "2"), ("a", "3"), ("h\u00e9", "\u2603")]
            p2 = Properties(PacketTypes.PUBLISH)
            p2.PayloadFormatIndicator = 0
            p2.UserProperty = [("qos", "2")]
            pub_props = {0: p0, 1: p1, 2: p2}
        infos = [
            client.publish("golden/t", b"qos0 payload", qos=0, properties=pub_props[0]),
            client.publish("golden/t", "h\u00e9llo \u2603".encode(), qos=1, properties=pub_props[1]),
            client.publish("golden/t", b"\x00\x01\x02\xff binary", qos=2, retain=True, properties=pub_props[2]),
        ]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
        assert wait_for(lambda: state["got"] >= 2), "server deliveries not received"
        unsub_props = None
        if v5:
            unsub_props = Properties(PacketTypes.UNSUBSCRIBE)
            unsub_props.UserProperty = [("unsub-key", "unsub-value")]
        client.unsubscribe(["golden/a", "golden/+/b"], properties=unsub_props)
        assert wait_for(lambda: state["unsubscribed"]), "no UNSUBACK"
        time.sleep(keepalive + 0.8)  # let the client send PINGREQ
        if v5:
            disc_props = Properties(PacketTypes.DISCONNECT)
            disc_props.SessionExpiryInterval = 0
            disc_props.ReasonString = "golden done"
            client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"),
                properties=disc_props,
            )
        else:
            client.disconnect()
    finally:
        time.sleep(0.2)
        client.loop_stop()


def capture_paho():
    tag = paho_tag()
    for vname, protocol in VERSIONS:
        server = FakeServer()
        paho_session(server.port, protocol)
        server.wait()
        save_client_packets(tag, vname, server.packets)


# ----- mosquitto_pub / mosquitto_sub against the fake server -----------------


def run(cmd):
    return subprocess.run(cmd, capture_output=True, timeout=TIMEOUT + 5)


def capture_mosquitto_clients():
    ver = mosquitto_version()
    for vname, mv in MOSQ_VERSIONS:
        v5 = mv == "mqttv5"
        for qos in (0, 1, 2):
            server = FakeServer(deliver=False)
            cmd = [
                "mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-V", mv,
                "-i", "golden-mosq-pub", "-u", "golden-user", "-P", "golden-pass",
                "-q", str(qos), "-t", "golden/t", "-m", f"mosquitto qos{qos}",
                "--will-topic", "golden/will", "--will-payload", "pub gone",
                "--will-qos", "2", "--will-retain", "-k", "30",
            ]
            if qos == 2:
                cmd.append("-r")
            if v5:
                cmd += [
                    "-D", "connect", "session-expiry-interval", "60",
                    "-D", "connect", "user-property", "tool", "mosquitto_pub",
                    "-D", "will", "will-delay-interval", "3",
                    "-D", "will", "content-type", "text/plain",
                    "-D", "publish", "user-property", "k1", "v1",
                    "-D", "publish", "user-property", "k2", "v2",
                    "-D", "publish", "content-type", "text/plain",
                    "-D", "publish", "message-expiry-interval", "30",
                    "-D", "publish", "payload-format-indicator", "1",
                    "-D", "publish", "response-topic", "golden/reply",
                    "-D", "publish", "correlation-data", "abc",
                    "-D", "disconnect", "session-expiry-interval", "0",
                ]
            r = run(cmd)
            server.wait()
            if r.returncode != 0:
                print("mosquitto_pub failed:", r.stderr.decode(), file=sys.stderr)
            packets = server.packets
            tag = f"mosquitto_pub-{ver}"
            namer = Namer(tag, vname)
            for pkt in packets:
                kind = pkt[0] >> 4
                if kind == 3:
                    namer.save(pkt, publish_label(pkt, vname))
                elif kind in (1, 14) and qos == 1:
                    namer.save(pkt)
                elif kind == 6:
                    namer.save(pkt)
        # mosquitto_sub: SUBSCRIBE, the acks for a QoS 1 and QoS 2 delivery,
        # UNSUBSCRIBE (-U), PINGREQ and DISCONNECT.
        server = FakeServer(deliver=True)
        cmd = [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(server.port), "-V", mv,
            "-i", "golden-mosq-sub", "-q", "2", "-t", "golden/a", "-t", "golden/+/b",
            "-C", "2", "-k", "5",
        ]
        if v5:
            cmd += [
                "--retain-as-published",
                "-D", "subscribe", "subscription-identifier", "9",
                "-D", "subscribe", "user-property", "tool", "mosquitto_sub",
            ]
        r = run(cmd)
        server.wait()
        if r.returncode != 0:
            print("mosquitto_sub failed:", r.stderr.decode(), file=sys.stderr)
        tag = f"mosquitto_sub-{ver}"
        namer = Namer(tag, vname)
        for pkt in server.packets:
            namer.save(pkt)
        # Unsubscribe: -U with -c sends UNSUBSCRIBE at connect.
        server = FakeServer(deliver=False)
        cmd = [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(server.port), "-V", mv,
            "-i", "golden-mosq-unsub", "-c", "-t", "golden/a", "-U", "golden/old/#",
            "-E", "-q", "1",
        ]
        if v5:
            cmd += ["-D", "unsubscribe", "user-property", "tool", "mosquitto_sub"]
        r = run(cmd)
        server.wait()
        for pkt in server.packets:
            if pkt[0] >> 4 == 10:
                namer.save(pkt)


# ----- a real mosquitto broker behind a recording proxy ----------------------


class Proxy:
    """Forwards one client connection to the broker, recording the packets
    the broker sends (and those the client sends)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.from_server = []
        self.lock = threading.Lock()
        self.threads = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        end = time.time() + 60
        while time.time() < end:
            try:
                client, _ = self.sock.accept()
            except (socket.timeout, OSError):
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), TIMEOUT)
            conn_id = len(self.threads)
            for src, dst, record in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(
                    target=self.pump, args=(src, dst, record, conn_id), daemon=True
                )
                t.start()
                self.threads.append(t)

    def pump(self, src, dst, record, conn_id):
        buf = b""
        src.settimeout(60)
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(chunk)
            except OSError:
                return
            if record:
                buf += chunk
                while True:
                    split = split_packet(buf)
                    if split is None:
                        break
                    pkt, buf = split
                    with self.lock:
                        self.from_server.append((conn_id, pkt))

    def close(self):
        self.sock.close()


def start_broker(tmp, extra=""):
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(
            f"listener {BROKER_PORT} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "max_keepalive 65535\n" + extra
        )
    proc = subprocess.Popen(
        ["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def up():
        try:
            socket.create_connection(("127.0.0.1", BROKER_PORT), 0.2).close()
            return True
        except OSError:
            return False

    if not wait_for(up, 5):
        proc.terminate()
        raise RuntimeError("mosquitto did not start")
    return proc


def broker_session(proxy_port, protocol):
    """A subscriber and a publisher (both through the proxy) exercising
    every server-to-client packet."""
    v5 = protocol == mqtt.MQTTv5
    got = []
    flags = {}

    def make(cid, keepalive=60):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=protocol)
        c.on_connect = lambda cl, u, f, rc, p: flags.update({cid: True})
        c.on_subscribe = lambda cl, u, mid, rc, p: flags.update({cid + "-sub": True})
        c.on_unsubscribe = lambda cl, u, mid, rc, p: flags.update({cid + "-unsub": True})
        c.on_message = lambda cl, u, m: got.append(m)
        return c

    sub = make("golden-sub", keepalive=1)
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 60
        props.RequestResponseInformation = 1
    kwargs = {"properties": props, "clean_start": True} if v5 else {}
    sub.connect("127.0.0.1", proxy_port, keepalive=1, **kwargs)
    sub.loop_start()
    assert wait_for(lambda: flags.get("golden-sub")), "subscriber not connected"
    if v5:
        sp = Properties(PacketTypes.SUBSCRIBE)
        sp.SubscriptionIdentifier = 42
        sub.subscribe(
            [("golden/t", SubscribeOptions(qos=2)), ("golden/+/x", SubscribeOptions(qos=1))],
            properties=sp,
        )
    else:
        sub.subscribe([("golden/t", 2), ("golden/+/x", 1)])
    assert wait_for(lambda: flags.get("golden-sub-sub")), "no SUBACK"

    pub = make("golden-pub")
    pub.connect("127.0.0.1", proxy_port, keepalive=60, **({"clean_start": True} if v5 else {}))
    pub.loop_start()
    assert wait_for(lambda: flags.get("golden-pub")), "publisher not connected"
    pp = None
    if v5:
        pp = Properties(PacketTypes.PUBLISH)
        pp.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
        pp.ContentType = "text/plain"
        pp.MessageExpiryInterval = 3600
        pp.ResponseTopic = "golden/reply"
        pp.CorrelationData = b"\x01\x02\x03"
    for qos in (0, 1, 2):
        pub.publish("golden/t", f"broker qos{qos}".encode(), qos=qos, properties=pp).wait_for_publish(TIMEOUT)
    assert wait_for(lambda: len(got) >= 3), f"deliveries: {len(got)}"
    # A retained message, delivered to a later subscription with RETAIN set.
    pub.publish("golden/r/x", b"retained", qos=1, retain=True).wait_for_publish(TIMEOUT)
    assert wait_for(lambda: len(got) >= 4)
    sub.unsubscribe(["golden/+/x"])
    assert wait_for(lambda: flags.get("golden-sub-unsub")), "no UNSUBACK"
    sub.subscribe("golden/r/+", qos=1)
    assert wait_for(lambda: len(got) >= 5), "retained not delivered"
    time.sleep(1.8)  # PINGREQ / PINGRESP on the subscriber
    # Clear the retained message.
    pub.publish("golden/r/x", b"", qos=1, retain=True).wait_for_publish(TIMEOUT)
    pub.disconnect()
    pub.loop_stop()
    sub.disconnect()
    time.sleep(0.3)
    sub.loop_stop()


def capture_broker():
    ver = mosquitto_version()
    tag = f"mosquitto-{ver}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_broker(tmp)
        try:
            for vname, protocol in VERSIONS:
                proxy = Proxy(BROKER_PORT)
                broker_session(proxy.port, protocol)
                time.sleep(0.3)
                proxy.close()
                namer = Namer(tag, vname)
                for _, pkt in proxy.from_server:
                    kind = pkt[0] >> 4
                    label = None
                    if kind == 3:
                        label = publish_label(pkt, vname)
                    elif kind == 2:
                        label = "session-present" if pkt[2] & 1 else None
                    namer.save(pkt, label)
        finally:
            proc.terminate()
            proc.wait(5)
    # mosquitto 2.0 sends a 5.0 DISCONNECT when a client exceeds the broker's
    # maximum packet size (it does not on session takeover or shutdown).
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_broker(tmp, "max_packet_size 100\n")
        try:
            proxy = Proxy(BROKER_PORT)
            sock = socket.create_connection(("127.0.0.1", proxy.port), TIMEOUT)
            client_id = b"golden-big"
            connect_body = (
                b"\x00\x04MQTT\x05\x02\x00\x3c\x00"
                + struct.pack(">H", len(client_id)) + client_id
            )
            sock.sendall(packet(0x10, connect_body))
            assert wait_for(lambda: len(proxy.from_server) >= 1), "no CONNACK"
            topic = b"golden/big"
            sock.sendall(
                packet(0x32, struct.pack(">H", len(topic)) + topic + b"\x00\x01\x00" + b"x" * 300)
            )
            assert wait_for(lambda: len(proxy.from_server) >= 2), "no DISCONNECT"
            sock.close()
            proxy.close()
            names = ["connack-max-packet-size", "disconnect-packet-too-large"]
            for name, (_, pkt) in zip(names, proxy.from_server):
                save(tag, name, "5", pkt)
        finally:
            proc.terminate()
            proc.wait(5)


def main():
    for old in os.listdir(OUT_DIR):
        if old.endswith(".bin"):
            os.remove(os.path.join(OUT_DIR, old))
    capture_paho()
    capture_mosquitto_clients()
    capture_broker()
    for name in sorted(SAVED):
        print(name)


if __name__ == "__main__":
    main()
