//! MQTT 5.0 properties.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_binary, put_str, put_var_int, var_int_of, Reader, MAX_VAR_INT};
use super::{MqttDecodeError, MqttEncodeError, PacketType, QoS};

/// Property identifiers, as defined in MQTT 5.0 section 2.2.2.2.
pub mod property {
    /// Byte (0 or 1), PUBLISH and will: the payload is UTF-8.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Four-byte integer, PUBLISH and will: lifetime in seconds.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// String, PUBLISH and will: MIME type of the payload.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// String, PUBLISH and will: topic for a response.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Binary data, PUBLISH and will: ties a response to its request.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Variable byte integer, PUBLISH (repeatable) and SUBSCRIBE.
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Four-byte integer, CONNECT, CONNACK and DISCONNECT.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// String, CONNACK: the client identifier the server chose.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Two-byte integer, CONNACK: the keep-alive the server imposes.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// String, CONNECT, CONNACK and AUTH.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Binary data, CONNECT, CONNACK and AUTH.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Byte (0 or 1), CONNECT.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Four-byte integer, will: seconds to wait before publishing the will.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Byte (0 or 1), CONNECT.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// String, CONNACK.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// String, CONNACK and DISCONNECT: another server to use.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// String, on every acknowledgement, DISCONNECT and AUTH.
    pub const REASON_STRING: u8 = 0x1F;
    /// Two-byte integer (not 0), CONNECT and CONNACK.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Two-byte integer, CONNECT and CONNACK.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Two-byte integer (not 0), PUBLISH.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Byte (0 or 1), CONNACK.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Byte (0 or 1), CONNACK.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// String pair, every packet with properties; repeatable, order matters.
    pub const USER_PROPERTY: u8 = 0x26;
    /// Four-byte integer (not 0), CONNECT and CONNACK.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Byte (0 or 1), CONNACK.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Byte (0 or 1), CONNACK.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Byte (0 or 1), CONNACK.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

use property as id;

/// The properties of one MQTT 5.0 packet or will. Empty (the default) on
/// every packet of earlier versions.
///
/// Which properties a packet may carry is checked on decode and encode (see
/// [`property`]). Booleans are 0/1 bytes on the wire. Fields are in
/// identifier order, which is the order the encoder writes them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01: `true` if the payload is UTF-8 text, `false` if unspecified bytes.
    pub payload_format_indicator: Option<bool>,
    /// 0x02: message lifetime in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: the payload's content type.
    pub content_type: Option<String>,
    /// 0x08: the topic a response should be published to.
    pub response_topic: Option<String>,
    /// 0x09: data that ties a response to its request.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: subscription identifiers, 1 to 268,435,455. Several on a PUBLISH
    /// sent to a subscriber, at most one on SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: session lifetime after the connection closes, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: the client identifier the server assigned.
    pub assigned_client_identifier: Option<String>,
    /// 0x13: the keep-alive in seconds the server imposes.
    pub server_keep_alive: Option<u16>,
    /// 0x15: the extended authentication method.
    pub authentication_method: Option<String>,
    /// 0x16: method-specific authentication data.
    pub authentication_data: Option<Bytes>,
    /// 0x17: whether the server may send reason strings and user properties on failures.
    pub request_problem_information: Option<bool>,
    /// 0x18: seconds to wait before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19: whether the client asks for response information in CONNACK.
    pub request_response_information: Option<bool>,
    /// 0x1A: the basis of response topics.
    pub response_information: Option<String>,
    /// 0x1C: another server for the client to use.
    pub server_reference: Option<String>,
    /// 0x1F: a human-readable diagnostic.
    pub reason_string: Option<String>,
    /// 0x21: most unacknowledged QoS 1/2 PUBLISHes the sender accepts (not 0).
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias the sender accepts.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: a topic alias (not 0).
    pub topic_alias: Option<u16>,
    /// 0x24: the highest QoS the server supports: 0 or 1 (absent means 2).
    pub maximum_qos: Option<QoS>,
    /// 0x25: whether the server supports retained messages.
    pub retain_available: Option<bool>,
    /// 0x26: user properties, name and value, in wire order, repeats kept.
    pub user_properties: Vec<(String, String)>,
    /// 0x27: the largest packet the sender accepts, in bytes (not 0).
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether the server supports wildcard subscriptions.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29: whether the server supports subscription identifiers.
    pub subscription_identifier_available: Option<bool>,
    /// 0x2A: whether the server supports shared subscriptions.
    pub shared_subscription_available: Option<bool>,
}

impl Properties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Builder: appends a user property.
    pub fn with_user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_properties.push((name.into(), value.into()));
        self
    }
}

/// Where a property block appears; decides which properties are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropertyContext {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    /// Whether a property `pid` may appear here (MQTT 5.0 table 2-4).
    fn allows(self, pid: u8) -> bool {
        use PropertyContext as C;
        match pid {
            id::PAYLOAD_FORMAT_INDICATOR
            | id::MESSAGE_EXPIRY_INTERVAL
            | id::CONTENT_TYPE
            | id::RESPONSE_TOPIC
            | id::CORRELATION_DATA => matches!(self, C::Publish | C::Will),
            id::SUBSCRIPTION_IDENTIFIER => matches!(self, C::Publish | C::Subscribe),
            id::SESSION_EXPIRY_INTERVAL => matches!(self, C::Connect | C::ConnAck | C::Disconnect),
            id::ASSIGNED_CLIENT_IDENTIFIER
            | id::SERVER_KEEP_ALIVE
            | id::RESPONSE_INFORMATION
            | id::MAXIMUM_QOS
            | id::RETAIN_AVAILABLE
            | id::WILDCARD_SUBSCRIPTION_AVAILABLE
            | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | id::SHARED_SUBSCRIPTION_AVAILABLE => self == C::ConnAck,
            id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => {
                matches!(self, C::Connect | C::ConnAck | C::Auth)
            }
            id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => {
                self == C::Connect
            }
            id::WILL_DELAY_INTERVAL => self == C::Will,
            id::SERVER_REFERENCE => matches!(self, C::ConnAck | C::Disconnect),
            id::REASON_STRING => matches!(
                self,
                C::ConnAck | C::PubResponse | C::SubAck | C::UnsubAck | C::Disconnect | C::Auth
            ),
            id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => {
                matches!(self, C::Connect | C::ConnAck)
            }
            id::TOPIC_ALIAS => self == C::Publish,
            id::USER_PROPERTY => true,
            _ => false,
        }
    }
}

/// Whether `pid` is a property MQTT 5.0 defines.
fn known(pid: u8) -> bool {
    matches!(
        pid,
        0x01..=0x03
            | 0x08
            | 0x09
            | 0x0B
            | 0x11..=0x13
            | 0x15..=0x1A
            | 0x1C
            | 0x1F
            | 0x21..=0x2A
    )
}

/// Sets a property that may appear once, or fails with `DuplicateProperty`.
fn once<T>(
    slot: &mut Option<T>,
    value: T,
    pid: u8,
    packet_type: PacketType,
) -> Result<(), MqttDecodeError> {
    if slot.is_some() {
        return Err(MqttDecodeError::DuplicateProperty {
            packet_type,
            id: pid,
        });
    }
    *slot = Some(value);
    Ok(())
}

fn bool_value(value: u8, pid: u8, packet_type: PacketType) -> Result<bool, MqttDecodeError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(MqttDecodeError::InvalidPropertyValue {
            packet_type,
            id: pid,
            value: u32::from(value),
        }),
    }
}

/// Reads a property length and the block it announces.
pub(crate) fn read_properties(
    r: &mut Reader,
    ctx: PropertyContext,
) -> Result<Properties, MqttDecodeError> {
    let len = r.var_int("property length")?;
    let mut p = r.sub(len as usize, "properties")?;
    let pt = p.packet_type();
    let mut props = Properties::default();
    while p.remaining() > 0 {
        let pid = p.u8("property identifier")?;
        if !known(pid) {
            return Err(MqttDecodeError::UnknownProperty {
                packet_type: pt,
                id: pid,
            });
        }
        if !ctx.allows(pid) {
            return Err(MqttDecodeError::PropertyNotAllowed {
                packet_type: pt,
                id: pid,
            });
        }
        match pid {
            id::PAYLOAD_FORMAT_INDICATOR => {
                let v = bool_value(p.u8("payload format indicator")?, pid, pt)?;
                once(&mut props.payload_format_indicator, v, pid, pt)?;
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                let v = p.u32("message expiry interval")?;
                once(&mut props.message_expiry_interval, v, pid, pt)?;
            }
            id::CONTENT_TYPE => {
                let v = p.string("content type")?;
                once(&mut props.content_type, v, pid, pt)?;
            }
            id::RESPONSE_TOPIC => {
                let v = p.string("response topic")?;
                once(&mut props.response_topic, v, pid, pt)?;
            }
            id::CORRELATION_DATA => {
                let v = p.binary("correlation data")?;
                once(&mut props.correlation_data, v, pid, pt)?;
            }
            id::SUBSCRIPTION_IDENTIFIER => {
                let v = p.var_int("subscription identifier")?;
                if ctx == PropertyContext::Subscribe && !props.subscription_identifiers.is_empty() {
                    return Err(MqttDecodeError::DuplicateProperty {
                        packet_type: pt,
                        id: pid,
                    });
                }
                props.subscription_identifiers.push(v);
            }
            id::SESSION_EXPIRY_INTERVAL => {
                let v = p.u32("session expiry interval")?;
                once(&mut props.session_expiry_interval, v, pid, pt)?;
            }
            id::ASSIGNED_CLIENT_IDENTIFIER => {
                let v = p.string("assigned client identifier")?;
                once(&mut props.assigned_client_identifier, v, pid, pt)?;
            }
            id::SERVER_KEEP_ALIVE => {
                let v = p.u16("server keep alive")?;
                once(&mut props.server_keep_alive, v, pid, pt)?;
            }
            id::AUTHENTICATION_METHOD => {
                let v = p.string("authentication method")?;
                once(&mut props.authentication_method, v, pid, pt)?;
            }
            id::AUTHENTICATION_DATA => {
                let v = p.binary("authentication data")?;
                once(&mut props.authentication_data, v, pid, pt)?;
            }
            id::REQUEST_PROBLEM_INFORMATION => {
                let v = bool_value(p.u8("request problem information")?, pid, pt)?;
                once(&mut props.request_problem_information, v, pid, pt)?;
            }
            id::WILL_DELAY_INTERVAL => {
                let v = p.u32("will delay interval")?;
                once(&mut props.will_delay_interval, v, pid, pt)?;
            }
            id::REQUEST_RESPONSE_INFORMATION => {
                let v = bool_value(p.u8("request response information")?, pid, pt)?;
                once(&mut props.request_response_information, v, pid, pt)?;
            }
            id::RESPONSE_INFORMATION => {
                let v = p.string("response information")?;
                once(&mut props.response_information, v, pid, pt)?;
            }
            id::SERVER_REFERENCE => {
                let v = p.string("server reference")?;
                once(&mut props.server_reference, v, pid, pt)?;
            }
            id::REASON_STRING => {
                let v = p.string("reason string")?;
                once(&mut props.reason_string, v, pid, pt)?;
            }
            id::RECEIVE_MAXIMUM => {
                let v = p.u16("receive maximum")?;
                once(&mut props.receive_maximum, v, pid, pt)?;
            }
            id::TOPIC_ALIAS_MAXIMUM => {
                let v = p.u16("topic alias maximum")?;
                once(&mut props.topic_alias_maximum, v, pid, pt)?;
            }
            id::TOPIC_ALIAS => {
                let v = p.u16("topic alias")?;
                once(&mut props.topic_alias, v, pid, pt)?;
            }
            id::MAXIMUM_QOS => {
                let raw = p.u8("maximum QoS")?;
                let v = match raw {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => {
                        return Err(MqttDecodeError::InvalidPropertyValue {
                            packet_type: pt,
                            id: pid,
                            value: u32::from(raw),
                        })
                    }
                };
                once(&mut props.maximum_qos, v, pid, pt)?;
            }
            id::RETAIN_AVAILABLE => {
                let v = bool_value(p.u8("retain available")?, pid, pt)?;
                once(&mut props.retain_available, v, pid, pt)?;
            }
            id::USER_PROPERTY => {
                let name = p.string("user property name")?;
                let value = p.string("user property value")?;
                props.user_properties.push((name, value));
            }
            id::MAXIMUM_PACKET_SIZE => {
                let v = p.u32("maximum packet size")?;
                once(&mut props.maximum_packet_size, v, pid, pt)?;
            }
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let v = bool_value(p.u8("wildcard subscription available")?, pid, pt)?;
                once(&mut props.wildcard_subscription_available, v, pid, pt)?;
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let v = bool_value(p.u8("subscription identifier available")?, pid, pt)?;
                once(&mut props.subscription_identifier_available, v, pid, pt)?;
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => {
                let v = bool_value(p.u8("shared subscription available")?, pid, pt)?;
                once(&mut props.shared_subscription_available, v, pid, pt)?;
            }
            _ => {
                return Err(MqttDecodeError::UnknownProperty {
                    packet_type: pt,
                    id: pid,
                })
            }
        }
    }
    props.validate(ctx, pt)?;
    Ok(props)
}

impl Properties {
    /// The identifiers of the properties present, in identifier order (a
    /// repeated property once).
    fn present(&self) -> impl Iterator<Item = u8> + '_ {
        [
            (
                id::PAYLOAD_FORMAT_INDICATOR,
                self.payload_format_indicator.is_some(),
            ),
            (
                id::MESSAGE_EXPIRY_INTERVAL,
                self.message_expiry_interval.is_some(),
            ),
            (id::CONTENT_TYPE, self.content_type.is_some()),
            (id::RESPONSE_TOPIC, self.response_topic.is_some()),
            (id::CORRELATION_DATA, self.correlation_data.is_some()),
            (
                id::SUBSCRIPTION_IDENTIFIER,
                !self.subscription_identifiers.is_empty(),
            ),
            (
                id::SESSION_EXPIRY_INTERVAL,
                self.session_expiry_interval.is_some(),
            ),
            (
                id::ASSIGNED_CLIENT_IDENTIFIER,
                self.assigned_client_identifier.is_some(),
            ),
            (id::SERVER_KEEP_ALIVE, self.server_keep_alive.is_some()),
            (
                id::AUTHENTICATION_METHOD,
                self.authentication_method.is_some(),
            ),
            (id::AUTHENTICATION_DATA, self.authentication_data.is_some()),
            (
                id::REQUEST_PROBLEM_INFORMATION,
                self.request_problem_information.is_some(),
            ),
            (id::WILL_DELAY_INTERVAL, self.will_delay_interval.is_some()),
            (
                id::REQUEST_RESPONSE_INFORMATION,
                self.request_response_information.is_some(),
            ),
            (
                id::RESPONSE_INFORMATION,
                self.response_information.is_some(),
            ),
            (id::SERVER_REFERENCE, self.server_reference.is_some()),
            (id::REASON_STRING, self.reason_string.is_some()),
            (id::RECEIVE_MAXIMUM, self.receive_maximum.is_some()),
            (id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum.is_some()),
            (id::TOPIC_ALIAS, self.topic_alias.is_some()),
            (id::MAXIMUM_QOS, self.maximum_qos.is_some()),
            (id::RETAIN_AVAILABLE, self.retain_available.is_some()),
            (id::USER_PROPERTY, !self.user_properties.is_empty()),
            (id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size.is_some()),
            (
                id::WILDCARD_SUBSCRIPTION_AVAILABLE,
                self.wildcard_subscription_available.is_some(),
            ),
            (
                id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                self.subscription_identifier_available.is_some(),
            ),
            (
                id::SHARED_SUBSCRIPTION_AVAILABLE,
                self.shared_subscription_available.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(pid, set)| set.then_some(pid))
    }

    /// The checks shared by decoder and encoder: allowed here, values in
    /// range, at most one subscription identifier on SUBSCRIBE, no
    /// authentication data without a method.
    pub(crate) fn validate(
        &self,
        ctx: PropertyContext,
        packet_type: PacketType,
    ) -> Result<(), MqttDecodeError> {
        if let Some(pid) = self.present().find(|&pid| !ctx.allows(pid)) {
            return Err(MqttDecodeError::PropertyNotAllowed {
                packet_type,
                id: pid,
            });
        }
        let invalid = |pid: u8, value: u32| MqttDecodeError::InvalidPropertyValue {
            packet_type,
            id: pid,
            value,
        };
        if self.receive_maximum == Some(0) {
            return Err(invalid(id::RECEIVE_MAXIMUM, 0));
        }
        if self.maximum_packet_size == Some(0) {
            return Err(invalid(id::MAXIMUM_PACKET_SIZE, 0));
        }
        if self.topic_alias == Some(0) {
            return Err(invalid(id::TOPIC_ALIAS, 0));
        }
        if self.maximum_qos == Some(QoS::ExactlyOnce) {
            return Err(invalid(id::MAXIMUM_QOS, 2));
        }
        if let Some(&v) = self
            .subscription_identifiers
            .iter()
            .find(|&&v| v == 0 || v > MAX_VAR_INT)
        {
            return Err(invalid(id::SUBSCRIPTION_IDENTIFIER, v));
        }
        if ctx == PropertyContext::Subscribe && self.subscription_identifiers.len() > 1 {
            return Err(MqttDecodeError::DuplicateProperty {
                packet_type,
                id: id::SUBSCRIPTION_IDENTIFIER,
            });
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(MqttDecodeError::AuthDataWithoutMethod { packet_type });
        }
        Ok(())
    }

    /// Writes the property length and the properties, in identifier order.
    pub(crate) fn write(
        &self,
        ctx: PropertyContext,
        packet_type: PacketType,
        dst: &mut BytesMut,
    ) -> Result<(), MqttEncodeError> {
        self.validate(ctx, packet_type)?;
        let mut b = BytesMut::new();
        let byte = |b: &mut BytesMut, pid: u8, v: u8| {
            b.put_u8(pid);
            b.put_u8(v);
        };
        if let Some(v) = self.payload_format_indicator {
            byte(&mut b, id::PAYLOAD_FORMAT_INDICATOR, u8::from(v));
        }
        if let Some(v) = self.message_expiry_interval {
            b.put_u8(id::MESSAGE_EXPIRY_INTERVAL);
            b.put_u32(v);
        }
        if let Some(v) = &self.content_type {
            b.put_u8(id::CONTENT_TYPE);
            put_str(&mut b, v, "content type")?;
        }
        if let Some(v) = &self.response_topic {
            b.put_u8(id::RESPONSE_TOPIC);
            put_str(&mut b, v, "response topic")?;
        }
        if let Some(v) = &self.correlation_data {
            b.put_u8(id::CORRELATION_DATA);
            put_binary(&mut b, v, "correlation data")?;
        }
        for &v in &self.subscription_identifiers {
            b.put_u8(id::SUBSCRIPTION_IDENTIFIER);
            put_var_int(&mut b, v);
        }
        if let Some(v) = self.session_expiry_interval {
            b.put_u8(id::SESSION_EXPIRY_INTERVAL);
            b.put_u32(v);
        }
        if let Some(v) = &self.assigned_client_identifier {
            b.put_u8(id::ASSIGNED_CLIENT_IDENTIFIER);
            put_str(&mut b, v, "assigned client identifier")?;
        }
        if let Some(v) = self.server_keep_alive {
            b.put_u8(id::SERVER_KEEP_ALIVE);
            b.put_u16(v);
        }
        if let Some(v) = &self.authentication_method {
            b.put_u8(id::AUTHENTICATION_METHOD);
            put_str(&mut b, v, "authentication method")?;
        }
        if let Some(v) = &self.authentication_data {
            b.put_u8(id::AUTHENTICATION_DATA);
            put_binary(&mut b, v, "authentication data")?;
        }
        if let Some(v) = self.request_problem_information {
            byte(&mut b, id::REQUEST_PROBLEM_INFORMATION, u8::from(v));
        }
        if let Some(v) = self.will_delay_interval {
            b.put_u8(id::WILL_DELAY_INTERVAL);
            b.put_u32(v);
        }
        if let Some(v) = self.request_response_information {
            byte(&mut b, id::REQUEST_RESPONSE_INFORMATION, u8::from(v));
        }
        if let Some(v) = &self.response_information {
            b.put_u8(id::RESPONSE_INFORMATION);
            put_str(&mut b, v, "response information")?;
        }
        if let Some(v) = &self.server_reference {
            b.put_u8(id::SERVER_REFERENCE);
            put_str(&mut b, v, "server reference")?;
        }
        if let Some(v) = &self.reason_string {
            b.put_u8(id::REASON_STRING);
            put_str(&mut b, v, "reason string")?;
        }
        if let Some(v) = self.receive_maximum {
            b.put_u8(id::RECEIVE_MAXIMUM);
            b.put_u16(v);
        }
        if let Some(v) = self.topic_alias_maximum {
            b.put_u8(id::TOPIC_ALIAS_MAXIMUM);
            b.put_u16(v);
        }
        if let Some(v) = self.topic_alias {
            b.put_u8(id::TOPIC_ALIAS);
            b.put_u16(v);
        }
        if let Some(v) = self.maximum_qos {
            byte(&mut b, id::MAXIMUM_QOS, v.as_u8());
        }
        if let Some(v) = self.retain_available {
            byte(&mut b, id::RETAIN_AVAILABLE, u8::from(v));
        }
        for (name, value) in &self.user_properties {
            b.put_u8(id::USER_PROPERTY);
            put_str(&mut b, name, "user property name")?;
            put_str(&mut b, value, "user property value")?;
        }
        if let Some(v) = self.maximum_packet_size {
            b.put_u8(id::MAXIMUM_PACKET_SIZE);
            b.put_u32(v);
        }
        if let Some(v) = self.wildcard_subscription_available {
            byte(&mut b, id::WILDCARD_SUBSCRIPTION_AVAILABLE, u8::from(v));
        }
        if let Some(v) = self.subscription_identifier_available {
            byte(&mut b, id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, u8::from(v));
        }
        if let Some(v) = self.shared_subscription_available {
            byte(&mut b, id::SHARED_SUBSCRIPTION_AVAILABLE, u8::from(v));
        }
        put_var_int(dst, var_int_of(b.len(), packet_type)?);
        dst.put_slice(&b);
        Ok(())
    }
}
