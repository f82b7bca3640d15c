//! PUBLISH and its acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP).

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{read_properties, PropertyContext};
use super::wire::{put_str, Reader};
use super::{MqttDecodeError, MqttEncodeError, MqttVersion, PacketType, Properties, QoS};

/// PUBLISH: an application message, either direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publish {
    /// DUP: this may be a re-delivery. Never set with QoS 0.
    pub dup: bool,
    /// The delivery QoS.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// The topic name: no wildcards; empty only in 5.0 with a topic alias.
    pub topic: String,
    /// The packet identifier: non-zero for QoS 1 and 2, 0 for QoS 0 (where the
    /// wire has no such field).
    pub packet_id: u16,
    /// 5.0 PUBLISH properties.
    pub properties: Properties,
    /// The application message, a slice of the receive buffer when decoded.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            ..Publish::default()
        }
    }

    /// Fails with [`MqttDecodeError::PayloadFormatInvalid`] (reason code
    /// 0x99, for PUBACK/PUBREC or DISCONNECT) if the Payload Format Indicator
    /// says UTF-8 and the payload is not. The decoder leaves this check to the
    /// receiver, as the specification allows.
    pub fn check_payload_format(&self) -> Result<(), MqttDecodeError> {
        check_payload_format(&self.properties, &self.payload)
    }

    pub(crate) fn read(
        r: &mut Reader,
        version: MqttVersion,
        flags: u8,
    ) -> Result<Self, MqttDecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(MqttDecodeError::InvalidQoS {
            what: "PUBLISH QoS",
        })?;
        let topic = r.string("topic name")?;
        if !topic.is_empty() {
            // Before reading on: whether an empty name is allowed needs the properties.
            check_topic_name(&topic)?;
        }
        let packet_id = match qos {
            QoS::AtMostOnce => 0,
            _ => read_packet_id(r)?,
        };
        let properties = if version == MqttVersion::V5 {
            read_properties(r, PropertyContext::Publish)?
        } else {
            Properties::default()
        };
        check_publish_topic(&topic, version, &properties)?;
        Ok(Publish {
            dup: flags & 0x08 != 0,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    /// Writes the variable header (not the payload); returns the flags.
    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(MqttDecodeError::DupWithQoS0.into());
        }
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, 0) => {}
            (QoS::AtMostOnce, packet_id) => {
                return Err(MqttEncodeError::PacketIdWithQoS0 { packet_id })
            }
            (_, 0) => {
                return Err(MqttDecodeError::PacketIdZero {
                    packet_type: PacketType::Publish,
                }
                .into())
            }
            _ => {}
        }
        if v < MqttVersion::V5 && !self.properties.is_empty() {
            return Err(MqttEncodeError::NotInVersion {
                packet_type: PacketType::Publish,
                version: v,
                what: "properties",
            });
        }
        check_publish_topic(&self.topic, v, &self.properties)?;
        put_str(body, &self.topic, "topic name")?;
        if self.qos != QoS::AtMostOnce {
            body.put_u16(self.packet_id);
        }
        if v == MqttVersion::V5 {
            self.properties
                .write(PropertyContext::Publish, PacketType::Publish, body)?;
        }
        Ok((u8::from(self.dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain))
    }
}

/// Reads a packet identifier and rejects 0.
pub(crate) fn read_packet_id(r: &mut Reader) -> Result<u16, MqttDecodeError> {
    match r.u16("packet identifier")? {
        0 => Err(MqttDecodeError::PacketIdZero {
            packet_type: r.packet_type(),
        }),
        id => Ok(id),
    }
}

/// Writes a packet identifier, rejecting 0.
pub(crate) fn put_packet_id(
    body: &mut BytesMut,
    packet_id: u16,
    packet_type: PacketType,
) -> Result<(), MqttEncodeError> {
    if packet_id == 0 {
        return Err(MqttDecodeError::PacketIdZero { packet_type }.into());
    }
    body.put_u16(packet_id);
    Ok(())
}

/// A topic name (PUBLISH or will) must be non-empty and wildcard-free.
pub(crate) fn check_topic_name(topic: &str) -> Result<(), MqttDecodeError> {
    if topic.contains(['+', '#']) {
        return Err(MqttDecodeError::InvalidTopicName {
            reason: "contains a wildcard",
        });
    }
    if topic.is_empty() {
        return Err(MqttDecodeError::InvalidTopicName { reason: "is empty" });
    }
    Ok(())
}

/// A 5.0 PUBLISH may leave the topic empty when it carries a topic alias.
fn check_publish_topic(
    topic: &str,
    version: MqttVersion,
    properties: &Properties,
) -> Result<(), MqttDecodeError> {
    if topic.is_empty() && version == MqttVersion::V5 {
        return match properties.topic_alias {
            Some(_) => Ok(()),
            None => Err(MqttDecodeError::TopicNameMissing),
        };
    }
    check_topic_name(topic)
}

pub(crate) fn check_payload_format(
    properties: &Properties,
    payload: &[u8],
) -> Result<(), MqttDecodeError> {
    if properties.payload_format_indicator == Some(true) && std::str::from_utf8(payload).is_err() {
        return Err(MqttDecodeError::PayloadFormatInvalid);
    }
    Ok(())
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (which one is the [`MqttPacket`](super::MqttPacket)
/// variant): acknowledges a packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    /// The packet identifier acknowledged (non-zero).
    pub packet_id: u16,
    /// 5.0 reason code; always 0 (success) before 5.0.
    pub reason_code: u8,
    /// 5.0 properties (reason string, user properties).
    pub properties: Properties,
}

impl PubResponse {
    /// A successful acknowledgement of `packet_id`.
    pub fn new(packet_id: u16) -> Self {
        PubResponse {
            packet_id,
            reason_code: 0,
            properties: Properties::default(),
        }
    }

    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let packet_id = read_packet_id(r)?;
        let mut ack = PubResponse::new(packet_id);
        if version == MqttVersion::V5 && r.remaining() > 0 {
            ack.reason_code = r.u8("reason code")?;
            if r.remaining() > 0 {
                ack.properties = read_properties(r, PropertyContext::PubResponse)?;
            }
        }
        Ok(ack)
    }

    /// Writes the short form (no reason code / no properties) when it can.
    pub(crate) fn write(
        &self,
        v: MqttVersion,
        packet_type: PacketType,
        body: &mut BytesMut,
    ) -> Result<(), MqttEncodeError> {
        put_packet_id(body, self.packet_id, packet_type)?;
        write_reason_and_properties(
            self.reason_code,
            &self.properties,
            v,
            packet_type,
            PropertyContext::PubResponse,
            body,
        )
    }
}

/// The 5.0 tail shared by the acknowledgements, DISCONNECT and AUTH: nothing
/// for success without properties, the reason code alone without properties,
/// else both. Before 5.0 only the empty tail exists.
pub(crate) fn write_reason_and_properties(
    reason_code: u8,
    properties: &Properties,
    v: MqttVersion,
    packet_type: PacketType,
    ctx: PropertyContext,
    body: &mut BytesMut,
) -> Result<(), MqttEncodeError> {
    if v < MqttVersion::V5 {
        let what = if reason_code != 0 {
            "a reason code"
        } else if !properties.is_empty() {
            "properties"
        } else {
            return Ok(());
        };
        return Err(MqttEncodeError::NotInVersion {
            packet_type,
            version: v,
            what,
        });
    }
    if properties.is_empty() {
        if reason_code != 0 {
            body.put_u8(reason_code);
        }
        return Ok(());
    }
    body.put_u8(reason_code);
    properties.write(ctx, packet_type, body)
}
