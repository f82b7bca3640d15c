//! Consumer-group committed offsets: one small append-only file per group.
//!
//! `groups/g-<hex of the group name>.offsets` holds records, little-endian:
//!
//! ```text
//! len u32 (bytes after this field), crc u32 (CRC32C of the bytes after it), kind u8
//! (1 = commit, 2 = delete), stream_len u16, stream, partition u32, offset u64,
//! metadata_len u32, metadata (UTF-8)
//! ```
//!
//! The last record for a (stream, partition) wins. Every commit is fsynced before it returns.
//! Recovery follows the segment rules: a torn tail is truncated; damage followed by an intact
//! record refuses to open unless `repair`. The file is rewritten with only live entries on open
//! when it holds superseded records, and whenever it grows past four times its live entries.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use super::error::{IoContext, LogError};
use super::fsutil::{remove_if_exists, sync_dir, write_atomic};
use super::partition::{lock, read, write};
use super::Truncation;

/// Longest consumer group name, in bytes (the file name holds it hex-encoded).
pub const MAX_GROUP_NAME_BYTES: usize = 120;
/// Longest commit metadata, in bytes (Kafka's default `offset.metadata.max.bytes`).
pub const MAX_COMMIT_METADATA_BYTES: usize = 4096;

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
/// Compaction when the file holds more than this many records per live entry...
const COMPACT_FACTOR: u64 = 4;
/// ...and at least this many records.
const COMPACT_MIN_RECORDS: u64 = 1024;

type Key = (String, u32);

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The stream.
    pub stream: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset (by convention the next offset the group will consume).
    pub offset: u64,
    /// Free-form metadata the client attached.
    pub metadata: String,
}

struct GroupWriter {
    file: File,
    len: u64,
    records: u64,
}

struct Group {
    path: PathBuf,
    writer: Mutex<GroupWriter>,
    live: RwLock<HashMap<Key, (u64, String)>>,
}

/// All groups' committed offsets.
pub(crate) struct OffsetStore {
    dir: PathBuf,
    groups: RwLock<HashMap<String, Arc<Group>>>,
    create: Mutex<()>,
}

fn encode(kind: u8, stream: &str, partition: u32, offset: u64, metadata: &str, out: &mut Vec<u8>) {
    let body_len = 4 + 1 + 2 + stream.len() + 4 + 8 + 4 + metadata.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.push(kind);
    out.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(&partition.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    out.extend_from_slice(metadata.as_bytes());
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

struct Rec {
    kind: u8,
    stream: String,
    partition: u32,
    offset: u64,
    metadata: String,
}

/// Decodes the record at the start of `b`: `Ok((record, length))`, or why it is invalid.
fn decode(b: &[u8]) -> Result<(Rec, usize), &'static str> {
    let take = |b: &[u8], at: usize, n: usize| b.get(at..at + n).map(<[u8]>::to_vec);
    let head = take(b, 0, 8).ok_or("truncated record header")?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(4 + 1 + 2 + 4 + 8 + 4..=4 + 1 + 2 + 65535 + 4 + 8 + 4 + MAX_COMMIT_METADATA_BYTES)
        .contains(&len)
    {
        return Err("implausible record length");
    }
    let body = b.get(8..4 + len).ok_or("truncated record")?;
    if crc32c::crc32c(body) != crc {
        return Err("record checksum mismatch");
    }
    let kind = body[0];
    if kind != KIND_COMMIT && kind != KIND_DELETE {
        return Err("unknown record kind");
    }
    let slen = u16::from_le_bytes([body[1], body[2]]) as usize;
    let rest = body.get(3..).ok_or("malformed record")?;
    let stream = rest.get(..slen).ok_or("malformed record")?;
    let rest = &rest[slen..];
    if rest.len() < 16 {
        return Err("malformed record");
    }
    let mut p = [0u8; 4];
    p.copy_from_slice(&rest[..4]);
    let mut o = [0u8; 8];
    o.copy_from_slice(&rest[4..12]);
    let mut m = [0u8; 4];
    m.copy_from_slice(&rest[12..16]);
    let mlen = u32::from_le_bytes(m) as usize;
    let meta = &rest[16..];
    if meta.len() != mlen {
        return Err("malformed record");
    }
    Ok((
        Rec {
            kind,
            stream: String::from_utf8(stream.to_vec()).map_err(|_| "stream name not UTF-8")?,
            partition: u32::from_le_bytes(p),
            offset: u64::from_le_bytes(o),
            metadata: String::from_utf8(meta.to_vec()).map_err(|_| "metadata not UTF-8")?,
        },
        4 + len,
    ))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let digits = s.as_bytes().chunks_exact(2);
    if !digits.remainder().is_empty() {
        return None;
    }
    let bytes: Option<Vec<u8>> = digits
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Group {
    fn open(path: PathBuf, repair: bool, report: &mut Vec<Truncation>) -> Result<Group, LogError> {
        let bytes = fs::read(&path).ctx(&path)?;
        let mut live: HashMap<Key, (u64, String)> = HashMap::new();
        let mut at = 0usize;
        let mut records = 0u64;
        while at < bytes.len() {
            match decode(&bytes[at..]) {
                Ok((r, n)) => {
                    let key = (r.stream, r.partition);
                    if r.kind == KIND_COMMIT {
                        live.insert(key, (r.offset, r.metadata));
                    } else {
                        live.remove(&key);
                    }
                    records += 1;
                    at += n;
                }
                Err(reason) => {
                    let interior = (at + 1..bytes.len()).any(|i| decode(&bytes[i..]).is_ok());
                    if interior && !repair {
                        return Err(LogError::InteriorDamage {
                            path,
                            position: at as u64,
                            reason: reason.to_string(),
                        });
                    }
                    tracing::warn!(path = %path.display(), position = at, reason, interior, "truncating offsets file");
                    report.push(Truncation {
                        path: path.clone(),
                        position: at as u64,
                        bytes_dropped: (bytes.len() - at) as u64,
                        segments_dropped: Vec::new(),
                        reason: reason.to_string(),
                        interior,
                    });
                    let f = OpenOptions::new().write(true).open(&path).ctx(&path)?;
                    f.set_len(at as u64).ctx(&path)?;
                    f.sync_all().ctx(&path)?;
                    break;
                }
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ctx(&path)?;
        let group = Group {
            path,
            writer: Mutex::new(GroupWriter {
                file,
                len: at as u64,
                records,
            }),
            live: RwLock::new(live),
        };
        if records > group.live_len() {
            let mut w = lock(&group.writer);
            group.compact(&mut w)?;
        }
        Ok(group)
    }

    fn live_len(&self) -> u64 {
        read(&self.live).len() as u64
    }

    /// Rewrites the file with only the live entries (atomic replace).
    fn compact(&self, w: &mut GroupWriter) -> Result<(), LogError> {
        let mut buf = Vec::new();
        let live = read(&self.live).clone();
        let mut entries: Vec<_> = live.iter().collect();
        entries.sort();
        for ((stream, partition), (offset, meta)) in &entries {
            encode(KIND_COMMIT, stream, *partition, *offset, meta, &mut buf);
        }
        write_atomic(&self.path, &buf)?;
        w.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .ctx(&self.path)?;
        w.len = buf.len() as u64;
        w.records = entries.len() as u64;
        Ok(())
    }

    /// Appends records (fsynced) and applies them.
    fn append(&self, recs: &[(u8, &str, u32, u64, &str)]) -> Result<(), LogError> {
        let mut buf = Vec::new();
        for (kind, stream, partition, offset, meta) in recs {
            encode(*kind, stream, *partition, *offset, meta, &mut buf);
        }
        let mut w = lock(&self.writer);
        w.file.write_all_at(&buf, w.len).ctx(&self.path)?;
        w.file.sync_data().ctx(&self.path)?;
        w.len += buf.len() as u64;
        w.records += recs.len() as u64;
        {
            let mut live = write(&self.live);
            for (kind, stream, partition, offset, meta) in recs {
                let key = (stream.to_string(), *partition);
                if *kind == KIND_COMMIT {
                    live.insert(key, (*offset, meta.to_string()));
                } else {
                    live.remove(&key);
                }
            }
        }
        if w.records >= COMPACT_MIN_RECORDS && w.records > COMPACT_FACTOR * self.live_len() {
            self.compact(&mut w)?;
        }
        Ok(())
    }
}

impl OffsetStore {
    /// Loads every group file under `dir` (created if missing).
    pub fn open(
        dir: PathBuf,
        repair: bool,
        report: &mut Vec<Truncation>,
    ) -> Result<OffsetStore, LogError> {
        fs::create_dir_all(&dir).ctx(&dir)?;
        let mut groups = HashMap::new();
        for entry in fs::read_dir(&dir).ctx(&dir)? {
            let entry = entry.ctx(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                remove_if_exists(&entry.path())?;
                continue;
            }
            let Some(group) = name
                .strip_prefix("g-")
                .and_then(|n| n.strip_suffix(".offsets"))
                .and_then(unhex)
            else {
                continue;
            };
            groups.insert(group, Arc::new(Group::open(entry.path(), repair, report)?));
        }
        Ok(OffsetStore {
            dir,
            groups: RwLock::new(groups),
            create: Mutex::new(()),
        })
    }

    fn group(&self, name: &str, create: bool) -> Result<Option<Arc<Group>>, LogError> {
        if let Some(g) = read(&self.groups).get(name) {
            return Ok(Some(Arc::clone(g)));
        }
        if !create {
            return Ok(None);
        }
        let _guard = lock(&self.create);
        if let Some(g) = read(&self.groups).get(name) {
            return Ok(Some(Arc::clone(g)));
        }
        let path = self.dir.join(format!("g-{}.offsets", hex(name)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .ctx(&path)?;
        file.sync_all().ctx(&path)?;
        sync_dir(&self.dir)?;
        let g = Arc::new(Group {
            path,
            writer: Mutex::new(GroupWriter {
                file,
                len: 0,
                records: 0,
            }),
            live: RwLock::new(HashMap::new()),
        });
        write(&self.groups).insert(name.to_string(), Arc::clone(&g));
        Ok(Some(g))
    }

    /// Stores a commit durably.
    pub fn commit(
        &self,
        group: &str,
        stream: &str,
        partition: u32,
        offset: u64,
        metadata: &str,
    ) -> Result<(), LogError> {
        if group.len() > MAX_GROUP_NAME_BYTES {
            return Err(LogError::InvalidGroupName(group.to_string()));
        }
        if metadata.len() > MAX_COMMIT_METADATA_BYTES {
            return Err(LogError::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_COMMIT_METADATA_BYTES,
            });
        }
        let Some(g) = self.group(group, true)? else {
            return Err(LogError::InvalidGroupName(group.to_string()));
        };
        g.append(&[(KIND_COMMIT, stream, partition, offset, metadata)])
    }

    /// The last commit of `group` for a partition.
    pub fn get(&self, group: &str, stream: &str, partition: u32) -> Option<(u64, String)> {
        let g = read(&self.groups).get(group).cloned()?;
        let live = read(&g.live);
        live.get(&(stream.to_string(), partition)).cloned()
    }

    /// Every commit of `group`, sorted by stream and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<CommittedOffset> {
        let Some(g) = read(&self.groups).get(group).cloned() else {
            return Vec::new();
        };
        let live = read(&g.live);
        let mut out: Vec<CommittedOffset> = live
            .iter()
            .map(
                |((stream, partition), (offset, metadata))| CommittedOffset {
                    stream: stream.clone(),
                    partition: *partition,
                    offset: *offset,
                    metadata: metadata.clone(),
                },
            )
            .collect();
        out.sort_by(|a, b| (&a.stream, a.partition).cmp(&(&b.stream, b.partition)));
        out
    }

    /// Names of groups that have a file.
    pub fn groups(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.groups).keys().cloned().collect();
        v.sort();
        v
    }

    /// Forgets every commit for streams for which `keep` returns false.
    pub fn retain_streams(&self, keep: impl Fn(&str) -> bool) -> Result<(), LogError> {
        let groups: Vec<Arc<Group>> = read(&self.groups).values().cloned().collect();
        for g in groups {
            let gone: Vec<Key> = read(&g.live)
                .keys()
                .filter(|(s, _)| !keep(s))
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            let recs: Vec<(u8, &str, u32, u64, &str)> = gone
                .iter()
                .map(|(s, p)| (KIND_DELETE, s.as_str(), *p, 0, ""))
                .collect();
            g.append(&recs)?;
        }
        Ok(())
    }
}
