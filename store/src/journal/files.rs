//! Segment file names, directory listing, directory fsync and the directory lock.

use crate::StoreError;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::index::SegId;

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".seg";
/// Suffix of a segment being rewritten by repair (removed at open if left behind).
pub(crate) const REPAIR_SUFFIX: &str = ".seg.repair";
const LOCK_FILE: &str = "journal.lock";

/// `dir/journal-<20 digits>.seg`.
pub(crate) fn segment_path(dir: &Path, seg: SegId) -> PathBuf {
    dir.join(format!("{PREFIX}{seg:020}{SUFFIX}"))
}

fn parse_name(name: &str) -> Option<SegId> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment numbers in `dir`, ascending. Removes leftover repair files.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegId>, StoreError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seg) = parse_name(name) {
            out.push(seg);
        } else if name.ends_with(REPAIR_SUFFIX) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| StoreError::io(p, e))?;
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Makes directory entry changes (create, rename, unlink) in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Takes the exclusive lock on `dir/journal.lock`; the lock lives as long as the returned file.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match try_flock(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

#[allow(unsafe_code)]
fn try_flock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor owned by `file`, alive for the call; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = segment_path(Path::new("/x"), 42);
        assert_eq!(
            p.file_name().and_then(|n| n.to_str()),
            Some("journal-00000000000000000042.seg")
        );
        assert_eq!(parse_name("journal-00000000000000000042.seg"), Some(42));
        assert_eq!(parse_name("journal-42.seg"), None);
        assert_eq!(parse_name("journal-0000000000000000004x.seg"), None);
    }
}
