//! DISCONNECT and AUTH: a reason code and properties, both optional on the wire.

use bytes::BytesMut;

use super::properties::{read_properties, PropertyContext};
use super::publish::write_reason_and_properties;
use super::wire::Reader;
use super::{MqttDecodeError, MqttEncodeError, MqttVersion, PacketType, Properties};

/// Reads the 5.0 tail: nothing means reason 0 without properties; one byte is
/// the reason code alone.
fn read_reason_and_properties(
    r: &mut Reader,
    ctx: PropertyContext,
) -> Result<(u8, Properties), MqttDecodeError> {
    if r.remaining() == 0 {
        return Ok((0, Properties::default()));
    }
    let reason_code = r.u8("reason code")?;
    if r.remaining() == 0 {
        return Ok((reason_code, Properties::default()));
    }
    Ok((reason_code, read_properties(r, ctx)?))
}

/// DISCONNECT: an orderly close (client to server before 5.0; either way in 5.0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// 5.0 reason code (0 = normal disconnection); always 0 before 5.0.
    pub reason_code: u8,
    /// 5.0 properties (session expiry interval, reason string, server
    /// reference, user properties).
    pub properties: Properties,
}

impl Disconnect {
    pub(crate) fn read(r: &mut Reader, version: MqttVersion) -> Result<Self, MqttDecodeError> {
        if version < MqttVersion::V5 {
            return Ok(Disconnect::default());
        }
        let (reason_code, properties) = read_reason_and_properties(r, PropertyContext::Disconnect)?;
        Ok(Disconnect {
            reason_code,
            properties,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        write_reason_and_properties(
            self.reason_code,
            &self.properties,
            v,
            PacketType::Disconnect,
            PropertyContext::Disconnect,
            body,
        )?;
        Ok(0)
    }
}

/// AUTH (5.0 only): one step of an extended authentication exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub reason_code: u8,
    /// Properties (authentication method and data, reason string, user properties).
    pub properties: Properties,
}

impl Auth {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, MqttDecodeError> {
        let (reason_code, properties) = read_reason_and_properties(r, PropertyContext::Auth)?;
        Ok(Auth {
            reason_code,
            properties,
        })
    }

    pub(crate) fn write(&self, v: MqttVersion, body: &mut BytesMut) -> Result<u8, MqttEncodeError> {
        if v < MqttVersion::V5 {
            return Err(MqttEncodeError::NotInVersion {
                packet_type: PacketType::Auth,
                version: v,
                what: "the packet",
            });
        }
        write_reason_and_properties(
            self.reason_code,
            &self.properties,
            v,
            PacketType::Auth,
            PropertyContext::Auth,
            body,
        )?;
        Ok(0)
    }
}
