//! Durability: the queue journal and the partitioned log.

pub mod error;
pub mod journal;
pub mod log;
pub mod metric_names;

pub use error::StoreError;
pub use journal::{
    Commit, Journal, JournalOptions, JournalRecord, JournalStats, PreparedTx, QueueId,
    RecoveredMessage, RecoveredQueue, Recovery, RecoveryReport, SyncPolicy,
};
