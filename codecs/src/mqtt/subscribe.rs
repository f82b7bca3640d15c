//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use bytes::{BufMut, BytesMut};

use super::properties::{read_properties, PropertyContext};
use super::publish::{put_packet_id, read_packet_id};
use super::wire::{put_str, Reader};
use super::{MqttDecodeError, MqttEncodeError, MqttVersion, PacketType, Properties, QoS};

/// 5.0 Retain Handling: whether retained messages are sent on subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe (the only behaviour before 5.0).
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist yet.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE topic filter. Before 5.0 only `qos` exists
/// and the other fields must hold their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// The maximum QoS to deliver with.
    pub qos: QoS,
    /// 5.0 No Local: do not deliver this connection's own messages. Not
    /// allowed on shared subscriptions.
    pub no_local: bool,
    /// 5.0 Retain As Published: keep the RETAIN flag as the publisher set it.
    pub retain_as_published: bool,
    /// 5.0 Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    fn from_byte(options: u8, version: MqttVersion, filter: &str) -> Result<Self, MqttDecodeError> {
        let reserved = if version == MqttVersion::V5 {
            0xC0
        } else {
            0xFC
        };
        if options & reserved != 0 {
            return Err(MqttDecodeError::InvalidSubscriptionOptions { options });
        }
        let qos = QoS::from_u8(options & 0x03).ok_or(MqttDecodeError::InvalidQoS {
            what: "subscription QoS",
        })?;
        let retain_handling = match (options >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(MqttDecodeError::InvalidRetainHandling),
        };
        let opts = SubscriptionOptions {
            qos,
            no_local: options & 0x04 != 0,
            retain_as_published: options & 0x08 != 0,
            retain_handling,
        };
        opts.check_shared(filter)?;
        Ok(opts)
    }

    fn check_shared(&self, filter: &str) -> Result<(), MqttDecodeError> {
        if self.no_local && filter.starts_with("$share/") {
            return Err(MqttDecodeError::NoLocalOnSharedSubscription {
                filter: filter.to_owned(),
            });
        }
        Ok(())
    }

    fn encode_byte(self, v: MqttVersion, filter: &str) -> Result<u8, MqttEncodeError> {
        let v5_only = self.no_local
            || self.retain_as_published
            || self.retain_handling != RetainHandling::SendAtSubscribe;
        if v < MqttVersion::V5 && v5_only {
            return Err(MqttEncodeError::NotInVersion {
                packet_type: PacketType::Subscribe,
                version: v,
                what: "subscription options other than QoS",
            });
        }
        self.check_shared(filter)?;
        Ok(self.qos.as_u8()
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4))
    }
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The topic filter (not empty; wildcard syntax is not checked, see
    /// [`valid_topic_filter`](super::valid_topic_filter)).
    pub filter: String,
    /// Its subscription options.
    pub options: SubscriptionOptions,
}

impl SubscribeFilter {
    /// A filter with default options at `qos`.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Self {
        SubscribeFilter {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }
    }
}

/// SUBSCRIBE: a client subscribes to one or more topic filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// 5.0 properties (at most one subscription identifier, user properties).
    pub properties: Properties,
    /// The topic filters, at least one.
    pub filters: Vec<SubscribeFilter>,
}

impl Subscribe {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version == MqttVersion::V5 {
            read_properties(r, PropertyContext::Subscribe)?
        } else {
            Properties::default()
        };
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            let filter = read_filter(r)?;
            let options =
                SubscriptionOptions::from_byte(r.u8("subscription options")?, version, &filter)?;
            filters.push(SubscribeFilter { filter, options });
        }
        if filters.is_empty() {
            return Err(MqttDecodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            });
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let pt = PacketType::Subscribe;
        put_packet_id(body, self.packet_id, pt)?;
        write_properties(&self.properties, v, pt, PropertyContext::Subscribe, body)?;
        if self.filters.is_empty() {
            return Err(MqttDecodeError::NoTopicFilters { packet_type: pt }.into());
        }
        for f in &self.filters {
            put_filter(body, &f.filter, pt)?;
            body.put_u8(f.options.encode_byte(v, &f.filter)?);
        }
        Ok(0x02)
    }
}

/// SUBACK: one return code (3.1/3.1.1) or reason code (5.0) per filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier of the SUBSCRIBE (non-zero).
    pub packet_id: u16,
    /// 5.0 properties (reason string, user properties).
    pub properties: Properties,
    /// The granted QoS (0, 1, 2) or a failure code (0x80 and up), per filter.
    pub codes: Vec<u8>,
}

impl SubAck {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version == MqttVersion::V5 {
            read_properties(r, PropertyContext::SubAck)?
        } else {
            Properties::default()
        };
        Ok(SubAck {
            packet_id,
            properties,
            codes: r.rest().to_vec(),
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let pt = PacketType::SubAck;
        put_packet_id(body, self.packet_id, pt)?;
        write_properties(&self.properties, v, pt, PropertyContext::SubAck, body)?;
        body.put_slice(&self.codes);
        Ok(0)
    }
}

/// UNSUBSCRIBE: a client removes one or more subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// 5.0 properties (user properties).
    pub properties: Properties,
    /// The topic filters, at least one, none empty.
    pub filters: Vec<String>,
}

impl Unsubscribe {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version == MqttVersion::V5 {
            read_properties(r, PropertyContext::Unsubscribe)?
        } else {
            Properties::default()
        };
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            filters.push(read_filter(r)?);
        }
        if filters.is_empty() {
            return Err(MqttDecodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            });
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let pt = PacketType::Unsubscribe;
        put_packet_id(body, self.packet_id, pt)?;
        write_properties(&self.properties, v, pt, PropertyContext::Unsubscribe, body)?;
        if self.filters.is_empty() {
            return Err(MqttDecodeError::NoTopicFilters { packet_type: pt }.into());
        }
        for f in &self.filters {
            put_filter(body, f, pt)?;
        }
        Ok(0x02)
    }
}

/// UNSUBACK: acknowledges an UNSUBSCRIBE; 5.0 adds a reason code per filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier of the UNSUBSCRIBE (non-zero).
    pub packet_id: u16,
    /// 5.0 properties (reason string, user properties).
    pub properties: Properties,
    /// 5.0 reason codes, one per filter; always empty before 5.0.
    pub reason_codes: Vec<u8>,
}

impl UnsubAck {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let packet_id = read_packet_id(r)?;
        let (properties, reason_codes) = if version == MqttVersion::V5 {
            let properties = read_properties(r, PropertyContext::UnsubAck)?;
            (properties, r.rest().to_vec())
        } else {
            (Properties::default(), Vec::new())
        };
        Ok(UnsubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let pt = PacketType::UnsubAck;
        put_packet_id(body, self.packet_id, pt)?;
        if v < MqttVersion::V5 && !self.reason_codes.is_empty() {
            return Err(MqttEncodeError::NotInVersion {
                packet_type: pt,
                version: v,
                what: "reason codes",
            });
        }
        write_properties(&self.properties, v, pt, PropertyContext::UnsubAck, body)?;
        body.put_slice(&self.reason_codes);
        Ok(0)
    }
}

fn read_filter(r: &mut Reader) -> Result<String, MqttDecodeError> {
    let filter = r.string("topic filter")?;
    if filter.is_empty() {
        return Err(MqttDecodeError::EmptyTopicFilter {
            packet_type: r.packet_type(),
        });
    }
    Ok(filter)
}

fn put_filter(body: &mut BytesMut, filter: &str, pt: PacketType) -> Result<(), MqttEncodeError> {
    if filter.is_empty() {
        return Err(MqttDecodeError::EmptyTopicFilter { packet_type: pt }.into());
    }
    put_str(body, filter, "topic filter")
}

/// 5.0: the property block; before: nothing, and no properties allowed.
fn write_properties(
    properties: &Properties,
    v: MqttVersion,
    pt: PacketType,
    ctx: PropertyContext,
    body: &mut BytesMut,
) -> Result<(), MqttEncodeError> {
    if v == MqttVersion::V5 {
        properties.write(ctx, pt, body)
    } else if properties.is_empty() {
        Ok(())
    } else {
        Err(MqttEncodeError::NotInVersion {
            packet_type: pt,
            version: v,
            what: "properties",
        })
    }
}
