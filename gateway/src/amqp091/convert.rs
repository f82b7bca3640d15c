//! AMQP 0-9-1 <-> engine mapping: the 14 `basic` properties, the headers table, exchanges and
//! routing keys (the table is in `docs/mapping.md`, AMQP 0-9-1 section).
//!
//! A message published over AMQP keeps its properties exactly as sent (encoded, in the hidden
//! [`RAW_PROPERTIES`] property) beside the normalized view, so an AMQP consumer gets them back
//! untouched, field types of the headers table included; consumers of other protocols see the
//! normalized fields and the headers as typed properties.

use bytes::Bytes;
use codecs::amqp091::{
    decode_header_frame, Amqp091Limits, BasicProperties, ContentHeader, Decimal, FieldTable,
    FieldValue, Frame, ShortStr,
};
use routes::{BodyKind, Destination, DestinationKind, Message, PropertyValue};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Hidden property: the `basic` properties as the publisher sent them, encoded as a content
/// header frame (decoded with the codec's own, fuzzed, decoder).
pub const RAW_PROPERTIES: &str = "amqp.properties";
/// Hidden property: the exchange the message was published to.
pub const EXCHANGE_PROPERTY: &str = "amqp.exchange";
/// Property carrying `content-encoding` (as RabbitMQ's STOMP adapter names it).
pub const CONTENT_ENCODING: &str = "content-encoding";
/// Property carrying `app-id`.
pub const APP_ID: &str = "app-id";
/// Property carrying `cluster-id`.
pub const CLUSTER_ID: &str = "cluster-id";
/// Property carrying the publisher's `message-id` (the engine keeps its own unique id).
pub const MESSAGE_ID: &str = "amqp-message-id";

/// Properties that are mapped onto `basic` properties, not into the headers table.
const MAPPED: &[&str] = &[CONTENT_ENCODING, APP_ID, CLUSTER_ID, MESSAGE_ID];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn text(s: &ShortStr) -> String {
    s.to_string_lossy().into_owned()
}

fn short(s: &str) -> Option<ShortStr> {
    // A value longer than a short string can hold is cut at a character boundary.
    let mut end = s.len().min(ShortStr::MAX_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    ShortStr::try_from(s.get(..end).unwrap_or_default()).ok()
}

/// Why a publish's properties are refused (the channel is closed with 406, as RabbitMQ does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyError {
    /// `expiration` is not a non-negative integer of milliseconds.
    InvalidExpiration(String),
}

/// Parses `expiration`: milliseconds as decimal digits.
pub fn parse_expiration(value: &ShortStr) -> Result<u64, PropertyError> {
    let s = text(value);
    s.parse::<u64>()
        .map_err(|_| PropertyError::InvalidExpiration(s.clone()))
}

/// A headers-table value as a typed property (lossless where the property types allow; the
/// raw properties keep the exact type for AMQP consumers).
pub fn property_from_field(value: &FieldValue) -> Option<PropertyValue> {
    Some(match value {
        FieldValue::Bool(v) => PropertyValue::Bool(*v),
        FieldValue::I8(v) => PropertyValue::Byte(*v),
        FieldValue::U8(v) => PropertyValue::Short(i16::from(*v)),
        FieldValue::I16(v) => PropertyValue::Short(*v),
        FieldValue::U16(v) => PropertyValue::Int(i32::from(*v)),
        FieldValue::I32(v) => PropertyValue::Int(*v),
        FieldValue::U32(v) => PropertyValue::Long(i64::from(*v)),
        FieldValue::I64(v) => PropertyValue::Long(*v),
        FieldValue::F32(v) => PropertyValue::Float(*v),
        FieldValue::F64(v) => PropertyValue::Double(*v),
        FieldValue::Decimal(Decimal { scale, value }) => {
            PropertyValue::String(decimal_text(*scale, *value))
        }
        FieldValue::LongString(b) => match std::str::from_utf8(b) {
            Ok(s) => PropertyValue::String(s.to_string()),
            Err(_) => PropertyValue::Bytes(b.clone()),
        },
        FieldValue::ByteArray(b) => PropertyValue::Bytes(b.clone()),
        FieldValue::Timestamp(v) => PropertyValue::Long(i64::try_from(*v).unwrap_or(i64::MAX)),
        FieldValue::Array(_) | FieldValue::Table(_) => PropertyValue::String(format!("{value:?}")),
        FieldValue::Void => return None,
    })
}

fn decimal_text(scale: u8, value: u32) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

/// A typed property as a headers-table value.
pub fn field_from_property(value: &PropertyValue) -> FieldValue {
    match value {
        PropertyValue::Bool(v) => FieldValue::Bool(*v),
        PropertyValue::Byte(v) => FieldValue::I8(*v),
        PropertyValue::Short(v) => FieldValue::I16(*v),
        PropertyValue::Int(v) => FieldValue::I32(*v),
        PropertyValue::Long(v) => FieldValue::I64(*v),
        PropertyValue::Float(v) => FieldValue::F32(*v),
        PropertyValue::Double(v) => FieldValue::F64(*v),
        PropertyValue::String(v) => FieldValue::LongString(Bytes::from(v.clone().into_bytes())),
        PropertyValue::Bytes(v) => FieldValue::ByteArray(v.clone()),
    }
}

/// The headers table as typed properties (void values and over-long names are skipped).
pub fn properties_from_table(table: &FieldTable) -> BTreeMap<String, PropertyValue> {
    let mut out = BTreeMap::new();
    for (name, value) in table.iter() {
        if let Some(v) = property_from_field(value) {
            out.entry(text(name)).or_insert(v);
        }
    }
    out
}

fn encode_raw(props: &BasicProperties) -> Option<Bytes> {
    Frame::header(1, ContentHeader::new(0, props.clone()))
        .to_bytes()
        .ok()
}

/// The properties kept by [`encode_raw`], decoded in place (no copy of the frame; run for
/// every delivery of the message).
fn decode_raw(raw: &Bytes) -> Option<BasicProperties> {
    let limits = Amqp091Limits {
        frame_max: 0,
        ..Amqp091Limits::default()
    };
    match decode_header_frame(raw, &limits) {
        Ok(Some(h)) => Some(h.properties),
        _ => None,
    }
}

/// The engine message for a `basic.publish` to `exchange` (the engine sets the address to the
/// routing key). `user` is the authenticated user.
pub fn message_from_publish(
    exchange: &str,
    props: &BasicProperties,
    body: Bytes,
    user: &str,
) -> Result<Message, PropertyError> {
    let mut properties = props
        .headers
        .as_ref()
        .map(properties_from_table)
        .unwrap_or_default();
    let expiration = match &props.expiration {
        Some(e) => now_ms().saturating_add(parse_expiration(e)?.max(1)),
        None => 0,
    };
    for (name, value) in [
        (CONTENT_ENCODING, &props.content_encoding),
        (APP_ID, &props.app_id),
        (CLUSTER_ID, &props.cluster_id),
        (MESSAGE_ID, &props.message_id),
    ] {
        if let Some(v) = value {
            properties.insert(name.to_string(), PropertyValue::String(text(v)));
        }
    }
    if let Some(raw) = encode_raw(props) {
        properties.insert(RAW_PROPERTIES.to_string(), PropertyValue::Bytes(raw));
    }
    properties.insert(
        EXCHANGE_PROPERTY.to_string(),
        PropertyValue::String(exchange.to_string()),
    );
    let body_kind = match props.content_type.as_ref().map(text) {
        Some(ct) if ct.starts_with("text/") => BodyKind::Text,
        _ => BodyKind::Bytes,
    };
    Ok(Message {
        body,
        body_kind,
        content_type: props.content_type.as_ref().map(text),
        correlation_id: props.correlation_id.as_ref().map(text),
        reply_to: props
            .reply_to
            .as_ref()
            .map(|r| Destination::queue(text(r)).to_string()),
        // As sent (0-255): an `x-max-priority` queue ranks by it. Absent is 0, not the JMS
        // default 4: RabbitMQ orders a message without a priority as the lowest.
        priority: props.priority.unwrap_or(0),
        expiration,
        timestamp: props.timestamp.map(|t| t.saturating_mul(1000)).unwrap_or(0),
        persistent: props.delivery_mode == Some(2),
        message_type: props.message_type.as_ref().map(text),
        user_id: props
            .user_id
            .as_ref()
            .map(text)
            .or_else(|| Some(user.to_string())),
        properties,
        ..Message::default()
    })
}

/// The exchange and routing key a message is delivered with: the exchange it was published to
/// over AMQP; otherwise `""` for a message sent to the queue itself (STOMP `/queue/x`) and
/// `amq.topic` for one sent to a topic address that reached a bound queue.
/// Borrowed from the message: a delivery allocates no string for them.
pub fn exchange_and_key<'m>(message: &'m Message, destination: &Destination) -> (&'m str, &'m str) {
    let exchange = match message.properties.get(EXCHANGE_PROPERTY) {
        Some(PropertyValue::String(e)) => e.as_str(),
        _ => match destination.kind {
            DestinationKind::Queue if destination.name == message.address => "",
            _ => routes::exchange::TOPIC_EXCHANGE,
        },
    };
    (exchange, message.address.as_str())
}

/// The `x-death` header of a dead-lettered message (RabbitMQ 3.10's form): an array of tables,
/// most recent first, each with `count`, `exchange`, `queue`, `reason`, `routing-keys` and
/// `time`, keys in order.
pub fn x_death(message: &Message) -> Option<FieldValue> {
    let history = routes::death::history(message);
    if history.is_empty() {
        return None;
    }
    let long = |s: &str| FieldValue::LongString(Bytes::from(s.to_string()));
    let entries = history
        .iter()
        .map(|d| {
            let mut t = FieldTable::new();
            t.push(
                ShortStr::from_static("count"),
                FieldValue::I64(i64::try_from(d.count).unwrap_or(i64::MAX)),
            );
            t.push(ShortStr::from_static("exchange"), long(&d.exchange));
            t.push(ShortStr::from_static("queue"), long(&d.queue));
            t.push(ShortStr::from_static("reason"), long(&d.reason));
            t.push(
                ShortStr::from_static("routing-keys"),
                FieldValue::Array(d.routing_keys.iter().map(|k| long(k)).collect()),
            );
            t.push(
                ShortStr::from_static("time"),
                FieldValue::Timestamp(d.time_s),
            );
            FieldValue::Table(t)
        })
        .collect();
    Some(FieldValue::Array(entries))
}

/// The `basic` properties a consumer gets: the publisher's own when the message came over AMQP
/// (with any property the broker added since, e.g. dead-letter causes, in the headers),
/// otherwise built from the normalized fields.
pub fn properties_for_delivery(message: &Message) -> BasicProperties {
    if let Some(PropertyValue::Bytes(raw)) = message.properties.get(RAW_PROPERTIES) {
        if let Some(mut props) = decode_raw(raw) {
            let raw_headers = props.headers.clone().unwrap_or_default();
            let derived = props
                .headers
                .as_ref()
                .map(properties_from_table)
                .unwrap_or_default();
            let mut headers = raw_headers;
            let mut added = false;
            for (name, value) in &message.properties {
                if name.starts_with("amqp.")
                    || MAPPED.contains(&name.as_str())
                    || derived.contains_key(name)
                    || headers.get(name).is_some()
                {
                    continue;
                }
                if let Some(n) = short(name) {
                    headers.push(n, field_from_property(value));
                    added = true;
                }
            }
            if let Some(x_death) = x_death(message) {
                headers.insert(ShortStr::from_static("x-death"), x_death);
                added = true;
            }
            if added {
                props.headers = Some(headers);
            }
            return props;
        }
    }
    let mut headers = FieldTable::new();
    for (name, value) in &message.properties {
        // `openwire.*` ones are the JMS client's internal forms (openwire::convert).
        if name.starts_with("amqp.")
            || name.starts_with("mqtt.")
            || name.starts_with("openwire.")
            || MAPPED.contains(&name.as_str())
        {
            continue;
        }
        if let Some(n) = short(name) {
            headers.push(n, field_from_property(value));
        }
    }
    if let Some(x_death) = x_death(message) {
        headers.insert(ShortStr::from_static("x-death"), x_death);
    }
    let get = |name: &str| match message.properties.get(name) {
        Some(v) => short(&v.to_text()),
        None => None,
    };
    let expiration = (message.expiration > 0).then(|| {
        let left = message.expiration.saturating_sub(now_ms()).max(1);
        short(&left.to_string())
    });
    BasicProperties {
        content_type: message.content_type.as_deref().and_then(short),
        content_encoding: get(CONTENT_ENCODING),
        headers: (!headers.is_empty()).then_some(headers),
        delivery_mode: Some(if message.persistent { 2 } else { 1 }),
        priority: Some(message.priority),
        correlation_id: message.correlation_id.as_deref().and_then(short),
        reply_to: message
            .reply_to
            .as_deref()
            .map(|r| {
                Destination::parse_uri(r)
                    .map(|d| d.name)
                    .unwrap_or_else(|| r.into())
            })
            .as_deref()
            .and_then(short),
        expiration: expiration.flatten(),
        message_id: get(MESSAGE_ID).or_else(|| short(&message.message_id)),
        timestamp: (message.timestamp > 0).then_some(message.timestamp / 1000),
        message_type: message.message_type.as_deref().and_then(short),
        user_id: message.user_id.as_deref().and_then(short),
        app_id: get(APP_ID),
        cluster_id: get(CLUSTER_ID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<ShortStr> {
        ShortStr::try_from(v).ok()
    }

    fn all_properties() -> BasicProperties {
        BasicProperties {
            content_type: s("application/json"),
            content_encoding: s("gzip"),
            headers: Some(
                FieldTable::new()
                    .with("u8", FieldValue::U8(7))
                    .with("ts", FieldValue::Timestamp(1_700_000_000))
                    .with(
                        "dec",
                        FieldValue::Decimal(Decimal {
                            scale: 2,
                            value: 1234,
                        }),
                    )
                    .with("s", "text"),
            ),
            delivery_mode: Some(2),
            priority: Some(5),
            correlation_id: s("corr"),
            reply_to: s("replies"),
            expiration: s("60000"),
            message_id: s("m-1"),
            timestamp: Some(1_700_000_000),
            message_type: s("kind"),
            user_id: s("guest"),
            app_id: s("app"),
            cluster_id: s("cluster"),
        }
    }

    #[test]
    fn amqp_to_amqp_keeps_every_property_exactly() {
        let props = all_properties();
        let m =
            message_from_publish("amq.direct", &props, Bytes::from_static(b"x"), "guest").unwrap();
        assert_eq!(properties_for_delivery(&m), props);
        assert!(m.persistent);
        assert_eq!(m.priority, 5);
        assert_eq!(
            m.properties.get("s"),
            Some(&PropertyValue::String("text".into()))
        );
        assert_eq!(
            m.properties.get("dec"),
            Some(&PropertyValue::String("12.34".into()))
        );
    }

    #[test]
    fn foreign_messages_get_built_properties() {
        let mut m = Message {
            content_type: Some("text/plain".into()),
            persistent: true,
            priority: 4,
            reply_to: Some("queue://back".into()),
            ..Message::default()
        };
        m.properties.insert("n".into(), PropertyValue::Int(3));
        let p = properties_for_delivery(&m);
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.reply_to, s("back"));
        assert_eq!(p.headers.unwrap().get("n"), Some(&FieldValue::I32(3)));
    }

    #[test]
    fn expiration_must_be_digits() {
        assert!(parse_expiration(&ShortStr::from_static("abc")).is_err());
        assert_eq!(parse_expiration(&ShortStr::from_static("100")), Ok(100));
    }
}
