//! Connection buffers that follow the traffic: small while a connection is idle, 32 KiB while
//! it is busy.
//!
//! `tokio_util`'s `Framed::new` gives every connection an 8 KiB read buffer and an 8 KiB write
//! buffer up front and keeps them for the connection's life: with 10,000 idle MQTT clients that
//! was 160 MiB of buffers holding a CONNECT and a CONNACK each. Here a connection starts with
//! [`START_CAPACITY`] bytes each way:
//!
//! - **Write**: the buffer grows as frames are encoded into it (it doubles, as a `Vec` does) and
//!   is written out once it passes the back-pressure boundary, [`BUSY_CAPACITY`], so a burst
//!   of deliveries goes out in 32 KiB writes. (`Framed::new` has 8 KiB: with 1 KiB messages
//!   that was one `writev` per 7 deliveries, a syscall whose fixed cost on loopback, waking the
//!   reader included, was a large part of the gateway's CPU per message.)
//! - **Read**: [`Adaptive`] sizes the buffer before each read from the last one, as Netty's
//!   adaptive receive buffer does: a read that filled the buffer means the peer has more to
//!   say, so the buffer grows to [`BUSY_CAPACITY`] at once (the rest comes in one `read`, as
//!   before); a read that left room sizes the next one to what it brought (at least
//!   [`START_CAPACITY`]), so a connection that goes quiet after a burst gives its buffer back.
//!
//! [`next_buffered`] decodes a frame already read without reading more, so that a session can
//! handle every frame one read brought (and the work they make ready) before it flushes its
//! replies once, rather than once per frame.
//!
//! The codecs stay as they are: [`Adaptive`] only changes capacities between decodes, never the
//! bytes, and derefs to the codec it wraps (`framed.codec_mut().set_version(..)` still works).

use bytes::BytesMut;
use std::ops::{Deref, DerefMut};
use tokio_util::codec::{Decoder, Encoder, FramedParts};

/// What a new connection's read and write buffers start with: a handshake fits.
pub const START_CAPACITY: usize = 512;

/// The read buffer of a busy connection, and the write back-pressure boundary (`tokio_util`
/// has 8 KiB; a busy connection makes 4 times fewer syscalls with 32 KiB).
pub const BUSY_CAPACITY: usize = 32 * 1024;

/// A framed connection whose buffers follow the traffic (see the module documentation).
pub type Framed<S, C> = tokio_util::codec::Framed<S, Adaptive<C>>;

/// Frames `stream` with `codec`, starting with small buffers.
pub fn framed<S, C>(stream: S, codec: C) -> Framed<S, C> {
    let mut framed =
        tokio_util::codec::Framed::with_capacity(stream, Adaptive::new(codec), START_CAPACITY);
    // `with_capacity` also makes the capacity the write back-pressure boundary: write in
    // `BUSY_CAPACITY` chunks under load.
    framed.set_backpressure_boundary(BUSY_CAPACITY);
    framed
}

/// [`framed`], with bytes already read from the stream (protocol sniffing) to decode first;
/// `I` is one of the frame types the codec encodes.
pub fn framed_with<I, S, C: Encoder<I>>(stream: S, codec: C, preread: BytesMut) -> Framed<S, C> {
    if preread.is_empty() {
        return framed(stream, codec);
    }
    // Only `from_parts` marks buffered bytes as ready to decode before the next read; it also
    // sizes both buffers to 8 KiB. The write buffer is replaced at once; the read buffer is
    // given back by `Adaptive` after the first decode if the connection stays quiet.
    let mut parts = FramedParts::new::<I>(stream, Adaptive::new(codec));
    parts.read_buf = preread;
    let mut framed = tokio_util::codec::Framed::from_parts(parts);
    *framed.write_buffer_mut() = BytesMut::with_capacity(START_CAPACITY);
    framed.set_backpressure_boundary(BUSY_CAPACITY);
    framed
}

/// The next frame among the bytes already read, decoded without reading from the stream
/// (`Ok(None)`: none is complete). Frames come out in order with those of `framed.next()`.
///
/// It calls the wrapped codec directly, so that `Adaptive` does not take this look for a read
/// and resize the buffer: only reads made by `Framed` size it.
pub fn next_buffered<S, C: Decoder>(
    framed: &mut Framed<S, C>,
) -> Result<Option<C::Item>, C::Error> {
    if framed.read_buffer().is_empty() {
        return Ok(None);
    }
    let mut buf = std::mem::take(framed.read_buffer_mut());
    let frame = framed.codec_mut().codec.decode(&mut buf);
    *framed.read_buffer_mut() = buf;
    frame
}

/// A codec wrapper that sizes the read buffer between reads; see the module documentation.
///
/// ### Invariants
/// `unread` is the length the buffer had when `decode` last asked for more bytes, so the first
/// `decode` after a read sees `src.len() - unread` new bytes.
#[derive(Debug)]
pub struct Adaptive<C> {
    codec: C,
    /// Bytes left undecoded when the codec last asked for more.
    unread: usize,
    /// The next `decode` is the first after a read.
    after_read: bool,
    /// What the next read should have room for.
    next_read: usize,
}

impl<C> Adaptive<C> {
    /// Wraps `codec`.
    pub fn new(codec: C) -> Self {
        Self {
            codec,
            unread: 0,
            after_read: true,
            next_read: START_CAPACITY,
        }
    }

    /// Called on the first decode after a read: sizes the next read from this one.
    fn after_read(&mut self, src: &mut BytesMut) {
        let read = src.len().saturating_sub(self.unread);
        if src.len() >= src.capacity() {
            // The read filled the buffer: more is probably waiting in the socket. Read it in
            // 8 KiB chunks from now on (and the rest of this burst in one go).
            self.next_read = BUSY_CAPACITY;
            if src.capacity() < BUSY_CAPACITY {
                src.reserve(BUSY_CAPACITY - src.len());
            }
        } else {
            self.next_read = read
                .checked_next_power_of_two()
                .unwrap_or(BUSY_CAPACITY)
                .clamp(START_CAPACITY, BUSY_CAPACITY);
        }
    }

    /// Called when the codec needs more bytes: leaves room for the next read, giving back
    /// what a quiet connection does not need.
    fn before_read(&mut self, src: &mut BytesMut) {
        let room = self.next_read;
        if src.is_empty() {
            if src.capacity() > 2 * room {
                // A burst is over: let the large buffer go (it is freed once the frames
                // decoded from it are).
                *src = BytesMut::with_capacity(room);
            } else if src.capacity() < room {
                // Reuses the allocation when nothing else holds it, as `Framed` would.
                src.reserve(room);
            }
        } else {
            // Part of a frame is here: room for its rest (the codecs reserve for large frames).
            let want = room.max(src.len() + room / 2);
            if src.capacity() < want {
                src.reserve(want - src.len());
            }
        }
        self.unread = src.len();
        self.after_read = true;
    }
}

impl<C> Deref for Adaptive<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.codec
    }
}

impl<C> DerefMut for Adaptive<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.codec
    }
}

impl<C: Decoder> Decoder for Adaptive<C> {
    type Item = C::Item;
    type Error = C::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if self.after_read {
            self.after_read = false;
            self.after_read(src);
        }
        let frame = self.codec.decode(src)?;
        if frame.is_none() {
            self.before_read(src);
        }
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        self.codec.decode_eof(src)
    }
}

impl<I, C: Encoder<I>> Encoder<I> for Adaptive<C> {
    type Error = C::Error;

    fn encode(&mut self, item: I, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.codec.encode(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::LinesCodec;

    /// One read as `Framed` does it: `reserve(1)`, take from `socket` what fits in the spare
    /// capacity, then decode until the codec asks for more.
    fn read(codec: &mut Adaptive<LinesCodec>, buf: &mut BytesMut, socket: &mut &[u8]) -> usize {
        buf.reserve(1);
        let n = socket.len().min(buf.capacity() - buf.len());
        buf.extend_from_slice(&socket[..n]);
        *socket = &socket[n..];
        let mut lines = 0;
        while let Ok(Some(_)) = codec.decode(buf) {
            lines += 1;
        }
        lines
    }

    #[test]
    fn a_quiet_connection_keeps_a_small_buffer() {
        let mut codec = Adaptive::new(LinesCodec::new());
        let mut buf = BytesMut::with_capacity(START_CAPACITY);
        assert_eq!(read(&mut codec, &mut buf, &mut &b"CONNECT\n"[..]), 1);
        assert!(buf.capacity() <= START_CAPACITY, "{}", buf.capacity());
    }

    #[test]
    fn a_burst_is_read_in_8_kib_reads_and_the_buffer_given_back_after() {
        let mut codec = Adaptive::new(LinesCodec::new());
        let mut buf = BytesMut::with_capacity(START_CAPACITY);
        let burst = ("x".repeat(99) + "\n").repeat(400); // 40,000 bytes waiting
        let mut socket = burst.as_bytes();
        let (mut lines, mut reads) = (0, 0);
        while !socket.is_empty() {
            lines += read(&mut codec, &mut buf, &mut socket);
            reads += 1;
        }
        assert_eq!(lines, 400);
        // 512 bytes, then 32 KiB reads: 3 reads rather than 79 of 512 bytes.
        assert!(reads <= 3, "{reads} reads");
        // Then a quiet message: the buffer goes back to a small one.
        assert_eq!(read(&mut codec, &mut buf, &mut &b"PING\n"[..]), 1);
        assert_eq!(read(&mut codec, &mut buf, &mut &b"PING\n"[..]), 1);
        assert!(buf.capacity() <= START_CAPACITY, "{}", buf.capacity());
    }

    #[test]
    fn the_rest_of_a_long_frame_comes_in_one_read() {
        let mut codec = Adaptive::new(LinesCodec::new());
        let mut buf = BytesMut::with_capacity(START_CAPACITY);
        let long = "y".repeat(3000) + "\n";
        let mut socket = long.as_bytes();
        // The first read fills the 512-byte buffer: the decode after it makes room for 8 KiB.
        assert_eq!(read(&mut codec, &mut buf, &mut socket), 0);
        assert!(buf.capacity() >= BUSY_CAPACITY, "{}", buf.capacity());
        assert_eq!(read(&mut codec, &mut buf, &mut socket), 1);
        assert!(socket.is_empty());
    }

    #[test]
    fn buffered_frames_are_decoded_in_order_without_resizing_the_buffer() {
        let mut framed = framed_with::<String, _, _>(
            tokio::io::duplex(64).0,
            LinesCodec::new(),
            BytesMut::from(&b"one\ntwo\nthr"[..]),
        );
        let first = futures::executor::block_on(futures::StreamExt::next(&mut framed));
        assert_eq!(first.and_then(Result::ok).as_deref(), Some("one"));
        let capacity = framed.read_buffer().capacity();
        assert_eq!(
            next_buffered(&mut framed).ok().flatten().as_deref(),
            Some("two")
        );
        // An incomplete frame stays for the next read; the buffer is left as it was.
        assert_eq!(next_buffered(&mut framed).ok().flatten(), None);
        assert_eq!(framed.read_buffer().as_ref(), b"thr");
        // (Only the 4 bytes of "two\n" went, from the front.)
        assert_eq!(framed.read_buffer().capacity(), capacity - 4);
    }

    #[test]
    fn bytes_read_before_framing_are_decoded_first() {
        let mut framed = framed_with::<String, _, _>(
            tokio::io::duplex(64).0,
            LinesCodec::new(),
            BytesMut::from(&b"AMQP\n"[..]),
        );
        assert_eq!(framed.read_buffer().as_ref(), b"AMQP\n");
        // Decoded before anything is read: the stream has nothing to give.
        let line = futures::executor::block_on(futures::StreamExt::next(&mut framed));
        assert_eq!(line.and_then(Result::ok).as_deref(), Some("AMQP"));
        assert_eq!(framed.backpressure_boundary(), BUSY_CAPACITY);
        assert!(framed.write_buffer().capacity() <= START_CAPACITY);
        let _ = framed.codec_mut().max_length();
    }
}
