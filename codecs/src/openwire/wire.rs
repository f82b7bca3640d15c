//! Loose-encoding primitives: the bounds-checked reader and the writer every
//! structure is built on, and Java's modified UTF-8.

use bytes::{BufMut, Bytes, BytesMut};

use super::{OpenWireDecodeError, OpenWireEncodeError};

/// What a structure's encoding depends on besides its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context {
    /// The negotiated OpenWire version (1 to 12): fields newer than it are
    /// neither read nor written.
    pub(crate) version: u32,
    /// Whether throwables carry stack traces and causes (`StackTraceEnabled`).
    pub(crate) stack_trace: bool,
    /// Deepest nesting of objects, causes, maps and lists.
    pub(crate) max_depth: usize,
}

/// A bounds-checked reader over one command's bytes. Offsets in errors count
/// from the command's type byte.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    depth: usize,
    pub(crate) ctx: Context,
}

impl Reader {
    /// A reader over `buf`.
    pub(crate) fn new(buf: Bytes, ctx: Context) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
            ctx,
        }
    }

    /// Offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The error for a field of `need` bytes that is not there.
    pub(crate) fn truncated(&self, need: usize) -> OpenWireDecodeError {
        OpenWireDecodeError::Truncated {
            offset: self.pos,
            need,
            have: self.remaining(),
        }
    }

    /// Fails if any byte is left.
    pub(crate) fn finish(&self) -> Result<(), OpenWireDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(OpenWireDecodeError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }

    /// The next `n` bytes, as a cheap slice of the frame.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, OpenWireDecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OpenWireDecodeError> {
        let mut out = [0u8; N];
        let src = self
            .buf
            .get(self.pos..self.pos.saturating_add(N))
            .ok_or_else(|| self.truncated(N))?;
        out.copy_from_slice(src);
        self.pos += N;
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, OpenWireDecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A Java `byte`.
    pub(crate) fn i8(&mut self) -> Result<i8, OpenWireDecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    /// A Java `boolean`: any non-zero byte is true, as `DataInput.readBoolean`.
    pub(crate) fn bool(&mut self) -> Result<bool, OpenWireDecodeError> {
        Ok(self.u8()? != 0)
    }

    /// A Java `short`.
    pub(crate) fn i16(&mut self) -> Result<i16, OpenWireDecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// A Java `char` (a UTF-16 code unit).
    pub(crate) fn u16(&mut self) -> Result<u16, OpenWireDecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A Java `int`.
    pub(crate) fn i32(&mut self) -> Result<i32, OpenWireDecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A Java `long`.
    pub(crate) fn i64(&mut self) -> Result<i64, OpenWireDecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A Java `float`.
    pub(crate) fn f32(&mut self) -> Result<f32, OpenWireDecodeError> {
        Ok(f32::from_be_bytes(self.array()?))
    }

    /// A Java `double`.
    pub(crate) fn f64(&mut self) -> Result<f64, OpenWireDecodeError> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// `DataInput.readUTF`: a `u16` length and that many bytes of modified UTF-8.
    pub(crate) fn utf(&mut self) -> Result<String, OpenWireDecodeError> {
        let len = usize::from(self.u16()?);
        self.utf_bytes(len)
    }

    /// `len` bytes of modified UTF-8.
    pub(crate) fn utf_bytes(&mut self, len: usize) -> Result<String, OpenWireDecodeError> {
        let offset = self.pos;
        let bytes = self.take(len)?;
        decode_modified_utf8(&bytes).ok_or(OpenWireDecodeError::BadString { offset })
    }

    /// A nullable string: a `boolean` and, when true, `readUTF`.
    pub(crate) fn string(&mut self) -> Result<Option<String>, OpenWireDecodeError> {
        if self.bool()? {
            Ok(Some(self.utf()?))
        } else {
            Ok(None)
        }
    }

    /// A length for what follows: an `int`, never negative.
    pub(crate) fn length(&mut self) -> Result<usize, OpenWireDecodeError> {
        let offset = self.pos;
        let len = self.i32()?;
        usize::try_from(len).map_err(|_| OpenWireDecodeError::NegativeLength {
            offset,
            length: i64::from(len),
        })
    }

    /// A nullable byte sequence or byte array: a `boolean` and, when true, an
    /// `int` length and the bytes (a slice of the frame, checked against the
    /// bytes present before anything is taken).
    pub(crate) fn byte_sequence(&mut self) -> Result<Option<Bytes>, OpenWireDecodeError> {
        if !self.bool()? {
            return Ok(None);
        }
        let len = self.length()?;
        Ok(Some(self.take(len)?))
    }

    /// The `short` count of an array, never negative; checked against the
    /// bytes left (every element takes at least one byte) so a count cannot
    /// make the caller reserve more than the frame holds.
    pub(crate) fn array_count(&mut self) -> Result<usize, OpenWireDecodeError> {
        let offset = self.pos;
        let count = self.i16()?;
        let count = usize::try_from(count).map_err(|_| OpenWireDecodeError::NegativeLength {
            offset,
            length: i64::from(count),
        })?;
        if count > self.remaining() {
            return Err(self.truncated(count));
        }
        Ok(count)
    }

    /// Enters one level of nesting, failing past the limit.
    pub(crate) fn enter(&mut self) -> Result<(), OpenWireDecodeError> {
        if self.depth >= self.ctx.max_depth {
            return Err(OpenWireDecodeError::TooDeep {
                offset: self.pos,
                max: self.ctx.max_depth,
            });
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves one level of nesting.
    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// The writer every structure encodes through.
///
/// It appends with `BytesMut::extend_from_slice`, which is `#[inline]`, so a fixed-size field
/// compiles to a capacity check and a store; `BufMut::put_u8` / `put_i64` go through
/// `BytesMut::put_slice`, which is not inlined across crates and cost a `memcpy` call per field
/// (about 1.5 % of the gateway's samples in the OpenWire benchmark).
pub(crate) struct Writer<'a> {
    pub(crate) dst: &'a mut BytesMut,
    pub(crate) ctx: Context,
}

impl Writer<'_> {
    /// One byte.
    pub(crate) fn u8(&mut self, v: u8) {
        self.dst.extend_from_slice(&[v]);
    }

    /// A Java `byte`.
    pub(crate) fn i8(&mut self, v: i8) {
        self.dst.extend_from_slice(&v.to_be_bytes());
    }

    /// A Java `boolean` (1 or 0).
    pub(crate) fn bool(&mut self, v: bool) {
        self.dst.extend_from_slice(&[u8::from(v)]);
    }

    /// A Java `int`.
    pub(crate) fn i32(&mut self, v: i32) {
        self.dst.extend_from_slice(&v.to_be_bytes());
    }

    /// A Java `long`.
    pub(crate) fn i64(&mut self, v: i64) {
        self.dst.extend_from_slice(&v.to_be_bytes());
    }

    /// `DataOutput.writeUTF`.
    pub(crate) fn utf(&mut self, s: &str) -> Result<(), OpenWireEncodeError> {
        if same_as_utf8(s) {
            // The common case (ids, destination names): the UTF-8 bytes are the encoding.
            let len = s.len();
            let len16 =
                u16::try_from(len).map_err(|_| OpenWireEncodeError::StringTooLong { len })?;
            self.dst.reserve(2 + len);
            self.dst.extend_from_slice(&len16.to_be_bytes());
            self.dst.extend_from_slice(s.as_bytes());
            return Ok(());
        }
        let len = modified_utf8_len(s);
        let len16 = u16::try_from(len).map_err(|_| OpenWireEncodeError::StringTooLong { len })?;
        self.dst.extend_from_slice(&len16.to_be_bytes());
        encode_modified_utf8(s, self.dst);
        Ok(())
    }

    /// A nullable string.
    pub(crate) fn string(&mut self, s: Option<&str>) -> Result<(), OpenWireEncodeError> {
        self.bool(s.is_some());
        match s {
            Some(s) => self.utf(s),
            None => Ok(()),
        }
    }

    /// An `int` length.
    pub(crate) fn length(&mut self, len: usize) -> Result<(), OpenWireEncodeError> {
        let len32 = i32::try_from(len).map_err(|_| OpenWireEncodeError::BytesTooLong { len })?;
        self.dst.extend_from_slice(&len32.to_be_bytes());
        Ok(())
    }

    /// A nullable byte sequence or byte array.
    pub(crate) fn byte_sequence(&mut self, b: Option<&[u8]>) -> Result<(), OpenWireEncodeError> {
        self.bool(b.is_some());
        if let Some(b) = b {
            self.length(b.len())?;
            self.dst.extend_from_slice(b);
        }
        Ok(())
    }

    /// The `short` count of an array.
    pub(crate) fn array_count(&mut self, len: usize) -> Result<(), OpenWireEncodeError> {
        let len16 = i16::try_from(len).map_err(|_| OpenWireEncodeError::ArrayTooLong { len })?;
        self.dst.extend_from_slice(&len16.to_be_bytes());
        Ok(())
    }
}

/// Decodes Java's modified UTF-8 (as `DataInput.readUTF` and ActiveMQ's
/// `MarshallingSupport.readUTF8` accept it): 1-, 2- and 3-byte forms only,
/// U+0000 as `C0 80` (a bare 0 byte is accepted too, as Java does), and
/// supplementary characters as two 3-byte surrogates, joined here. A lone
/// surrogate becomes U+FFFD. `None` when the bytes are malformed.
pub fn decode_modified_utf8(bytes: &[u8]) -> Option<String> {
    // Fast path, and the common case: well-formed UTF-8 without 4-byte sequences decodes to the
    // same text in both encodings (a bare 0 byte is U+0000 in both; `C0 80`, surrogates and
    // the forms only modified UTF-8 has are not well-formed UTF-8 and take the loop below).
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !bytes.iter().any(|&b| b >= 0xf0) {
            return Some(text.to_owned());
        }
    }
    decode_modified_utf8_units(bytes)
}

/// [`decode_modified_utf8`] without its fast path: through UTF-16 code units.
pub(crate) fn decode_modified_utf8_units(bytes: &[u8]) -> Option<String> {
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&a) = bytes.get(i) {
        if a < 0x80 {
            units.push(u16::from(a));
            i += 1;
        } else if a & 0xe0 == 0xc0 {
            let b = *bytes.get(i + 1)?;
            if b & 0xc0 != 0x80 {
                return None;
            }
            units.push((u16::from(a & 0x1f) << 6) | u16::from(b & 0x3f));
            i += 2;
        } else if a & 0xf0 == 0xe0 {
            let b = *bytes.get(i + 1)?;
            let c = *bytes.get(i + 2)?;
            if b & 0xc0 != 0x80 || c & 0xc0 != 0x80 {
                return None;
            }
            units.push(
                (u16::from(a & 0x0f) << 12) | (u16::from(b & 0x3f) << 6) | u16::from(c & 0x3f),
            );
            i += 3;
        } else {
            return None;
        }
    }
    Some(String::from_utf16_lossy(&units))
}

/// True when `s`'s UTF-8 bytes are also its modified UTF-8: no U+0000 (`C0 80` there) and no
/// supplementary character (two 3-byte surrogates there), i.e. no 0 byte and no 4-byte lead.
fn same_as_utf8(s: &str) -> bool {
    !s.bytes().any(|b| b == 0 || b >= 0xf0)
}

/// The length of `s` in modified UTF-8.
pub fn modified_utf8_len(s: &str) -> usize {
    if same_as_utf8(s) {
        return s.len();
    }
    s.encode_utf16()
        .map(|u| match u {
            1..=0x7f => 1,
            0 | 0x80..=0x7ff => 2,
            _ => 3,
        })
        .sum()
}

/// Appends `s` in Java's modified UTF-8 (what `DataOutput.writeUTF` writes
/// after its length).
pub fn encode_modified_utf8(s: &str, dst: &mut BytesMut) {
    if same_as_utf8(s) {
        dst.extend_from_slice(s.as_bytes());
        return;
    }
    dst.reserve(modified_utf8_len(s));
    for u in s.encode_utf16() {
        match u {
            1..=0x7f => dst.put_u8(u as u8),
            0 | 0x80..=0x7ff => {
                dst.put_u8(0xc0 | ((u >> 6) & 0x1f) as u8);
                dst.put_u8(0x80 | (u & 0x3f) as u8);
            }
            _ => {
                dst.put_u8(0xe0 | ((u >> 12) & 0x0f) as u8);
                dst.put_u8(0x80 | ((u >> 6) & 0x3f) as u8);
                dst.put_u8(0x80 | (u & 0x3f) as u8);
            }
        }
    }
}
