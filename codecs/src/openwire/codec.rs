//! The `tokio_util::codec` adapter.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{
    decode_frame, frame_len, Command, OpenWireDecodeError, OpenWireEncodeError, WireFormat,
};

/// Error from [`OpenWireCodec`]: bad bytes from the peer, a command that
/// cannot be encoded, or the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenWireCodecError {
    /// The peer sent bytes that are not valid OpenWire.
    #[error(transparent)]
    Decode(#[from] OpenWireDecodeError),
    /// A command could not be encoded.
    #[error(transparent)]
    Encode(#[from] OpenWireEncodeError),
    /// Reading or writing the transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util::codec` adapter over [`decode_frame`] and [`Command::encode`].
///
/// It starts in the pre-negotiation [`WireFormat`] (version 12, no stack
/// traces), in which both `WireFormatInfo`s are exchanged; the session then
/// calls [`OpenWireCodec::set_format`] with the negotiated values.
///
/// ### Invariants
///
/// - The codec holds no partial frame: all progress is in the read buffer.
#[derive(Debug, Clone, Default)]
pub struct OpenWireCodec {
    format: WireFormat,
}

impl OpenWireCodec {
    /// A codec in the given format.
    pub fn new(format: WireFormat) -> Self {
        OpenWireCodec { format }
    }

    /// The format in force.
    pub fn format(&self) -> &WireFormat {
        &self.format
    }

    /// Switches both directions to a negotiated format.
    pub fn set_format(&mut self, format: WireFormat) {
        self.format = format;
    }
}

impl Decoder for OpenWireCodec {
    type Item = Command;
    type Error = OpenWireCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Command>, OpenWireCodecError> {
        // Check the size as soon as the prefix is in, even before the frame is.
        frame_len(src, &self.format.limits)?;
        Ok(decode_frame(src, &self.format)?)
    }
}

impl Encoder<&Command> for OpenWireCodec {
    type Error = OpenWireCodecError;

    fn encode(&mut self, item: &Command, dst: &mut BytesMut) -> Result<(), OpenWireCodecError> {
        Ok(item.encode(dst, &self.format)?)
    }
}

impl Encoder<Command> for OpenWireCodec {
    type Error = OpenWireCodecError;

    fn encode(&mut self, item: Command, dst: &mut BytesMut) -> Result<(), OpenWireCodecError> {
        Ok(item.encode(dst, &self.format)?)
    }
}
