//! Fuzz target for `codecs::amqp091::decode_frame` and `ProtocolHeader::decode`.
//!
//! Decodes arbitrary bytes as a stream of frames, with small and default
//! limits. Every decoded frame is re-encoded: the encoding must decode back
//! equal, have the length of the bytes it was decoded from (only reserved
//! bits and non-canonical booleans may differ), and be stable when encoded
//! again. `Ok(None)` must consume nothing. The `Amqp091Codec` fed the same
//! bytes in chunks must agree with the one-shot decoder, and a server codec
//! must split off the protocol header as `ProtocolHeader::decode` does.
//! `decode_header_frame` on the whole input must agree with `decode_frame` when the input is
//! exactly one content header frame, and answer `Ok(None)` or an error otherwise.
#![no_main]

use bytes::BytesMut;
use codecs::amqp091::{
    body_frames, decode_frame, decode_header_frame, Amqp091Codec, Amqp091Item, Amqp091Limits, Frame, FramePayload,
    ProtocolHeader,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const SMALL: Amqp091Limits = Amqp091Limits {
    frame_max: 512,
    max_table_depth: 4,
};

fn one_shot(data: &[u8], limits: &Amqp091Limits) -> (Vec<Frame>, bool) {
    let mut buf = BytesMut::from(data);
    let mut frames = Vec::new();
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, limits) {
            Ok(Some(frame)) => {
                let consumed = before - buf.len();
                assert!(consumed > 0, "a frame must consume bytes");
                let wire = frame.to_bytes().expect("a decoded frame encodes");
                assert_eq!(wire.len(), consumed, "re-encoded length differs");
                let mut again = BytesMut::from(&wire[..]);
                let back = decode_frame(&mut again, &Amqp091Limits::default());
                assert_eq!(back, Ok(Some(frame.clone())));
                assert!(again.is_empty(), "re-encoded frame left bytes behind");
                assert_eq!(frame.to_bytes().ok(), Some(wire), "encoding is stable");
                frames.push(frame);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                return (frames, false);
            }
            Err(e) => {
                assert!([501, 502, 505, 540].contains(&e.reply_code()));
                return (frames, true);
            }
        }
    }
}

fn chunked(data: &[u8], mut codec: Amqp091Codec, chunk: usize) -> (Vec<Amqp091Item>, bool) {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(_) => return (items, true),
            }
        }
    }
    (items, false)
}

fuzz_target!(|data: &[u8]| {
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 23) + 1;
    for limits in [SMALL, Amqp091Limits::default()] {
        let (frames, failed) = one_shot(data, &limits);
        let (items, chunked_failed) = chunked(data, Amqp091Codec::client(limits), chunk);
        assert_eq!(failed, chunked_failed);
        let expected: Vec<Amqp091Item> = frames.iter().cloned().map(Amqp091Item::Frame).collect();
        assert_eq!(items, expected);

        // A server codec: the protocol header first, then frames if it is 0-9-1.
        let mut buf = BytesMut::from(data);
        let header = ProtocolHeader::decode(&mut buf);
        let (items, _) = chunked(data, Amqp091Codec::server(limits), chunk);
        match header {
            None => assert!(items.is_empty()),
            Some(ProtocolHeader::NotAmqp(seen)) => {
                // Decided on fewer bytes when they arrive in chunks.
                let [Amqp091Item::ProtocolHeader(ProtocolHeader::NotAmqp(got))] = &items[..] else {
                    panic!("expected one NotAmqp header, got {items:?}");
                };
                assert!(seen.starts_with(got));
            }
            Some(h) => {
                assert_eq!(items.first(), Some(&Amqp091Item::ProtocolHeader(h.clone())));
                if h.is_amqp091() {
                    let (frames, _) = one_shot(&buf, &limits);
                    let rest: Vec<Amqp091Item> =
                        frames.into_iter().map(Amqp091Item::Frame).collect();
                    assert_eq!(items.get(1..), Some(&rest[..]));
                } else {
                    assert_eq!(items.len(), 1);
                }
            }
        }
    }

    // The whole input as one kept content header frame.
    let whole = bytes::Bytes::copy_from_slice(data);
    for limits in [SMALL, Amqp091Limits::default()] {
        let kept = decode_header_frame(&whole, &limits);
        let mut buf = BytesMut::from(data);
        let framed = decode_frame(&mut buf, &limits);
        match (&framed, &kept) {
            // A header frame decode_frame accepts whole decodes the same in place.
            (Ok(Some(Frame { payload: FramePayload::Header(h), .. })), _) if buf.is_empty() => {
                assert_eq!(kept, Ok(Some((**h).clone())))
            }
            // decode_frame also refuses what a kept frame was checked for when it arrived
            // (channel 0, frame_max); anything else it decodes is not a whole header frame.
            (Err(_), _) | (_, Ok(None)) | (_, Err(_)) => {}
            (_, Ok(Some(_))) => panic!("only a whole header frame decodes: {framed:?}"),
        }
    }

    // Splitting the input as a body: the pieces cover it and fit frame_max.
    let frame_max = u32::from(data.last().copied().unwrap_or(0)) * 3;
    let body = bytes::Bytes::copy_from_slice(data);
    let mut joined = Vec::new();
    for frame in body_frames(1, body, frame_max) {
        let size = frame.to_bytes().map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(frame_max <= 8 || size <= frame_max as usize);
        if let FramePayload::Body(b) = frame.payload {
            joined.extend_from_slice(&b);
        }
    }
    assert_eq!(joined, data);
});
