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
    /// - `content-length` is owned by the encoder: the first one is written
    ///   with the body's true length, later ones are dropped, and one is
    ///   added if the body contains a NUL (otherwise the peer would end the
    ///   body at that NUL and read the rest as a new frame).
    /// - Octets the version cannot carry are replaced: in unescaped frames a
    ///   CR or LF becomes a space and a `:` in a name becomes `_`; in 1.1,
    ///   which has no `\r` escape, a CR becomes a space.
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
        let mut wrote_length = false;
        for (name, value) in &self.headers {
            if name.is_empty() {
                continue;
            }
            if name == CONTENT_LENGTH {
                if !wrote_length {
                    put_content_length(self.body.len(), dst);
                    wrote_length = true;
                }
                continue;
            }
            put_text(name, escaping, true, dst);
            dst.put_u8(b':');
            put_text(value, escaping, false, dst);
            dst.put_u8(b'\n');
        }
        if !wrote_length && self.body.contains(&0) {
            put_content_length(self.body.len(), dst);
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

/// Writes a header name (`is_name`) or value, escaped or made safe.
fn put_text(text: &str, escaping: Escaping, is_name: bool, dst: &mut BytesMut) {
    if !text
        .bytes()
        .any(|b| matches!(b, b'\n' | b'\r' | b':' | b'\\'))
    {
        dst.put_slice(text.as_bytes());
        return;
    }
    for b in text.bytes() {
        match (escaping, b) {
            (Escaping::None, b'\n' | b'\r') => dst.put_u8(b' '),
            (Escaping::None, b':') if is_name => dst.put_u8(b'_'),
            (Escaping::None, _) => dst.put_u8(b),
            (_, b'\n') => dst.put_slice(b"\\n"),
            (_, b':') => dst.put_slice(b"\\c"),
            (_, b'\\') => dst.put_slice(b"\\\\"),
            (Escaping::V1_2, b'\r') => dst.put_slice(b"\\r"),
            (Escaping::V1_1, b'\r') => dst.put_u8(b' '),
            (_, _) => dst.put_u8(b),
        }
    }
}
