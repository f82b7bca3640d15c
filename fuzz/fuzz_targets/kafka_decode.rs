//! Fuzz target for `codecs::kafka::{decode_frame, decode_request, decode_record_batches}`.
//!
//! Frames arbitrary bytes with a small and the default size limit (`Ok(None)` must consume
//! nothing), decodes each frame as a request, and re-encodes every decoded request: decoding
//! that again must give an equal request. The same bytes are also decoded as record batches
//! (with a small decompression limit), which must never panic.
#![no_main]

use bytes::{Bytes, BytesMut};
use codecs::kafka::{
    decode_frame, decode_record_batches, decode_request, encode_request, KafkaLimits,
    RecordLimits,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [
        KafkaLimits {
            max_frame_bytes: 64,
        },
        KafkaLimits::default(),
    ] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, &limits) {
                Ok(Some(frame)) => {
                    assert_eq!(buf.len() + 4 + frame.len(), before);
                    if let Ok(request) = decode_request(frame) {
                        let mut wire = BytesMut::new();
                        encode_request(&request, &mut wire);
                        let again = decode_frame(&mut wire, &KafkaLimits::default())
                            .expect("re-encoded frame")
                            .expect("complete frame");
                        assert_eq!(decode_request(again).as_ref(), Ok(&request));
                    }
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let _ = decode_record_batches(
        &Bytes::copy_from_slice(data),
        &RecordLimits {
            max_uncompressed_bytes: 1 << 16,
        },
    );
});
