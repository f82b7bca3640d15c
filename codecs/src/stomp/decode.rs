//! Decoding: bytes to [`StompItem`]s.
//!
//! The work is done by [`decode_with`], which can keep its progress in a
//! [`DecodeState`] between calls (the [`StompCodec`](super::StompCodec) does),
//! so a frame arriving in many small reads is parsed once. [`decode`] is the
//! same thing with a fresh state. Either way, no byte is consumed until a
//! whole item is available.

use bytes::{Buf, BytesMut};

use super::{
    Escaping, StompCommand, StompDecodeError, StompFrame, StompItem, StompLimits, StompVersion,
};

/// Longest command (`UNSUBSCRIBE`) plus an optional CR.
const MAX_COMMAND_LINE: usize = 12;

/// The header that frames a body by length.
pub(crate) const CONTENT_LENGTH: &str = "content-length";

/// Decode one item from the front of `buf`, consuming its bytes.
///
/// Returns `Ok(Some(item))` with exactly the item's bytes consumed (a
/// frame's optional trailing EOLs are left for the next call, which returns
/// them as [`StompItem::HeartBeat`]s), `Ok(None)` when `buf` holds only part of
/// an item (nothing consumed), or an error, after which the stream cannot be
/// re-synchronised and the connection should be closed.
///
/// `version` selects header escaping (see the [module docs](super)).
pub fn decode(
    buf: &mut BytesMut,
    version: StompVersion,
    limits: &StompLimits,
) -> Result<Option<StompItem>, StompDecodeError> {
    decode_with(buf, version, limits, &mut DecodeState::default())
}

/// Progress on a partly received frame, kept between [`decode_with`] calls.
///
/// ### Invariants
///
/// - When `partial` is `Some`, it describes the bytes at the front of the
///   buffer it was built from, which has only been appended to since; no
///   byte of the frame has been consumed. If the buffer is shorter than the
///   recorded progress, the state is discarded and parsing restarts.
/// - After an item or an error is returned, `partial` is `None`.
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    partial: Option<Partial>,
}

impl DecodeState {
    /// Forget any progress (e.g. when the version changes mid-stream).
    pub(crate) fn reset(&mut self) {
        self.partial = None;
    }
}

/// A frame whose command line has been read.
#[derive(Debug)]
struct Partial {
    command: StompCommand,
    escaping: Escaping,
    headers: Vec<(String, String)>,
    /// Offset of the next unread header line, or of the body once `head_done`.
    pos: usize,
    /// Line number of the line at `pos` (the command is line 1).
    line: usize,
    /// Whether the blank line ending the headers has been read.
    head_done: bool,
    /// The first `content-length` header's value.
    content_length: Option<usize>,
    /// Body without `content-length`: bytes from `pos` up to here hold no NUL.
    scanned: usize,
}

impl Partial {
    fn progress(&self) -> usize {
        self.pos.max(self.scanned)
    }
}

/// [`decode`], resuming from and recording progress in `state`.
pub(crate) fn decode_with(
    buf: &mut BytesMut,
    version: StompVersion,
    limits: &StompLimits,
    state: &mut DecodeState,
) -> Result<Option<StompItem>, StompDecodeError> {
    if state
        .partial
        .as_ref()
        .is_some_and(|p| p.progress() > buf.len())
    {
        state.reset();
    }
    let result = step(buf, version, limits, state);
    if !matches!(result, Ok(None)) {
        state.reset();
    }
    result
}

/// What the start of the buffer holds.
enum Start {
    /// Not enough bytes to tell.
    NeedMore,
    /// A bare EOL of this many bytes.
    HeartBeat(usize),
    /// A frame whose command line has been read.
    Frame(Partial),
}

fn step(
    buf: &mut BytesMut,
    version: StompVersion,
    limits: &StompLimits,
    state: &mut DecodeState,
) -> Result<Option<StompItem>, StompDecodeError> {
    let mut partial = match state.partial.take() {
        Some(partial) => partial,
        None => match start(buf, version, limits)? {
            Start::NeedMore => return Ok(None),
            Start::HeartBeat(len) => {
                buf.advance(len);
                return Ok(Some(StompItem::HeartBeat));
            }
            Start::Frame(partial) => partial,
        },
    };

    if !partial.head_done && !read_headers(buf, limits, &mut partial)? {
        state.partial = Some(partial);
        return need_more(buf.len(), limits);
    }

    let Some(nul_at) = find_body_end(buf, limits, &mut partial)? else {
        state.partial = Some(partial);
        // Bytes past `max_frame_bytes` were not searched: they may hold the NUL.
        return need_more(buf.len().min(limits.max_frame_bytes), limits);
    };

    // `find_body_end` guarantees `partial.pos <= nul_at < buf.len()`.
    let mut frame = buf.split_to(nul_at + 1);
    let mut body = frame.split_off(partial.pos);
    body.truncate(nul_at - partial.pos);
    Ok(Some(StompItem::Frame(StompFrame {
        command: partial.command,
        headers: partial.headers,
        body: body.freeze(),
    })))
}

/// `Ok(None)` unless the `buffered` bytes known to belong to an unfinished
/// frame already prove it longer than the limit (it needs at least one more
/// byte).
fn need_more(buffered: usize, limits: &StompLimits) -> Result<Option<StompItem>, StompDecodeError> {
    if buffered >= limits.max_frame_bytes {
        return Err(StompDecodeError::FrameTooLarge {
            size: buffered.saturating_add(1),
            max: limits.max_frame_bytes,
        });
    }
    Ok(None)
}

/// Errors if a frame known to be at least `size` bytes is over the limit.
fn check_frame_size(size: usize, limits: &StompLimits) -> Result<(), StompDecodeError> {
    if size > limits.max_frame_bytes {
        return Err(StompDecodeError::FrameTooLarge {
            size,
            max: limits.max_frame_bytes,
        });
    }
    Ok(())
}

fn unknown_command(bytes: &[u8]) -> StompDecodeError {
    let shown = bytes.get(..MAX_COMMAND_LINE).unwrap_or(bytes);
    StompDecodeError::UnknownCommand {
        command: String::from_utf8_lossy(shown).into_owned(),
    }
}

/// Whether `bytes` (no LF yet) can still become a command line.
fn could_be_command(bytes: &[u8]) -> bool {
    match bytes.strip_suffix(b"\r") {
        // Only the LF can follow a CR.
        Some(whole) => StompCommand::from_bytes(whole).is_some(),
        None => StompCommand::ALL
            .iter()
            .any(|c| c.as_str().as_bytes().starts_with(bytes)),
    }
}

fn start(
    buf: &BytesMut,
    version: StompVersion,
    limits: &StompLimits,
) -> Result<Start, StompDecodeError> {
    match (buf.first(), buf.get(1)) {
        (None, _) | (Some(b'\r'), None) => return Ok(Start::NeedMore),
        (Some(b'\n'), _) => return Ok(Start::HeartBeat(1)),
        (Some(b'\r'), Some(b'\n')) => return Ok(Start::HeartBeat(2)),
        _ => {}
    }
    let window = buf
        .get(..buf.len().min(MAX_COMMAND_LINE + 1))
        .unwrap_or_default();
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if window.len() > MAX_COMMAND_LINE || !could_be_command(window) {
            return Err(unknown_command(window));
        }
        need_more(buf.len(), limits)?;
        return Ok(Start::NeedMore);
    };
    let raw = window.get(..lf).unwrap_or_default();
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    let command = StompCommand::from_bytes(line).ok_or_else(|| unknown_command(raw))?;
    let pos = lf + 1;
    // At least a blank line and the NUL follow.
    check_frame_size(pos + 2, limits)?;
    Ok(Start::Frame(Partial {
        command,
        escaping: Escaping::for_frame(version, command),
        headers: Vec::new(),
        pos,
        line: 2,
        head_done: false,
        content_length: None,
        scanned: 0,
    }))
}

/// Reads header lines from `partial.pos` on. `Ok(true)` once the blank line
/// ending the headers has been read, `Ok(false)` if more bytes are needed.
fn read_headers(
    buf: &BytesMut,
    limits: &StompLimits,
    p: &mut Partial,
) -> Result<bool, StompDecodeError> {
    let max_line = limits.max_header_bytes;
    loop {
        let rest = buf.get(p.pos..).unwrap_or_default();
        // A line of `max_line` bytes, a CR and the LF.
        let window = rest
            .get(..rest.len().min(max_line.saturating_add(2)))
            .unwrap_or_default();
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if window.len() > max_line.saturating_add(1) {
                return Err(StompDecodeError::HeaderTooLong {
                    line: p.line,
                    max: max_line,
                });
            }
            return Ok(false);
        };
        let raw = window.get(..lf).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let next = p.pos + lf + 1;

        if line.is_empty() {
            p.pos = next;
            p.scanned = next;
            p.head_done = true;
            if let Some(len) = p.content_length {
                check_frame_size(next.saturating_add(len).saturating_add(1), limits)?;
            }
            return Ok(true);
        }
        if line.len() > max_line {
            return Err(StompDecodeError::HeaderTooLong {
                line: p.line,
                max: max_line,
            });
        }
        if p.headers.len() >= limits.max_headers {
            return Err(StompDecodeError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        // At least a blank line and the NUL follow.
        check_frame_size(next + 2, limits)?;

        let (name, value) = parse_header(line, p.escaping, p.line)?;
        if name == CONTENT_LENGTH && p.content_length.is_none() {
            let len = parse_content_length(&value)?;
            // At least a blank line, `len` octets and the NUL follow.
            check_frame_size(next.saturating_add(len).saturating_add(2), limits)?;
            p.content_length = Some(len);
        }
        p.headers.push((name, value));
        p.pos = next;
        p.line += 1;
    }
}

fn parse_content_length(value: &str) -> Result<usize, StompDecodeError> {
    let bad = || StompDecodeError::BadContentLength {
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// Splits a header line (no EOL) at its first `:` and unescapes both halves.
fn parse_header(
    line: &[u8],
    escaping: Escaping,
    line_no: usize,
) -> Result<(String, String), StompDecodeError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(StompDecodeError::MalformedHeader {
            line: line_no,
            reason: "no ':' between name and value",
        })?;
    if line.ends_with(b"\r") {
        // "CR CR LF": the value would end with a CR, which 1.0/1.1 cannot
        // carry and 1.2 forbids unescaped.
        return Err(StompDecodeError::MalformedHeader {
            line: line_no,
            reason: "stray CR before the end of line",
        });
    }
    let (name, value) = line.split_at(colon);
    let value = value.get(1..).unwrap_or_default();
    if name.is_empty() {
        return Err(StompDecodeError::MalformedHeader {
            line: line_no,
            reason: "empty header name",
        });
    }
    Ok((
        unescape(name, escaping, line_no)?,
        unescape(value, escaping, line_no)?,
    ))
}

/// Applies the version's escape rules to a header name or value.
fn unescape(raw: &[u8], escaping: Escaping, line: usize) -> Result<String, StompDecodeError> {
    let utf8 = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| StompDecodeError::InvalidUtf8 { line })
    };
    if escaping == Escaping::None || !raw.contains(&b'\\') {
        return utf8(raw.to_vec());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let unescaped = match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if escaping == Escaping::V1_2 => b'\r',
            other => {
                let sequence = match other {
                    None => "\\".to_owned(),
                    Some(&c) if c.is_ascii_graphic() || c == b' ' => format!("\\{}", char::from(c)),
                    Some(&c) => format!("\\<0x{c:02x}>"),
                };
                return Err(StompDecodeError::InvalidEscape { line, sequence });
            }
        };
        out.push(unescaped);
    }
    utf8(out)
}

/// Finds the NUL ending the body: `Ok(Some(offset))`, or `Ok(None)` if it has
/// not arrived yet. Guarantees `p.pos <= offset < buf.len()`.
fn find_body_end(
    buf: &BytesMut,
    limits: &StompLimits,
    p: &mut Partial,
) -> Result<Option<usize>, StompDecodeError> {
    if let Some(len) = p.content_length {
        // Checked against `max_frame_bytes` when the headers ended, so no overflow.
        let nul_at = p.pos.saturating_add(len);
        return match buf.get(nul_at) {
            None => Ok(None),
            Some(0) => Ok(Some(nul_at)),
            Some(&found) => Err(StompDecodeError::MissingNulTerminator {
                offset: nul_at,
                found,
            }),
        };
    }
    // A NUL at or past `max_frame_bytes` would make the frame too long: don't look there.
    let from = p.scanned.max(p.pos);
    let until = buf.len().min(limits.max_frame_bytes);
    let haystack = buf.get(from..until).unwrap_or_default();
    match haystack.iter().position(|&b| b == 0) {
        Some(i) => Ok(Some(from + i)),
        None => {
            p.scanned = until.max(from);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    /// A frame trickling in is scanned once: headers are not re-parsed and
    /// the NUL search resumes where it stopped (no quadratic rescans).
    #[test]
    fn progress_is_kept_between_calls() {
        let limits = StompLimits::default();
        let mut state = DecodeState::default();
        let mut buf = BytesMut::from(&b"SEND\na:1\nb:"[..]);
        let v = StompVersion::V1_2;
        assert_eq!(decode_with(&mut buf, v, &limits, &mut state), Ok(None));
        let p = state.partial.as_ref().unwrap();
        assert_eq!((p.headers.len(), p.pos, p.line), (1, 9, 3));

        buf.extend_from_slice(b"2\n\nbody");
        assert_eq!(decode_with(&mut buf, v, &limits, &mut state), Ok(None));
        let p = state.partial.as_ref().unwrap();
        assert!(p.head_done);
        assert_eq!(p.headers.len(), 2);
        assert_eq!((p.pos, p.scanned), (14, 18));

        buf.extend_from_slice(b" more");
        assert_eq!(decode_with(&mut buf, v, &limits, &mut state), Ok(None));
        assert_eq!(state.partial.as_ref().unwrap().scanned, 23);

        buf.extend_from_slice(b"\0");
        let item = decode_with(&mut buf, v, &limits, &mut state).unwrap();
        assert!(state.partial.is_none());
        let Some(StompItem::Frame(frame)) = item else {
            panic!("{item:?}")
        };
        assert_eq!(frame.body, "body more");
    }
}
