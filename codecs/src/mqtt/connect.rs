//! CONNECT and CONNACK.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::{read_properties, PropertyContext};
use super::publish::check_topic_name;
use super::wire::{put_binary, put_str, Reader};
use super::{MqttDecodeError, MqttEncodeError, MqttVersion, PacketType, Properties, QoS};

/// CONNECT: a client opens a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version, from the protocol name and level. It decides how
    /// this packet, and every later packet of the connection, is encoded.
    pub protocol: MqttVersion,
    /// Clean Session (3.1/3.1.1) or Clean Start (5.0).
    pub clean_session: bool,
    /// Keep-alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// 5.0 CONNECT properties (session expiry, receive maximum, maximum packet
    /// size, topic alias maximum, request response/problem information,
    /// authentication method/data, user properties).
    pub properties: Properties,
    /// The client identifier (may be empty; whether that is acceptable is the
    /// session's call).
    pub client_id: String,
    /// The will message, if any.
    pub will: Option<Will>,
    /// The user name, if the User Name flag is set.
    pub username: Option<String>,
    /// The password, if the Password flag is set (binary data). Before 5.0 a
    /// password needs a user name.
    pub password: Option<Bytes>,
}

impl Connect {
    /// A CONNECT for `protocol` with a clean session, a 60 s keep-alive and
    /// nothing else.
    pub fn new(protocol: MqttVersion, client_id: impl Into<String>) -> Self {
        Connect {
            protocol,
            clean_session: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, MqttDecodeError> {
        let name = r.binary("protocol name")?;
        let level = r.u8("protocol level")?;
        let protocol = MqttVersion::from_name_and_level(&name, level).ok_or_else(|| {
            MqttDecodeError::UnsupportedProtocol {
                name: String::from_utf8_lossy(&name).chars().take(32).collect(),
                level,
            }
        })?;
        let flags = r.u8("connect flags")?;
        let invalid = |reason| MqttDecodeError::InvalidConnectFlags { flags, reason };
        // MQTT 3.1 calls bit 0 unused; like mosquitto, ignore it there.
        if flags & 0x01 != 0 && protocol != MqttVersion::V3_1 {
            return Err(invalid("the reserved bit is set"));
        }
        let has_will = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !has_will && (will_qos != 0 || will_retain) {
            return Err(invalid("will QoS or retain set without a will"));
        }
        let will_qos =
            QoS::from_u8(will_qos).ok_or(MqttDecodeError::InvalidQoS { what: "will QoS" })?;
        if has_password && !has_username && protocol < MqttVersion::V5 {
            return Err(invalid("password without a user name"));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = if protocol == MqttVersion::V5 {
            read_properties(r, PropertyContext::Connect)?
        } else {
            Properties::default()
        };
        let client_id = r.string("client identifier")?;
        let will = if has_will {
            let properties = if protocol == MqttVersion::V5 {
                read_properties(r, PropertyContext::Will)?
            } else {
                Properties::default()
            };
            let topic = r.string("will topic")?;
            check_topic_name(&topic)?;
            let payload = r.binary("will payload")?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        // MQTT 3.1 clients may set the User Name / Password flags and then
        // leave the field out; mosquitto ignores the flag then, and so do we.
        let lenient = protocol == MqttVersion::V3_1;
        let username = match has_username {
            true if lenient && r.remaining() == 0 => None,
            true => Some(r.string("user name")?),
            false => None,
        };
        let password = match has_password {
            true if lenient && r.remaining() == 0 => None,
            true => Some(r.binary("password")?),
            false => None,
        };
        Ok(Connect {
            protocol,
            clean_session: flags & 0x02 != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    pub(crate) fn write(&self, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let v = self.protocol;
        let not_in = |what| MqttEncodeError::NotInVersion {
            packet_type: PacketType::Connect,
            version: v,
            what,
        };
        if self.password.is_some() && self.username.is_none() && v < MqttVersion::V5 {
            return Err(not_in("a password without a user name"));
        }
        put_str(body, v.protocol_name(), "protocol name")?;
        body.put_u8(v.level());
        let mut flags = 0u8;
        if self.clean_session {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos.as_u8() << 3);
            if will.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        body.put_u8(flags);
        body.put_u16(self.keep_alive);
        if v == MqttVersion::V5 {
            self.properties
                .write(PropertyContext::Connect, PacketType::Connect, body)?;
        } else if !self.properties.is_empty() {
            return Err(not_in("properties"));
        }
        put_str(body, &self.client_id, "client identifier")?;
        if let Some(will) = &self.will {
            if v == MqttVersion::V5 {
                will.properties
                    .write(PropertyContext::Will, PacketType::Connect, body)?;
            } else if !will.properties.is_empty() {
                return Err(not_in("will properties"));
            }
            check_topic_name(&will.topic)?;
            put_str(body, &will.topic, "will topic")?;
            put_binary(body, &will.payload, "will payload")?;
        }
        if let Some(username) = &self.username {
            put_str(body, username, "user name")?;
        }
        if let Some(password) = &self.password {
            put_binary(body, password, "password")?;
        }
        Ok(0)
    }
}

/// The will message in a CONNECT: published by the server if the connection
/// ends without a normal DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// The topic to publish to (no wildcards, not empty).
    pub topic: String,
    /// The message (binary data, at most 65,535 bytes).
    pub payload: Bytes,
    /// The QoS to publish with.
    pub qos: QoS,
    /// Whether to publish it retained.
    pub retain: bool,
    /// 5.0 will properties (will delay, payload format, message expiry,
    /// content type, response topic, correlation data, user properties).
    pub properties: Properties,
}

impl Will {
    /// A QoS 0, non-retained will without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Will {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::default(),
        }
    }

    /// Fails with [`MqttDecodeError::PayloadFormatInvalid`] (reason code
    /// 0x99, for CONNACK) if the Payload Format Indicator says UTF-8 and the
    /// payload is not.
    pub fn check_payload_format(&self) -> Result<(), MqttDecodeError> {
        super::publish::check_payload_format(&self.properties, &self.payload)
    }
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present (3.1.1 and 5.0; always `false` in 3.1, which has no such flag).
    pub session_present: bool,
    /// The return code (3.1/3.1.1, see `reason::V3_*`) or reason code (5.0).
    pub code: u8,
    /// 5.0 CONNACK properties.
    pub properties: Properties,
}

impl ConnAck {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        let flags = r.u8("connect acknowledge flags")?;
        let session_present = match version {
            // 3.1 reserves the byte ("topic name compression response"); ignore it.
            MqttVersion::V3_1 => false,
            _ if flags & 0xFE != 0 => return Err(MqttDecodeError::InvalidConnAckFlags { flags }),
            _ => flags & 0x01 != 0,
        };
        let code = r.u8("connect reason code")?;
        // Like mosquitto's client, accept a 5.0 CONNACK without a property length.
        let properties = if version == MqttVersion::V5 && r.remaining() > 0 {
            read_properties(r, PropertyContext::ConnAck)?
        } else {
            Properties::default()
        };
        Ok(ConnAck {
            session_present,
            code,
            properties,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        let not_in = |what| MqttEncodeError::NotInVersion {
            packet_type: PacketType::ConnAck,
            version: v,
            what,
        };
        if self.session_present && v == MqttVersion::V3_1 {
            return Err(not_in("session present"));
        }
        body.put_u8(u8::from(self.session_present));
        body.put_u8(self.code);
        if v == MqttVersion::V5 {
            self.properties
                .write(PropertyContext::ConnAck, PacketType::ConnAck, body)?;
        } else if !self.properties.is_empty() {
            return Err(not_in("properties"));
        }
        Ok(0)
    }
}
