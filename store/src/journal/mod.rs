//! The durable queue journal: one append-only log shared by every durable queue.
//!
//! ### Contract
//! - [`Journal::append`] writes its records as **one atomic batch**: after a crash either all of
//!   them are recovered or none. Batches are written in the order `append` was called (calls
//!   from different threads are ordered by when they reach the journal's queue).
//! - Durability is named by [`SyncPolicy`]; the [`Commit`] returned by `append` resolves when the
//!   batch is as durable as the policy promises.
//! - [`Journal::append_lazy`] is for records nobody waits on (consumer acks, delivery counts):
//!   written at once, in order, but with `SyncPolicy::Always` made durable by the next `fdatasync`
//!   any other append needs, or [`JournalOptions::lazy_sync`] later at the latest. Since they
//!   are in the file, a process crash loses none of them; a power cut may lose those of the last
//!   `lazy_sync` (a lost ack means a redelivery). Awaiting such a `Commit` asks for the
//!   `fdatasync` at once.
//! - [`Journal::open`] replays the journal into a [`Recovery`]: every live queue with its
//!   unacknowledged messages and latest delivery counts, and every prepared, unresolved
//!   transaction. A torn tail left by a crash is cut off; damage followed by intact data is
//!   refused ([`StoreError::Corrupt`]) unless [`JournalOptions::repair`] is set.
//! - Sealed segments whose share of live records falls below
//!   [`JournalOptions::compact_live_ratio`] are compacted online.
//!
//! ### What the caller must guarantee
//! - Queue ids, message sequence numbers (within a queue) and transaction ids are never reused,
//!   also across restarts: start counting above [`RecoveryReport::max_queue`],
//!   [`RecoveryReport::max_seq`] and [`RecoveryReport::max_tx`] (these cover acknowledged records
//!   still on disk too, which the recovered messages alone do not show).
//! - `Add` follows the `QueueCreate` of its queue; `Ack` and `DeliveryCount` follow the `Add`
//!   of their message (records for unknown messages are ignored).
//!
//! ### On disk
//! Segment files `journal-<20 digits>.seg` in [`JournalOptions::dir`], each starting with a header
//! (magic, format version, segment number, checksum), then one frame per batch:
//! `[len u32][crc32c u32][batch sequence u64, records]`, the CRC covering everything after it.
//! `journal.lock` holds an exclusive `flock` while the journal is open. With `SyncPolicy::Always`
//! the active segment is preallocated with zeroes ahead of the writer (so an `fdatasync` only
//! flushes data, not a new file size); a zero tail after the last frame of the last segment is
//! the clean end of the log. Sealed segments and a cleanly closed journal carry no such tail.
//! Format version 1 is unchanged: zeroes were never a valid frame.
//!
//! ### Threads
//! One writer thread owns the active segment (a preallocation thread only writes zeroes past
//! the writer's head). Appenders encode their batch, queue it and return;
//! the writer drains everything queued, writes it with one `write` and (policy `Always`) one
//! `fdatasync`, then resolves every [`Commit`] of the group: *group commit*. A compactor thread
//! reads sealed segments; the writer rewrites their still-needed records as a normal batch, fsyncs
//! and only then deletes the segment.
//!
//! ### Compaction and tombstones
//! An `Ack` (or `QueueDelete`, or the `TxCommit`/`TxRollback` of a transaction prepared in an
//! earlier segment) is kept as long as the segment holding what it cancels still exists: deleting
//! a segment full of acks while the adds they cancel survive in an older one would resurrect those
//! messages. See `index.rs` for the exact rules.

mod commit;
mod files;
mod format;
mod index;
mod prealloc;
mod recovery;
mod writer;

pub use commit::Commit;

use crate::StoreError;
use bytes::Bytes;
use commit::{lock, Slot};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use writer::{Request, Shared, Writer};

/// Identifies a durable queue in the journal.
pub type QueueId = u64;

/// When an appended batch counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` before resolving the [`Commit`]: a confirmed batch survives a power cut.
    Always,
    /// Resolve once written to the file (survives a process crash, not a power cut);
    /// `fdatasync` at most this long after a write. A power cut loses up to one interval.
    Interval(Duration),
    /// Resolve once written; `fdatasync` only when a segment is sealed and on close. Survives a
    /// process crash; a power cut may lose everything since the last sealed segment.
    Never,
}

/// How to open a journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// Durability of appends.
    pub sync: SyncPolicy,
    /// A segment is sealed and a new one started once it would grow past this many bytes
    /// (a single larger batch gets a segment of its own).
    pub segment_bytes: u64,
    /// A sealed segment whose live records are fewer than this share of its records is compacted.
    /// `0.0` disables compaction.
    pub compact_live_ratio: f64,
    /// Open despite interior damage by dropping the damaged records (see [`StoreError::Corrupt`]).
    /// Dropped records may include acks (messages come back) or adds (messages are lost).
    pub repair: bool,
    /// With `SyncPolicy::Always`, the longest a [`Journal::append_lazy`] batch stays written but
    /// not fsynced when no other append needs an `fdatasync` sooner. `Duration::ZERO` syncs lazy
    /// batches like any other.
    pub lazy_sync: Duration,
}

impl JournalOptions {
    /// Defaults: `SyncPolicy::Always`, 64 MiB segments, compaction below 50 % live, no repair,
    /// lazy batches fsynced within 10 ms.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalOptions {
            dir: dir.into(),
            sync: SyncPolicy::Always,
            segment_bytes: 64 << 20,
            compact_live_ratio: 0.5,
            repair: false,
            lazy_sync: Duration::from_millis(10),
        }
    }
}

/// One record of the journal. A batch of them is appended atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalRecord {
    /// Creates a queue, or replaces the name and metadata of an existing one (keeping its messages).
    QueueCreate {
        /// The queue.
        queue: QueueId,
        /// Its name.
        name: String,
        /// Opaque engine bytes (queue kind, durable subscription info).
        meta: Bytes,
    },
    /// Drops the queue and all its messages.
    QueueDelete {
        /// The queue.
        queue: QueueId,
    },
    /// Stores a message. A second `Add` of a live `(queue, seq)` replaces the message.
    Add {
        /// The queue.
        queue: QueueId,
        /// Engine-assigned, unique within the queue and never reused.
        seq: u64,
        /// Opaque message bytes.
        payload: Bytes,
    },
    /// Removes a message.
    Ack {
        /// The queue.
        queue: QueueId,
        /// The message.
        seq: u64,
    },
    /// The latest delivery count of a message.
    DeliveryCount {
        /// The queue.
        queue: QueueId,
        /// The message.
        seq: u64,
        /// Deliveries so far.
        count: u32,
    },
    /// Stages records of an XA-style transaction; they take effect only at its `TxCommit`.
    /// Cannot contain transaction records.
    TxPrepare {
        /// Transaction id, never reused.
        tx: u64,
        /// The staged records.
        records: Vec<JournalRecord>,
    },
    /// Applies the records staged by the transaction's `TxPrepare`.
    TxCommit {
        /// Transaction id.
        tx: u64,
    },
    /// Discards the records staged by the transaction's `TxPrepare`.
    TxRollback {
        /// Transaction id.
        tx: u64,
    },
}

/// What [`Journal::open`] found on disk.
#[derive(Debug)]
pub struct Recovery {
    /// Live queues (deleted ones are absent), ascending by id.
    pub queues: Vec<RecoveredQueue>,
    /// Prepared transactions neither committed nor rolled back, ascending by id.
    pub prepared: Vec<PreparedTx>,
    /// Figures about the scan.
    pub report: RecoveryReport,
}

/// A queue restored from the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredQueue {
    /// Its id.
    pub queue: QueueId,
    /// Its name (from its latest `QueueCreate`).
    pub name: String,
    /// Its metadata (from its latest `QueueCreate`).
    pub meta: Bytes,
    /// Unacknowledged messages, ascending by `seq`.
    pub messages: Vec<RecoveredMessage>,
}

/// An unacknowledged message restored from the journal.
///
/// With [`Journal::open`] the payload is held in memory, as a slice of the segment it was read
/// from. With [`Journal::open_paged`], payloads past the memory budget stay on disk
/// (`on_disk`, empty `payload`) and are streamed to the caller's sink instead.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredMessage {
    /// The engine's sequence number.
    pub seq: u64,
    /// Latest recorded delivery count (0 if none was recorded).
    pub delivery_count: u32,
    /// The message bytes as appended (empty when `on_disk`).
    pub payload: Bytes,
    /// The payload was past the recovery memory budget: it went to the sink of
    /// [`Journal::open_paged`] instead of `payload`.
    pub on_disk: bool,
}

/// A prepared transaction awaiting `TxCommit` or `TxRollback`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedTx {
    /// Transaction id.
    pub tx: u64,
    /// Its staged records.
    pub records: Vec<JournalRecord>,
}

/// Figures about a recovery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Segment files scanned.
    pub segments: usize,
    /// Records replayed (a transaction's staged records count within its `TxPrepare`: one).
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Bytes dropped: a torn tail, plus damaged bytes skipped by repair.
    pub truncated_bytes: u64,
    /// Time `open` took.
    pub duration: Duration,
    /// Whether damaged records were dropped because [`JournalOptions::repair`] was set.
    pub repaired: bool,
    /// Highest queue id in any record on disk.
    pub max_queue: QueueId,
    /// Highest message sequence number in any record on disk (acked ones included).
    pub max_seq: u64,
    /// Highest transaction id in any record on disk.
    pub max_tx: u64,
}

/// Counters and gauges of an open journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalStats {
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub bytes: u64,
    /// Records still needed (live messages, queues, pending transactions, needed tombstones).
    pub live_records: u64,
    /// Records in the segment files.
    pub total_records: u64,
    /// Batches appended since open.
    pub appends: u64,
    /// Records appended since open.
    pub records: u64,
    /// Group commits (one write of everything queued, plus one fdatasync with `Always`).
    pub groups: u64,
    /// `fdatasync` calls since open (group commits, segment seals, compaction, close).
    pub fsyncs: u64,
    /// Average batches per group commit (`appends / groups`).
    pub avg_batch_size: f64,
    /// Segments compacted away since open.
    pub compactions: u64,
    /// Bytes of segment files deleted by compaction since open.
    pub reclaimed_bytes: u64,
}

struct Inner {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    /// Holds the exclusive directory lock; released by `close` or when the journal is dropped.
    lock_file: Mutex<Option<File>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        {
            let mut q = lock(&self.shared.queue);
            if !q.closed {
                q.closed = true;
                q.items.push_back(Request::Close { slot: None });
            }
        }
        self.shared.cv.notify_one();
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
    }
}

/// A handle to an open journal; clones share it. The journal closes (flush and fsync) when the
/// last handle is dropped, or explicitly with [`Journal::close`].
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal in `opts.dir`, recovers it and starts its writer.
    ///
    /// Fails with [`StoreError::Corrupt`] on interior damage unless `opts.repair`, with
    /// [`StoreError::Locked`] if the directory is already open.
    pub fn open(opts: JournalOptions) -> Result<(Journal, Recovery), StoreError> {
        Self::open_with(opts, None, &mut |_, _, _| Ok(()))
    }

    /// Like [`Journal::open`], holding at most `budget` bytes of recovered payloads in memory:
    /// the payloads of live messages past it are left out of the [`Recovery`] (marked
    /// [`RecoveredMessage::on_disk`]) and handed to `sink` as `(queue, seq, payload)`, in
    /// journal order, by a second sequential read of the segments, before any compaction can
    /// move them. A sink error stops the open with that error.
    pub fn open_paged(
        opts: JournalOptions,
        budget: u64,
        sink: &mut dyn FnMut(QueueId, u64, &Bytes) -> Result<(), StoreError>,
    ) -> Result<(Journal, Recovery), StoreError> {
        Self::open_with(opts, Some(budget), sink)
    }

    fn open_with(
        opts: JournalOptions,
        budget: Option<u64>,
        sink: &mut dyn FnMut(QueueId, u64, &Bytes) -> Result<(), StoreError>,
    ) -> Result<(Journal, Recovery), StoreError> {
        let start = Instant::now();
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let lock_file = files::lock_dir(&dir)?;
        let ids = files::list_segments(&dir)?;
        let mut scan = recovery::scan(&dir, &ids, opts.repair, budget)?;
        let (queues, prepared) = scan.index.finish_recovery();
        let wanted = recovery::Wanted::new(queues.iter().map(|q| {
            let seqs = q.messages.iter().filter(|m| m.on_disk).map(|m| m.seq);
            (q.queue, seqs.collect())
        }));
        let paged = wanted.len();
        if !wanted.is_empty() {
            recovery::stream_payloads(&dir, &scan.segments, wanted, sink)?;
        }

        let (active, file, len) = match scan.segments.last() {
            Some(&last) => {
                let path = files::segment_path(&dir, last);
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| StoreError::io(&path, e))?;
                f.seek(SeekFrom::Start(scan.last_len))
                    .map_err(|e| StoreError::io(&path, e))?;
                (last, f, scan.last_len)
            }
            None => {
                let f = writer::create_segment(&dir, 1)?;
                scan.index.segs.entry(1).or_default().bytes = format::HEADER_LEN as u64;
                (1, f, format::HEADER_LEN as u64)
            }
        };
        let report = RecoveryReport {
            segments: ids.len(),
            records: scan.records,
            bytes: scan.bytes,
            truncated_bytes: scan.truncated_bytes,
            duration: Duration::ZERO,
            repaired: scan.repaired,
            max_queue: scan.index.max_queue,
            max_seq: scan.index.max_seq,
            max_tx: scan.index.max_tx,
        };
        let shared = Arc::new(Shared::default());
        let w = Writer::new(
            dir.clone(),
            opts,
            shared.clone(),
            scan.index,
            active,
            file,
            len,
            scan.last_batch_seq + 1,
        );
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || w.run())
            .map_err(|e| StoreError::io(&dir, e))?;
        let journal = Journal {
            inner: Arc::new(Inner {
                shared,
                writer: Mutex::new(Some(handle)),
                dir,
                lock_file: Mutex::new(Some(lock_file)),
            }),
        };
        let report = RecoveryReport {
            duration: start.elapsed(),
            ..report
        };
        tracing::info!(
            segments = report.segments,
            records = report.records,
            bytes = report.bytes,
            truncated = report.truncated_bytes,
            repaired = report.repaired,
            paged,
            ms = report.duration.as_millis() as u64,
            "journal recovered"
        );
        Ok((
            journal,
            Recovery {
                queues,
                prepared,
                report,
            },
        ))
    }

    /// Appends `records` as one atomic batch, after every batch appended before this call
    /// returned. The returned [`Commit`] resolves once the batch is durable per the sync policy.
    ///
    /// Never blocks on I/O. An empty batch writes nothing and resolves once every batch appended
    /// before it is durable (a barrier).
    pub fn append(&self, records: Vec<JournalRecord>) -> Commit {
        self.push_batch(records, false)
    }

    /// Appends `records` as one atomic batch, like [`append`](Self::append), for records no
    /// caller waits on: with `SyncPolicy::Always` the batch is written at once but fsynced with
    /// the next batch that needs it, or [`JournalOptions::lazy_sync`] later at the latest (see
    /// the module docs). Polling or waiting on the returned [`Commit`] asks for the `fdatasync`
    /// at once. Other policies treat it as `append`.
    pub fn append_lazy(&self, records: Vec<JournalRecord>) -> Commit {
        self.push_batch(records, true)
    }

    fn push_batch(&self, records: Vec<JournalRecord>, lazy: bool) -> Commit {
        if let Err(reason) = format::validate(&records) {
            return Commit::ready(Err(StoreError::InvalidBatch { reason }));
        }
        let len = format::encoded_len(&records);
        if len + 8 > format::MAX_BODY_LEN {
            return Commit::ready(Err(StoreError::InvalidBatch {
                reason: format!(
                    "batch of {len} bytes exceeds the limit of {} bytes",
                    format::MAX_BODY_LEN - 8
                ),
            }));
        }
        let slot = Arc::new(Slot::default());
        let shared = &self.inner.shared;
        if records.is_empty() {
            {
                let mut q = lock(&shared.queue);
                if let Some(e) = refusal(&q) {
                    return Commit::ready(Err(e));
                }
                q.items.push_back(Request::Barrier { slot: slot.clone() });
            }
            shared.cv.notify_one();
            return Commit::pending(slot);
        }
        let mut body = Vec::with_capacity(len);
        format::encode_records(&records, &mut body);
        let wake = {
            let mut q = lock(&shared.queue);
            if let Some(e) = refusal(&q) {
                return Commit::ready(Err(e));
            }
            q.items.push_back(Request::Batch {
                body,
                records,
                slot: slot.clone(),
                lazy,
            });
            q.writer_idle
        };
        if wake {
            shared.cv.notify_one();
        }
        if lazy {
            Commit::lazy(slot, shared.clone())
        } else {
            Commit::pending(slot)
        }
    }

    /// Compacts every sealed segment below the live ratio now and waits for it (compaction
    /// otherwise runs in the background). For operators and tests.
    pub fn compact(&self) -> Result<(), StoreError> {
        let slot = Arc::new(Slot::default());
        {
            let mut q = lock(&self.inner.shared.queue);
            if let Some(e) = refusal(&q) {
                return Err(e);
            }
            q.items
                .push_back(Request::CompactNow { slot: slot.clone() });
        }
        self.inner.shared.cv.notify_one();
        slot.wait()
    }

    /// Flushes, fsyncs and stops the writer. Later appends fail with [`StoreError::Closed`].
    /// Closing twice is harmless.
    pub fn close(&self) -> Result<(), StoreError> {
        let slot = Arc::new(Slot::default());
        {
            let mut q = lock(&self.inner.shared.queue);
            if q.closed {
                drop(q);
                if let Some(h) = lock(&self.inner.writer).take() {
                    let _ = h.join();
                }
                return Ok(());
            }
            q.closed = true;
            q.items.push_back(Request::Close {
                slot: Some(slot.clone()),
            });
        }
        self.inner.shared.cv.notify_one();
        let result = slot.wait();
        if let Some(h) = lock(&self.inner.writer).take() {
            let _ = h.join();
        }
        lock(&self.inner.lock_file).take();
        result
    }

    /// Current counters.
    pub fn stats(&self) -> JournalStats {
        let s = &self.inner.shared;
        let seg = *lock(&s.snapshot);
        let appends = s.appends.load(Ordering::Relaxed);
        let groups = s.groups.load(Ordering::Relaxed);
        JournalStats {
            segments: seg.segments,
            bytes: seg.bytes,
            live_records: seg.live,
            total_records: seg.total,
            appends,
            records: s.records.load(Ordering::Relaxed),
            groups,
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            avg_batch_size: if groups == 0 {
                0.0
            } else {
                appends as f64 / groups as f64
            },
            compactions: s.compactions.load(Ordering::Relaxed),
            reclaimed_bytes: s.reclaimed_bytes.load(Ordering::Relaxed),
        }
    }

    /// The journal directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }
}

fn refusal(q: &writer::Queue) -> Option<StoreError> {
    if q.closed {
        return Some(StoreError::Closed);
    }
    q.failed.as_ref().map(|reason| StoreError::Failed {
        reason: reason.clone(),
    })
}
