//! Primitive data types: variable byte integers, strings, binary data, and a
//! bounds-checked reader over one packet's body.

use bytes::{BufMut, Bytes, BytesMut};

use super::{MqttDecodeError, MqttEncodeError, PacketType};

/// Largest value of a variable byte integer (4 bytes of 7 bits).
pub(crate) const MAX_VAR_INT: u32 = 268_435_455;

/// Longest string or binary field (2-byte length prefix).
const MAX_FIELD: usize = u16::MAX as usize;

/// A variable byte integer at the start of `bytes`: `Ok(Some((value, len)))`,
/// or `Ok(None)` if `bytes` ends before it does.
pub(crate) fn read_var_int(
    bytes: &[u8],
    what: &'static str,
) -> Result<Option<(u32, usize)>, MqttDecodeError> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(4) {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            // A multi-byte encoding whose last byte is 0 could have been shorter.
            if i > 0 && b == 0 {
                return Err(MqttDecodeError::VarIntNotMinimal { what });
            }
            return Ok(Some((value, i + 1)));
        }
        if i == 3 {
            return Err(MqttDecodeError::VarIntTooLong { what });
        }
    }
    Ok(None)
}

/// Bytes needed for `value` as a variable byte integer (`value <= MAX_VAR_INT`).
pub(crate) fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` (at most [`MAX_VAR_INT`]) minimally.
pub(crate) fn put_var_int(dst: &mut BytesMut, value: u32) {
    let mut v = value;
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            dst.put_u8(byte);
            return;
        }
        dst.put_u8(byte | 0x80);
    }
}

/// `len` as a variable byte integer value, or the encode error for `packet_type`.
pub(crate) fn var_int_of(len: usize, packet_type: PacketType) -> Result<u32, MqttEncodeError> {
    u32::try_from(len)
        .ok()
        .filter(|&v| v <= MAX_VAR_INT)
        .ok_or(MqttEncodeError::PacketTooLarge {
            packet_type,
            size: len,
        })
}

/// Whether a code point is one MQTT strings must not (U+0000) or should not
/// (controls, non-characters) contain. Surrogates cannot occur in a `str`.
fn disallowed(c: char) -> bool {
    let cp = u32::from(c);
    cp <= 0x1F
        || (0x7F..=0x9F).contains(&cp)
        || (0xFDD0..=0xFDEF).contains(&cp)
        || (cp & 0xFFFE) == 0xFFFE
}

/// Checks a string's code points (see the [module docs](super)).
pub(crate) fn check_str(s: &str, what: &'static str) -> Result<(), MqttDecodeError> {
    let bytes = s.as_bytes();
    // Fast path: printable ASCII.
    if bytes.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        return Ok(());
    }
    match s.chars().find(|&c| disallowed(c)) {
        Some(c) => Err(MqttDecodeError::DisallowedCodePoint {
            what,
            code_point: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// Writes a UTF-8 string field (2-byte length, then the bytes), after checking it.
pub(crate) fn put_str(
    dst: &mut BytesMut,
    s: &str,
    what: &'static str,
) -> Result<(), MqttEncodeError> {
    check_str(s, what)?;
    put_binary(dst, s.as_bytes(), what)
}

/// Writes a binary data field (2-byte length, then the bytes).
pub(crate) fn put_binary(
    dst: &mut BytesMut,
    b: &[u8],
    what: &'static str,
) -> Result<(), MqttEncodeError> {
    let len =
        u16::try_from(b.len()).map_err(|_| MqttEncodeError::FieldTooLong { what, len: b.len() })?;
    debug_assert!(usize::from(len) <= MAX_FIELD);
    dst.put_u16(len);
    dst.put_slice(b);
    Ok(())
}

/// Reads the fields of one packet body. Every read is bounds-checked and
/// fails with [`MqttDecodeError::UnexpectedEnd`] past the end.
///
/// ### Invariants
///
/// - `pos <= buf.len()`.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    packet_type: PacketType,
}

impl Reader {
    /// A reader over `buf`, a body of a `packet_type` packet.
    pub(crate) fn new(buf: Bytes, packet_type: PacketType) -> Self {
        Reader {
            buf,
            pos: 0,
            packet_type,
        }
    }

    /// The packet type errors are reported for.
    pub(crate) fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn end(&self, what: &'static str) -> MqttDecodeError {
        MqttDecodeError::UnexpectedEnd {
            packet_type: self.packet_type,
            what,
        }
    }

    /// The next `n` bytes, without copying.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, MqttDecodeError> {
        if n > self.remaining() {
            return Err(self.end(what));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], MqttDecodeError> {
        let bytes = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..N))
            .ok_or_else(|| self.end(what))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    /// A byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, MqttDecodeError> {
        self.array::<1>(what).map(|[b]| b)
    }

    /// A big-endian two-byte integer.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, MqttDecodeError> {
        self.array::<2>(what).map(u16::from_be_bytes)
    }

    /// A big-endian four-byte integer.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, MqttDecodeError> {
        self.array::<4>(what).map(u32::from_be_bytes)
    }

    /// A variable byte integer.
    pub(crate) fn var_int(&mut self, what: &'static str) -> Result<u32, MqttDecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match read_var_int(rest, what)? {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None => Err(self.end(what)),
        }
    }

    /// A binary data field: two-byte length, then that many bytes (not copied).
    pub(crate) fn binary(&mut self, what: &'static str) -> Result<Bytes, MqttDecodeError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// A UTF-8 string field, checked as the [module docs](super) say.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, MqttDecodeError> {
        let raw = self.binary(what)?;
        let s = std::str::from_utf8(&raw).map_err(|_| MqttDecodeError::InvalidUtf8 { what })?;
        check_str(s, what)?;
        Ok(s.to_owned())
    }

    /// Everything not read yet, without copying.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// A reader over the next `n` bytes (e.g. a property block).
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader, MqttDecodeError> {
        let buf = self.take(n, what)?;
        Ok(Reader::new(buf, self.packet_type))
    }

    /// Fails unless every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), MqttDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(MqttDecodeError::TrailingBytes {
                packet_type: self.packet_type,
                count,
            }),
        }
    }
}
