//! Content header frames and the `basic` class's message properties.

use bytes::{BufMut, BytesMut};

use super::table::FieldTable;
use super::wire::{Reader, ShortStr, Writer};
use super::{Amqp091DecodeError, Amqp091EncodeError, BASIC_CLASS_ID};

/// The payload of a content header frame, sent after a content-bearing
/// method (`basic.publish`, `basic.return`, `basic.deliver`, `basic.get-ok`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHeader {
    /// The class of the method the content belongs to; always
    /// [`BASIC_CLASS_ID`] (60) when decoded.
    pub class_id: u16,
    /// Unused, 0.
    pub weight: u16,
    /// Total size of the body frames that follow, in octets.
    pub body_size: u64,
    /// The message properties.
    pub properties: BasicProperties,
}

impl ContentHeader {
    /// A `basic` content header.
    pub fn new(body_size: u64, properties: BasicProperties) -> Self {
        ContentHeader {
            class_id: BASIC_CLASS_ID,
            weight: 0,
            body_size,
            properties,
        }
    }

    /// Decodes a content header frame's payload; `r` must hold exactly it.
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
        let class_id = r.short()?;
        if class_id != BASIC_CLASS_ID {
            return Err(Amqp091DecodeError::UnknownContentClass { class_id });
        }
        r.class_id = class_id;
        let weight = r.short()?;
        let body_size = r.longlong()?;
        let properties = BasicProperties::decode(r)?;
        r.finish()?;
        Ok(ContentHeader {
            class_id,
            weight,
            body_size,
            properties,
        })
    }

    /// Appends the header payload. The properties are written as `basic`'s
    /// whatever `class_id` says.
    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        dst.put_u16(self.class_id);
        dst.put_u16(self.weight);
        dst.put_u64(self.body_size);
        self.properties.encode(dst)
    }
}

impl Default for ContentHeader {
    fn default() -> Self {
        ContentHeader::new(0, BasicProperties::default())
    }
}

/// The 14 properties of a `basic` message; `None` is absent (its flag bit
/// clear). Property flags, from bit 15 down: content-type, content-encoding,
/// headers, delivery-mode, priority, correlation-id, reply-to, expiration,
/// message-id, timestamp, type, user-id, app-id, cluster-id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicProperties {
    /// MIME type of the body, e.g. `application/json`.
    pub content_type: Option<ShortStr>,
    /// MIME encoding of the body, e.g. `gzip`.
    pub content_encoding: Option<ShortStr>,
    /// Application headers.
    pub headers: Option<FieldTable>,
    /// 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    /// Priority, 0 to 9.
    pub priority: Option<u8>,
    /// Correlation id, for RPC replies.
    pub correlation_id: Option<ShortStr>,
    /// Queue to reply to.
    pub reply_to: Option<ShortStr>,
    /// Per-message TTL in milliseconds, as decimal text (RabbitMQ).
    pub expiration: Option<ShortStr>,
    /// Application message id.
    pub message_id: Option<ShortStr>,
    /// Timestamp, seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// Message type name (`type` on the wire).
    pub message_type: Option<ShortStr>,
    /// The publishing user (RabbitMQ validates it).
    pub user_id: Option<ShortStr>,
    /// The publishing application.
    pub app_id: Option<ShortStr>,
    /// Reserved (`cluster-id`).
    pub cluster_id: Option<ShortStr>,
}

/// Flag bit of each property, in wire order.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
/// Bit 1 is unused by `basic`; bit 0 would announce another flags word.
const RESERVED: u16 = 0b11;

impl BasicProperties {
    /// The property flags word these properties are written with.
    pub fn flags(&self) -> u16 {
        let mut flags = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                flags |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.message_type.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        flags
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
        let offset = r.offset();
        let flags = r.short()?;
        if flags & RESERVED != 0 {
            return Err(Amqp091DecodeError::BadPropertyFlags { offset, flags });
        }
        let has = |bit: u16| flags & bit != 0;
        fn opt<T>(
            present: bool,
            r: &mut Reader,
            read: impl FnOnce(&mut Reader) -> Result<T, Amqp091DecodeError>,
        ) -> Result<Option<T>, Amqp091DecodeError> {
            if present {
                read(r).map(Some)
            } else {
                Ok(None)
            }
        }
        Ok(BasicProperties {
            content_type: opt(has(CONTENT_TYPE), r, Reader::shortstr)?,
            content_encoding: opt(has(CONTENT_ENCODING), r, Reader::shortstr)?,
            headers: opt(has(HEADERS), r, Reader::table)?,
            delivery_mode: opt(has(DELIVERY_MODE), r, Reader::octet)?,
            priority: opt(has(PRIORITY), r, Reader::octet)?,
            correlation_id: opt(has(CORRELATION_ID), r, Reader::shortstr)?,
            reply_to: opt(has(REPLY_TO), r, Reader::shortstr)?,
            expiration: opt(has(EXPIRATION), r, Reader::shortstr)?,
            message_id: opt(has(MESSAGE_ID), r, Reader::shortstr)?,
            timestamp: opt(has(TIMESTAMP), r, Reader::timestamp)?,
            message_type: opt(has(TYPE), r, Reader::shortstr)?,
            user_id: opt(has(USER_ID), r, Reader::shortstr)?,
            app_id: opt(has(APP_ID), r, Reader::shortstr)?,
            cluster_id: opt(has(CLUSTER_ID), r, Reader::shortstr)?,
        })
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        dst.put_u16(self.flags());
        let mut w = Writer::new(dst);
        let s = |w: &mut Writer<'_>, v: &Option<ShortStr>| match v {
            Some(v) => w.shortstr(v),
            None => Ok(()),
        };
        s(&mut w, &self.content_type)?;
        s(&mut w, &self.content_encoding)?;
        if let Some(t) = &self.headers {
            w.table(t)?;
        }
        if let Some(v) = &self.delivery_mode {
            w.octet(v)?;
        }
        if let Some(v) = &self.priority {
            w.octet(v)?;
        }
        s(&mut w, &self.correlation_id)?;
        s(&mut w, &self.reply_to)?;
        s(&mut w, &self.expiration)?;
        s(&mut w, &self.message_id)?;
        if let Some(v) = &self.timestamp {
            w.timestamp(v)?;
        }
        s(&mut w, &self.message_type)?;
        s(&mut w, &self.user_id)?;
        s(&mut w, &self.app_id)?;
        s(&mut w, &self.cluster_id)?;
        w.finish();
        Ok(())
    }
}
