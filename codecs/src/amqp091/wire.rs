//! Primitive wire types: short strings, and the bounds-checked reader and
//! the writer every method, property and table is built on.

use bytes::{BufMut, Bytes, BytesMut};

use super::table::FieldTable;
use super::{Amqp091DecodeError, Amqp091EncodeError};

/// An AMQP short string: at most 255 octets, kept as bytes (peers may send
/// any octets; most are UTF-8). Cheap to clone; a decoded one is a slice of
/// the receive buffer.
///
/// ### Invariants
///
/// - At most [`ShortStr::MAX_LEN`] bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortStr(Bytes);

/// A string longer than a [`ShortStr`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AMQP short string of {len} bytes is longer than 255 bytes")]
pub struct ShortStrTooLong {
    /// The rejected string's length in bytes.
    pub len: usize,
}

impl ShortStr {
    /// The most bytes a short string holds.
    pub const MAX_LEN: usize = 255;

    /// The empty short string.
    pub const fn empty() -> Self {
        ShortStr(Bytes::new())
    }

    /// A short string from a literal.
    ///
    /// # Panics
    ///
    /// If `s` is longer than 255 bytes (at compile time in a `const`).
    pub const fn from_static(s: &'static str) -> Self {
        assert!(
            s.len() <= Self::MAX_LEN,
            "AMQP short string longer than 255 bytes"
        );
        ShortStr(Bytes::from_static(s.as_bytes()))
    }

    /// A short string from any bytes of at most 255 octets.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, ShortStrTooLong> {
        let bytes = bytes.into();
        if bytes.len() > Self::MAX_LEN {
            return Err(ShortStrTooLong { len: bytes.len() });
        }
        Ok(ShortStr(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as `&str`, if they are UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The bytes as text, invalid UTF-8 replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            Some(s) => std::fmt::Debug::fmt(s, f),
            None => write!(f, "ShortStr({:?})", self.0),
        }
    }
}

impl std::fmt::Display for ShortStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl AsRef<[u8]> for ShortStr {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&str> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: &str) -> Result<Self, ShortStrTooLong> {
        ShortStr::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: String) -> Result<Self, ShortStrTooLong> {
        ShortStr::new(s)
    }
}

impl TryFrom<&[u8]> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: &[u8]) -> Result<Self, ShortStrTooLong> {
        ShortStr::new(Bytes::copy_from_slice(s))
    }
}

impl TryFrom<Bytes> for ShortStr {
    type Error = ShortStrTooLong;
    fn try_from(s: Bytes) -> Result<Self, ShortStrTooLong> {
        ShortStr::new(s)
    }
}

impl From<ShortStr> for Bytes {
    fn from(s: ShortStr) -> Bytes {
        s.0
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<ShortStr> for &str {
    fn eq(&self, other: &ShortStr) -> bool {
        other.0 == self.as_bytes()
    }
}

/// A bounds-checked reader over one frame payload (or a table inside it).
///
/// Errors name the class and method being decoded and the offset from the
/// start of the frame. Consecutive `bit()` reads share an octet; any other
/// read starts a new one.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    /// Offset of `buf`'s first byte from the start of the frame.
    base: usize,
    bits: u8,
    /// Next bit of `bits` to read; 8 means none left.
    bit_pos: u8,
    pub(crate) class_id: u16,
    pub(crate) method_id: u16,
    /// Nesting depth of the table or array this reader is inside (0: none).
    depth: usize,
    max_depth: usize,
}

impl Reader {
    /// A reader over `buf`, whose first byte is at `base` in the frame.
    pub(crate) fn new(buf: Bytes, base: usize, max_depth: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            bits: 0,
            bit_pos: 8,
            class_id: 0,
            method_id: 0,
            depth: 0,
            max_depth,
        }
    }

    /// Offset of the next unread byte from the start of the frame.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn truncated(&self, need: usize) -> Amqp091DecodeError {
        Amqp091DecodeError::Truncated {
            class_id: self.class_id,
            method_id: self.method_id,
            offset: self.offset(),
            need,
            have: self.remaining(),
        }
    }

    /// Errors unless every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), Amqp091DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Amqp091DecodeError::TrailingBytes {
                class_id: self.class_id,
                method_id: self.method_id,
                offset: self.offset(),
                count: self.remaining(),
            })
        }
    }

    /// Takes the next `n` bytes as a slice of the buffer (no copy).
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, Amqp091DecodeError> {
        self.bit_pos = 8;
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let start = self.pos;
        self.pos = start.saturating_add(n);
        Ok(self.buf.slice(start..self.pos))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amqp091DecodeError> {
        self.bit_pos = 8;
        let end = self.pos.saturating_add(N);
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated(N))?;
        let array: [u8; N] = slice.try_into().map_err(|_| self.truncated(N))?;
        self.pos = end;
        Ok(array)
    }

    pub(crate) fn octet(&mut self) -> Result<u8, Amqp091DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn short(&mut self) -> Result<u16, Amqp091DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn long(&mut self) -> Result<u32, Amqp091DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn longlong(&mut self) -> Result<u64, Amqp091DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn timestamp(&mut self) -> Result<u64, Amqp091DecodeError> {
        self.longlong()
    }

    pub(crate) fn i8(&mut self) -> Result<i8, Amqp091DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Amqp091DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Amqp091DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, Amqp091DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// One `bit` argument; consecutive bits share an octet, LSB first.
    pub(crate) fn bit(&mut self) -> Result<bool, Amqp091DecodeError> {
        if self.bit_pos >= 8 {
            self.bits = self.octet()?;
            self.bit_pos = 0;
        }
        let bit = (self.bits >> self.bit_pos) & 1 == 1;
        self.bit_pos += 1;
        Ok(bit)
    }

    pub(crate) fn shortstr(&mut self) -> Result<ShortStr, Amqp091DecodeError> {
        let len = usize::from(self.octet()?);
        Ok(ShortStr(self.take(len)?))
    }

    /// A 32-bit length followed by that many bytes.
    pub(crate) fn longstr(&mut self) -> Result<Bytes, Amqp091DecodeError> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| self.truncated(usize::MAX))?;
        self.take(len)
    }

    /// A reader over the next length-prefixed table or array, one level
    /// deeper, with this reader advanced past it.
    pub(crate) fn nested(&mut self) -> Result<Reader, Amqp091DecodeError> {
        let offset = self.offset();
        if self.depth >= self.max_depth {
            return Err(Amqp091DecodeError::TableTooDeep {
                class_id: self.class_id,
                method_id: self.method_id,
                offset,
                max: self.max_depth,
            });
        }
        let body = self.longstr()?;
        let base = offset.saturating_add(4);
        Ok(Reader {
            buf: body,
            pos: 0,
            base,
            bits: 0,
            bit_pos: 8,
            class_id: self.class_id,
            method_id: self.method_id,
            depth: self.depth.saturating_add(1),
            max_depth: self.max_depth,
        })
    }

    pub(crate) fn table(&mut self) -> Result<FieldTable, Amqp091DecodeError> {
        FieldTable::decode(self)
    }
}

/// Appends arguments to a buffer; consecutive `bit()` writes share an octet.
///
/// Call [`Writer::finish`] after the last argument to flush pending bits.
pub(crate) struct Writer<'a> {
    pub(crate) dst: &'a mut BytesMut,
    bits: u8,
    nbits: u8,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(dst: &'a mut BytesMut) -> Self {
        Writer {
            dst,
            bits: 0,
            nbits: 0,
        }
    }

    fn flush_bits(&mut self) {
        if self.nbits > 0 {
            self.dst.put_u8(self.bits);
            self.bits = 0;
            self.nbits = 0;
        }
    }

    pub(crate) fn finish(&mut self) {
        self.flush_bits();
    }

    pub(crate) fn octet(&mut self, v: &u8) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        self.dst.put_u8(*v);
        Ok(())
    }

    pub(crate) fn short(&mut self, v: &u16) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        self.dst.put_u16(*v);
        Ok(())
    }

    pub(crate) fn long(&mut self, v: &u32) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        self.dst.put_u32(*v);
        Ok(())
    }

    pub(crate) fn longlong(&mut self, v: &u64) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        self.dst.put_u64(*v);
        Ok(())
    }

    pub(crate) fn timestamp(&mut self, v: &u64) -> Result<(), Amqp091EncodeError> {
        self.longlong(v)
    }

    pub(crate) fn bit(&mut self, v: &bool) -> Result<(), Amqp091EncodeError> {
        if self.nbits == 8 {
            self.flush_bits();
        }
        if *v {
            self.bits |= 1 << self.nbits;
        }
        self.nbits += 1;
        Ok(())
    }

    pub(crate) fn shortstr(&mut self, v: &ShortStr) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        // The type keeps short strings at most 255 bytes.
        let len = u8::try_from(v.len()).map_err(|_| Amqp091EncodeError::TooLong {
            what: "short string",
            len: v.len(),
            max: ShortStr::MAX_LEN,
        })?;
        self.dst.put_u8(len);
        self.dst.put_slice(v.as_bytes());
        Ok(())
    }

    pub(crate) fn longstr(&mut self, v: &Bytes) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        let len = u32_len("long string", v.len())?;
        self.dst.put_u32(len);
        self.dst.put_slice(v);
        Ok(())
    }

    pub(crate) fn table(&mut self, v: &FieldTable) -> Result<(), Amqp091EncodeError> {
        self.flush_bits();
        v.encode(self.dst)
    }

    /// Writes a 32-bit length placeholder, runs `body`, then patches the
    /// length to the number of bytes `body` wrote.
    pub(crate) fn length_prefixed(
        dst: &mut BytesMut,
        what: &'static str,
        body: impl FnOnce(&mut BytesMut) -> Result<(), Amqp091EncodeError>,
    ) -> Result<(), Amqp091EncodeError> {
        let at = dst.len();
        dst.put_u32(0);
        body(dst)?;
        let len = dst.len().saturating_sub(at).saturating_sub(4);
        let len = u32_len(what, len)?;
        patch_u32(dst, at, len);
        Ok(())
    }
}

/// `len` as a 32-bit length field, or an error naming `what`.
pub(crate) fn u32_len(what: &'static str, len: usize) -> Result<u32, Amqp091EncodeError> {
    u32::try_from(len).map_err(|_| Amqp091EncodeError::TooLong {
        what,
        len,
        max: u32::MAX as usize,
    })
}

/// Overwrites the 4 bytes at `at` with `value` (big-endian).
pub(crate) fn patch_u32(dst: &mut BytesMut, at: usize, value: u32) {
    if let Some(slot) = dst.get_mut(at..at.saturating_add(4)) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}
