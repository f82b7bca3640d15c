//! STOMP 1.0 / 1.1 / 1.2 frames.
//!
//! Sans-IO: [`decode`] takes bytes from the front of a buffer and returns one
//! [`StompItem`] (a frame or a heart-beat), `Ok(None)` when more bytes are
//! needed (nothing consumed), or a [`StompDecodeError`]. [`StompFrame::encode`]
//! writes a frame. [`StompCodec`] adapts both to `tokio_util::codec` and keeps
//! decoding progress between calls so a frame that arrives in many small reads
//! is scanned once, not once per read.
//!
//! # Wire rules (from the STOMP 1.2 specification, with 1.0/1.1 differences)
//!
//! - A frame is `command EOL *(header EOL) EOL *OCTET NUL *(EOL)`, where
//!   `EOL` is an optional CR followed by LF. CR LF is accepted on decode in
//!   every version (real 1.0/1.1 clients send it); the encoder writes LF.
//! - Commands and header names are case-sensitive.
//! - A header line is split at its first `:` (later colons belong to the
//!   value, as 1.0 clients send them). Header names must not be empty. Header
//!   values are never trimmed or padded (1.1/1.2 forbid it; 1.0 says nothing,
//!   so the bytes are kept as sent). A raw CR inside a line is kept as data,
//!   but a line ending in CR CR LF is rejected: no version can carry a value
//!   that ends in CR without escaping it. Names and values must be UTF-8.
//! - Header escaping: none in 1.0; `\n`, `\c`, `\\` in 1.1; also `\r` in 1.2.
//!   Any other escape sequence is a fatal error. `CONNECT`, `STOMP` and
//!   `CONNECTED` frames are never escaped, whatever the version.
//! - If a `content-length` header is present (the first one wins), exactly
//!   that many body octets are read, NULs included, and a NUL must follow.
//!   Otherwise the body ends at the first NUL.
//! - Any command may carry any header and a body; which frames may have a
//!   body, or need which headers, is the session's business.
//! - On encode, `content-length` is kept truthful and a few octets a version
//!   cannot carry are replaced; see [`StompFrame::encode`].
//! - A bare EOL where a frame would start is a heart-beat
//!   ([`StompItem::HeartBeat`]); this also covers the optional EOLs after a
//!   frame's NUL.
//!
//! # Limits
//!
//! [`StompLimits`] is checked before bytes are buffered or allocated: an
//! unterminated frame errors as soon as the buffered bytes prove it longer
//! than `max_frame_bytes`; a `content-length` that cannot fit errors as soon
//! as the header is read; an unterminated header line errors as soon as it is
//! longer than `max_header_bytes`; the header after `max_headers` errors
//! before it is parsed.

use bytes::Bytes;

mod codec;
mod decode;
mod encode;
mod error;
#[cfg(test)]
mod tests;

pub use codec::{StompCodec, StompCodecError};
pub use decode::decode;
pub use error::StompDecodeError;

/// A STOMP protocol version.
///
/// Ordered, so `version >= StompVersion::V1_1` reads as "1.1 or later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StompVersion {
    /// STOMP 1.0: no header escaping.
    V1_0,
    /// STOMP 1.1: escapes `\n`, `\c` and `\\` in headers; adds NACK and heart-beats.
    V1_1,
    /// STOMP 1.2: also escapes `\r`; frames may end lines with CR LF.
    V1_2,
}

impl StompVersion {
    /// All versions, oldest first.
    pub const ALL: [StompVersion; 3] = [StompVersion::V1_0, StompVersion::V1_1, StompVersion::V1_2];

    /// The version as written in `accept-version` / `version` headers: `"1.0"`, `"1.1"` or `"1.2"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StompVersion::V1_0 => "1.0",
            StompVersion::V1_1 => "1.1",
            StompVersion::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"` exactly; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1.0" => Some(StompVersion::V1_0),
            "1.1" => Some(StompVersion::V1_1),
            "1.2" => Some(StompVersion::V1_2),
            _ => None,
        }
    }
}

impl std::fmt::Display for StompVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP frame command. Client and server commands of all versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StompCommand {
    /// `CONNECT` (client): open a session.
    Connect,
    /// `STOMP` (client, 1.1+): same as `CONNECT`.
    Stomp,
    /// `CONNECTED` (server): session accepted.
    Connected,
    /// `SEND` (client): publish a message.
    Send,
    /// `SUBSCRIBE` (client).
    Subscribe,
    /// `UNSUBSCRIBE` (client).
    Unsubscribe,
    /// `ACK` (client).
    Ack,
    /// `NACK` (client, 1.1+).
    Nack,
    /// `BEGIN` (client): start a transaction.
    Begin,
    /// `COMMIT` (client): commit a transaction.
    Commit,
    /// `ABORT` (client): roll back a transaction.
    Abort,
    /// `DISCONNECT` (client).
    Disconnect,
    /// `MESSAGE` (server): a delivered message.
    Message,
    /// `RECEIPT` (server): acknowledges a frame that carried a `receipt` header.
    Receipt,
    /// `ERROR` (server).
    Error,
}

impl StompCommand {
    /// Every command, in declaration order.
    pub const ALL: [StompCommand; 15] = [
        StompCommand::Connect,
        StompCommand::Stomp,
        StompCommand::Connected,
        StompCommand::Send,
        StompCommand::Subscribe,
        StompCommand::Unsubscribe,
        StompCommand::Ack,
        StompCommand::Nack,
        StompCommand::Begin,
        StompCommand::Commit,
        StompCommand::Abort,
        StompCommand::Disconnect,
        StompCommand::Message,
        StompCommand::Receipt,
        StompCommand::Error,
    ];

    /// The command as it appears on the wire, e.g. `"SEND"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StompCommand::Connect => "CONNECT",
            StompCommand::Stomp => "STOMP",
            StompCommand::Connected => "CONNECTED",
            StompCommand::Send => "SEND",
            StompCommand::Subscribe => "SUBSCRIBE",
            StompCommand::Unsubscribe => "UNSUBSCRIBE",
            StompCommand::Ack => "ACK",
            StompCommand::Nack => "NACK",
            StompCommand::Begin => "BEGIN",
            StompCommand::Commit => "COMMIT",
            StompCommand::Abort => "ABORT",
            StompCommand::Disconnect => "DISCONNECT",
            StompCommand::Message => "MESSAGE",
            StompCommand::Receipt => "RECEIPT",
            StompCommand::Error => "ERROR",
        }
    }

    /// Parses a wire command, case-sensitively (`"SEND"`, not `"send"`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_bytes(s.as_bytes())
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().as_bytes() == b)
    }

    /// Whether headers of this command are escaped in 1.1/1.2. `CONNECT`,
    /// `STOMP` and `CONNECTED` never are, for 1.0 compatibility.
    pub(crate) fn escapes_headers(&self) -> bool {
        !matches!(
            self,
            StompCommand::Connect | StompCommand::Stomp | StompCommand::Connected
        )
    }
}

impl std::fmt::Display for StompCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One STOMP frame: a command, ordered headers (repeats kept), and a body.
///
/// Header names and values are stored unescaped. The body is a cheap
/// reference-counted slice of the receive buffer when decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StompFrame {
    /// The frame's command.
    pub command: StompCommand,
    /// Headers in wire order, repeated names included. Use [`StompFrame::header`]
    /// to read one with STOMP's first-occurrence-wins rule.
    pub headers: Vec<(String, String)>,
    /// The body, without the terminating NUL.
    pub body: Bytes,
}

impl StompFrame {
    /// A frame with no headers and an empty body.
    pub fn new(command: StompCommand) -> Self {
        StompFrame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The value of the first header called `name` (case-sensitive), as
    /// STOMP 1.2 says repeated headers resolve to their first entry.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Builder: appends a header (after any existing one of the same name).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push_header(name, value);
        self
    }

    /// Appends a header (after any existing one of the same name).
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Builder: replaces the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// What [`decode`] yields: a frame, or a heart-beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StompItem {
    /// A complete frame.
    Frame(StompFrame),
    /// A bare EOL (`\n` or `\r\n`) where a frame would start: a heart-beat, or
    /// padding after a frame's NUL. Encoded as `\n`.
    HeartBeat,
}

impl From<StompFrame> for StompItem {
    fn from(frame: StompFrame) -> Self {
        StompItem::Frame(frame)
    }
}

/// Decoder limits, passed in by the caller (never global).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StompLimits {
    /// Largest frame, in wire bytes from the first byte of the command through
    /// the NUL terminator (trailing EOLs not counted). Default 10 MiB.
    pub max_frame_bytes: usize,
    /// Most header lines in one frame, repeats included. Default 1000.
    pub max_headers: usize,
    /// Longest single header line in wire bytes, escapes included, EOL not
    /// included. Default 10 KiB.
    pub max_header_bytes: usize,
}

impl Default for StompLimits {
    fn default() -> Self {
        StompLimits {
            max_frame_bytes: 10 * 1024 * 1024,
            max_headers: 1000,
            max_header_bytes: 10 * 1024,
        }
    }
}

/// How header names and values are escaped in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// STOMP 1.0, and `CONNECT`/`STOMP`/`CONNECTED` in every version.
    None,
    /// STOMP 1.1: `\n`, `\c`, `\\`.
    V1_1,
    /// STOMP 1.2: `\r`, `\n`, `\c`, `\\`.
    V1_2,
}

impl Escaping {
    /// The escaping a frame with `command` uses under `version`.
    pub(crate) fn for_frame(version: StompVersion, command: StompCommand) -> Self {
        if !command.escapes_headers() {
            return Escaping::None;
        }
        match version {
            StompVersion::V1_0 => Escaping::None,
            StompVersion::V1_1 => Escaping::V1_1,
            StompVersion::V1_2 => Escaping::V1_2,
        }
    }
}
