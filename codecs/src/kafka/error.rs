//! The decoder's error type.

/// Why bytes could not be decoded as a Kafka request, response or record batch. Every variant
/// is fatal for the connection (Kafka brokers close a connection whose request they cannot
/// parse), except that a bad record batch inside a Produce request is answered per partition.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaDecodeError {
    /// The size prefix announces a frame larger than allowed.
    #[error("Kafka frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced size (after the 4-byte prefix).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The size prefix is negative.
    #[error("negative Kafka frame size {0}")]
    NegativeSize(i32),
    /// A field runs past the end of its frame.
    #[error(
        "unexpected end of Kafka data at byte {offset}: {what} needs {need} bytes, {have} left"
    )]
    UnexpectedEof {
        /// Position in the frame (or batch) where the field starts.
        offset: usize,
        /// Which field.
        what: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("invalid Kafka {what} at byte {offset}")]
    Invalid {
        /// Which field.
        what: &'static str,
        /// Position in the frame (or batch).
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("Kafka string at byte {offset} is not UTF-8")]
    InvalidUtf8 {
        /// Position of the string's bytes.
        offset: usize,
    },
    /// Bytes are left after the request body.
    #[error("{count} unexpected bytes after the Kafka message body")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The request names an API key this codec does not know.
    #[error("unknown Kafka API key {api_key} (version {api_version})")]
    UnknownApiKey {
        /// The key.
        api_key: i16,
        /// The version asked for.
        api_version: i16,
    },
    /// The request asks for a version of a known API that this codec does not implement.
    #[error("unsupported version {api_version} of Kafka API {api_key}")]
    UnsupportedVersion {
        /// The key.
        api_key: i16,
        /// The version asked for.
        api_version: i16,
    },
    /// A record batch uses a message format other than v2 (magic 2).
    #[error("unsupported Kafka message format (magic {magic})")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// A record batch's CRC32C does not match its contents.
    #[error(
        "Kafka record batch checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        /// CRC in the batch.
        stored: u32,
        /// CRC of the bytes received.
        computed: u32,
    },
    /// A record batch names a compression codec that does not exist.
    #[error("unknown Kafka compression codec {0}")]
    UnknownCompression(u8),
    /// Compressed records could not be decompressed, or grew past the limit.
    #[error("cannot decompress Kafka records ({codec}): {reason}")]
    Decompression {
        /// The codec name.
        codec: &'static str,
        /// What went wrong.
        reason: String,
    },
}
