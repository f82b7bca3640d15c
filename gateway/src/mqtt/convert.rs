//! MQTT <-> engine mapping: topics as ActiveMQ maps them, PUBLISH fields and properties.

use bytes::Bytes;
use codecs::mqtt::{Properties, Publish, QoS};
use routes::{BodyKind, Destination, Message, PropertyValue};

/// Property carrying the QoS an MQTT message was published with, as ActiveMQ names it.
pub const QOS_PROPERTY: &str = "ActiveMQ.MQTT.QoS";

/// Property set on messages published with the retain flag, for Retain As Published
/// subscriptions (MQTT 5).
pub const RETAIN_PROPERTY: &str = "mqtt.retain";

/// Property keeping MQTT 5 user properties exactly as sent (order and repeats), which the
/// message's property map (one value per name) cannot; MQTT subscribers get them back as sent.
pub const USER_PROPERTIES: &str = "mqtt.user-properties";

fn encode_pairs(pairs: &[(String, String)]) -> Bytes {
    let mut out = Vec::new();
    for (name, value) in pairs {
        for part in [name, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    Bytes::from(out)
}

fn decode_pairs(mut data: &[u8]) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some((part, rest)) = rest.split_at_checked(len) else {
            break;
        };
        parts.push(String::from_utf8_lossy(part).into_owned());
        data = rest;
    }
    let mut pairs = Vec::new();
    let mut it = parts.into_iter();
    while let (Some(n), Some(v)) = (it.next(), it.next()) {
        pairs.push((n, v));
    }
    pairs
}

/// Maps an MQTT topic name or filter onto a canonical address or pattern, as ActiveMQ does:
/// levels `/` become `.`, a `.` inside a level becomes `/`, `+` becomes `*`; `#` stays `#`, the
/// engine's zero-or-more wildcard (so `a/#` matches `a`, as MQTT requires).
pub fn topic_to_address(topic: &str) -> String {
    topic
        .split('/')
        .map(|level| match level {
            "+" => "*".to_string(),
            other => other.replace('.', "/"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The MQTT topic name of a canonical address (the inverse of [`topic_to_address`]).
pub fn address_to_topic(address: &str) -> String {
    address
        .split('.')
        .map(|level| match level {
            "*" => "+".to_string(),
            ">" => "#".to_string(),
            other => other.replace('/', "."),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The QoS a message carries for MQTT subscribers: what it was published with over MQTT, else
/// 1 for persistent messages and 0 for the others (ActiveMQ's rule).
pub fn message_qos(message: &Message) -> QoS {
    match message.properties.get(QOS_PROPERTY) {
        Some(PropertyValue::Int(q)) => QoS::from_u8(*q as u8).unwrap_or(QoS::AtLeastOnce),
        _ if message.persistent => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Builds the engine message for a PUBLISH whose topic is already resolved (aliases applied).
pub fn message_from_publish(publish: &Publish, topic: &str, user: Option<&str>) -> Message {
    let p = &publish.properties;
    let mut properties = std::collections::BTreeMap::new();
    properties.insert(
        QOS_PROPERTY.to_string(),
        PropertyValue::Int(i32::from(publish.qos.as_u8())),
    );
    if publish.retain {
        properties.insert(RETAIN_PROPERTY.into(), PropertyValue::Bool(true));
    }
    if !p.user_properties.is_empty() {
        properties.insert(
            USER_PROPERTIES.into(),
            PropertyValue::Bytes(encode_pairs(&p.user_properties)),
        );
    }
    for (name, value) in &p.user_properties {
        // First occurrence wins, as for repeated STOMP headers.
        properties
            .entry(name.clone())
            .or_insert_with(|| PropertyValue::String(value.clone()));
    }
    let correlation_id = p
        .correlation_data
        .as_ref()
        .map(|c| match std::str::from_utf8(c) {
            Ok(text) => text.to_string(),
            Err(_) => {
                properties.insert(
                    "mqtt.correlation-data".into(),
                    PropertyValue::Bytes(c.clone()),
                );
                String::from_utf8_lossy(c).into_owned()
            }
        });
    Message {
        body: publish.payload.clone(),
        body_kind: if p.payload_format_indicator == Some(true) {
            BodyKind::Text
        } else {
            BodyKind::Bytes
        },
        content_type: p.content_type.clone(),
        correlation_id,
        reply_to: p
            .response_topic
            .as_ref()
            .map(|t| Destination::topic(topic_to_address(t)).to_string()),
        priority: routes::message::DEFAULT_PRIORITY,
        expiration: p
            .message_expiry_interval
            .map(|s| now_ms() + u64::from(s) * 1000)
            .unwrap_or(0),
        persistent: publish.qos != QoS::AtMostOnce,
        user_id: user.map(str::to_string),
        properties,
        address: topic_to_address(topic),
        ..Message::default()
    }
}

/// Builds the PUBLISH for a message (packet id, dup, QoS and retain are the session's).
pub fn publish_from_message(message: &Message, v5: bool) -> Publish {
    let mut publish = Publish::new(
        address_to_topic(&message.address),
        Bytes::clone(&message.body),
    );
    if !v5 {
        return publish;
    }
    let mut p = Properties::default();
    if message.body_kind == BodyKind::Text {
        p.payload_format_indicator = Some(true);
    }
    if message.expiration > 0 {
        let left = message.expiration.saturating_sub(now_ms()).div_ceil(1000);
        p.message_expiry_interval = Some(left.clamp(1, u64::from(u32::MAX)) as u32);
    }
    p.content_type = message.content_type.clone();
    p.response_topic = message
        .reply_to
        .as_deref()
        .and_then(Destination::parse_uri)
        .map(|d| address_to_topic(&d.name));
    p.correlation_data = match message.properties.get("mqtt.correlation-data") {
        Some(PropertyValue::Bytes(b)) => Some(b.clone()),
        _ => message
            .correlation_id
            .as_ref()
            .map(|c| Bytes::from(c.clone().into_bytes())),
    };
    let as_sent = match message.properties.get(USER_PROPERTIES) {
        Some(PropertyValue::Bytes(b)) => decode_pairs(b),
        _ => Vec::new(),
    };
    for (name, value) in &message.properties {
        let internal = [
            QOS_PROPERTY,
            "mqtt.correlation-data",
            USER_PROPERTIES,
            RETAIN_PROPERTY,
        ];
        // `amqp.*` properties keep AMQP 0-9-1's exact form of a message (amqp091::convert),
        // `openwire.*` ones the JMS client's (openwire::convert).
        if internal.contains(&name.as_str())
            || name.starts_with("amqp.")
            || name.starts_with("openwire.")
            || as_sent.iter().any(|(n, _)| n == name)
        {
            continue;
        }
        p.user_properties.push((name.clone(), value.to_text()));
    }
    p.user_properties.splice(0..0, as_sent);
    publish.properties = p;
    publish
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_like_activemq() {
        assert_eq!(topic_to_address("sensors/7/temp"), "sensors.7.temp");
        assert_eq!(topic_to_address("a/+/b/#"), "a.*.b.#");
        assert_eq!(topic_to_address("v1.2/x"), "v1/2.x");
        assert_eq!(topic_to_address("/lead"), ".lead");
        assert_eq!(address_to_topic("sensors.7.temp"), "sensors/7/temp");
        assert_eq!(address_to_topic("v1/2.x"), "v1.2/x");
        assert_eq!(address_to_topic("a.>"), "a/#");
        for t in ["a/b", "/x", "a//b", "$SYS/uptime", "x.y/z"] {
            assert_eq!(address_to_topic(&topic_to_address(t)), t);
        }
    }
}
