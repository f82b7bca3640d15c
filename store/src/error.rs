//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
///
/// Errors are grouped by what the caller can do about them: [`StoreError::Io`] (the disk failed),
/// [`StoreError::Corrupt`] (an operator must decide), [`StoreError::Closed`] /
/// [`StoreError::Failed`] (the journal no longer accepts appends), [`StoreError::InvalidBatch`]
/// (the caller passed records the journal cannot store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation on `path` failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Damage that is not a torn tail: intact records follow it (or it sits in a segment that is
    /// not the last one), so dropping it would silently lose committed data.
    #[error(
        "journal segment {} is damaged at byte offset {offset} ({reason}); intact records follow \
         the damage, so this is not a torn write from a crash and the journal refuses to open. \
         Back up the journal directory, then set store.repair = true to drop the damaged records \
         and continue",
        path.display()
    )]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Byte offset of the first damaged frame in that file.
        offset: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// The journal was closed; nothing more can be appended.
    #[error("journal is closed")]
    Closed,
    /// The journal's writer hit an I/O error earlier and stopped accepting appends, because after a
    /// failed write or fsync the state of the file can no longer be trusted. Reopen the journal.
    #[error(
        "journal writer failed earlier and accepts no more appends ({reason}); reopen the journal"
    )]
    Failed {
        /// The original failure.
        reason: String,
    },
    /// The records passed to an append cannot be stored (too large, nested transactions, ...).
    #[error("invalid journal batch: {reason}")]
    InvalidBatch {
        /// Why the batch was refused.
        reason: String,
    },
    /// Another process (or another open journal in this process) holds the directory.
    #[error("journal directory {} is already in use (lock file held)", path.display())]
    Locked {
        /// The journal directory.
        path: PathBuf,
    },
    /// A segment written by a format version this build does not know.
    #[error("journal segment {} has unsupported format version {version}", path.display())]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// The version found in its header.
        version: u32,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}
