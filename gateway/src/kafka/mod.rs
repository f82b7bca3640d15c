//! The Kafka listener: the Kafka wire protocol over the partitioned log, so that standard
//! Kafka clients (librdkafka/kcat, kafka-python, the Java client) produce to and consume from
//! the gateway's streams, with consumer groups and committed offsets.
//!
//! The gateway is a single-node cluster: node [`KafkaSettings::node_id`] leads every partition
//! of every stream (a stream is a topic) and coordinates every group.

pub mod groups;
mod handlers;
pub mod session;

use codecs::kafka::KafkaLimits;
use groups::GroupCoordinator;
use routes::store::log::Log;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Settings the Kafka sessions run with, taken from the configuration.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Frame size limit.
    pub limits: KafkaLimits,
    /// Node id announced.
    pub node_id: i32,
    /// Host clients are told to connect to.
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: u16,
    /// Create unknown topics asked for in Metadata requests.
    pub auto_create_streams: bool,
    /// Partitions of streams created without a count.
    pub default_partitions: u32,
    /// How long an empty group waits after a first join for more members.
    pub group_initial_rebalance_delay: std::time::Duration,
    /// Checks SASL credentials and hands out principals (shared by every listener).
    pub authenticator: Arc<crate::security::Authenticator>,
    /// SASL mechanisms offered (`PLAIN`, `SCRAM-SHA-256`).
    pub sasl_mechanisms: Vec<String>,
    /// Require SASL even where anonymous clients are admitted.
    pub require_sasl: bool,
}

/// Where the clients of one Kafka listener are told to connect (Metadata brokers,
/// FindCoordinator), when it is not the broker-wide `advertised_host:advertised_port`: the TLS
/// listener sends its clients back to the TLS port, as a Kafka broker's `advertised.listeners`
/// entry per security protocol does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedListener {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl AdvertisedListener {
    /// Points the broker addresses of a Metadata or FindCoordinator response at this listener.
    pub fn apply(&self, response: &mut codecs::kafka::KafkaResponse) {
        use codecs::kafka::KafkaResponseBody;
        match &mut response.body {
            KafkaResponseBody::Metadata(m) => {
                for broker in &mut m.brokers {
                    broker.host.clone_from(&self.host);
                    broker.port = i32::from(self.port);
                }
            }
            KafkaResponseBody::FindCoordinator(c) if c.error_code == 0 => {
                c.host.clone_from(&self.host);
                c.port = i32::from(self.port);
            }
            _ => {}
        }
    }
}

/// What every Kafka connection shares: the log, the group coordinator and the settings.
pub struct KafkaBroker {
    /// The partitioned log.
    pub log: Arc<Log>,
    /// Consumer groups.
    pub groups: GroupCoordinator,
    /// Settings.
    pub settings: KafkaSettings,
    /// Last producer id handed out (seeded from the clock, so ids differ across restarts).
    producer_ids: AtomicI64,
}

impl KafkaBroker {
    /// A broker over `log`.
    pub fn new(log: Arc<Log>, settings: KafkaSettings) -> Self {
        KafkaBroker {
            log,
            groups: GroupCoordinator::new(settings.group_initial_rebalance_delay),
            settings,
            producer_ids: AtomicI64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            ),
        }
    }

    /// A producer id not handed out before by this process.
    pub fn next_producer_id(&self) -> i64 {
        self.producer_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Expires group members whose sessions timed out, every `period`, until the runtime
    /// stops.
    pub async fn run_group_expiry(self: Arc<Self>, period: std::time::Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            self.groups.expire(std::time::Instant::now());
        }
    }
}

/// How far a consumer group is behind on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Stream (topic).
    pub stream: String,
    /// Partition.
    pub partition: u32,
    /// The group's committed offset.
    pub committed: u64,
    /// The partition's high watermark (next offset to be written).
    pub high_watermark: u64,
    /// Records the group has yet to consume: `high watermark - max(committed, log start)`
    /// (records deleted by retention are not counted as lag).
    pub lag: u64,
}

/// The lag of every partition `group` has committed offsets for, sorted by stream and
/// partition (for metrics and the admin API).
pub fn group_lag(log: &Log, group: &str) -> Vec<PartitionLag> {
    log.group_offsets(group)
        .into_iter()
        .filter_map(|c| {
            let start = log.earliest_offset(&c.stream, c.partition).ok()?;
            let high_watermark = log.latest_offset(&c.stream, c.partition).ok()?;
            let lag = high_watermark.saturating_sub(c.offset.max(start));
            Some(PartitionLag {
                stream: c.stream,
                partition: c.partition,
                committed: c.offset,
                high_watermark,
                lag,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use routes::store::log::{LogOptions, LogRecord, LogSync, StreamConfig};

    #[test]
    fn lag_is_high_watermark_minus_committed_or_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = LogOptions::new(dir.path());
        options.sync = LogSync::Never;
        let log = Log::open(options).unwrap();
        log.create_stream("orders", StreamConfig::new(2)).unwrap();
        let records: Vec<LogRecord> = (0..10).map(|i| LogRecord::new(i, "x")).collect();
        log.append("orders", 0, &records).unwrap();
        log.append("orders", 1, &records[..4]).unwrap();
        log.commit_offset("g", "orders", 0, 7, "").unwrap();
        log.commit_offset("g", "orders", 1, 4, "").unwrap();
        let lag = group_lag(&log, "g");
        assert_eq!(
            lag.iter()
                .map(|l| (l.partition, l.committed, l.high_watermark, l.lag))
                .collect::<Vec<_>>(),
            vec![(0, 7, 10, 3), (1, 4, 4, 0)]
        );
        assert!(group_lag(&log, "nobody").is_empty());
    }
}
