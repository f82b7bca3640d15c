//! The error type of the partitioned log.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in [`crate::log`].
///
/// Errors are grouped by blast radius: [`LogError::Io`] and the corruption variants concern the
/// storage itself; the others reject one request and leave the log untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An operating-system call on `path` failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The named stream does not exist.
    #[error("stream {0:?} does not exist")]
    StreamNotFound(String),
    /// `create_stream` was called for an existing stream with a different partition count.
    #[error("stream {stream:?} exists with {existing} partitions, {requested} requested")]
    PartitionCountMismatch {
        /// The stream name.
        stream: String,
        /// Its partition count on disk.
        existing: u32,
        /// The partition count asked for.
        requested: u32,
    },
    /// The partition number is not below the stream's partition count.
    #[error("stream {stream:?} has {partitions} partitions, partition {partition} does not exist")]
    PartitionNotFound {
        /// The stream name.
        stream: String,
        /// The partition asked for.
        partition: u32,
        /// The stream's partition count.
        partitions: u32,
    },
    /// A stream name that is empty, too long, `.`/`..`, or not made of `[A-Za-z0-9._-]`.
    #[error("invalid stream name {0:?}: use 1-249 characters of [A-Za-z0-9._-], not . or ..")]
    InvalidStreamName(String),
    /// A consumer group name longer than [`crate::log::MAX_GROUP_NAME_BYTES`].
    #[error("invalid consumer group name {0:?}: at most 120 bytes")]
    InvalidGroupName(String),
    /// Offset commit metadata longer than [`crate::log::MAX_COMMIT_METADATA_BYTES`].
    #[error("offset commit metadata of {len} bytes exceeds {max}")]
    MetadataTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// [`crate::log::LogOptions`] or [`crate::log::StreamConfig`] holds an unusable value.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A read asked for an offset below the earliest or above the latest offset.
    #[error("offset {requested} is outside [{earliest}, {latest}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: u64,
        /// The earliest offset still stored.
        earliest: u64,
        /// The next offset to be written.
        latest: u64,
    },
    /// `append` was given no records.
    #[error("an append needs at least one record")]
    EmptyBatch,
    /// An encoded batch (or one header name) is larger than the format allows.
    #[error("encoded batch of {size} bytes exceeds the limit of {max}")]
    BatchTooLarge {
        /// The encoded size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Damage was found on open with intact data after it. Nothing was changed on disk; open
    /// again with `repair: true` to truncate at `position` and drop everything after it.
    #[error(
        "damaged data in {} at byte {position} ({reason}) is followed by intact data; \
         refusing to open without repair",
        path.display()
    )]
    InteriorDamage {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the first damaged record or batch.
        position: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// Stored data failed its checksum or could not be decoded (found while reading, or a
    /// metadata file that cannot be repaired by truncation).
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The directory holds a log of another format version.
    #[error("{} holds log format {found:?}, this build reads {expected:?}", path.display())]
    UnsupportedFormat {
        /// The format marker file.
        path: PathBuf,
        /// Its content.
        found: String,
        /// What this build writes.
        expected: String,
    },
    /// The log was closed with [`crate::log::Log::close`].
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`LogError::Io`] naming `path`.
    fn ctx(self, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|e| LogError::io(path, e))
    }
}
