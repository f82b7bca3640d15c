//! Encoding: [`StompFrame`]s and heart-beats to bytes.

use bytes::{BufMut, BytesMut};

use super::decode::CONTENT_LENGTH;
use super::{Escaping, StompFrame, StompItem, StompVersion};

impl StompFrame {
    /// Appends this frame's wire form for `version` to `dst`: the command,
    /// the headers in order, a blank line, the body and the NUL. Lines end
    /// with LF.
    ///
    /// Headers are written as given, escaped as `version` requires (not for
    /// `CONNECT`, `STOMP` and `CONNECTED`), with these exceptions, all of
    /// which keep a peer from reading the stream differently than intended:
    ///
    /// - `content-length` is owned by the encoder: each one whose value is
    ///   not a decimal count equal to the body's length is written with the
    ///   body's length instead (so a peer that takes the last repeat agrees
    ///   with one that takes the first), and one is appended if the body
    ///   contains a NUL (otherwise the peer would end the body at that NUL
    ///   and read the rest as a new frame).
    /// - Octets the frame's escaping cannot carry are replaced. In unescaped
    ///   frames (1.0, and `CONNECT`/`STOMP`/`CONNECTED` in every version) an
    ///   LF becomes a space and a `:` in a name becomes `_`. In unescaped and
    ///   1.1 frames a CR that ends a value becomes a space (it would merge
    ///   with the EOL); a CR elsewhere is written as is, as 1.0/1.1 clients do.
    /// - Headers with an empty name are skipped.
    ///
    /// Any other frame decodes back to itself under the same version.
    pub fn encode(&self, version: StompVersion, dst: &mut BytesMut) {
        let escaping = Escaping::for_frame(version, self.command);
        let headers_len: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        // A hint: escapes may need more, and `reserve` is only an optimisation.
        dst.reserve(self.command.as_str().len() + headers_len + 32 + self.body.len());

        dst.put_slice(self.command.as_str().as_bytes());
        dst.put_u8(b'\n');
        let body_len = self.body.len();
        let mut wrote_length = false;
        for (name, value) in &self.headers {
            if name.is_empty() {
                continue;
            }
            if name == CONTENT_LENGTH {
                wrote_length = true;
                if !states_length(value, body_len) {
                    put_content_length(body_len, dst);
                    continue;
                }
            }
            put_text(name, escaping, true, dst);
            dst.put_u8(b':');
            put_text(value, escaping, false, dst);
            dst.put_u8(b'\n');
        }
        if !wrote_length && self.body.contains(&0) {
            put_content_length(body_len, dst);
        }
        dst.put_u8(b'\n');
        dst.put_slice(&self.body);
        dst.put_u8(0);
    }
}

impl StompItem {
    /// Appends this item's wire form to `dst`: a frame as
    /// [`StompFrame::encode`] writes it, a heart-beat as a single LF.
    pub fn encode(&self, version: StompVersion, dst: &mut BytesMut) {
        match self {
            StompItem::Frame(frame) => frame.encode(version, dst),
            StompItem::HeartBeat => dst.put_u8(b'\n'),
        }
    }
}

fn put_content_length(len: usize, dst: &mut BytesMut) {
    dst.put_slice(CONTENT_LENGTH.as_bytes());
    dst.put_u8(b':');
    dst.put_slice(len.to_string().as_bytes());
    dst.put_u8(b'\n');
}

/// Whether `value` is a decimal octet count equal to `len` (leading zeros allowed).
fn states_length(value: &str, len: usize) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<usize>().is_ok_and(|n| n == len)
}

/// Writes a header name (`is_name`) or value, escaped or made safe.
fn put_text(text: &str, escaping: Escaping, is_name: bool, dst: &mut BytesMut) {
    if !text
        .bytes()
        .any(|b| matches!(b, b'\n' | b'\r' | b':' | b'\\'))
    {
        dst.put_slice(text.as_bytes());
        return;
    }
    let last = text.len().saturating_sub(1);
    for (i, b) in text.bytes().enumerate() {
        match (escaping, b) {
            (Escaping::None, b'\n') => dst.put_u8(b' '),
            (Escaping::None, b':') if is_name => dst.put_u8(b'_'),
            (Escaping::None | Escaping::V1_1, b'\r') if !is_name && i == last => dst.put_u8(b' '),
            (Escaping::None, _) => dst.put_u8(b),
            (_, b'\n') => dst.put_slice(b"\\n"),
            (_, b':') => dst.put_slice(b"\\c"),
            (_, b'\\') => dst.put_slice(b"\\\\"),
            (Escaping::V1_2, b'\r') => dst.put_slice(b"\\r"),
            (_, _) => dst.put_u8(b),
        }
    }
}
