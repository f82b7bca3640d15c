#!/usr/bin/env python3
"""Captures the SASL request frames (SaslHandshake, SaslAuthenticate) of real clients, as golden
bytes for the codec tests, with the recording proxy of `capture.py`.

The gateway runs on its loopback default (no [[users]]), where `guest`/`guest` is admitted
with both mechanisms. Clients: kcat (librdkafka 2.0.2) and kafka-python 3.0.12, each with PLAIN
and SCRAM-SHA-256; files `<client>+sasl-<mechanism>_<api>_v<version>.bin` (only the first
SaslAuthenticate of each exchange: for SCRAM, the client-first message).

Run from the repository root:  .venv/bin/python codecs/testdata/kafka/capture_sasl.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import capture


def main():
    gw_port, proxy_port = capture.free_port(), capture.free_port()
    work = Path(tempfile.mkdtemp(prefix="kafka-capture-sasl-"))
    (work / "gw.toml").write_text(
        f'[server]\ndata_dir = "{work / "data"}"\n'
        f'[listeners.stomp]\nbind = "127.0.0.1:{capture.free_port()}"\n'
        f'[listeners.mqtt]\nbind = "127.0.0.1:{capture.free_port()}"\n'
        f'[listeners.amqp]\nbind = "127.0.0.1:{capture.free_port()}"\n'
        f'[listeners.openwire]\nbind = "127.0.0.1:{capture.free_port()}"\n'
        f'[admin]\nbind = "127.0.0.1:{capture.free_port()}"\n'
        f'[listeners.kafka]\nbind = "127.0.0.1:{gw_port}"\nadvertised_port = {proxy_port}\n'
    )
    binary = os.environ.get("GATEWAY_BIN", str(capture.ROOT / "target/debug/gateway"))
    gw = subprocess.Popen([binary, "--config", str(work / "gw.toml")],
                          stdout=open(work / "gw.log", "wb"), stderr=subprocess.STDOUT)
    try:
        threading.Thread(target=capture.proxy, args=(proxy_port, gw_port), daemon=True).start()
        time.sleep(1.0)
        bootstrap = f"127.0.0.1:{proxy_port}"
        from kafka import KafkaConsumer

        for mech, tag in [("PLAIN", "plain"), ("SCRAM-SHA-256", "scram")]:
            capture.label = f"kcat-1.7.1+sasl-{tag}"
            capture.kcat(bootstrap, "-X", "security.protocol=SASL_PLAINTEXT", "-X",
                         f"sasl.mechanisms={mech}", "-X", "sasl.username=guest", "-X",
                         "sasl.password=guest", "-L")
            capture.label = f"kafka-python-3.0.12+sasl-{tag}"
            c = KafkaConsumer(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                              sasl_mechanism=mech, sasl_plain_username="guest",
                              sasl_plain_password="guest")
            c.topics()
            c.close()
    finally:
        gw.terminate()
        gw.wait(timeout=20)
    for f in sorted(capture.HERE.glob("*sasl*.bin")):
        print(f.name, f.stat().st_size)


if __name__ == "__main__":
    sys.exit(main())
