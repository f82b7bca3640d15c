//! AMQP 0-9-1 frames, as RabbitMQ speaks them.
//!
//! Sans-IO: [`ProtocolHeader::decode`] reads the 8-byte protocol header a
//! client opens with, [`decode_frame`] takes one [`Frame`] from the front of a
//! buffer (`Ok(None)` when more bytes are needed, nothing consumed), and
//! [`Frame::encode`] writes one. [`Amqp091Codec`] adapts both to
//! `tokio_util::codec`: it expects the protocol header first, then frames.
//!
//! # Wire rules
//!
//! - A frame is `type:u8 channel:u16 size:u32 payload[size] 0xCE`. Types are
//!   method (1), content header (2), content body (3) and heartbeat (8).
//! - `size` is checked against [`Amqp091Limits::frame_max`] (which, as in the
//!   `connection.tune` negotiation, counts the whole frame: 7 header octets,
//!   the payload and the end octet) as soon as the 7 header octets are in,
//!   before any of the payload is buffered. A wrong end octet, an unknown
//!   frame type, a heartbeat that is not empty or not on channel 0, and a
//!   content frame on channel 0 are frame errors.
//! - A method payload is `class-id:u16 method-id:u16 arguments`. Every method
//!   of classes `connection`, `channel`, `access`, `exchange`, `queue`,
//!   `basic`, `confirm` and `tx` of RabbitMQ's 0-9-1 (including its
//!   extensions: `exchange.bind`/`unbind`, `basic.nack`, `confirm`,
//!   `connection.blocked`/`unblocked`/`update-secret`) has a typed struct in
//!   [`Method`]. Consecutive `bit` arguments share octets, least significant
//!   bit first; reserved bits are ignored on decode and written as zero.
//!   Arguments must fill the payload exactly.
//! - Short strings ([`ShortStr`]) and long strings are kept as bytes, not
//!   required to be UTF-8, so every frame re-encodes to the bytes it came
//!   from (bits and booleans aside).
//! - Field tables and arrays ([`FieldTable`], [`FieldValue`]) use RabbitMQ's
//!   type letters (which differ from the 0-9-1 specification's): `t` bool,
//!   `b` i8, `B` u8, `s` i16, `u` u16, `I` i32, `i` u32, `l` i64, `f` f32,
//!   `d` f64, `D` decimal, `S` long string, `x` byte array, `A` array,
//!   `T` timestamp, `F` table, `V` void. Every length is checked against the
//!   bytes actually present before anything is allocated, and nesting is
//!   bounded by [`Amqp091Limits::max_table_depth`].
//! - A content header carries the class id (only `basic`, 60, has content),
//!   a weight, the body size and the 14 `basic` properties
//!   ([`BasicProperties`]) behind a flags word.
//! - Body frames are cheap slices of the receive buffer; [`body_frames`]
//!   splits an outgoing body to fit a negotiated `frame_max`.
//!
//! Errors ([`Amqp091DecodeError`]) map to the reply code a server sends in
//! `connection.close` ([`Amqp091DecodeError::reply_code`]); all are
//! connection errors. Which frame may follow which (content after
//! `basic.publish`, methods only on the right channel) is the session's
//! business.

use bytes::Bytes;

mod codec;
mod error;
mod frame;
mod method;
mod properties;
mod table;
#[cfg(test)]
mod tests;
mod wire;

pub use codec::{Amqp091Codec, Amqp091CodecError, Amqp091Item};
pub use error::{reply_code, Amqp091DecodeError, Amqp091EncodeError};
pub use frame::{body_frames, decode_frame, decode_header_frame, BodyFrames, ProtocolHeader};
pub use method::*;
pub use properties::{BasicProperties, ContentHeader};
pub use table::{Decimal, FieldTable, FieldValue};
pub use wire::{ShortStr, ShortStrTooLong};

/// Frame type octet of a method frame.
pub const FRAME_METHOD: u8 = 1;
/// Frame type octet of a content header frame.
pub const FRAME_HEADER: u8 = 2;
/// Frame type octet of a content body frame.
pub const FRAME_BODY: u8 = 3;
/// Frame type octet of a heartbeat frame.
pub const FRAME_HEARTBEAT: u8 = 8;
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// Octets a frame adds around its payload: 7 of header, 1 end octet.
pub const FRAME_OVERHEAD: usize = 8;
/// The smallest `frame_max` a peer may negotiate, and the size every peer
/// must accept before `connection.tune-ok`.
pub const FRAME_MIN_SIZE: u32 = 4096;
/// The class id of `basic`, the only class with content.
pub const BASIC_CLASS_ID: u16 = 60;

/// One AMQP 0-9-1 frame: a channel and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The channel number; 0 is the connection itself.
    pub channel: u16,
    /// What the frame carries.
    pub payload: FramePayload,
}

/// What a [`Frame`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramePayload {
    /// A method frame (type 1).
    Method(Method),
    /// A content header frame (type 2), boxed: it is much larger than the
    /// other payloads.
    Header(Box<ContentHeader>),
    /// A content body frame (type 3): a slice of the message body.
    Body(Bytes),
    /// A heartbeat frame (type 8): always on channel 0, empty.
    Heartbeat,
}

impl FramePayload {
    /// The frame type octet this payload is sent with.
    pub fn frame_type(&self) -> u8 {
        match self {
            FramePayload::Method(_) => FRAME_METHOD,
            FramePayload::Header(_) => FRAME_HEADER,
            FramePayload::Body(_) => FRAME_BODY,
            FramePayload::Heartbeat => FRAME_HEARTBEAT,
        }
    }
}

impl Frame {
    /// A method frame.
    pub fn method(channel: u16, method: impl Into<Method>) -> Self {
        Frame {
            channel,
            payload: FramePayload::Method(method.into()),
        }
    }

    /// A content header frame.
    pub fn header(channel: u16, header: ContentHeader) -> Self {
        Frame {
            channel,
            payload: FramePayload::Header(Box::new(header)),
        }
    }

    /// A content body frame. See [`body_frames`] to split a body by `frame_max`.
    pub fn body(channel: u16, body: impl Into<Bytes>) -> Self {
        Frame {
            channel,
            payload: FramePayload::Body(body.into()),
        }
    }

    /// A heartbeat frame (channel 0).
    pub fn heartbeat() -> Self {
        Frame {
            channel: 0,
            payload: FramePayload::Heartbeat,
        }
    }
}

impl From<Method> for FramePayload {
    fn from(method: Method) -> Self {
        FramePayload::Method(method)
    }
}

/// Decoder limits, passed in by the caller (never global).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amqp091Limits {
    /// Largest frame accepted, in octets including the 7-octet header and the
    /// end octet, as `frame-max` is negotiated in `connection.tune`. `0`, as
    /// in `tune`, means no limit beyond the 32-bit size field; a server should
    /// never negotiate it. Default 131072 (RabbitMQ's default `frame_max`).
    pub frame_max: u32,
    /// Deepest nesting of field tables and arrays: a method's own table is
    /// depth 1. Default 64.
    pub max_table_depth: usize,
}

impl Default for Amqp091Limits {
    fn default() -> Self {
        Amqp091Limits {
            frame_max: 131_072,
            max_table_depth: 64,
        }
    }
}
