//! Background preallocation of the active segment (policy `Always` only).
//!
//! `fdatasync` after an append that grows a file must also commit the new size and block
//! allocation (a filesystem journal commit); after overwriting blocks that are already allocated
//! and written it only flushes data. On the benchmark VM that is about 0.5 ms against 0.1 ms for a
//! 48 KiB group. So a *preparer* thread writes zeroes ahead of the writer, in chunks of [`CHUNK`]
//! (whole chunks: a preallocated segment's length is a multiple of `CHUNK`), up to [`AHEAD`] past
//! the write head and never past `segment_bytes` rounded up to a chunk, and fsyncs them. The
//! writer then overwrites zeroes in place.
//!
//! ### Sharing the file
//! The writer writes at explicit offsets; the preparer only writes at or after `written_end`, and
//! only while holding the state lock. The writer writes without the lock below `synced_end`
//! (zeroes the preparer has finished with), and takes the lock to write past it (so it never
//! races a zero write), moving `written_end` past its own bytes. Correctness never depends on
//! `synced_end`: the writer's own `fdatasync` covers any size change it causes.
//!
//! ### What this means for recovery
//! - A run of zero bytes after the last intact frame of the **last** segment is the clean end of
//!   the log (unwritten preallocated space), not damage. Sealed segments are trimmed to their
//!   length (durably) before the next segment is created, and `close` trims the active one, so
//!   only the last segment of a crashed journal has such a tail.
//! - Overwriting in place gives up the filesystem's help in hiding a torn group: after a power
//!   cut during an `fdatasync`, a later page of the group may have reached the disk while an
//!   earlier one did not, so damage can be followed by intact frames that were never confirmed.
//!   The writer therefore never has more than [`TORN_MAX`] bytes written and not yet fsynced
//!   (except one single larger frame), and recovery treats damage in a preallocated last segment
//!   that lies within `TORN_MAX` of its last non-zero byte as a torn tail.

use super::commit::lock;
use super::index::SegId;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Zeroes are written in chunks of this size; preallocated segments are a multiple of it long.
pub(crate) const CHUNK: u64 = 1 << 20;
/// How far ahead of the write head the preparer keeps zeroes ready.
pub(crate) const AHEAD: u64 = 8 << 20;
/// Most bytes the writer leaves written but not fsynced (a single larger frame excepted), so the
/// most a torn group can span.
pub(crate) const TORN_MAX: u64 = 1 << 20;

/// Whether a segment of this length with a zero tail was preallocated by this module.
pub(crate) fn looks_preallocated(file_len: u64) -> bool {
    file_len > 0 && file_len.is_multiple_of(CHUNK)
}

struct State {
    /// The segment being prepared; `None` while the writer switches segments.
    file: Option<Arc<File>>,
    seg: SegId,
    /// Bumped on every switch; a chunk synced for an older file is not published.
    generation: u64,
    /// Bytes of the file written (by either thread) so far.
    written_end: u64,
    /// Where preparation stops (`segment_bytes` rounded up to a chunk).
    cap: u64,
    /// The writer's write head.
    head: u64,
    stop: bool,
    failed: bool,
}

struct Inner {
    state: Mutex<State>,
    cv: Condvar,
    /// Zeroes below this offset are written by the preparer (and fsynced); the writer may
    /// overwrite them without the lock.
    synced_end: AtomicU64,
}

/// The writer's handle on the preparer thread.
pub(crate) struct Prealloc {
    inner: Arc<Inner>,
    handle: Option<JoinHandle<()>>,
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(CHUNK).saturating_mul(CHUNK)
}

impl Prealloc {
    /// Starts preparing `file` (segment `seg`, currently `file_len` bytes long, written up to
    /// `head`). `None` if the thread cannot start (the writer then just appends).
    pub(crate) fn start(
        file: Arc<File>,
        seg: SegId,
        file_len: u64,
        head: u64,
        segment_bytes: u64,
    ) -> Option<Prealloc> {
        let cap = round_up(segment_bytes);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                file: Some(file),
                seg,
                generation: 0,
                written_end: file_len.max(head),
                cap,
                head,
                stop: false,
                failed: false,
            }),
            cv: Condvar::new(),
            synced_end: AtomicU64::new(file_len.max(head)),
        });
        let thread_inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name("journal-prealloc".into())
            .spawn(move || prepare(&thread_inner))
            .map_err(|e| tracing::warn!(error = %e, "journal: no preallocation thread"))
            .ok()?;
        Some(Prealloc {
            inner,
            handle: Some(handle),
        })
    }

    /// Writes `buf` at `offset` of the active file (the one last given to `start`/`switch`).
    pub(crate) fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        let r = if end <= self.inner.synced_end.load(Ordering::Acquire) {
            file.write_all_at(buf, offset)
        } else {
            let mut st = lock(&self.inner.state);
            let r = file.write_all_at(buf, offset);
            st.written_end = st.written_end.max(end);
            r
        };
        self.advance(end);
        r
    }

    /// Tells the preparer where the write head is; wakes it when it falls behind.
    fn advance(&self, head: u64) {
        let synced = self.inner.synced_end.load(Ordering::Acquire);
        if synced >= head.saturating_add(AHEAD / 2) {
            return;
        }
        // If the lock is taken the preparer is busy (or a switch is under way): it rechecks.
        if let Ok(mut st) = self.inner.state.try_lock() {
            st.head = st.head.max(head);
            if st.written_end < st.cap && !st.failed {
                self.inner.cv.notify_one();
            }
        }
    }

    /// Stops preparing the current file (before the writer trims or replaces it).
    pub(crate) fn detach(&self) {
        let mut st = lock(&self.inner.state);
        st.file = None;
        st.generation += 1;
        self.inner.synced_end.store(0, Ordering::Release);
    }

    /// Starts preparing a new active segment, `len` bytes long (its header).
    pub(crate) fn switch(&self, file: Arc<File>, seg: SegId, len: u64) {
        let mut st = lock(&self.inner.state);
        st.file = Some(file);
        st.seg = seg;
        st.generation += 1;
        st.written_end = len;
        st.head = len;
        st.failed = false;
        self.inner.synced_end.store(len, Ordering::Release);
        self.inner.cv.notify_one();
    }

    fn stop(&mut self) {
        lock(&self.inner.state).stop = true;
        self.inner.cv.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Prealloc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn prepare(inner: &Inner) {
    let zeroes = vec![0u8; CHUNK as usize];
    let mut st = lock(&inner.state);
    loop {
        if st.stop {
            return;
        }
        let work = match &st.file {
            Some(f)
                if !st.failed
                    && st.written_end < st.cap
                    && st.written_end < st.head.saturating_add(AHEAD) =>
            {
                Some(f.clone())
            }
            _ => None,
        };
        let Some(file) = work else {
            st = inner.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let (from, generation, seg) = (st.written_end, st.generation, st.seg);
        let to = round_up(from + 1).min(st.cap);
        // Zeroes are written under the lock (the writer never writes past `written_end`
        // meanwhile), the fsync outside it.
        if let Err(e) = file.write_all_at(&zeroes[..(to - from) as usize], from) {
            tracing::warn!(segment = seg, error = %e, "journal: preallocation failed; appending instead");
            st.failed = true;
            continue;
        }
        st.written_end = to;
        drop(st);
        let synced = file.sync_data();
        st = lock(&inner.state);
        if let Err(e) = synced {
            tracing::warn!(segment = seg, error = %e, "journal: preallocation fsync failed; appending instead");
            st.failed = true;
            continue;
        }
        if st.generation == generation {
            inner.synced_end.fetch_max(to, Ordering::AcqRel);
        }
    }
}
