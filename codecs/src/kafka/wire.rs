//! Primitive types of the Kafka protocol and one trait, [`Io`], that both reads and writes them.
//!
//! Every message type has a single `io` function listing its fields in wire order with the
//! versions they exist in; run over a [`Reader`] it decodes, over a [`Writer`] it encodes. So a
//! message's decoder and encoder cannot disagree.
//!
//! Flexible versions (KIP-482) use compact strings, bytes and arrays (unsigned varint length
//! plus one, 0 = null) and end every structure with tagged fields. Tagged fields read are
//! skipped (none of the ones defined for the implemented versions are needed); none are written.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::KafkaDecodeError;

/// Result of one field.
pub(crate) type R = Result<(), KafkaDecodeError>;

/// A direction-independent view of a message's fields.
pub(crate) trait Io: Sized {
    /// The API version being read or written.
    fn version(&self) -> i16;
    /// A signed byte.
    fn i8(&mut self, v: &mut i8) -> R;
    /// A big-endian i16.
    fn i16(&mut self, v: &mut i16) -> R;
    /// A big-endian i32.
    fn i32(&mut self, v: &mut i32) -> R;
    /// A big-endian i64.
    fn i64(&mut self, v: &mut i64) -> R;
    /// A boolean byte (any non-zero byte reads as true).
    fn bool(&mut self, v: &mut bool) -> R;
    /// A non-null string (compact in flexible versions).
    fn string(&mut self, v: &mut String) -> R;
    /// A nullable string (compact in flexible versions).
    fn nstring(&mut self, v: &mut Option<String>) -> R;
    /// A nullable string that is never compact (the request header's client id).
    fn classic_nstring(&mut self, v: &mut Option<String>) -> R;
    /// Non-null bytes (compact in flexible versions).
    fn bytes(&mut self, v: &mut Bytes) -> R;
    /// Nullable bytes (compact in flexible versions).
    fn nbytes(&mut self, v: &mut Option<Bytes>) -> R;
    /// A non-null array (compact in flexible versions).
    fn array<T: Default>(&mut self, v: &mut Vec<T>, f: impl FnMut(&mut Self, &mut T) -> R) -> R;
    /// A nullable array (compact in flexible versions).
    fn narray<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        f: impl FnMut(&mut Self, &mut T) -> R,
    ) -> R;
    /// The tagged-field section closing a structure, in flexible versions only.
    fn tags(&mut self) -> R;
}

/// Reads fields from one frame (or part of one).
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    version: i16,
    flexible: bool,
}

impl Reader {
    /// A reader over `buf` for `version`.
    pub fn new(buf: Bytes, version: i16, flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            version,
            flexible,
        }
    }

    /// Changes the version and flexibility (after the header is read).
    pub fn set_version(&mut self, version: i16, flexible: bool) {
        self.version = version;
        self.flexible = flexible;
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Current position.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> R {
        match self.remaining() {
            0 => Ok(()),
            count => Err(KafkaDecodeError::TrailingBytes { count }),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, KafkaDecodeError> {
        let have = self.remaining();
        if n > have {
            return Err(KafkaDecodeError::UnexpectedEof {
                offset: self.pos,
                what,
                need: n,
                have,
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array_of<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], KafkaDecodeError> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    /// An unsigned varint of at most 5 bytes (u32).
    pub fn uvarint(&mut self, what: &'static str) -> Result<u32, KafkaDecodeError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.array_of::<1>(what)?;
            if i == 4 && b > 0x0f {
                return Err(KafkaDecodeError::Invalid {
                    what,
                    offset: start,
                });
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KafkaDecodeError::Invalid {
            what,
            offset: start,
        })
    }

    /// A zig-zag signed varint (i32).
    pub fn varint(&mut self, what: &'static str) -> Result<i32, KafkaDecodeError> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    /// A zig-zag signed varlong (i64).
    pub fn varlong(&mut self, what: &'static str) -> Result<i64, KafkaDecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let [b] = self.array_of::<1>(what)?;
            if i == 9 && b > 0x01 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(KafkaDecodeError::Invalid {
            what,
            offset: start,
        })
    }

    /// A length for a compact field: `None` for null, else the length.
    fn compact_len(&mut self, what: &'static str) -> Result<Option<usize>, KafkaDecodeError> {
        let n = self.uvarint(what)?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    }

    fn utf8(&mut self, n: usize, what: &'static str) -> Result<String, KafkaDecodeError> {
        let offset = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| KafkaDecodeError::InvalidUtf8 { offset })
    }

    fn nstring_len(&mut self, compact: bool) -> Result<Option<usize>, KafkaDecodeError> {
        if compact {
            return self.compact_len("string length");
        }
        let offset = self.pos;
        let n = i16::from_be_bytes(self.array_of::<2>("string length")?);
        match n {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(n as usize)),
            _ => Err(KafkaDecodeError::Invalid {
                what: "string length",
                offset,
            }),
        }
    }

    fn array_len(&mut self) -> Result<Option<usize>, KafkaDecodeError> {
        let offset = self.pos;
        let n = if self.flexible {
            self.compact_len("array length")?
        } else {
            match i32::from_be_bytes(self.array_of::<4>("array length")?) {
                -1 => None,
                n if n >= 0 => Some(n as usize),
                _ => {
                    return Err(KafkaDecodeError::Invalid {
                        what: "array length",
                        offset,
                    })
                }
            }
        };
        // Every element takes at least one byte: a count beyond the bytes left is a lie, and
        // must not size an allocation.
        if let Some(n) = n {
            if n > self.remaining() {
                return Err(KafkaDecodeError::UnexpectedEof {
                    offset,
                    what: "array elements",
                    need: n,
                    have: self.remaining(),
                });
            }
        }
        Ok(n)
    }

    fn read_elements<T: Default>(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self, &mut T) -> R,
    ) -> Result<Vec<T>, KafkaDecodeError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut item = T::default();
            f(self, &mut item)?;
            out.push(item);
        }
        Ok(out)
    }
}

impl Io for Reader {
    fn version(&self) -> i16 {
        self.version
    }
    fn i8(&mut self, v: &mut i8) -> R {
        *v = i8::from_be_bytes(self.array_of::<1>("int8")?);
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> R {
        *v = i16::from_be_bytes(self.array_of::<2>("int16")?);
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> R {
        *v = i32::from_be_bytes(self.array_of::<4>("int32")?);
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> R {
        *v = i64::from_be_bytes(self.array_of::<8>("int64")?);
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> R {
        let [b] = self.array_of::<1>("boolean")?;
        *v = b != 0;
        Ok(())
    }
    fn string(&mut self, v: &mut String) -> R {
        let offset = self.pos;
        match self.nstring_len(self.flexible)? {
            Some(n) => {
                *v = self.utf8(n, "string")?;
                Ok(())
            }
            None => Err(KafkaDecodeError::Invalid {
                what: "null in a non-nullable string",
                offset,
            }),
        }
    }
    fn nstring(&mut self, v: &mut Option<String>) -> R {
        *v = match self.nstring_len(self.flexible)? {
            Some(n) => Some(self.utf8(n, "string")?),
            None => None,
        };
        Ok(())
    }
    fn classic_nstring(&mut self, v: &mut Option<String>) -> R {
        *v = match self.nstring_len(false)? {
            Some(n) => Some(self.utf8(n, "string")?),
            None => None,
        };
        Ok(())
    }
    fn bytes(&mut self, v: &mut Bytes) -> R {
        let offset = self.pos;
        let mut n = None;
        self.nbytes(&mut n)?;
        match n {
            Some(b) => {
                *v = b;
                Ok(())
            }
            None => Err(KafkaDecodeError::Invalid {
                what: "null in non-nullable bytes",
                offset,
            }),
        }
    }
    fn nbytes(&mut self, v: &mut Option<Bytes>) -> R {
        let offset = self.pos;
        let n = if self.flexible {
            self.compact_len("bytes length")?
        } else {
            match i32::from_be_bytes(self.array_of::<4>("bytes length")?) {
                -1 => None,
                n if n >= 0 => Some(n as usize),
                _ => {
                    return Err(KafkaDecodeError::Invalid {
                        what: "bytes length",
                        offset,
                    })
                }
            }
        };
        *v = match n {
            Some(n) => Some(self.take(n, "bytes")?),
            None => None,
        };
        Ok(())
    }
    fn array<T: Default>(&mut self, v: &mut Vec<T>, f: impl FnMut(&mut Self, &mut T) -> R) -> R {
        let offset = self.pos;
        match self.array_len()? {
            Some(n) => {
                *v = self.read_elements(n, f)?;
                Ok(())
            }
            None => Err(KafkaDecodeError::Invalid {
                what: "null in a non-nullable array",
                offset,
            }),
        }
    }
    fn narray<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        f: impl FnMut(&mut Self, &mut T) -> R,
    ) -> R {
        *v = match self.array_len()? {
            Some(n) => Some(self.read_elements(n, f)?),
            None => None,
        };
        Ok(())
    }
    fn tags(&mut self) -> R {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged field count")?;
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let offset = self.pos;
            let tag = self.uvarint("tag")?;
            if last.is_some_and(|l| tag <= l) {
                return Err(KafkaDecodeError::Invalid {
                    what: "tagged fields out of order",
                    offset,
                });
            }
            last = Some(tag);
            let size = self.uvarint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

/// Writes fields into a buffer.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    version: i16,
    flexible: bool,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out` for `version`.
    pub fn new(out: &'a mut BytesMut, version: i16, flexible: bool) -> Self {
        Writer {
            out,
            version,
            flexible,
        }
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.out.put_slice(b);
    }
}

/// Appends an unsigned varint.
pub(crate) fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Appends a zig-zag varint.
pub(crate) fn put_varint(out: &mut BytesMut, v: i32) {
    put_uvarint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// Appends a zig-zag varlong.
pub(crate) fn put_varlong(out: &mut BytesMut, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

impl Writer<'_> {
    fn len_prefix(&mut self, len: Option<usize>, classic16: bool) {
        if self.flexible && !classic16 {
            put_uvarint(self.out, len.map_or(0, |n| n as u64 + 1));
        } else if classic16 {
            self.out.put_i16(len.map_or(-1, |n| n as i16));
        } else {
            self.out.put_i32(len.map_or(-1, |n| n as i32));
        }
    }

    fn str16(&mut self, s: Option<&str>, compact_allowed: bool) {
        if self.flexible && compact_allowed {
            put_uvarint(self.out, s.map_or(0, |s| s.len() as u64 + 1));
        } else {
            self.out.put_i16(s.map_or(-1, |s| s.len() as i16));
        }
        if let Some(s) = s {
            self.out.put_slice(s.as_bytes());
        }
    }
}

impl Io for Writer<'_> {
    fn version(&self) -> i16 {
        self.version
    }
    fn i8(&mut self, v: &mut i8) -> R {
        self.out.put_i8(*v);
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> R {
        self.out.put_i16(*v);
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> R {
        self.out.put_i32(*v);
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> R {
        self.out.put_i64(*v);
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> R {
        self.out.put_u8(u8::from(*v));
        Ok(())
    }
    fn string(&mut self, v: &mut String) -> R {
        self.str16(Some(v), true);
        Ok(())
    }
    fn nstring(&mut self, v: &mut Option<String>) -> R {
        self.str16(v.as_deref(), true);
        Ok(())
    }
    fn classic_nstring(&mut self, v: &mut Option<String>) -> R {
        self.str16(v.as_deref(), false);
        Ok(())
    }
    fn bytes(&mut self, v: &mut Bytes) -> R {
        self.len_prefix(Some(v.len()), false);
        self.out.put_slice(v);
        Ok(())
    }
    fn nbytes(&mut self, v: &mut Option<Bytes>) -> R {
        self.len_prefix(v.as_ref().map(Bytes::len), false);
        if let Some(b) = v {
            self.out.put_slice(b);
        }
        Ok(())
    }
    fn array<T: Default>(
        &mut self,
        v: &mut Vec<T>,
        mut f: impl FnMut(&mut Self, &mut T) -> R,
    ) -> R {
        self.len_prefix(Some(v.len()), false);
        for item in v.iter_mut() {
            f(self, item)?;
        }
        Ok(())
    }
    fn narray<T: Default>(
        &mut self,
        v: &mut Option<Vec<T>>,
        mut f: impl FnMut(&mut Self, &mut T) -> R,
    ) -> R {
        self.len_prefix(v.as_ref().map(Vec::len), false);
        if let Some(v) = v {
            for item in v.iter_mut() {
                f(self, item)?;
            }
        }
        Ok(())
    }
    fn tags(&mut self) -> R {
        if self.flexible {
            self.out.put_u8(0);
        }
        Ok(())
    }
}
