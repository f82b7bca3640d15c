//! Decoding: the fixed header, then the packet body.

use bytes::BytesMut;

use super::wire::{read_var_int, Reader};
use super::{
    Auth, ConnAck, Connect, Disconnect, MqttDecodeError, MqttLimits, MqttPacket, MqttVersion,
    PacketType, PubResponse, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

/// Decode one packet from the front of `buf`, consuming its bytes.
///
/// Returns `Ok(Some(packet))` with exactly the packet's bytes consumed,
/// `Ok(None)` when `buf` holds only part of a packet (nothing consumed), or an
/// error, after which the connection must be closed (how much of `buf` was
/// consumed is then unspecified).
///
/// `version` is the connection's protocol version; it applies to every packet
/// except CONNECT, which is decoded by its own protocol name and level. The
/// fixed header is checked as soon as it arrives: a reserved type, bad flags
/// or a packet over `limits.max_packet_size` fail before the body is buffered.
/// Payloads and binary fields are slices of `buf`'s memory, not copies.
pub fn decode(
    buf: &mut BytesMut,
    version: MqttVersion,
    limits: &MqttLimits,
) -> Result<Option<MqttPacket>, MqttDecodeError> {
    decode_packet(buf, Some(version), limits)
}

/// Decode the first packet of a connection, which must be CONNECT, from the
/// front of `buf` (see [`decode`] for what is consumed). Any other packet type
/// fails with [`MqttDecodeError::NotConnect`] as soon as its first byte arrives.
pub fn decode_connect(
    buf: &mut BytesMut,
    limits: &MqttLimits,
) -> Result<Option<Connect>, MqttDecodeError> {
    match decode_packet(buf, None, limits)? {
        None => Ok(None),
        Some(MqttPacket::Connect(connect)) => Ok(Some(*connect)),
        Some(other) => Err(MqttDecodeError::NotConnect {
            packet_type: other.packet_type(),
        }),
    }
}

/// A checked fixed header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedHeader {
    pub(crate) packet_type: PacketType,
    /// The low nibble of the first byte.
    pub(crate) flags: u8,
    /// Bytes of the fixed header: 1 + the remaining length's encoding.
    pub(crate) header_len: usize,
    pub(crate) remaining_len: usize,
}

impl FixedHeader {
    /// The whole packet's size in bytes.
    pub(crate) fn total(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Parses and checks the fixed header at the front of `buf`; `Ok(None)` if it
/// has not fully arrived. `version` is `None` before CONNECT.
pub(crate) fn fixed_header(
    buf: &[u8],
    version: Option<MqttVersion>,
    limits: &MqttLimits,
) -> Result<Option<FixedHeader>, MqttDecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let (packet_type, flags) = check_first_byte(first, version)?;
    let Some((remaining_len, len)) = read_var_int(rest, "remaining length")? else {
        return Ok(None);
    };
    let header = FixedHeader {
        packet_type,
        flags,
        header_len: 1 + len,
        remaining_len: remaining_len as usize,
    };
    if header.total() > limits.max_packet_size {
        return Err(MqttDecodeError::PacketTooLarge {
            size: header.total(),
            max: limits.max_packet_size,
        });
    }
    Ok(Some(header))
}

/// Checks the packet type and its fixed-header flags.
fn check_first_byte(
    first: u8,
    version: Option<MqttVersion>,
) -> Result<(PacketType, u8), MqttDecodeError> {
    let type_bits = first >> 4;
    let flags = first & 0x0F;
    let packet_type =
        PacketType::from_u8(type_bits).ok_or(MqttDecodeError::ReservedPacketType {
            packet_type: type_bits,
        })?;
    match version {
        None if packet_type != PacketType::Connect => {
            return Err(MqttDecodeError::NotConnect { packet_type });
        }
        Some(v) if packet_type == PacketType::Auth && v < MqttVersion::V5 => {
            return Err(MqttDecodeError::ReservedPacketType {
                packet_type: type_bits,
            });
        }
        _ => {}
    }
    let valid = match packet_type {
        PacketType::Publish => {
            let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(MqttDecodeError::InvalidQoS {
                what: "PUBLISH QoS",
            })?;
            if qos == QoS::AtMostOnce && flags & 0x08 != 0 {
                return Err(MqttDecodeError::DupWithQoS0);
            }
            true
        }
        // MQTT 3.1 sent these at QoS 1 and set DUP on retries.
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            flags == 0x02 || (version == Some(MqttVersion::V3_1) && flags == 0x0A)
        }
        _ => flags == 0,
    };
    if !valid {
        return Err(MqttDecodeError::InvalidFlags { packet_type, flags });
    }
    Ok((packet_type, flags))
}

fn decode_packet(
    buf: &mut BytesMut,
    version: Option<MqttVersion>,
    limits: &MqttLimits,
) -> Result<Option<MqttPacket>, MqttDecodeError> {
    let Some(header) = fixed_header(buf, version, limits)? else {
        return Ok(None);
    };
    if buf.len() < header.total() {
        return Ok(None);
    }
    let mut packet = buf.split_to(header.total()).freeze();
    let body = packet.split_off(header.header_len);
    let mut r = Reader::new(body, header.packet_type);
    // Only CONNECT gets past `fixed_header` without a version, and it brings its own.
    let v = version.unwrap_or(MqttVersion::V3_1_1);
    let packet = match header.packet_type {
        PacketType::Connect => MqttPacket::Connect(Box::new(Connect::read(&mut r)?)),
        PacketType::ConnAck => MqttPacket::ConnAck(ConnAck::read(&mut r, v)?),
        PacketType::Publish => MqttPacket::Publish(Publish::read(&mut r, v, header.flags)?),
        PacketType::PubAck => MqttPacket::PubAck(PubResponse::read(&mut r, v)?),
        PacketType::PubRec => MqttPacket::PubRec(PubResponse::read(&mut r, v)?),
        PacketType::PubRel => MqttPacket::PubRel(PubResponse::read(&mut r, v)?),
        PacketType::PubComp => MqttPacket::PubComp(PubResponse::read(&mut r, v)?),
        PacketType::Subscribe => MqttPacket::Subscribe(Subscribe::read(&mut r, v)?),
        PacketType::SubAck => MqttPacket::SubAck(SubAck::read(&mut r, v)?),
        PacketType::Unsubscribe => MqttPacket::Unsubscribe(Unsubscribe::read(&mut r, v)?),
        PacketType::UnsubAck => MqttPacket::UnsubAck(UnsubAck::read(&mut r, v)?),
        PacketType::PingReq => MqttPacket::PingReq,
        PacketType::PingResp => MqttPacket::PingResp,
        PacketType::Disconnect => MqttPacket::Disconnect(Disconnect::read(&mut r, v)?),
        PacketType::Auth => MqttPacket::Auth(Auth::read(&mut r)?),
    };
    r.finish()?;
    Ok(Some(packet))
}
