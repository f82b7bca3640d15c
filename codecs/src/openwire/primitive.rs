//! ActiveMQ's primitive maps and values (`MarshallingSupport`): message
//! properties, `MapMessage` and `StreamMessage` bodies, `WireFormatInfo`
//! options, and the `TextMessage` body string.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{decode_modified_utf8, encode_modified_utf8, modified_utf8_len, Context, Reader};
use super::{OpenWireDecodeError, OpenWireEncodeError};

/// Type byte of a null value.
pub const PRIMITIVE_NULL: u8 = 0;
/// Type byte of a `boolean`.
pub const PRIMITIVE_BOOLEAN: u8 = 1;
/// Type byte of a `byte`.
pub const PRIMITIVE_BYTE: u8 = 2;
/// Type byte of a `char`.
pub const PRIMITIVE_CHAR: u8 = 3;
/// Type byte of a `short`.
pub const PRIMITIVE_SHORT: u8 = 4;
/// Type byte of an `int`.
pub const PRIMITIVE_INTEGER: u8 = 5;
/// Type byte of a `long`.
pub const PRIMITIVE_LONG: u8 = 6;
/// Type byte of a `double`.
pub const PRIMITIVE_DOUBLE: u8 = 7;
/// Type byte of a `float`.
pub const PRIMITIVE_FLOAT: u8 = 8;
/// Type byte of a string of fewer than 8191 UTF-16 units (`writeUTF`).
pub const PRIMITIVE_STRING: u8 = 9;
/// Type byte of a `byte[]`.
pub const PRIMITIVE_BYTE_ARRAY: u8 = 10;
/// Type byte of a nested map.
pub const PRIMITIVE_MAP: u8 = 11;
/// Type byte of a list.
pub const PRIMITIVE_LIST: u8 = 12;
/// Type byte of a long string (an `int` length and modified UTF-8).
pub const PRIMITIVE_BIG_STRING: u8 = 13;

/// Strings of at least this many UTF-16 units are written as big strings.
const BIG_STRING_UNITS: usize = 8191;

/// One typed value of a primitive map, list or stream body.
#[derive(Debug, Clone, PartialEq)]
pub enum PrimitiveValue {
    /// Java `null`.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `byte`.
    Byte(i8),
    /// `char`: one UTF-16 code unit.
    Char(u16),
    /// `short`.
    Short(i16),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `String` (written as a string or a big string by its length, as
    /// ActiveMQ does).
    String(String),
    /// `byte[]`.
    Bytes(Bytes),
    /// A nested map (only inside `MapMessage` bodies and maps).
    Map(PrimitiveMap),
    /// A list (only inside `MapMessage` bodies and maps).
    List(Vec<PrimitiveValue>),
}

/// An ordered map of names to values, as ActiveMQ marshals a `Map<String,
/// Object>`: an `int` count (`-1` for null) then, per entry, a `writeUTF` name
/// and a typed value. Order is kept as read, so a decoded map re-encodes to
/// its bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrimitiveMap {
    /// The entries, in wire order.
    pub entries: Vec<(String, PrimitiveValue)>,
}

impl PrimitiveMap {
    /// An empty map.
    pub fn new() -> Self {
        PrimitiveMap::default()
    }

    /// The value of `name`, the last one if repeated.
    pub fn get(&self, name: &str) -> Option<&PrimitiveValue> {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Sets `name`, replacing an existing entry in place.
    pub fn insert(&mut self, name: impl Into<String>, value: PrimitiveValue) {
        let name = name.into();
        if let Some(slot) = self.entries.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.entries.push((name, value));
        }
    }

    /// Decodes a marshalled map (message properties, a `MapMessage` body,
    /// `WireFormatInfo` options). `None` for the null map (count `-1`).
    /// `max_depth` bounds nesting of maps and lists.
    pub fn decode(bytes: &Bytes, max_depth: usize) -> Result<Option<Self>, OpenWireDecodeError> {
        let mut r = Reader::new(bytes.clone(), primitive_context(max_depth));
        let map = read_map(&mut r)?;
        r.finish()?;
        Ok(map)
    }

    /// Encodes the map as the Java client marshals it: strings in modified UTF-8 (`writeUTF`),
    /// so a map decoded from a client re-encodes to its bytes.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), OpenWireEncodeError> {
        write_map(self, dst, StringForm::Modified)
    }

    /// The map encoded as [`PrimitiveMap::encode`] does.
    pub fn to_bytes(&self) -> Result<Bytes, OpenWireEncodeError> {
        let mut dst = BytesMut::new();
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }

    /// The map with its strings in standard UTF-8: what ActiveMQ's reader decodes correctly
    /// (it decodes map strings as UTF-8, so Java's own modified UTF-8 loses characters outside
    /// the BMP and U+0000). Use this for maps sent to clients.
    pub fn to_bytes_utf8(&self) -> Result<Bytes, OpenWireEncodeError> {
        let mut dst = BytesMut::new();
        write_map(self, &mut dst, StringForm::Utf8)?;
        Ok(dst.freeze())
    }
}

fn primitive_context(max_depth: usize) -> Context {
    Context {
        version: 0,
        stack_trace: false,
        max_depth,
    }
}

fn read_map(r: &mut Reader) -> Result<Option<PrimitiveMap>, OpenWireDecodeError> {
    let offset = r.offset();
    let count = r.i32()?;
    if count < 0 {
        return Ok(None);
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Each entry takes at least 3 bytes (a 2-byte name length and a type).
    if count > r.remaining() / 3 {
        return Err(OpenWireDecodeError::Truncated {
            offset,
            need: count.saturating_mul(3),
            have: r.remaining(),
        });
    }
    r.enter()?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        let name = lenient_string(r, len)?;
        let value = read_value(r)?;
        entries.push((name, value));
    }
    r.leave();
    Ok(Some(PrimitiveMap { entries }))
}

/// A string of a primitive map or stream: Java writes modified UTF-8, but ActiveMQ's reader
/// (`UTF8Buffer`) decodes standard UTF-8, so both are accepted: modified UTF-8 first, else UTF-8.
fn lenient_string(r: &mut Reader, len: usize) -> Result<String, OpenWireDecodeError> {
    let offset = r.offset();
    let bytes = r.take(len)?;
    decode_modified_utf8(&bytes)
        .or_else(|| std::str::from_utf8(&bytes).ok().map(str::to_string))
        .ok_or(OpenWireDecodeError::BadString { offset })
}

fn read_list(r: &mut Reader) -> Result<Vec<PrimitiveValue>, OpenWireDecodeError> {
    let count = r.length()?;
    if count > r.remaining() {
        return Err(r.truncated(count));
    }
    r.enter()?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(read_value(r)?);
    }
    r.leave();
    Ok(items)
}

fn read_value(r: &mut Reader) -> Result<PrimitiveValue, OpenWireDecodeError> {
    let offset = r.offset();
    let tag = r.u8()?;
    Ok(match tag {
        PRIMITIVE_NULL => PrimitiveValue::Null,
        PRIMITIVE_BOOLEAN => PrimitiveValue::Bool(r.bool()?),
        PRIMITIVE_BYTE => PrimitiveValue::Byte(r.i8()?),
        PRIMITIVE_CHAR => PrimitiveValue::Char(r.u16()?),
        PRIMITIVE_SHORT => PrimitiveValue::Short(r.i16()?),
        PRIMITIVE_INTEGER => PrimitiveValue::Int(r.i32()?),
        PRIMITIVE_LONG => PrimitiveValue::Long(r.i64()?),
        PRIMITIVE_DOUBLE => PrimitiveValue::Double(r.f64()?),
        PRIMITIVE_FLOAT => PrimitiveValue::Float(r.f32()?),
        PRIMITIVE_STRING => {
            let len = usize::from(r.u16()?);
            PrimitiveValue::String(lenient_string(r, len)?)
        }
        PRIMITIVE_BIG_STRING => {
            let len = r.length()?;
            PrimitiveValue::String(lenient_string(r, len)?)
        }
        PRIMITIVE_BYTE_ARRAY => {
            let len = r.length()?;
            PrimitiveValue::Bytes(r.take(len)?)
        }
        PRIMITIVE_MAP => PrimitiveValue::Map(read_map(r)?.unwrap_or_default()),
        PRIMITIVE_LIST => PrimitiveValue::List(read_list(r)?),
        tag => return Err(OpenWireDecodeError::UnknownPrimitiveType { offset, tag }),
    })
}

fn put_len(dst: &mut BytesMut, len: usize) -> Result<(), OpenWireEncodeError> {
    let len32 = i32::try_from(len).map_err(|_| OpenWireEncodeError::BytesTooLong { len })?;
    dst.put_i32(len32);
    Ok(())
}

/// How strings of maps, lists and streams are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringForm {
    /// Java's modified UTF-8 (what the Java client writes).
    Modified,
    /// Standard UTF-8 (what ActiveMQ's reader decodes correctly).
    Utf8,
}

fn string_len(s: &str, form: StringForm) -> usize {
    match form {
        StringForm::Modified => modified_utf8_len(s),
        StringForm::Utf8 => s.len(),
    }
}

fn put_string_bytes(dst: &mut BytesMut, s: &str, form: StringForm) {
    match form {
        StringForm::Modified => encode_modified_utf8(s, dst),
        StringForm::Utf8 => dst.put_slice(s.as_bytes()),
    }
}

fn put_utf(dst: &mut BytesMut, s: &str, form: StringForm) -> Result<(), OpenWireEncodeError> {
    let len = string_len(s, form);
    let len16 = u16::try_from(len).map_err(|_| OpenWireEncodeError::StringTooLong { len })?;
    dst.put_u16(len16);
    put_string_bytes(dst, s, form);
    Ok(())
}

fn write_map(
    map: &PrimitiveMap,
    dst: &mut BytesMut,
    form: StringForm,
) -> Result<(), OpenWireEncodeError> {
    put_len(dst, map.entries.len())?;
    for (name, value) in &map.entries {
        put_utf(dst, name, form)?;
        write_value_as(value, dst, form)?;
    }
    Ok(())
}

/// Appends one typed value as `MarshallingSupport.marshalPrimitive` writes it.
pub fn write_value(value: &PrimitiveValue, dst: &mut BytesMut) -> Result<(), OpenWireEncodeError> {
    write_value_as(value, dst, StringForm::Modified)
}

fn write_value_as(
    value: &PrimitiveValue,
    dst: &mut BytesMut,
    form: StringForm,
) -> Result<(), OpenWireEncodeError> {
    match value {
        PrimitiveValue::Null => dst.put_u8(PRIMITIVE_NULL),
        PrimitiveValue::Bool(v) => {
            dst.put_u8(PRIMITIVE_BOOLEAN);
            dst.put_u8(u8::from(*v));
        }
        PrimitiveValue::Byte(v) => {
            dst.put_u8(PRIMITIVE_BYTE);
            dst.put_i8(*v);
        }
        PrimitiveValue::Char(v) => {
            dst.put_u8(PRIMITIVE_CHAR);
            dst.put_u16(*v);
        }
        PrimitiveValue::Short(v) => {
            dst.put_u8(PRIMITIVE_SHORT);
            dst.put_i16(*v);
        }
        PrimitiveValue::Int(v) => {
            dst.put_u8(PRIMITIVE_INTEGER);
            dst.put_i32(*v);
        }
        PrimitiveValue::Long(v) => {
            dst.put_u8(PRIMITIVE_LONG);
            dst.put_i64(*v);
        }
        PrimitiveValue::Float(v) => {
            dst.put_u8(PRIMITIVE_FLOAT);
            dst.put_f32(*v);
        }
        PrimitiveValue::Double(v) => {
            dst.put_u8(PRIMITIVE_DOUBLE);
            dst.put_f64(*v);
        }
        PrimitiveValue::String(s) => {
            if s.encode_utf16().count() < BIG_STRING_UNITS {
                dst.put_u8(PRIMITIVE_STRING);
                put_utf(dst, s, form)?;
            } else {
                dst.put_u8(PRIMITIVE_BIG_STRING);
                put_len(dst, string_len(s, form))?;
                put_string_bytes(dst, s, form);
            }
        }
        PrimitiveValue::Bytes(b) => {
            dst.put_u8(PRIMITIVE_BYTE_ARRAY);
            put_len(dst, b.len())?;
            dst.put_slice(b);
        }
        PrimitiveValue::Map(m) => {
            dst.put_u8(PRIMITIVE_MAP);
            write_map(m, dst, form)?;
        }
        PrimitiveValue::List(items) => {
            dst.put_u8(PRIMITIVE_LIST);
            put_len(dst, items.len())?;
            for item in items {
                write_value_as(item, dst, form)?;
            }
        }
    }
    Ok(())
}

/// Decodes a `StreamMessage` body: typed values one after the other to the
/// end of the (uncompressed) content.
pub fn decode_stream_body(
    bytes: &Bytes,
    max_depth: usize,
) -> Result<Vec<PrimitiveValue>, OpenWireDecodeError> {
    let mut r = Reader::new(bytes.clone(), primitive_context(max_depth));
    let mut items = Vec::new();
    while r.remaining() > 0 {
        items.push(read_value(&mut r)?);
    }
    Ok(items)
}

/// Encodes a `StreamMessage` body.
pub fn encode_stream_body(
    items: &[PrimitiveValue],
    dst: &mut BytesMut,
) -> Result<(), OpenWireEncodeError> {
    for item in items {
        write_value(item, dst)?;
    }
    Ok(())
}

/// Decodes a `TextMessage` body (`MarshallingSupport.writeUTF8`): an `int`
/// byte length, `-1` for a null text, then modified UTF-8. `None` inside
/// `Ok` is the null text.
pub fn decode_text_body(bytes: &[u8]) -> Result<Option<String>, OpenWireDecodeError> {
    let Some(len_bytes) = bytes.get(..4) else {
        return Err(OpenWireDecodeError::Truncated {
            offset: 0,
            need: 4,
            have: bytes.len(),
        });
    };
    let mut len4 = [0u8; 4];
    len4.copy_from_slice(len_bytes);
    let len = i32::from_be_bytes(len4);
    if len < 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let rest = bytes.get(4..).unwrap_or_default();
    if len != rest.len() {
        return Err(OpenWireDecodeError::Truncated {
            offset: 4,
            need: len,
            have: rest.len(),
        });
    }
    decode_modified_utf8(rest)
        .map(Some)
        .ok_or(OpenWireDecodeError::BadString { offset: 4 })
}

/// Encodes a `TextMessage` body; `None` is the null text.
pub fn encode_text_body(text: Option<&str>, dst: &mut BytesMut) -> Result<(), OpenWireEncodeError> {
    match text {
        None => dst.put_i32(-1),
        Some(s) => {
            put_len(dst, modified_utf8_len(s))?;
            encode_modified_utf8(s, dst);
        }
    }
    Ok(())
}
