//! Framing: the protocol header, frames to and from bytes, body splitting.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{patch_u32, u32_len, Reader};
use super::{
    Amqp091DecodeError, Amqp091EncodeError, Amqp091Limits, ContentHeader, Frame, FramePayload,
    Method, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD,
};

/// Octets of a frame header: type, channel, size.
const HEADER_LEN: usize = 7;

/// What a client opened the connection with.
///
/// A server that reads anything but [`ProtocolHeader::AMQP_0_9_1`] must,
/// per the specification, write [`ProtocolHeader::AMQP_0_9_1_BYTES`] (the
/// version it supports) and close the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolHeader {
    /// `AMQP` followed by four octets: 0-9-1 is `0 0 9 1`; RabbitMQ's 0-8 is
    /// `1 1 8 0`, the original 0-9 `1 1 0 9`, AMQP 1.0 `0 1 0 0` (`3 1 0 0`
    /// for its SASL layer).
    Amqp {
        /// Protocol id (0 for 0-9-1 and 1.0, 1 for 0-8/0-9, 2 TLS, 3 SASL).
        protocol_id: u8,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
        /// Revision.
        revision: u8,
    },
    /// Not an AMQP header: the first octets received (1 to 8: as many as
    /// were buffered when one of the first four turned out not to match
    /// `AMQP`).
    NotAmqp(Bytes),
}

impl ProtocolHeader {
    /// AMQP 0-9-1.
    pub const AMQP_0_9_1: ProtocolHeader = ProtocolHeader::Amqp {
        protocol_id: 0,
        major: 0,
        minor: 9,
        revision: 1,
    };

    /// The wire form of [`ProtocolHeader::AMQP_0_9_1`].
    pub const AMQP_0_9_1_BYTES: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

    /// Whether this is AMQP 0-9-1.
    pub fn is_amqp091(&self) -> bool {
        *self == Self::AMQP_0_9_1
    }

    /// Reads a protocol header from the front of `buf`, consuming it.
    ///
    /// `None` means the bytes so far could still start `AMQP` and 8 octets
    /// have not arrived (nothing consumed). Anything else is recognised,
    /// so never an error: an `AMQP` header of any version is consumed whole;
    /// other input is returned as [`ProtocolHeader::NotAmqp`] as soon as one
    /// of its first four octets does not match `AMQP` (with up to 8 buffered
    /// octets consumed), so a server can answer HTTP or TLS without waiting
    /// for 8 octets.
    pub fn decode(buf: &mut BytesMut) -> Option<ProtocolHeader> {
        let mismatch = buf
            .iter()
            .take(4)
            .zip(b"AMQP")
            .position(|(got, want)| got != want);
        if mismatch.is_some() {
            let n = buf.len().min(8);
            return Some(ProtocolHeader::NotAmqp(buf.split_to(n).freeze()));
        }
        let head = buf.get(..8)?;
        let header = match *head {
            [_, _, _, _, protocol_id, major, minor, revision] => ProtocolHeader::Amqp {
                protocol_id,
                major,
                minor,
                revision,
            },
            _ => return None,
        };
        let _ = buf.split_to(8);
        Some(header)
    }

    /// Appends the header's wire form (a [`ProtocolHeader::NotAmqp`]'s octets as read).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            ProtocolHeader::Amqp {
                protocol_id,
                major,
                minor,
                revision,
            } => {
                dst.put_slice(b"AMQP");
                dst.put_slice(&[*protocol_id, *major, *minor, *revision]);
            }
            ProtocolHeader::NotAmqp(bytes) => dst.put_slice(bytes),
        }
    }
}

/// The whole size of the frame whose header starts `buf`, once 7 octets are
/// in; errors if it exceeds `frame_max` or its type is unknown.
pub(crate) fn frame_len(
    buf: &[u8],
    limits: &Amqp091Limits,
) -> Result<Option<usize>, Amqp091DecodeError> {
    let Some(&[frame_type, _, _, s0, s1, s2, s3]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if !matches!(
        frame_type,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(Amqp091DecodeError::UnknownFrameType { frame_type });
    }
    let size = u32::from_be_bytes([s0, s1, s2, s3]);
    let total = u64::from(size) + FRAME_OVERHEAD as u64;
    if limits.frame_max != 0 && total > u64::from(limits.frame_max) {
        return Err(Amqp091DecodeError::FrameTooLarge {
            size,
            frame_max: limits.frame_max,
        });
    }
    usize::try_from(total)
        .map(Some)
        .map_err(|_| Amqp091DecodeError::FrameTooLarge {
            size,
            frame_max: limits.frame_max,
        })
}

/// Decodes one frame from the front of `buf`.
///
/// Returns `Ok(Some(frame))` with exactly the frame's bytes consumed,
/// `Ok(None)` when `buf` holds only part of a frame (nothing consumed), or an
/// error. The frame type and the size against `limits.frame_max` are checked
/// as soon as the 7 header octets are in, before the payload is buffered;
/// `Ok(None)` is only ever returned for a frame that fits. Errors in the
/// framing (type, size, end octet, heartbeat, channel) consume nothing;
/// errors inside a method or content header come after the frame was
/// consumed. Either way the connection must be closed
/// ([`Amqp091DecodeError::reply_code`]).
///
/// Body frames and long strings are slices of `buf`'s memory (no copy).
pub fn decode_frame(
    buf: &mut BytesMut,
    limits: &Amqp091Limits,
) -> Result<Option<Frame>, Amqp091DecodeError> {
    let Some(total) = frame_len(buf, limits)? else {
        return Ok(None);
    };
    let Some(&[frame_type, c0, c1, ..]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let Some(&end) = buf.get(total.saturating_sub(1)) else {
        return Ok(None);
    };
    if end != FRAME_END {
        return Err(Amqp091DecodeError::BadFrameEnd {
            offset: total.saturating_sub(1),
            found: end,
        });
    }
    let channel = u16::from_be_bytes([c0, c1]);
    let size = total.saturating_sub(FRAME_OVERHEAD);
    match frame_type {
        FRAME_HEARTBEAT if channel != 0 || size != 0 => {
            return Err(Amqp091DecodeError::BadHeartbeat {
                channel,
                size: u32::try_from(size).unwrap_or(u32::MAX),
            });
        }
        FRAME_HEADER | FRAME_BODY if channel == 0 => {
            return Err(Amqp091DecodeError::ContentOnChannelZero { frame_type });
        }
        _ => {}
    }
    let frame = buf.split_to(total).freeze();
    let payload = frame.slice(HEADER_LEN..HEADER_LEN.saturating_add(size));
    let payload = match frame_type {
        FRAME_METHOD => FramePayload::Method(Method::decode(&mut reader(payload, limits))?),
        FRAME_HEADER => FramePayload::Header(Box::new(ContentHeader::decode(&mut reader(
            payload, limits,
        ))?)),
        FRAME_BODY => FramePayload::Body(payload),
        _ => FramePayload::Heartbeat,
    };
    Ok(Some(Frame { channel, payload }))
}

/// Decodes the content header held in `frame`, the whole wire form of one content header frame
/// (as [`Frame::to_bytes`] makes it), without copying it: what the header holds (strings,
/// tables) are slices of `frame`. A message kept with the header frame it arrived with is
/// delivered again this way at the cost of the decode alone, where [`decode_frame`] would need
/// the bytes copied into a `BytesMut` it can split.
///
/// `Ok(None)` when `frame` is not exactly one content header frame (type, size field, end
/// octet); an error inside the header is returned as [`decode_frame`] returns it.
pub fn decode_header_frame(
    frame: &Bytes,
    limits: &Amqp091Limits,
) -> Result<Option<ContentHeader>, Amqp091DecodeError> {
    let Some(&[frame_type, _, _, s0, s1, s2, s3]) = frame.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let Ok(size) = usize::try_from(u32::from_be_bytes([s0, s1, s2, s3])) else {
        return Ok(None);
    };
    let end = HEADER_LEN.checked_add(size);
    if frame_type != FRAME_HEADER
        || frame.last() != Some(&FRAME_END)
        || end.and_then(|e| e.checked_add(1)) != Some(frame.len())
    {
        return Ok(None);
    }
    // In range: `HEADER_LEN + size + 1 == frame.len()` was just checked.
    let payload = frame.slice(HEADER_LEN..end.unwrap_or(HEADER_LEN));
    ContentHeader::decode(&mut reader(payload, limits)).map(Some)
}

fn reader(payload: Bytes, limits: &Amqp091Limits) -> Reader {
    Reader::new(payload, HEADER_LEN, limits.max_table_depth)
}

impl Frame {
    /// Appends the frame's wire form to `dst`: type, channel, size, payload,
    /// end octet.
    ///
    /// Every frame [`decode_frame`] returns encodes back to a frame that
    /// decodes equal to it, and to the very same bytes unless the peer set
    /// reserved bits or sent a boolean other than 0 or 1. Heartbeats are
    /// written on the frame's channel (it should be 0). The frame is not
    /// checked against a `frame_max` here ([`Amqp091Codec`](super::Amqp091Codec)
    /// does); on error `dst` is left as it was.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        let start = dst.len();
        let result = self.encode_unchecked(dst, start);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, dst: &mut BytesMut, start: usize) -> Result<(), Amqp091EncodeError> {
        if let FramePayload::Body(body) = &self.payload {
            dst.reserve(body.len().saturating_add(FRAME_OVERHEAD));
        }
        dst.put_u8(self.payload.frame_type());
        dst.put_u16(self.channel);
        dst.put_u32(0);
        match &self.payload {
            FramePayload::Method(m) => m.encode(dst)?,
            FramePayload::Header(h) => h.encode(dst)?,
            FramePayload::Body(b) => dst.put_slice(b),
            FramePayload::Heartbeat => {}
        }
        let size = dst.len().saturating_sub(start).saturating_sub(HEADER_LEN);
        let size = u32_len("frame payload", size)?;
        patch_u32(dst, start.saturating_add(3), size);
        dst.put_u8(FRAME_END);
        Ok(())
    }

    /// The frame's wire form as new bytes.
    pub fn to_bytes(&self) -> Result<Bytes, Amqp091EncodeError> {
        let mut dst = BytesMut::new();
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }
}

/// Splits a message body into body frames on `channel` that each fit
/// `frame_max` (whole frame, overhead included; 0 means no limit). Slices
/// share `body`'s memory. An empty body yields no frames, as the protocol
/// wants.
pub fn body_frames(channel: u16, body: Bytes, frame_max: u32) -> BodyFrames {
    let chunk = match frame_max {
        0 => u32::MAX as usize - FRAME_OVERHEAD,
        max => (max as usize).saturating_sub(FRAME_OVERHEAD).max(1),
    };
    BodyFrames {
        channel,
        rest: body,
        chunk,
    }
}

/// The iterator [`body_frames`] returns.
#[derive(Debug, Clone)]
pub struct BodyFrames {
    channel: u16,
    rest: Bytes,
    chunk: usize,
}

impl Iterator for BodyFrames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.rest.is_empty() {
            return None;
        }
        let n = self.chunk.min(self.rest.len());
        let piece = self.rest.split_to(n);
        Some(Frame::body(self.channel, piece))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().div_ceil(self.chunk);
        (n, Some(n))
    }
}

impl ExactSizeIterator for BodyFrames {}
