//! Unit tests for the AMQP 0-9-1 codec. Property tests over the public API
//! live in `tests/amqp091_props.rs`, golden bytes from pika and RabbitMQ in
//! `tests/amqp091_golden.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;

fn limits() -> Amqp091Limits {
    Amqp091Limits::default()
}

fn encode(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf).unwrap();
    buf
}

/// Decodes exactly one frame from `bytes`, asserting every byte is consumed.
fn decode_one(bytes: &[u8]) -> Result<Frame, Amqp091DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let frame = decode_frame(&mut buf, &limits())?.expect("a whole frame");
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(frame)
}

fn decode_err(bytes: &[u8], limits: &Amqp091Limits) -> Amqp091DecodeError {
    let mut buf = BytesMut::from(bytes);
    decode_frame(&mut buf, limits).expect_err("an error")
}

/// A frame of `frame_type` on `channel` around `payload`, size set truthfully.
fn raw_frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![frame_type];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(FRAME_END);
    v
}

fn method_payload(class_id: u16, method_id: u16, args: &[u8]) -> Vec<u8> {
    let mut v = class_id.to_be_bytes().to_vec();
    v.extend_from_slice(&method_id.to_be_bytes());
    v.extend_from_slice(args);
    v
}

fn s(v: &'static str) -> ShortStr {
    ShortStr::from_static(v)
}

/// A table with one value of every type, nested tables and arrays included.
fn every_type_table() -> FieldTable {
    FieldTable::new()
        .with("bool", true)
        .with("i8", -8i8)
        .with("u8", 200u8)
        .with("i16", -1600i16)
        .with("u16", 60000u16)
        .with("i32", -320_000i32)
        .with("u32", 4_000_000_000u32)
        .with("i64", -(1i64 << 40))
        .with("f32", 1.5f32)
        .with("f64", -2.25f64)
        .with(
            "dec",
            Decimal {
                scale: 2,
                value: 314,
            },
        )
        .with("str", "text é")
        .with(
            "bytes",
            FieldValue::ByteArray(Bytes::from_static(b"\0\xff")),
        )
        .with(
            "array",
            vec![
                FieldValue::I32(1),
                FieldValue::string("two"),
                FieldValue::Array(vec![FieldValue::Void]),
                FieldValue::Table(FieldTable::new().with("k", 1u8)),
            ],
        )
        .with("ts", FieldValue::Timestamp(1_700_000_000))
        .with(
            "table",
            FieldTable::new().with("inner", FieldTable::new().with("deep", "x")),
        )
        .with("void", FieldValue::Void)
}

fn all_properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(s("text/plain")),
        content_encoding: Some(s("gzip")),
        headers: Some(every_type_table()),
        delivery_mode: Some(2),
        priority: Some(9),
        correlation_id: Some(s("c")),
        reply_to: Some(s("r")),
        expiration: Some(s("1000")),
        message_id: Some(s("m")),
        timestamp: Some(1_700_000_000),
        message_type: Some(s("t")),
        user_id: Some(s("u")),
        app_id: Some(s("a")),
        cluster_id: Some(s("")),
    }
}

/// A few frames of every kind, for truncation and codec tests.
fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::method(
            0,
            ConnectionStart {
                version_major: 0,
                version_minor: 9,
                server_properties: every_type_table(),
                mechanisms: Bytes::from_static(b"PLAIN"),
                locales: Bytes::from_static(b"en_US"),
            },
        ),
        Frame::method(
            3,
            QueueDeclare {
                queue: s("q"),
                durable: true,
                auto_delete: true,
                arguments: FieldTable::new().with("x-max-priority", 10i32),
                ..Default::default()
            },
        ),
        Frame::method(
            3,
            BasicNack {
                delivery_tag: u64::MAX,
                multiple: true,
                requeue: true,
            },
        ),
        Frame::method(0, ConnectionCloseOk {}),
        Frame::header(7, ContentHeader::new(5, all_properties())),
        Frame::header(7, ContentHeader::new(0, BasicProperties::default())),
        Frame::body(7, "hello"),
        Frame::body(7, ""),
        Frame::heartbeat(),
    ]
}

// ------------------------------------------------------------------ methods

#[test]
fn method_ids_and_names_match_rabbitmq_codegen() {
    assert_eq!(Method::ALL.len(), 66);
    let ids: Vec<(u16, u16)> = Method::ALL.iter().map(|&(c, m, _)| (c, m)).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "ids are unique and in order");
    for &(class_id, method_id, name) in Method::ALL {
        let m = Method::with_defaults(class_id, method_id).unwrap();
        assert_eq!(
            (m.class_id(), m.method_id(), m.name()),
            (class_id, method_id, name)
        );
        assert_eq!(Method::name_of(class_id, method_id), Some(name));
    }
    assert_eq!(Method::name_of(40, 41), None, "exchange.unbind-ok is 40.51");
    assert_eq!(Method::name_of(40, 51), Some("exchange.unbind-ok"));
    let content: Vec<&str> = Method::ALL
        .iter()
        .map(|&(c, m, _)| Method::with_defaults(c, m).unwrap())
        .filter(Method::has_content)
        .map(|m| m.name())
        .collect();
    assert_eq!(
        content,
        [
            "basic.publish",
            "basic.return",
            "basic.deliver",
            "basic.get-ok"
        ]
    );
}

#[test]
fn every_method_with_default_arguments_round_trips() {
    for &(class_id, method_id, name) in Method::ALL {
        let m = Method::with_defaults(class_id, method_id).unwrap();
        let frame = Frame::method(1, m);
        let wire = encode(&frame);
        assert_eq!(decode_one(&wire), Ok(frame), "{name}");
    }
}

#[test]
fn method_wire_layout() {
    // queue.declare: ticket, shortstr, 5 bits in one octet, table.
    let frame = Frame::method(
        1,
        QueueDeclare {
            ticket: 0,
            queue: s("gw.q"),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: true,
            no_wait: false,
            arguments: FieldTable::new(),
        },
    );
    let payload = method_payload(50, 10, b"\x00\x00\x04gw.q\x0a\x00\x00\x00\x00");
    assert_eq!(&encode(&frame)[..], &raw_frame(1, 1, &payload)[..]);

    // basic.deliver: bits separated by a longlong and shortstrs each take an octet.
    let frame = Frame::method(
        1,
        BasicGetOk {
            delivery_tag: 2,
            redelivered: true,
            exchange: s("e"),
            routing_key: s(""),
            message_count: 7,
        },
    );
    let payload = method_payload(
        60,
        71,
        b"\x00\x00\x00\x00\x00\x00\x00\x02\x01\x01e\x00\x00\x00\x00\x07",
    );
    assert_eq!(&encode(&frame)[..], &raw_frame(1, 1, &payload)[..]);

    // access.request: realm then five bits in one octet.
    let frame = Frame::method(
        1,
        AccessRequest {
            realm: s("/data"),
            exclusive: true,
            passive: false,
            active: true,
            write: false,
            read: true,
        },
    );
    let payload = method_payload(30, 10, b"\x05/data\x15");
    assert_eq!(&encode(&frame)[..], &raw_frame(1, 1, &payload)[..]);
}

#[test]
fn nine_bits_spill_into_a_second_octet() {
    // No method has more than five consecutive bits; exercise the writer and
    // reader directly.
    let bits = [true, false, true, true, false, false, true, false, true];
    let mut buf = BytesMut::new();
    let mut w = wire::Writer::new(&mut buf);
    for b in &bits {
        w.bit(b).unwrap();
    }
    w.finish();
    assert_eq!(&buf[..], b"\x4d\x01");
    let mut r = wire::Reader::new(buf.freeze(), 0, 1);
    for b in bits {
        assert_eq!(r.bit().unwrap(), b);
    }
    assert!(r.is_empty());
}

#[test]
fn reserved_bits_are_ignored_and_written_as_zero() {
    let payload = method_payload(60, 80, b"\x00\x00\x00\x00\x00\x00\x00\x05\xff");
    let frame = decode_one(&raw_frame(1, 1, &payload)).unwrap();
    assert_eq!(
        frame,
        Frame::method(
            1,
            BasicAck {
                delivery_tag: 5,
                multiple: true
            }
        )
    );
    assert_eq!(
        encode(&frame).last_chunk::<2>(),
        Some(&[0x01, FRAME_END]),
        "only the multiple bit is written"
    );
}

// ------------------------------------------------------------------ generated methods

/// Wire bytes for arguments of the given domains, built independently of
/// the codec (tables aside, which use `FieldTable::encode`).
fn args_strategy(kinds: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    let parts: Vec<BoxedStrategy<(bool, Vec<u8>)>> = kinds
        .iter()
        .map(|&kind| -> BoxedStrategy<(bool, Vec<u8>)> {
            match kind {
                "bit" => any::<bool>()
                    .prop_map(|b| (true, vec![u8::from(b)]))
                    .boxed(),
                "octet" => any::<u8>().prop_map(|v| (false, vec![v])).boxed(),
                "short" => any::<u16>()
                    .prop_map(|v| (false, v.to_be_bytes().to_vec()))
                    .boxed(),
                "long" => any::<u32>()
                    .prop_map(|v| (false, v.to_be_bytes().to_vec()))
                    .boxed(),
                "longlong" | "timestamp" => any::<u64>()
                    .prop_map(|v| (false, v.to_be_bytes().to_vec()))
                    .boxed(),
                "shortstr" => prop::collection::vec(any::<u8>(), 0..=255)
                    .prop_map(|v| {
                        let mut out = vec![v.len() as u8];
                        out.extend(v);
                        (false, out)
                    })
                    .boxed(),
                "longstr" => prop::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|v| {
                        let mut out = (v.len() as u32).to_be_bytes().to_vec();
                        out.extend(v);
                        (false, out)
                    })
                    .boxed(),
                "table" => table_strategy()
                    .prop_map(|t| {
                        let mut out = BytesMut::new();
                        t.encode(&mut out).unwrap();
                        (false, out.to_vec())
                    })
                    .boxed(),
                other => panic!("unknown domain {other}"),
            }
        })
        .collect();
    parts
        .prop_map(|parts| {
            let mut out = Vec::new();
            let mut bits = 0u8;
            let mut nbits = 0u8;
            for (is_bit, bytes) in parts {
                if is_bit {
                    if nbits == 8 {
                        out.push(bits);
                        bits = 0;
                        nbits = 0;
                    }
                    bits |= bytes[0] << nbits;
                    nbits += 1;
                } else {
                    if nbits > 0 {
                        out.push(bits);
                        bits = 0;
                        nbits = 0;
                    }
                    out.extend(bytes);
                }
            }
            if nbits > 0 {
                out.push(bits);
            }
            out
        })
        .boxed()
}

fn value_strategy() -> impl Strategy<Value = FieldValue> {
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
        prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|v| FieldValue::LongString(Bytes::from(v))),
        prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|v| FieldValue::ByteArray(Bytes::from(v))),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            prop::collection::vec((prop::collection::vec(any::<u8>(), 0..12), inner), 0..6)
                .prop_map(|entries| {
                    FieldValue::Table(
                        entries
                            .into_iter()
                            .map(|(n, v)| (ShortStr::try_from(&n[..]).unwrap(), v))
                            .collect(),
                    )
                }),
        ]
    })
}

fn table_strategy() -> impl Strategy<Value = FieldTable> {
    prop::collection::vec(
        (prop::collection::vec(any::<u8>(), 0..12), value_strategy()),
        0..6,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|(n, v)| (ShortStr::try_from(&n[..]).unwrap(), v))
            .collect()
    })
}

fn method_wire() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(Method::SCHEMA).prop_flat_map(|(class_id, method_id, kinds)| {
        args_strategy(kinds).prop_map(move |args| method_payload(class_id, method_id, &args))
    })
}

proptest! {
    /// Every method with arbitrary arguments, built as wire bytes by an
    /// independent encoder: decodes, consumes everything, re-encodes to the
    /// same bytes, and decode(encode(m)) == m.
    #[test]
    fn every_method_with_arbitrary_arguments_round_trips(
        payload in method_wire(),
        channel in any::<u16>(),
    ) {
        let wire = raw_frame(FRAME_METHOD, channel, &payload);
        let frame = decode_one(&wire).unwrap();
        let FramePayload::Method(m) = &frame.payload else { panic!("not a method") };
        prop_assert_eq!(
            (m.class_id(), m.method_id()),
            (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
        );
        let again = encode(&frame);
        prop_assert_eq!(&again[..], &wire[..]);
        prop_assert_eq!(decode_one(&again).unwrap(), frame);
    }

    /// Cutting a method's payload anywhere (with a truthful frame size) is a
    /// `Truncated` error with the method's ids, never a panic or a success.
    #[test]
    fn truncated_method_payloads_are_errors(payload in method_wire(), cut in any::<prop::sample::Index>()) {
        let at = cut.index(payload.len());
        let err = decode_err(&raw_frame(FRAME_METHOD, 1, &payload[..at]), &limits());
        prop_assert!(matches!(err, Amqp091DecodeError::Truncated { .. }), "{:?}", err);
        prop_assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    }
}

// ------------------------------------------------------------------ truncation

#[test]
fn every_prefix_of_a_frame_is_need_more_and_consumes_nothing() {
    for frame in sample_frames() {
        let wire = encode(&frame);
        for len in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..len]);
            assert_eq!(
                decode_frame(&mut buf, &limits()),
                Ok(None),
                "{frame:?} cut at {len}"
            );
            assert_eq!(buf.len(), len, "nothing consumed");
        }
        assert_eq!(decode_one(&wire), Ok(frame));
    }
}

#[test]
fn every_truncation_inside_a_header_or_table_payload_is_an_error() {
    for frame in sample_frames() {
        let wire = encode(&frame);
        let payload = &wire[7..wire.len() - 1];
        let frame_type = wire[0];
        if frame_type != FRAME_METHOD && frame_type != FRAME_HEADER {
            continue;
        }
        for len in 0..payload.len() {
            let err = decode_err(
                &raw_frame(frame_type, frame.channel, &payload[..len]),
                &limits(),
            );
            assert!(
                matches!(err, Amqp091DecodeError::Truncated { .. }),
                "{frame:?} payload cut at {len}: {err:?}"
            );
        }
    }
}

#[test]
fn frames_follow_each_other_and_leave_the_rest() {
    let mut wire = BytesMut::new();
    for f in sample_frames() {
        f.encode(&mut wire).unwrap();
    }
    wire.put_slice(b"\x01\x00");
    let mut got = Vec::new();
    while let Some(f) = decode_frame(&mut wire, &limits()).unwrap() {
        got.push(f);
    }
    assert_eq!(got, sample_frames());
    assert_eq!(&wire[..], b"\x01\x00");
}

// ------------------------------------------------------------------ malformed

#[test]
fn unknown_frame_type_is_a_frame_error_from_the_header_alone() {
    let err = decode_err(b"\x04\x00\x00\x00\x00\x00\x00", &limits());
    assert_eq!(err, Amqp091DecodeError::UnknownFrameType { frame_type: 4 });
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    // `AMQP` (a protocol header where a frame should be) is not a frame.
    let err = decode_err(b"AMQP\x00\x00\x09\x01", &limits());
    assert_eq!(
        err,
        Amqp091DecodeError::UnknownFrameType { frame_type: b'A' }
    );
}

#[test]
fn oversized_frame_is_refused_before_its_payload_arrives() {
    let limits = Amqp091Limits {
        frame_max: 4096,
        ..Amqp091Limits::default()
    };
    // 4088 payload bytes + 8 = 4096: fits; need more bytes.
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf8"[..]);
    assert_eq!(decode_frame(&mut buf, &limits), Ok(None));
    // 4089: too large, known from the 7 header bytes.
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf9"[..]);
    let err = decode_frame(&mut buf, &limits).unwrap_err();
    assert_eq!(
        err,
        Amqp091DecodeError::FrameTooLarge {
            size: 4089,
            frame_max: 4096
        }
    );
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    assert_eq!(buf.len(), 7, "nothing consumed");
    // The largest size field is refused with the default limits too.
    let err = decode_err(b"\x01\x00\x00\xff\xff\xff\xff", &Amqp091Limits::default());
    assert!(matches!(err, Amqp091DecodeError::FrameTooLarge { .. }));
    // frame_max 0 means no limit.
    let unlimited = Amqp091Limits {
        frame_max: 0,
        ..Amqp091Limits::default()
    };
    let mut buf = BytesMut::from(&b"\x03\x00\x01\xff\xff\xff\xff"[..]);
    assert_eq!(decode_frame(&mut buf, &unlimited), Ok(None));
}

#[test]
fn bad_frame_end_is_a_frame_error() {
    let mut wire = encode(&Frame::body(1, "abc"));
    let last = wire.len() - 1;
    wire[last] = 0xCF;
    let mut buf = wire.clone();
    let err = decode_frame(&mut buf, &limits()).unwrap_err();
    assert_eq!(
        err,
        Amqp091DecodeError::BadFrameEnd {
            offset: 10,
            found: 0xCF
        }
    );
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    assert_eq!(buf, wire, "nothing consumed");
}

#[test]
fn heartbeats_must_be_empty_and_on_channel_zero() {
    assert_eq!(decode_one(&raw_frame(8, 0, b"")), Ok(Frame::heartbeat()));
    for (channel, payload) in [(1u16, &b""[..]), (0, b"x")] {
        let err = decode_err(&raw_frame(8, channel, payload), &limits());
        assert_eq!(
            err,
            Amqp091DecodeError::BadHeartbeat {
                channel,
                size: payload.len() as u32
            }
        );
        assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    }
}

#[test]
fn content_on_channel_zero_is_an_unexpected_frame() {
    for frame in [
        Frame::body(0, "x"),
        Frame::header(0, ContentHeader::default()),
    ] {
        let err = decode_err(&encode(&frame), &limits());
        assert_eq!(
            err,
            Amqp091DecodeError::ContentOnChannelZero {
                frame_type: frame.payload.frame_type()
            }
        );
        assert_eq!(err.reply_code(), reply_code::UNEXPECTED_FRAME);
    }
}

#[test]
fn unknown_methods_and_content_classes_are_not_implemented() {
    for (class_id, method_id) in [(10, 99), (60, 999), (30, 20), (99, 10), (0, 0)] {
        let err = decode_err(
            &raw_frame(1, 1, &method_payload(class_id, method_id, b"")),
            &limits(),
        );
        assert_eq!(
            err,
            Amqp091DecodeError::UnknownMethod {
                class_id,
                method_id
            }
        );
        assert_eq!(err.reply_code(), reply_code::NOT_IMPLEMENTED);
    }
    let err = decode_err(
        &raw_frame(
            2,
            1,
            b"\x00\x32\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        &limits(),
    );
    assert_eq!(
        err,
        Amqp091DecodeError::UnknownContentClass { class_id: 50 }
    );
    assert_eq!(err.reply_code(), reply_code::NOT_IMPLEMENTED);
    assert_eq!(err.method_ids(), (0, 0));
}

#[test]
fn short_method_payload_is_truncated_without_ids() {
    let err = decode_err(&raw_frame(1, 1, b"\x00\x0a\x00"), &limits());
    assert_eq!(
        err,
        Amqp091DecodeError::Truncated {
            class_id: 10,
            method_id: 0,
            offset: 9,
            need: 2,
            have: 1
        }
    );
    assert_eq!(err.method_ids(), (0, 0));
}

#[test]
fn trailing_bytes_after_arguments_are_an_error() {
    let payload = method_payload(20, 41, b"xy");
    let err = decode_err(&raw_frame(1, 1, &payload), &limits());
    assert_eq!(
        err,
        Amqp091DecodeError::TrailingBytes {
            class_id: 20,
            method_id: 41,
            offset: 11,
            count: 2
        }
    );
    assert_eq!(err.reply_code(), reply_code::FRAME_ERROR);
    assert_eq!(err.method_ids(), (20, 41));
    // After a content header's properties too.
    let mut payload = encode(&Frame::header(1, ContentHeader::default()))[7..].to_vec();
    payload.pop();
    payload.push(0);
    let err = decode_err(&raw_frame(2, 1, &payload), &limits());
    assert!(matches!(
        err,
        Amqp091DecodeError::TrailingBytes { count: 1, .. }
    ));
}

/// `exchange.declare` with `table` (a raw table body, length prefixed here)
/// as its arguments.
fn declare_with_table_body(table: &[u8]) -> Vec<u8> {
    let mut args = b"\x00\x00\x01e\x06direct\x00".to_vec();
    args.extend_from_slice(&(table.len() as u32).to_be_bytes());
    args.extend_from_slice(table);
    raw_frame(1, 1, &method_payload(40, 10, &args))
}

#[test]
fn unknown_field_type_is_a_syntax_error_with_its_offset() {
    // Table entries start at offset 7 + 4 + 12 + 4 = 27: name "k", then the tag.
    let err = decode_err(&declare_with_table_body(b"\x01kZ"), &limits());
    assert_eq!(
        err,
        Amqp091DecodeError::UnknownFieldType {
            class_id: 40,
            method_id: 10,
            offset: 29,
            tag: b'Z'
        }
    );
    assert_eq!(err.reply_code(), reply_code::SYNTAX_ERROR);
    assert_eq!(err.method_ids(), (40, 10));
    // The 0-9-1 specification's letters that RabbitMQ does not use.
    for tag in [b'L', b'U'] {
        let err = decode_err(
            &declare_with_table_body(&[1, b'k', tag, 0, 0, 0, 0, 0, 0, 0, 0]),
            &limits(),
        );
        assert!(
            matches!(err, Amqp091DecodeError::UnknownFieldType { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn lengths_are_checked_against_the_bytes_present() {
    // A table claiming 4 GiB inside a small frame: its bytes would start at 27.
    let mut args = b"\x00\x00\x01e\x06direct\x00".to_vec();
    args.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = decode_err(&raw_frame(1, 1, &method_payload(40, 10, &args)), &limits());
    assert_eq!(
        err,
        Amqp091DecodeError::Truncated {
            class_id: 40,
            method_id: 10,
            offset: 27,
            need: u32::MAX as usize,
            have: 0
        }
    );
    // A long string, an array and a nested table overrunning their table.
    for body in [
        &b"\x01kS\x00\x00\x00\x09abc"[..],
        b"\x01kx\xff\xff\xff\xff",
        b"\x01kA\x00\x00\x00\x05I\x00",
        b"\x01kF\x00\x00\x00\x10",
        b"\x01kI\x00\x00",
        b"\x05k",
    ] {
        let err = decode_err(&declare_with_table_body(body), &limits());
        assert!(
            matches!(err, Amqp091DecodeError::Truncated { .. }),
            "{body:?}: {err:?}"
        );
    }
}

/// A table nested `depth` deep (the outermost is depth 1).
fn nested_table(depth: usize) -> FieldTable {
    let mut t = FieldTable::new().with("leaf", 1u8);
    for _ in 1..depth {
        t = FieldTable::new().with("t", t);
    }
    t
}

#[test]
fn nesting_depth_is_bounded() {
    let frame = |t: FieldTable| {
        Frame::method(
            1,
            ExchangeDeclare {
                arguments: t,
                ..Default::default()
            },
        )
    };
    let ok = frame(nested_table(64));
    assert_eq!(decode_one(&encode(&ok)), Ok(ok));
    let err = decode_err(&encode(&frame(nested_table(65))), &limits());
    assert!(
        matches!(
            err,
            Amqp091DecodeError::TableTooDeep {
                max: 64,
                class_id: 40,
                method_id: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reply_code(), reply_code::SYNTAX_ERROR);
    // Arrays count too.
    let mut v = FieldValue::Void;
    for _ in 0..70 {
        v = FieldValue::Array(vec![v]);
    }
    let deep = frame(FieldTable::new().with("a", v));
    let err = decode_err(&encode(&deep), &limits());
    assert!(
        matches!(err, Amqp091DecodeError::TableTooDeep { .. }),
        "{err:?}"
    );
    // The limit is the caller's.
    let small = Amqp091Limits {
        max_table_depth: 2,
        ..Amqp091Limits::default()
    };
    let err = decode_err(&encode(&frame(nested_table(3))), &small);
    assert!(matches!(
        err,
        Amqp091DecodeError::TableTooDeep { max: 2, .. }
    ));
}

#[test]
fn reserved_property_flags_are_a_syntax_error() {
    for flags in [0x0001u16, 0x0002] {
        let mut payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        payload.extend_from_slice(&flags.to_be_bytes());
        let err = decode_err(&raw_frame(2, 1, &payload), &limits());
        assert_eq!(
            err,
            Amqp091DecodeError::BadPropertyFlags { offset: 19, flags }
        );
        assert_eq!(err.reply_code(), reply_code::SYNTAX_ERROR);
    }
}

// ------------------------------------------------------------------ tables

#[test]
fn field_table_with_every_type_round_trips() {
    let t = every_type_table();
    let mut wire = BytesMut::new();
    t.encode(&mut wire).unwrap();
    let mut r = wire::Reader::new(wire.clone().freeze(), 0, 64);
    let back = r.table().unwrap();
    assert!(r.is_empty());
    assert_eq!(back, t);
    let tags: Vec<u8> = back.iter().map(|(_, v)| v.tag()).collect();
    assert_eq!(tags, b"tbBsuIilfdDSxATFV");
    assert_eq!(back.get("u32"), Some(&FieldValue::U32(4_000_000_000)));
    assert_eq!(back.get("str").and_then(FieldValue::as_str), Some("text é"));
    assert_eq!(back.get("missing"), None);
}

#[test]
fn field_value_wire_layout() {
    let cases: Vec<(FieldValue, &[u8])> = vec![
        (FieldValue::Bool(true), b"t\x01"),
        (FieldValue::I8(-1), b"b\xff"),
        (FieldValue::U8(255), b"B\xff"),
        (FieldValue::I16(-2), b"s\xff\xfe"),
        (FieldValue::U16(0x1234), b"u\x12\x34"),
        (FieldValue::I32(-3), b"I\xff\xff\xff\xfd"),
        (FieldValue::U32(0x8000_0000), b"i\x80\x00\x00\x00"),
        (FieldValue::I64(-4), b"l\xff\xff\xff\xff\xff\xff\xff\xfc"),
        (FieldValue::F32(1.0), b"f\x3f\x80\x00\x00"),
        (FieldValue::F64(1.0), b"d\x3f\xf0\x00\x00\x00\x00\x00\x00"),
        (
            FieldValue::Decimal(Decimal {
                scale: 2,
                value: 314,
            }),
            b"D\x02\x00\x00\x01\x3a",
        ),
        (FieldValue::string("hi"), b"S\x00\x00\x00\x02hi"),
        (
            FieldValue::ByteArray(Bytes::from_static(b"\0")),
            b"x\x00\x00\x00\x01\x00",
        ),
        (
            FieldValue::Array(vec![FieldValue::U8(1), FieldValue::Void]),
            b"A\x00\x00\x00\x03B\x01V",
        ),
        (
            FieldValue::Timestamp(1),
            b"T\x00\x00\x00\x00\x00\x00\x00\x01",
        ),
        (
            FieldValue::Table(FieldTable::new().with("a", FieldValue::Void)),
            b"F\x00\x00\x00\x03\x01aV",
        ),
        (FieldValue::Void, b"V"),
    ];
    for (value, bytes) in cases {
        let mut wire = BytesMut::new();
        value.encode(&mut wire).unwrap();
        assert_eq!(&wire[..], bytes, "{value:?}");
        let mut r = wire::Reader::new(wire.freeze(), 0, 64);
        assert_eq!(FieldValue::decode(&mut r).unwrap(), value);
        assert!(r.is_empty());
    }
}

#[test]
fn booleans_other_than_one_decode_as_true() {
    let mut r = wire::Reader::new(Bytes::from_static(b"t\x02t\x00"), 0, 64);
    assert_eq!(FieldValue::decode(&mut r).unwrap(), FieldValue::Bool(true));
    assert_eq!(FieldValue::decode(&mut r).unwrap(), FieldValue::Bool(false));
}

#[test]
fn floats_compare_by_bits() {
    let nan = FieldValue::F64(f64::NAN);
    assert_eq!(nan, nan.clone());
    assert_ne!(FieldValue::F32(0.0), FieldValue::F32(-0.0));
}

#[test]
fn tables_keep_order_and_repeats() {
    let mut t = FieldTable::new();
    t.push(s("a"), 1u8);
    t.push(s("a"), 2u8);
    t.insert(s("b"), 3u8);
    t.insert(s("a"), 9u8);
    let names: Vec<_> = t.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    assert_eq!(
        names,
        [
            ("a".to_string(), FieldValue::U8(9)),
            ("a".to_string(), FieldValue::U8(2)),
            ("b".to_string(), FieldValue::U8(3)),
        ]
    );
    assert_eq!(t.len(), 3);
}

// ------------------------------------------------------------------ content

#[test]
fn content_header_with_all_properties_round_trips() {
    let frame = Frame::header(1, ContentHeader::new(1 << 40, all_properties()));
    let wire = encode(&frame);
    assert_eq!(
        &wire[7..21],
        b"\x00\x3c\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\xff\xfc"
    );
    assert_eq!(decode_one(&wire), Ok(frame));
}

#[test]
fn a_header_frame_decodes_in_place_as_decode_frame_decodes_it() {
    let header = ContentHeader::new(1 << 40, all_properties());
    let wire = Frame::header(1, header.clone()).to_bytes().unwrap();
    assert_eq!(decode_header_frame(&wire, &limits()), Ok(Some(header)));
    // Every prefix, and anything that is not exactly one header frame, is refused without
    // panicking: a missing end octet, a size that disagrees, another frame type.
    for n in 0..wire.len() {
        let cut = wire.slice(..n);
        assert!(
            !matches!(decode_header_frame(&cut, &limits()), Ok(Some(_))),
            "{n}"
        );
    }
    let mut longer = BytesMut::from(&wire[..]);
    longer.put_u8(0xce);
    assert_eq!(decode_header_frame(&longer.freeze(), &limits()), Ok(None));
    let method = Frame::heartbeat().to_bytes().unwrap();
    assert_eq!(decode_header_frame(&method, &limits()), Ok(None));
    let body = Frame::body(1, Bytes::from_static(b"x")).to_bytes().unwrap();
    assert_eq!(decode_header_frame(&body, &limits()), Ok(None));
}

#[test]
fn each_property_alone_round_trips_with_its_flag() {
    let all = all_properties();
    let singles: Vec<(u16, BasicProperties)> = vec![
        (
            1 << 15,
            BasicProperties {
                content_type: all.content_type.clone(),
                ..Default::default()
            },
        ),
        (
            1 << 14,
            BasicProperties {
                content_encoding: all.content_encoding.clone(),
                ..Default::default()
            },
        ),
        (
            1 << 13,
            BasicProperties {
                headers: all.headers.clone(),
                ..Default::default()
            },
        ),
        (
            1 << 12,
            BasicProperties {
                delivery_mode: Some(1),
                ..Default::default()
            },
        ),
        (
            1 << 11,
            BasicProperties {
                priority: Some(0),
                ..Default::default()
            },
        ),
        (
            1 << 10,
            BasicProperties {
                correlation_id: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 9,
            BasicProperties {
                reply_to: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 8,
            BasicProperties {
                expiration: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 7,
            BasicProperties {
                message_id: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 6,
            BasicProperties {
                timestamp: Some(0),
                ..Default::default()
            },
        ),
        (
            1 << 5,
            BasicProperties {
                message_type: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 4,
            BasicProperties {
                user_id: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 3,
            BasicProperties {
                app_id: Some(s("x")),
                ..Default::default()
            },
        ),
        (
            1 << 2,
            BasicProperties {
                cluster_id: Some(s("x")),
                ..Default::default()
            },
        ),
    ];
    for (flag, props) in singles {
        assert_eq!(props.flags(), flag);
        let frame = Frame::header(1, ContentHeader::new(3, props));
        let wire = encode(&frame);
        assert_eq!(&wire[19..21], flag.to_be_bytes(), "{frame:?}");
        assert_eq!(decode_one(&wire), Ok(frame));
    }
}

#[test]
fn body_frames_are_slices_of_the_buffer() {
    let wire = encode(&Frame::body(1, "payload"));
    let mut buf = BytesMut::from(&wire[..]);
    let start = buf.as_ptr() as usize;
    let Some(Frame {
        payload: FramePayload::Body(b),
        ..
    }) = decode_frame(&mut buf, &limits()).unwrap()
    else {
        panic!("not a body");
    };
    assert_eq!(&b[..], b"payload");
    assert_eq!(b.as_ptr() as usize, start + 7, "no copy");
}

#[test]
fn body_frames_split_by_frame_max() {
    let body = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let frames: Vec<Frame> = body_frames(5, body.clone(), 4096).collect();
    let sizes: Vec<usize> = frames
        .iter()
        .map(|f| match &f.payload {
            FramePayload::Body(b) => b.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [4088, 4088, 1824]);
    let mut joined = BytesMut::new();
    for f in &frames {
        assert_eq!(f.channel, 5);
        assert!(encode(f).len() <= 4096);
        if let FramePayload::Body(b) = &f.payload {
            joined.put_slice(b);
        }
    }
    assert_eq!(joined.freeze(), body);
    if let FramePayload::Body(b) = &frames[1].payload {
        assert_eq!(b.as_ptr(), body[4088..].as_ptr(), "no copy");
    }
    assert_eq!(body_frames(5, body.clone(), 4096).len(), 3);
    assert_eq!(body_frames(5, Bytes::new(), 4096).count(), 0);
    assert_eq!(body_frames(5, body.clone(), 0).count(), 1);
    // A frame_max too small to carry anything still makes progress.
    assert_eq!(body_frames(5, Bytes::from_static(b"abc"), 8).count(), 3);
}

// ------------------------------------------------------------------ protocol header

#[test]
fn protocol_header_prefixes_wait_for_more() {
    let header = ProtocolHeader::AMQP_0_9_1_BYTES;
    for len in 0..8 {
        let mut buf = BytesMut::from(&header[..len]);
        assert_eq!(ProtocolHeader::decode(&mut buf), None, "{len}");
        assert_eq!(buf.len(), len);
    }
    let mut buf = BytesMut::from(&header[..]);
    buf.put_slice(b"\x01rest");
    assert_eq!(
        ProtocolHeader::decode(&mut buf),
        Some(ProtocolHeader::AMQP_0_9_1)
    );
    assert_eq!(&buf[..], b"\x01rest");
    let mut out = BytesMut::new();
    ProtocolHeader::AMQP_0_9_1.encode(&mut out);
    assert_eq!(&out[..], &header[..]);
}

#[test]
fn other_protocol_headers_are_recognised() {
    let cases: Vec<(&[u8], ProtocolHeader, usize)> = vec![
        (
            b"AMQP\x01\x01\x00\x09",
            ProtocolHeader::Amqp {
                protocol_id: 1,
                major: 1,
                minor: 0,
                revision: 9,
            },
            0,
        ),
        (
            b"AMQP\x03\x01\x00\x00extra",
            ProtocolHeader::Amqp {
                protocol_id: 3,
                major: 1,
                minor: 0,
                revision: 0,
            },
            5,
        ),
        (
            b"GET / HTTP/1.1\r\n",
            ProtocolHeader::NotAmqp(Bytes::from_static(b"GET / HT")),
            8,
        ),
        (b"G", ProtocolHeader::NotAmqp(Bytes::from_static(b"G")), 0),
        (
            b"AMQX",
            ProtocolHeader::NotAmqp(Bytes::from_static(b"AMQX")),
            0,
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",
            ProtocolHeader::NotAmqp(Bytes::from_static(b"\x16\x03\x01\x02\x00\x01\x00\x01")),
            1,
        ),
    ];
    for (input, expected, left) in cases {
        let mut buf = BytesMut::from(input);
        let got = ProtocolHeader::decode(&mut buf).unwrap();
        assert!(!got.is_amqp091());
        assert_eq!(got, expected, "{input:?}");
        assert_eq!(buf.len(), left, "{input:?}");
    }
}

// ------------------------------------------------------------------ codec

#[test]
fn server_codec_reads_the_header_then_frames_byte_by_byte() {
    let mut wire = BytesMut::from(&ProtocolHeader::AMQP_0_9_1_BYTES[..]);
    for f in sample_frames() {
        f.encode(&mut wire).unwrap();
    }
    let mut codec = Amqp091Codec::server(limits());
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for byte in wire.iter() {
        buf.put_u8(*byte);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    assert!(buf.is_empty());
    let mut expected = vec![Amqp091Item::ProtocolHeader(ProtocolHeader::AMQP_0_9_1)];
    expected.extend(sample_frames().into_iter().map(Amqp091Item::Frame));
    assert_eq!(items, expected);
}

#[test]
fn server_codec_discards_input_after_an_unsupported_header() {
    let mut codec = Amqp091Codec::server(limits());
    let mut buf = BytesMut::from(&b"AMQP\x00\x01\x00\x00\x00\x53\x01\x00"[..]);
    let item = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        item,
        Amqp091Item::ProtocolHeader(ProtocolHeader::Amqp {
            protocol_id: 0,
            major: 1,
            minor: 0,
            revision: 0
        })
    );
    assert!(buf.is_empty());
    buf.put_slice(b"\x01\x00\x00\x00\x00\x00\x04more");
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
    // The session's answer.
    let mut out = BytesMut::new();
    codec.encode(ProtocolHeader::AMQP_0_9_1, &mut out).unwrap();
    assert_eq!(&out[..], &ProtocolHeader::AMQP_0_9_1_BYTES[..]);
}

#[test]
fn codec_applies_frame_max_both_ways() {
    let mut codec = Amqp091Codec::client(limits());
    assert_eq!(codec.frame_max(), 131_072);
    codec.set_frame_max(4096);
    assert_eq!(codec.limits().frame_max, 4096);
    // Decode: a 4089-byte payload is refused from its header.
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf9"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(Amqp091CodecError::Decode(
            Amqp091DecodeError::FrameTooLarge {
                size: 4089,
                frame_max: 4096
            }
        ))
    ));
    // A fitting one reserves room for exactly the frame.
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf8"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.capacity() >= 4096);
    // Encode: 4088 bytes of body fit, 4089 do not, and nothing is written.
    let mut out = BytesMut::from(&b"prefix"[..]);
    codec
        .encode(Frame::body(1, vec![0u8; 4088]), &mut out)
        .unwrap();
    assert_eq!(out.len(), 6 + 4096);
    let err = codec
        .encode(&Frame::body(1, vec![0u8; 4089]), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Amqp091CodecError::Encode(Amqp091EncodeError::FrameTooLarge {
            size: 4097,
            frame_max: 4096
        })
    ));
    assert_eq!(out.len(), 6 + 4096);
}

// ------------------------------------------------------------------ short strings

#[test]
fn short_strings_are_bounded_bytes() {
    assert!(ShortStr::try_from("x".repeat(255)).is_ok());
    assert_eq!(
        ShortStr::try_from("x".repeat(256)),
        Err(ShortStrTooLong { len: 256 })
    );
    let v = ShortStr::try_from(&b"\xff\xfe"[..]).unwrap();
    assert_eq!(v.as_str(), None);
    assert_eq!(v.to_string_lossy(), "\u{fffd}\u{fffd}");
    assert_eq!(s("abc"), "abc");
    assert_eq!(format!("{:?}", s("abc")), "\"abc\"");
    assert!(ShortStr::empty().is_empty());
}
