//! Fuzz target for `codecs::stomp::decode`.
//!
//! Decodes arbitrary bytes under every STOMP version, with small and default
//! limits. Every decoded frame is re-encoded and decoded again, and must come
//! back equal (modulo the one documented encoder rewrite: `content-length`
//! headers always state the body's true length). The `StompCodec` fed the
//! same bytes in chunks must agree with the one-shot decoder.
#![no_main]

use bytes::BytesMut;
use codecs::stomp::{decode, StompCodec, StompFrame, StompItem, StompLimits, StompVersion};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const SMALL: StompLimits = StompLimits {
    max_frame_bytes: 512,
    max_headers: 16,
    max_header_bytes: 64,
};

/// What the encoder writes for a decoded frame.
fn canonical(mut frame: StompFrame) -> StompFrame {
    let len = frame.body.len();
    for (name, value) in &mut frame.headers {
        let states_len = !value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit())
            && value.parse::<usize>().is_ok_and(|n| n == len);
        if name == "content-length" && !states_len {
            *value = len.to_string();
        }
    }
    frame
}

fn one_shot(data: &[u8], version: StompVersion, limits: &StompLimits) -> (Vec<StompItem>, bool) {
    let mut buf = BytesMut::from(data);
    let mut items = Vec::new();
    loop {
        let before = buf.len();
        match decode(&mut buf, version, limits) {
            Ok(Some(item)) => {
                assert!(buf.len() < before, "an item must consume bytes");
                items.push(item);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                return (items, false);
            }
            Err(_) => return (items, true),
        }
    }
}

fn chunked(
    data: &[u8],
    version: StompVersion,
    limits: &StompLimits,
    chunk: usize,
) -> (Vec<StompItem>, bool) {
    let mut codec = StompCodec::new(*limits);
    codec.set_version(version);
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
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 17) + 1;
    for version in StompVersion::ALL {
        for limits in [SMALL, StompLimits::default()] {
            let (items, failed) = one_shot(data, version, &limits);
            for item in &items {
                if let StompItem::Frame(frame) = item {
                    let mut wire = BytesMut::new();
                    frame.encode(version, &mut wire);
                    let again = decode(&mut wire, version, &StompLimits::default());
                    assert_eq!(again, Ok(Some(StompItem::Frame(canonical(frame.clone())))));
                    assert!(wire.is_empty(), "re-encoded frame left bytes behind");
                }
            }
            let (chunked_items, chunked_failed) = chunked(data, version, &limits, chunk);
            assert_eq!(failed, chunked_failed);
            assert_eq!(items, chunked_items);
        }
    }
});
