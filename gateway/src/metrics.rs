//! Every metric the gateway exports, in one place: names (`gateway_<noun>_<unit>`), labels,
//! help text, histogram buckets, and the functions that update them.
//!
//! Metrics go through the `metrics` facade into a Prometheus recorder installed by [`install`];
//! the admin server renders `/metrics` from its [`PrometheusHandle`] (no second listener).
//!
//! Two kinds of updates:
//! - **events** are counted where they happen: connections ([`crate::connections`]), bytes
//!   ([`crate::connections::MeteredStream`]), decode errors ([`decode_error`]), journal fsyncs and
//!   group commits (recorded by the `store` crate under the names re-exported below);
//! - **state** is read from the engine when `/metrics` is scraped ([`refresh`]): queue depths and
//!   counters, consumers, producers, memory, disk, recovery figures. Depths therefore come from
//!   the recovered engine state and are right after a restart.
//!
//! For a new protocol: name its listener in `server.rs` (`registry.listener("amqp", "amqp")`),
//! call [`decode_error`] with the same protocol name when its codec rejects input, and
//! [`crate::connections::established`] / [`crate::connections::reject`] at the end of its
//! handshake. Add new metrics here, with a line in `docs/operations.md`.

use metrics::{Counter, Gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use routes::Engine;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

pub use routes::store::metric_names::{
    JOURNAL_APPEND_DURABLE_SECONDS, JOURNAL_FSYNC_SECONDS, JOURNAL_GROUP_COMMIT_APPENDS,
    STREAM_APPEND_DURABLE_SECONDS,
};

// --- process ---------------------------------------------------------------------------------

/// Gauge (label `version`): always 1; the running gateway's version.
pub const BUILD_INFO: &str = "gateway_build_info";
/// Gauge: Unix time the gateway started, in seconds.
pub const START_TIME_SECONDS: &str = "gateway_start_time_seconds";

// --- per queue (label `queue`) ---------------------------------------------------------------

/// Gauge: messages ready for delivery.
pub const QUEUE_READY_MESSAGES: &str = "gateway_queue_ready_messages";
/// Gauge: messages delivered and not yet acknowledged (in flight).
pub const QUEUE_UNACKED_MESSAGES: &str = "gateway_queue_unacked_messages";
/// Gauge: open consumers.
pub const QUEUE_CONSUMERS: &str = "gateway_queue_consumers";
/// Gauge: message body bytes held.
pub const QUEUE_BYTES: &str = "gateway_queue_bytes";
/// Counter: messages added to the queue.
pub const QUEUE_ENQUEUED_TOTAL: &str = "gateway_queue_enqueued_messages_total";
/// Counter: deliveries to consumers (redeliveries included).
pub const QUEUE_DELIVERED_TOTAL: &str = "gateway_queue_delivered_messages_total";
/// Counter: redeliveries.
pub const QUEUE_REDELIVERED_TOTAL: &str = "gateway_queue_redelivered_messages_total";
/// Counter: acknowledged messages.
pub const QUEUE_ACKNOWLEDGED_TOTAL: &str = "gateway_queue_acknowledged_messages_total";
/// Counter: messages dead-lettered (rejected or out of redeliveries).
pub const QUEUE_DEAD_LETTERED_TOTAL: &str = "gateway_queue_dead_lettered_messages_total";
/// Counter: messages expired.
pub const QUEUE_EXPIRED_TOTAL: &str = "gateway_queue_expired_messages_total";
/// Counter: seconds acknowledged messages spent from send to acknowledgement, summed.
pub const QUEUE_RESIDENCE_SECONDS_TOTAL: &str = "gateway_queue_residence_seconds_total";

// --- per topic (label `topic`) ---------------------------------------------------------------

/// Counter: messages published to the topic.
pub const TOPIC_ENQUEUED_TOTAL: &str = "gateway_topic_enqueued_messages_total";
/// Gauge: subscriptions (durable or not, wildcard ones included) matching the topic.
pub const TOPIC_SUBSCRIPTIONS: &str = "gateway_topic_subscriptions";
/// Gauge: open consumers of those subscriptions.
pub const TOPIC_CONSUMERS: &str = "gateway_topic_consumers";
/// Gauge: messages of those subscriptions delivered and not yet acknowledged.
pub const TOPIC_UNACKED_MESSAGES: &str = "gateway_topic_unacked_messages";

// --- connections (labels `protocol`, `listener`) ---------------------------------------------

/// Gauge: open connections.
pub const CONNECTIONS_OPEN: &str = "gateway_connections_open";
/// Counter: connections accepted by the listener.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "gateway_connections_accepted_total";
/// Counter: connections refused during the protocol handshake.
pub const CONNECTIONS_REJECTED_TOTAL: &str = "gateway_connections_rejected_total";
/// Counter: bytes read from clients.
pub const NETWORK_RECEIVED_BYTES_TOTAL: &str = "gateway_network_received_bytes_total";
/// Counter: bytes written to clients.
pub const NETWORK_SENT_BYTES_TOTAL: &str = "gateway_network_sent_bytes_total";
/// Counter (label `protocol`): input a codec rejected as malformed.
pub const DECODE_ERRORS_TOTAL: &str = "gateway_decode_errors_total";

// --- broker ----------------------------------------------------------------------------------

/// Gauge: open engine sessions (a connection has one or more).
pub const SESSIONS: &str = "gateway_sessions";
/// Gauge: open consumers, all queues.
pub const CONSUMERS: &str = "gateway_consumers";
/// Gauge: open sessions that have sent at least one message.
pub const PRODUCERS: &str = "gateway_producers";
/// Gauge: sends waiting for room under flow control (`block`).
pub const PRODUCERS_BLOCKED: &str = "gateway_producers_blocked";
/// Gauge: local transactions begun and not yet committed or rolled back.
pub const TRANSACTIONS_OPEN: &str = "gateway_transactions_open";
/// Gauge: messages held in every queue (ready and unacknowledged).
pub const MESSAGES: &str = "gateway_messages";
/// Gauge: durable subscriptions.
pub const DURABLE_SUBSCRIPTIONS: &str = "gateway_durable_subscriptions";
/// Gauge: durable subscriptions with no open consumer.
pub const DURABLE_SUBSCRIPTIONS_INACTIVE: &str = "gateway_durable_subscriptions_inactive";
/// Gauge: message body bytes held in memory.
pub const MEMORY_USED_BYTES: &str = "gateway_memory_used_bytes";
/// Gauge: `broker.memory_limit_bytes` (0 = none).
pub const MEMORY_LIMIT_BYTES: &str = "gateway_memory_limit_bytes";

// --- store -----------------------------------------------------------------------------------

/// Gauge: bytes of journal segment files plus spill files of paged-out messages.
pub const STORE_USED_BYTES: &str = "gateway_store_used_bytes";
/// Gauge: bytes the gateway keeps in its data directory: the store's (journal segments and
/// spill files) plus the stream segment files of the log.
pub const DATA_DIR_USED_BYTES: &str = "gateway_data_dir_used_bytes";
/// Gauge: `broker.disk_limit_bytes` (0 = none).
pub const STORE_LIMIT_BYTES: &str = "gateway_store_limit_bytes";
/// Gauge: store use against its limit (or, with no limit, against used + free disk), 0 to 1.
pub const STORE_USAGE_RATIO: &str = "gateway_store_usage_ratio";
/// Gauge: bytes free for unprivileged use on the data directory's file system.
pub const DATA_DIR_FREE_BYTES: &str = "gateway_data_dir_free_bytes";
/// Gauge: size of the data directory's file system.
pub const DATA_DIR_TOTAL_BYTES: &str = "gateway_data_dir_total_bytes";
/// Gauge: journal segment files.
pub const JOURNAL_SEGMENTS: &str = "gateway_journal_segments";
/// Counter: fdatasync calls of the journal.
pub const JOURNAL_FSYNCS_TOTAL: &str = "gateway_journal_fsyncs_total";
/// Counter: journal segments compacted away.
pub const JOURNAL_COMPACTIONS_TOTAL: &str = "gateway_journal_compactions_total";
/// Gauge: seconds the last start-up recovery took.
pub const STORE_RECOVERY_SECONDS: &str = "gateway_store_recovery_seconds";
/// Gauge: durable queues restored at start-up.
pub const STORE_RECOVERED_QUEUES: &str = "gateway_store_recovered_queues";
/// Gauge: messages restored at start-up.
pub const STORE_RECOVERED_MESSAGES: &str = "gateway_store_recovered_messages";
/// Gauge: journal bytes scanned at start-up.
pub const STORE_RECOVERED_BYTES: &str = "gateway_store_recovered_bytes";
/// Gauge: bytes of torn journal tail cut off at start-up.
pub const STORE_TRUNCATED_BYTES: &str = "gateway_store_truncated_bytes";

// --- streams (labels `stream`, `partition`) --------------------------------------------------

/// Gauge: the partition's end offset (high watermark: the next offset to be written).
pub const STREAM_END_OFFSET: &str = "gateway_stream_end_offset";
/// Gauge: the partition's log start offset (earliest offset still stored).
pub const STREAM_START_OFFSET: &str = "gateway_stream_start_offset";
/// Gauge: bytes of the partition's segment files.
pub const STREAM_SIZE_BYTES: &str = "gateway_stream_size_bytes";
/// Gauge: segment files of the partition (sealed and active).
pub const STREAM_SEGMENTS: &str = "gateway_stream_segments";

// --- consumer groups (labels `group`, `stream`, `partition`) ----------------------------------

/// Gauge: the group's committed offset for the partition.
pub const GROUP_COMMITTED_OFFSET: &str = "gateway_consumer_group_committed_offset";
/// Gauge: records the group has yet to consume on the partition:
/// `end offset - max(committed, start offset)`.
pub const GROUP_LAG_MESSAGES: &str = "gateway_consumer_group_lag_messages";
/// Gauge (label `group` only): members of the group currently joined (Kafka clients).
pub const GROUP_MEMBERS: &str = "gateway_consumer_group_members";

// --- routes (label `route`) -------------------------------------------------------------------

/// Counter: messages a route carried (enqueued from a stream, or appended to a stream).
pub const ROUTE_MESSAGES_TOTAL: &str = "gateway_route_messages_total";
/// Counter: messages a route failed to carry (retried: at least once).
pub const ROUTE_ERRORS_TOTAL: &str = "gateway_route_errors_total";
/// Gauge: a stream -> queue route's lag: records of its stream not yet carried, summed over
/// partitions (its consumer group's lag).
pub const ROUTE_LAG_MESSAGES: &str = "gateway_route_lag_messages";

// --- security limits (labels `protocol`, `limit`) ---------------------------------------------

/// Counter: clients or requests refused by a security limit (`limit`: `max_connections`,
/// `max_connections_per_address`, `max_connections_per_user`, `handshake_timeout`,
/// `auth_failure`, `frame_too_large`, `max_subscriptions`, `max_sessions`).
pub const LIMIT_REFUSALS_TOTAL: &str = "gateway_limit_refusals_total";

// --- per destination producers (labels `kind`, `destination`) ---------------------------------

/// Gauge (labels `kind` = `queue` | `topic` | `exchange`, `destination`): open sessions that
/// have sent to the destination (see docs/operations.md for what a producer is on each
/// protocol).
pub const DESTINATION_PRODUCERS: &str = "gateway_destination_producers";

/// Seconds buckets for the fsync and append-to-durable histograms: 50 us to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];
/// Buckets for appends per group commit.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Installs the process-wide Prometheus recorder and describes every metric. Call once.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(JOURNAL_FSYNC_SECONDS.to_string()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(JOURNAL_APPEND_DURABLE_SECONDS.to_string()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(STREAM_APPEND_DURABLE_SECONDS.to_string()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(JOURNAL_GROUP_COMMIT_APPENDS.to_string()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!(START_TIME_SECONDS).set(started);
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h};
    g!(
        BUILD_INFO,
        "Always 1; the label gives the gateway's version."
    );
    g!(
        START_TIME_SECONDS,
        Unit::Seconds,
        "Unix time the gateway started."
    );
    g!(
        QUEUE_READY_MESSAGES,
        Unit::Count,
        "Messages ready for delivery."
    );
    g!(
        QUEUE_UNACKED_MESSAGES,
        Unit::Count,
        "Messages delivered, not yet acknowledged."
    );
    g!(QUEUE_CONSUMERS, Unit::Count, "Open consumers of the queue.");
    g!(
        QUEUE_BYTES,
        Unit::Bytes,
        "Message body bytes held by the queue."
    );
    c!(
        QUEUE_ENQUEUED_TOTAL,
        Unit::Count,
        "Messages added to the queue."
    );
    c!(
        QUEUE_DELIVERED_TOTAL,
        Unit::Count,
        "Deliveries to consumers, redeliveries included."
    );
    c!(
        QUEUE_REDELIVERED_TOTAL,
        Unit::Count,
        "Redeliveries to consumers."
    );
    c!(
        QUEUE_ACKNOWLEDGED_TOTAL,
        Unit::Count,
        "Messages acknowledged by consumers."
    );
    c!(
        QUEUE_DEAD_LETTERED_TOTAL,
        Unit::Count,
        "Messages moved to a dead-letter queue (rejected or out of redeliveries)."
    );
    c!(
        QUEUE_EXPIRED_TOTAL,
        Unit::Count,
        "Messages that expired in the queue."
    );
    c!(
        QUEUE_RESIDENCE_SECONDS_TOTAL,
        Unit::Seconds,
        "Seconds from send to acknowledgement, summed over acknowledged messages."
    );
    c!(
        TOPIC_ENQUEUED_TOTAL,
        Unit::Count,
        "Messages published to the topic."
    );
    g!(
        TOPIC_SUBSCRIPTIONS,
        Unit::Count,
        "Subscriptions matching the topic, durable or not, wildcard ones included."
    );
    g!(
        TOPIC_CONSUMERS,
        Unit::Count,
        "Open consumers of the subscriptions matching the topic."
    );
    g!(
        TOPIC_UNACKED_MESSAGES,
        Unit::Count,
        "Messages of the topic's subscriptions delivered, not yet acknowledged."
    );
    g!(CONNECTIONS_OPEN, Unit::Count, "Open client connections.");
    c!(
        CONNECTIONS_ACCEPTED_TOTAL,
        Unit::Count,
        "Connections accepted by the listener."
    );
    c!(
        CONNECTIONS_REJECTED_TOTAL,
        Unit::Count,
        "Connections refused during the protocol handshake."
    );
    c!(
        NETWORK_RECEIVED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes read from clients."
    );
    c!(
        NETWORK_SENT_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes written to clients."
    );
    c!(
        DECODE_ERRORS_TOTAL,
        Unit::Count,
        "Malformed input rejected by a protocol codec."
    );
    g!(SESSIONS, Unit::Count, "Open engine sessions.");
    g!(CONSUMERS, Unit::Count, "Open consumers, all queues.");
    g!(
        PRODUCERS,
        Unit::Count,
        "Open sessions that have sent at least one message."
    );
    g!(
        PRODUCERS_BLOCKED,
        Unit::Count,
        "Sends waiting for room under flow control."
    );
    g!(MESSAGES, Unit::Count, "Messages held in all queues.");
    g!(
        TRANSACTIONS_OPEN,
        Unit::Count,
        "Local transactions not yet committed or rolled back."
    );
    g!(DURABLE_SUBSCRIPTIONS, Unit::Count, "Durable subscriptions.");
    g!(
        DURABLE_SUBSCRIPTIONS_INACTIVE,
        Unit::Count,
        "Durable subscriptions without an open consumer."
    );
    g!(
        MEMORY_USED_BYTES,
        Unit::Bytes,
        "Message body bytes held in memory."
    );
    g!(
        MEMORY_LIMIT_BYTES,
        Unit::Bytes,
        "Configured memory limit (0 = none)."
    );
    g!(
        STORE_USED_BYTES,
        Unit::Bytes,
        "Bytes of journal segment files and of spill files of paged-out messages."
    );
    g!(
        DATA_DIR_USED_BYTES,
        Unit::Bytes,
        "Bytes in the data directory: journal segments, spill files and stream segment files."
    );
    g!(
        DESTINATION_PRODUCERS,
        Unit::Count,
        "Producers of the destination: open sessions that have sent to it."
    );
    g!(
        STORE_LIMIT_BYTES,
        Unit::Bytes,
        "Configured store size limit (0 = none)."
    );
    g!(
        STORE_USAGE_RATIO,
        Unit::Percent,
        "Store use against its limit, or against used + free disk when unlimited (0 to 1)."
    );
    g!(
        DATA_DIR_FREE_BYTES,
        Unit::Bytes,
        "Free bytes on the data directory's file system."
    );
    g!(
        DATA_DIR_TOTAL_BYTES,
        Unit::Bytes,
        "Size of the data directory's file system."
    );
    g!(JOURNAL_SEGMENTS, Unit::Count, "Journal segment files.");
    c!(
        JOURNAL_FSYNCS_TOTAL,
        Unit::Count,
        "fdatasync calls of the journal."
    );
    c!(
        JOURNAL_COMPACTIONS_TOTAL,
        Unit::Count,
        "Journal segments compacted away."
    );
    g!(
        STORE_RECOVERY_SECONDS,
        Unit::Seconds,
        "Duration of the start-up recovery."
    );
    g!(
        STORE_RECOVERED_QUEUES,
        Unit::Count,
        "Durable queues restored at start-up."
    );
    g!(
        STORE_RECOVERED_MESSAGES,
        Unit::Count,
        "Messages restored at start-up."
    );
    g!(
        STORE_RECOVERED_BYTES,
        Unit::Bytes,
        "Journal bytes scanned at start-up."
    );
    g!(
        STORE_TRUNCATED_BYTES,
        Unit::Bytes,
        "Torn journal tail cut off at start-up."
    );
    g!(
        STREAM_END_OFFSET,
        Unit::Count,
        "End offset (high watermark) of the stream partition: the next offset to be written."
    );
    g!(
        STREAM_START_OFFSET,
        Unit::Count,
        "Log start offset of the stream partition: the earliest offset still stored."
    );
    g!(
        STREAM_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of the stream partition's segment files."
    );
    g!(
        STREAM_SEGMENTS,
        Unit::Count,
        "Segment files of the stream partition."
    );
    g!(
        GROUP_COMMITTED_OFFSET,
        Unit::Count,
        "Offset the consumer group committed for the partition."
    );
    g!(
        GROUP_LAG_MESSAGES,
        Unit::Count,
        "Records the consumer group has yet to consume: end offset - max(committed, start offset)."
    );
    g!(
        GROUP_MEMBERS,
        Unit::Count,
        "Members currently joined to the consumer group."
    );
    c!(
        ROUTE_MESSAGES_TOTAL,
        Unit::Count,
        "Messages a route carried between a stream and the queue world."
    );
    c!(
        ROUTE_ERRORS_TOTAL,
        Unit::Count,
        "Messages a route failed to carry (retried)."
    );
    g!(
        ROUTE_LAG_MESSAGES,
        Unit::Count,
        "Records of a stream -> queue route's stream not yet carried (its group's lag)."
    );
    c!(
        LIMIT_REFUSALS_TOTAL,
        Unit::Count,
        "Clients or requests refused by a security limit."
    );
    h!(
        JOURNAL_FSYNC_SECONDS,
        Unit::Seconds,
        "Duration of one journal fdatasync."
    );
    h!(
        JOURNAL_GROUP_COMMIT_APPENDS,
        Unit::Count,
        "Appends written together by one group commit."
    );
    h!(
        JOURNAL_APPEND_DURABLE_SECONDS,
        Unit::Seconds,
        "Seconds from a journal append (publish, ack) to its durable confirmation."
    );
    h!(
        STREAM_APPEND_DURABLE_SECONDS,
        Unit::Seconds,
        "Seconds a stream append (Kafka produce, route) took until durable per the log's sync policy."
    );
}

/// `gateway_connections_open{protocol, listener}`.
pub fn connections_open(protocol: &'static str, listener: &str) -> Gauge {
    metrics::gauge!(CONNECTIONS_OPEN, "protocol" => protocol, "listener" => listener.to_string())
}

/// `gateway_connections_accepted_total{protocol, listener}`.
pub fn connections_accepted(protocol: &'static str, listener: &str) -> Counter {
    metrics::counter!(CONNECTIONS_ACCEPTED_TOTAL, "protocol" => protocol, "listener" => listener.to_string())
}

/// `gateway_connections_rejected_total{protocol, listener}`.
pub fn connections_rejected(protocol: &'static str, listener: &str) -> Counter {
    metrics::counter!(CONNECTIONS_REJECTED_TOTAL, "protocol" => protocol, "listener" => listener.to_string())
}

/// `gateway_network_received_bytes_total{protocol, listener}`.
pub fn network_received(protocol: &'static str, listener: &str) -> Counter {
    metrics::counter!(NETWORK_RECEIVED_BYTES_TOTAL, "protocol" => protocol, "listener" => listener.to_string())
}

/// `gateway_network_sent_bytes_total{protocol, listener}`.
pub fn network_sent(protocol: &'static str, listener: &str) -> Counter {
    metrics::counter!(NETWORK_SENT_BYTES_TOTAL, "protocol" => protocol, "listener" => listener.to_string())
}

/// Counts one malformed frame or packet of `protocol` (`gateway_decode_errors_total`).
pub fn decode_error(protocol: &'static str) {
    metrics::counter!(DECODE_ERRORS_TOTAL, "protocol" => protocol).increment(1);
}

/// Makes `gateway_decode_errors_total{protocol}` visible (at 0) before any error.
pub fn register_protocol(protocol: &'static str) {
    metrics::counter!(DECODE_ERRORS_TOTAL, "protocol" => protocol).absolute(0);
}

/// Publishes the start-up recovery figures.
pub fn record_recovery(summary: &routes::RecoverySummary) {
    metrics::gauge!(STORE_RECOVERY_SECONDS).set(summary.duration.as_secs_f64());
    metrics::gauge!(STORE_RECOVERED_QUEUES).set(summary.queues as f64);
    metrics::gauge!(STORE_RECOVERED_MESSAGES).set(summary.messages as f64);
    metrics::gauge!(STORE_RECOVERED_BYTES).set(summary.bytes as f64);
    metrics::gauge!(STORE_TRUNCATED_BYTES).set(summary.truncated_bytes as f64);
}

/// Queue names published at the previous refresh: a queue deleted since reads 0.
#[derive(Default)]
pub struct QueueLabels {
    seen: Mutex<HashSet<String>>,
    /// (kind, destination) pairs with producers at the previous refresh.
    producers_seen: Mutex<HashSet<(&'static str, String)>>,
    /// Topics published at the previous refresh.
    topics_seen: Mutex<HashSet<String>>,
}

/// Reads the engine's state into the gauges and counters (called before each render).
/// `stream_bytes` is the size of the log's segment files ([`stream_bytes`]), part of the data
/// directory's use.
pub fn refresh(engine: &Engine, data_dir: &Path, stream_bytes: u64, labels: &QueueLabels) {
    let queues = engine.queue_stats();
    let mut now_seen = HashSet::with_capacity(queues.len());
    let mut held = 0u64;
    for q in &queues {
        let name = q.name.clone();
        held += (q.ready + q.unacked) as u64;
        metrics::gauge!(QUEUE_READY_MESSAGES, "queue" => name.clone()).set(q.ready as f64);
        metrics::gauge!(QUEUE_UNACKED_MESSAGES, "queue" => name.clone()).set(q.unacked as f64);
        metrics::gauge!(QUEUE_CONSUMERS, "queue" => name.clone()).set(q.consumers as f64);
        metrics::gauge!(QUEUE_BYTES, "queue" => name.clone()).set(q.bytes as f64);
        let c = &q.counters;
        metrics::counter!(QUEUE_ENQUEUED_TOTAL, "queue" => name.clone()).absolute(c.enqueued);
        metrics::counter!(QUEUE_DELIVERED_TOTAL, "queue" => name.clone()).absolute(c.delivered);
        metrics::counter!(QUEUE_REDELIVERED_TOTAL, "queue" => name.clone()).absolute(c.redelivered);
        metrics::counter!(QUEUE_ACKNOWLEDGED_TOTAL, "queue" => name.clone())
            .absolute(c.acknowledged);
        metrics::counter!(QUEUE_DEAD_LETTERED_TOTAL, "queue" => name.clone())
            .absolute(c.dead_lettered);
        metrics::counter!(QUEUE_EXPIRED_TOTAL, "queue" => name.clone()).absolute(c.expired);
        // Whole seconds: Prometheus counters here are integers.
        metrics::counter!(QUEUE_RESIDENCE_SECONDS_TOTAL, "queue" => name.clone())
            .absolute(c.acknowledged_residence_ms / 1000);
        now_seen.insert(name);
    }
    {
        let mut seen = labels.seen.lock().unwrap_or_else(|e| e.into_inner());
        for gone in seen.difference(&now_seen) {
            for name in [
                QUEUE_READY_MESSAGES,
                QUEUE_UNACKED_MESSAGES,
                QUEUE_CONSUMERS,
                QUEUE_BYTES,
            ] {
                metrics::gauge!(name, "queue" => gone.clone()).set(0.0);
            }
        }
        *seen = now_seen;
    }
    {
        let mut now_producing = HashSet::new();
        for p in engine.producers_by_destination() {
            metrics::gauge!(DESTINATION_PRODUCERS, "kind" => p.kind, "destination" => p.name.clone())
                .set(p.producers as f64);
            now_producing.insert((p.kind, p.name));
        }
        let mut seen = labels
            .producers_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (kind, name) in seen.difference(&now_producing) {
            metrics::gauge!(DESTINATION_PRODUCERS, "kind" => *kind, "destination" => name.clone())
                .set(0.0);
        }
        *seen = now_producing;
    }
    {
        let mut now_topics = HashSet::new();
        for t in engine.topic_stats() {
            let name = t.name;
            metrics::counter!(TOPIC_ENQUEUED_TOTAL, "topic" => name.clone()).absolute(t.enqueued);
            metrics::gauge!(TOPIC_SUBSCRIPTIONS, "topic" => name.clone())
                .set(t.subscriptions as f64);
            metrics::gauge!(TOPIC_CONSUMERS, "topic" => name.clone()).set(t.consumers as f64);
            metrics::gauge!(TOPIC_UNACKED_MESSAGES, "topic" => name.clone()).set(t.unacked as f64);
            now_topics.insert(name);
        }
        let mut seen = labels.topics_seen.lock().unwrap_or_else(|e| e.into_inner());
        // A topic known only through a subscription that closed since: its gauges read 0.
        for gone in seen.difference(&now_topics) {
            for name in [TOPIC_SUBSCRIPTIONS, TOPIC_CONSUMERS, TOPIC_UNACKED_MESSAGES] {
                metrics::gauge!(name, "topic" => gone.clone()).set(0.0);
            }
        }
        *seen = now_topics;
    }
    let g = engine.gauges();
    metrics::gauge!(MESSAGES).set(held as f64);
    metrics::gauge!(SESSIONS).set(g.sessions as f64);
    metrics::gauge!(CONSUMERS).set(g.consumers as f64);
    metrics::gauge!(PRODUCERS).set(g.producers as f64);
    metrics::gauge!(PRODUCERS_BLOCKED).set(g.blocked_producers as f64);
    metrics::gauge!(TRANSACTIONS_OPEN).set(routes::open_transactions() as f64);
    metrics::gauge!(DURABLE_SUBSCRIPTIONS).set(g.durable_subscriptions as f64);
    metrics::gauge!(DURABLE_SUBSCRIPTIONS_INACTIVE).set(g.inactive_durable_subscriptions as f64);
    metrics::gauge!(MEMORY_USED_BYTES).set(g.memory_used as f64);
    metrics::gauge!(MEMORY_LIMIT_BYTES).set(g.memory_limit as f64);
    // Journal segments plus the spill files of paged-out queue messages.
    let store_used = g.journal.bytes + engine.paged_bytes();
    metrics::gauge!(STORE_USED_BYTES).set(store_used as f64);
    metrics::gauge!(STORE_LIMIT_BYTES).set(g.disk_limit as f64);
    metrics::gauge!(JOURNAL_SEGMENTS).set(g.journal.segments as f64);
    metrics::counter!(JOURNAL_FSYNCS_TOTAL).absolute(g.journal.fsyncs);
    metrics::counter!(JOURNAL_COMPACTIONS_TOTAL).absolute(g.journal.compactions);
    let free = fs2::available_space(data_dir).ok();
    let total = fs2::total_space(data_dir).ok();
    if let Some(free) = free {
        metrics::gauge!(DATA_DIR_FREE_BYTES).set(free as f64);
    }
    if let Some(total) = total {
        metrics::gauge!(DATA_DIR_TOTAL_BYTES).set(total as f64);
    }
    let data_dir_used = store_used.saturating_add(stream_bytes);
    metrics::gauge!(DATA_DIR_USED_BYTES).set(data_dir_used as f64);
    // With a limit, the ratio is of what the limit governs (the journal and spill files: past
    // it producers are flow-controlled). Without one, it is how full the disk is for the
    // gateway: everything it keeps there, streams included, against that plus the free space.
    let capacity = if g.disk_limit > 0 {
        Some(g.disk_limit as f64)
    } else {
        free.map(|f| data_dir_used as f64 + f as f64)
    };
    let used = if g.disk_limit > 0 {
        store_used as f64
    } else {
        data_dir_used as f64
    };
    if let Some(capacity) = capacity.filter(|c| *c > 0.0) {
        metrics::gauge!(STORE_USAGE_RATIO).set((used / capacity).min(1.0));
    }
}

/// Counts one refusal by a security limit (`gateway_limit_refusals_total{protocol, limit}`).
/// `limit` is one of the names listed at [`LIMIT_REFUSALS_TOTAL`].
pub fn limit_refused(protocol: &'static str, limit: &'static str) {
    metrics::counter!(LIMIT_REFUSALS_TOTAL, "protocol" => protocol, "limit" => limit).increment(1);
}

/// Counts a Kafka frame the codec rejected: a decode error, and a `frame_too_large` refusal
/// when it was over `max_frame_bytes`.
pub fn kafka_codec_error(e: &codecs::kafka::KafkaCodecError) {
    if let codecs::kafka::KafkaCodecError::Decode(d) = e {
        decode_error("kafka");
        if matches!(d, codecs::kafka::KafkaDecodeError::FrameTooLarge { .. }) {
            limit_refused("kafka", "frame_too_large");
        }
    }
}

/// Counts an OpenWire command the codec rejected: a decode error, and a `frame_too_large`
/// refusal when it was over `max_frame_bytes`. Encoding and I/O errors are not counted.
pub fn openwire_codec_error(e: &codecs::openwire::OpenWireCodecError) {
    if let codecs::openwire::OpenWireCodecError::Decode(d) = e {
        decode_error("openwire");
        if matches!(
            d,
            codecs::openwire::OpenWireDecodeError::FrameTooLarge { .. }
        ) {
            limit_refused("openwire", "frame_too_large");
        }
    }
}

/// Counts an AMQP 0-9-1 frame the codec rejected: a decode error, and a `frame_too_large`
/// refusal when it was over the negotiated `frame_max`.
pub fn amqp091_decode_error(e: &codecs::amqp091::Amqp091DecodeError) {
    decode_error("amqp");
    if matches!(e, codecs::amqp091::Amqp091DecodeError::FrameTooLarge { .. }) {
        limit_refused("amqp", "frame_too_large");
    }
}

/// Makes `gateway_limit_refusals_total{protocol, limit}` visible (at 0) for the limits a
/// listener of `protocol` enforces, so that dashboards show 0 rather than nothing.
pub fn register_limits(protocol: &'static str) {
    let mut limits = vec![
        "max_connections",
        "max_connections_per_address",
        "handshake_timeout",
    ];
    match protocol {
        "stomp" | "mqtt" => limits.extend([
            "max_connections_per_user",
            "auth_failure",
            "frame_too_large",
            "max_subscriptions",
        ]),
        "amqp" => limits.extend([
            "max_connections_per_user",
            "auth_failure",
            "max_sessions",
            "frame_too_large",
        ]),
        // Both log in through the shared authenticator.
        "kafka" | "openwire" => limits.extend([
            "max_connections_per_user",
            "auth_failure",
            "frame_too_large",
        ]),
        _ => {}
    }
    for limit in limits {
        metrics::counter!(LIMIT_REFUSALS_TOTAL, "protocol" => protocol, "limit" => limit)
            .increment(0);
    }
}

/// Counts `n` messages carried by route `route` (`gateway_route_messages_total`).
pub fn route_carried(route: &str, n: u64) {
    metrics::counter!(ROUTE_MESSAGES_TOTAL, "route" => route.to_string()).increment(n);
}

/// Counts `n` messages route `route` failed to carry (`gateway_route_errors_total`).
pub fn route_failed(route: &str, n: u64) {
    metrics::counter!(ROUTE_ERRORS_TOTAL, "route" => route.to_string()).increment(n);
}

/// Makes a route's counters visible (at 0) before its first message.
pub fn register_route(route: &str) {
    metrics::counter!(ROUTE_MESSAGES_TOTAL, "route" => route.to_string()).increment(0);
    metrics::counter!(ROUTE_ERRORS_TOTAL, "route" => route.to_string()).increment(0);
}

/// A stream -> queue route whose lag is its consumer group's: (route, group, stream).
pub type StreamRouteSource = (String, String, String);

/// Stream partitions, group partitions and routes published at the previous refresh: one
/// that disappeared since (stream or group deleted, route removed) reads 0.
#[derive(Default)]
pub struct StreamLabels {
    seen: Mutex<HashSet<Vec<(&'static str, String)>>>,
}

/// One gauge series: metric name and its labels.
type Series = (&'static str, Vec<(&'static str, String)>);

fn set_gauge(
    series: &mut Vec<Series>,
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    v: f64,
) {
    let owned: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(name, owned).set(v);
    series.push((name, labels));
}

/// Bytes of every stream partition's segment files.
pub fn stream_bytes(log: &routes::store::log::Log) -> u64 {
    let mut total = 0u64;
    for stream in log.streams() {
        let Some(cfg) = log.stream_config(&stream) else {
            continue;
        };
        for partition in 0..cfg.partitions {
            total = total.saturating_add(log.partition_size_bytes(&stream, partition).unwrap_or(0));
        }
    }
    total
}

/// Reads streams, consumer groups and routes into their gauges (called before each render):
/// per partition end and start offsets, size and segments; per group and partition the
/// committed offset and lag; members per group (from `members`: group -> joined members);
/// per stream -> queue route the lag of its group.
pub fn refresh_streams(
    log: &routes::store::log::Log,
    members: &[(String, usize)],
    routes: &[StreamRouteSource],
    labels: &StreamLabels,
) {
    let mut series: Vec<Series> = Vec::new();
    for stream in log.streams() {
        let Some(cfg) = log.stream_config(&stream) else {
            continue;
        };
        for partition in 0..cfg.partitions {
            let l = vec![
                ("stream", stream.clone()),
                ("partition", partition.to_string()),
            ];
            if let Ok(end) = log.latest_offset(&stream, partition) {
                set_gauge(&mut series, STREAM_END_OFFSET, l.clone(), end as f64);
            }
            if let Ok(start) = log.earliest_offset(&stream, partition) {
                set_gauge(&mut series, STREAM_START_OFFSET, l.clone(), start as f64);
            }
            if let Ok(bytes) = log.partition_size_bytes(&stream, partition) {
                set_gauge(&mut series, STREAM_SIZE_BYTES, l.clone(), bytes as f64);
            }
            if let Ok(segments) = log.segment_count(&stream, partition) {
                set_gauge(&mut series, STREAM_SEGMENTS, l, segments as f64);
            }
        }
    }
    let mut groups: Vec<String> = log.groups();
    for (group, _) in members {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    for group in &groups {
        for p in crate::kafka::group_lag(log, group) {
            let l = vec![
                ("group", group.clone()),
                ("stream", p.stream.clone()),
                ("partition", p.partition.to_string()),
            ];
            set_gauge(
                &mut series,
                GROUP_COMMITTED_OFFSET,
                l.clone(),
                p.committed as f64,
            );
            set_gauge(&mut series, GROUP_LAG_MESSAGES, l, p.lag as f64);
        }
        let joined = members
            .iter()
            .find(|(g, _)| g == group)
            .map_or(0, |(_, n)| *n);
        set_gauge(
            &mut series,
            GROUP_MEMBERS,
            vec![("group", group.clone())],
            joined as f64,
        );
    }
    for (route, group, stream) in routes {
        let Some(cfg) = log.stream_config(stream) else {
            continue;
        };
        // A partition the route has not committed yet is read from its start: all of it is lag.
        let mut lag = 0u64;
        for partition in 0..cfg.partitions {
            let start = log.earliest_offset(stream, partition).unwrap_or(0);
            let end = log.latest_offset(stream, partition).unwrap_or(0);
            let committed = log
                .committed_offset(group, stream, partition)
                .map_or(start, |(o, _)| o);
            lag += end.saturating_sub(committed.max(start));
        }
        set_gauge(
            &mut series,
            ROUTE_LAG_MESSAGES,
            vec![("route", route.clone())],
            lag as f64,
        );
    }
    let now: HashSet<Vec<(&'static str, String)>> = series
        .iter()
        .map(|(name, l)| {
            let mut key = l.clone();
            key.push(("__name__", (*name).to_string()));
            key
        })
        .collect();
    let mut seen = labels.seen.lock().unwrap_or_else(|e| e.into_inner());
    for gone in seen.difference(&now) {
        let name = gone
            .iter()
            .find(|(k, _)| *k == "__name__")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let owned: Vec<metrics::Label> = gone
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| metrics::Label::new(*k, v.clone()))
            .collect();
        metrics::gauge!(name, owned).set(0.0);
    }
    *seen = now;
}
