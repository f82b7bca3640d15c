//! Property tests for the AMQP 0-9-1 codec over its public API: round trips
//! of arbitrary tables, properties and frames, body splitting, the codec
//! agreeing with the one-shot decoder, and no panic on arbitrary bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use codecs::amqp091::*;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn short() -> impl Strategy<Value = ShortStr> {
    prop::collection::vec(any::<u8>(), 0..=24).prop_map(|v| ShortStr::try_from(&v[..]).unwrap())
}

fn value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<u32>().prop_map(|b| FieldValue::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| FieldValue::F64(f64::from_bits(b))),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| FieldValue::Decimal(Decimal { scale, value })),
        prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|v| FieldValue::LongString(Bytes::from(v))),
        prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|v| FieldValue::ByteArray(Bytes::from(v))),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            prop::collection::vec((short(), inner), 0..6)
                .prop_map(|e| FieldValue::Table(e.into_iter().collect())),
        ]
    })
}

fn table() -> impl Strategy<Value = FieldTable> {
    prop::collection::vec((short(), value()), 0..8).prop_map(|e| e.into_iter().collect())
}

fn properties() -> impl Strategy<Value = BasicProperties> {
    (
        (
            prop::option::of(short()),
            prop::option::of(short()),
            prop::option::of(table()),
            prop::option::of(any::<u8>()),
            prop::option::of(any::<u8>()),
            prop::option::of(short()),
            prop::option::of(short()),
        ),
        (
            prop::option::of(short()),
            prop::option::of(short()),
            prop::option::of(any::<u64>()),
            prop::option::of(short()),
            prop::option::of(short()),
            prop::option::of(short()),
            prop::option::of(short()),
        ),
    )
        .prop_map(
            |((ct, ce, h, dm, pr, co, rt), (ex, mi, ts, ty, ui, ai, ci))| BasicProperties {
                content_type: ct,
                content_encoding: ce,
                headers: h,
                delivery_mode: dm,
                priority: pr,
                correlation_id: co,
                reply_to: rt,
                expiration: ex,
                message_id: mi,
                timestamp: ts,
                message_type: ty,
                user_id: ui,
                app_id: ai,
                cluster_id: ci,
            },
        )
}

/// Frames the decoder can return (heartbeats on channel 0, content elsewhere).
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), short(), short(), any::<[bool; 5]>(), table()).prop_map(
            |(channel, exchange, exchange_type, b, arguments)| Frame::method(
                channel,
                ExchangeDeclare {
                    ticket: 0,
                    exchange,
                    exchange_type,
                    passive: b[0],
                    durable: b[1],
                    auto_delete: b[2],
                    internal: b[3],
                    no_wait: b[4],
                    arguments,
                }
            )
        ),
        (
            any::<u16>(),
            short(),
            any::<u64>(),
            any::<bool>(),
            short(),
            short()
        )
            .prop_map(
                |(channel, consumer_tag, delivery_tag, redelivered, exchange, routing_key)| {
                    Frame::method(
                        channel,
                        BasicDeliver {
                            consumer_tag,
                            delivery_tag,
                            redelivered,
                            exchange,
                            routing_key,
                        },
                    )
                }
            ),
        (prop::sample::select(Method::ALL), any::<u16>()).prop_map(|((c, m, _), channel)| {
            Frame::method(channel, Method::with_defaults(c, m).unwrap())
        }),
        (1..=u16::MAX, any::<u64>(), any::<u16>(), properties()).prop_map(
            |(channel, body_size, weight, properties)| Frame::header(
                channel,
                ContentHeader {
                    class_id: BASIC_CLASS_ID,
                    weight,
                    body_size,
                    properties
                }
            )
        ),
        (1..=u16::MAX, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(channel, body)| Frame::body(channel, body)),
        Just(Frame::heartbeat()),
    ]
}

fn decode_all(bytes: &[u8], limits: &Amqp091Limits) -> (Vec<Frame>, bool) {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, limits) {
            Ok(Some(f)) => {
                assert!(buf.len() < before, "a frame must consume bytes");
                frames.push(f);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                return (frames, false);
            }
            Err(e) => {
                // Every error maps to a hard-error reply code.
                assert!([501, 502, 505, 540].contains(&e.reply_code()), "{e:?}");
                return (frames, true);
            }
        }
    }
}

const SMALL: Amqp091Limits = Amqp091Limits {
    frame_max: 256,
    max_table_depth: 3,
};

proptest! {
    #[test]
    fn frames_round_trip(frames in prop::collection::vec(frame(), 1..6)) {
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let unlimited = Amqp091Limits { frame_max: 0, max_table_depth: 64 };
        let (back, failed) = decode_all(&wire, &unlimited);
        prop_assert!(!failed);
        prop_assert_eq!(back, frames);
    }

    #[test]
    fn codec_fed_in_chunks_agrees_with_one_shot(
        frames in prop::collection::vec(frame(), 1..6),
        chunk in 1usize..40,
    ) {
        let mut wire = BytesMut::from(&ProtocolHeader::AMQP_0_9_1_BYTES[..]);
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let mut codec = Amqp091Codec::server(Amqp091Limits { frame_max: 0, max_table_depth: 64 });
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                items.push(item);
            }
        }
        prop_assert!(buf.is_empty());
        let mut expected = vec![Amqp091Item::ProtocolHeader(ProtocolHeader::AMQP_0_9_1)];
        expected.extend(frames.into_iter().map(Amqp091Item::Frame));
        prop_assert_eq!(items, expected);
    }

    #[test]
    fn body_frames_cover_the_body_within_frame_max(
        body in prop::collection::vec(any::<u8>(), 0..3000),
        frame_max in prop_oneof![Just(0u32), 9u32..600, Just(4096)],
    ) {
        let body = Bytes::from(body);
        let mut joined = Vec::new();
        let frames: Vec<Frame> = body_frames(9, body.clone(), frame_max).collect();
        for f in &frames {
            let wire = f.to_bytes().unwrap();
            prop_assert!(frame_max == 0 || wire.len() <= frame_max as usize);
            let FramePayload::Body(b) = &f.payload else { panic!("not a body") };
            prop_assert!(!b.is_empty());
            joined.extend_from_slice(b);
        }
        prop_assert_eq!(&joined[..], &body[..]);
    }

    /// Arbitrary bytes: no panic, `Ok(None)` consumes nothing, and every
    /// decoded frame re-encodes to a frame that decodes equal.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        for limits in [SMALL, Amqp091Limits::default()] {
            let (frames, _) = decode_all(&data, &limits);
            for f in frames {
                let wire = f.to_bytes().unwrap();
                let mut buf = BytesMut::from(&wire[..]);
                prop_assert_eq!(decode_frame(&mut buf, &Amqp091Limits::default()), Ok(Some(f)));
                prop_assert!(buf.is_empty());
            }
        }
        let mut buf = BytesMut::from(&data[..]);
        let _ = ProtocolHeader::decode(&mut buf);
    }

    /// Well-framed payloads of arbitrary bytes after real class/method ids
    /// (and content headers): the argument decoders never panic, and what
    /// decodes re-encodes to an equal frame.
    #[test]
    fn arbitrary_arguments_never_panic(
        ids in prop::sample::select(Method::ALL),
        header in any::<bool>(),
        args in prop::collection::vec(prop_oneof![any::<u8>(), Just(0u8), Just(b'F'), Just(b'A'), Just(b'S')], 0..200),
    ) {
        let (class_id, method_id, _) = ids;
        let (frame_type, mut payload) = if header {
            (FRAME_HEADER, vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])
        } else {
            (FRAME_METHOD, [class_id.to_be_bytes(), method_id.to_be_bytes()].concat())
        };
        payload.extend_from_slice(&args);
        let mut wire = vec![frame_type, 0, 1];
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(&payload);
        wire.push(FRAME_END);
        for limits in [SMALL, Amqp091Limits::default()] {
            let mut buf = BytesMut::from(&wire[..]);
            if let Ok(Some(f)) = decode_frame(&mut buf, &limits) {
                let again = f.to_bytes().unwrap();
                let mut buf = BytesMut::from(&again[..]);
                prop_assert_eq!(decode_frame(&mut buf, &Amqp091Limits::default()), Ok(Some(f)));
            }
        }
    }
}
