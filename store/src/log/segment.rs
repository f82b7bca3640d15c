//! Segments: a `.log` file of batch frames named by its base offset, with a sparse `.index`
//! (relative offset -> byte position) and a `.timeindex` (running maximum timestamp).
//!
//! Index files hold fixed-size little-endian entries, aligned one to one:
//!
//! ```text
//! .index      rel_offset u32, position u32        (8 bytes per entry)
//! .timeindex  max_timestamp i64, rel_offset u32   (12 bytes per entry)
//! ```
//!
//! An entry is added for a batch when at least `index_interval_bytes` were written since the
//! previous entry; its timestamp is the largest timestamp of the segment up to and including
//! that batch. A sealed segment also gets an entry for its last batch, so its last time entry
//! is the segment's largest timestamp.
//!
//! The active segment ([`MutableSegment`]) keeps its index in memory and writes the index files
//! only when it is sealed or the log is closed; sealing turns it into a [`SealedSegment`], which
//! is never written again and is searched with positional reads of its index files. Index files
//! are derived data: they are replaced atomically and rebuilt from the log when missing,
//! short, or inconsistent.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::error::{IoContext, LogError};
use super::fsutil::{len_or_zero, read_at, remove_if_exists, write_atomic};
use super::record::{split_batches, verify_frame, BatchHeader, LogBatch, BATCH_HEADER_LEN, MAGIC};
use super::LogSync;

/// Bytes per `.index` entry.
pub(crate) const INDEX_ENTRY_LEN: u64 = 8;
/// Bytes per `.timeindex` entry.
pub(crate) const TIME_ENTRY_LEN: u64 = 12;
/// Read-ahead used when scanning a segment.
const SCAN_CHUNK: usize = 1 << 20;

/// One sparse index entry (both files' views of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Offset of the batch relative to the segment's base offset.
    pub rel: u32,
    /// Byte position of the batch in the `.log` file.
    pub pos: u32,
    /// Largest timestamp in the segment up to and including this batch.
    pub max_ts: i64,
}

/// The three file paths of a segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentPaths {
    /// `<base>.log`
    pub log: PathBuf,
    /// `<base>.index`
    pub index: PathBuf,
    /// `<base>.timeindex`
    pub time: PathBuf,
}

impl SegmentPaths {
    /// Paths of the segment with base offset `base` in `dir`.
    pub fn new(dir: &Path, base: u64) -> Self {
        SegmentPaths {
            log: dir.join(format!("{base:020}.log")),
            index: dir.join(format!("{base:020}.index")),
            time: dir.join(format!("{base:020}.timeindex")),
        }
    }

    /// Removes all three files (the log first, so a crash leaves at worst orphan indexes,
    /// which recovery deletes).
    pub fn remove(&self) -> Result<(), LogError> {
        remove_if_exists(&self.log)?;
        remove_if_exists(&self.index)?;
        remove_if_exists(&self.time)
    }
}

/// Parses a segment file name `<20 digits>.<ext>` into its base offset and extension.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Decides where index entries go; shared by appends and recovery so both build the same index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexBuilder {
    interval: u64,
    bytes_since: u64,
    /// Largest timestamp so far in the segment.
    pub max_ts: i64,
    /// Relative offset and position of the last batch.
    pub last_batch: Option<(u32, u32)>,
}

impl IndexBuilder {
    /// A builder for an empty segment.
    pub fn new(interval: u32) -> Self {
        IndexBuilder {
            interval: u64::from(interval),
            bytes_since: 0,
            max_ts: i64::MIN,
            last_batch: None,
        }
    }

    /// Accounts for a batch; returns the index entry to add for it, if any.
    pub fn on_batch(
        &mut self,
        rel: u32,
        pos: u32,
        frame_len: u64,
        batch_max_ts: i64,
    ) -> Option<IndexEntry> {
        self.max_ts = self.max_ts.max(batch_max_ts);
        self.last_batch = Some((rel, pos));
        let entry = if self.bytes_since >= self.interval {
            self.bytes_since = 0;
            Some(IndexEntry {
                rel,
                pos,
                max_ts: self.max_ts,
            })
        } else {
            None
        };
        self.bytes_since += frame_len;
        entry
    }

    /// Like [`IndexBuilder::on_batch`] for a batch that already has an entry.
    fn on_indexed_batch(&mut self, rel: u32, pos: u32, frame_len: u64, batch_max_ts: i64) {
        self.max_ts = self.max_ts.max(batch_max_ts);
        self.last_batch = Some((rel, pos));
        self.bytes_since = frame_len;
    }
}

/// Encodes entries into the two index files' contents.
fn encode_indexes(entries: &[IndexEntry]) -> (Vec<u8>, Vec<u8>) {
    let mut idx = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN as usize);
    let mut time = Vec::with_capacity(entries.len() * TIME_ENTRY_LEN as usize);
    for e in entries {
        idx.extend_from_slice(&e.rel.to_le_bytes());
        idx.extend_from_slice(&e.pos.to_le_bytes());
        time.extend_from_slice(&e.max_ts.to_le_bytes());
        time.extend_from_slice(&e.rel.to_le_bytes());
    }
    (idx, time)
}

/// Replaces both index files atomically (each one; a crash between the two leaves one a
/// prefix of the other, which recovery accepts).
pub(crate) fn write_indexes(paths: &SegmentPaths, entries: &[IndexEntry]) -> Result<(), LogError> {
    let (idx, time) = encode_indexes(entries);
    write_atomic(&paths.index, &idx)?;
    write_atomic(&paths.time, &time)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

/// Reads `n` entries from both index files; `None` if they disagree or are not monotonic or
/// point past `log_len`.
fn load_entries(
    paths: &SegmentPaths,
    n: u64,
    log_len: u64,
) -> Result<Option<Vec<IndexEntry>>, LogError> {
    let idx = std::fs::read(&paths.index).ctx(&paths.index)?;
    let time = std::fs::read(&paths.time).ctx(&paths.time)?;
    let n = (n as usize)
        .min(idx.len() / INDEX_ENTRY_LEN as usize)
        .min(time.len() / TIME_ENTRY_LEN as usize);
    let mut out: Vec<IndexEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let ib = &idx[i * 8..i * 8 + 8];
        let tb = &time[i * 12..i * 12 + 12];
        let e = IndexEntry {
            rel: le_u32(ib),
            pos: le_u32(&ib[4..]),
            max_ts: le_i64(tb),
        };
        if le_u32(&tb[8..]) != e.rel || u64::from(e.pos) >= log_len {
            return Ok(None);
        }
        if let Some(p) = out.last() {
            if e.rel <= p.rel || e.pos <= p.pos || e.max_ts < p.max_ts {
                return Ok(None);
            }
        }
        out.push(e);
    }
    Ok(Some(out))
}

/// Reads one entry from both index files (used for the last entry of sealed segments).
fn read_entry(
    index: &File,
    time: &File,
    paths: &SegmentPaths,
    i: u64,
) -> Result<Option<IndexEntry>, LogError> {
    let ib = read_at(
        index,
        &paths.index,
        i * INDEX_ENTRY_LEN,
        INDEX_ENTRY_LEN as usize,
    )?;
    let tb = read_at(
        time,
        &paths.time,
        i * TIME_ENTRY_LEN,
        TIME_ENTRY_LEN as usize,
    )?;
    let e = IndexEntry {
        rel: le_u32(&ib),
        pos: le_u32(&ib[4..]),
        max_ts: le_i64(&tb),
    };
    Ok((le_u32(&tb[8..]) == e.rel).then_some(e))
}

/// Sequential frame reader with read-ahead, for scans.
struct FrameReader<'a> {
    file: &'a File,
    path: &'a Path,
    file_len: u64,
    buf: Vec<u8>,
    buf_pos: u64,
}

impl<'a> FrameReader<'a> {
    fn new(file: &'a File, path: &'a Path, file_len: u64) -> Self {
        FrameReader {
            file,
            path,
            file_len,
            buf: Vec::new(),
            buf_pos: 0,
        }
    }

    /// Makes `[pos, pos + n)` available in the buffer (caller checked it is inside the file).
    fn ensure(&mut self, pos: u64, n: usize) -> Result<&[u8], LogError> {
        let have = pos >= self.buf_pos && pos + n as u64 <= self.buf_pos + self.buf.len() as u64;
        if !have {
            let len = (n.max(SCAN_CHUNK) as u64).min(self.file_len - pos) as usize;
            self.buf = read_at(self.file, self.path, pos, len)?;
            self.buf_pos = pos;
        }
        let start = (pos - self.buf_pos) as usize;
        Ok(&self.buf[start..start + n])
    }

    /// The verified frame header at `pos`, or why there is no valid frame there.
    fn frame(&mut self, pos: u64) -> Result<Result<BatchHeader, &'static str>, LogError> {
        if self.file_len - pos < BATCH_HEADER_LEN as u64 {
            return Ok(Err("truncated batch header"));
        }
        let head = self.ensure(pos, BATCH_HEADER_LEN)?;
        let Some(h) = BatchHeader::parse(head) else {
            return Ok(Err("truncated batch header"));
        };
        if let Err(e) = h.plausible() {
            return Ok(Err(e));
        }
        if pos + h.frame_len() > self.file_len {
            return Ok(Err("truncated batch"));
        }
        let frame = self.ensure(pos, h.frame_len() as usize)?;
        Ok(verify_frame(frame))
    }
}

/// Why a scan stopped before the end of the file.
#[derive(Clone, Debug)]
pub(crate) struct Damage {
    /// Position of the first bad frame.
    pub pos: u64,
    /// What was wrong with it.
    pub reason: &'static str,
    /// Whether a valid frame with a plausible offset exists after it in the same file.
    pub intact_after: bool,
}

/// What recovery learned about one segment file.
pub(crate) struct Recovered {
    /// Base offset (from the file name).
    pub base: u64,
    /// File paths.
    pub paths: SegmentPaths,
    /// Open read-write handle of the `.log` file.
    pub file: File,
    /// Bytes of valid frames from the start of the file.
    pub valid_len: u64,
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// Index entries: complete when `index_complete`, else only the last one.
    pub index: Vec<IndexEntry>,
    /// Whether `index` holds every entry.
    pub index_complete: bool,
    /// Whether the index files on disk differ from `index` (need rewriting when sealed).
    pub index_stale: bool,
    /// Builder state after the last valid batch.
    pub builder: IndexBuilder,
    /// First damage found, if any.
    pub damage: Option<Damage>,
}

/// Recovers one segment: trusts the index files up to their last entry (after checking that
/// entry's batch) and verifies every batch after it, or, with `full_scan` or unusable index
/// files, verifies every batch of the file. Changes nothing on disk.
pub(crate) fn recover(
    dir: &Path,
    base: u64,
    interval: u32,
    full_scan: bool,
    want_full_index: bool,
) -> Result<Recovered, LogError> {
    let paths = SegmentPaths::new(dir, base);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&paths.log)
        .ctx(&paths.log)?;
    let file_len = file.metadata().ctx(&paths.log)?.len();
    let idx_len = len_or_zero(&paths.index)?;
    let time_len = len_or_zero(&paths.time)?;
    let n = (idx_len / INDEX_ENTRY_LEN).min(time_len / TIME_ENTRY_LEN);
    let mut index_stale = idx_len != n * INDEX_ENTRY_LEN || time_len != n * TIME_ENTRY_LEN;

    let mut reader = FrameReader::new(&file, &paths.log, file_len);
    let mut index: Vec<IndexEntry> = Vec::new();
    let mut index_complete = true;
    let mut builder = IndexBuilder::new(interval);
    let mut pos = 0u64;
    let mut next_offset = base;
    let mut resume = false;

    if !full_scan && n > 0 {
        let trusted = if want_full_index {
            load_entries(&paths, n, file_len)?.map(|v| (v, true))
        } else {
            let fi = File::open(&paths.index).ctx(&paths.index)?;
            let ft = File::open(&paths.time).ctx(&paths.time)?;
            read_entry(&fi, &ft, &paths, n - 1)?
                .filter(|e| u64::from(e.pos) < file_len)
                .map(|e| (vec![e], n == 1))
        };
        if let Some((entries, complete)) = trusted {
            if let Some(last) = entries.last().copied() {
                let at = u64::from(last.pos);
                if let Ok(h) = reader.frame(at)? {
                    if h.base_offset == base + u64::from(last.rel) && h.max_timestamp <= last.max_ts
                    {
                        builder.max_ts = last.max_ts;
                        builder.on_indexed_batch(
                            last.rel,
                            last.pos,
                            h.frame_len(),
                            h.max_timestamp,
                        );
                        pos = at + h.frame_len();
                        next_offset = h.next_offset();
                        index = entries;
                        index_complete = complete;
                        resume = true;
                    }
                }
            }
        }
    }
    let before = index.len();
    let damage = walk(
        &mut reader,
        base,
        &mut pos,
        &mut next_offset,
        &mut builder,
        &mut index,
    )?;
    if resume {
        index_stale |= index.len() != before;
    } else {
        index_stale = index_differs(&paths, &index)?;
    }
    let needs_final = match builder.last_batch {
        Some((_, last_pos)) => index.last().map(|e| e.pos) != Some(last_pos),
        None => false,
    };
    if !index_complete && (index_stale || needs_final) {
        // Only the last entry was loaded; the index will be rewritten, so load it all.
        match load_entries(&paths, n, file_len)? {
            Some(mut all) => {
                all.extend_from_slice(&index[1..]);
                index = all;
                index_complete = true;
            }
            None => return recover(dir, base, interval, true, want_full_index),
        }
    }

    let damage = match damage {
        None => None,
        Some((at, reason)) => Some(Damage {
            pos: at,
            reason,
            intact_after: intact_after(&file, &paths.log, at + 1, file_len, next_offset)?,
        }),
    };
    drop(reader);
    Ok(Recovered {
        base,
        paths,
        file,
        valid_len: pos,
        next_offset,
        index,
        index_complete,
        index_stale,
        builder,
        damage,
    })
}

/// Whether the index files differ from `entries` (a missing file counts as empty).
fn index_differs(paths: &SegmentPaths, entries: &[IndexEntry]) -> Result<bool, LogError> {
    let read = |p: &Path| match std::fs::read(p) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LogError::io(p, e)),
    };
    let (idx, time) = encode_indexes(entries);
    Ok(idx != read(&paths.index)? || time != read(&paths.time)?)
}

/// Verifies frames from `*pos` to the end of the file, updating the position, next offset,
/// builder and index. Returns the first damage (position and reason), if any.
fn walk(
    reader: &mut FrameReader<'_>,
    base: u64,
    pos: &mut u64,
    next_offset: &mut u64,
    builder: &mut IndexBuilder,
    index: &mut Vec<IndexEntry>,
) -> Result<Option<(u64, &'static str)>, LogError> {
    while *pos < reader.file_len {
        let h = match reader.frame(*pos)? {
            Ok(h) => h,
            Err(reason) => return Ok(Some((*pos, reason))),
        };
        if h.base_offset != *next_offset {
            return Ok(Some((
                *pos,
                "batch offset does not follow the previous batch",
            )));
        }
        if h.next_offset() - base > u64::from(u32::MAX) || *pos > u64::from(u32::MAX) {
            return Ok(Some((*pos, "batch beyond the segment's addressable range")));
        }
        let rel = (h.base_offset - base) as u32;
        if let Some(e) = builder.on_batch(rel, *pos as u32, h.frame_len(), h.max_timestamp) {
            index.push(e);
        }
        *pos += h.frame_len();
        *next_offset = h.next_offset();
    }
    Ok(None)
}

/// Whether a valid frame whose base offset is at least `min_base` starts anywhere in
/// `[from, file_len)`: the test that tells a torn tail (nothing intact after the damage) from
/// interior damage.
fn intact_after(
    file: &File,
    path: &Path,
    from: u64,
    file_len: u64,
    min_base: u64,
) -> Result<bool, LogError> {
    let hdr = BATCH_HEADER_LEN as u64;
    let mut chunk_start = from;
    while chunk_start + hdr <= file_len {
        let len = (SCAN_CHUNK as u64 + hdr).min(file_len - chunk_start) as usize;
        let buf = read_at(file, path, chunk_start, len)?;
        let last = buf.len() - BATCH_HEADER_LEN;
        for i in 0..=last {
            if buf[i + 8] != MAGIC {
                continue;
            }
            let Some(h) = BatchHeader::parse(&buf[i..]) else {
                continue;
            };
            let at = chunk_start + i as u64;
            if h.plausible().is_err() || h.base_offset < min_base || at + h.frame_len() > file_len {
                continue;
            }
            let frame = read_at(file, path, at, h.frame_len() as usize)?;
            if verify_frame(&frame).is_ok() {
                return Ok(true);
            }
        }
        chunk_start += (last + 1) as u64;
    }
    Ok(false)
}

/// Where index lookups read their entries from.
pub(crate) trait IndexSource {
    /// Number of entries.
    fn count(&self) -> u64;
    /// Relative offset and position of entry `i`.
    fn rel_pos(&self, i: u64) -> Result<(u32, u32), LogError>;
    /// Running maximum timestamp of entry `i`.
    fn max_ts(&self, i: u64) -> Result<i64, LogError>;
}

impl IndexSource for [IndexEntry] {
    fn count(&self) -> u64 {
        self.len() as u64
    }
    fn rel_pos(&self, i: u64) -> Result<(u32, u32), LogError> {
        let e = self[i as usize];
        Ok((e.rel, e.pos))
    }
    fn max_ts(&self, i: u64) -> Result<i64, LogError> {
        Ok(self[i as usize].max_ts)
    }
}

/// Position of the last indexed batch whose relative offset is at most `rel` (0 if none): a
/// scan for `rel` can start there.
pub(crate) fn lookup_offset<S: IndexSource + ?Sized>(src: &S, rel: u64) -> Result<u64, LogError> {
    let (mut lo, mut hi) = (0u64, src.count());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if u64::from(src.rel_pos(mid)?.0) <= rel {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        Ok(0)
    } else {
        Ok(u64::from(src.rel_pos(lo - 1)?.1))
    }
}

/// Position of the last indexed batch whose running maximum timestamp is below `ts` (0 if
/// none): every batch before it has only smaller timestamps, so a scan for the first record
/// with timestamp >= `ts` can start there.
pub(crate) fn lookup_time<S: IndexSource + ?Sized>(src: &S, ts: i64) -> Result<u64, LogError> {
    let (mut lo, mut hi) = (0u64, src.count());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if src.max_ts(mid)? < ts {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        Ok(0)
    } else {
        Ok(u64::from(src.rel_pos(lo - 1)?.1))
    }
}

/// The segment being appended to: owns the write position and the index builder. Its index
/// entries live in the partition's published view so readers can search them.
///
/// ### Invariants
/// - `len` bytes of the file are whole, verified frames; `next_offset` follows the last one.
/// - Nothing beyond `len` is visible to readers.
pub(crate) struct MutableSegment {
    /// Base offset.
    pub base: u64,
    /// File paths.
    pub paths: SegmentPaths,
    /// The `.log` file, shared with readers.
    pub file: Arc<File>,
    /// Bytes written.
    pub len: u64,
    /// Offset of the next record.
    pub next_offset: u64,
    /// Index state.
    pub builder: IndexBuilder,
}

impl MutableSegment {
    /// Creates an empty segment file at `base` (the caller fsyncs the directory).
    pub fn create(dir: &Path, base: u64, interval: u32) -> Result<MutableSegment, LogError> {
        let paths = SegmentPaths::new(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&paths.log)
            .ctx(&paths.log)?;
        Ok(MutableSegment {
            base,
            paths,
            file: Arc::new(file),
            len: 0,
            next_offset: base,
            builder: IndexBuilder::new(interval),
        })
    }

    /// Continues a recovered segment.
    pub fn from_recovered(r: Recovered) -> MutableSegment {
        MutableSegment {
            base: r.base,
            paths: r.paths,
            file: Arc::new(r.file),
            len: r.valid_len,
            next_offset: r.next_offset,
            builder: r.builder,
        }
    }

    /// Whether a batch of `frame_len` bytes and `count` records must go to a new segment.
    pub fn needs_roll(&self, frame_len: u64, count: u32, segment_bytes: u64) -> bool {
        if self.len == 0 {
            return false;
        }
        self.len + frame_len > segment_bytes
            || self.next_offset + u64::from(count) - self.base > u64::from(u32::MAX)
    }

    /// Writes a finished frame at the end and syncs it per `sync`. Returns the index entry
    /// to publish, if the batch gets one.
    pub fn append(
        &mut self,
        frame: &[u8],
        count: u32,
        max_ts: i64,
        sync: LogSync,
    ) -> Result<Option<IndexEntry>, LogError> {
        self.file
            .write_all_at(frame, self.len)
            .ctx(&self.paths.log)?;
        if sync == LogSync::Always {
            self.file.sync_data().ctx(&self.paths.log)?;
        }
        let rel = (self.next_offset - self.base) as u32;
        let entry = self
            .builder
            .on_batch(rel, self.len as u32, frame.len() as u64, max_ts);
        self.len += frame.len() as u64;
        self.next_offset += u64::from(count);
        Ok(entry)
    }

    /// Fsyncs the data and writes the index files (without the final entry), as on close.
    pub fn flush(&self, entries: &[IndexEntry]) -> Result<(), LogError> {
        self.file.sync_data().ctx(&self.paths.log)?;
        write_indexes(&self.paths, entries)
    }

    /// Seals the segment: fsync, final index entry for the last batch, index files written.
    pub fn seal(self, mut entries: Vec<IndexEntry>) -> Result<SealedSegment, LogError> {
        self.file.sync_data().ctx(&self.paths.log)?;
        if let Some((rel, pos)) = self.builder.last_batch {
            if entries.last().map(|e| e.pos) != Some(pos) {
                entries.push(IndexEntry {
                    rel,
                    pos,
                    max_ts: self.builder.max_ts,
                });
            }
        }
        write_indexes(&self.paths, &entries)?;
        SealedSegment::open(
            self.base,
            self.paths,
            self.file,
            self.len,
            self.next_offset,
            self.builder.max_ts,
        )
    }
}

/// An immutable segment: all appends are done, its files are never written again.
#[derive(Debug)]
pub(crate) struct SealedSegment {
    /// Base offset.
    pub base: u64,
    /// Offset after the last record.
    pub next_offset: u64,
    /// Size of the `.log` file.
    pub size: u64,
    /// Largest record timestamp.
    pub max_ts: i64,
    /// File paths.
    pub paths: SegmentPaths,
    /// The `.log` file.
    pub file: Arc<File>,
    index: File,
    time: File,
    entries: u64,
}

impl SealedSegment {
    /// Opens the index files of a sealed segment.
    pub fn open(
        base: u64,
        paths: SegmentPaths,
        file: Arc<File>,
        size: u64,
        next_offset: u64,
        max_ts: i64,
    ) -> Result<SealedSegment, LogError> {
        let index = File::open(&paths.index).ctx(&paths.index)?;
        let time = File::open(&paths.time).ctx(&paths.time)?;
        let entries = (index.metadata().ctx(&paths.index)?.len() / INDEX_ENTRY_LEN)
            .min(time.metadata().ctx(&paths.time)?.len() / TIME_ENTRY_LEN);
        Ok(SealedSegment {
            base,
            next_offset,
            size,
            max_ts,
            paths,
            file,
            index,
            time,
            entries,
        })
    }

    /// Turns a clean recovered segment into a sealed one, rewriting stale index files and
    /// making sure the last batch is indexed.
    pub fn from_recovered(mut r: Recovered) -> Result<SealedSegment, LogError> {
        let mut rewrite = r.index_stale;
        if let Some((rel, pos)) = r.builder.last_batch {
            if r.index.last().map(|e| e.pos) != Some(pos) {
                r.index.push(IndexEntry {
                    rel,
                    pos,
                    max_ts: r.builder.max_ts,
                });
                rewrite = true;
            }
        }
        if rewrite {
            // `recover` loads the complete index whenever a rewrite is due.
            debug_assert!(r.index_complete);
            write_indexes(&r.paths, &r.index)?;
        }
        SealedSegment::open(
            r.base,
            r.paths,
            Arc::new(r.file),
            r.valid_len,
            r.next_offset,
            r.builder.max_ts,
        )
    }
}

impl IndexSource for SealedSegment {
    fn count(&self) -> u64 {
        self.entries
    }
    fn rel_pos(&self, i: u64) -> Result<(u32, u32), LogError> {
        let b = read_at(&self.index, &self.paths.index, i * INDEX_ENTRY_LEN, 8)?;
        Ok((le_u32(&b), le_u32(&b[4..])))
    }
    fn max_ts(&self, i: u64) -> Result<i64, LogError> {
        let b = read_at(&self.time, &self.paths.time, i * TIME_ENTRY_LEN, 8)?;
        Ok(le_i64(&b))
    }
}

/// Result of reading batches from one segment.
pub(crate) struct SegmentRead {
    /// Verified batches, in order.
    pub batches: Vec<LogBatch>,
    /// Total frame bytes returned.
    pub bytes: u64,
    /// Whether the read reached the segment's visible end.
    pub at_end: bool,
}

/// Reads whole batches from `file`, starting with the batch that holds `offset` (or the first
/// one after it), scanning from `start` (an index position at or before it) up to the visible
/// end `end`. Returns at least one batch if one exists; stops once `budget` bytes are taken.
pub(crate) fn read_batches(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    offset: u64,
    budget: u64,
) -> Result<SegmentRead, LogError> {
    let corrupt = |position: u64, reason: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        position,
        reason: reason.to_string(),
    };
    let mut pos = start;
    let first_len = loop {
        if pos + BATCH_HEADER_LEN as u64 > end {
            return Ok(SegmentRead {
                batches: Vec::new(),
                bytes: 0,
                at_end: true,
            });
        }
        let head = read_at(file, path, pos, BATCH_HEADER_LEN)?;
        let h = BatchHeader::parse(&head).ok_or_else(|| corrupt(pos, "short header"))?;
        h.plausible().map_err(|e| corrupt(pos, e))?;
        if pos + h.frame_len() > end {
            return Err(corrupt(pos, "batch crosses the end of the segment"));
        }
        if h.next_offset() > offset {
            break h.frame_len();
        }
        pos += h.frame_len();
    };
    let want = first_len.max(budget).min(end - pos);
    let buf = Bytes::from(read_at(file, path, pos, want as usize)?);
    let batches = split_batches(buf).map_err(|(at, reason)| corrupt(pos + at, reason))?;
    let bytes: u64 = batches.iter().map(|b| b.encoded_len() as u64).sum();
    Ok(SegmentRead {
        at_end: pos + bytes >= end,
        batches,
        bytes,
    })
}

/// Finds the first record with timestamp >= `ts` in `file`, scanning from `start` to `end`.
pub(crate) fn find_timestamp(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    ts: i64,
) -> Result<Option<u64>, LogError> {
    let mut pos = start;
    while pos + BATCH_HEADER_LEN as u64 <= end {
        let head = read_at(file, path, pos, BATCH_HEADER_LEN)?;
        let corrupt = |reason: &str| LogError::Corrupt {
            path: path.to_path_buf(),
            position: pos,
            reason: reason.to_string(),
        };
        let h = BatchHeader::parse(&head).ok_or_else(|| corrupt("short header"))?;
        h.plausible().map_err(corrupt)?;
        if h.max_timestamp >= ts {
            let frame = Bytes::from(read_at(file, path, pos, h.frame_len() as usize)?);
            let h = verify_frame(&frame).map_err(corrupt)?;
            let batch = LogBatch::from_verified(h, frame);
            return Ok(batch
                .records()
                .find(|r| r.record.timestamp_ms >= ts)
                .map(|r| r.offset));
        }
        pos += h.frame_len();
    }
    Ok(None)
}
