//! The `tokio_util::codec` adapter.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::{decode_with, DecodeState};
use super::{StompDecodeError, StompFrame, StompItem, StompLimits, StompVersion};

/// Error from [`StompCodec`]: bad bytes from the peer, or the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum StompCodecError {
    /// The peer sent bytes that are not valid STOMP.
    #[error(transparent)]
    Decode(#[from] StompDecodeError),
    /// Reading or writing the transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util::codec` adapter over [`decode`](super::decode) and
/// [`StompFrame::encode`].
///
/// Starts at STOMP 1.0 (so a `CONNECT` can be read before anything is
/// negotiated); call [`StompCodec::set_version`] once the session has agreed
/// on one.
///
/// ### Invariants
///
/// - The codec remembers how far it has parsed a partly received frame, so it
///   must always be handed the same read buffer, which only grows at its end
///   between calls (as `FramedRead` does). If the buffer is found shorter than
///   the recorded progress, the progress is discarded and parsing restarts.
/// - Changing the version discards that progress: the frame is re-read from
///   its first byte under the new version.
#[derive(Debug)]
pub struct StompCodec {
    limits: StompLimits,
    version: StompVersion,
    state: DecodeState,
}

impl StompCodec {
    /// A codec at STOMP 1.0 that enforces `limits` on decode.
    pub fn new(limits: StompLimits) -> Self {
        StompCodec {
            limits,
            version: StompVersion::V1_0,
            state: DecodeState::default(),
        }
    }

    /// Switches both directions to `version` (after CONNECT/CONNECTED).
    pub fn set_version(&mut self, version: StompVersion) {
        if version != self.version {
            self.state.reset();
        }
        self.version = version;
    }

    /// The version frames are currently decoded and encoded with.
    pub fn version(&self) -> StompVersion {
        self.version
    }

    /// The limits enforced on decode.
    pub fn limits(&self) -> &StompLimits {
        &self.limits
    }
}

impl Decoder for StompCodec {
    type Item = StompItem;
    type Error = StompCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StompItem>, StompCodecError> {
        Ok(decode_with(
            src,
            self.version,
            &self.limits,
            &mut self.state,
        )?)
    }
}

impl Encoder<StompFrame> for StompCodec {
    type Error = StompCodecError;

    fn encode(&mut self, frame: StompFrame, dst: &mut BytesMut) -> Result<(), StompCodecError> {
        frame.encode(self.version, dst);
        Ok(())
    }
}

impl Encoder<&StompFrame> for StompCodec {
    type Error = StompCodecError;

    fn encode(&mut self, frame: &StompFrame, dst: &mut BytesMut) -> Result<(), StompCodecError> {
        frame.encode(self.version, dst);
        Ok(())
    }
}

impl Encoder<StompItem> for StompCodec {
    type Error = StompCodecError;

    /// A frame as [`StompFrame::encode`] writes it; a heart-beat as `"\n"`.
    fn encode(&mut self, item: StompItem, dst: &mut BytesMut) -> Result<(), StompCodecError> {
        item.encode(self.version, dst);
        Ok(())
    }
}
