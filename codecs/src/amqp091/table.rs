//! Field tables and field values, with RabbitMQ's type letters.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{Reader, ShortStr, Writer};
use super::{Amqp091DecodeError, Amqp091EncodeError};

/// An AMQP `decimal-value`: `value / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// Number of decimal digits after the point.
    pub scale: u8,
    /// The unscaled value.
    pub value: u32,
}

/// One value in a [`FieldTable`] or array, tagged on the wire with
/// RabbitMQ's type letter (shown on each variant).
///
/// Equality compares floats by their bits, so every value (NaN included)
/// equals itself and `Eq` holds.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// `t`: a boolean octet (any non-zero octet decodes as `true`; written as 1).
    Bool(bool),
    /// `b`: a signed 8-bit integer.
    I8(i8),
    /// `B`: an unsigned 8-bit integer.
    U8(u8),
    /// `s`: a signed 16-bit integer.
    I16(i16),
    /// `u`: an unsigned 16-bit integer.
    U16(u16),
    /// `I`: a signed 32-bit integer.
    I32(i32),
    /// `i`: an unsigned 32-bit integer.
    U32(u32),
    /// `l`: a signed 64-bit integer.
    I64(i64),
    /// `f`: a 32-bit IEEE float.
    F32(f32),
    /// `d`: a 64-bit IEEE float.
    F64(f64),
    /// `D`: a decimal (scale octet, unsigned 32-bit value).
    Decimal(Decimal),
    /// `S`: a long string (32-bit length; bytes, usually UTF-8).
    LongString(Bytes),
    /// `x`: a byte array (32-bit length).
    ByteArray(Bytes),
    /// `A`: an array of values (32-bit byte length).
    Array(Vec<FieldValue>),
    /// `T`: a timestamp, seconds since the Unix epoch.
    Timestamp(u64),
    /// `F`: a nested field table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        use FieldValue::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a.to_bits() == b.to_bits(),
            (F64(a), F64(b)) => a.to_bits() == b.to_bits(),
            (Decimal(a), Decimal(b)) => a == b,
            (LongString(a), LongString(b)) => a == b,
            (ByteArray(a), ByteArray(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Table(a), Table(b)) => a == b,
            (Void, Void) => true,
            _ => false,
        }
    }
}

impl Eq for FieldValue {}

impl FieldValue {
    /// The type letter this value is written with.
    pub fn tag(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal(_) => b'D',
            FieldValue::LongString(_) => b'S',
            FieldValue::ByteArray(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// A long string value from text.
    pub fn string(s: impl Into<String>) -> Self {
        FieldValue::LongString(Bytes::from(s.into()))
    }

    /// The value as text, if it is a UTF-8 long string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::LongString(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            FieldValue::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            FieldValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The nested table, if the value is one.
    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            FieldValue::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Reads a type letter and its value.
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
        let offset = r.offset();
        let tag = r.octet()?;
        Ok(match tag {
            b't' => FieldValue::Bool(r.octet()? != 0),
            b'b' => FieldValue::I8(r.i8()?),
            b'B' => FieldValue::U8(r.octet()?),
            b's' => FieldValue::I16(r.i16()?),
            b'u' => FieldValue::U16(r.short()?),
            b'I' => FieldValue::I32(r.i32()?),
            b'i' => FieldValue::U32(r.long()?),
            b'l' => FieldValue::I64(r.i64()?),
            b'f' => FieldValue::F32(f32::from_bits(r.long()?)),
            b'd' => FieldValue::F64(f64::from_bits(r.longlong()?)),
            b'D' => FieldValue::Decimal(Decimal {
                scale: r.octet()?,
                value: r.long()?,
            }),
            b'S' => FieldValue::LongString(r.longstr()?),
            b'x' => FieldValue::ByteArray(r.longstr()?),
            b'A' => {
                let mut inner = r.nested()?;
                let mut values = Vec::new();
                while !inner.is_empty() {
                    values.push(FieldValue::decode(&mut inner)?);
                }
                FieldValue::Array(values)
            }
            b'T' => FieldValue::Timestamp(r.longlong()?),
            b'F' => FieldValue::Table(FieldTable::decode(r)?),
            b'V' => FieldValue::Void,
            tag => {
                return Err(Amqp091DecodeError::UnknownFieldType {
                    class_id: r.class_id,
                    method_id: r.method_id,
                    offset,
                    tag,
                })
            }
        })
    }

    /// Writes the type letter and the value.
    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        dst.put_u8(self.tag());
        match self {
            FieldValue::Bool(v) => dst.put_u8(u8::from(*v)),
            FieldValue::I8(v) => dst.put_i8(*v),
            FieldValue::U8(v) => dst.put_u8(*v),
            FieldValue::I16(v) => dst.put_i16(*v),
            FieldValue::U16(v) => dst.put_u16(*v),
            FieldValue::I32(v) => dst.put_i32(*v),
            FieldValue::U32(v) => dst.put_u32(*v),
            FieldValue::I64(v) => dst.put_i64(*v),
            FieldValue::F32(v) => dst.put_u32(v.to_bits()),
            FieldValue::F64(v) => dst.put_u64(v.to_bits()),
            FieldValue::Decimal(d) => {
                dst.put_u8(d.scale);
                dst.put_u32(d.value);
            }
            FieldValue::LongString(b) => Writer::new(dst).longstr(b)?,
            FieldValue::ByteArray(b) => Writer::new(dst).longstr(b)?,
            FieldValue::Array(values) => Writer::length_prefixed(dst, "field array", |dst| {
                values.iter().try_for_each(|v| v.encode(dst))
            })?,
            FieldValue::Timestamp(v) => dst.put_u64(*v),
            FieldValue::Table(t) => t.encode(dst)?,
            FieldValue::Void => {}
        }
        Ok(())
    }
}

macro_rules! field_value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                FieldValue::$variant(v)
            }
        })*
    };
}

field_value_from! {
    bool => Bool,
    i8 => I8,
    u8 => U8,
    i16 => I16,
    u16 => U16,
    i32 => I32,
    u32 => U32,
    i64 => I64,
    f32 => F32,
    f64 => F64,
    Decimal => Decimal,
    Vec<FieldValue> => Array,
    FieldTable => Table,
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::string(v)
    }
}

impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::string(v)
    }
}

/// An AMQP field table: named values in wire order.
///
/// Entries keep the order and any repeated names they arrived with, so a
/// decoded table re-encodes to the same bytes. [`FieldTable::get`] returns
/// the first entry of a name; [`FieldTable::insert`] replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTable {
    entries: Vec<(ShortStr, FieldValue)>,
}

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        FieldTable::default()
    }

    /// The value of the first entry called `name`.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.entries
            .iter()
            .find(|(n, _)| n.as_bytes() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Sets `name` to `value`: replaces the first entry of that name, or
    /// appends one.
    pub fn insert(&mut self, name: ShortStr, value: impl Into<FieldValue>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Appends an entry, even if one of that name exists.
    pub fn push(&mut self, name: ShortStr, value: impl Into<FieldValue>) {
        self.entries.push((name, value.into()));
    }

    /// Builder: [`insert`](FieldTable::insert)s an entry.
    ///
    /// # Panics
    ///
    /// If `name` is longer than 255 bytes (names are meant to be literals).
    pub fn with(mut self, name: &'static str, value: impl Into<FieldValue>) -> Self {
        self.insert(ShortStr::from_static(name), value);
        self
    }

    /// The entries in wire order.
    pub fn entries(&self) -> &[(ShortStr, FieldValue)] {
        &self.entries
    }

    /// Iterates over the entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldValue)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// Number of entries, repeats included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a 32-bit length and that many bytes of entries.
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
        let mut inner = r.nested()?;
        let mut entries = Vec::new();
        while !inner.is_empty() {
            let name = inner.shortstr()?;
            let value = FieldValue::decode(&mut inner)?;
            entries.push((name, value));
        }
        Ok(FieldTable { entries })
    }

    /// Writes the 32-bit length and the entries.
    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        Writer::length_prefixed(dst, "field table", |dst| {
            for (name, value) in &self.entries {
                Writer::new(dst).shortstr(name)?;
                value.encode(dst)?;
            }
            Ok(())
        })
    }
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(iter: I) -> Self {
        FieldTable {
            entries: iter.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a FieldTable {
    type Item = &'a (ShortStr, FieldValue);
    type IntoIter = std::slice::Iter<'a, (ShortStr, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}
