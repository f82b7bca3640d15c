//! The decoder's and encoder's error types.

/// Why bytes could not be decoded as OpenWire. Every variant closes the
/// connection (after an `ExceptionResponse` or `ConnectionError` carrying
/// [`java_class`](OpenWireDecodeError::java_class) when the session can
/// still tell which command failed).
///
/// Offsets count bytes from the first byte of the command (its data type
/// byte), so the first field of a command is at offset 1.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenWireDecodeError {
    /// The size prefix is zero or negative (a command has at least its type byte).
    #[error("OpenWire frame size {size} is not positive")]
    BadFrameSize {
        /// The size prefix as read.
        size: i32,
    },
    /// The size prefix announces a frame larger than the limit.
    #[error("OpenWire frame of {size} bytes exceeds the maximum frame size {max}")]
    FrameTooLarge {
        /// The size prefix.
        size: u32,
        /// The limit in force.
        max: u32,
    },
    /// A data type byte names no structure this codec knows.
    #[error("unknown OpenWire data type {data_type} at offset {offset}")]
    UnknownDataType {
        /// Offset of the type byte.
        offset: usize,
        /// The type byte.
        data_type: u8,
    },
    /// A nested structure of a known type, where the field wants another
    /// (e.g. a message id where a destination belongs).
    #[error("OpenWire field {field} at offset {offset} holds data type {data_type}, expected {expected}")]
    UnexpectedDataType {
        /// Offset of the type byte.
        offset: usize,
        /// The field being decoded.
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
        /// The type byte found.
        data_type: u8,
    },
    /// The command ends before a field it announces.
    #[error("OpenWire command truncated at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        /// Offset of the first missing byte.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the command.
        have: usize,
    },
    /// Bytes left in the frame after the command's last field.
    #[error("{count} trailing bytes at offset {offset} after the OpenWire command")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// A length or count field is negative (other than the `-1` that means
    /// null where Java allows it).
    #[error("negative OpenWire length {length} at offset {offset}")]
    NegativeLength {
        /// Offset of the length field.
        offset: usize,
        /// The value read.
        length: i64,
    },
    /// A string is not valid Java modified UTF-8.
    #[error("malformed Java modified UTF-8 string at offset {offset}")]
    BadString {
        /// Offset of the string's first byte (after its length).
        offset: usize,
    },
    /// A primitive value in a property map, map or stream body has an unknown type.
    #[error("unknown OpenWire primitive type {tag} at offset {offset}")]
    UnknownPrimitiveType {
        /// Offset of the type byte.
        offset: usize,
        /// The type byte.
        tag: u8,
    },
    /// Nested structures (objects, exception causes, maps and lists) are
    /// deeper than the limit.
    #[error("OpenWire structure at offset {offset} nested deeper than {max}")]
    TooDeep {
        /// Offset where the limit was crossed.
        offset: usize,
        /// The configured limit.
        max: usize,
    },
}

impl OpenWireDecodeError {
    /// The Java exception class an ActiveMQ broker reports for this error
    /// (`java.io.IOException` family): what an `ExceptionResponse` or
    /// `ConnectionError` should carry.
    pub fn java_class(&self) -> &'static str {
        match self {
            OpenWireDecodeError::Truncated { .. } => "java.io.EOFException",
            OpenWireDecodeError::BadString { .. } => "java.io.UTFDataFormatException",
            _ => "java.io.IOException",
        }
    }
}

/// Why a structure could not be encoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenWireEncodeError {
    /// A string is longer than the 65535 bytes of Java modified UTF-8 a
    /// `writeUTF` length can express.
    #[error("string of {len} modified UTF-8 bytes exceeds 65535")]
    StringTooLong {
        /// Encoded length in bytes.
        len: usize,
    },
    /// An array has more elements than its `short` count can express.
    #[error("array of {len} elements exceeds 32767")]
    ArrayTooLong {
        /// Number of elements.
        len: usize,
    },
    /// A byte sequence is longer than its `int` length can express.
    #[error("byte sequence of {len} bytes exceeds 2147483647")]
    BytesTooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The encoded frame is larger than the size prefix or the negotiated
    /// maximum frame size allows.
    #[error("OpenWire frame of {size} bytes exceeds the maximum frame size {max}")]
    FrameTooLarge {
        /// The frame's size (without the size prefix).
        size: usize,
        /// The limit.
        max: u64,
    },
}
