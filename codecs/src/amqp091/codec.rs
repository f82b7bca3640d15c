//! The `tokio_util::codec` adapter.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::frame::frame_len;
use super::{
    decode_frame, Amqp091DecodeError, Amqp091EncodeError, Amqp091Limits, Frame, ProtocolHeader,
};

/// Error from [`Amqp091Codec`]: bad bytes from the peer, a frame too large to
/// send, or the transport failed.
#[derive(Debug, thiserror::Error)]
pub enum Amqp091CodecError {
    /// The peer sent bytes that are not valid AMQP 0-9-1.
    #[error(transparent)]
    Decode(#[from] Amqp091DecodeError),
    /// A frame could not be encoded (e.g. larger than `frame_max`).
    #[error(transparent)]
    Encode(#[from] Amqp091EncodeError),
    /// Reading or writing the transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What [`Amqp091Codec`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amqp091Item {
    /// The protocol header the client opened with (first item only, and only
    /// for a codec made with [`Amqp091Codec::server`]).
    ProtocolHeader(ProtocolHeader),
    /// A frame.
    Frame(Frame),
}

/// Where the codec's decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's protocol header.
    ProtocolHeader,
    /// Reading frames.
    Frames,
    /// The header was not AMQP 0-9-1: input is discarded until the session
    /// has answered with the supported header and closed.
    Rejected,
}

/// `tokio_util::codec` adapter over [`ProtocolHeader::decode`],
/// [`decode_frame`] and [`Frame::encode`].
///
/// A server codec first yields the client's [`ProtocolHeader`]; if it is not
/// AMQP 0-9-1 the session should write
/// [`ProtocolHeader::AMQP_0_9_1_BYTES`] and close, and the codec discards any
/// further input. After that it yields frames, checking each frame's size
/// against `frame_max` from its 7-octet header before buffering the payload,
/// and reserving buffer space for exactly one frame at a time.
///
/// Outgoing frames larger than `frame_max` are refused with
/// [`Amqp091EncodeError::FrameTooLarge`]; use [`body_frames`](super::body_frames)
/// to split bodies. [`Amqp091Codec::set_frame_max`] applies the value
/// negotiated by `connection.tune`/`tune-ok` to both directions.
///
/// ### Invariants
///
/// - The codec holds no partial frame: all progress is in the read buffer,
///   so it may be handed any buffer at any time.
#[derive(Debug, Clone)]
pub struct Amqp091Codec {
    limits: Amqp091Limits,
    phase: Phase,
}

impl Amqp091Codec {
    /// A server-side codec: expects the protocol header, then frames.
    pub fn server(limits: Amqp091Limits) -> Self {
        Amqp091Codec {
            limits,
            phase: Phase::ProtocolHeader,
        }
    }

    /// A client-side codec: frames from the start (the server sends no
    /// protocol header unless it rejects ours, which then fails to decode as
    /// a frame: `AMQP` is not a frame type).
    pub fn client(limits: Amqp091Limits) -> Self {
        Amqp091Codec {
            limits,
            phase: Phase::Frames,
        }
    }

    /// Sets the largest frame, overhead included, in both directions (0: no
    /// limit beyond 32 bits). Call it with the `frame-max` of `tune-ok`.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.limits.frame_max = frame_max;
    }

    /// The largest frame accepted and sent.
    pub fn frame_max(&self) -> u32 {
        self.limits.frame_max
    }

    /// The limits enforced on decode.
    pub fn limits(&self) -> &Amqp091Limits {
        &self.limits
    }

    fn encode_frame(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Amqp091CodecError> {
        let start = dst.len();
        frame.encode(dst)?;
        let size = dst.len().saturating_sub(start);
        let max = self.limits.frame_max;
        if max != 0 && size > max as usize {
            dst.truncate(start);
            return Err(Amqp091EncodeError::FrameTooLarge {
                size,
                frame_max: max,
            }
            .into());
        }
        Ok(())
    }
}

impl Decoder for Amqp091Codec {
    type Item = Amqp091Item;
    type Error = Amqp091CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Amqp091Item>, Amqp091CodecError> {
        match self.phase {
            Phase::ProtocolHeader => {
                let Some(header) = ProtocolHeader::decode(src) else {
                    return Ok(None);
                };
                self.phase = if header.is_amqp091() {
                    Phase::Frames
                } else {
                    src.clear();
                    Phase::Rejected
                };
                Ok(Some(Amqp091Item::ProtocolHeader(header)))
            }
            Phase::Frames => match decode_frame(src, &self.limits)? {
                Some(frame) => Ok(Some(Amqp091Item::Frame(frame))),
                None => {
                    if let Some(total) = frame_len(src, &self.limits)? {
                        src.reserve(total.saturating_sub(src.len()));
                    }
                    Ok(None)
                }
            },
            Phase::Rejected => {
                src.clear();
                Ok(None)
            }
        }
    }
}

impl Encoder<Frame> for Amqp091Codec {
    type Error = Amqp091CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Amqp091CodecError> {
        self.encode_frame(&frame, dst)
    }
}

impl Encoder<&Frame> for Amqp091Codec {
    type Error = Amqp091CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Amqp091CodecError> {
        self.encode_frame(frame, dst)
    }
}

impl Encoder<ProtocolHeader> for Amqp091Codec {
    type Error = Amqp091CodecError;

    /// Writes a protocol header: a client's opening, or a server's answer to
    /// an unsupported one.
    fn encode(
        &mut self,
        header: ProtocolHeader,
        dst: &mut BytesMut,
    ) -> Result<(), Amqp091CodecError> {
        header.encode(dst);
        Ok(())
    }
}
