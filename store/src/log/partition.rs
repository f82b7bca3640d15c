//! One partition: an ordered list of sealed segments and one active segment.
//!
//! Appends are serialized by the writer mutex; they encode outside it, write and sync under
//! it, and then publish the new end under the view lock, which readers hold only to pick a
//! segment and a start position. A read therefore never waits for an fsync, and readers see
//! only data that has been written (and, with [`LogSync::Always`], synced).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;

use super::error::{IoContext, LogError};
use super::fsutil::{len_or_zero, remove_if_exists, sync_dir};
use super::record::{EncodedBatch, LogBatch, LogRecord};
use super::segment::{
    self, find_timestamp, lookup_offset, lookup_time, parse_segment_name, IndexEntry,
    MutableSegment, SealedSegment, SegmentPaths,
};
use super::{LogSync, RetentionReason, Truncation};

/// Settings a partition needs from [`super::LogOptions`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartitionOptions {
    /// Roll size.
    pub segment_bytes: u64,
    /// Sparse index interval.
    pub index_interval_bytes: u32,
    /// Durability of appends.
    pub sync: LogSync,
    /// Verify every batch on open.
    pub full_scan: bool,
    /// Truncate at interior damage instead of refusing.
    pub repair: bool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

struct Writer {
    seg: Option<MutableSegment>,
    /// Set after an I/O failure while appending or rolling: the state on disk is unknown
    /// (an fsync error may have dropped dirty pages), so no more appends until reopened.
    failed: Option<String>,
    deleted: bool,
}

/// What readers see of the active segment.
struct ActiveView {
    base: u64,
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    next_offset: u64,
    max_ts: i64,
    index: Vec<IndexEntry>,
}

struct View {
    sealed: VecDeque<Arc<SealedSegment>>,
    active: ActiveView,
}

impl View {
    fn earliest(&self) -> u64 {
        self.sealed.front().map_or(self.active.base, |s| s.base)
    }
}

/// Where a read continues.
enum Source {
    Active {
        file: Arc<File>,
        path: PathBuf,
        start: u64,
        end: u64,
    },
    Sealed(Arc<SealedSegment>),
}

/// A segment removed by retention.
pub(crate) struct Removed {
    pub base: u64,
    pub next_offset: u64,
    pub bytes: u64,
    pub reason: RetentionReason,
}

/// One partition of a stream.
pub(crate) struct Partition {
    dir: PathBuf,
    opts: PartitionOptions,
    writer: Mutex<Writer>,
    view: RwLock<View>,
    end_tx: watch::Sender<u64>,
}

impl Partition {
    /// Creates the first (empty) segment of a new partition in an existing empty directory.
    pub fn create_files(dir: &Path, opts: &PartitionOptions) -> Result<(), LogError> {
        MutableSegment::create(dir, 0, opts.index_interval_bytes)?;
        sync_dir(dir)
    }

    /// Opens and recovers a partition directory.
    pub fn open(
        dir: PathBuf,
        opts: PartitionOptions,
        report: &mut Vec<Truncation>,
    ) -> Result<Partition, LogError> {
        let mut bases = Vec::new();
        let mut others = Vec::new();
        for entry in fs::read_dir(&dir).ctx(&dir)? {
            let entry = entry.ctx(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                remove_if_exists(&entry.path())?;
                continue;
            }
            match parse_segment_name(name) {
                Some((base, "log")) => bases.push(base),
                Some((base, "index" | "timeindex")) => others.push((base, entry.path())),
                _ => {}
            }
        }
        bases.sort_unstable();
        for (base, path) in others {
            if bases.binary_search(&base).is_err() {
                remove_if_exists(&path)?;
            }
        }
        if bases.is_empty() {
            Self::create_files(&dir, &opts)?;
            bases.push(0);
        }

        let mut recovered = Vec::with_capacity(bases.len());
        let mut i = 0;
        while i < bases.len() {
            let is_last = i + 1 == bases.len();
            let base = bases[i];
            let mut r = segment::recover(
                &dir,
                base,
                opts.index_interval_bytes,
                opts.full_scan,
                is_last,
            )?;
            if let Some(d) = r.damage.take() {
                let mut later_data = false;
                for b in &bases[i + 1..] {
                    later_data |= len_or_zero(&SegmentPaths::new(&dir, *b).log)? > 0;
                }
                let interior = d.intact_after || later_data;
                if interior && !opts.repair {
                    return Err(LogError::InteriorDamage {
                        path: r.paths.log.clone(),
                        position: d.pos,
                        reason: d.reason.to_string(),
                    });
                }
                let file_len = r.file.metadata().ctx(&r.paths.log)?.len();
                r.file.set_len(d.pos).ctx(&r.paths.log)?;
                r.file.sync_all().ctx(&r.paths.log)?;
                remove_if_exists(&r.paths.index)?;
                remove_if_exists(&r.paths.time)?;
                let mut dropped = Vec::new();
                for b in bases.drain(i + 1..) {
                    let p = SegmentPaths::new(&dir, b);
                    p.remove()?;
                    dropped.push(p.log);
                }
                sync_dir(&dir)?;
                tracing::warn!(
                    path = %r.paths.log.display(),
                    position = d.pos,
                    bytes_dropped = file_len - d.pos,
                    segments_dropped = dropped.len(),
                    reason = d.reason,
                    interior,
                    "log recovery truncated a segment"
                );
                report.push(Truncation {
                    path: r.paths.log.clone(),
                    position: d.pos,
                    bytes_dropped: file_len - d.pos,
                    segments_dropped: dropped,
                    reason: d.reason.to_string(),
                    interior,
                });
                if !is_last {
                    // Now the last segment: recover again to get its complete index.
                    r = segment::recover(&dir, base, opts.index_interval_bytes, true, true)?;
                    if let Some(d) = r.damage {
                        return Err(LogError::Corrupt {
                            path: r.paths.log,
                            position: d.pos,
                            reason: format!("still damaged after truncation: {}", d.reason),
                        });
                    }
                }
            }
            if r.valid_len == 0 && i + 1 < bases.len() {
                // An empty segment followed by others carries nothing: drop it.
                r.paths.remove()?;
                bases.remove(i);
                continue;
            }
            recovered.push(r);
            i += 1;
        }
        for pair in recovered.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.next_offset > b.base {
                return Err(LogError::Corrupt {
                    path: b.paths.log.clone(),
                    position: 0,
                    reason: format!(
                        "segment overlaps its predecessor, which ends at offset {}",
                        a.next_offset
                    ),
                });
            }
            if a.next_offset < b.base {
                tracing::warn!(path = %b.paths.log.display(), from = a.next_offset, "offset gap before segment");
            }
        }

        let Some(last) = recovered.pop() else {
            return Err(LogError::Corrupt {
                path: dir,
                position: 0,
                reason: "partition has no segment".into(),
            });
        };
        let mut sealed = VecDeque::with_capacity(recovered.len());
        for r in recovered {
            sealed.push_back(Arc::new(SealedSegment::from_recovered(r)?));
        }
        let index = last.index.clone();
        let active = MutableSegment::from_recovered(last);
        let view = View {
            sealed,
            active: ActiveView {
                base: active.base,
                file: Arc::clone(&active.file),
                path: active.paths.log.clone(),
                len: active.len,
                next_offset: active.next_offset,
                max_ts: active.builder.max_ts,
                index,
            },
        };
        let (end_tx, _) = watch::channel(active.next_offset);
        Ok(Partition {
            dir,
            opts,
            writer: Mutex::new(Writer {
                seg: Some(active),
                failed: None,
                deleted: false,
            }),
            view: RwLock::new(view),
            end_tx,
        })
    }

    /// Appends one batch; returns its base offset.
    pub fn append(&self, stream: &str, records: &[LogRecord]) -> Result<u64, LogError> {
        let mut enc = EncodedBatch::encode(records)?;
        let (count, max_ts, frame_len) = (enc.count, enc.max_timestamp, enc.len());
        let mut w = lock(&self.writer);
        if w.deleted {
            return Err(LogError::StreamNotFound(stream.to_string()));
        }
        if let Some(why) = &w.failed {
            return Err(failed_error(&self.dir, why));
        }
        let needs_roll = match &w.seg {
            Some(seg) => seg.needs_roll(frame_len, count, self.opts.segment_bytes),
            None => return Err(failed_error(&self.dir, "no active segment")),
        };
        if needs_roll {
            self.roll(&mut w)?;
        }
        let Some(seg) = w.seg.as_mut() else {
            return Err(failed_error(&self.dir, "no active segment"));
        };
        let base = seg.next_offset;
        let frame = enc.seal(base);
        let entry = match seg.append(frame, count, max_ts, self.opts.sync) {
            Ok(e) => e,
            Err(e) => {
                w.failed = Some(e.to_string());
                return Err(e);
            }
        };
        let (len, next, seg_max) = (seg.len, seg.next_offset, seg.builder.max_ts);
        {
            let mut v = write(&self.view);
            v.active.len = len;
            v.active.next_offset = next;
            v.active.max_ts = seg_max;
            if let Some(e) = entry {
                v.active.index.push(e);
            }
        }
        self.end_tx.send_replace(next);
        Ok(base)
    }

    /// Seals the active segment and starts a new one at the current end offset.
    fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        let Some(seg) = w.seg.take() else {
            return Err(failed_error(&self.dir, "no active segment"));
        };
        let next = seg.next_offset;
        let entries = read(&self.view).active.index.clone();
        let result = seg.seal(entries).and_then(|sealed| {
            let new = MutableSegment::create(&self.dir, next, self.opts.index_interval_bytes)?;
            sync_dir(&self.dir)?;
            Ok((sealed, new))
        });
        let (sealed, new) = match result {
            Ok(x) => x,
            Err(e) => {
                w.failed = Some(e.to_string());
                return Err(e);
            }
        };
        {
            let mut v = write(&self.view);
            v.sealed.push_back(Arc::new(sealed));
            v.active = ActiveView {
                base: new.base,
                file: Arc::clone(&new.file),
                path: new.paths.log.clone(),
                len: 0,
                next_offset: new.next_offset,
                max_ts: i64::MIN,
                index: Vec::new(),
            };
        }
        tracing::debug!(dir = %self.dir.display(), base = next, "rolled segment");
        w.seg = Some(new);
        Ok(())
    }

    /// Earliest offset still stored.
    pub fn earliest(&self) -> u64 {
        read(&self.view).earliest()
    }

    /// Next offset to be written.
    pub fn latest(&self) -> u64 {
        read(&self.view).active.next_offset
    }

    /// Receiver of the end offset after every append.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.end_tx.subscribe()
    }

    /// Picks the segment holding `offset` and a start position; `Ok(None)` at the log end.
    fn locate(&self, offset: u64, strict: bool) -> Result<Option<(Source, Option<u64>)>, LogError> {
        let v = read(&self.view);
        let (earliest, latest) = (v.earliest(), v.active.next_offset);
        if offset < earliest || offset > latest {
            if strict {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    earliest,
                    latest,
                });
            }
            return Ok(None);
        }
        if offset == latest {
            return Ok(None);
        }
        if offset >= v.active.base {
            let start = lookup_offset(v.active.index.as_slice(), offset - v.active.base)?;
            return Ok(Some((
                Source::Active {
                    file: Arc::clone(&v.active.file),
                    path: v.active.path.clone(),
                    start,
                    end: v.active.len,
                },
                None,
            )));
        }
        let i = v.sealed.partition_point(|s| s.next_offset <= offset);
        match v.sealed.get(i) {
            Some(s) => Ok(Some((Source::Sealed(Arc::clone(s)), Some(s.next_offset)))),
            None => Ok(None),
        }
    }

    /// Whole batches from the one holding `offset` on, about `max_bytes` of them (at least
    /// one if any record exists at or after `offset`).
    pub fn read_batches(&self, offset: u64, max_bytes: usize) -> Result<Vec<LogBatch>, LogError> {
        let mut out = Vec::new();
        let mut budget = max_bytes as u64;
        let mut offset = offset;
        let mut strict = true;
        loop {
            let Some((src, seg_next)) = self.locate(offset, strict)? else {
                break;
            };
            strict = false;
            let r = match &src {
                Source::Active {
                    file,
                    path,
                    start,
                    end,
                } => segment::read_batches(file, path, *start, *end, offset, budget)?,
                Source::Sealed(s) => {
                    let start = lookup_offset(s.as_ref(), offset.saturating_sub(s.base))?;
                    segment::read_batches(&s.file, &s.paths.log, start, s.size, offset, budget)?
                }
            };
            budget = budget.saturating_sub(r.bytes);
            out.extend(r.batches);
            match seg_next {
                Some(next) if r.at_end && budget > 0 => offset = offset.max(next),
                _ => break,
            }
        }
        Ok(out)
    }

    /// First offset whose record timestamp is >= `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>, LogError> {
        let (file, path, start, end) = {
            let v = read(&self.view);
            if let Some(s) = v.sealed.iter().find(|s| s.max_ts >= ts) {
                let s = Arc::clone(s);
                drop(v);
                let start = lookup_time(s.as_ref(), ts)?;
                return find_timestamp(&s.file, &s.paths.log, start, s.size, ts);
            }
            if v.active.max_ts < ts || v.active.len == 0 {
                return Ok(None);
            }
            let start = lookup_time(v.active.index.as_slice(), ts)?;
            (
                Arc::clone(&v.active.file),
                v.active.path.clone(),
                start,
                v.active.len,
            )
        };
        find_timestamp(&file, &path, start, end, ts)
    }

    /// Removes whole sealed segments past the retention limits; never the active segment.
    pub fn enforce_retention(
        &self,
        now_ms: i64,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
    ) -> Result<Vec<Removed>, LogError> {
        let mut removed = Vec::new();
        {
            let mut v = write(&self.view);
            if let Some(ms) = retention_ms {
                let ms = i64::try_from(ms).unwrap_or(i64::MAX);
                while let Some(s) = v.sealed.front() {
                    if now_ms.saturating_sub(s.max_ts) <= ms {
                        break;
                    }
                    if let Some(s) = v.sealed.pop_front() {
                        removed.push((s, RetentionReason::Age));
                    }
                }
            }
            if let Some(limit) = retention_bytes {
                let mut total: u64 = v.sealed.iter().map(|s| s.size).sum::<u64>() + v.active.len;
                while let Some(s) = v.sealed.front() {
                    if total - s.size < limit {
                        break;
                    }
                    total -= s.size;
                    if let Some(s) = v.sealed.pop_front() {
                        removed.push((s, RetentionReason::Size));
                    }
                }
            }
        }
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(removed.len());
        for (s, reason) in removed {
            // Readers holding the segment keep their open handles; the files go now.
            s.paths.remove()?;
            out.push(Removed {
                base: s.base,
                next_offset: s.next_offset,
                bytes: s.size,
                reason,
            });
        }
        match sync_dir(&self.dir) {
            // The stream was deleted concurrently: nothing left to sync.
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            r => r?,
        }
        Ok(out)
    }

    /// Fsyncs the active segment and writes its index files.
    pub fn flush(&self) -> Result<(), LogError> {
        let w = lock(&self.writer);
        if w.deleted || w.failed.is_some() {
            return Ok(());
        }
        if let Some(seg) = &w.seg {
            let entries = read(&self.view).active.index.clone();
            seg.flush(&entries)?;
        }
        Ok(())
    }

    /// Stops appends (the stream is being deleted).
    pub fn mark_deleted(&self) {
        lock(&self.writer).deleted = true;
    }

    /// Number of segments (sealed + active), for tests and metrics.
    pub fn segment_count(&self) -> usize {
        read(&self.view).sealed.len() + 1
    }

    /// Bytes stored (sealed segments + active segment).
    pub fn size_bytes(&self) -> u64 {
        let v = read(&self.view);
        v.sealed.iter().map(|s| s.size).sum::<u64>() + v.active.len
    }
}

fn failed_error(dir: &Path, why: &str) -> LogError {
    LogError::io(
        dir,
        std::io::Error::other(format!(
            "partition stopped accepting appends after an earlier failure ({why}); reopen the log"
        )),
    )
}
