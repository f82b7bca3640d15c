//! The decoder's error type.

/// Why bytes could not be decoded as STOMP. Every variant is fatal for the
/// connection: the stream cannot be re-synchronised after it.
///
/// Line numbers count from 1 at the command line, so the first header is
/// line 2.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StompDecodeError {
    /// The command line is not one of the STOMP commands (case-sensitive).
    #[error("unknown STOMP command {command:?}")]
    UnknownCommand {
        /// The offending command line, lossily decoded and cut to a few bytes.
        command: String,
    },
    /// The frame is, or is announced to be, longer than allowed.
    #[error("STOMP frame of at least {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Lower bound of the frame's size in bytes (exact when announced by `content-length`).
        size: usize,
        /// The configured `max_frame_bytes`.
        max: usize,
    },
    /// The frame has more header lines than allowed.
    #[error("STOMP frame has more than {max} headers")]
    TooManyHeaders {
        /// The configured `max_headers`.
        max: usize,
    },
    /// A header line is longer than allowed.
    #[error("STOMP header line {line} is longer than the limit of {max} bytes")]
    HeaderTooLong {
        /// The line number within the frame.
        line: usize,
        /// The configured `max_header_bytes`.
        max: usize,
    },
    /// A header line is not `name:value` with a non-empty name.
    #[error("malformed STOMP header line {line}: {reason}")]
    MalformedHeader {
        /// The line number within the frame.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header uses an escape sequence the negotiated version does not define.
    #[error("undefined escape sequence {sequence:?} in STOMP header line {line}")]
    InvalidEscape {
        /// The line number within the frame.
        line: usize,
        /// The sequence as found, e.g. `"\\t"`, or `"\\"` at the end of a name or value.
        sequence: String,
    },
    /// A command or header is not valid UTF-8.
    #[error("STOMP header line {line} is not valid UTF-8")]
    InvalidUtf8 {
        /// The line number within the frame.
        line: usize,
    },
    /// The `content-length` header is not a decimal octet count.
    #[error("STOMP content-length {value:?} is not a decimal octet count")]
    BadContentLength {
        /// The header's value (bounded by `max_header_bytes`).
        value: String,
    },
    /// The `content-length` octets of the body are not followed by a NUL.
    #[error(
        "STOMP body of content-length octets is followed by byte {found:#04x} at offset {offset}, not NUL"
    )]
    MissingNulTerminator {
        /// Offset of the offending byte from the start of the frame.
        offset: usize,
        /// The byte found where NUL was expected.
        found: u8,
    },
}
