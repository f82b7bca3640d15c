"""Interop with the mosquitto command-line clients (a second, independent client
implementation), when mosquitto_pub / mosquitto_sub are installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gwtest import mqtt as m

pytestmark = pytest.mark.skipif(not shutil.which("mosquitto_pub"), reason="mosquitto-clients not installed")


@pytest.mark.parametrize("proto", ["mqttv31", "mqttv311", "mqttv5"])
def test_mosquitto_pub_to_paho_subscriber(broker, mqtt, proto):
    topic = m.new_topic("cli")
    sub = mqtt(version=5)
    sub.subscribe(topic, qos=2)
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.mqtt_port), "-V", proto,
           "-t", topic, "-m", "from the cli", "-q", "2"]
    if proto == "mqttv5":
        cmd += ["-D", "publish", "user-property", "k", "v"]
    subprocess.run(cmd, check=True, timeout=10, capture_output=True)
    msg = sub.get()
    assert (msg.payload, msg.qos) == (b"from the cli", 2)
    if proto == "mqttv5":
        assert msg.properties.UserProperty == [("k", "v")]


def test_mosquitto_sub_gets_retained_and_live(broker, mqtt):
    topic = m.new_topic("cli")
    pub = mqtt()
    pub.publish(topic, b"retained", qos=1, retain=True)
    proc = subprocess.Popen(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.mqtt_port), "-V", "mqttv311",
         "-t", topic, "-q", "1", "-C", "2", "-v", "-W", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first == f"{topic} retained\n"
        pub.publish(topic, b"live", qos=1)
        out, err = proc.communicate(timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == f"{topic} live\n", err
