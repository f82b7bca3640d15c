//! OpenWire, the ActiveMQ 5.x JMS client's protocol, in its loose encoding,
//! versions 1 to 12.
//!
//! Sans-IO: [`decode_frame`] takes one size-prefixed command from the front
//! of a buffer (`Ok(None)` when more bytes are needed, nothing consumed) and
//! [`Command::encode`] writes one. [`OpenWireCodec`] adapts both to
//! `tokio_util::codec`.
//!
//! # Wire rules
//!
//! - A frame is a big-endian `int` size, then `size` bytes: the command's data
//!   type byte and its fields. The size is checked against
//!   [`OpenWireLimits::max_frame_size`] as soon as its 4 bytes are in, before
//!   any of the command is buffered; a size of zero or less is an error.
//! - Fields are marshalled as ActiveMQ's generated `looseMarshal` methods
//!   write them (`activemq-client`, `org.apache.activemq.openwire.v1` to
//!   `v12`): a `boolean` is one byte, integers are big-endian, strings are a
//!   `boolean` "not null" then `writeUTF` (a `u16` length and Java modified
//!   UTF-8), byte sequences a `boolean` then an `int` length and the bytes,
//!   nested structures a `boolean` then their type byte and fields, arrays a
//!   `boolean`, a `short` count and nested structures, throwables a
//!   `boolean`, class name and message (plus stack trace and cause when
//!   `StackTraceEnabled` was negotiated).
//! - Fields added in later versions (e.g. `MessageAck.poisonCause` in 7,
//!   `ConsumerInfo.clientId` and `MessageId.textView` in 10) are read and
//!   written only when the negotiated [`WireFormat::version`] has them.
//! - With the marshal cache off (which the gateway always negotiates),
//!   "cached" fields are plain nested structures.
//! - Every length is checked against the bytes actually in the frame before
//!   anything is taken (byte sequences are slices of the frame, never
//!   copies); nesting of structures, causes, maps and lists is bounded by
//!   [`OpenWireLimits::max_depth`]; the command must fill its frame exactly.
//!
//! # Negotiation
//!
//! Both peers open with a [`WireFormatInfo`]. The connection then uses the
//! lower of the two versions and the AND of the boolean options
//! ([`WireFormatOptions::negotiate`]). The gateway offers
//! `TightEncodingEnabled=false`, `CacheEnabled=false`,
//! `SizePrefixDisabled=false` and `StackTraceEnabled=false`, so every client,
//! whatever it prefers, falls back to the loose, uncached, size-prefixed
//! encoding this module implements. Tight encoding is not implemented.
//!
//! # Bodies and properties
//!
//! A [`Message`] keeps its body and properties as the bytes the client
//! marshalled; [`PrimitiveMap`], [`decode_text_body`] and
//! [`decode_stream_body`] read them (`MarshallingSupport`'s formats).
//!
//! Strings inside primitive maps are a trap: the Java client writes them
//! with `writeUTF` (modified UTF-8: U+0000 as `C0 80`, characters outside
//! the BMP as two 3-byte surrogates) but reads them as standard UTF-8, so
//! ActiveMQ itself mangles such characters in properties. The decoder accepts
//! both forms; [`PrimitiveMap::to_bytes`] writes Java's form (byte-identical
//! re-encoding) and [`PrimitiveMap::to_bytes_utf8`] the form the client reads
//! correctly. `TextMessage` bodies are modified UTF-8 both ways.

use bytes::{Buf, BufMut, Bytes, BytesMut};

mod codec;
mod command;
mod error;
mod ids;
mod primitive;
#[cfg(test)]
mod tests;
mod wire;

pub use codec::{OpenWireCodec, OpenWireCodecError};
pub use command::*;
pub use error::{OpenWireDecodeError, OpenWireEncodeError};
pub use ids::*;
pub use primitive::{
    decode_stream_body, decode_text_body, encode_stream_body, encode_text_body, PrimitiveMap,
    PrimitiveValue,
};
pub use wire::{decode_modified_utf8, encode_modified_utf8, modified_utf8_len};

use command::Structure;
use wire::{Context, Reader, Writer};

/// The newest OpenWire version (ActiveMQ 5.17 and 6.x speak 12).
pub const MAX_VERSION: u32 = 12;
/// The oldest OpenWire version.
pub const MIN_VERSION: u32 = 1;

/// Data type bytes (`CommandTypes`).
pub mod data_type {
    /// Null.
    pub const NULL: u8 = 0;
    /// `WireFormatInfo`.
    pub const WIREFORMAT_INFO: u8 = 1;
    /// `BrokerInfo`.
    pub const BROKER_INFO: u8 = 2;
    /// `ConnectionInfo`.
    pub const CONNECTION_INFO: u8 = 3;
    /// `SessionInfo`.
    pub const SESSION_INFO: u8 = 4;
    /// `ConsumerInfo`.
    pub const CONSUMER_INFO: u8 = 5;
    /// `ProducerInfo`.
    pub const PRODUCER_INFO: u8 = 6;
    /// `TransactionInfo`.
    pub const TRANSACTION_INFO: u8 = 7;
    /// `DestinationInfo`.
    pub const DESTINATION_INFO: u8 = 8;
    /// `RemoveSubscriptionInfo`.
    pub const REMOVE_SUBSCRIPTION_INFO: u8 = 9;
    /// `KeepAliveInfo`.
    pub const KEEP_ALIVE_INFO: u8 = 10;
    /// `ShutdownInfo`.
    pub const SHUTDOWN_INFO: u8 = 11;
    /// `RemoveInfo`.
    pub const REMOVE_INFO: u8 = 12;
    /// `ControlCommand`.
    pub const CONTROL_COMMAND: u8 = 14;
    /// `FlushCommand`.
    pub const FLUSH_COMMAND: u8 = 15;
    /// `ConnectionError`.
    pub const CONNECTION_ERROR: u8 = 16;
    /// `ConsumerControl`.
    pub const CONSUMER_CONTROL: u8 = 17;
    /// `ConnectionControl`.
    pub const CONNECTION_CONTROL: u8 = 18;
    /// `ProducerAck`.
    pub const PRODUCER_ACK: u8 = 19;
    /// `MessagePull`.
    pub const MESSAGE_PULL: u8 = 20;
    /// `MessageDispatch`.
    pub const MESSAGE_DISPATCH: u8 = 21;
    /// `MessageAck`.
    pub const MESSAGE_ACK: u8 = 22;
    /// `ActiveMQMessage`.
    pub const ACTIVEMQ_MESSAGE: u8 = 23;
    /// `ActiveMQBytesMessage`.
    pub const ACTIVEMQ_BYTES_MESSAGE: u8 = 24;
    /// `ActiveMQMapMessage`.
    pub const ACTIVEMQ_MAP_MESSAGE: u8 = 25;
    /// `ActiveMQObjectMessage`.
    pub const ACTIVEMQ_OBJECT_MESSAGE: u8 = 26;
    /// `ActiveMQStreamMessage`.
    pub const ACTIVEMQ_STREAM_MESSAGE: u8 = 27;
    /// `ActiveMQTextMessage`.
    pub const ACTIVEMQ_TEXT_MESSAGE: u8 = 28;
    /// `Response`.
    pub const RESPONSE: u8 = 30;
    /// `ExceptionResponse`.
    pub const EXCEPTION_RESPONSE: u8 = 31;
    /// `DataResponse`.
    pub const DATA_RESPONSE: u8 = 32;
    /// `DataArrayResponse`.
    pub const DATA_ARRAY_RESPONSE: u8 = 33;
    /// `IntegerResponse`.
    pub const INTEGER_RESPONSE: u8 = 34;
    /// `MessageDispatchNotification`.
    pub const MESSAGE_DISPATCH_NOTIFICATION: u8 = 90;
    /// `ActiveMQQueue`.
    pub const ACTIVEMQ_QUEUE: u8 = 100;
    /// `ActiveMQTopic`.
    pub const ACTIVEMQ_TOPIC: u8 = 101;
    /// `ActiveMQTempQueue`.
    pub const ACTIVEMQ_TEMP_QUEUE: u8 = 102;
    /// `ActiveMQTempTopic`.
    pub const ACTIVEMQ_TEMP_TOPIC: u8 = 103;
    /// `MessageId`.
    pub const MESSAGE_ID: u8 = 110;
    /// `LocalTransactionId`.
    pub const ACTIVEMQ_LOCAL_TRANSACTION_ID: u8 = 111;
    /// `XATransactionId`.
    pub const ACTIVEMQ_XA_TRANSACTION_ID: u8 = 112;
    /// `ConnectionId`.
    pub const CONNECTION_ID: u8 = 120;
    /// `SessionId`.
    pub const SESSION_ID: u8 = 121;
    /// `ConsumerId`.
    pub const CONSUMER_ID: u8 = 122;
    /// `ProducerId`.
    pub const PRODUCER_ID: u8 = 123;
    /// `BrokerId`.
    pub const BROKER_ID: u8 = 124;
}

/// `MessageAck.ackType` values.
pub mod ack_type {
    /// Delivered to the application, not yet acknowledged (extends prefetch).
    pub const DELIVERED: i8 = 0;
    /// The client gave up on the message (redelivery policy exhausted): to the DLQ.
    pub const POISON: i8 = 1;
    /// Consumed: remove from the queue.
    pub const STANDARD: i8 = 2;
    /// Redelivered after a rollback or recover.
    pub const REDELIVERED: i8 = 3;
    /// One message, not a range.
    pub const INDIVIDUAL: i8 = 4;
    /// Did not match the consumer's selector.
    pub const UNMATCHED: i8 = 5;
    /// Expired on the client.
    pub const EXPIRED: i8 = 6;
}

/// `TransactionInfo.type` values.
pub mod transaction_type {
    /// Begin.
    pub const BEGIN: i8 = 0;
    /// XA prepare.
    pub const PREPARE: i8 = 1;
    /// Commit (local, or XA one-phase).
    pub const COMMIT_ONE_PHASE: i8 = 2;
    /// XA two-phase commit.
    pub const COMMIT_TWO_PHASE: i8 = 3;
    /// Rollback.
    pub const ROLLBACK: i8 = 4;
    /// XA recover.
    pub const RECOVER: i8 = 5;
    /// XA forget.
    pub const FORGET: i8 = 6;
    /// XA end.
    pub const END: i8 = 7;
}

/// Decoder limits, passed in by the caller (never global).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenWireLimits {
    /// Largest frame accepted, in bytes after the size prefix. Default
    /// 104857600 (ActiveMQ's default `wireFormat.maxFrameSize`, 100 MiB).
    pub max_frame_size: u32,
    /// Deepest nesting of structures, throwable causes, maps and lists.
    /// Default 32.
    pub max_depth: usize,
}

impl Default for OpenWireLimits {
    fn default() -> Self {
        OpenWireLimits {
            max_frame_size: 104_857_600,
            max_depth: 32,
        }
    }
}

/// The encoding in force on a connection: before negotiation, version
/// [`MAX_VERSION`] without stack traces (only `WireFormatInfo`, whose
/// encoding does not depend on either, is exchanged then); after it, the
/// negotiated values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFormat {
    /// OpenWire version, 1 to 12.
    pub version: u32,
    /// Whether throwables carry stack traces and causes.
    pub stack_trace_enabled: bool,
    /// Decoder limits.
    pub limits: OpenWireLimits,
}

impl Default for WireFormat {
    fn default() -> Self {
        WireFormat {
            version: MAX_VERSION,
            stack_trace_enabled: false,
            limits: OpenWireLimits::default(),
        }
    }
}

impl WireFormat {
    fn context(&self) -> Context {
        Context {
            version: self.version,
            stack_trace: self.stack_trace_enabled,
            max_depth: self.limits.max_depth,
        }
    }
}

/// The options of a [`WireFormatInfo`], as ActiveMQ names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFormatOptions {
    /// `version`.
    pub version: u32,
    /// `StackTraceEnabled`.
    pub stack_trace_enabled: bool,
    /// `TcpNoDelayEnabled`.
    pub tcp_no_delay_enabled: bool,
    /// `CacheEnabled`.
    pub cache_enabled: bool,
    /// `CacheSize`.
    pub cache_size: i32,
    /// `TightEncodingEnabled`.
    pub tight_encoding_enabled: bool,
    /// `SizePrefixDisabled`.
    pub size_prefix_disabled: bool,
    /// `MaxInactivityDuration` in milliseconds (0: no inactivity monitoring).
    pub max_inactivity_duration: i64,
    /// `MaxInactivityDurationInitalDelay` (sic) in milliseconds.
    pub max_inactivity_duration_initial_delay: i64,
    /// `MaxFrameSize` in bytes. A peer that does not send it means 0, and
    /// the negotiated size is the smaller of the two, so always send it.
    pub max_frame_size: i64,
    /// `MaxFrameSizeEnabled` (not negotiated: each side enforces its own).
    pub max_frame_size_enabled: bool,
    /// `Host`, when the client names the host it connected to.
    pub host: Option<String>,
}

impl WireFormatOptions {
    /// The options a server that speaks only the loose encoding offers:
    /// version 12, no tight encoding, no cache, no stack traces, size prefix
    /// on, TCP_NODELAY, the given inactivity timeout and frame size.
    pub fn loose_server(max_inactivity_duration: i64, max_frame_size: i64) -> Self {
        WireFormatOptions {
            version: MAX_VERSION,
            stack_trace_enabled: false,
            tcp_no_delay_enabled: true,
            cache_enabled: false,
            cache_size: 0,
            tight_encoding_enabled: false,
            size_prefix_disabled: false,
            max_inactivity_duration,
            max_inactivity_duration_initial_delay: 10_000,
            max_frame_size,
            max_frame_size_enabled: true,
            host: None,
        }
    }

    /// Reads the options of a received `WireFormatInfo`. Missing options
    /// take ActiveMQ's "absent" values (false, 0).
    pub fn from_info(
        info: &WireFormatInfo,
        limits: &OpenWireLimits,
    ) -> Result<Self, OpenWireDecodeError> {
        let map = match &info.marshalled_properties {
            Some(bytes) => PrimitiveMap::decode(bytes, limits.max_depth)?.unwrap_or_default(),
            None => PrimitiveMap::new(),
        };
        let flag = |name: &str| matches!(map.get(name), Some(PrimitiveValue::Bool(true)));
        let long = |name: &str| match map.get(name) {
            Some(PrimitiveValue::Long(v)) => *v,
            Some(PrimitiveValue::Int(v)) => i64::from(*v),
            _ => 0,
        };
        Ok(WireFormatOptions {
            version: u32::try_from(info.version).unwrap_or(0),
            stack_trace_enabled: flag("StackTraceEnabled"),
            tcp_no_delay_enabled: flag("TcpNoDelayEnabled"),
            cache_enabled: flag("CacheEnabled"),
            cache_size: i32::try_from(long("CacheSize")).unwrap_or(0),
            tight_encoding_enabled: flag("TightEncodingEnabled"),
            size_prefix_disabled: flag("SizePrefixDisabled"),
            max_inactivity_duration: long("MaxInactivityDuration"),
            max_inactivity_duration_initial_delay: long("MaxInactivityDurationInitalDelay"),
            max_frame_size: long("MaxFrameSize"),
            max_frame_size_enabled: flag("MaxFrameSizeEnabled"),
            host: match map.get("Host") {
                Some(PrimitiveValue::String(s)) => Some(s.clone()),
                _ => None,
            },
        })
    }

    /// The `WireFormatInfo` offering these options (properties in the order
    /// ActiveMQ's own broker writes them is not significant: a map).
    pub fn to_info(&self) -> Result<WireFormatInfo, OpenWireEncodeError> {
        let mut map = PrimitiveMap::new();
        map.insert(
            "TcpNoDelayEnabled",
            PrimitiveValue::Bool(self.tcp_no_delay_enabled),
        );
        map.insert(
            "SizePrefixDisabled",
            PrimitiveValue::Bool(self.size_prefix_disabled),
        );
        map.insert("CacheSize", PrimitiveValue::Int(self.cache_size));
        map.insert(
            "StackTraceEnabled",
            PrimitiveValue::Bool(self.stack_trace_enabled),
        );
        map.insert(
            "MaxFrameSizeEnabled",
            PrimitiveValue::Bool(self.max_frame_size_enabled),
        );
        map.insert(
            "MaxInactivityDurationInitalDelay",
            PrimitiveValue::Long(self.max_inactivity_duration_initial_delay),
        );
        map.insert(
            "MaxInactivityDuration",
            PrimitiveValue::Long(self.max_inactivity_duration),
        );
        map.insert("CacheEnabled", PrimitiveValue::Bool(self.cache_enabled));
        map.insert(
            "TightEncodingEnabled",
            PrimitiveValue::Bool(self.tight_encoding_enabled),
        );
        map.insert("MaxFrameSize", PrimitiveValue::Long(self.max_frame_size));
        if let Some(host) = &self.host {
            map.insert("Host", PrimitiveValue::String(host.clone()));
        }
        Ok(WireFormatInfo {
            magic: WIRE_FORMAT_MAGIC,
            version: i32::try_from(self.version).unwrap_or(i32::MAX),
            marshalled_properties: Some(map.to_bytes()?),
        })
    }

    /// What a connection uses after both sides have offered their options,
    /// as `OpenWireFormat.renegotiateWireFormat` computes it: the lower
    /// version and frame size, the AND of the boolean options. The
    /// inactivity duration is the lower non-zero one (as
    /// `InactivityMonitor` takes it), 0 when either side disables it.
    pub fn negotiate(&self, peer: &WireFormatOptions) -> WireFormatOptions {
        let max_inactivity_duration =
            if self.max_inactivity_duration <= 0 || peer.max_inactivity_duration <= 0 {
                0
            } else {
                self.max_inactivity_duration
                    .min(peer.max_inactivity_duration)
            };
        WireFormatOptions {
            version: self.version.min(peer.version),
            stack_trace_enabled: self.stack_trace_enabled && peer.stack_trace_enabled,
            tcp_no_delay_enabled: self.tcp_no_delay_enabled && peer.tcp_no_delay_enabled,
            cache_enabled: self.cache_enabled && peer.cache_enabled,
            cache_size: self.cache_size.min(peer.cache_size),
            tight_encoding_enabled: self.tight_encoding_enabled && peer.tight_encoding_enabled,
            size_prefix_disabled: self.size_prefix_disabled && peer.size_prefix_disabled,
            max_inactivity_duration,
            max_inactivity_duration_initial_delay: self
                .max_inactivity_duration_initial_delay
                .min(peer.max_inactivity_duration_initial_delay),
            max_frame_size: self.max_frame_size.min(peer.max_frame_size),
            max_frame_size_enabled: self.max_frame_size_enabled,
            host: peer.host.clone(),
        }
    }
}

/// How many bytes the frame at the front of `buf` takes, prefix included,
/// once its 4-byte size is in: checks the size against the limit.
fn frame_len(buf: &[u8], limits: &OpenWireLimits) -> Result<Option<usize>, OpenWireDecodeError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let mut size4 = [0u8; 4];
    size4.copy_from_slice(prefix);
    let size = i32::from_be_bytes(size4);
    if size <= 0 {
        return Err(OpenWireDecodeError::BadFrameSize { size });
    }
    let size = size.unsigned_abs();
    if size > limits.max_frame_size {
        return Err(OpenWireDecodeError::FrameTooLarge {
            size,
            max: limits.max_frame_size,
        });
    }
    Ok(Some(4 + size as usize))
}

/// Decodes one size-prefixed command from the front of `buf` with the
/// connection's [`WireFormat`]. `Ok(None)` (nothing consumed) when the frame
/// is not complete yet; on success exactly the frame is consumed.
pub fn decode_frame(
    buf: &mut BytesMut,
    format: &WireFormat,
) -> Result<Option<Command>, OpenWireDecodeError> {
    let Some(len) = frame_len(buf, &format.limits)? else {
        return Ok(None);
    };
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(len);
    frame.advance(4);
    decode_command(frame.freeze(), format).map(Some)
}

/// Decodes one command (type byte and fields, no size prefix) that fills
/// `bytes` exactly.
pub fn decode_command(bytes: Bytes, format: &WireFormat) -> Result<Command, OpenWireDecodeError> {
    let mut r = Reader::new(bytes, format.context());
    let t = r.u8()?;
    if !Command::accepts_at(t, format.version) {
        return Err(OpenWireDecodeError::UnknownDataType {
            offset: 0,
            data_type: t,
        });
    }
    let command = Command::decode_body(t, &mut r)?;
    r.finish()?;
    Ok(command)
}

impl Command {
    /// Appends the command as a size-prefixed frame in `format`'s version.
    pub fn encode(
        &self,
        dst: &mut BytesMut,
        format: &WireFormat,
    ) -> Result<(), OpenWireEncodeError> {
        let start = dst.len();
        dst.put_i32(0);
        let mut w = Writer {
            dst,
            ctx: format.context(),
        };
        w.u8(self.data_type());
        if let Err(e) = self.encode_body(&mut w) {
            dst.truncate(start);
            return Err(e);
        }
        let size = dst.len() - start - 4;
        let Ok(size32) = i32::try_from(size) else {
            dst.truncate(start);
            return Err(OpenWireEncodeError::FrameTooLarge {
                size,
                max: i32::MAX as u64,
            });
        };
        if let Some(prefix) = dst.get_mut(start..start + 4) {
            prefix.copy_from_slice(&size32.to_be_bytes());
        }
        Ok(())
    }

    /// The command as a size-prefixed frame.
    pub fn to_bytes(&self, format: &WireFormat) -> Result<Bytes, OpenWireEncodeError> {
        let mut dst = BytesMut::new();
        self.encode(&mut dst, format)?;
        Ok(dst.freeze())
    }
}
