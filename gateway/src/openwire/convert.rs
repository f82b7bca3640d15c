//! OpenWire <-> engine mapping: JMS headers and properties, bodies, destinations and message ids,
//! as documented in `docs/mapping.md` (OpenWire section).

use bytes::{Bytes, BytesMut};
use codecs::openwire::{
    self as ow, decode_text_body, encode_text_body, MessageKind, PrimitiveMap, PrimitiveValue,
};
use routes::{BodyKind, Delivery, DestinationKind, Message, PropertyValue, TEMP_PREFIX};
use std::collections::{BTreeMap, HashMap};

/// Deepest nesting accepted in marshalled property maps.
const MAX_PROPERTY_DEPTH: usize = 8;

/// Per-connection names of temporary destinations: the client names them (`ID:host-...:1:1`),
/// the engine gives them its own names.
#[derive(Default)]
pub struct TempNames {
    by_client: HashMap<String, String>,
    by_engine: HashMap<String, String>,
    /// Other connections' temporary destinations this client has been told about by an
    /// advisory (engine names): only those are shown as temporary destinations.
    announced: std::collections::HashSet<String>,
}

impl TempNames {
    /// The engine name of a temporary destination this connection created.
    pub fn engine_name(&self, client_name: &str) -> Option<&String> {
        self.by_client.get(client_name)
    }

    /// Remembers a temporary destination created for this connection.
    pub fn insert(&mut self, client_name: String, engine_name: String) {
        self.by_engine
            .insert(engine_name.clone(), client_name.clone());
        self.by_client.insert(client_name, engine_name);
    }

    /// Forgets a temporary destination; returns its engine name.
    pub fn remove(&mut self, client_name: &str) -> Option<String> {
        let engine = self.by_client.remove(client_name)?;
        self.by_engine.remove(&engine);
        Some(engine)
    }

    fn client_name(&self, engine_name: &str) -> Option<&String> {
        self.by_engine.get(engine_name)
    }

    /// Records that an advisory announced (or withdrew) another connection's temporary
    /// destination to this client.
    pub fn set_announced(&mut self, engine_name: &str, announced: bool) {
        if announced {
            self.announced.insert(engine_name.to_string());
        } else {
            self.announced.remove(engine_name);
        }
    }
}

/// True for ActiveMQ's advisory topics, which the JMS client subscribes to by default.
pub fn is_advisory(destination: &ow::Destination) -> bool {
    destination
        .name()
        .split(',')
        .all(|member| strip_scheme(member).1.starts_with("ActiveMQ.Advisory."))
}

/// Splits an optional `queue://` / `topic://` / `temp-queue://` / `temp-topic://` prefix off one
/// member of a (composite) destination name.
fn strip_scheme(member: &str) -> (Option<DestinationKind>, &str) {
    let member = member.trim();
    for (prefix, kind) in [
        ("queue://", DestinationKind::Queue),
        ("topic://", DestinationKind::Topic),
        ("temp-queue://", DestinationKind::Queue),
        ("temp-topic://", DestinationKind::Topic),
    ] {
        if let Some(rest) = member.strip_prefix(prefix) {
            return (Some(kind), rest);
        }
    }
    (None, member)
}

/// The engine destinations an OpenWire destination names: one, or several for a composite
/// destination (`a,b`, members may carry their own `queue://` or `topic://`). Temporary names this
/// connection created are translated to their engine names.
pub fn engine_destinations(
    destination: &ow::Destination,
    temps: &TempNames,
) -> Result<Vec<routes::Destination>, String> {
    let default_kind = if destination.kind.is_queue() {
        DestinationKind::Queue
    } else {
        DestinationKind::Topic
    };
    let mut out = Vec::new();
    for member in destination.name().split(',') {
        let (kind, name) = strip_scheme(member);
        if name.is_empty() {
            return Err(format!("invalid destination name `{}`", destination.name()));
        }
        let name = temps
            .engine_name(name)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        out.push(routes::Destination {
            kind: kind.unwrap_or(default_kind),
            name,
        });
    }
    Ok(out)
}

/// The OpenWire destination a client of this connection sees for an engine destination. Its own
/// temporary destinations keep the names it gave them; another connection's temporary
/// destination keeps its engine name and is shown as temporary once an advisory announced it to
/// this client. Otherwise (e.g. a STOMP connection's temporary queue) it is shown as a plain queue
/// or topic, as STOMP's `/remote-temp-queue/` does: the JMS client refuses to send to a temporary
/// destination no advisory announced.
pub fn client_destination(destination: &routes::Destination, temps: &TempNames) -> ow::Destination {
    let temp = destination.name.starts_with(TEMP_PREFIX);
    let own = temps.client_name(&destination.name).filter(|_| temp);
    let shown_temp = own.is_some() || (temp && temps.announced.contains(&destination.name));
    let kind = match (destination.kind, shown_temp) {
        (DestinationKind::Queue, false) => ow::DestinationKind::Queue,
        (DestinationKind::Topic, false) => ow::DestinationKind::Topic,
        (DestinationKind::Queue, true) => ow::DestinationKind::TempQueue,
        (DestinationKind::Topic, true) => ow::DestinationKind::TempTopic,
    };
    ow::Destination {
        kind,
        physical_name: Some(own.cloned().unwrap_or_else(|| destination.name.clone())),
    }
}

/// The `queue://` / `topic://` form the engine keeps reply-to destinations in.
pub fn reply_to_uri(destination: &ow::Destination, temps: &TempNames) -> Option<String> {
    let first = engine_destinations(destination, temps)
        .ok()?
        .into_iter()
        .next()?;
    Some(first.to_string())
}

fn property_from_primitive(value: &PrimitiveValue) -> Option<PropertyValue> {
    Some(match value {
        PrimitiveValue::Bool(v) => PropertyValue::Bool(*v),
        PrimitiveValue::Byte(v) => PropertyValue::Byte(*v),
        PrimitiveValue::Short(v) => PropertyValue::Short(*v),
        PrimitiveValue::Int(v) => PropertyValue::Int(*v),
        PrimitiveValue::Long(v) => PropertyValue::Long(*v),
        PrimitiveValue::Float(v) => PropertyValue::Float(*v),
        PrimitiveValue::Double(v) => PropertyValue::Double(*v),
        PrimitiveValue::String(v) => PropertyValue::String(v.clone()),
        PrimitiveValue::Char(c) => PropertyValue::String(String::from_utf16_lossy(&[*c])),
        PrimitiveValue::Bytes(b) => PropertyValue::Bytes(b.clone()),
        PrimitiveValue::Null | PrimitiveValue::Map(_) | PrimitiveValue::List(_) => return None,
    })
}

fn primitive_from_property(value: &PropertyValue) -> PrimitiveValue {
    match value {
        PropertyValue::Bool(v) => PrimitiveValue::Bool(*v),
        PropertyValue::Byte(v) => PrimitiveValue::Byte(*v),
        PropertyValue::Short(v) => PrimitiveValue::Short(*v),
        PropertyValue::Int(v) => PrimitiveValue::Int(*v),
        PropertyValue::Long(v) => PrimitiveValue::Long(*v),
        PropertyValue::Float(v) => PrimitiveValue::Float(*v),
        PropertyValue::Double(v) => PrimitiveValue::Double(*v),
        PropertyValue::String(v) => PrimitiveValue::String(v.clone()),
        PropertyValue::Bytes(v) => PrimitiveValue::Bytes(v.clone()),
    }
}

/// Builds the engine message for a message a JMS producer sent. `reply_to` is already resolved
/// (temporary names translated). The JMSMessageID the client chose is kept as the engine id.
pub fn message_from_client(
    m: &ow::Message,
    reply_to: Option<String>,
    user: Option<&str>,
    max_inflated: usize,
) -> Result<Message, String> {
    let mut content = m.content.clone().unwrap_or_default();
    if m.compressed && !content.is_empty() {
        content = inflate(m.kind, &content, max_inflated)?;
    }
    let (body, body_kind) = match m.kind {
        MessageKind::Text => {
            let text = if content.is_empty() {
                None
            } else {
                decode_text_body(&content)
                    .map_err(|e| format!("malformed TextMessage body: {e}"))?
            };
            (
                Bytes::from(text.unwrap_or_default().into_bytes()),
                BodyKind::Text,
            )
        }
        MessageKind::Bytes | MessageKind::Message => (content, BodyKind::Bytes),
        MessageKind::Map => (content, BodyKind::Map),
        MessageKind::Object => (content, BodyKind::Object),
        MessageKind::Stream => (content, BodyKind::Stream),
    };
    let mut properties = BTreeMap::new();
    if let Some(bytes) = &m.marshalled_properties {
        let map = PrimitiveMap::decode(bytes, MAX_PROPERTY_DEPTH)
            .map_err(|e| format!("malformed message properties: {e}"))?
            .unwrap_or_default();
        // Values the engine has no type for (ActiveMQ's nested maps and lists, null, char) are
        // kept as sent in a hidden property, so a JMS consumer gets them back exactly; other
        // protocols see the char as a one-character string and nothing of the rest.
        let mut as_sent = PrimitiveMap::new();
        for (name, value) in map.entries {
            if matches!(
                value,
                PrimitiveValue::Null
                    | PrimitiveValue::Char(_)
                    | PrimitiveValue::Map(_)
                    | PrimitiveValue::List(_)
            ) {
                as_sent.insert(name.clone(), value.clone());
            }
            if let Some(v) = property_from_primitive(&value) {
                properties.insert(name, v);
            }
        }
        if !as_sent.entries.is_empty() {
            let raw = as_sent
                .to_bytes_utf8()
                .map_err(|e| format!("cannot keep message properties: {e}"))?;
            properties.insert(
                JMS_PROPERTIES_AS_SENT.to_string(),
                PropertyValue::Bytes(raw),
            );
        }
    }
    if m.kind == MessageKind::Message {
        // Keep the JMS class across the engine, so a plain Message is not delivered as bytes.
        properties.insert(
            JMS_MESSAGE_KIND.to_string(),
            PropertyValue::String("message".into()),
        );
    }
    Ok(Message {
        message_id: m
            .message_id
            .as_ref()
            .map(message_id_text)
            .unwrap_or_default(),
        address: String::new(),
        body,
        body_kind,
        content_type: None,
        correlation_id: m.correlation_id.clone(),
        reply_to,
        priority: m.priority.clamp(0, 9) as u8,
        expiration: u64::try_from(m.expiration).unwrap_or(0),
        timestamp: u64::try_from(m.timestamp).unwrap_or(0),
        persistent: m.persistent,
        message_type: m.jms_type.clone(),
        user_id: user.map(str::to_string).or_else(|| m.user_id.clone()),
        group_id: m.group_id.clone(),
        group_seq: m.group_sequence,
        properties,
    })
}

/// The JMSMessageID text of a client's message id, written into one allocation of the right
/// size (`ID:<host>-<port>-<time>-<n>:<conn>:<session>:<producer>:<seq>` is about 50 bytes;
/// `to_string` grows its buffer from nothing, reallocating several times per message).
fn message_id_text(id: &ow::MessageId) -> String {
    use std::fmt::Write;
    if let Some(text) = &id.text_view {
        return text.clone();
    }
    let connection = id
        .producer_id
        .as_ref()
        .and_then(|p| p.connection_id.as_deref())
        .map_or(0, str::len);
    let mut out = String::with_capacity(connection + 64);
    // Writing into a String cannot fail.
    let _ = write!(out, "{id}");
    out
}

/// Inflates a compressed body (`jms.useCompression`): a zlib stream, behind the 4-byte
/// uncompressed length for a `BytesMessage`, as ActiveMQ's client writes them. At most
/// `max_inflated` bytes come out (ActiveMQ's `maxInflatedDataSize` guard).
pub fn inflate(kind: MessageKind, content: &[u8], max_inflated: usize) -> Result<Bytes, String> {
    use std::io::Read;
    // A BytesMessage's body is only the first `length` inflated bytes: the client deflates its
    // whole write buffer, spare capacity included (zeros), and reads back `length` bytes.
    let (stream, length) = if kind == MessageKind::Bytes {
        let (head, rest) = content
            .split_first_chunk::<4>()
            .ok_or("compressed BytesMessage body shorter than its length")?;
        let length = usize::try_from(i32::from_be_bytes(*head))
            .map_err(|_| "compressed BytesMessage with a negative length")?;
        (rest, Some(length))
    } else {
        (content, None)
    };
    let mut out = Vec::new();
    let limit = u64::try_from(max_inflated)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    flate2::read::ZlibDecoder::new(stream)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot inflate the compressed body: {e}"))?;
    if out.len() > max_inflated {
        return Err(format!(
            "compressed body inflates to more than {max_inflated} bytes"
        ));
    }
    if let Some(length) = length {
        if out.len() < length {
            return Err(format!(
                "compressed BytesMessage inflates to {} bytes, fewer than its length {length}",
                out.len()
            ));
        }
        out.truncate(length);
    }
    Ok(Bytes::from(out))
}

/// Internal property that remembers a plain JMS `Message` (no body) across the engine.
const JMS_MESSAGE_KIND: &str = "openwire.kind";

/// Internal property holding the JMS properties the engine cannot type (null, char, nested map
/// or list), marshalled as the client sent them; other protocols do not show `openwire.*`.
pub const JMS_PROPERTIES_AS_SENT: &str = "openwire.properties";

/// The JMSMessageID text split into the producer id and sequence a `MessageId` carries:
/// `ID:host-1-2-3:1:2:3` is producer `ID:host-1-2-3:1:2`, sequence 3 (connection `ID:host-1-2-3:1`,
/// session 2, producer... as ActiveMQ prints them). Ids from other protocols become a producer of
/// their own with sequence 1, so the client's duplicate detection keeps them apart.
fn message_id_for(text: &str) -> ow::MessageId {
    let parsed = (|| {
        let (producer, seq) = text.rsplit_once(':')?;
        let seq = seq.parse::<i64>().ok()?;
        let (rest, value) = producer.rsplit_once(':')?;
        let value = value.parse::<i64>().ok()?;
        let (connection, session) = rest.rsplit_once(':')?;
        let session = session.parse::<i64>().ok()?;
        Some(ow::MessageId {
            text_view: Some(text.to_string()),
            producer_id: Some(ow::ProducerId {
                connection_id: Some(connection.to_string()),
                value,
                session_id: session,
            }),
            producer_sequence_id: seq,
            broker_sequence_id: 0,
        })
    })();
    parsed.unwrap_or_else(|| ow::MessageId {
        text_view: Some(text.to_string()),
        producer_id: Some(ow::ProducerId {
            connection_id: Some(text.to_string()),
            value: 0,
            session_id: 0,
        }),
        producer_sequence_id: 1,
        broker_sequence_id: 0,
    })
}

/// Puts back the property values a JMS producer sent that the engine could not type: a char
/// whose string form is still there unchanged, and null, map and list values nobody has set
/// since. A hidden property that does not decode is ignored (the typed view stands).
fn restore_properties_as_sent(m: &Message, props: &mut PrimitiveMap) {
    let Some(PropertyValue::Bytes(raw)) = m.properties.get(JMS_PROPERTIES_AS_SENT) else {
        return;
    };
    let Ok(Some(as_sent)) = PrimitiveMap::decode(raw, MAX_PROPERTY_DEPTH) else {
        return;
    };
    for (name, value) in as_sent.entries {
        let keep = match (&value, m.properties.get(&name)) {
            (PrimitiveValue::Char(c), Some(PropertyValue::String(s))) => {
                *s == String::from_utf16_lossy(&[*c])
            }
            (PrimitiveValue::Char(_), _) => false,
            (_, current) => current.is_none(),
        };
        if keep {
            props.insert(name, value);
        }
    }
}

/// Builds the message of a `MessageDispatch` for a delivery.
pub fn message_for_delivery(delivery: &Delivery, temps: &TempNames) -> Result<ow::Message, String> {
    message_for_dispatch(
        &delivery.message,
        &delivery.destination,
        delivery.seq,
        delivery.delivery_count,
        temps,
    )
}

/// Builds the message of a `MessageDispatch`: `seq` becomes the broker sequence id the client
/// names in its acks, `delivery_count` (1 = first delivery) the redelivery counter.
pub fn message_for_dispatch(
    m: &Message,
    destination: &routes::Destination,
    seq: u64,
    delivery_count: u32,
    temps: &TempNames,
) -> Result<ow::Message, String> {
    let plain = matches!(m.properties.get(JMS_MESSAGE_KIND), Some(PropertyValue::String(k)) if k == "message");
    let (kind, content) = match m.body_kind {
        BodyKind::Text => {
            let text = String::from_utf8_lossy(&m.body);
            let mut out = BytesMut::new();
            encode_text_body(Some(&text), &mut out).map_err(|e| e.to_string())?;
            (MessageKind::Text, Some(out.freeze()))
        }
        BodyKind::Bytes if plain && m.body.is_empty() => (MessageKind::Message, None),
        BodyKind::Bytes => (MessageKind::Bytes, Some(m.body.clone())),
        BodyKind::Map => (MessageKind::Map, Some(m.body.clone())),
        BodyKind::Object => (MessageKind::Object, Some(m.body.clone())),
        BodyKind::Stream => (MessageKind::Stream, Some(m.body.clone())),
    };
    let mut props = PrimitiveMap::new();
    for (name, value) in &m.properties {
        if name == JMS_MESSAGE_KIND || name == JMS_PROPERTIES_AS_SENT {
            continue;
        }
        props.insert(name.clone(), primitive_from_property(value));
    }
    restore_properties_as_sent(m, &mut props);
    let marshalled_properties = if props.entries.is_empty() {
        None
    } else {
        Some(props.to_bytes_utf8().map_err(|e| e.to_string())?)
    };
    let mut message_id = message_id_for(&m.message_id);
    message_id.broker_sequence_id = i64::try_from(seq).unwrap_or(i64::MAX);
    let reply_to = m
        .reply_to
        .as_deref()
        .and_then(routes::Destination::parse_uri)
        .map(|d| client_destination(&d, temps));
    Ok(ow::Message {
        header: ow::CommandHeader::default(),
        kind,
        producer_id: message_id.producer_id.clone(),
        destination: Some(client_destination(destination, temps)),
        transaction_id: None,
        original_destination: None,
        message_id: Some(message_id),
        original_transaction_id: None,
        group_id: m.group_id.clone(),
        group_sequence: m.group_seq,
        correlation_id: m.correlation_id.clone(),
        persistent: m.persistent,
        expiration: i64::try_from(m.expiration).unwrap_or(i64::MAX),
        // JMS priorities are 0-9; an AMQP 0-9-1 publisher may have set up to 255.
        priority: i8::try_from(m.priority.min(9)).unwrap_or(9),
        reply_to,
        timestamp: i64::try_from(m.timestamp).unwrap_or(0),
        jms_type: m.message_type.clone(),
        content,
        marshalled_properties,
        data_structure: None,
        target_consumer_id: None,
        compressed: false,
        redelivery_counter: i32::try_from(delivery_count.saturating_sub(1)).unwrap_or(i32::MAX),
        broker_path: None,
        arrival: 0,
        user_id: m.user_id.clone(),
        received_by_df_bridge: false,
        droppable: false,
        cluster: None,
        broker_in_time: 0,
        broker_out_time: 0,
        jmsx_group_first_for_consumer: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_split_like_activemq_prints_them() {
        let id = message_id_for("ID:host-1-2-3:1:2:3:4");
        assert_eq!(id.producer_sequence_id, 4);
        let p = id.producer_id.clone().unwrap_or_default();
        assert_eq!(p.connection_id.as_deref(), Some("ID:host-1-2-3:1"));
        assert_eq!((p.session_id, p.value), (2, 3));
        assert_eq!(id.to_string(), "ID:host-1-2-3:1:2:3:4");
        let mut untexted = id.clone();
        untexted.text_view = None;
        assert_eq!(message_id_text(&untexted), "ID:host-1-2-3:1:2:3:4");
        assert_eq!(message_id_text(&id), "ID:host-1-2-3:1:2:3:4");
        let other = message_id_for("ID:gw-abc-17");
        assert_eq!(other.producer_sequence_id, 1);
        assert_eq!(other.to_string(), "ID:gw-abc-17");
    }

    #[test]
    fn char_null_map_and_list_properties_come_back_unless_changed() {
        let mut sent = PrimitiveMap::new();
        sent.insert("c", PrimitiveValue::Char(u16::from(b'x')));
        sent.insert("changed", PrimitiveValue::Char(u16::from(b'y')));
        sent.insert("n", PrimitiveValue::Null);
        let mut nested = PrimitiveMap::new();
        nested.insert("k", PrimitiveValue::Int(1));
        sent.insert("m", PrimitiveValue::Map(nested));
        sent.insert("l", PrimitiveValue::List(vec![PrimitiveValue::Int(1)]));
        sent.insert("i", PrimitiveValue::Int(7));
        let client = ow::Message {
            kind: MessageKind::Text,
            marshalled_properties: sent.to_bytes_utf8().ok(),
            ..ow::Message::default()
        };
        let Ok(mut engine) = message_from_client(&client, None, None, 1024) else {
            panic!("converts");
        };
        assert_eq!(
            engine.properties.get("c"),
            Some(&PropertyValue::String("x".into()))
        );
        assert!(!engine.properties.contains_key("m"));
        engine
            .properties
            .insert("changed".into(), PropertyValue::String("z".into()));
        let temps = TempNames::default();
        let out = message_for_dispatch(&engine, &routes::Destination::queue("q"), 1, 1, &temps);
        let props = out
            .ok()
            .and_then(|m| m.marshalled_properties)
            .and_then(|b| PrimitiveMap::decode(&b, 8).ok().flatten())
            .unwrap_or_default();
        let mut want = sent.clone();
        want.insert("changed", PrimitiveValue::String("z".into()));
        for (name, value) in &want.entries {
            assert_eq!(props.get(name), Some(value), "{name}");
        }
        assert_eq!(props.entries.len(), want.entries.len());
    }

    #[test]
    fn a_compressed_bytes_body_keeps_only_its_declared_length() {
        use std::io::Write;
        // As the client writes it: the length, then its whole write buffer deflated (the body
        // followed by spare zeros).
        let mut deflate =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(b"body\0\0\0\0").unwrap_or_default();
        let mut content = 4i32.to_be_bytes().to_vec();
        content.extend(deflate.finish().unwrap_or_default());
        let body = inflate(MessageKind::Bytes, &content, 1024);
        assert_eq!(body.as_deref().ok(), Some(&b"body"[..]));
        content[..4].copy_from_slice(&9i32.to_be_bytes());
        assert!(inflate(MessageKind::Bytes, &content, 1024).is_err());
        content[..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(inflate(MessageKind::Bytes, &content, 1024).is_err());
        assert!(inflate(MessageKind::Bytes, &content[..3], 1024).is_err());
    }

    #[test]
    fn composite_destinations_split_with_their_own_kinds() {
        let temps = TempNames::default();
        let d = ow::Destination::queue("a,topic://b, c");
        let got = engine_destinations(&d, &temps).unwrap_or_default();
        assert_eq!(
            got,
            vec![
                routes::Destination::queue("a"),
                routes::Destination::topic("b"),
                routes::Destination::queue("c"),
            ]
        );
        assert!(is_advisory(&ow::Destination::topic(
            "ActiveMQ.Advisory.TempQueue,ActiveMQ.Advisory.TempTopic"
        )));
        assert!(!is_advisory(&ow::Destination::topic("orders")));
    }
}
