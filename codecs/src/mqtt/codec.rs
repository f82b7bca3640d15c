//! The `tokio_util::codec` adapter.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::fixed_header;
use super::{
    decode, decode_connect, MqttDecodeError, MqttEncodeError, MqttLimits, MqttPacket, MqttVersion,
};

/// Error from [`MqttCodec`]: bad bytes from the peer, a packet that cannot be
/// encoded, or the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum MqttCodecError {
    /// The peer sent bytes that are not a valid MQTT packet.
    #[error(transparent)]
    Decode(#[from] MqttDecodeError),
    /// A packet given to the encoder cannot be written.
    #[error(transparent)]
    Encode(#[from] MqttEncodeError),
    /// A packet other than CONNECT was given to the encoder before any version
    /// was known.
    #[error(
        "MQTT version unknown: encode or decode a CONNECT first, or use MqttCodec::with_version"
    )]
    VersionUnknown,
    /// Reading or writing the transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util::codec` adapter over [`decode`], [`decode_connect`] and
/// [`MqttPacket::encode`].
///
/// ### Invariants
///
/// - Until a version is known, only CONNECT can be decoded or encoded; the
///   first CONNECT decoded or encoded sets the version (a server learns it
///   from the client's CONNECT, a client from its own). Later CONNECTs
///   decoded do not change it; one encoded does.
/// - On `Ok(None)` the read buffer is grown to fit the announced packet, which
///   the limits have already bounded.
#[derive(Debug, Clone)]
pub struct MqttCodec {
    limits: MqttLimits,
    version: Option<MqttVersion>,
}

impl MqttCodec {
    /// A codec that waits for CONNECT to learn the version.
    pub fn new(limits: MqttLimits) -> Self {
        MqttCodec {
            limits,
            version: None,
        }
    }

    /// A codec for a connection already at `version`.
    pub fn with_version(limits: MqttLimits, version: MqttVersion) -> Self {
        MqttCodec {
            limits,
            version: Some(version),
        }
    }

    /// Switches both directions to `version`.
    pub fn set_version(&mut self, version: MqttVersion) {
        self.version = Some(version);
    }

    /// The version packets are decoded and encoded with, once known.
    pub fn version(&self) -> Option<MqttVersion> {
        self.version
    }

    /// The limits enforced on decode.
    pub fn limits(&self) -> &MqttLimits {
        &self.limits
    }
}

impl Decoder for MqttCodec {
    type Item = MqttPacket;
    type Error = MqttCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MqttPacket>, MqttCodecError> {
        let packet = match self.version {
            Some(v) => decode(src, v, &self.limits)?,
            None => decode_connect(src, &self.limits)?.map(|connect| {
                self.version = Some(connect.protocol);
                MqttPacket::Connect(Box::new(connect))
            }),
        };
        if packet.is_none() {
            if let Ok(Some(header)) = fixed_header(src, self.version, &self.limits) {
                src.reserve(header.total().saturating_sub(src.len()));
            }
        }
        Ok(packet)
    }
}

impl Encoder<&MqttPacket> for MqttCodec {
    type Error = MqttCodecError;

    fn encode(&mut self, packet: &MqttPacket, dst: &mut BytesMut) -> Result<(), MqttCodecError> {
        let version = match (packet, self.version) {
            (MqttPacket::Connect(connect), _) => connect.protocol,
            (_, Some(v)) => v,
            (_, None) => return Err(MqttCodecError::VersionUnknown),
        };
        packet.encode(version, dst)?;
        self.version = Some(version);
        Ok(())
    }
}

impl Encoder<MqttPacket> for MqttCodec {
    type Error = MqttCodecError;

    fn encode(&mut self, packet: MqttPacket, dst: &mut BytesMut) -> Result<(), MqttCodecError> {
        Encoder::<&MqttPacket>::encode(self, &packet, dst)
    }
}
