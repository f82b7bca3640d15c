//! Encoding: a packet body into a scratch buffer, then the fixed header.

use bytes::{BufMut, BytesMut};

use super::wire::{put_var_int, var_int_len, var_int_of};
use super::{MqttEncodeError, MqttPacket, MqttVersion};

impl MqttPacket {
    /// Appends this packet's wire form for `version` to `dst`.
    ///
    /// CONNECT is always written for its own [`protocol`](super::Connect::protocol),
    /// whatever `version` says. The encoding is canonical (see the
    /// [module docs](super)).
    ///
    /// Fails, writing nothing, if the packet breaks a rule the decoder enforces
    /// or cannot be expressed in `version` (e.g. properties or a non-zero
    /// reason code before 5.0); a packet that encodes decodes back equal under
    /// the same version. The peer's Maximum Packet Size is the session's to
    /// check (compare the bytes written against it).
    pub fn encode(&self, version: MqttVersion, dst: &mut BytesMut) -> Result<(), MqttEncodeError> {
        let packet_type = self.packet_type();
        let mut body = BytesMut::new();
        let mut payload: &[u8] = &[];
        let flags = match self {
            MqttPacket::Connect(p) => p.write(&mut body)?,
            MqttPacket::ConnAck(p) => p.write(version, &mut body)?,
            MqttPacket::Publish(p) => {
                payload = &p.payload;
                p.write(version, &mut body)?
            }
            MqttPacket::PubAck(p) | MqttPacket::PubRec(p) | MqttPacket::PubComp(p) => {
                p.write(version, packet_type, &mut body)?;
                0
            }
            MqttPacket::PubRel(p) => {
                p.write(version, packet_type, &mut body)?;
                0x02
            }
            MqttPacket::Subscribe(p) => p.write(version, &mut body)?,
            MqttPacket::SubAck(p) => p.write(version, &mut body)?,
            MqttPacket::Unsubscribe(p) => p.write(version, &mut body)?,
            MqttPacket::UnsubAck(p) => p.write(version, &mut body)?,
            MqttPacket::PingReq | MqttPacket::PingResp => 0,
            MqttPacket::Disconnect(p) => p.write(version, &mut body)?,
            MqttPacket::Auth(p) => p.write(version, &mut body)?,
        };
        let remaining = body.len().saturating_add(payload.len());
        let remaining_len = var_int_of(remaining, packet_type)?;
        dst.reserve(1 + var_int_len(remaining_len) + remaining);
        dst.put_u8((packet_type.as_u8() << 4) | flags);
        put_var_int(dst, remaining_len);
        dst.put_slice(&body);
        dst.put_slice(payload);
        Ok(())
    }
}
