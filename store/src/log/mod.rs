//! The replayable partitioned log: Kafka-like streams stored on local disk.
//!
//! A [`Log`] holds named streams; a stream has a fixed number of partitions; a partition is an
//! append-only sequence of records numbered by offset from 0. Records are appended in batches
//! (one [`Log::append`] call = one batch, all-or-nothing) and read back by offset, by timestamp
//! ([`Log::offset_for_timestamp`]) or from the earliest/latest offset. Retention deletes whole
//! old segments by age and by size. Consumer groups' committed offsets are stored durably
//! next to the streams. Nothing here knows any wire protocol.
//!
//! # Layout
//!
//! ```text
//! <dir>/FORMAT                                  "gateway-log 1"
//! <dir>/streams/<name>/stream.meta              partitions and retention (CRC'd)
//! <dir>/streams/<name>/<partition>/<base>.log        batches (see `record` format)
//! <dir>/streams/<name>/<partition>/<base>.index      sparse offset -> position
//! <dir>/streams/<name>/<partition>/<base>.timeindex  sparse running max timestamp
//! <dir>/groups/g-<hex group>.offsets            committed offsets (CRC'd records)
//! <dir>/tmp/                                    staging for stream create/delete
//! ```
//!
//! Segment files are named by the offset of their first record, zero-padded to 20 digits. A
//! partition's last segment is the active one; a new segment starts when the next batch would
//! grow the active one past [`LogOptions::segment_bytes`]. Sealed segments are never written
//! again.
//!
//! # Durability
//!
//! - [`LogSync::Always`]: `append` returns after `fdatasync` of the batch, which then survives
//!   a power cut. [`LogSync::Never`]: the batch is in the OS page cache when `append` returns;
//!   it survives a crash of the process but not of the machine, until [`Log::close`] (or a
//!   segment roll, which always syncs the sealed segment).
//! - Stream creation, deletion, configuration and offset commits are always synced.
//! - Readers only see appended batches, so with `Always` they see only durable data.
//!
//! # Recovery
//!
//! Every batch carries a CRC32C over all of it but its length and CRC fields. On open the batches
//! after each segment's last index entry are verified (every batch with
//! [`LogOptions::verify_on_open`]). A damaged batch with nothing intact after it is a torn tail
//! and is truncated (and the truncation fsynced). Damage followed by an intact batch, or in a
//! segment that has a non-empty successor, refuses to open with [`LogError::InteriorDamage`];
//! with [`LogOptions::repair`] the segment is truncated at the damage and all later segments
//! are deleted (as Kafka does). Index files are rebuilt from the log when they are missing or
//! inconsistent. What recovery did is in [`Log::recovery_report`]. Batches read later are
//! verified again, so damage to data trusted on open surfaces as [`LogError::Corrupt`].
//!
//! With `LogSync::Never` a power cut can persist pages out of order, which looks like interior
//! damage in the unsynced tail; open with `repair` in that case.

mod error;
mod fsutil;
mod murmur;
mod offsets;
mod partition;
mod record;
mod segment;
mod stream;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

pub use error::LogError;
pub use murmur::{kafka_partition, murmur2};
pub use offsets::{CommittedOffset, MAX_COMMIT_METADATA_BYTES, MAX_GROUP_NAME_BYTES};
pub use record::{BatchRecords, LogBatch, LogRecord, StoredRecord, MAX_BATCH_BYTES};

use error::IoContext;
use fsutil::{sync_dir, write_atomic};
use offsets::OffsetStore;
use partition::{lock, read, write, Partition, PartitionOptions};
use stream::{encode_meta, validate_name, Stream, META_FILE};

/// Content of the `FORMAT` file this build writes and accepts.
const FORMAT: &str = "gateway-log 1\n";
/// Largest partition count accepted per stream.
pub const MAX_PARTITIONS: u32 = 10_000;

/// When appended batches reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSync {
    /// `fdatasync` before `append` returns: an acknowledged batch survives a power cut.
    Always,
    /// Leave it to the OS: an acknowledged batch survives a process crash but may be lost in a
    /// power cut. Segments are synced when sealed and on [`Log::close`].
    Never,
}

/// How a [`Log`] is opened.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Root directory (created if missing).
    pub dir: PathBuf,
    /// Size at which the active segment is sealed and a new one started (64 B ..= 4 GiB - 1).
    /// A batch larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Bytes of batches between two sparse index entries (0 = index every batch).
    pub index_interval_bytes: u32,
    /// Durability of appends.
    pub sync: LogSync,
    /// On damage followed by intact data: truncate at the damage and drop what follows
    /// (`true`), or refuse to open (`false`).
    pub repair: bool,
    /// Verify the checksum of every batch of every segment on open, instead of only the
    /// batches after each segment's last index entry.
    pub verify_on_open: bool,
}

impl LogOptions {
    /// Defaults: 1 GiB segments, an index entry every 4 KiB, [`LogSync::Always`], no repair,
    /// no full verification.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogOptions {
            dir: dir.into(),
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            sync: LogSync::Always,
            repair: false,
            verify_on_open: false,
        }
    }

    fn validate(&self) -> Result<(), LogError> {
        if !(64..=u64::from(u32::MAX)).contains(&self.segment_bytes) {
            return Err(LogError::InvalidConfig(format!(
                "segment_bytes {} outside 64..=4294967295",
                self.segment_bytes
            )));
        }
        Ok(())
    }

    fn partition_options(&self) -> PartitionOptions {
        PartitionOptions {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: self.index_interval_bytes,
            sync: self.sync,
            full_scan: self.verify_on_open,
            repair: self.repair,
        }
    }
}

/// Configuration of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Number of partitions (1 ..= [`MAX_PARTITIONS`]); fixed at creation.
    pub partitions: u32,
    /// Delete a sealed segment once its newest record timestamp is more than this many
    /// milliseconds before `now_ms` of [`Log::enforce_retention`].
    pub retention_ms: Option<u64>,
    /// Per partition: delete the oldest sealed segments while what remains is still at least
    /// this many bytes (so a partition keeps between this and this plus one segment).
    pub retention_bytes: Option<u64>,
}

impl StreamConfig {
    /// `partitions` partitions, kept forever.
    pub fn new(partitions: u32) -> Self {
        StreamConfig {
            partitions,
            retention_ms: None,
            retention_bytes: None,
        }
    }
}

/// Why retention deleted a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionReason {
    /// Its newest record was older than `retention_ms`.
    Age,
    /// The partition was larger than `retention_bytes`.
    Size,
}

/// One segment deleted by retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedSegment {
    /// Stream name.
    pub stream: String,
    /// Partition number.
    pub partition: u32,
    /// First offset of the segment.
    pub base_offset: u64,
    /// Offset after its last record (the partition's new earliest offset, if it was first).
    pub next_offset: u64,
    /// Size of its log file.
    pub bytes: u64,
    /// Which limit removed it.
    pub reason: RetentionReason,
}

/// What [`Log::enforce_retention`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Deleted segments, per partition oldest first.
    pub deleted: Vec<DeletedSegment>,
}

impl RetentionReport {
    /// Total bytes of log files deleted.
    pub fn bytes_deleted(&self) -> u64 {
        self.deleted.iter().map(|d| d.bytes).sum()
    }
}

/// One truncation performed while opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The file truncated.
    pub path: PathBuf,
    /// Its new length (the position of the damage).
    pub position: u64,
    /// Bytes cut from it.
    pub bytes_dropped: u64,
    /// Later segment files deleted (only with repair of interior damage).
    pub segments_dropped: Vec<PathBuf>,
    /// What was wrong at `position`.
    pub reason: String,
    /// Whether intact data followed (only possible with repair).
    pub interior: bool,
}

/// What recovery did when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Truncations, in the order performed.
    pub truncations: Vec<Truncation>,
}

/// The partitioned log. `Send + Sync`; share it with an `Arc`.
///
/// Appends to one partition are serialized; different partitions proceed in parallel, and
/// reads never wait for an append's fsync.
///
/// ### Invariants
/// - Every partition has exactly one active segment and any number of sealed ones, ordered by
///   base offset with no overlap.
/// - Offsets of a partition only grow; retention only removes whole sealed segments from the
///   front, so `earliest_offset <= latest_offset` always.
/// - Stream directories appear and disappear by rename, so a crash never leaves half a stream.
pub struct Log {
    opts: LogOptions,
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    admin: Mutex<()>,
    offsets: OffsetStore,
    closed: AtomicBool,
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.opts.dir)
            .field("streams", &self.streams())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens (creating if needed) the log in `opts.dir` and recovers every stream.
    pub fn open(opts: LogOptions) -> Result<Log, LogError> {
        opts.validate()?;
        let dir = opts.dir.clone();
        fs::create_dir_all(&dir).ctx(&dir)?;
        let format_path = dir.join("FORMAT");
        match fs::read_to_string(&format_path) {
            Ok(found) if found == FORMAT => {}
            Ok(found) => {
                return Err(LogError::UnsupportedFormat {
                    path: format_path,
                    found,
                    expected: FORMAT.to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&format_path, FORMAT.as_bytes())?;
            }
            Err(e) => return Err(LogError::io(format_path, e)),
        }
        let tmp = dir.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).ctx(&tmp)?;
        }
        fs::create_dir_all(&tmp).ctx(&tmp)?;
        let streams_dir = dir.join("streams");
        fs::create_dir_all(&streams_dir).ctx(&streams_dir)?;
        sync_dir(&dir)?;

        let popts = opts.partition_options();
        let mut truncations = Vec::new();
        let mut streams = HashMap::new();
        for entry in fs::read_dir(&streams_dir).ctx(&streams_dir)? {
            let entry = entry.ctx(&streams_dir)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_name(&name).is_err() {
                tracing::warn!(name, "ignoring unexpected entry in streams directory");
                continue;
            }
            let sdir = entry.path();
            let config = Stream::read_meta(&sdir)?;
            let mut partitions = Vec::with_capacity(config.partitions as usize);
            for p in 0..config.partitions {
                partitions.push(Partition::open(
                    sdir.join(p.to_string()),
                    popts,
                    &mut truncations,
                )?);
            }
            streams.insert(
                name,
                Arc::new(Stream {
                    dir: sdir,
                    config: RwLock::new(config),
                    partitions,
                    next_rr: AtomicU32::new(0),
                }),
            );
        }
        let offsets = OffsetStore::open(dir.join("groups"), opts.repair, &mut truncations)?;
        offsets.retain_streams(|s| streams.contains_key(s))?;
        Ok(Log {
            opts,
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
            offsets,
            closed: AtomicBool::new(false),
            recovery: RecoveryReport { truncations },
        })
    }

    /// What recovery changed on disk while opening.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    fn stream(&self, name: &str) -> Result<Arc<Stream>, LogError> {
        self.check_open()?;
        read(&self.streams)
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::StreamNotFound(name.to_string()))
    }

    fn with_partition<T>(
        &self,
        stream: &str,
        partition: u32,
        f: impl FnOnce(&Partition) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let s = self.stream(stream)?;
        match s.partitions.get(partition as usize) {
            Some(p) => f(p),
            None => Err(LogError::PartitionNotFound {
                stream: stream.to_string(),
                partition,
                partitions: s.partitions.len() as u32,
            }),
        }
    }

    /// Creates a stream. Idempotent: if it exists with the same partition count this succeeds
    /// and applies the retention settings of `cfg` (so a declarative configuration can be
    /// re-applied on every start); a different partition count is an error.
    pub fn create_stream(&self, name: &str, cfg: StreamConfig) -> Result<(), LogError> {
        self.check_open()?;
        validate_name(name)?;
        if cfg.partitions == 0 || cfg.partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidConfig(format!(
                "partitions {} outside 1..={MAX_PARTITIONS}",
                cfg.partitions
            )));
        }
        let _admin = lock(&self.admin);
        if let Some(s) = read(&self.streams).get(name).cloned() {
            let existing = s.partitions.len() as u32;
            if existing != cfg.partitions {
                return Err(LogError::PartitionCountMismatch {
                    stream: name.to_string(),
                    existing,
                    requested: cfg.partitions,
                });
            }
            return s.set_config(cfg);
        }
        let tmp = self.opts.dir.join("tmp");
        let stage = tmp.join(format!("{name}.create"));
        if stage.exists() {
            fs::remove_dir_all(&stage).ctx(&stage)?;
        }
        fs::create_dir(&stage).ctx(&stage)?;
        write_atomic(&stage.join(META_FILE), &encode_meta(&cfg))?;
        let popts = self.opts.partition_options();
        for p in 0..cfg.partitions {
            let pdir = stage.join(p.to_string());
            fs::create_dir(&pdir).ctx(&pdir)?;
            Partition::create_files(&pdir, &popts)?;
        }
        sync_dir(&stage)?;
        let streams_dir = self.opts.dir.join("streams");
        let sdir = streams_dir.join(name);
        fs::rename(&stage, &sdir).ctx(&sdir)?;
        sync_dir(&streams_dir)?;
        sync_dir(&tmp)?;
        let mut truncations = Vec::new();
        let mut partitions = Vec::with_capacity(cfg.partitions as usize);
        for p in 0..cfg.partitions {
            partitions.push(Partition::open(
                sdir.join(p.to_string()),
                popts,
                &mut truncations,
            )?);
        }
        let stream = Stream {
            dir: sdir,
            config: RwLock::new(cfg),
            partitions,
            next_rr: AtomicU32::new(0),
        };
        write(&self.streams).insert(name.to_string(), Arc::new(stream));
        Ok(())
    }

    /// The configuration of a stream, if it exists.
    pub fn stream_config(&self, name: &str) -> Option<StreamConfig> {
        read(&self.streams).get(name).map(|s| s.config())
    }

    /// Names of all streams, sorted.
    pub fn streams(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.streams).keys().cloned().collect();
        v.sort();
        v
    }

    /// Deletes a stream with all its data and every group's committed offsets for it.
    /// Appends racing with the deletion fail with [`LogError::StreamNotFound`].
    pub fn delete_stream(&self, name: &str) -> Result<(), LogError> {
        self.check_open()?;
        let _admin = lock(&self.admin);
        let Some(stream) = write(&self.streams).remove(name) else {
            return Err(LogError::StreamNotFound(name.to_string()));
        };
        for p in &stream.partitions {
            p.mark_deleted();
        }
        let streams_dir = self.opts.dir.join("streams");
        let trash = self.opts.dir.join("tmp").join(format!("{name}.deleted"));
        if trash.exists() {
            fs::remove_dir_all(&trash).ctx(&trash)?;
        }
        fs::rename(&stream.dir, &trash).ctx(&stream.dir)?;
        sync_dir(&streams_dir)?;
        fs::remove_dir_all(&trash).ctx(&trash)?;
        self.offsets.retain_streams(|s| s != name)
    }

    /// The partition for a record: Kafka's default partitioner ([`kafka_partition`]) for a
    /// key, round robin over the stream's partitions for no key.
    pub fn partition_for(&self, stream: &str, key: Option<&[u8]>) -> Result<u32, LogError> {
        let s = self.stream(stream)?;
        Ok(match key {
            Some(k) => kafka_partition(k, s.partitions.len() as u32),
            None => s.round_robin(),
        })
    }

    /// Appends `records` as one batch and returns the offset of the first; the others follow
    /// consecutively. Returns after the batch is durable as [`LogOptions::sync`] says. After an
    /// I/O error the partition refuses further appends until the log is reopened.
    pub fn append(
        &self,
        stream: &str,
        partition: u32,
        records: &[LogRecord],
    ) -> Result<u64, LogError> {
        let start = std::time::Instant::now();
        let first = self.with_partition(stream, partition, |p| p.append(stream, records))?;
        metrics::histogram!(crate::metric_names::STREAM_APPEND_DURABLE_SECONDS)
            .record(start.elapsed().as_secs_f64());
        Ok(first)
    }

    /// Records from `offset` on, in order: at most about `max_bytes` of encoded records
    /// ([`LogRecord::encoded_len`]) but always at least one if any exists at or after `offset`.
    /// Empty at the log end; [`LogError::OffsetOutOfRange`] below the earliest or beyond the
    /// latest offset.
    pub fn read(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let batches = self.read_batches(stream, partition, offset, max_bytes)?;
        let mut out = Vec::new();
        let mut used = 0usize;
        for b in &batches {
            for r in b.records() {
                if r.offset < offset {
                    continue;
                }
                let size = r.record.encoded_len();
                if !out.is_empty() && used + size > max_bytes {
                    return Ok(out);
                }
                used += size;
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Whole verified batches from the one holding `offset` on, up to about `max_bytes` of
    /// frames (at least one batch if any record exists at or after `offset`). The first batch
    /// may start before `offset`. This is the cheap path for serving fetches: one read per
    /// segment, records decoded lazily with zero-copy keys and values.
    pub fn read_batches(
        &self,
        stream: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<Vec<LogBatch>, LogError> {
        self.with_partition(stream, partition, |p| p.read_batches(offset, max_bytes))
    }

    /// The earliest offset still stored (Kafka's log start offset).
    pub fn earliest_offset(&self, stream: &str, partition: u32) -> Result<u64, LogError> {
        self.with_partition(stream, partition, |p| Ok(p.earliest()))
    }

    /// The next offset to be written (Kafka's log end offset / high watermark).
    pub fn latest_offset(&self, stream: &str, partition: u32) -> Result<u64, LogError> {
        self.with_partition(stream, partition, |p| Ok(p.latest()))
    }

    /// The first offset, in log order, whose record timestamp is `>= ts_ms`; `None` if no
    /// stored record is that recent.
    pub fn offset_for_timestamp(
        &self,
        stream: &str,
        partition: u32,
        ts_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.with_partition(stream, partition, |p| p.offset_for_timestamp(ts_ms))
    }

    /// A receiver of the partition's latest offset, updated after every append: lets a fetch
    /// wait for new data without polling. It is closed when the stream is deleted.
    pub fn subscribe(
        &self,
        stream: &str,
        partition: u32,
    ) -> Result<watch::Receiver<u64>, LogError> {
        self.with_partition(stream, partition, |p| Ok(p.subscribe()))
    }

    /// Number of segments of a partition (sealed and active), for diagnostics and metrics.
    pub fn segment_count(&self, stream: &str, partition: u32) -> Result<usize, LogError> {
        self.with_partition(stream, partition, |p| Ok(p.segment_count()))
    }

    /// Bytes of log files of a partition, for diagnostics and metrics.
    pub fn partition_size_bytes(&self, stream: &str, partition: u32) -> Result<u64, LogError> {
        self.with_partition(stream, partition, |p| Ok(p.size_bytes()))
    }

    /// Applies every stream's retention at time `now_ms` (ms since the Unix epoch; passed in
    /// so callers and tests control the clock). Deletes whole sealed segments only, never a
    /// partition's active segment.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, LogError> {
        self.check_open()?;
        let streams: Vec<(String, Arc<Stream>)> = read(&self.streams)
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect();
        let mut report = RetentionReport::default();
        for (name, s) in streams {
            let cfg = s.config();
            if cfg.retention_ms.is_none() && cfg.retention_bytes.is_none() {
                continue;
            }
            for (i, p) in s.partitions.iter().enumerate() {
                for r in p.enforce_retention(now_ms, cfg.retention_ms, cfg.retention_bytes)? {
                    report.deleted.push(DeletedSegment {
                        stream: name.clone(),
                        partition: i as u32,
                        base_offset: r.base,
                        next_offset: r.next_offset,
                        bytes: r.bytes,
                        reason: r.reason,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Stores `group`'s committed offset for a partition; fsynced before it returns.
    pub fn commit_offset(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
        offset: u64,
        metadata: &str,
    ) -> Result<(), LogError> {
        self.with_partition(stream, partition, |_| Ok(()))?;
        self.offsets
            .commit(group, stream, partition, offset, metadata)
    }

    /// `group`'s last committed offset and metadata for a partition.
    pub fn committed_offset(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
    ) -> Option<(u64, String)> {
        self.offsets.get(group, stream, partition)
    }

    /// All of `group`'s committed offsets, sorted by stream and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<CommittedOffset> {
        self.offsets.group_offsets(group)
    }

    /// Names of groups that ever committed, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.offsets.groups()
    }

    /// Syncs every active segment and writes its index files; afterwards every call but the
    /// read-only accessors returns [`LogError::Closed`]. Idempotent.
    pub fn close(&self) -> Result<(), LogError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.flush_all()
    }

    fn flush_all(&self) -> Result<(), LogError> {
        let streams: Vec<Arc<Stream>> = read(&self.streams).values().cloned().collect();
        for s in streams {
            for p in &s.partitions {
                p.flush()?;
            }
        }
        Ok(())
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.flush_all() {
                tracing::warn!(error = %e, "flushing the log on drop failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn log_is_send_and_sync() {
        assert_send_sync::<Log>();
    }
}
