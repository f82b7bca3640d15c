//! MQTT 3.1, 3.1.1 and 5.0 control packets.
//!
//! Sans-IO: [`decode`] takes one packet from the front of a buffer and returns
//! an [`MqttPacket`], `Ok(None)` when more bytes are needed (nothing consumed),
//! or an [`MqttDecodeError`]. [`MqttPacket::encode`] writes a packet, or
//! refuses with an [`MqttEncodeError`] if the packet cannot be represented in
//! the version asked for. [`MqttCodec`] adapts both to `tokio_util::codec`.
//!
//! # Versions
//!
//! The wire format depends on the protocol level, which only the `CONNECT`
//! packet states (`"MQIsdp"` level 3 is 3.1, `"MQTT"` level 4 is 3.1.1,
//! `"MQTT"` level 5 is 5.0). So [`decode`] takes the session's
//! [`MqttVersion`] as a parameter and applies it to every packet except
//! `CONNECT`, which is decoded by the level written inside it.
//! [`decode_connect`] decodes the first packet of a connection, when no
//! version is known yet, and rejects anything but `CONNECT`.
//!
//! # Wire rules enforced on decode
//!
//! Every violation is an [`MqttDecodeError`] that closes the connection;
//! [`MqttDecodeError::reason_code`] gives the MQTT 5 reason code to put in the
//! `DISCONNECT` (or `CONNACK`) sent before closing.
//!
//! - The remaining length is a variable byte integer of at most 4 bytes in its
//!   minimal encoding (so are the property length and subscription
//!   identifiers).
//! - Packet type 0 is reserved; type 15 (`AUTH`) exists only in 5.0.
//! - Fixed-header flags must be `0000`, or `0010` for `PUBREL`, `SUBSCRIBE` and
//!   `UNSUBSCRIBE`. MQTT 3.1 clients may also set DUP on those three (the 3.1
//!   specification sent them at QoS 1 with retries); the bit is ignored there.
//!   `PUBLISH` flags carry DUP, QoS and RETAIN: QoS 3 and DUP with QoS 0 are
//!   malformed.
//! - Strings must be well-formed UTF-8 without U+0000. As mosquitto does, the
//!   code points the specification says SHOULD NOT appear (controls U+0001 to
//!   U+001F and U+007F to U+009F, and the Unicode non-characters) are rejected
//!   too. Binary fields (passwords, will payloads, correlation and
//!   authentication data) and payloads are not checked.
//! - Packet identifiers, where present, must not be 0.
//! - 5.0 properties must be known, allowed on the packet they appear in, not
//!   repeated unless the specification allows it (user properties, and
//!   subscription identifiers on `PUBLISH`), and hold a permitted value.
//! - `PUBLISH` topic names must not contain wildcards and must not be empty,
//!   except in 5.0 when a topic alias is given. `SUBSCRIBE` and
//!   `UNSUBSCRIBE` need at least one topic filter, and no filter may be empty.
//! - A packet's fields must fill its remaining length exactly.
//!
//! Rules that need session state (topic alias ranges, receive maximum, the
//! client identifier rules, wildcard syntax inside a filter, reason-code
//! values, a second `CONNECT`) are the session's business; see
//! [`valid_topic_filter`] and [`Publish::check_payload_format`].
//!
//! # Limits
//!
//! [`MqttLimits::max_packet_size`] bounds a whole packet, fixed header
//! included (the unit of MQTT 5's Maximum Packet Size). It is checked as soon
//! as the fixed header has arrived, before the body is buffered.
//!
//! # Encoding
//!
//! The encoder writes the canonical form: minimal variable byte integers,
//! properties in ascending identifier order (as paho-mqtt does; user
//! properties keep their order), and the short forms of the 5.0 acknowledgement
//! and `DISCONNECT`/`AUTH` packets when the reason code is 0 and/or there are
//! no properties. Whatever it accepts decodes back to an equal packet.

mod codec;
mod connect;
mod decode;
mod disconnect;
mod encode;
mod error;
mod properties;
mod publish;
pub mod reason;
mod subscribe;
#[cfg(test)]
mod tests;
mod wire;

pub use codec::{MqttCodec, MqttCodecError};
pub use connect::{ConnAck, Connect, Will};
pub use decode::{decode, decode_connect};
pub use disconnect::{Auth, Disconnect};
pub use error::{MqttDecodeError, MqttEncodeError};
pub use properties::{property, Properties};
pub use publish::{PubResponse, Publish};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// The largest packet MQTT can express: a 268,435,455-byte remaining length
/// behind a 5-byte fixed header.
pub const PROTOCOL_MAX_PACKET_SIZE: usize = 268_435_460;

/// An MQTT protocol version (the CONNECT packet's protocol level).
///
/// Ordered, so `version >= MqttVersion::V5` reads as "5.0 or later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MqttVersion {
    /// MQTT 3.1: protocol name `"MQIsdp"`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `"MQTT"`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `"MQTT"`, level 5. Adds properties, reason
    /// codes and the `AUTH` packet.
    V5,
}

impl MqttVersion {
    /// All versions, oldest first.
    pub const ALL: [MqttVersion; 3] = [MqttVersion::V3_1, MqttVersion::V3_1_1, MqttVersion::V5];

    /// The protocol level byte: 3, 4 or 5.
    pub fn level(&self) -> u8 {
        match self {
            MqttVersion::V3_1 => 3,
            MqttVersion::V3_1_1 => 4,
            MqttVersion::V5 => 5,
        }
    }

    /// The protocol name written in CONNECT: `"MQIsdp"` for 3.1, else `"MQTT"`.
    pub fn protocol_name(&self) -> &'static str {
        match self {
            MqttVersion::V3_1 => "MQIsdp",
            MqttVersion::V3_1_1 | MqttVersion::V5 => "MQTT",
        }
    }

    /// The version for a CONNECT's protocol name and level, if it is one of
    /// the three known pairs.
    pub fn from_name_and_level(name: &[u8], level: u8) -> Option<Self> {
        match (name, level) {
            (b"MQIsdp", 3) => Some(MqttVersion::V3_1),
            (b"MQTT", 4) => Some(MqttVersion::V3_1_1),
            (b"MQTT", 5) => Some(MqttVersion::V5),
            _ => None,
        }
    }
}

impl std::fmt::Display for MqttVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MqttVersion::V3_1 => "3.1",
            MqttVersion::V3_1_1 => "3.1.1",
            MqttVersion::V5 => "5.0",
        })
    }
}

/// A quality-of-service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// QoS 0: at most once, no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once, acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: exactly once, PUBREC / PUBREL / PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// All levels, lowest first.
    pub const ALL: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

    /// The level as a number, 0 to 2.
    pub fn as_u8(&self) -> u8 {
        *self as u8
    }

    /// The level for 0, 1 or 2; `None` for anything else.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// The kind of a control packet: the high nibble of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 1: client asks to connect.
    Connect = 1,
    /// 2: server answers CONNECT.
    ConnAck = 2,
    /// 3: an application message.
    Publish = 3,
    /// 4: QoS 1 acknowledgement.
    PubAck = 4,
    /// 5: QoS 2, part 1 (publish received).
    PubRec = 5,
    /// 6: QoS 2, part 2 (publish release).
    PubRel = 6,
    /// 7: QoS 2, part 3 (publish complete).
    PubComp = 7,
    /// 8: client subscribes.
    Subscribe = 8,
    /// 9: server answers SUBSCRIBE.
    SubAck = 9,
    /// 10: client unsubscribes.
    Unsubscribe = 10,
    /// 11: server answers UNSUBSCRIBE.
    UnsubAck = 11,
    /// 12: keep-alive ping.
    PingReq = 12,
    /// 13: keep-alive answer.
    PingResp = 13,
    /// 14: orderly close (5.0: from either side).
    Disconnect = 14,
    /// 15: 5.0 only: extended authentication exchange.
    Auth = 15,
}

impl PacketType {
    /// The type for a first-byte high nibble of 1 to 15; `None` for 0 (reserved) or more.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return None,
        })
    }

    /// The packet type number, 1 to 15.
    pub fn as_u8(&self) -> u8 {
        *self as u8
    }

    /// The specification's name, e.g. `"PUBACK"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttPacket {
    /// CONNECT (boxed: it is the largest packet, and comes once per connection).
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubResponse),
    /// PUBREC.
    PubRec(PubResponse),
    /// PUBREL.
    PubRel(PubResponse),
    /// PUBCOMP.
    PubComp(PubResponse),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (5.0 only).
    Auth(Auth),
}

impl MqttPacket {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            MqttPacket::Connect(_) => PacketType::Connect,
            MqttPacket::ConnAck(_) => PacketType::ConnAck,
            MqttPacket::Publish(_) => PacketType::Publish,
            MqttPacket::PubAck(_) => PacketType::PubAck,
            MqttPacket::PubRec(_) => PacketType::PubRec,
            MqttPacket::PubRel(_) => PacketType::PubRel,
            MqttPacket::PubComp(_) => PacketType::PubComp,
            MqttPacket::Subscribe(_) => PacketType::Subscribe,
            MqttPacket::SubAck(_) => PacketType::SubAck,
            MqttPacket::Unsubscribe(_) => PacketType::Unsubscribe,
            MqttPacket::UnsubAck(_) => PacketType::UnsubAck,
            MqttPacket::PingReq => PacketType::PingReq,
            MqttPacket::PingResp => PacketType::PingResp,
            MqttPacket::Disconnect(_) => PacketType::Disconnect,
            MqttPacket::Auth(_) => PacketType::Auth,
        }
    }
}

macro_rules! from_packet {
    ($($ty:ident),*) => {$(
        impl From<$ty> for MqttPacket {
            fn from(packet: $ty) -> Self {
                MqttPacket::$ty(packet)
            }
        }
    )*};
}
impl From<Connect> for MqttPacket {
    fn from(packet: Connect) -> Self {
        MqttPacket::Connect(Box::new(packet))
    }
}
from_packet!(
    ConnAck,
    Publish,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth
);

/// Decoder limits, passed in by the caller (never global).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttLimits {
    /// Largest packet in bytes, fixed header included. Checked from the fixed
    /// header before the body is buffered. Default 10 MiB; the protocol's own
    /// maximum is [`PROTOCOL_MAX_PACKET_SIZE`].
    pub max_packet_size: usize,
}

impl Default for MqttLimits {
    fn default() -> Self {
        MqttLimits {
            max_packet_size: 10 * 1024 * 1024,
        }
    }
}

/// Whether `filter` is a syntactically valid topic filter: not empty, `#`
/// only as the whole last level, `+` only as a whole level. A shared
/// subscription (`$share/<name>/<filter>`) also needs a non-empty share name
/// without wildcards and a valid filter after it.
///
/// The decoder only rejects empty filters (a malformed packet); a filter that
/// fails this check gets SUBACK reason code 0x8F (5.0) or 0x80 (3.1.1) for that
/// filter alone, which is the session's call.
pub fn valid_topic_filter(filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((name, inner)) if !name.is_empty() && !name.contains(['+', '#']) => inner,
            _ => return false,
        },
        None => filter,
    };
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if last => {}
            "+" => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}
