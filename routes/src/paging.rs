//! Spill files for paged-out message bodies: how a deep queue stays within memory.
//!
//! A queue keeps at most a window of ready messages in memory; the messages behind it are
//! encoded into an append-only spill segment and remembered by a small [`PageRef`]. They are read
//! back, in order, as the window drains. This is a cache on disk, not a durability mechanism:
//! persistent messages are in the journal already, and spill files are deleted when the engine
//! opens (as ActiveMQ's temporary store is).
//!
//! ### Invariants
//! - Every [`PageRef`] handed out is released exactly once (read back or dropped with its queue);
//!   a sealed segment is deleted when its last reference is released.
//! - Writes go to the one active segment; it is sealed once it reaches [`SEGMENT_BYTES`].

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A spill segment is sealed past this size, so that consumed space is given back in steps.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Pages are gathered in memory and written to the active segment in runs of this size: one
/// `pwrite` per run instead of one per message (a system call per 1 KB message would cost more
/// than everything else paging does).
const WRITE_BUFFER: usize = 1 << 20;

/// Most bytes [`PageFile::read_many`] reads in one `pread`.
pub const READ_RUN: u64 = 1 << 20;

/// Where one paged body lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRef {
    segment: u64,
    offset: u64,
    len: u32,
}

struct Segment {
    file: Arc<File>,
    path: PathBuf,
    /// References not yet released.
    live: u64,
    /// Bytes written (buffered ones included).
    len: u64,
    /// Bytes of the file at `len - buffer.len()`, not yet written (active segment only).
    buffer: Vec<u8>,
    sealed: bool,
}

impl Segment {
    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let at = self.len - self.buffer.len() as u64;
            self.file.write_all_at(&self.buffer, at)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

#[derive(Default)]
struct Segments {
    by_id: HashMap<u64, Segment>,
    active: Option<u64>,
    next_id: u64,
    /// Bytes currently referenced by live pages (what paging keeps off the heap).
    live_bytes: u64,
}

/// The spill directory of one engine.
pub struct PageFile {
    dir: PathBuf,
    segments: Mutex<Segments>,
}

fn lock(m: &Mutex<Segments>) -> MutexGuard<'_, Segments> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PageFile {
    /// Opens the spill directory `dir`, deleting what an earlier run left there.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<PageFile> {
        let dir = dir.into();
        if dir.exists() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "page") {
                    std::fs::remove_file(&path)?;
                }
            }
        }
        Ok(PageFile {
            dir,
            segments: Mutex::new(Segments::default()),
        })
    }

    /// The directory holding the spill segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `body` to the active segment.
    pub fn write(&self, body: &[u8]) -> io::Result<PageRef> {
        let len = u32::try_from(body.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "page larger than 4 GiB"))?;
        let mut segs = lock(&self.segments);
        let active = match segs.active {
            Some(id) if segs.by_id.get(&id).is_some_and(|s| s.len < SEGMENT_BYTES) => id,
            previous => {
                if let Some(id) = previous {
                    seal(&mut segs, id)?;
                }
                std::fs::create_dir_all(&self.dir)?;
                let id = segs.next_id;
                segs.next_id += 1;
                let path = self.dir.join(format!("spill-{id:020}.page"));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)?;
                segs.by_id.insert(
                    id,
                    Segment {
                        file: Arc::new(file),
                        path,
                        live: 0,
                        len: 0,
                        buffer: Vec::with_capacity(WRITE_BUFFER),
                        sealed: false,
                    },
                );
                segs.active = Some(id);
                id
            }
        };
        let Some(seg) = segs.by_id.get_mut(&active) else {
            return Err(io::Error::other("spill segment vanished"));
        };
        let offset = seg.len;
        seg.buffer.extend_from_slice(body);
        seg.len += u64::from(len);
        if seg.buffer.len() >= WRITE_BUFFER {
            seg.flush()?;
        }
        seg.live += 1;
        segs.live_bytes += u64::from(len);
        Ok(PageRef {
            segment: active,
            offset,
            len,
        })
    }

    /// Reads a page back. The reference stays valid until [`PageFile::release`].
    pub fn read(&self, page: &PageRef) -> io::Result<Vec<u8>> {
        let file = {
            let segs = lock(&self.segments);
            let seg = segs
                .by_id
                .get(&page.segment)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "spill segment is gone"))?;
            // A page is written whole, in one buffered run: it is either all in the buffer or
            // all in the file.
            let buffered_from = seg.len - seg.buffer.len() as u64;
            if page.offset >= buffered_from {
                let start = usize::try_from(page.offset - buffered_from)
                    .map_err(|_| io::Error::other("page offset out of range"))?;
                return seg
                    .buffer
                    .get(start..start + page.len as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| io::Error::other("page past the spill buffer"));
            }
            seg.file.clone()
        };
        // Read outside the lock: other queues page in and out meanwhile.
        let mut buf = vec![0u8; page.len as usize];
        file.read_exact_at(&mut buf, page.offset)?;
        Ok(buf)
    }

    /// Reads pages back, in the order given. Pages that lie end to end in a segment's file (a
    /// queue's pages, written in order) come in one `pread` per run of up to [`READ_RUN`]
    /// bytes, rather than one per page: a queue paging in its window of 1 KB messages made
    /// one system call per message. The references stay valid until [`PageFile::release`].
    pub fn read_many(&self, pages: &[PageRef]) -> io::Result<Vec<Vec<u8>>> {
        enum Source {
            Copied(Vec<u8>),
            File(Arc<File>),
        }
        let sources = {
            let segs = lock(&self.segments);
            let mut sources = Vec::with_capacity(pages.len());
            for page in pages {
                let seg = segs.by_id.get(&page.segment).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "spill segment is gone")
                })?;
                // As in `read`: a page is all in the buffer or all in the file.
                let buffered_from = seg.len - seg.buffer.len() as u64;
                if page.offset >= buffered_from {
                    let start = usize::try_from(page.offset - buffered_from)
                        .map_err(|_| io::Error::other("page offset out of range"))?;
                    let body = seg
                        .buffer
                        .get(start..start + page.len as usize)
                        .ok_or_else(|| io::Error::other("page past the spill buffer"))?;
                    sources.push(Source::Copied(body.to_vec()));
                } else {
                    sources.push(Source::File(seg.file.clone()));
                }
            }
            sources
        };
        // Read outside the lock: other queues page in and out meanwhile.
        let mut out = Vec::with_capacity(pages.len());
        let mut run = Vec::new();
        let mut i = 0;
        while let (Some(page), Some(source)) = (pages.get(i), sources.get(i)) {
            let file = match source {
                Source::Copied(body) => {
                    out.push(body.clone());
                    i += 1;
                    continue;
                }
                Source::File(file) => file,
            };
            // The run: the pages from `i` on that follow each other in the same file.
            let mut end = page.offset + u64::from(page.len);
            let mut j = i + 1;
            while let (Some(next), Some(Source::File(_))) = (pages.get(j), sources.get(j)) {
                if next.segment != page.segment
                    || next.offset != end
                    || end - page.offset + u64::from(next.len) > READ_RUN
                {
                    break;
                }
                end += u64::from(next.len);
                j += 1;
            }
            let len = usize::try_from(end - page.offset)
                .map_err(|_| io::Error::other("page run out of range"))?;
            run.resize(len, 0);
            file.read_exact_at(&mut run, page.offset)?;
            let mut at = 0;
            for p in pages.get(i..j).unwrap_or_default() {
                let body = run
                    .get(at..at + p.len as usize)
                    .ok_or_else(|| io::Error::other("page past its run"))?;
                out.push(body.to_vec());
                at += p.len as usize;
            }
            i = j;
        }
        Ok(out)
    }

    /// Gives a page back; a sealed segment goes when its last page does.
    pub fn release(&self, page: &PageRef) {
        let mut segs = lock(&self.segments);
        segs.live_bytes = segs.live_bytes.saturating_sub(u64::from(page.len));
        let remove = match segs.by_id.get_mut(&page.segment) {
            Some(seg) => {
                seg.live = seg.live.saturating_sub(1);
                seg.live == 0 && seg.sealed
            }
            None => false,
        };
        if remove {
            if let Some(seg) = segs.by_id.remove(&page.segment) {
                let _ = std::fs::remove_file(&seg.path);
            }
        }
    }

    /// Bytes of bodies currently paged out.
    pub fn live_bytes(&self) -> u64 {
        lock(&self.segments).live_bytes
    }

    /// Spill segments currently on disk.
    pub fn segment_count(&self) -> usize {
        lock(&self.segments).by_id.len()
    }
}

/// Seals segment `id` (writing out its buffer); an empty sealed segment is deleted at once.
fn seal(segs: &mut Segments, id: u64) -> io::Result<()> {
    let empty = match segs.by_id.get_mut(&id) {
        Some(seg) => {
            if seg.live > 0 {
                seg.flush()?;
            }
            seg.buffer = Vec::new();
            seg.sealed = true;
            seg.live == 0
        }
        None => false,
    };
    if empty {
        if let Some(seg) = segs.by_id.remove(&id) {
            let _ = std::fs::remove_file(&seg.path);
        }
    }
    if segs.active == Some(id) {
        segs.active = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_read_back_and_segments_go_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let pages = PageFile::open(dir.path().join("paging")).unwrap();
        let body = vec![7u8; 1 << 20];
        let refs: Vec<PageRef> = (0..130)
            .map(|i| pages.write(&vec![i as u8; 1 << 20]).unwrap())
            .collect();
        assert!(pages.segment_count() >= 2, "64 MiB segments must roll over");
        assert_eq!(pages.live_bytes(), 130 << 20);
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(pages.read(r).unwrap(), vec![i as u8; 1 << 20]);
            pages.release(r);
        }
        assert_eq!(body.len(), 1 << 20);
        // Every sealed segment is gone; only the active one may remain.
        assert!(pages.segment_count() <= 1);
        assert_eq!(pages.live_bytes(), 0);
    }

    #[test]
    fn small_pages_read_back_from_the_buffer_and_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pages = PageFile::open(dir.path().join("paging")).unwrap();
        let bodies: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| i.to_le_bytes().repeat(1 + (i as usize % 700)))
            .collect();
        let refs: Vec<PageRef> = bodies.iter().map(|b| pages.write(b).unwrap()).collect();
        // Some are on disk already, the last ones still in the write buffer.
        for (b, r) in bodies.iter().zip(&refs).rev() {
            assert_eq!(&pages.read(r).unwrap(), b);
        }
    }

    #[test]
    fn many_pages_read_back_in_runs_from_the_file_and_the_buffer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pages = PageFile::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        // Enough to flush part of them to the file; the rest stays buffered.
        let bodies: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| {
                let mut b = vec![(i % 251) as u8; 700 + (i % 7) as usize];
                b.extend_from_slice(&i.to_le_bytes());
                b
            })
            .collect();
        let refs: Vec<PageRef> = bodies
            .iter()
            .map(|b| pages.write(b).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        // In order, out of order (runs break), and one at a time agree with `read`.
        let all = pages.read_many(&refs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, bodies);
        let picked: Vec<PageRef> = [5usize, 6, 7, 2, 2999, 1500, 1501]
            .iter()
            .map(|&i| refs[i])
            .collect();
        let got = pages.read_many(&picked).unwrap_or_else(|e| panic!("{e}"));
        for (page, body) in picked.iter().zip(&got) {
            assert_eq!(&pages.read(page).unwrap_or_else(|e| panic!("{e}")), body);
        }
        assert!(pages
            .read_many(&[])
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
    }

    #[test]
    fn open_clears_an_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paging");
        {
            let pages = PageFile::open(&path).unwrap();
            pages.write(b"left behind").unwrap();
        }
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 1);
        let _pages = PageFile::open(&path).unwrap();
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    }
}
