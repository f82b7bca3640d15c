#!/usr/bin/env python3
"""Capture golden OpenWire frames between the real ActiveMQ 5.17 JMS client and
a real ActiveMQ 5.17 broker.

Usage (as root, from the repository root; Debian's packages, the broker runs
privately on loopback ports under a temporary directory):

    apt-get install -y libactivemq-java libgeronimo-jms-1.1-spec-java \
        libgeronimo-j2ee-management-1.1-spec-java libhawtbuf-java libslf4j-java \
        openjdk-17-jdk-headless activemq
    python3 codecs/testdata/openwire/capture.py [VERSION...]   # default: 1 to 12

What it does:

1. Compiles tests/openwire/java/JmsProbe.java with javac against the jars of
   /usr/share/java (activemq-client, activemq-openwire-legacy for protocol
   versions 2 to 8, geronimo JMS 1.1, hawtbuf, slf4j).
2. Starts ActiveMQ (its own activemq.xml: one `tcp://127.0.0.1:<port>`
   transport connector with `wireFormat.tightEncodingEnabled=false` and
   `wireFormat.cacheEnabled=false`, the options the gateway offers, so the
   negotiated encoding is LOOSE with no marshal cache; KahaDB in the temp
   directory; no JMX, no web console).
3. For each OpenWire version 1..12 (the client's `wireFormat.version` URL
   option; the negotiated version is the lower of the two sides'), runs
   `JmsProbe capture` (every message type and property type, client acks, a
   transaction with rollback, a temporary queue, a durable subscription with a
   selector, a prefetch-0 consumer, compression, a refused duplicate client
   id) through a recording TCP proxy, and writes each direction unaltered as
   `activemq-client-5.17.2_v<N>_session.bin` (client to broker) and
   `activemq-5.17.2_v<N>_session.bin` (broker to client). Both are sequences
   of size-prefixed frames.
4. For version 12 it also writes the first frame of each command kind per
   peer as `<peer>_v12_<command>.bin` (a second distinct frame of the same
   kind as `...-2`, up to 4 of each).

Only loopback traffic, bounded in count and time.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(OUT_DIR, "..", "..", ".."))
JAVA_SRC = os.path.join(REPO, "tests", "openwire", "java", "JmsProbe.java")
HOST = "127.0.0.1"
ACTIVEMQ_HOME = "/usr/share/activemq"
JARS = [
    "activemq-client.jar",
    "activemq-openwire-legacy.jar",
    "geronimo-jms_1.1_spec.jar",
    "geronimo-j2ee-management-1.1-spec.jar",
    "hawtbuf.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
]
CLIENT = "activemq-client-5.17.2"
BROKER = "activemq-5.17.2"

COMMANDS = {
    1: "wire-format-info", 2: "broker-info", 3: "connection-info", 4: "session-info",
    5: "consumer-info", 6: "producer-info", 7: "transaction-info", 8: "destination-info",
    9: "remove-subscription-info", 10: "keep-alive-info", 11: "shutdown-info",
    12: "remove-info", 14: "control-command", 15: "flush-command", 16: "connection-error",
    17: "consumer-control", 18: "connection-control", 19: "producer-ack", 20: "message-pull",
    21: "message-dispatch", 22: "message-ack", 23: "message", 24: "bytes-message",
    25: "map-message", 26: "object-message", 27: "stream-message", 28: "text-message",
    30: "response", 31: "exception-response", 32: "data-response",
    33: "data-array-response", 34: "integer-response", 90: "message-dispatch-notification",
}

ACTIVEMQ_XML = """\
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="capture" useJmx="false"
          persistent="true" dataDirectory="{data}" schedulerSupport="false">
    <persistenceAdapter>
      <kahaDB directory="{data}/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire"
        uri="tcp://127.0.0.1:{port}?wireFormat.tightEncodingEnabled=false&amp;wireFormat.cacheEnabled=false"/>
    </transportConnectors>
  </broker>
</beans>
"""

LOG4J = """\
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n
"""


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def classpath():
    return ":".join(os.path.join("/usr/share/java", j) for j in JARS)


def compile_probe(out):
    subprocess.run(["javac", "-nowarn", "-cp", classpath(), "-d", out, JAVA_SRC], check=True)


def start_broker(workdir, port):
    conf = os.path.join(workdir, "conf")
    data = os.path.join(workdir, "data")
    os.makedirs(conf)
    os.makedirs(data)
    with open(os.path.join(conf, "activemq.xml"), "w") as f:
        f.write(ACTIVEMQ_XML.format(data=data, port=port))
    with open(os.path.join(conf, "log4j.properties"), "w") as f:
        f.write(LOG4J)
    log = open(os.path.join(workdir, "activemq.log"), "wb")
    proc = subprocess.Popen(
        [
            "java", "-Xms64M", "-Xmx512M", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            f"-Dlog4j.configuration=file:{conf}/log4j.properties",
            f"-Dactivemq.home={ACTIVEMQ_HOME}", f"-Dactivemq.base={workdir}",
            f"-Dactivemq.conf={conf}", f"-Dactivemq.data={data}",
            "-jar", f"{ACTIVEMQ_HOME}/bin/activemq.jar", "start",
            f"xbean:file:{conf}/activemq.xml",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"activemq exited with {proc.returncode}; see {workdir}/activemq.log")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("activemq did not listen within 90 s")


class RecordingProxy:
    """Accepts one connection at a time and relays it to the broker, recording
    each direction's bytes per connection."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = []  # [(client_bytes, broker_bytes)] as bytearrays
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection((HOST, self.upstream_port))
            record = (bytearray(), bytearray())
            with self.lock:
                self.connections.append(record)
            threading.Thread(target=self._pump, args=(conn, up, record[0]), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, record[1]), daemon=True).start()

    @staticmethod
    def _pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self):
        time.sleep(0.5)
        with self.lock:
            taken = [(bytes(c), bytes(b)) for c, b in self.connections]
            self.connections.clear()
        return taken


def split_frames(stream):
    frames = []
    pos = 0
    while pos + 4 <= len(stream):
        (size,) = struct.unpack_from(">i", stream, pos)
        if size < 0 or pos + 4 + size > len(stream):
            break
        frames.append(stream[pos:pos + 4 + size])
        pos += 4 + size
    return frames


def frame_name(frame):
    kind = frame[4] if len(frame) > 4 else -1
    name = COMMANDS.get(kind, f"type-{kind}")
    return name


def write(name, data):
    with open(os.path.join(OUT_DIR, name), "wb") as f:
        f.write(data)


def main():
    work = tempfile.mkdtemp(prefix="openwire-capture-")
    broker = None
    try:
        classes = os.path.join(work, "classes")
        compile_probe(classes)
        port = free_port()
        broker = start_broker(os.path.join(work, "broker"), port)
        proxy = RecordingProxy(port)
        versions = [int(v) for v in sys.argv[1:]] or list(range(1, 13))
        for version in versions:
            url = f"tcp://{HOST}:{proxy.port}?wireFormat.version={version}"
            try:
                run = subprocess.run(
                    ["java", "-XX:TieredStopAtLevel=1", "-cp", classpath() + ":" + classes,
                     "JmsProbe", url, "capture"] + (["nopull"] if version < 2 else []),
                    capture_output=True, text=True, timeout=60,
                )
            except subprocess.TimeoutExpired as e:
                raise SystemExit(f"JmsProbe capture hung at version {version}:\n{e.stdout}")
            sys.stdout.write(f"--- v{version}: exit {run.returncode}\n{run.stdout}{run.stderr}")
            if run.returncode != 0:
                raise SystemExit(f"JmsProbe capture failed at version {version}")
            conns = proxy.take()
            # The main connection is the first; the refused duplicate is the second.
            client = b"".join(c for c, _ in conns)
            brokerside = b"".join(b for _, b in conns)
            write(f"{CLIENT}_v{version}_session.bin", client)
            write(f"{BROKER}_v{version}_session.bin", brokerside)
            if version == 12:
                for peer, stream in ((CLIENT, client), (BROKER, brokerside)):
                    counts = {}
                    seen = set()
                    for conn_client, conn_broker in conns:
                        for frame in split_frames(conn_client if peer == CLIENT else conn_broker):
                            name = frame_name(frame)
                            if frame in seen:
                                continue
                            seen.add(frame)
                            n = counts.get(name, 0) + 1
                            counts[name] = n
                            if n > 4:
                                continue
                            suffix = "" if n == 1 else f"-{n}"
                            write(f"{peer}_v12_{name}{suffix}.bin", frame)
    finally:
        if broker is not None:
            broker.kill()
            broker.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
