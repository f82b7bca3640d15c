//! The protocol-neutral message.

use bytes::Bytes;
use std::collections::BTreeMap;

/// What the body of a message holds, as JMS distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyKind {
    /// Raw bytes (JMS `BytesMessage`, MQTT payloads, STOMP with `content-length`).
    #[default]
    Bytes,
    /// Text; the bytes are UTF-8 (JMS `TextMessage`).
    Text,
    /// A map of typed entries (JMS `MapMessage`), in the encoding of the origin protocol.
    Map,
    /// A serialized object (JMS `ObjectMessage`), opaque.
    Object,
    /// A stream of typed values (JMS `StreamMessage`), in the encoding of the origin protocol.
    Stream,
}

/// A typed application property value, covering the JMS property types.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// A boolean.
    Bool(bool),
    /// An 8-bit signed integer.
    Byte(i8),
    /// A 16-bit signed integer.
    Short(i16),
    /// A 32-bit signed integer.
    Int(i32),
    /// A 64-bit signed integer.
    Long(i64),
    /// A 32-bit float.
    Float(f32),
    /// A 64-bit float.
    Double(f64),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes.
    Bytes(Bytes),
}

impl PropertyValue {
    /// The value as text, the way STOMP headers and logs show it.
    pub fn to_text(&self) -> String {
        match self {
            PropertyValue::Bool(v) => v.to_string(),
            PropertyValue::Byte(v) => v.to_string(),
            PropertyValue::Short(v) => v.to_string(),
            PropertyValue::Int(v) => v.to_string(),
            PropertyValue::Long(v) => v.to_string(),
            PropertyValue::Float(v) => v.to_string(),
            PropertyValue::Double(v) => v.to_string(),
            PropertyValue::String(v) => v.clone(),
            PropertyValue::Bytes(v) => String::from_utf8_lossy(v).into_owned(),
        }
    }
}

/// A message as the engine sees it, whatever protocol it came in on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Stable id, unique within the gateway (e.g. `ID:gw-...`), shown to clients as their message id.
    pub message_id: String,
    /// The address the producer sent to (canonical form, `.` separated).
    pub address: String,
    /// The body bytes.
    pub body: Bytes,
    /// What the body holds.
    pub body_kind: BodyKind,
    /// MIME content type, if the producer gave one.
    pub content_type: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Reply-to destination, in the producer protocol's destination syntax normalized to canonical
    /// form with a routing prefix (`queue://x` or `topic://x`).
    pub reply_to: Option<String>,
    /// Priority: 0-9 from JMS, STOMP and MQTT (4 is the JMS default); AMQP 0-9-1 publishers may
    /// set up to 255 (0 when they set none, as RabbitMQ ranks it).
    pub priority: u8,
    /// Absolute expiry time in milliseconds since the Unix epoch; 0 means never.
    pub expiration: u64,
    /// Time the message was sent, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Persistent messages are written to the store before the send is confirmed.
    pub persistent: bool,
    /// JMS type.
    pub message_type: Option<String>,
    /// Authenticated user that sent the message.
    pub user_id: Option<String>,
    /// Message group (JMSXGroupID).
    pub group_id: Option<String>,
    /// Sequence within the group (JMSXGroupSeq).
    pub group_seq: i32,
    /// Application properties, kept in a stable order.
    pub properties: BTreeMap<String, PropertyValue>,
}

/// The default JMS priority.
pub const DEFAULT_PRIORITY: u8 = 4;
