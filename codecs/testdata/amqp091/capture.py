#!/usr/bin/env python3
"""Capture golden AMQP 0-9-1 frames between the real pika client and a real
RabbitMQ server.

Usage (as root, from anywhere; RabbitMQ is Debian's package, run privately):

    apt-get install -y rabbitmq-server      # the system service is not used
    python3 -m venv /tmp/pikavenv
    /tmp/pikavenv/bin/pip install pika==1.3.2
    /tmp/pikavenv/bin/python codecs/testdata/amqp091/capture.py

What it does:

1. Starts its own RabbitMQ node (own RABBITMQ_NODENAME, RABBITMQ_MNESIA_BASE,
   RABBITMQ_LOG_BASE, HOME, node port, distribution port and epmd port, all
   on 127.0.0.1 under a temporary directory) and stops it at the end.
2. Runs a small recording TCP proxy on 127.0.0.1 between pika and RabbitMQ,
   and drives pika through a session that uses most of the protocol:
   PLAIN login, tune (frame_max 4096, heartbeat 2 s), channels, exchange
   declare/bind/unbind/delete, queue declare with an arguments table, bind,
   unbind, purge, delete, qos, confirm.select + broker acks, a publish with
   all 14 properties and a headers table of mixed types, a body split over
   several frames, consume/deliver/ack/nack/reject/cancel, get/get-ok/
   get-empty (with the broker's x-death headers after dead-lettering),
   mandatory publish + basic.return, recover, tx select/commit/rollback,
   a broker-initiated channel.close (404), heartbeats, update-secret,
   connection.close.
3. Splits each direction into frames without altering a byte and writes,
   next to this script, the first frame of each kind per peer as
   `<peer>-<version>_<frame>.bin` (`<frame>` is the method name with `.`
   replaced by `-`; a content header or body frame is named after the
   method it follows, e.g. `basic-publish-header`), plus each whole
   direction as `<peer>-<version>_session.bin` (the client's begins with its
   protocol header).
4. With raw sockets (no pika), records RabbitMQ's answer to an unsupported
   protocol header, and its connection.close after a frame with a bad end
   octet (501), a method whose arguments overrun the payload (501) and a
   body frame with no method before it (505).

Only loopback traffic, bounded in count and time.
"""

import datetime
import decimal
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pika

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
NODE_PORT = 45672
DIST_PORT = 45673
EPMD_PORT = 45674
PROXY_PORT = 45675

METHOD_NAMES = {
    (10, 10): "connection.start", (10, 11): "connection.start-ok",
    (10, 20): "connection.secure", (10, 21): "connection.secure-ok",
    (10, 30): "connection.tune", (10, 31): "connection.tune-ok",
    (10, 40): "connection.open", (10, 41): "connection.open-ok",
    (10, 50): "connection.close", (10, 51): "connection.close-ok",
    (10, 60): "connection.blocked", (10, 61): "connection.unblocked",
    (10, 70): "connection.update-secret", (10, 71): "connection.update-secret-ok",
    (20, 10): "channel.open", (20, 11): "channel.open-ok",
    (20, 20): "channel.flow", (20, 21): "channel.flow-ok",
    (20, 40): "channel.close", (20, 41): "channel.close-ok",
    (40, 10): "exchange.declare", (40, 11): "exchange.declare-ok",
    (40, 20): "exchange.delete", (40, 21): "exchange.delete-ok",
    (40, 30): "exchange.bind", (40, 31): "exchange.bind-ok",
    (40, 40): "exchange.unbind", (40, 51): "exchange.unbind-ok",
    (50, 10): "queue.declare", (50, 11): "queue.declare-ok",
    (50, 20): "queue.bind", (50, 21): "queue.bind-ok",
    (50, 30): "queue.purge", (50, 31): "queue.purge-ok",
    (50, 40): "queue.delete", (50, 41): "queue.delete-ok",
    (50, 50): "queue.unbind", (50, 51): "queue.unbind-ok",
    (60, 10): "basic.qos", (60, 11): "basic.qos-ok",
    (60, 20): "basic.consume", (60, 21): "basic.consume-ok",
    (60, 30): "basic.cancel", (60, 31): "basic.cancel-ok",
    (60, 40): "basic.publish", (60, 50): "basic.return",
    (60, 60): "basic.deliver", (60, 70): "basic.get",
    (60, 71): "basic.get-ok", (60, 72): "basic.get-empty",
    (60, 80): "basic.ack", (60, 90): "basic.reject",
    (60, 100): "basic.recover-async", (60, 110): "basic.recover",
    (60, 111): "basic.recover-ok", (60, 120): "basic.nack",
    (85, 10): "confirm.select", (85, 11): "confirm.select-ok",
    (90, 10): "tx.select", (90, 11): "tx.select-ok",
    (90, 20): "tx.commit", (90, 21): "tx.commit-ok",
    (90, 30): "tx.rollback", (90, 31): "tx.rollback-ok",
}


def rabbit_version():
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
        capture_output=True, text=True, check=True,
    ).stdout
    return out.split("-")[0]


def pika_tag():
    return "pika-" + pika.__version__


# --------------------------------------------------------------------------- RabbitMQ


class Rabbit:
    """A private RabbitMQ node under a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="amqp091-capture-")
        self.proc = None
        env = dict(os.environ)
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        open(os.path.join(self.dir, "enabled_plugins"), "w").write("[].\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").write("")
        open(os.path.join(self.dir, "rabbitmq.conf"), "w").write(
            "loopback_users.guest = true\nlisteners.tcp.default = %d\n" % NODE_PORT
        )
        env.update(
            RABBITMQ_NODENAME="amqp091capture@localhost",
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(NODE_PORT),
            RABBITMQ_DIST_PORT=str(DIST_PORT),
            ERL_EPMD_PORT=str(EPMD_PORT),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq.conf"),
            RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
            HOME=os.path.join(self.dir, "home"),
        )
        self.env = env

    def start(self):
        log = open(os.path.join(self.dir, "server.out"), "w")
        self.proc = subprocess.Popen(
            ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                s = socket.create_connection((HOST, NODE_PORT), timeout=1)
                s.close()
                time.sleep(1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(1)
        self.stop()
        sys.exit("RabbitMQ did not start; see " + os.path.join(self.dir, "server.out"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(
                ["/usr/lib/rabbitmq/bin/rabbitmqctl", "stop"],
                env=self.env, capture_output=True, timeout=60,
            )
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
        # epmd was started for this node on its own port: stop it too.
        subprocess.run(["epmd", "-port", str(EPMD_PORT), "-kill"],
                       env=self.env, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- proxy


class Recorder:
    """Relays one TCP connection at a time to RabbitMQ, recording both ways."""

    def __init__(self):
        self.client = bytearray()
        self.server = bytearray()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, PROXY_PORT))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self.serve_one, daemon=True)
        self.thread.start()

    def serve_one(self):
        self.sock.settimeout(60)
        conn, _ = self.sock.accept()
        up = socket.create_connection((HOST, NODE_PORT))

        def pump(src, dst, record):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    record.extend(data)
                    dst.sendall(data)
            except OSError:
                pass
            for s in (dst,):
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        a = threading.Thread(target=pump, args=(conn, up, self.client))
        b = threading.Thread(target=pump, args=(up, conn, self.server))
        a.start()
        b.start()
        a.join(60)
        b.join(60)
        conn.close()
        up.close()

    def wait(self):
        self.thread.join(90)
        self.sock.close()


def split_frames(data):
    """[(frame_type, channel, payload, raw_bytes)] of a stream of frames."""
    frames = []
    pos = 0
    while pos + 7 <= len(data):
        ftype, channel, size = struct.unpack(">BHI", data[pos:pos + 7])
        end = pos + 7 + size + 1
        if end > len(data):
            break
        assert data[end - 1] == 0xCE, "bad frame end at %d" % (end - 1)
        frames.append((ftype, channel, bytes(data[pos + 7:end - 1]), bytes(data[pos:end])))
        pos = end
    assert pos == len(data), "%d undecoded bytes" % (len(data) - pos)
    return frames


def name_frames(frames):
    """Give each frame a file name stem, following content to its method."""
    last = {}
    named = []
    for ftype, channel, payload, raw in frames:
        if ftype == 1:
            cls, meth = struct.unpack(">HH", payload[:4])
            name = METHOD_NAMES[(cls, meth)].replace(".", "-")
            last[channel] = name
        elif ftype == 2:
            name = last[channel] + "-header"
        elif ftype == 3:
            name = last[channel] + "-body"
        elif ftype == 8:
            name = "heartbeat"
        else:
            raise ValueError("frame type %d" % ftype)
        named.append((name, raw))
    return named


def save(peer, named):
    seen = set()
    for name, raw in named:
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(OUT_DIR, "%s_%s.bin" % (peer, name)), "wb") as f:
            f.write(raw)
    print(peer, ":", len(seen), "distinct frames")


# --------------------------------------------------------------------------- session


def session():
    params = pika.ConnectionParameters(
        host=HOST, port=PROXY_PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        frame_max=4096, heartbeat=2, channel_max=64,
        client_properties={"connection_name": "amqp091-golden"},
    )
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.exchange_declare("gw.direct", "direct", durable=True)
    ch.queue_declare(
        "gw.q", durable=True,
        arguments={
            "x-message-ttl": 60000,
            "x-dead-letter-exchange": "gw.dlx",
            "x-max-priority": 10,
        },
    )
    ch.queue_bind("gw.q", "gw.direct", routing_key="rk")
    ch.exchange_declare("gw.dlx", "fanout")
    ch.queue_declare("gw.dlq")
    ch.queue_bind("gw.dlq", "gw.dlx")
    ch.basic_qos(prefetch_count=10)
    ch.confirm_delivery()

    headers = {
        "str": "text é",
        "int": 42,
        "neg": -7,
        "big": 2**40,
        "bool": True,
        "dec": decimal.Decimal("3.14"),
        "ts": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "none": None,
        "bytes": b"\x00\x01\xff",
        "list": [1, "two", False, None],
        "nested": {"a": 1, "b": {"c": "deep"}},
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="reply.q",
        expiration="60000",
        message_id="msg-1",
        timestamp=1700000000,
        type="order.created",
        user_id="guest",
        app_id="golden",
        cluster_id="c1",
    )
    ch.basic_publish("gw.direct", "rk", b'{"hello":"world"}', props)
    # A body larger than frame_max: split into several body frames.
    big = bytes(range(256)) * 40
    ch.basic_publish("gw.direct", "rk", big, pika.BasicProperties(delivery_mode=1))
    for i in range(2):
        ch.basic_publish("gw.direct", "rk", b"m%d" % i)
    try:
        ch.basic_publish("gw.direct", "nowhere", b"unroutable", mandatory=True)
    except pika.exceptions.UnroutableError:
        pass

    deliveries = []
    tag = ch.basic_consume("gw.q", lambda c, m, p, b: deliveries.append(m.delivery_tag))
    deadline = time.time() + 10
    while len(deliveries) < 4 and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
    ch.basic_ack(deliveries[0])
    ch.basic_ack(deliveries[1])
    ch.basic_nack(deliveries[2], requeue=False)
    ch.basic_reject(deliveries[3], requeue=False)
    ch.basic_cancel(tag)

    # Dead-lettered with x-death headers by the broker.
    time.sleep(0.5)
    method, _, _ = ch.basic_get("gw.dlq")
    if method:
        ch.basic_ack(method.delivery_tag)
    while ch.basic_get("gw.dlq")[0]:
        pass
    ch.basic_recover(requeue=True)

    ch.queue_unbind("gw.q", "gw.direct", routing_key="rk")
    ch.exchange_declare("gw.src", "topic")
    ch.exchange_bind("gw.direct", "gw.src", routing_key="#")
    ch.exchange_unbind("gw.direct", "gw.src", routing_key="#")
    ch.exchange_delete("gw.src")
    ch.queue_purge("gw.q")
    ch.queue_delete("gw.dlq")

    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("gw.direct", "rk", b"in tx")
    tx.tx_commit()
    tx.basic_publish("gw.direct", "rk", b"rolled back")
    tx.tx_rollback()
    tx.close()

    # A broker-initiated channel.close (404 NOT_FOUND).
    bad = conn.channel()
    try:
        bad.queue_declare("gw.missing", passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        pass

    if hasattr(conn, "update_secret"):
        conn.update_secret("guest", "rotated")
    # Idle long enough for heartbeats both ways.
    conn.sleep(3.5)
    ch.queue_delete("gw.q")
    ch.exchange_delete("gw.dlx")
    ch.exchange_delete("gw.direct")
    ch.close()
    conn.close()


# --------------------------------------------------------------------------- raw


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def method(cls, meth, args=b""):
    return frame(1, 0, struct.pack(">HH", cls, meth) + args)


def shortstr(s):
    return struct.pack(">B", len(s)) + s


def longstr(s):
    return struct.pack(">I", len(s)) + s


def recv_frame(sock):
    buf = b""
    while len(buf) < 7:
        chunk = sock.recv(7 - len(buf))
        if not chunk:
            return buf
        buf += chunk
    size = struct.unpack(">I", buf[3:7])[0]
    while len(buf) < 7 + size + 1:
        chunk = sock.recv(7 + size + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def raw_connection():
    """An open connection on channel 0, past tune-ok and open-ok."""
    s = socket.create_connection((HOST, NODE_PORT), timeout=10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    recv_frame(s)  # connection.start
    s.sendall(method(10, 11, longstr(b"") + shortstr(b"PLAIN")
                     + longstr(b"\x00guest\x00guest") + shortstr(b"en_US")))
    tune = recv_frame(s)
    s.sendall(method(10, 31, tune[11:19]))  # echo channel-max, frame-max, heartbeat
    s.sendall(method(10, 40, shortstr(b"/") + shortstr(b"") + b"\x00"))
    recv_frame(s)  # connection.open-ok
    return s


def raw_captures(rabbit_tag):
    # An unsupported protocol header: RabbitMQ answers with its own and closes.
    s = socket.create_connection((HOST, NODE_PORT), timeout=10)
    s.sendall(b"AMQP\x00\x01\x00\x00")
    reply = b""
    while True:
        try:
            chunk = s.recv(64)
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    s.close()
    with open(os.path.join(OUT_DIR, rabbit_tag + "_protocol-header-reply.bin"), "wb") as f:
        f.write(reply)

    # Malformed input after a good handshake and channel.open on channel 1:
    # RabbitMQ answers with connection.close (the reply code is the point).
    # (An unknown method id makes RabbitMQ 3.10 reset the socket instead.)
    cases = [
        # A frame whose end octet is 0x00: 501 FRAME_ERROR.
        ("connection-close-frame-error", frame(1, 1, struct.pack(">HH", 10, 50))[:-1] + b"\x00"),
        # queue.declare whose queue name runs past the payload: 501 "cannot decode".
        ("connection-close-cannot-decode",
         frame(1, 1, struct.pack(">HH", 50, 10) + b"\x00\x00\x05ab")),
        # A body frame with no content method before it: 505 UNEXPECTED_FRAME.
        ("connection-close-unexpected-frame", frame(3, 1, b"hello")),
    ]
    for name, bad in cases:
        s = raw_connection()
        s.sendall(frame(1, 1, struct.pack(">HH", 20, 10) + shortstr(b"")))
        recv_frame(s)  # channel.open-ok
        s.sendall(bad)
        close = recv_frame(s)
        s.close()
        with open(os.path.join(OUT_DIR, "%s_%s.bin" % (rabbit_tag, name)), "wb") as f:
            f.write(close)


def main():
    rabbit_tag = "rabbitmq-" + rabbit_version()
    rabbit = Rabbit()
    rabbit.start()
    try:
        rec = Recorder()
        session()
        rec.wait()
        raw_captures(rabbit_tag)
    finally:
        rabbit.stop()

    client = bytes(rec.client)
    assert client[:8] == b"AMQP\x00\x00\x09\x01", client[:8]
    for peer, stream, frames in (
        (pika_tag(), client, split_frames(client[8:])),
        (rabbit_tag, bytes(rec.server), split_frames(rec.server)),
    ):
        with open(os.path.join(OUT_DIR, peer + "_session.bin"), "wb") as f:
            f.write(stream)
        save(peer, name_frames(frames))
    with open(os.path.join(OUT_DIR, pika_tag() + "_protocol-header.bin"), "wb") as f:
        f.write(client[:8])


if __name__ == "__main__":
    main()
