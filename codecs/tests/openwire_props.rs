//! Property tests for the OpenWire codec over its public API: round trips of
//! arbitrary primitive maps, stream bodies and messages at every version,
//! the codec agreeing with the one-shot decoder, and no panic on arbitrary
//! bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use codecs::openwire::*;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = PrimitiveValue> {
    let leaf = prop_oneof![
        Just(PrimitiveValue::Null),
        any::<bool>().prop_map(PrimitiveValue::Bool),
        any::<i8>().prop_map(PrimitiveValue::Byte),
        any::<u16>().prop_map(PrimitiveValue::Char),
        any::<i16>().prop_map(PrimitiveValue::Short),
        any::<i32>().prop_map(PrimitiveValue::Int),
        any::<i64>().prop_map(PrimitiveValue::Long),
        // Bit patterns: NaNs compare unequal, so only non-NaN values.
        any::<f32>()
            .prop_filter("nan", |f| !f.is_nan())
            .prop_map(PrimitiveValue::Float),
        any::<f64>()
            .prop_filter("nan", |f| !f.is_nan())
            .prop_map(PrimitiveValue::Double),
        text().prop_map(PrimitiveValue::String),
        prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|v| PrimitiveValue::Bytes(Bytes::from(v))),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(PrimitiveValue::List),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|entries| PrimitiveValue::Map(PrimitiveMap { entries })),
        ]
    })
}

fn map() -> impl Strategy<Value = PrimitiveMap> {
    prop::collection::vec((text(), value()), 0..8).prop_map(|entries| PrimitiveMap { entries })
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn producer_id() -> impl Strategy<Value = ProducerId> {
    (opt_text(), any::<i64>(), any::<i64>()).prop_map(|(connection_id, value, session_id)| {
        ProducerId {
            connection_id,
            value,
            session_id,
        }
    })
}

fn destination() -> impl Strategy<Value = Destination> {
    (0u8..4, opt_text()).prop_map(|(k, physical_name)| Destination {
        kind: DestinationKind::from_data_type(100 + k).unwrap(),
        physical_name,
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        (
            0u8..6,
            any::<i32>(),
            any::<bool>(),
            prop::option::of(producer_id()),
        ),
        (
            prop::option::of(destination()),
            opt_text(),
            any::<i32>(),
            opt_text(),
        ),
        (
            any::<bool>(),
            any::<i64>(),
            any::<i8>(),
            prop::option::of(destination()),
        ),
        (
            any::<i64>(),
            opt_text(),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..32)),
            prop::option::of(map()),
        ),
        (
            any::<bool>(),
            any::<i32>(),
            any::<bool>(),
            any::<i64>(),
            any::<bool>(),
        ),
        (opt_text(), any::<i64>()),
    )
        .prop_map(
            |(
                (kind, command_id, response_required, producer_id),
                (destination, group_id, group_sequence, correlation_id),
                (persistent, expiration, priority, reply_to),
                (timestamp, jms_type, content, props),
                (compressed, redelivery_counter, droppable, broker_in_time, group_first),
                (text_view, seq),
            )| Message {
                header: CommandHeader {
                    command_id,
                    response_required,
                },
                kind: MessageKind::from_data_type(23 + kind).unwrap(),
                producer_id: producer_id.clone(),
                destination,
                message_id: Some(MessageId {
                    text_view,
                    producer_id,
                    producer_sequence_id: seq,
                    broker_sequence_id: 0,
                }),
                group_id,
                group_sequence,
                correlation_id,
                persistent,
                expiration,
                priority,
                reply_to,
                timestamp,
                jms_type,
                content: content.map(Bytes::from),
                marshalled_properties: props.map(|p| p.to_bytes().unwrap()),
                compressed,
                redelivery_counter,
                droppable,
                broker_in_time,
                jmsx_group_first_for_consumer: group_first,
                ..Message::default()
            },
        )
}

/// What survives encoding at `version`: newer fields fall back to defaults.
fn at_version(mut m: Message, version: u32) -> Message {
    if version < 2 {
        m.droppable = false;
    }
    if version < 3 {
        m.broker_in_time = 0;
    }
    if version < 10 {
        m.jmsx_group_first_for_consumer = false;
        if let Some(id) = m.message_id.as_mut() {
            id.text_view = None;
        }
    }
    m
}

proptest! {
    #[test]
    fn primitive_maps_round_trip(m in map()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(PrimitiveMap::decode(&bytes, 16).unwrap(), Some(m.clone()));
        // Re-encoding is byte-identical.
        prop_assert_eq!(m.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn stream_bodies_round_trip(items in prop::collection::vec(value(), 0..8)) {
        let mut dst = BytesMut::new();
        encode_stream_body(&items, &mut dst).unwrap();
        prop_assert_eq!(decode_stream_body(&dst.freeze(), 16).unwrap(), items);
    }

    #[test]
    fn modified_utf8_round_trips(s in text()) {
        let mut dst = BytesMut::new();
        encode_modified_utf8(&s, &mut dst);
        prop_assert_eq!(dst.len(), modified_utf8_len(&s));
        prop_assert_eq!(decode_modified_utf8(&dst), Some(s));
    }

    #[test]
    fn messages_round_trip_at_every_version(m in message(), version in 1u32..=12) {
        let format = WireFormat { version, ..WireFormat::default() };
        let dispatch = Command::MessageDispatch(MessageDispatch {
            header: CommandHeader { command_id: 1, response_required: false },
            consumer_id: Some(ConsumerId { connection_id: Some("c".into()), session_id: 1, value: 2 }),
            destination: m.destination.clone(),
            message: Some(Box::new(m.clone())),
            redelivery_counter: m.redelivery_counter,
        });
        for command in [Command::Message(Box::new(m.clone())), dispatch] {
            let bytes = command.to_bytes(&format).unwrap();
            let mut buf = BytesMut::from(&bytes[..]);
            let back = decode_frame(&mut buf, &format).unwrap().unwrap();
            prop_assert!(buf.is_empty());
            prop_assert_eq!(back.to_bytes(&format).unwrap(), bytes);
            let expected = match command {
                Command::Message(m) => Command::Message(Box::new(at_version(*m, version))),
                Command::MessageDispatch(mut d) => {
                    d.message = d.message.map(|m| Box::new(at_version(*m, version)));
                    Command::MessageDispatch(d)
                }
                other => other,
            };
            prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_the_codec_agrees(
        data in prop::collection::vec(any::<u8>(), 0..256),
        version in 1u32..=12,
        chunk in 1usize..17,
    ) {
        let format = WireFormat {
            version,
            stack_trace_enabled: version % 2 == 0,
            limits: OpenWireLimits { max_frame_size: 200, max_depth: 6 },
        };
        let mut buf = BytesMut::from(&data[..]);
        let mut one_shot = Vec::new();
        let one_shot_failed = loop {
            match decode_frame(&mut buf, &format) {
                Ok(Some(c)) => one_shot.push(c),
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        let mut codec = OpenWireCodec::new(format);
        let mut cbuf = BytesMut::new();
        let mut chunked = Vec::new();
        let mut chunked_failed = false;
        'outer: for piece in data.chunks(chunk) {
            cbuf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut cbuf) {
                    Ok(Some(c)) => chunked.push(c),
                    Ok(None) => break,
                    Err(_) => { chunked_failed = true; break 'outer; }
                }
            }
        }
        prop_assert_eq!(one_shot_failed, chunked_failed);
        prop_assert_eq!(one_shot, chunked);
    }
}
