//! The engine's on-disk encoding of messages and queue metadata, carried as opaque payloads in
//! journal records. Versioned: the first byte names the format.

use crate::message::{BodyKind, Message, PropertyValue};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;

const MESSAGE_FORMAT_V1: u8 = 1;
const META_FORMAT_V1: u8 = 1;

/// A stored payload that cannot be decoded (corrupt, or written by an unknown format version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable stored {what}: {reason}")]
pub struct PersistError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why it failed.
    pub reason: String,
}

fn put_str(buf: &mut BytesMut, s: &str) {
    put_bytes(buf, s.as_bytes());
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u32(b.len() as u32);
    buf.put_slice(b);
}

fn put_opt(buf: &mut BytesMut, s: &Option<String>) {
    match s {
        Some(s) => {
            buf.put_u8(1);
            put_str(buf, s);
        }
        None => buf.put_u8(0),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &str) -> PersistError {
        PersistError {
            what: self.what,
            reason: reason.to_string(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PersistError> {
        if self.data.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PersistError> {
        let b = self.take(1)?;
        b.first().copied().ok_or_else(|| self.err("truncated"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PersistError> {
        let b = self.take(N)?;
        b.try_into().map_err(|_| self.err("truncated"))
    }

    fn u32(&mut self) -> Result<u32, PersistError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PersistError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], PersistError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, PersistError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("invalid UTF-8"))
    }

    fn opt(&mut self) -> Result<Option<String>, PersistError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.string()?)),
        }
    }
}

fn body_kind_code(kind: BodyKind) -> u8 {
    match kind {
        BodyKind::Bytes => 0,
        BodyKind::Text => 1,
        BodyKind::Map => 2,
        BodyKind::Object => 3,
        BodyKind::Stream => 4,
    }
}

fn body_kind_from(code: u8) -> BodyKind {
    match code {
        1 => BodyKind::Text,
        2 => BodyKind::Map,
        3 => BodyKind::Object,
        4 => BodyKind::Stream,
        _ => BodyKind::Bytes,
    }
}

/// Encodes a message for the journal.
pub fn encode_message(msg: &Message) -> Bytes {
    let mut buf = BytesMut::with_capacity(msg.body.len() + 128);
    buf.put_u8(MESSAGE_FORMAT_V1);
    put_str(&mut buf, &msg.message_id);
    put_str(&mut buf, &msg.address);
    buf.put_u8(body_kind_code(msg.body_kind));
    put_opt(&mut buf, &msg.content_type);
    put_opt(&mut buf, &msg.correlation_id);
    put_opt(&mut buf, &msg.reply_to);
    buf.put_u8(msg.priority);
    buf.put_u64(msg.expiration);
    buf.put_u64(msg.timestamp);
    buf.put_u8(u8::from(msg.persistent));
    put_opt(&mut buf, &msg.message_type);
    put_opt(&mut buf, &msg.user_id);
    put_opt(&mut buf, &msg.group_id);
    buf.put_u32(msg.group_seq as u32);
    buf.put_u32(msg.properties.len() as u32);
    for (name, value) in &msg.properties {
        put_str(&mut buf, name);
        match value {
            PropertyValue::Bool(v) => {
                buf.put_u8(0);
                buf.put_u8(u8::from(*v));
            }
            PropertyValue::Byte(v) => {
                buf.put_u8(1);
                buf.put_i8(*v);
            }
            PropertyValue::Short(v) => {
                buf.put_u8(2);
                buf.put_i16(*v);
            }
            PropertyValue::Int(v) => {
                buf.put_u8(3);
                buf.put_i32(*v);
            }
            PropertyValue::Long(v) => {
                buf.put_u8(4);
                buf.put_i64(*v);
            }
            PropertyValue::Float(v) => {
                buf.put_u8(5);
                buf.put_f32(*v);
            }
            PropertyValue::Double(v) => {
                buf.put_u8(6);
                buf.put_f64(*v);
            }
            PropertyValue::String(v) => {
                buf.put_u8(7);
                put_str(&mut buf, v);
            }
            PropertyValue::Bytes(v) => {
                buf.put_u8(8);
                put_bytes(&mut buf, v);
            }
        }
    }
    put_bytes(&mut buf, &msg.body);
    buf.freeze()
}

/// Decodes a message written by [`encode_message`].
pub fn decode_message(data: &[u8]) -> Result<Message, PersistError> {
    let mut r = Reader {
        data,
        what: "message",
    };
    let version = r.u8()?;
    if version != MESSAGE_FORMAT_V1 {
        return Err(r.err(&format!("unknown format version {version}")));
    }
    let message_id = r.string()?;
    let address = r.string()?;
    let body_kind = body_kind_from(r.u8()?);
    let content_type = r.opt()?;
    let correlation_id = r.opt()?;
    let reply_to = r.opt()?;
    let priority = r.u8()?;
    let expiration = r.u64()?;
    let timestamp = r.u64()?;
    let persistent = r.u8()? != 0;
    let message_type = r.opt()?;
    let user_id = r.opt()?;
    let group_id = r.opt()?;
    let group_seq = r.u32()? as i32;
    let count = r.u32()?;
    let mut properties = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let value = match r.u8()? {
            0 => PropertyValue::Bool(r.u8()? != 0),
            1 => PropertyValue::Byte(i8::from_be_bytes(r.array()?)),
            2 => PropertyValue::Short(i16::from_be_bytes(r.array()?)),
            3 => PropertyValue::Int(i32::from_be_bytes(r.array()?)),
            4 => PropertyValue::Long(i64::from_be_bytes(r.array()?)),
            5 => PropertyValue::Float(f32::from_be_bytes(r.array()?)),
            6 => PropertyValue::Double(f64::from_be_bytes(r.array()?)),
            7 => PropertyValue::String(r.string()?),
            8 => PropertyValue::Bytes(Bytes::copy_from_slice(r.bytes()?)),
            other => return Err(r.err(&format!("unknown property type {other}"))),
        };
        properties.insert(name, value);
    }
    let body = Bytes::copy_from_slice(r.bytes()?);
    Ok(Message {
        message_id,
        address,
        body,
        body_kind,
        content_type,
        correlation_id,
        reply_to,
        priority,
        expiration,
        timestamp,
        persistent,
        message_type,
        user_id,
        group_id,
        group_seq,
        properties,
    })
}

/// What kind of durable queue a journal `QueueCreate` describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueMeta {
    /// A point-to-point queue named after its address.
    Anycast,
    /// The store of retained messages (the last retained message of each address).
    Retained,
    /// A durable topic subscription bound to `pattern`.
    DurableSubscription {
        /// Client id that owns the subscription.
        client_id: String,
        /// Subscription name, unique within the client id.
        subscription: String,
        /// Topic pattern the subscription is bound to.
        pattern: String,
        /// Selector text, if any.
        selector: Option<String>,
        /// Whether messages sent by the owning client id are skipped.
        no_local: bool,
        /// Protocol-specific options the engine keeps for the session (e.g. MQTT's QoS).
        tag: Option<String>,
    },
}

/// Encodes queue metadata.
pub fn encode_meta(meta: &QueueMeta) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(META_FORMAT_V1);
    match meta {
        QueueMeta::Anycast => buf.put_u8(0),
        QueueMeta::Retained => buf.put_u8(2),
        QueueMeta::DurableSubscription {
            client_id,
            subscription,
            pattern,
            selector,
            no_local,
            tag,
        } => {
            buf.put_u8(1);
            put_str(&mut buf, client_id);
            put_str(&mut buf, subscription);
            put_str(&mut buf, pattern);
            put_opt(&mut buf, selector);
            buf.put_u8(u8::from(*no_local));
            put_opt(&mut buf, tag);
        }
    }
    buf.freeze()
}

/// Decodes queue metadata written by [`encode_meta`].
pub fn decode_meta(data: &[u8]) -> Result<QueueMeta, PersistError> {
    let mut r = Reader {
        data,
        what: "queue metadata",
    };
    let version = r.u8()?;
    if version != META_FORMAT_V1 {
        return Err(r.err(&format!("unknown format version {version}")));
    }
    match r.u8()? {
        0 => Ok(QueueMeta::Anycast),
        2 => Ok(QueueMeta::Retained),
        1 => Ok(QueueMeta::DurableSubscription {
            client_id: r.string()?,
            subscription: r.string()?,
            pattern: r.string()?,
            selector: r.opt()?,
            no_local: r.u8()? != 0,
            // Absent in metadata written before tags existed.
            tag: if r.data.is_empty() { None } else { r.opt()? },
        }),
        other => Err(r.err(&format!("unknown queue kind {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_every_field() {
        let mut msg = Message {
            message_id: "ID:1".into(),
            address: "a.b".into(),
            body: Bytes::from_static(b"hi\0\xf0\x9f\x98\x80"),
            body_kind: BodyKind::Text,
            content_type: Some("text/plain".into()),
            correlation_id: Some("c".into()),
            reply_to: Some("queue://r".into()),
            priority: 7,
            expiration: 5,
            timestamp: 6,
            persistent: true,
            message_type: Some("t".into()),
            user_id: None,
            group_id: Some("g".into()),
            group_seq: 3,
            properties: BTreeMap::new(),
        };
        for (i, v) in [
            PropertyValue::Bool(true),
            PropertyValue::Byte(-1),
            PropertyValue::Short(-2),
            PropertyValue::Int(-3),
            PropertyValue::Long(-4),
            PropertyValue::Float(1.5),
            PropertyValue::Double(2.5),
            PropertyValue::String("s".into()),
            PropertyValue::Bytes(Bytes::from_static(b"\x00\x01")),
        ]
        .into_iter()
        .enumerate()
        {
            msg.properties.insert(format!("p{i}"), v);
        }
        let encoded = encode_message(&msg);
        assert_eq!(decode_message(&encoded), Ok(msg));
        for cut in 0..encoded.len() {
            assert!(decode_message(&encoded[..cut]).is_err());
        }
    }

    #[test]
    fn meta_round_trips() {
        for meta in [
            QueueMeta::Anycast,
            QueueMeta::Retained,
            QueueMeta::DurableSubscription {
                client_id: "c".into(),
                subscription: "s".into(),
                pattern: "a.>".into(),
                selector: Some("x > 1".into()),
                no_local: true,
                tag: Some("qos=1".into()),
            },
        ] {
            assert_eq!(decode_meta(&encode_meta(&meta)), Ok(meta));
        }
    }
}
