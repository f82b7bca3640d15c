//! The writer thread (sole owner of the active segment: group commit, segment roll, applying
//! compaction) and the compactor thread (reads sealed segments so the writer never blocks on it).

use super::commit::{lock, Slot};
use super::files::{segment_path, sync_dir};
use super::format::{self, FRAME_HEADER_LEN, HEADER_LEN};
use super::index::{Index, Materialize, Move, SegId};
use super::prealloc::{Prealloc, CHUNK, TORN_MAX};
use super::{JournalOptions, JournalRecord, SyncPolicy};
use crate::StoreError;
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Groups up to this many appends are woken by the writer itself, larger ones by the notifier.
const INLINE_COMPLETIONS: usize = 4;

/// How long the writer polls for the next append (yielding the CPU between looks) before it
/// sleeps on the condvar, while appenders wait for fsyncs (see [`SPIN_WHILE_SYNCING`]).
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(200);

/// The writer polls before sleeping only this long after the last fsync that appenders waited
/// for: while synchronous senders are active, not for lazy acks alone nor when idle.
const SPIN_WHILE_SYNCING: std::time::Duration = std::time::Duration::from_millis(10);

/// After this many polls in a row that ended without an append, the writer stops polling for
/// [`SPIN_PAUSE`] awaited groups: that client's next send comes later than the polling window
/// (the JMS client's own thread hand-offs take longer), so polling only burned CPU the clients
/// on the same cores needed (docs/benchmarks.md, session 8).
const SPIN_MISSES_BEFORE_PAUSE: u32 = 3;

/// How many groups the writer goes without polling after [`SPIN_MISSES_BEFORE_PAUSE`] misses;
/// then it polls once more to see whether polling pays again.
const SPIN_PAUSE: u32 = 64;

/// Whether the writer's polls for the next append pay: they stop for a while after
/// [`SPIN_MISSES_BEFORE_PAUSE`] misses in a row.
#[derive(Default)]
struct SpinBudget {
    /// Polls in a row that ended without an append.
    misses: u32,
    /// Awaited groups still to go without polling.
    pause: u32,
}

impl SpinBudget {
    /// Whether to poll before sleeping this time; a paused budget counts down instead.
    fn may_spin(&mut self) -> bool {
        if self.pause > 0 {
            self.pause -= 1;
            return false;
        }
        true
    }

    /// A poll saw an append arrive.
    fn paid(&mut self) {
        self.misses = 0;
    }

    /// A poll ended without an append: after enough in a row, pause polling.
    fn missed(&mut self) {
        self.misses += 1;
        if self.misses >= SPIN_MISSES_BEFORE_PAUSE {
            self.pause = SPIN_PAUSE;
        }
    }
}

/// Largest batch compaction writes at once.
const COMPACT_BATCH_BYTES: usize = 4 << 20;

/// Appenders to wake, with their outcome.
type Completions = Vec<(Arc<Slot>, Result<(), StoreError>)>;

/// Work for the writer thread.
pub(crate) enum Request {
    /// An append: records encoded by the caller (`format::encode_records`), and the records
    /// themselves for the index.
    Batch {
        body: Vec<u8>,
        records: Vec<JournalRecord>,
        slot: Arc<Slot>,
        /// From `append_lazy`: needs no `fdatasync` of its own (see `JournalOptions::lazy_sync`).
        lazy: bool,
    },
    /// A sealed segment read by the compactor: its frames as (offset, records).
    Compacted {
        seg: SegId,
        frames: Result<Vec<(u64, Vec<JournalRecord>)>, String>,
    },
    /// Resolve once every batch queued before it is durable per the policy.
    Barrier { slot: Arc<Slot> },
    /// Someone waits on a lazy batch: fsync what is written now.
    Sync,
    /// Compact every eligible segment now, then resolve.
    CompactNow { slot: Arc<Slot> },
    /// Flush, fsync, stop.
    Close { slot: Option<Arc<Slot>> },
}

/// The queue between appenders and the writer.
#[derive(Default)]
pub(crate) struct Queue {
    pub items: VecDeque<Request>,
    /// No more appends accepted.
    pub closed: bool,
    /// Set when the writer failed; appends are refused with this reason.
    pub failed: Option<String>,
    /// The writer is waiting (or about to wait) on the condvar. While it is busy writing or
    /// fsyncing it drains the queue before waiting again, so appenders skip the wake-up (a
    /// futex syscall each).
    pub writer_idle: bool,
}

/// Segment-level figures, refreshed by the writer.
#[derive(Default, Clone, Copy)]
pub(crate) struct SegSnapshot {
    pub segments: usize,
    pub bytes: u64,
    pub live: u64,
    pub total: u64,
}

/// State shared by appenders, the writer and the compactor.
#[derive(Default)]
pub(crate) struct Shared {
    pub queue: Mutex<Queue>,
    pub cv: Condvar,
    pub appends: AtomicU64,
    pub records: AtomicU64,
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub compactions: AtomicU64,
    pub reclaimed_bytes: AtomicU64,
    pub snapshot: Mutex<SegSnapshot>,
}

impl Shared {
    pub(crate) fn push(&self, req: Request) {
        lock(&self.queue).items.push_back(req);
        self.cv.notify_one();
    }

    /// Queues `req` unless the journal is closed (the writer may be gone).
    pub(crate) fn push_unless_closed(&self, req: Request) {
        {
            let mut q = lock(&self.queue);
            if q.closed {
                return;
            }
            q.items.push_back(req);
        }
        self.cv.notify_one();
    }
}

/// A batch drained by the writer: (encoded body, records, completion, lazy).
type Pending = (Vec<u8>, Vec<JournalRecord>, Arc<Slot>, bool);

/// The writer's state.
pub(crate) struct Writer {
    pub dir: PathBuf,
    pub opts: JournalOptions,
    pub shared: Arc<Shared>,
    pub index: Index,
    pub active: SegId,
    pub file: Arc<File>,
    pub len: u64,
    pub next_batch_seq: u64,
    buf: Vec<u8>,
    unsynced: bool,
    /// Bytes written since the last fsync (bounded by `TORN_MAX` with preallocation).
    unsynced_bytes: u64,
    /// Lazy batches written but not yet fsynced (policy `Always`), with their op label; the
    /// next `sync` resolves them.
    lazy_pending: Vec<(Arc<Slot>, &'static str)>,
    /// When the oldest of `lazy_pending` must be fsynced at the latest.
    lazy_due: Option<Instant>,
    last_sync: Instant,
    /// When the last group whose appenders waited for its fsync was committed (the writer polls
    /// for a while after it before sleeping).
    awaited_fsync: Option<Instant>,
    /// Whether polling pays for the current appenders.
    spin: SpinBudget,
    compactor: Option<(mpsc::Sender<SegId>, JoinHandle<()>)>,
    /// Wakes committed appenders of large groups off the writer's critical path (the writer
    /// starts the next write and fsync meanwhile). Every completion it delivers is already
    /// durable, so delivery order does not matter.
    notifier: Option<(mpsc::Sender<Completions>, JoinHandle<()>)>,
    compacting: Option<SegId>,
    skip: HashSet<SegId>,
    failed: Option<String>,
    /// Zeroes the active segment ahead of the writer (policy `Always`, segments of at least a
    /// chunk); see `prealloc.rs`.
    prealloc: Option<Prealloc>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}

/// Creates a new segment file with its header, durably.
pub(crate) fn create_segment(dir: &Path, seg: SegId) -> Result<File, StoreError> {
    let path = segment_path(dir, seg);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(&format::encode_header(seg))
        .map_err(io_err(&path))?;
    f.sync_data().map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Reads and decodes every frame of a sealed segment.
fn read_segment(path: &Path) -> Result<Vec<(u64, Vec<JournalRecord>)>, String> {
    let data = Bytes::from(std::fs::read(path).map_err(|e| e.to_string())?);
    let mut off = HEADER_LEN;
    let mut out = Vec::new();
    while off < data.len() {
        let f = format::decode_frame(&data, off)
            .map_err(|e| format!("unreadable frame at offset {off}: {e:?}"))?;
        out.push((off as u64, f.records));
        off += f.len;
    }
    Ok(out)
}

/// Reads the one frame at `offset` of a segment.
fn read_frame_at(path: &Path, offset: u64) -> Result<Vec<JournalRecord>, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut head = [0u8; FRAME_HEADER_LEN];
    f.read_exact(&mut head).map_err(|e| e.to_string())?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > format::MAX_BODY_LEN {
        return Err(format!("frame length {len} too large"));
    }
    let mut buf = vec![0u8; FRAME_HEADER_LEN + len];
    buf[..FRAME_HEADER_LEN].copy_from_slice(&head);
    f.read_exact(&mut buf[FRAME_HEADER_LEN..])
        .map_err(|e| e.to_string())?;
    format::decode_frame(&Bytes::from(buf), 0)
        .map(|f| f.records)
        .map_err(|e| format!("{e:?}"))
}

fn spawn_compactor(
    dir: PathBuf,
    shared: Arc<Shared>,
) -> Option<(mpsc::Sender<SegId>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<SegId>();
    let handle = std::thread::Builder::new()
        .name("journal-compactor".into())
        .spawn(move || {
            while let Ok(seg) = rx.recv() {
                let frames = read_segment(&segment_path(&dir, seg));
                shared.push(Request::Compacted { seg, frames });
            }
        });
    match handle {
        Ok(h) => Some((tx, h)),
        Err(e) => {
            tracing::warn!(error = %e, "journal: no compactor thread; compaction runs inline");
            None
        }
    }
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dir: PathBuf,
        opts: JournalOptions,
        shared: Arc<Shared>,
        index: Index,
        active: SegId,
        file: File,
        len: u64,
        next_batch_seq: u64,
    ) -> Self {
        let file = Arc::new(file);
        let prealloc = if opts.sync == SyncPolicy::Always && opts.segment_bytes >= CHUNK {
            let file_len = file.metadata().map_or(len, |m| m.len());
            Prealloc::start(file.clone(), active, file_len, len, opts.segment_bytes)
        } else {
            None
        };
        let (ntx, nrx) = mpsc::channel::<Completions>();
        let notifier = std::thread::Builder::new()
            .name("journal-notify".into())
            .spawn(move || {
                while let Ok(done) = nrx.recv() {
                    for (slot, r) in done {
                        slot.complete(r);
                    }
                }
            })
            .ok()
            .map(|h| (ntx, h));
        let compactor = if opts.compact_live_ratio > 0.0 {
            spawn_compactor(dir.clone(), shared.clone())
        } else {
            None
        };
        let w = Writer {
            dir,
            opts,
            shared,
            index,
            active,
            file,
            len,
            next_batch_seq,
            buf: Vec::new(),
            unsynced: false,
            unsynced_bytes: 0,
            lazy_pending: Vec::new(),
            lazy_due: None,
            last_sync: Instant::now(),
            awaited_fsync: None,
            spin: SpinBudget::default(),
            compactor,
            notifier,
            compacting: None,
            skip: HashSet::new(),
            failed: None,
            prealloc,
        };
        w.publish();
        w
    }

    fn publish(&self) {
        let mut s = SegSnapshot {
            segments: self.index.segs.len(),
            ..SegSnapshot::default()
        };
        for info in self.index.segs.values() {
            s.bytes += info.bytes;
            s.live += info.live;
            s.total += info.total;
        }
        *lock(&self.shared.snapshot) = s;
    }

    fn path(&self, seg: SegId) -> PathBuf {
        segment_path(&self.dir, seg)
    }

    /// The thread body.
    pub(crate) fn run(mut self) {
        loop {
            let items: Vec<Request> = {
                // After an fsync someone waited for, the next append is likely that client's
                // next synchronous send: polling for it spares the appender's futex wake and
                // the sleeping writer's scheduling delay (docs/benchmarks.md, session 5).
                let now = Instant::now();
                let spin_until = self
                    .awaited_fsync
                    .is_some_and(|t| now.saturating_duration_since(t) < SPIN_WHILE_SYNCING)
                    .then(|| now + SPIN_BEFORE_SLEEP)
                    .filter(|_| self.spin.may_spin());
                let mut spinning = spin_until.is_some();
                let mut q = lock(&self.shared.queue);
                loop {
                    q.writer_idle = false;
                    if !q.items.is_empty() {
                        if spinning {
                            self.spin.paid();
                        }
                        break q.items.drain(..).collect();
                    }
                    if spin_until.is_some_and(|t| Instant::now() < t) {
                        drop(q);
                        std::thread::yield_now();
                        q = lock(&self.shared.queue);
                        continue;
                    }
                    if spinning {
                        spinning = false;
                        self.spin.missed();
                    }
                    // Appenders signal the condvar only while this is set.
                    q.writer_idle = true;
                    if let Some(due) = self.lazy_due {
                        let left = due.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break Vec::new();
                        }
                        q = self
                            .shared
                            .cv
                            .wait_timeout(q, left)
                            .map(|(g, _)| g)
                            .unwrap_or_else(|e| e.into_inner().0);
                        continue;
                    }
                    match (self.opts.sync, self.unsynced) {
                        (SyncPolicy::Interval(d), true) => {
                            let due = d.saturating_sub(self.last_sync.elapsed());
                            if due.is_zero() {
                                break Vec::new();
                            }
                            q = self
                                .shared
                                .cv
                                .wait_timeout(q, due)
                                .map(|(g, _)| g)
                                .unwrap_or_else(|e| e.into_inner().0);
                        }
                        _ => q = self.shared.cv.wait(q).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            };
            if self.process(items) {
                break;
            }
            if self.lazy_due.is_some_and(|due| Instant::now() >= due) {
                if let Err(e) = self.sync() {
                    self.fail(&e);
                }
            }
            if let SyncPolicy::Interval(d) = self.opts.sync {
                if self.unsynced && self.last_sync.elapsed() >= d {
                    if let Err(e) = self.sync() {
                        self.fail(&e);
                    }
                }
            }
            self.schedule_compaction();
            self.publish();
        }
        // Stop the compactor; wait so no thread reads segment files after close.
        if let Some((tx, handle)) = self.compactor.take() {
            drop(tx);
            let _ = handle.join();
        }
        if let Some((tx, handle)) = self.notifier.take() {
            drop(tx);
            let _ = handle.join();
        }
        for (slot, _) in std::mem::take(&mut self.lazy_pending) {
            slot.complete(Err(StoreError::Closed));
        }
        let leftovers: Vec<Request> = lock(&self.shared.queue).items.drain(..).collect();
        for r in leftovers {
            match r {
                Request::Batch { slot, .. }
                | Request::CompactNow { slot }
                | Request::Barrier { slot } => slot.complete(Err(StoreError::Closed)),
                Request::Close { slot: Some(slot) } => slot.complete(Ok(())),
                _ => {}
            }
        }
        self.publish();
    }

    /// Handles drained requests in order. Returns true to stop.
    fn process(&mut self, items: Vec<Request>) -> bool {
        let mut group: Vec<Pending> = Vec::new();
        for item in items {
            match item {
                Request::Batch {
                    body,
                    records,
                    slot,
                    lazy,
                } => group.push((body, records, slot, lazy)),
                other => {
                    if !group.is_empty() {
                        self.commit_group(std::mem::take(&mut group));
                    }
                    match other {
                        Request::Compacted { seg, frames } => {
                            if self.compacting == Some(seg) {
                                self.compacting = None;
                            }
                            self.apply_compaction(seg, frames);
                        }
                        Request::Barrier { slot } => {
                            // Everything before it, lazy batches included.
                            self.sync_lazy();
                            match &self.failed {
                                Some(_) => self.notify(vec![(slot, Err(self.failure()))]),
                                None => self.notify(vec![(slot, Ok(()))]),
                            }
                        }
                        Request::Sync => self.sync_lazy(),
                        Request::CompactNow { slot } => {
                            let r = self.compact_all();
                            self.publish();
                            slot.complete(r);
                        }
                        Request::Close { slot } => {
                            let r = match &self.failed {
                                Some(reason) => Err(StoreError::Failed {
                                    reason: reason.clone(),
                                }),
                                None => self.sync_if_needed(true).and_then(|()| self.trim_active()),
                            };
                            if let Some(slot) = slot {
                                self.notify(vec![(slot, r)]);
                            }
                            return true;
                        }
                        Request::Batch { .. } => {}
                    }
                }
            }
        }
        if !group.is_empty() {
            self.commit_group(group);
        }
        false
    }

    /// Resolves completions, in order, on the notifier thread (inline if it could not start).
    fn notify(&self, done: Completions) {
        let done = match &self.notifier {
            // A thread hop costs more than waking a few appenders here.
            Some((tx, _)) if done.len() > INLINE_COMPLETIONS => match tx.send(done) {
                Ok(()) => return,
                Err(mpsc::SendError(done)) => done,
            },
            _ => done,
        };
        for (slot, r) in done {
            slot.complete(r);
        }
    }

    fn failure(&self) -> StoreError {
        StoreError::Failed {
            reason: self.failed.clone().unwrap_or_default(),
        }
    }

    /// Stops accepting appends after an I/O failure: after a failed write or fsync the page
    /// cache and the file can disagree, so only a reopen (which re-reads the disk) is safe.
    fn fail(&mut self, e: &StoreError) {
        let reason = e.to_string();
        tracing::error!(error = %reason, "journal writer failed; refusing further appends");
        lock(&self.shared.queue).failed = Some(reason.clone());
        self.failed = Some(reason);
        self.lazy_due = None;
        let lazy = std::mem::take(&mut self.lazy_pending);
        self.notify(
            lazy.into_iter()
                .map(|(s, _)| (s, Err(copy_err(e))))
                .collect(),
        );
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let path = self.path(self.active);
        let started = Instant::now();
        self.file.sync_data().map_err(io_err(&path))?;
        metrics::histogram!(crate::metric_names::JOURNAL_FSYNC_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.unsynced = false;
        self.unsynced_bytes = 0;
        self.last_sync = Instant::now();
        self.lazy_due = None;
        if !self.lazy_pending.is_empty() {
            let lazy = std::mem::take(&mut self.lazy_pending);
            for (slot, op) in &lazy {
                metrics::histogram!(crate::metric_names::JOURNAL_APPEND_DURABLE_SECONDS, "op" => *op)
                    .record(slot.created.elapsed().as_secs_f64());
            }
            // Usually dropped commits: resolving them costs no wake-up.
            self.notify(lazy.into_iter().map(|(s, _)| (s, Ok(()))).collect());
        }
        Ok(())
    }

    /// Fsyncs now if lazy batches wait for it (a barrier, someone awaiting one of them).
    fn sync_lazy(&mut self) {
        if self.failed.is_none() && !self.lazy_pending.is_empty() {
            if let Err(e) = self.sync() {
                self.fail(&e);
            }
        }
    }

    fn sync_if_needed(&mut self, force: bool) -> Result<(), StoreError> {
        if self.unsynced && (force || self.opts.sync == SyncPolicy::Always) {
            self.sync()?;
        }
        Ok(())
    }

    /// Seals the active segment (fsync) and starts the next one.
    fn roll(&mut self) -> Result<(), StoreError> {
        self.flush_buf()?;
        if self.unsynced {
            self.sync()?;
        }
        // A sealed segment must not keep a preallocated tail (recovery only accepts one in the
        // last segment): trim it durably before the next segment exists.
        self.trim_active()?;
        let next = self.active + 1;
        let file = Arc::new(create_segment(&self.dir, next)?);
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Some(info) = self.index.segs.get_mut(&self.active) {
            info.bytes = self.len;
        }
        self.active = next;
        self.file = file;
        self.len = HEADER_LEN as u64;
        self.index.segs.entry(next).or_default().bytes = self.len;
        if let Some(p) = &self.prealloc {
            p.switch(self.file.clone(), next, self.len);
        }
        Ok(())
    }

    /// Stops preallocating the active segment and cuts its unused tail (preallocated, or a zero
    /// tail recovery kept), durably.
    fn trim_active(&mut self) -> Result<(), StoreError> {
        if let Some(p) = &self.prealloc {
            p.detach();
        }
        let path = self.path(self.active);
        let file_len = self.file.metadata().map_err(io_err(&path))?.len();
        if file_len > self.len {
            self.file.set_len(self.len).map_err(io_err(&path))?;
            self.file.sync_all().map_err(io_err(&path))?;
            self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.path(self.active);
        let r = match &self.prealloc {
            Some(p) => p.write_at(&self.file, &self.buf, self.len),
            None => self.file.write_all_at(&self.buf, self.len),
        };
        self.len += self.buf.len() as u64;
        self.unsynced_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        if let Some(info) = self.index.segs.get_mut(&self.active) {
            info.bytes = self.len;
        }
        r.map_err(io_err(&path))
    }

    /// Frames and writes batch bodies, rolling segments as needed (one write per segment).
    /// Returns where each batch landed.
    fn write_bodies<'a>(
        &mut self,
        bodies: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<(SegId, u64)>, StoreError> {
        let mut placed = Vec::new();
        for body in bodies {
            let frame = (FRAME_HEADER_LEN + 8 + body.len()) as u64;
            let end = self.len + self.buf.len() as u64;
            if end + frame > self.opts.segment_bytes && end > HEADER_LEN as u64 {
                self.roll()?;
            } else if self.prealloc.is_some()
                && self.unsynced_bytes + (self.buf.len() as u64) > 0
                && self.unsynced_bytes + self.buf.len() as u64 + frame > TORN_MAX
            {
                // Bound what a torn group can span (see `prealloc.rs`).
                self.flush_buf()?;
                self.sync()?;
            }
            let offset = self.len + self.buf.len() as u64;
            format::encode_frame(self.next_batch_seq, body, &mut self.buf);
            self.next_batch_seq += 1;
            placed.push((self.active, offset));
        }
        self.flush_buf()?;
        Ok(placed)
    }

    /// Group commit: every batch drained together goes out in one write and one fdatasync. A
    /// group of lazy batches only is written and left for the next fsync (`lazy_pending`).
    fn commit_group(&mut self, group: Vec<Pending>) {
        if self.failed.is_some() {
            for (_, _, slot, _) in group {
                slot.complete(Err(self.failure()));
            }
            return;
        }
        let defer = self.opts.sync == SyncPolicy::Always
            && !self.opts.lazy_sync.is_zero()
            && group.iter().all(|(_, _, _, lazy)| *lazy);
        if self.opts.sync == SyncPolicy::Always && !defer {
            self.awaited_fsync = Some(Instant::now());
        }
        let result = self
            .write_bodies(group.iter().map(|(b, _, _, _)| b.as_slice()))
            .and_then(|placed| {
                if defer {
                    Ok(placed)
                } else {
                    self.sync_if_needed(false).map(|()| placed)
                }
            });
        match result {
            Ok(placed) => {
                self.shared.groups.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .appends
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                metrics::histogram!(crate::metric_names::JOURNAL_GROUP_COMMIT_APPENDS)
                    .record(group.len() as f64);
                let mut records = 0;
                let mut slots = Vec::with_capacity(group.len());
                for ((_, recs, slot, _), (seg, offset)) in group.into_iter().zip(placed) {
                    records += recs.len() as u64;
                    let op = append_op(&recs);
                    self.index.apply_batch(&recs, seg, offset);
                    if defer {
                        self.lazy_pending.push((slot, op));
                    } else {
                        metrics::histogram!(
                            crate::metric_names::JOURNAL_APPEND_DURABLE_SECONDS,
                            "op" => op
                        )
                        .record(slot.created.elapsed().as_secs_f64());
                        slots.push(slot);
                    }
                }
                self.shared.records.fetch_add(records, Ordering::Relaxed);
                if defer && self.lazy_due.is_none() {
                    self.lazy_due = Some(Instant::now() + self.opts.lazy_sync);
                }
                self.publish();
                self.notify(slots.into_iter().map(|s| (s, Ok(()))).collect());
            }
            Err(e) => {
                self.fail(&e);
                for (_, _, slot, _) in group {
                    slot.complete(Err(copy_err(&e)));
                }
            }
        }
    }

    fn eligible(&self) -> Option<SegId> {
        let ratio = self.opts.compact_live_ratio;
        if ratio <= 0.0 {
            return None;
        }
        self.index
            .segs
            .iter()
            .find(|(id, s)| {
                **id != self.active
                    && !self.skip.contains(id)
                    && (s.total == 0 || (s.live as f64) < ratio * s.total as f64)
            })
            .map(|(id, _)| *id)
    }

    fn schedule_compaction(&mut self) {
        if self.compacting.is_some() || self.failed.is_some() {
            return;
        }
        let Some(seg) = self.eligible() else { return };
        match &self.compactor {
            Some((tx, _)) if tx.send(seg).is_ok() => self.compacting = Some(seg),
            _ => {
                let frames = read_segment(&self.path(seg));
                self.apply_compaction(seg, frames);
            }
        }
    }

    fn compact_all(&mut self) -> Result<(), StoreError> {
        while let Some(seg) = self.eligible() {
            if self.failed.is_some() {
                return Err(self.failure());
            }
            let frames = read_segment(&self.path(seg));
            self.apply_compaction(seg, frames);
        }
        match &self.failed {
            Some(_) => Err(self.failure()),
            None => Ok(()),
        }
    }

    /// Rewrites the needed records of sealed segment `seg` at the head of the journal, makes
    /// them durable, then deletes the segment.
    fn apply_compaction(
        &mut self,
        seg: SegId,
        frames: Result<Vec<(u64, Vec<JournalRecord>)>, String>,
    ) {
        if self.failed.is_some() || seg == self.active || !self.index.segs.contains_key(&seg) {
            return;
        }
        let path = self.path(seg);
        let frames = match frames {
            Ok(f) => f,
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "journal: cannot compact segment; keeping it");
                self.skip.insert(seg);
                return;
            }
        };
        let mut seen = HashSet::new();
        let mut out: Vec<(JournalRecord, Move)> = Vec::new();
        let mut materialize: Vec<Materialize> = Vec::new();
        for (_, records) in &frames {
            for r in records {
                if let Some(m) = self.index.keep(r, seg, &mut seen, &mut out) {
                    materialize.push(m);
                }
            }
        }
        for m in materialize {
            let prepare_path = self.path(m.prepare_seg);
            let records = match read_frame_at(&prepare_path, m.prepare_offset) {
                Ok(r) => r,
                Err(reason) => {
                    tracing::warn!(path = %prepare_path.display(), %reason, "journal: cannot read a prepared transaction; keeping segment");
                    self.skip.insert(seg);
                    return;
                }
            };
            let inner = records.iter().find_map(|r| match r {
                JournalRecord::TxPrepare { tx, records } if *tx == m.tx => Some(records),
                _ => None,
            });
            for r in inner.into_iter().flatten() {
                self.index.keep(r, m.prepare_seg, &mut seen, &mut out);
            }
            out.push((JournalRecord::TxRollback { tx: m.tx }, Move::Resolve(m.tx)));
        }
        if let Err(e) = self.write_moved(out) {
            self.fail(&e);
            return;
        }
        // Lazy acks may be what made the segment dead: durable before it goes.
        if let Err(e) = self.sync_if_needed(false) {
            self.fail(&e);
            return;
        }
        let bytes = self.index.segs.get(&seg).map_or(0, |s| s.bytes);
        if let Err(e) = std::fs::remove_file(&path)
            .map_err(io_err(&path))
            .and_then(|()| sync_dir(&self.dir))
        {
            self.fail(&e);
            return;
        }
        self.index.remove_segment(seg);
        self.shared.compactions.fetch_add(1, Ordering::Relaxed);
        self.shared
            .reclaimed_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        tracing::debug!(segment = seg, bytes, "journal: compacted segment");
    }

    /// Writes kept records as normal batches, durably whatever the sync policy, and moves them
    /// in the index.
    fn write_moved(&mut self, out: Vec<(JournalRecord, Move)>) -> Result<(), StoreError> {
        if out.is_empty() {
            return Ok(());
        }
        // Chunk into batches; a DeliveryCount stays with the Add before it.
        let mut chunks: Vec<Vec<(JournalRecord, Move)>> = vec![Vec::new()];
        let mut size = 0;
        for (r, mv) in out {
            let n = format::encoded_len(std::slice::from_ref(&r));
            let keep_with_prev = matches!(mv, Move::Dc(..));
            if size + n > COMPACT_BATCH_BYTES
                && !keep_with_prev
                && chunks.last().is_some_and(|c| !c.is_empty())
            {
                chunks.push(Vec::new());
                size = 0;
            }
            size += n;
            if let Some(c) = chunks.last_mut() {
                c.push((r, mv));
            }
        }
        let bodies: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| {
                let records: Vec<JournalRecord> = c.iter().map(|(r, _)| r.clone()).collect();
                let mut body = Vec::with_capacity(format::encoded_len(&records));
                format::encode_records(&records, &mut body);
                body
            })
            .collect();
        let placed = self.write_bodies(bodies.iter().map(|b| b.as_slice()))?;
        if self.unsynced {
            self.sync()?;
        }
        for (chunk, (to, offset)) in chunks.into_iter().zip(placed) {
            let units: u64 = chunk.iter().map(|(r, _)| format::units(r)).sum();
            self.index.segs.entry(to).or_default().total += units;
            for (_, mv) in chunk {
                self.index.moved(mv, to, offset);
            }
        }
        Ok(())
    }
}

/// A copy of an error for each waiter of a failed group.
fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io { path, source } => StoreError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => StoreError::Failed {
            reason: other.to_string(),
        },
    }
}

/// What one append is, for the `op` label of the publish-to-durable histogram: `publish` when it
/// adds a message (a transaction committed as one batch included; acks riding along do not
/// change that), else `ack`, else `other` (queue creation or deletion, delivery counts).
fn append_op(records: &[JournalRecord]) -> &'static str {
    fn any(records: &[JournalRecord], want: fn(&JournalRecord) -> bool) -> bool {
        records.iter().any(|r| match r {
            JournalRecord::TxPrepare { records, .. } => any(records, want),
            other => want(other),
        })
    }
    if any(records, |r| matches!(r, JournalRecord::Add { .. })) {
        "publish"
    } else if any(records, |r| matches!(r, JournalRecord::Ack { .. })) {
        "ack"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::{SpinBudget, SPIN_MISSES_BEFORE_PAUSE, SPIN_PAUSE};

    #[test]
    fn polling_pauses_after_misses_in_a_row_and_probes_again() {
        let mut spin = SpinBudget::default();
        for _ in 0..SPIN_MISSES_BEFORE_PAUSE - 1 {
            assert!(spin.may_spin());
            spin.missed();
        }
        // A poll that pays resets the count.
        assert!(spin.may_spin());
        spin.paid();
        for _ in 0..SPIN_MISSES_BEFORE_PAUSE {
            assert!(spin.may_spin());
            spin.missed();
        }
        for _ in 0..SPIN_PAUSE {
            assert!(!spin.may_spin());
        }
        // One probe; another miss pauses again at once.
        assert!(spin.may_spin());
        spin.missed();
        assert!(!spin.may_spin());
    }
}
