//! Startup scan: reads every segment in order, rebuilds the index, cuts a torn tail, refuses
//! interior damage unless repair was asked for.
//!
//! The rules, by where the first bad frame is:
//! - last segment, and only zero bytes from there to the end of the file: the unwritten part of
//!   a preallocated segment (see `prealloc.rs`), the clean end of the log. Nothing is dropped;
//!   the writer overwrites the zeroes.
//! - last segment, and no intact frame follows it: a torn write from a crash. The file is cut
//!   there and fsynced; `truncated_bytes` says how much was dropped.
//! - last segment, preallocated (length a multiple of `prealloc::CHUNK`, zero tail), and the
//!   damage lies within `prealloc::TORN_MAX` of the last non-zero byte: a group torn by a power
//!   cut while overwriting in place (intact unconfirmed frames may follow its damage). Cut too.
//! - an intact frame follows it, or it is in an earlier segment: committed data would be lost by
//!   dropping it. [`StoreError::Corrupt`] unless `repair`, in which case the damaged bytes are
//!   skipped, the segment is rewritten without them (write to a side file, fsync, rename, fsync the
//!   directory) and `repaired` is set.

use super::files::{segment_path, sync_dir, REPAIR_SUFFIX};
use super::format::{self, FrameError, HeaderError, FRAME_HEADER_LEN, HEADER_LEN};
use super::index::{Index, SegId};
use super::prealloc;
use crate::StoreError;
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// What the scan found.
pub(crate) struct Scan {
    pub index: Index,
    /// Segments after recovery, ascending (never empty: one is created if the directory had none).
    pub segments: Vec<SegId>,
    /// Length of the last segment after truncation.
    pub last_len: u64,
    /// Highest batch sequence seen.
    pub last_batch_seq: u64,
    pub records: u64,
    pub bytes: u64,
    pub truncated_bytes: u64,
    pub repaired: bool,
}

/// Offset of the next intact frame at or after `from` whose batch sequence is above `after`
/// (only frames starting before `limit` are considered).
fn find_next_frame(data: &Bytes, from: usize, after: u64, limit: usize) -> Option<usize> {
    let end = data
        .len()
        .checked_sub(FRAME_HEADER_LEN + format::MIN_BODY_LEN)?
        .min(limit.checked_sub(1)?);
    (from..=end)
        .find(|&off| matches!(format::decode_frame(data, off), Ok(f) if f.batch_seq > after))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}

fn truncate(path: &Path, len: u64) -> Result<(), StoreError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.set_len(len).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Replaces a segment by `header + frames`, atomically.
fn rewrite(
    dir: &Path,
    seg: SegId,
    data: &Bytes,
    frames: &[(usize, usize)],
) -> Result<u64, StoreError> {
    let path = segment_path(dir, seg);
    let tmp = path.with_extension(REPAIR_SUFFIX.trim_start_matches('.'));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let mut len = HEADER_LEN as u64;
    f.write_all(&format::encode_header(seg)).map_err(io(&tmp))?;
    for &(start, n) in frames {
        f.write_all(&data[start..start + n]).map_err(io(&tmp))?;
        len += n as u64;
    }
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)?;
    Ok(len)
}

/// A segment read, with the frames that decode one after the other from its start. The reader
/// thread produces these ahead of the thread applying them, so reading and checksumming overlap
/// with rebuilding the index.
struct Loaded {
    data: Bytes,
    /// Intact frames from the header on, in order, up to the first that does not decode.
    frames: std::collections::VecDeque<(usize, format::Frame)>,
}

fn load(dir: &Path, seg: SegId) -> Result<Loaded, StoreError> {
    let path = segment_path(dir, seg);
    let data = Bytes::from(std::fs::read(&path).map_err(io(&path))?);
    let mut frames = std::collections::VecDeque::new();
    if format::decode_header(&data, seg).is_ok() {
        let mut off = HEADER_LEN;
        while let Ok(f) = format::decode_frame(&data, off) {
            let len = f.len;
            frames.push_back((off, f));
            off += len;
        }
    }
    Ok(Loaded { data, frames })
}

/// Scans the segments `ids` of `dir`, in order.
pub(crate) fn scan(
    dir: &Path,
    ids: &[SegId],
    repair: bool,
    budget: Option<u64>,
) -> Result<Scan, StoreError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Loaded, StoreError>>(1);
        let reader = std::thread::Builder::new()
            .name("journal-recovery-reader".into())
            .spawn_scoped(scope, move || {
                for &seg in ids {
                    if tx.send(load(dir, seg)).is_err() {
                        return;
                    }
                }
            });
        match reader {
            Ok(_) => scan_loaded(dir, ids, repair, budget, || {
                rx.recv().unwrap_or_else(|_| {
                    Err(StoreError::io(
                        dir,
                        std::io::Error::other("recovery reader stopped"),
                    ))
                })
            }),
            Err(_) => {
                drop(rx);
                let mut next = ids.iter();
                scan_loaded(dir, ids, repair, budget, || match next.next() {
                    Some(&seg) => load(dir, seg),
                    None => Err(StoreError::io(dir, std::io::Error::other("no segment"))),
                })
            }
        }
    })
}

fn scan_loaded(
    dir: &Path,
    ids: &[SegId],
    repair: bool,
    budget: Option<u64>,
    mut next: impl FnMut() -> Result<Loaded, StoreError>,
) -> Result<Scan, StoreError> {
    let mut index = Index::recovering();
    index.payload_budget = budget;
    let mut scan = Scan {
        index,
        segments: ids.to_vec(),
        last_len: 0,
        last_batch_seq: 0,
        records: 0,
        bytes: 0,
        truncated_bytes: 0,
        repaired: false,
    };
    for (i, &seg) in ids.iter().enumerate() {
        let last = i + 1 == ids.len();
        let path = segment_path(dir, seg);
        let Loaded {
            data,
            frames: mut decoded,
        } = next()?;
        scan.bytes += data.len() as u64;
        let corrupt = |offset: usize, reason: String| StoreError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };

        // Frames kept, as (offset in `data`, length); `None` while the file needs no rewrite.
        let mut kept: Vec<(usize, usize)> = Vec::new();
        let mut must_rewrite = false;
        let mut off = HEADER_LEN;
        match format::decode_header(&data, seg) {
            Ok(()) => {}
            Err(HeaderError::Version(version)) => {
                return Err(StoreError::UnsupportedVersion { path, version })
            }
            Err(e) => {
                let reason = match e {
                    HeaderError::Short => "segment header cut short".to_string(),
                    HeaderError::Damaged(r) => r.to_string(),
                    HeaderError::WrongSegment(id) => format!("header names segment {id}"),
                    HeaderError::Version(_) => String::new(),
                };
                let follows = find_next_frame(&data, 0, scan.last_batch_seq, data.len());
                if last && follows.is_none() {
                    // A segment whose creation was interrupted: nothing in it was confirmed.
                    scan.truncated_bytes += data.len() as u64;
                    rewrite(dir, seg, &data, &[])?;
                    scan.last_len = HEADER_LEN as u64;
                    scan.index.segs.entry(seg).or_default().bytes = HEADER_LEN as u64;
                    continue;
                }
                if !repair {
                    return Err(corrupt(0, reason));
                }
                tracing::warn!(path = %path.display(), %reason, "repair: rewriting segment header");
                scan.repaired = true;
                must_rewrite = true;
                off = follows.unwrap_or(data.len());
                scan.truncated_bytes += off.min(data.len()).saturating_sub(HEADER_LEN) as u64;
            }
        }

        let mut new_len = HEADER_LEN;
        let mut cut_at = None;
        let mut clean_end = None;
        // End of the non-zero bytes: a frame cannot start in the zero tail of the file.
        let nonzero_end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        while off < data.len() {
            let frame = match decoded.front() {
                Some((at, _)) if *at == off => match decoded.pop_front() {
                    Some((_, f)) => Ok(f),
                    None => format::decode_frame(&data, off),
                },
                _ => format::decode_frame(&data, off),
            };
            let reason = match frame {
                Ok(f) if f.batch_seq > scan.last_batch_seq => {
                    scan.last_batch_seq = f.batch_seq;
                    scan.records += f.records.len() as u64;
                    scan.index.apply_batch(&f.records, seg, new_len as u64);
                    kept.push((off, f.len));
                    new_len += f.len;
                    off += f.len;
                    continue;
                }
                Ok(f) => format!(
                    "batch sequence {} does not follow {}",
                    f.batch_seq, scan.last_batch_seq
                ),
                Err(FrameError::Short) => "frame cut short".to_string(),
                Err(FrameError::Bad(r)) => r,
            };
            if last && off >= nonzero_end {
                // Only zeroes follow: unwritten preallocated space, the clean end of the log.
                clean_end = Some(off);
                break;
            }
            let next = find_next_frame(&data, off + 1, scan.last_batch_seq, nonzero_end);
            // In a preallocated segment a torn group may leave intact frames after its damage,
            // but never more than TORN_MAX bytes of them (see `prealloc.rs`).
            let torn_group = nonzero_end < data.len()
                && prealloc::looks_preallocated(data.len() as u64)
                && (nonzero_end - off) as u64 <= prealloc::TORN_MAX;
            if last && (next.is_none() || torn_group) {
                tracing::warn!(
                    path = %path.display(), offset = off, %reason,
                    dropped = data.len() - off, "journal: cutting torn tail"
                );
                scan.truncated_bytes += (data.len() - off) as u64;
                cut_at = Some(off);
                break;
            }
            if !repair {
                let why = match next {
                    Some(n) => format!("{reason}; an intact frame follows at offset {n}"),
                    None => format!("{reason}; later segments follow"),
                };
                return Err(corrupt(off, why));
            }
            let resume = next.unwrap_or(data.len());
            tracing::warn!(
                path = %path.display(), offset = off, %reason,
                dropped = resume - off, "repair: skipping damaged journal bytes"
            );
            scan.repaired = true;
            scan.truncated_bytes += (resume - off) as u64;
            must_rewrite = true;
            off = resume;
        }

        let final_len = if must_rewrite {
            rewrite(dir, seg, &data, &kept)?
        } else if let Some(cut) = cut_at {
            truncate(&path, cut as u64)?;
            cut as u64
        } else if let Some(end) = clean_end {
            // Kept: the writer overwrites the zeroes.
            end as u64
        } else {
            data.len() as u64
        };
        scan.index.segs.entry(seg).or_default().bytes = final_len;
        if last {
            scan.last_len = final_len;
        }
    }
    Ok(scan)
}

/// The messages a budgeted recovery left on disk, per queue: ascending sequence numbers and
/// whether each was streamed yet. Sorted vectors rather than a hash set: 9 bytes a message.
pub(crate) struct Wanted {
    queues: HashMap<u64, (Vec<u64>, Vec<bool>)>,
    left: usize,
}

impl Wanted {
    /// From each queue's ascending sequence numbers.
    pub(crate) fn new(queues: impl Iterator<Item = (u64, Vec<u64>)>) -> Wanted {
        let mut left = 0;
        let queues = queues
            .filter(|(_, seqs)| !seqs.is_empty())
            .map(|(queue, seqs)| {
                left += seqs.len();
                let sent = vec![false; seqs.len()];
                (queue, (seqs, sent))
            })
            .collect();
        Wanted { queues, left }
    }

    /// Messages not streamed yet.
    pub(crate) fn len(&self) -> usize {
        self.left
    }

    /// Whether every message was streamed.
    pub(crate) fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Marks (queue, seq) streamed; false when it was not wanted or already streamed.
    fn remove(&mut self, queue: u64, seq: u64) -> bool {
        let Some((seqs, sent)) = self.queues.get_mut(&queue) else {
            return false;
        };
        match seqs.binary_search(&seq) {
            Ok(i) => match sent.get_mut(i) {
                Some(done) if !*done => {
                    *done = true;
                    self.left -= 1;
                    true
                }
                _ => false,
            },
            Err(_) => false,
        }
    }
}

/// Second pass of a budgeted recovery: reads the (already checked and repaired) segments again,
/// in order, and hands the payload of every `wanted` message to `sink`, once each.
pub(crate) fn stream_payloads(
    dir: &Path,
    segments: &[SegId],
    mut wanted: Wanted,
    sink: &mut dyn FnMut(u64, u64, &Bytes) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    use super::JournalRecord;
    fn visit(
        records: &[JournalRecord],
        wanted: &mut Wanted,
        sink: &mut dyn FnMut(u64, u64, &Bytes) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for r in records {
            match r {
                JournalRecord::Add {
                    queue,
                    seq,
                    payload,
                } if wanted.remove(*queue, *seq) => sink(*queue, *seq, payload)?,
                // The effects of a committed transaction live in its prepare record.
                JournalRecord::TxPrepare { records, .. } => visit(records, wanted, sink)?,
                _ => {}
            }
        }
        Ok(())
    }
    for &seg in segments {
        if wanted.is_empty() {
            break;
        }
        let loaded = load(dir, seg)?;
        for (_, frame) in &loaded.frames {
            visit(&frame.records, &mut wanted, sink)?;
        }
    }
    if wanted.is_empty() {
        Ok(())
    } else {
        Err(StoreError::io(
            dir,
            std::io::Error::other(format!(
                "{} recovered messages were not found again in the second pass",
                wanted.len()
            )),
        ))
    }
}
