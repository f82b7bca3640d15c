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
            groups: GroupCoordinator::default(),
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
