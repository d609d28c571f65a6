#!/usr/bin/env bash
# One-shot topic setup for jiandu, run by the `kafka-init` service (apache/kafka image).
#
# Why not let jiandu or faust create the topics: they would create them with replication
# factor 1 (jiandu/broker.py, streams/app.py) and the broker's default retention (7 days).
# Production wants the replication and retention below, and the partition count must be
# the one the producers hash with (partition = murmur2(unit_id) % JIANDU_PARTITIONS).
#
# Idempotent: creates what is missing, re-applies the topic configs, and fails loudly when an
# existing topic cannot match (partition count or replication factor differ).
set -euo pipefail

: "${BOOTSTRAP_SERVERS:?}" "${JIANDU_PARTITIONS:?}" "${JIANDU_CONSUMER_GROUP:?}"
: "${REPLICATION_FACTOR:?}" "${MIN_INSYNC_REPLICAS:?}" "${RETENTION_MS:?}" "${MAX_MESSAGE_BYTES:?}"

BIN=${KAFKA_BIN:-/opt/kafka/bin}   # overridable for the unit test's stand-in tools
EVENTS=jiandu.events
DLQ=jiandu.events.dlq
# faust's partition-assignor topic (faust names it "<app id>-__assignor-__leader"; the app id
# is the consumer group). Created here so it gets the cluster's replication factor too.
LEADER="${JIANDU_CONSUMER_GROUP}-__assignor-__leader"

topics() { "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" "$@"; }

# The brokers may answer health checks before they agree on a controller: retry a little.
for attempt in $(seq 1 30); do
    if topics --list > /dev/null 2>&1; then break; fi
    echo "waiting for the brokers ($attempt/30)…"
    sleep 2
done

ensure() {
    local name=$1 partitions=$2 retention=$3
    topics --create --if-not-exists --topic "$name" \
        --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR" \
        --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" \
        --config "retention.ms=$retention" \
        --config "max.message.bytes=$MAX_MESSAGE_BYTES"
    # --if-not-exists leaves an existing topic's configs as they were: set them again.
    "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --alter \
        --entity-type topics --entity-name "$name" \
        --add-config "min.insync.replicas=$MIN_INSYNC_REPLICAS,retention.ms=$retention,max.message.bytes=$MAX_MESSAGE_BYTES"

    # "Topic: x  TopicId: …  PartitionCount: 12  ReplicationFactor: 3  Configs: …"
    # (Read the whole output, then its first line: `| head -n 1` could cut the tool off.)
    local described header actual_partitions actual_rf
    described=$(topics --describe --topic "$name")
    header=${described%%$'\n'*}
    actual_partitions=$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<< "$header")
    actual_rf=$(sed -n 's/.*ReplicationFactor: *\([0-9]*\).*/\1/p' <<< "$header")
    if [ "$actual_partitions" != "$partitions" ]; then
        echo "错误: $name has $actual_partitions partitions but JIANDU_PARTITIONS=$partitions." >&2
        echo "Producers hash unit_id over JIANDU_PARTITIONS, so they must agree. Set" >&2
        echo "JIANDU_PARTITIONS=$actual_partitions, or repartition as docs/deploy.md describes." >&2
        exit 1
    fi
    if [ "$actual_rf" -lt "$REPLICATION_FACTOR" ]; then
        echo "错误: $name has replication factor $actual_rf, wanted $REPLICATION_FACTOR." >&2
        echo "Raise it with kafka-reassign-partitions.sh (docs/deploy.md) before going on." >&2
        exit 1
    fi
    echo "ok: $name partitions=$actual_partitions replication=$actual_rf retention.ms=$retention"
}

ensure "$EVENTS" "$JIANDU_PARTITIONS" "$RETENTION_MS"
ensure "$DLQ" 1 "$RETENTION_MS"
ensure "$LEADER" 1 -1
