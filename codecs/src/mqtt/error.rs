//! The decoder's and encoder's error types.

use super::{reason, MqttVersion, PacketType};

/// Why bytes could not be decoded as an MQTT packet. Every variant is fatal
/// for the connection: the stream cannot be trusted after it. Before closing,
/// a 5.0 server sends DISCONNECT (or CONNACK, if the failing packet was
/// CONNECT) with [`reason_code`](Self::reason_code); a 3.1/3.1.1 server just
/// closes, except that it may answer an [`UnsupportedProtocol`](Self::UnsupportedProtocol)
/// CONNECT with CONNACK return code 0x01.
///
/// `what` fields name the field being read, e.g. `"topic name"`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MqttDecodeError {
    /// The fixed header announces a packet larger than allowed.
    #[error("MQTT packet of {size} bytes exceeds the limit of {max} bytes")]
    PacketTooLarge {
        /// The whole packet's size in bytes, fixed header included.
        size: usize,
        /// The configured `max_packet_size`.
        max: usize,
    },
    /// A variable byte integer has a continuation bit in its fourth byte.
    #[error("MQTT {what} is longer than 4 bytes")]
    VarIntTooLong {
        /// Which integer.
        what: &'static str,
    },
    /// A variable byte integer is not in its shortest encoding.
    #[error("MQTT {what} is not minimally encoded")]
    VarIntNotMinimal {
        /// Which integer.
        what: &'static str,
    },
    /// Packet type 0, or 15 (AUTH) before 5.0.
    #[error("reserved MQTT packet type {packet_type}")]
    ReservedPacketType {
        /// The high nibble of the first byte.
        packet_type: u8,
    },
    /// The first packet of a connection is not CONNECT.
    #[error("expected CONNECT as the first MQTT packet, got {packet_type}")]
    NotConnect {
        /// What arrived instead.
        packet_type: PacketType,
    },
    /// Reserved fixed-header flags are set.
    #[error("invalid fixed-header flags {flags:#06b} on MQTT {packet_type}")]
    InvalidFlags {
        /// The packet's type.
        packet_type: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// A QoS field holds 3.
    #[error("MQTT {what} is 3")]
    InvalidQoS {
        /// Which field: `"PUBLISH QoS"`, `"will QoS"` or `"subscription QoS"`.
        what: &'static str,
    },
    /// A QoS 0 PUBLISH has its DUP flag set.
    #[error("MQTT PUBLISH has DUP set with QoS 0")]
    DupWithQoS0,
    /// The remaining length ends inside a field.
    #[error("MQTT {packet_type} ends inside its {what}")]
    UnexpectedEnd {
        /// The packet's type.
        packet_type: PacketType,
        /// The field that did not fit.
        what: &'static str,
    },
    /// The remaining length is longer than the packet's fields.
    #[error("MQTT {packet_type} has {count} bytes after its last field")]
    TrailingBytes {
        /// The packet's type.
        packet_type: PacketType,
        /// How many bytes are left over.
        count: usize,
    },
    /// A string is not well-formed UTF-8.
    #[error("MQTT {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: &'static str,
    },
    /// A string holds U+0000, a control character or a Unicode non-character.
    #[error("MQTT {what} contains the disallowed code point U+{code_point:04X}")]
    DisallowedCodePoint {
        /// Which string.
        what: &'static str,
        /// The first offending code point.
        code_point: u32,
    },
    /// CONNECT names a protocol or level this codec does not speak.
    #[error("unsupported MQTT protocol {name:?} level {level}")]
    UnsupportedProtocol {
        /// The protocol name, lossily decoded.
        name: String,
        /// The protocol level byte.
        level: u8,
    },
    /// CONNECT flags are inconsistent.
    #[error("invalid MQTT CONNECT flags {flags:#010b}: {reason}")]
    InvalidConnectFlags {
        /// The connect flags byte.
        flags: u8,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// CONNACK acknowledge flags have reserved bits set.
    #[error("invalid MQTT CONNACK flags {flags:#010b}")]
    InvalidConnAckFlags {
        /// The acknowledge flags byte.
        flags: u8,
    },
    /// A packet identifier that must be non-zero is 0.
    #[error("MQTT {packet_type} has packet identifier 0")]
    PacketIdZero {
        /// The packet's type.
        packet_type: PacketType,
    },
    /// A property identifier MQTT 5.0 does not define.
    #[error("unknown MQTT property {id:#04x} in {packet_type}")]
    UnknownProperty {
        /// The packet's type.
        packet_type: PacketType,
        /// The property identifier.
        id: u8,
    },
    /// A property that this packet (or a will) may not carry.
    #[error("MQTT property {id:#04x} is not allowed in {packet_type}")]
    PropertyNotAllowed {
        /// The packet's type (CONNECT for will properties).
        packet_type: PacketType,
        /// The property identifier.
        id: u8,
    },
    /// A property that may appear once appears again.
    #[error("MQTT property {id:#04x} repeated in {packet_type}")]
    DuplicateProperty {
        /// The packet's type.
        packet_type: PacketType,
        /// The property identifier.
        id: u8,
    },
    /// A property holds a value the specification forbids (e.g. a Receive
    /// Maximum or Topic Alias of 0, a boolean other than 0 or 1).
    #[error("MQTT property {id:#04x} in {packet_type} has the invalid value {value}")]
    InvalidPropertyValue {
        /// The packet's type.
        packet_type: PacketType,
        /// The property identifier.
        id: u8,
        /// The value found.
        value: u32,
    },
    /// Authentication Data without an Authentication Method.
    #[error("MQTT {packet_type} has authentication data but no authentication method")]
    AuthDataWithoutMethod {
        /// The packet's type.
        packet_type: PacketType,
    },
    /// A PUBLISH or will topic contains a wildcard, or is empty where it may not be.
    #[error("invalid MQTT topic name: {reason}")]
    InvalidTopicName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A 5.0 PUBLISH has an empty topic name and no topic alias.
    #[error("MQTT PUBLISH has neither a topic name nor a topic alias")]
    TopicNameMissing,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is empty.
    #[error("empty topic filter in MQTT {packet_type}")]
    EmptyTopicFilter {
        /// The packet's type.
        packet_type: PacketType,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("MQTT {packet_type} has no topic filter")]
    NoTopicFilters {
        /// The packet's type.
        packet_type: PacketType,
    },
    /// Reserved bits are set in a subscription options byte.
    #[error("reserved bits set in MQTT subscription options {options:#010b}")]
    InvalidSubscriptionOptions {
        /// The options byte.
        options: u8,
    },
    /// A subscription's Retain Handling is 3.
    #[error("MQTT subscription retain handling is 3")]
    InvalidRetainHandling,
    /// No Local is set on a shared subscription.
    #[error("MQTT No Local set on shared subscription {filter:?}")]
    NoLocalOnSharedSubscription {
        /// The topic filter.
        filter: String,
    },
    /// A PUBLISH or will says its payload is UTF-8 (a Payload Format
    /// Indicator of 1), and it is not. Never returned by [`decode`](super::decode):
    /// the specification lets a receiver check this (see
    /// [`Publish::check_payload_format`](super::Publish::check_payload_format))
    /// and answer with reason code 0x99 without closing the connection.
    #[error("MQTT payload is marked UTF-8 but is not valid UTF-8")]
    PayloadFormatInvalid,
}

impl MqttDecodeError {
    /// The MQTT 5.0 reason code for this error: 0x81 Malformed Packet, 0x82
    /// Protocol Error, 0x84 Unsupported Protocol Version, 0x90 Topic Name
    /// Invalid, 0x94 Topic Alias Invalid, 0x95 Packet Too Large or 0x99
    /// Payload Format Invalid.
    pub fn reason_code(&self) -> u8 {
        use MqttDecodeError::*;
        match self {
            PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            UnsupportedProtocol { .. } => reason::UNSUPPORTED_PROTOCOL_VERSION,
            InvalidTopicName { .. } => reason::TOPIC_NAME_INVALID,
            PayloadFormatInvalid => reason::PAYLOAD_FORMAT_INVALID,
            InvalidPropertyValue { id, .. } if *id == super::property::TOPIC_ALIAS => {
                reason::TOPIC_ALIAS_INVALID
            }
            NotConnect { .. }
            | PacketIdZero { .. }
            | DuplicateProperty { .. }
            | InvalidPropertyValue { .. }
            | AuthDataWithoutMethod { .. }
            | TopicNameMissing
            | NoTopicFilters { .. }
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription { .. } => reason::PROTOCOL_ERROR,
            VarIntTooLong { .. }
            | VarIntNotMinimal { .. }
            | ReservedPacketType { .. }
            | InvalidFlags { .. }
            | InvalidQoS { .. }
            | DupWithQoS0
            | UnexpectedEnd { .. }
            | TrailingBytes { .. }
            | InvalidUtf8 { .. }
            | DisallowedCodePoint { .. }
            | InvalidConnectFlags { .. }
            | InvalidConnAckFlags { .. }
            | UnknownProperty { .. }
            | PropertyNotAllowed { .. }
            | EmptyTopicFilter { .. }
            | InvalidSubscriptionOptions { .. } => reason::MALFORMED_PACKET,
        }
    }
}

/// Why a packet could not be encoded. Nothing is written to the buffer when
/// encoding fails.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MqttEncodeError {
    /// The packet breaks a rule the decoder enforces, so a peer would reject it.
    #[error("invalid MQTT packet: {0}")]
    Invalid(#[source] MqttDecodeError),
    /// A string or binary field is longer than 65,535 bytes.
    #[error("MQTT {what} of {len} bytes is longer than 65535 bytes")]
    FieldTooLong {
        /// Which field.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The remaining length (or a property length) would exceed 268,435,455 bytes.
    #[error("MQTT {packet_type} body of {size} bytes exceeds the protocol maximum")]
    PacketTooLarge {
        /// The packet's type.
        packet_type: PacketType,
        /// The size that did not fit.
        size: usize,
    },
    /// The packet uses something the version cannot express (properties or a
    /// non-zero reason code before 5.0, `AUTH` before 5.0, ...).
    #[error("MQTT {version} cannot carry {what} in {packet_type}")]
    NotInVersion {
        /// The packet's type.
        packet_type: PacketType,
        /// The version encoded for.
        version: MqttVersion,
        /// What it cannot carry.
        what: &'static str,
    },
    /// A QoS 0 PUBLISH with a packet identifier, which the wire cannot carry.
    #[error("MQTT QoS 0 PUBLISH cannot carry packet identifier {packet_id}")]
    PacketIdWithQoS0 {
        /// The packet identifier given.
        packet_id: u16,
    },
}

impl From<MqttDecodeError> for MqttEncodeError {
    fn from(e: MqttDecodeError) -> Self {
        MqttEncodeError::Invalid(e)
    }
}
