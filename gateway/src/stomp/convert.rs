//! STOMP <-> engine mapping: ActiveMQ's destination conventions and the header/property mapping
//! documented in `docs/mapping.md`.

use bytes::Bytes;
use codecs::stomp::{StompCommand, StompFrame};
use routes::{
    BodyKind, Delivery, Destination, DestinationKind, Message, PropertyValue, TEMP_PREFIX,
};
use std::collections::HashMap;

/// Headers that are part of the STOMP protocol or mapped to message fields, never carried as
/// application properties.
const RESERVED_HEADERS: &[&str] = &[
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "content-type",
    "persistent",
    "priority",
    "expires",
    "correlation-id",
    "reply-to",
    "type",
    "JMSXGroupID",
    "JMSXGroupSeq",
    "amq-msg-type",
    "message-id",
    "timestamp",
    "subscription",
    "ack",
    "redelivered",
    "original-destination",
    "JMSXUserID",
    "JMSXDeliveryCount",
];

/// Per-connection names of `/temp-queue/x` and `/temp-topic/x` destinations.
#[derive(Default)]
pub struct TempNames {
    /// (kind, client name) -> engine name.
    by_client: HashMap<(DestinationKind, String), String>,
    /// engine name -> client name.
    by_engine: HashMap<String, String>,
}

impl TempNames {
    /// The engine name of an already-created temporary destination.
    pub fn lookup(&self, kind: DestinationKind, client_name: &str) -> Option<&String> {
        self.by_client.get(&(kind, client_name.to_string()))
    }

    /// Remembers a temporary destination created for this connection.
    pub fn insert(&mut self, kind: DestinationKind, client_name: String, engine_name: String) {
        self.by_engine
            .insert(engine_name.clone(), client_name.clone());
        self.by_client.insert((kind, client_name), engine_name);
    }

    fn client_name(&self, engine_name: &str) -> Option<&String> {
        self.by_engine.get(engine_name)
    }
}

/// A STOMP destination header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StompDestination {
    /// A regular queue or topic.
    Plain(Destination),
    /// `/temp-queue/x` or `/temp-topic/x`: a temporary destination of this connection.
    Temporary(DestinationKind, String),
}

/// Parses a destination as ActiveMQ's STOMP transport does.
pub fn parse_destination(text: &str) -> Result<StompDestination, String> {
    let text = text.trim();
    let plain = |kind, name: &str| {
        if name.is_empty() {
            Err(format!("destination `{text}` has no name"))
        } else {
            Ok(StompDestination::Plain(Destination {
                kind,
                name: name.to_string(),
            }))
        }
    };
    if let Some(name) = text.strip_prefix("/queue/") {
        plain(DestinationKind::Queue, name)
    } else if let Some(name) = text.strip_prefix("/topic/") {
        plain(DestinationKind::Topic, name)
    } else if let Some(name) = text.strip_prefix("/remote-temp-queue/") {
        plain(DestinationKind::Queue, name)
    } else if let Some(name) = text.strip_prefix("/remote-temp-topic/") {
        plain(DestinationKind::Topic, name)
    } else if let Some(name) = text.strip_prefix("/temp-queue/") {
        Ok(StompDestination::Temporary(
            DestinationKind::Queue,
            name.to_string(),
        ))
    } else if let Some(name) = text.strip_prefix("/temp-topic/") {
        Ok(StompDestination::Temporary(
            DestinationKind::Topic,
            name.to_string(),
        ))
    } else if let Some(name) = text.strip_prefix("queue://") {
        plain(DestinationKind::Queue, name)
    } else if let Some(name) = text.strip_prefix("topic://") {
        plain(DestinationKind::Topic, name)
    } else if text.starts_with('/') || text.is_empty() {
        Err(format!(
            "Illegal destination name: [{text}] -- STOMP destinations must begin with one of: \
             /queue/ /topic/ /temp-queue/ /temp-topic/"
        ))
    } else {
        // ActiveMQ treats a bare name as a queue.
        plain(DestinationKind::Queue, text)
    }
}

/// Formats an engine destination for a client of this connection.
pub fn format_destination(destination: &Destination, temps: &TempNames) -> String {
    let temp = destination.name.starts_with(TEMP_PREFIX);
    match (destination.kind, temp) {
        (DestinationKind::Queue, false) => format!("/queue/{}", destination.name),
        (DestinationKind::Topic, false) => format!("/topic/{}", destination.name),
        (kind, true) => match (temps.client_name(&destination.name), kind) {
            (Some(own), DestinationKind::Queue) => format!("/temp-queue/{own}"),
            (Some(own), DestinationKind::Topic) => format!("/temp-topic/{own}"),
            (None, DestinationKind::Queue) => format!("/remote-temp-queue/{}", destination.name),
            (None, DestinationKind::Topic) => format!("/remote-temp-topic/{}", destination.name),
        },
    }
}

/// Builds the engine message for a SEND frame. `reply_to` is the reply-to destination already
/// resolved by the session (temporary names created), in `queue://` / `topic://` form.
pub fn message_from_send(
    frame: &StompFrame,
    reply_to: Option<String>,
    user: Option<&str>,
) -> Result<Message, String> {
    let body_kind = match frame.header("amq-msg-type") {
        Some("text") => BodyKind::Text,
        Some("bytes") => BodyKind::Bytes,
        Some(other) => return Err(format!("unsupported amq-msg-type `{other}`")),
        None if frame.header("content-length").is_some() => BodyKind::Bytes,
        None => BodyKind::Text,
    };
    let priority = match frame.header("priority") {
        None => routes::message::DEFAULT_PRIORITY,
        Some(p) => p
            .trim()
            .parse::<i64>()
            .map(|p| p.clamp(0, 9) as u8)
            .map_err(|_| format!("invalid priority `{p}`"))?,
    };
    let expiration = match frame.header("expires") {
        None => 0,
        Some(e) => e
            .trim()
            .parse::<i64>()
            .map(|e| e.max(0) as u64)
            .map_err(|_| format!("invalid expires `{e}`"))?,
    };
    let group_seq = match frame.header("JMSXGroupSeq") {
        None => 0,
        Some(s) => s
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("invalid JMSXGroupSeq `{s}`"))?,
    };
    let mut properties = std::collections::BTreeMap::new();
    for (name, value) in &frame.headers {
        if RESERVED_HEADERS.contains(&name.as_str()) || properties.contains_key(name) {
            continue;
        }
        properties.insert(name.clone(), PropertyValue::String(value.clone()));
    }
    Ok(Message {
        message_id: String::new(),
        address: String::new(),
        body: frame.body.clone(),
        body_kind,
        content_type: frame.header("content-type").map(str::to_string),
        correlation_id: frame.header("correlation-id").map(str::to_string),
        reply_to,
        priority,
        expiration,
        // The engine stamps the send time.
        timestamp: 0,
        persistent: frame.header("persistent") == Some("true"),
        message_type: frame.header("type").map(str::to_string),
        user_id: user.map(str::to_string),
        group_id: frame.header("JMSXGroupID").map(str::to_string),
        group_seq,
        properties,
    })
}

/// Builds the MESSAGE frame for a delivery.
pub fn message_frame(
    delivery: &Delivery,
    subscription: &str,
    ack_id: Option<&str>,
    subscribed_to: &Destination,
    temps: &TempNames,
) -> StompFrame {
    let m = &delivery.message;
    let destination = format_destination(&delivery.destination, temps);
    let original = match m.properties.get("originalDestination") {
        Some(PropertyValue::String(orig)) => Some(orig.clone()),
        _ if subscribed_to != &delivery.destination => Some(destination.clone()),
        _ => None,
    };
    let mut frame = StompFrame::new(StompCommand::Message);
    // Room for every header at once (the standard ones below and the properties).
    frame.headers.reserve(16 + m.properties.len());
    frame.push_header("subscription", subscription);
    frame.push_header("message-id", m.message_id.clone());
    frame.push_header("destination", destination);
    if let Some(ack) = ack_id {
        frame.push_header("ack", ack);
    }
    if let Some(original) = original {
        frame.push_header("original-destination", original);
    }
    if let Some(ct) = &m.content_type {
        frame.push_header("content-type", ct.clone());
    }
    if m.persistent {
        frame.push_header("persistent", "true");
    }
    // 0-9 as ActiveMQ's STOMP shows JMS priorities (an AMQP 0-9-1 publisher may set up to 255).
    frame.push_header("priority", m.priority.min(9).to_string());
    frame.push_header("expires", m.expiration.to_string());
    frame.push_header("timestamp", m.timestamp.to_string());
    if delivery.redelivered {
        frame.push_header("redelivered", "true");
    }
    if let Some(c) = &m.correlation_id {
        frame.push_header("correlation-id", c.clone());
    }
    if let Some(r) = &m.reply_to {
        let shown = Destination::parse_uri(r)
            .map(|d| format_destination(&d, temps))
            .unwrap_or_else(|| r.clone());
        frame.push_header("reply-to", shown);
    }
    if let Some(t) = &m.message_type {
        frame.push_header("type", t.clone());
    }
    if let Some(g) = &m.group_id {
        frame.push_header("JMSXGroupID", g.clone());
        frame.push_header("JMSXGroupSeq", m.group_seq.to_string());
    }
    if let Some(u) = &m.user_id {
        frame.push_header("JMSXUserID", u.clone());
    }
    for (name, value) in &m.properties {
        // `mqtt.*` properties keep MQTT's own form of a message (e.g. user properties in order);
        // their content also reaches STOMP as ordinary properties.
        // `amqp.*` ones likewise keep AMQP 0-9-1's exact properties (see amqp091::convert), and
        // `openwire.*` ones the JMS client's (see openwire::convert).
        if name == "originalDestination"
            || name.starts_with("mqtt.")
            || name.starts_with("amqp.")
            || name.starts_with("openwire.")
        {
            continue;
        }
        frame.push_header(name.clone(), value.to_text());
    }
    // As ActiveMQ: bytes messages carry content-length, text messages do not (unless the text
    // holds a NUL, which only a length can carry).
    let needs_length = m.body_kind != BodyKind::Text || m.body.contains(&0);
    if needs_length {
        frame.push_header("content-length", m.body.len().to_string());
    }
    frame.with_body(Bytes::clone(&m.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_activemq_conventions() {
        assert_eq!(
            parse_destination("/queue/a.b"),
            Ok(StompDestination::Plain(Destination::queue("a.b")))
        );
        assert_eq!(
            parse_destination("/topic/x"),
            Ok(StompDestination::Plain(Destination::topic("x")))
        );
        assert_eq!(
            parse_destination("/temp-queue/r"),
            Ok(StompDestination::Temporary(
                DestinationKind::Queue,
                "r".into()
            ))
        );
        assert_eq!(
            parse_destination("bare"),
            Ok(StompDestination::Plain(Destination::queue("bare")))
        );
        assert!(parse_destination("/nope/x").is_err());
        assert!(parse_destination("/queue/").is_err());
    }

    #[test]
    fn custom_headers_become_properties_and_back() {
        let frame = StompFrame::new(StompCommand::Send)
            .with_header("destination", "/queue/q")
            .with_header("color", "red")
            .with_header("color", "blue")
            .with_header("persistent", "true")
            .with_header("priority", "7");
        let m = message_from_send(&frame, None, None).expect("valid");
        assert_eq!(
            m.properties.get("color"),
            Some(&PropertyValue::String("red".into()))
        );
        assert!(m.persistent);
        assert_eq!(m.priority, 7);
        assert_eq!(m.body_kind, BodyKind::Text);
    }
}
