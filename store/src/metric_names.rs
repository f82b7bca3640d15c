//! Names of the metrics this crate records through the `metrics` facade. They are no-ops until
//! the process installs a recorder (the gateway installs a Prometheus one); the gateway's metric
//! catalogue re-exports these so that every metric name is listed in one place.

/// Histogram: seconds one `fdatasync` of the active journal segment took (group commits,
/// interval syncs and segment seals).
pub const JOURNAL_FSYNC_SECONDS: &str = "gateway_journal_fsync_seconds";
/// Histogram: appends (producer batches) written together by one group commit.
pub const JOURNAL_GROUP_COMMIT_APPENDS: &str = "gateway_journal_group_commit_appends";
/// Histogram: seconds from an append (a publish, ack or transaction reaching the journal) to the
/// moment it is durable per the sync policy: the publish-to-durable-confirm time. Label `op`:
/// `publish`, `ack` or `other`.
pub const JOURNAL_APPEND_DURABLE_SECONDS: &str = "gateway_journal_append_durable_seconds";
/// Histogram: seconds one stream append (a Kafka produce batch, a route's batch) took until it
/// was durable per the log's sync policy: the produce-to-durable time of streams.
pub const STREAM_APPEND_DURABLE_SECONDS: &str = "gateway_stream_append_durable_seconds";
