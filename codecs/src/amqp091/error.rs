//! The decoder's and encoder's error types, and AMQP reply codes.

/// AMQP 0-9-1 reply codes, as sent in `connection.close` and `channel.close`.
pub mod reply_code {
    /// Success (a normal close).
    pub const REPLY_SUCCESS: u16 = 200;
    /// Soft: the message body was too large.
    pub const CONTENT_TOO_LARGE: u16 = 311;
    /// Soft: a mandatory message could not be routed.
    pub const NO_ROUTE: u16 = 312;
    /// Soft: an immediate message had no consumer.
    pub const NO_CONSUMERS: u16 = 313;
    /// Hard: an operator closed the connection.
    pub const CONNECTION_FORCED: u16 = 320;
    /// Hard: the virtual host does not exist.
    pub const INVALID_PATH: u16 = 402;
    /// Soft: access to the resource was refused.
    pub const ACCESS_REFUSED: u16 = 403;
    /// Soft: the entity does not exist.
    pub const NOT_FOUND: u16 = 404;
    /// Soft: the resource is locked by another client.
    pub const RESOURCE_LOCKED: u16 = 405;
    /// Soft: a precondition failed (e.g. a redeclare with other arguments).
    pub const PRECONDITION_FAILED: u16 = 406;
    /// Hard: a malformed frame.
    pub const FRAME_ERROR: u16 = 501;
    /// Hard: a frame with illegal field values.
    pub const SYNTAX_ERROR: u16 = 502;
    /// Hard: a method not allowed in the current state.
    pub const COMMAND_INVALID: u16 = 503;
    /// Hard: a channel that is not open, or already open.
    pub const CHANNEL_ERROR: u16 = 504;
    /// Hard: a frame the peer did not expect (usually around content).
    pub const UNEXPECTED_FRAME: u16 = 505;
    /// Hard: the server ran out of a resource.
    pub const RESOURCE_ERROR: u16 = 506;
    /// Hard: the operation is not allowed.
    pub const NOT_ALLOWED: u16 = 530;
    /// Hard: the method or class is not implemented.
    pub const NOT_IMPLEMENTED: u16 = 540;
    /// Hard: an internal error.
    pub const INTERNAL_ERROR: u16 = 541;
}

/// Why bytes could not be decoded as AMQP 0-9-1. Every variant is a
/// connection error: the server answers `connection.close` with
/// [`reply_code`](Amqp091DecodeError::reply_code) and the class and method
/// ids of [`method_ids`](Amqp091DecodeError::method_ids).
///
/// Offsets count octets from the first octet of the frame (its type octet),
/// so the first argument of a method is at offset 11.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Amqp091DecodeError {
    /// The frame type octet is not 1, 2, 3 or 8.
    #[error("unknown AMQP frame type {frame_type}")]
    UnknownFrameType {
        /// The type octet.
        frame_type: u8,
    },
    /// The frame header announces a frame larger than `frame_max`.
    #[error("AMQP frame payload of {size} bytes exceeds frame_max {frame_max}")]
    FrameTooLarge {
        /// The payload size from the frame header.
        size: u32,
        /// The limit in force (whole frame, header and end octet included).
        frame_max: u32,
    },
    /// The octet after the payload is not `0xCE`.
    #[error("AMQP frame end octet at offset {offset} is {found:#04x}, not 0xce")]
    BadFrameEnd {
        /// Offset of the offending octet.
        offset: usize,
        /// The octet found.
        found: u8,
    },
    /// A heartbeat frame that is not on channel 0 or not empty.
    #[error("invalid AMQP heartbeat frame on channel {channel} with {size} payload bytes")]
    BadHeartbeat {
        /// The frame's channel.
        channel: u16,
        /// The frame's payload size.
        size: u32,
    },
    /// A content header or body frame on channel 0.
    #[error("AMQP content frame (type {frame_type}) on channel 0")]
    ContentOnChannelZero {
        /// The frame type octet (2 or 3).
        frame_type: u8,
    },
    /// A method frame names a class and method that do not exist.
    #[error("unknown AMQP method {class_id}.{method_id}")]
    UnknownMethod {
        /// The class id.
        class_id: u16,
        /// The method id.
        method_id: u16,
    },
    /// A content header for a class other than `basic`.
    #[error("AMQP content header for class {class_id}, which has no content")]
    UnknownContentClass {
        /// The class id from the header.
        class_id: u16,
    },
    /// The payload ends before a field it announces.
    #[error(
        "AMQP frame truncated at offset {offset} (method {class_id}.{method_id}): need {need} bytes, have {have}"
    )]
    Truncated {
        /// Class id of the method or content header being decoded, 0 if unknown yet.
        class_id: u16,
        /// Method id being decoded, 0 for a content header or if unknown yet.
        method_id: u16,
        /// Offset of the first byte that is missing: where the field (or,
        /// after a length prefix, its content) would start.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the payload, table or array.
        have: usize,
    },
    /// The payload has bytes after the last argument or property.
    #[error("{count} trailing bytes at offset {offset} after AMQP method {class_id}.{method_id}")]
    TrailingBytes {
        /// Class id of the method or content header.
        class_id: u16,
        /// Method id, 0 for a content header.
        method_id: u16,
        /// Offset of the first extra byte.
        offset: usize,
        /// How many extra bytes.
        count: usize,
    },
    /// A field table or array value has an unknown type letter.
    #[error(
        "unknown AMQP field type {tag:#04x} at offset {offset} (method {class_id}.{method_id})"
    )]
    UnknownFieldType {
        /// Class id of the method or content header.
        class_id: u16,
        /// Method id, 0 for a content header.
        method_id: u16,
        /// Offset of the type octet.
        offset: usize,
        /// The type octet.
        tag: u8,
    },
    /// Field tables and arrays are nested deeper than allowed.
    #[error("AMQP field table at offset {offset} nested deeper than {max} (method {class_id}.{method_id})")]
    TableTooDeep {
        /// Class id of the method or content header.
        class_id: u16,
        /// Method id, 0 for a content header.
        method_id: u16,
        /// Offset of the table's or array's length field.
        offset: usize,
        /// The configured `max_table_depth`.
        max: usize,
    },
    /// A content header's property flags set bits no `basic` property uses
    /// (bit 1, or the continuation bit 0).
    #[error(
        "AMQP content header property flags {flags:#06x} at offset {offset} set reserved bits"
    )]
    BadPropertyFlags {
        /// Offset of the flags word.
        offset: usize,
        /// The flags word.
        flags: u16,
    },
}

impl Amqp091DecodeError {
    /// The reply code a server closes the connection with:
    ///
    /// - 501 `FRAME_ERROR` for broken framing, and for arguments or
    ///   properties that overrun or underfill the payload (RabbitMQ 3.10
    ///   answers those with 501 "cannot decode" too);
    /// - 502 `SYNTAX_ERROR` for illegal values: an unknown field type, tables
    ///   nested too deep, reserved property flags;
    /// - 505 `UNEXPECTED_FRAME` for content on channel 0;
    /// - 540 `NOT_IMPLEMENTED` for unknown methods and content classes.
    pub fn reply_code(&self) -> u16 {
        use Amqp091DecodeError::*;
        match self {
            UnknownFrameType { .. }
            | FrameTooLarge { .. }
            | BadFrameEnd { .. }
            | BadHeartbeat { .. }
            | Truncated { .. }
            | TrailingBytes { .. } => reply_code::FRAME_ERROR,
            ContentOnChannelZero { .. } => reply_code::UNEXPECTED_FRAME,
            UnknownMethod { .. } | UnknownContentClass { .. } => reply_code::NOT_IMPLEMENTED,
            UnknownFieldType { .. } | TableTooDeep { .. } | BadPropertyFlags { .. } => {
                reply_code::SYNTAX_ERROR
            }
        }
    }

    /// The `(class-id, method-id)` to report in `connection.close`: the
    /// method whose frame failed to decode, `(0, 0)` when the failure is not
    /// inside a method.
    pub fn method_ids(&self) -> (u16, u16) {
        use Amqp091DecodeError::*;
        match *self {
            UnknownMethod {
                class_id,
                method_id,
            }
            | Truncated {
                class_id,
                method_id,
                ..
            }
            | TrailingBytes {
                class_id,
                method_id,
                ..
            }
            | UnknownFieldType {
                class_id,
                method_id,
                ..
            }
            | TableTooDeep {
                class_id,
                method_id,
                ..
            } if method_id != 0 => (class_id, method_id),
            _ => (0, 0),
        }
    }
}

/// Why a frame could not be encoded. Encoding never writes a partial frame:
/// on error the destination buffer is left as it was.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Amqp091EncodeError {
    /// A long string, byte array, field table, array or payload is longer
    /// than its 32-bit length field can say.
    #[error("AMQP {what} of {len} bytes is longer than {max} bytes")]
    TooLong {
        /// What was too long, e.g. `"long string"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most its length field can say.
        max: usize,
    },
    /// The encoded frame is larger than the negotiated `frame_max`.
    #[error("AMQP frame of {size} bytes exceeds frame_max {frame_max}")]
    FrameTooLarge {
        /// The whole encoded frame's size in bytes.
        size: usize,
        /// The limit in force.
        frame_max: u32,
    },
}
