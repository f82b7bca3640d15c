//! Unit tests for the MQTT codec. Property tests live in `tests/mqtt_props.rs`,
//! golden bytes from real clients and a real broker in `tests/mqtt_golden.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::wire::{put_var_int, read_var_int, MAX_VAR_INT};
use super::*;

use MqttVersion::{V3_1, V3_1_1, V5};

fn limits() -> MqttLimits {
    MqttLimits::default()
}

/// A packet: first byte, minimal remaining length, body.
fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[first]);
    put_var_int(&mut out, u32::try_from(body.len()).unwrap());
    out.extend_from_slice(body);
    out.to_vec()
}

/// A length-prefixed string or binary field.
fn s(text: impl AsRef<[u8]>) -> Vec<u8> {
    let b = text.as_ref();
    let mut out = u16::try_from(b.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn encode(packet: &MqttPacket, v: MqttVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .encode(v, &mut out)
        .unwrap_or_else(|e| panic!("{packet:?} under {v}: {e}"));
    out.to_vec()
}

fn encode_err(packet: &MqttPacket, v: MqttVersion) -> MqttEncodeError {
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = packet.encode(v, &mut out).unwrap_err();
    assert_eq!(&out[..], b"keep", "a failed encode wrote bytes");
    err
}

/// Decodes exactly one packet from `bytes`, asserting every byte is consumed.
fn decode_one(bytes: &[u8], v: MqttVersion) -> Result<MqttPacket, MqttDecodeError> {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, v, &limits())? {
        Some(packet) => {
            assert!(buf.is_empty(), "{} bytes left over", buf.len());
            Ok(packet)
        }
        None => panic!("incomplete: {bytes:02x?}"),
    }
}

fn decode_err(bytes: &[u8], v: MqttVersion) -> MqttDecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, v, &limits()) {
        Err(e) => e,
        other => panic!("expected an error for {bytes:02x?} under {v}, got {other:?}"),
    }
}

/// Asserts `bytes` fails under `v` with `expected`, whose reason code is `code`.
fn assert_malformed(bytes: &[u8], v: MqttVersion, expected: MqttDecodeError, code: u8) {
    let err = decode_err(bytes, v);
    assert_eq!(err, expected, "{bytes:02x?} under {v}");
    assert_eq!(err.reason_code(), code, "{err}");
}

/// Checks decode(encode(p)) == p with every byte consumed, and that every
/// proper prefix is `Ok(None)` without consuming anything.
fn round_trip(packet: &MqttPacket, v: MqttVersion) -> Vec<u8> {
    let bytes = encode(packet, v);
    assert_eq!(&decode_one(&bytes, v).unwrap(), packet, "under {v}");
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(decode(&mut buf, v, &limits()), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
    bytes
}

fn user(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn rich_publish_props() -> Properties {
    Properties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(3600),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/to".into()),
        correlation_data: Some(Bytes::from_static(b"\x00corr\xff")),
        subscription_identifiers: vec![1, 268_435_455, 1],
        topic_alias: Some(7),
        user_properties: user(&[("k", "v1"), ("k", "v2"), ("\u{e9}", "\u{2603}")]),
        ..Properties::default()
    }
}

/// One of every packet, as rich as `v` allows.
fn samples(v: MqttVersion) -> Vec<MqttPacket> {
    let v5 = v == V5;
    let props = |p: Properties| if v5 { p } else { Properties::default() };
    let reason_string = |r: &str| {
        props(Properties {
            reason_string: Some(r.into()),
            user_properties: user(&[("a", "b")]),
            ..Properties::default()
        })
    };
    let mut connect = Connect::new(v, "client-1");
    connect.clean_session = false;
    connect.keep_alive = 0xFFFF;
    connect.username = Some("user".into());
    connect.password = Some(Bytes::from_static(b"\x00pass\xff"));
    connect.properties = props(Properties {
        session_expiry_interval: Some(u32::MAX),
        authentication_method: Some("SCRAM-SHA-1".into()),
        authentication_data: Some(Bytes::from_static(b"client-first")),
        request_problem_information: Some(false),
        request_response_information: Some(true),
        receive_maximum: Some(10),
        topic_alias_maximum: Some(0),
        user_properties: user(&[("x", "y")]),
        maximum_packet_size: Some(1024),
        ..Properties::default()
    });
    let mut will = Will::new("last/will", Bytes::from_static(b"\x00\x01"));
    will.qos = QoS::ExactlyOnce;
    will.retain = true;
    will.properties = props(Properties {
        payload_format_indicator: Some(false),
        message_expiry_interval: Some(1),
        content_type: Some("bin".into()),
        response_topic: Some("r".into()),
        correlation_data: Some(Bytes::new()),
        will_delay_interval: Some(30),
        user_properties: user(&[("w", "1")]),
        ..Properties::default()
    });
    connect.will = Some(will);
    let bare_connect = Connect::new(v, "");

    let connack = ConnAck {
        session_present: v != V3_1,
        code: 0,
        properties: props(Properties {
            session_expiry_interval: Some(60),
            assigned_client_identifier: Some("auto-1".into()),
            server_keep_alive: Some(30),
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"server-final")),
            response_information: Some("resp/".into()),
            server_reference: Some("other:1883".into()),
            reason_string: Some("welcome".into()),
            receive_maximum: Some(65535),
            topic_alias_maximum: Some(100),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            user_properties: user(&[("broker", "gw")]),
            maximum_packet_size: Some(u32::MAX),
            wildcard_subscription_available: Some(true),
            subscription_identifier_available: Some(false),
            shared_subscription_available: Some(true),
            ..Properties::default()
        }),
    };

    let mut publishes = Vec::new();
    for qos in QoS::ALL {
        for (dup, retain) in [(false, false), (true, true)] {
            if dup && qos == QoS::AtMostOnce {
                continue;
            }
            publishes.push(MqttPacket::Publish(Publish {
                dup,
                qos,
                retain,
                topic: "a/b/c".into(),
                packet_id: if qos == QoS::AtMostOnce { 0 } else { 65535 },
                properties: props(rich_publish_props()),
                payload: Bytes::from_static(b"\x00payload\xff"),
            }));
        }
    }
    publishes.push(Publish::new("t", Bytes::new()).into());

    let acks = |pr: PubResponse| {
        vec![
            MqttPacket::PubAck(pr.clone()),
            MqttPacket::PubRec(pr.clone()),
            MqttPacket::PubRel(pr.clone()),
            MqttPacket::PubComp(pr),
        ]
    };

    let mut out = vec![connect.into(), bare_connect.into(), connack.into()];
    out.extend(publishes);
    out.extend(acks(PubResponse::new(1)));
    if v5 {
        out.extend(acks(PubResponse {
            packet_id: 2,
            reason_code: reason::NO_MATCHING_SUBSCRIBERS,
            properties: Properties::default(),
        }));
        out.extend(acks(PubResponse {
            packet_id: 3,
            reason_code: 0,
            properties: reason_string("why"),
        }));
    }
    let opts = |qos, no_local, rap, rh| SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: rap,
        retain_handling: rh,
    };
    let mut filters = vec![
        SubscribeFilter::new("a/+/c", QoS::AtMostOnce),
        SubscribeFilter::new("#", QoS::AtLeastOnce),
        SubscribeFilter::new("$share/g/x", QoS::ExactlyOnce),
    ];
    if v5 {
        filters.push(SubscribeFilter {
            filter: "n/l".into(),
            options: opts(QoS::ExactlyOnce, true, true, RetainHandling::DoNotSend),
        });
        filters.push(SubscribeFilter {
            filter: "r/h".into(),
            options: opts(
                QoS::AtLeastOnce,
                false,
                true,
                RetainHandling::SendAtSubscribeIfNew,
            ),
        });
    }
    out.push(
        Subscribe {
            packet_id: 10,
            properties: props(Properties {
                subscription_identifiers: vec![16384],
                user_properties: user(&[("s", "1"), ("s", "2")]),
                ..Properties::default()
            }),
            filters,
        }
        .into(),
    );
    out.push(
        SubAck {
            packet_id: 10,
            properties: reason_string("subscribed"),
            codes: vec![0, 1, 2, 0x80],
        }
        .into(),
    );
    out.push(
        Unsubscribe {
            packet_id: 11,
            properties: props(Properties::default().with_user_property("u", "1")),
            filters: vec!["a/+/c".into(), "#".into()],
        }
        .into(),
    );
    out.push(
        UnsubAck {
            packet_id: 11,
            properties: reason_string("gone"),
            reason_codes: if v5 {
                vec![0, reason::NO_SUBSCRIPTION_EXISTED]
            } else {
                vec![]
            },
        }
        .into(),
    );
    out.push(MqttPacket::PingReq);
    out.push(MqttPacket::PingResp);
    out.push(Disconnect::default().into());
    if v5 {
        out.push(
            Disconnect {
                reason_code: reason::SERVER_MOVED,
                properties: Properties::default(),
            }
            .into(),
        );
        out.push(
            Disconnect {
                reason_code: reason::SERVER_SHUTTING_DOWN,
                properties: Properties {
                    session_expiry_interval: Some(0),
                    server_reference: Some("elsewhere".into()),
                    reason_string: Some("maintenance".into()),
                    user_properties: user(&[("a", "b")]),
                    ..Properties::default()
                },
            }
            .into(),
        );
        out.push(Auth::default().into());
        out.push(
            Auth {
                reason_code: reason::CONTINUE_AUTHENTICATION,
                properties: Properties {
                    authentication_method: Some("SCRAM-SHA-1".into()),
                    authentication_data: Some(Bytes::from_static(b"server-first")),
                    reason_string: Some("more".into()),
                    user_properties: user(&[("a", "b")]),
                    ..Properties::default()
                },
            }
            .into(),
        );
    }
    out
}

// ----- names -----------------------------------------------------------------

#[test]
fn versions_and_names() {
    for v in MqttVersion::ALL {
        assert_eq!(
            MqttVersion::from_name_and_level(v.protocol_name().as_bytes(), v.level()),
            Some(v)
        );
    }
    assert_eq!(V3_1.protocol_name(), "MQIsdp");
    assert_eq!((V3_1.level(), V3_1_1.level(), V5.level()), (3, 4, 5));
    assert_eq!(MqttVersion::from_name_and_level(b"MQIsdp", 4), None);
    assert_eq!(MqttVersion::from_name_and_level(b"MQTT", 3), None);
    assert!(V3_1 < V3_1_1 && V3_1_1 < V5);
    assert_eq!(V5.to_string(), "5.0");
    for q in QoS::ALL {
        assert_eq!(QoS::from_u8(q.as_u8()), Some(q));
    }
    assert_eq!(QoS::from_u8(3), None);
    for t in 1..=15 {
        assert_eq!(PacketType::from_u8(t).unwrap().as_u8(), t);
    }
    assert_eq!(PacketType::from_u8(0), None);
    assert_eq!(PacketType::from_u8(16), None);
    assert_eq!(PacketType::PubRel.to_string(), "PUBREL");
}

// ----- round trips -----------------------------------------------------------

#[test]
fn every_packet_round_trips_under_every_version() {
    for v in MqttVersion::ALL {
        let samples = samples(v);
        assert!(samples.len() >= 20);
        for p in &samples {
            round_trip(p, v);
        }
    }
}

#[test]
fn packets_back_to_back_decode_one_at_a_time() {
    for v in MqttVersion::ALL {
        let samples = samples(v);
        let mut buf = BytesMut::new();
        for p in &samples {
            p.encode(v, &mut buf).unwrap();
        }
        for p in &samples {
            let before = buf.len();
            let got = decode(&mut buf, v, &limits()).unwrap().unwrap();
            assert_eq!(&got, p);
            assert_eq!(before - buf.len(), encode(p, v).len());
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn connect_is_decoded_by_its_own_level_whatever_the_session_says() {
    for own in MqttVersion::ALL {
        let connect = samples(own).into_iter().next().unwrap();
        let bytes = encode(&connect, V3_1_1);
        for session in MqttVersion::ALL {
            assert_eq!(decode_one(&bytes, session).unwrap(), connect);
        }
    }
}

#[test]
fn fixed_header_and_remaining_length_bytes_are_exact() {
    assert_eq!(encode(&MqttPacket::PingReq, V3_1_1), [0xC0, 0x00]);
    assert_eq!(encode(&MqttPacket::PingResp, V5), [0xD0, 0x00]);
    assert_eq!(
        encode(&MqttPacket::PubRel(PubResponse::new(0x1234)), V3_1_1),
        [0x62, 0x02, 0x12, 0x34]
    );
    // Remaining length boundaries: 127 | 128 | 16383 | 16384.
    for (payload_len, header) in [
        (127 - 3, vec![0x30, 0x7F]),
        (128 - 3, vec![0x30, 0x80, 0x01]),
        (16_383 - 3, vec![0x30, 0xFF, 0x7F]),
        (16_384 - 3, vec![0x30, 0x80, 0x80, 0x01]),
    ] {
        let p: MqttPacket = Publish::new("t", vec![b'x'; payload_len]).into();
        let bytes = round_trip(&p, V3_1_1);
        assert_eq!(bytes[..header.len()], header[..]);
    }
}

#[test]
fn var_int_boundaries() {
    for (value, len) in [
        (0u32, 1usize),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (MAX_VAR_INT, 4),
    ] {
        let mut b = BytesMut::new();
        put_var_int(&mut b, value);
        assert_eq!(b.len(), len, "{value}");
        assert_eq!(read_var_int(&b, "x"), Ok(Some((value, len))));
        assert_eq!(read_var_int(&b[..len - 1], "x"), Ok(None));
    }
    assert_eq!(
        read_var_int(&[0xFF, 0xFF, 0xFF, 0x80], "x"),
        Err(MqttDecodeError::VarIntTooLong { what: "x" })
    );
    for non_minimal in [
        &[0x80, 0x00][..],
        &[0xFF, 0x80, 0x00],
        &[0x81, 0x80, 0x80, 0x00],
    ] {
        assert_eq!(
            read_var_int(non_minimal, "x"),
            Err(MqttDecodeError::VarIntNotMinimal { what: "x" })
        );
    }
}

#[test]
fn v5_short_forms_are_written_and_read() {
    let ack = |code, props: Properties| {
        MqttPacket::PubAck(PubResponse {
            packet_id: 5,
            reason_code: code,
            properties: props,
        })
    };
    assert_eq!(
        encode(&ack(0, Properties::default()), V5),
        [0x40, 0x02, 0, 5]
    );
    assert_eq!(
        encode(&ack(0x10, Properties::default()), V5),
        [0x40, 0x03, 0, 5, 0x10]
    );
    let with_reason = Properties {
        reason_string: Some("r".into()),
        ..Properties::default()
    };
    assert_eq!(
        encode(&ack(0, with_reason), V5),
        [0x40, 0x08, 0, 5, 0, 4, 0x1F, 0, 1, b'r']
    );
    // A long form with an empty property block is accepted (and is not canonical).
    assert_eq!(
        decode_one(&[0x40, 0x04, 0, 5, 0x10, 0], V5).unwrap(),
        ack(0x10, Properties::default())
    );
    assert_eq!(encode(&Disconnect::default().into(), V5), [0xE0, 0x00]);
    assert_eq!(
        encode(
            &Disconnect {
                reason_code: 0x8E,
                properties: Properties::default()
            }
            .into(),
            V5
        ),
        [0xE0, 0x01, 0x8E]
    );
    assert_eq!(encode(&Auth::default().into(), V5), [0xF0, 0x00]);
    assert_eq!(
        decode_one(&[0xE0, 0x02, 0x04, 0x00], V5).unwrap(),
        Disconnect {
            reason_code: 4,
            properties: Properties::default()
        }
        .into()
    );
    // A 5.0 CONNACK without a property length is accepted, as mosquitto does.
    assert_eq!(
        decode_one(&[0x20, 0x02, 0x01, 0x00], V5).unwrap(),
        ConnAck {
            session_present: true,
            code: 0,
            properties: Properties::default()
        }
        .into()
    );
}

#[test]
fn properties_are_written_in_identifier_order_with_user_properties_in_place() {
    let p: MqttPacket = Publish {
        properties: Properties {
            topic_alias: Some(1),
            user_properties: user(&[("b", "2"), ("a", "1")]),
            content_type: Some("c".into()),
            subscription_identifiers: vec![5, 3],
            ..Properties::default()
        },
        ..Publish::new("t", Bytes::new())
    }
    .into();
    let bytes = round_trip(&p, V5);
    let props = [
        &[0x03, 0, 1, b'c'][..],
        &[0x0B, 5, 0x0B, 3],
        &[0x23, 0, 1],
        &[0x26, 0, 1, b'b', 0, 1, b'2'],
        &[0x26, 0, 1, b'a', 0, 1, b'1'],
    ]
    .concat();
    assert_eq!(bytes[5], u8::try_from(props.len()).unwrap());
    assert_eq!(bytes[6..], props[..]);
}

#[test]
fn payloads_are_slices_of_the_receive_buffer() {
    let p: MqttPacket = Publish::new("t", vec![7u8; 1000]).into();
    let mut buf = BytesMut::from(&encode(&p, V3_1_1)[..]);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let Some(MqttPacket::Publish(got)) = decode(&mut buf, V3_1_1, &limits()).unwrap() else {
        panic!("not a publish");
    };
    let at = got.payload.as_ptr() as usize;
    assert!(
        start <= at && at + got.payload.len() <= end,
        "payload was copied"
    );
}

// ----- limits ----------------------------------------------------------------

#[test]
fn packet_size_is_checked_from_the_fixed_header_before_the_body_arrives() {
    let small = MqttLimits {
        max_packet_size: 100,
    };
    // Only the fixed header of a 268 MB PUBLISH has arrived.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let err = decode(&mut buf, V3_1_1, &small).unwrap_err();
    assert_eq!(
        err,
        MqttDecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 100
        }
    );
    assert_eq!(err.reason_code(), reason::PACKET_TOO_LARGE);
    // The limit counts the whole packet: exactly 100 bytes passes, 101 fails.
    let fits: MqttPacket = Publish::new("t", vec![0u8; 100 - 5]).into();
    let bytes = encode(&fits, V3_1_1);
    assert_eq!(bytes.len(), 100);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(decode(&mut buf, V3_1_1, &small).unwrap(), Some(fits));
    let over = encode(&Publish::new("t", vec![0u8; 100 - 4]).into(), V3_1_1);
    let mut buf = BytesMut::from(&over[..2]);
    assert!(matches!(
        decode(&mut buf, V3_1_1, &small),
        Err(MqttDecodeError::PacketTooLarge { size: 101, .. })
    ));
}

// ----- fixed header ----------------------------------------------------------

#[test]
fn reserved_packet_types() {
    for v in MqttVersion::ALL {
        assert_malformed(
            &[0x00, 0x00],
            v,
            MqttDecodeError::ReservedPacketType { packet_type: 0 },
            reason::MALFORMED_PACKET,
        );
    }
    for v in [V3_1, V3_1_1] {
        // Rejected from the first byte alone.
        assert_malformed(
            &[0xF0],
            v,
            MqttDecodeError::ReservedPacketType { packet_type: 15 },
            reason::MALFORMED_PACKET,
        );
    }
    assert_eq!(
        decode_one(&[0xF0, 0x00], V5).unwrap(),
        Auth::default().into()
    );
}

#[test]
fn reserved_fixed_header_flags_are_rejected_from_the_first_byte() {
    let required = |t: u8| match t {
        6 | 8 | 10 => 0x02,
        _ => 0x00,
    };
    for v in MqttVersion::ALL {
        for t in [1u8, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14] {
            for flags in 0..16u8 {
                let byte = (t << 4) | flags;
                let lenient_3_1 = v == V3_1 && required(t) == 0x02 && flags == 0x0A;
                if flags == required(t) || lenient_3_1 {
                    continue;
                }
                assert_malformed(
                    &[byte],
                    v,
                    MqttDecodeError::InvalidFlags {
                        packet_type: PacketType::from_u8(t).unwrap(),
                        flags,
                    },
                    reason::MALFORMED_PACKET,
                );
            }
        }
    }
    // MQTT 3.1 may set DUP on PUBREL / SUBSCRIBE / UNSUBSCRIBE; it is dropped.
    assert_eq!(
        decode_one(&[0x6A, 0x02, 0x00, 0x01], V3_1).unwrap(),
        MqttPacket::PubRel(PubResponse::new(1))
    );
    assert_eq!(
        decode_err(&[0x6A, 0x02, 0x00, 0x01], V3_1_1),
        MqttDecodeError::InvalidFlags {
            packet_type: PacketType::PubRel,
            flags: 0x0A
        }
    );
}

#[test]
fn publish_qos_3_and_dup_with_qos_0_are_malformed() {
    for v in MqttVersion::ALL {
        assert_malformed(
            &[0x36],
            v,
            MqttDecodeError::InvalidQoS {
                what: "PUBLISH QoS",
            },
            reason::MALFORMED_PACKET,
        );
        assert_malformed(
            &[0x38],
            v,
            MqttDecodeError::DupWithQoS0,
            reason::MALFORMED_PACKET,
        );
    }
}

#[test]
fn fields_must_fill_the_remaining_length_exactly() {
    let trailing = |t, count| MqttDecodeError::TrailingBytes {
        packet_type: t,
        count,
    };
    assert_malformed(
        &[0xC0, 0x01, 0x00],
        V3_1_1,
        trailing(PacketType::PingReq, 1),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &[0x40, 0x03, 0x00, 0x01, 0x00],
        V3_1_1,
        trailing(PacketType::PubAck, 1),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &[0xE0, 0x01, 0x00],
        V3_1_1,
        trailing(PacketType::Disconnect, 1),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &[0xB0, 0x03, 0x00, 0x01, 0x00],
        V3_1_1,
        trailing(PacketType::UnsubAck, 1),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &[0x40, 0x01, 0x00],
        V5,
        MqttDecodeError::UnexpectedEnd {
            packet_type: PacketType::PubAck,
            what: "packet identifier",
        },
        reason::MALFORMED_PACKET,
    );
    // A topic length running past the remaining length.
    assert_malformed(
        &pkt(0x30, &[0x00, 0x05, b'a']),
        V3_1_1,
        MqttDecodeError::UnexpectedEnd {
            packet_type: PacketType::Publish,
            what: "topic name",
        },
        reason::MALFORMED_PACKET,
    );
}

// ----- strings ---------------------------------------------------------------

#[test]
fn strings_must_be_well_formed_utf8_without_disallowed_code_points() {
    let publish = |topic: &[u8]| pkt(0x30, &cat(&[&s(topic), b"payload"]));
    for bad in [&b"\xC0\x80"[..], b"\xED\xA0\x80", b"\xFF", b"a\xE2\x98"] {
        assert_malformed(
            &publish(bad),
            V3_1_1,
            MqttDecodeError::InvalidUtf8 { what: "topic name" },
            reason::MALFORMED_PACKET,
        );
    }
    for cp in [
        0x0000u32, 0x0001, 0x000A, 0x001F, 0x007F, 0x0080, 0x009F, 0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF,
        0x1FFFE, 0x10FFFF,
    ] {
        let c = char::from_u32(cp).unwrap();
        let topic = format!("a{c}b");
        assert_malformed(
            &publish(topic.as_bytes()),
            V5,
            MqttDecodeError::DisallowedCodePoint {
                what: "topic name",
                code_point: cp,
            },
            reason::MALFORMED_PACKET,
        );
        let p: MqttPacket = Publish::new(topic, Bytes::new()).into();
        assert_eq!(
            encode_err(&p, V5),
            MqttEncodeError::Invalid(MqttDecodeError::DisallowedCodePoint {
                what: "topic name",
                code_point: cp,
            })
        );
    }
    for fine in [
        "\u{e9}",
        "\u{2603}",
        "\u{1F600}",
        "\u{A0}",
        "\u{FDCF}",
        "\u{FFFD}",
        " ~",
    ] {
        let p: MqttPacket = Publish::new(format!("t/{fine}"), Bytes::new()).into();
        round_trip(&p, V5);
    }
    // User properties and other strings are checked too; binary data is not.
    let mut props = Properties::default().with_user_property("k", "a\u{0}");
    assert!(matches!(
        encode_err(
            &Publish {
                properties: props.clone(),
                ..Publish::new("t", Bytes::new())
            }
            .into(),
            V5
        ),
        MqttEncodeError::Invalid(MqttDecodeError::DisallowedCodePoint {
            what: "user property value",
            ..
        })
    ));
    props.user_properties.clear();
    props.correlation_data = Some(Bytes::from_static(b"\x00\xFF"));
    round_trip(
        &Publish {
            properties: props,
            ..Publish::new("t", Bytes::from_static(b"\x00\xFF"))
        }
        .into(),
        V5,
    );
}

#[test]
fn fields_longer_than_65535_bytes_cannot_be_encoded() {
    let p: MqttPacket = Publish::new("x".repeat(65_536), Bytes::new()).into();
    assert_eq!(
        encode_err(&p, V3_1_1),
        MqttEncodeError::FieldTooLong {
            what: "topic name",
            len: 65_536
        }
    );
    round_trip(
        &Publish::new("x".repeat(65_535), Bytes::new()).into(),
        V3_1_1,
    );
    let mut c = Connect::new(V3_1_1, "c");
    c.username = Some("u".into());
    c.password = Some(Bytes::from(vec![0u8; 65_536]));
    assert!(matches!(
        encode_err(&c.into(), V3_1_1),
        MqttEncodeError::FieldTooLong {
            what: "password",
            ..
        }
    ));
}

// ----- packet identifiers ----------------------------------------------------

#[test]
fn packet_identifier_zero_is_a_protocol_error() {
    let zero = |t| MqttDecodeError::PacketIdZero { packet_type: t };
    let cases: Vec<(Vec<u8>, PacketType)> = vec![
        (pkt(0x32, &cat(&[&s("t"), &[0, 0]])), PacketType::Publish),
        (pkt(0x40, &[0, 0]), PacketType::PubAck),
        (pkt(0x50, &[0, 0]), PacketType::PubRec),
        (pkt(0x62, &[0, 0]), PacketType::PubRel),
        (pkt(0x70, &[0, 0]), PacketType::PubComp),
        (
            pkt(0x82, &cat(&[&[0, 0], &s("a"), &[0]])),
            PacketType::Subscribe,
        ),
        (pkt(0x90, &[0, 0, 0]), PacketType::SubAck),
        (
            pkt(0xA2, &cat(&[&[0, 0], &s("a")])),
            PacketType::Unsubscribe,
        ),
        (pkt(0xB0, &[0, 0]), PacketType::UnsubAck),
    ];
    for (bytes, t) in cases {
        assert_malformed(&bytes, V3_1_1, zero(t), reason::PROTOCOL_ERROR);
    }
    // The encoder refuses the same packets.
    assert_eq!(
        encode_err(&MqttPacket::PubAck(PubResponse::new(0)), V5),
        MqttEncodeError::Invalid(zero(PacketType::PubAck))
    );
    let qos1 = Publish {
        qos: QoS::AtLeastOnce,
        ..Publish::new("t", Bytes::new())
    };
    assert_eq!(
        encode_err(&qos1.clone().into(), V3_1_1),
        MqttEncodeError::Invalid(zero(PacketType::Publish))
    );
    let qos0_with_id = Publish {
        packet_id: 9,
        ..Publish::new("t", Bytes::new())
    };
    assert_eq!(
        encode_err(&qos0_with_id.into(), V3_1_1),
        MqttEncodeError::PacketIdWithQoS0 { packet_id: 9 }
    );
    let dup0 = Publish {
        dup: true,
        ..Publish::new("t", Bytes::new())
    };
    assert_eq!(
        encode_err(&dup0.into(), V3_1_1),
        MqttEncodeError::Invalid(MqttDecodeError::DupWithQoS0)
    );
}

// ----- topics ----------------------------------------------------------------

#[test]
fn publish_topic_names() {
    for topic in ["a/+", "#", "a/#/b", "+"] {
        for v in MqttVersion::ALL {
            assert_malformed(
                &pkt(0x30, &s(topic)),
                v,
                MqttDecodeError::InvalidTopicName {
                    reason: "contains a wildcard",
                },
                reason::TOPIC_NAME_INVALID,
            );
        }
    }
    for v in [V3_1, V3_1_1] {
        assert_malformed(
            &pkt(0x30, &s("")),
            v,
            MqttDecodeError::InvalidTopicName { reason: "is empty" },
            reason::TOPIC_NAME_INVALID,
        );
    }
    // 5.0: empty with a topic alias is fine, without one a protocol error.
    assert_malformed(
        &pkt(0x30, &cat(&[&s(""), &[0]])),
        V5,
        MqttDecodeError::TopicNameMissing,
        reason::PROTOCOL_ERROR,
    );
    let aliased = Publish {
        properties: Properties {
            topic_alias: Some(3),
            ..Properties::default()
        },
        ..Publish::new("", Bytes::from_static(b"x"))
    };
    round_trip(&aliased.clone().into(), V5);
    assert_eq!(
        encode_err(&Publish::new("", Bytes::new()).into(), V5),
        MqttEncodeError::Invalid(MqttDecodeError::TopicNameMissing)
    );
    // A will topic is a topic name too.
    let mut c = Connect::new(V3_1_1, "c");
    c.will = Some(Will::new("w/#", Bytes::new()));
    assert_eq!(
        encode_err(&c.clone().into(), V3_1_1),
        MqttEncodeError::Invalid(MqttDecodeError::InvalidTopicName {
            reason: "contains a wildcard"
        })
    );
}

#[test]
fn subscribe_rules() {
    let sub = |v: MqttVersion, payload: &[u8]| {
        let props: &[u8] = if v == V5 { &[0] } else { &[] };
        pkt(0x82, &cat(&[&[0, 1], props, payload]))
    };
    for v in MqttVersion::ALL {
        assert_malformed(
            &sub(v, &[]),
            v,
            MqttDecodeError::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            },
            reason::PROTOCOL_ERROR,
        );
        assert_malformed(
            &sub(v, &cat(&[&s("a"), &[1], &s(""), &[1]])),
            v,
            MqttDecodeError::EmptyTopicFilter {
                packet_type: PacketType::Subscribe,
            },
            reason::MALFORMED_PACKET,
        );
        assert_malformed(
            &sub(v, &cat(&[&s("a"), &[3]])),
            v,
            MqttDecodeError::InvalidQoS {
                what: "subscription QoS",
            },
            reason::MALFORMED_PACKET,
        );
        assert_malformed(
            &sub(v, &s("a")),
            v,
            MqttDecodeError::UnexpectedEnd {
                packet_type: PacketType::Subscribe,
                what: "subscription options",
            },
            reason::MALFORMED_PACKET,
        );
    }
    for v in [V3_1, V3_1_1] {
        // No Local and the rest are reserved bits before 5.0.
        for options in [0x04u8, 0x08, 0x10, 0x80] {
            assert_malformed(
                &sub(v, &cat(&[&s("a"), &[options]])),
                v,
                MqttDecodeError::InvalidSubscriptionOptions { options },
                reason::MALFORMED_PACKET,
            );
        }
    }
    for options in [0x40u8, 0x80] {
        assert_malformed(
            &sub(V5, &cat(&[&s("a"), &[options]])),
            V5,
            MqttDecodeError::InvalidSubscriptionOptions { options },
            reason::MALFORMED_PACKET,
        );
    }
    assert_malformed(
        &sub(V5, &cat(&[&s("a"), &[0x30]])),
        V5,
        MqttDecodeError::InvalidRetainHandling,
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &sub(V5, &cat(&[&s("$share/g/a"), &[0x04]])),
        V5,
        MqttDecodeError::NoLocalOnSharedSubscription {
            filter: "$share/g/a".into(),
        },
        reason::PROTOCOL_ERROR,
    );
    // Encoder side.
    let with_opts = |options| {
        MqttPacket::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            filters: vec![SubscribeFilter {
                filter: "$share/g/a".into(),
                options,
            }],
        })
    };
    let no_local = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::default()
    };
    assert!(matches!(
        encode_err(&with_opts(no_local), V3_1_1),
        MqttEncodeError::NotInVersion { .. }
    ));
    assert!(matches!(
        encode_err(&with_opts(no_local), V5),
        MqttEncodeError::Invalid(MqttDecodeError::NoLocalOnSharedSubscription { .. })
    ));
    let empty = MqttPacket::Subscribe(Subscribe {
        packet_id: 1,
        properties: Properties::default(),
        filters: vec![],
    });
    assert!(matches!(
        encode_err(&empty, V5),
        MqttEncodeError::Invalid(MqttDecodeError::NoTopicFilters { .. })
    ));
}

#[test]
fn unsubscribe_rules() {
    assert_malformed(
        &pkt(0xA2, &[0, 1]),
        V3_1_1,
        MqttDecodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
        },
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &pkt(0xA2, &cat(&[&[0, 1, 0], &s("")])),
        V5,
        MqttDecodeError::EmptyTopicFilter {
            packet_type: PacketType::Unsubscribe,
        },
        reason::MALFORMED_PACKET,
    );
    let empty_filter = MqttPacket::Unsubscribe(Unsubscribe {
        packet_id: 1,
        properties: Properties::default(),
        filters: vec![String::new()],
    });
    assert!(matches!(
        encode_err(&empty_filter, V3_1_1),
        MqttEncodeError::Invalid(MqttDecodeError::EmptyTopicFilter { .. })
    ));
}

#[test]
fn topic_filter_syntax() {
    for ok in [
        "a",
        "a/b",
        "+",
        "#",
        "a/+/b",
        "a/#",
        "+/+",
        "/",
        "/a",
        "a//b",
        "$share/g/a/+",
        "$SYS/#",
    ] {
        assert!(valid_topic_filter(ok), "{ok}");
    }
    for bad in [
        "",
        "a#",
        "a/#/b",
        "a+",
        "a/b+/c",
        "##",
        "$share/g",
        "$share//a",
        "$share/g+/a",
        "$share/g/",
    ] {
        assert!(!valid_topic_filter(bad), "{bad}");
    }
}

// ----- properties ------------------------------------------------------------

/// A 5.0 PUBLISH "t" with the given property block bytes.
fn publish_with_props(props: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    pkt(0x30, &cat(&[&s("t"), &[len], props]))
}

/// A 5.0 CONNECT with the given property block bytes.
fn connect_with_props(props: &[u8]) -> Vec<u8> {
    let len = u8::try_from(props.len()).unwrap();
    pkt(
        0x10,
        &cat(&[&s("MQTT"), &[5, 0x02, 0, 60, len], props, &s("c")]),
    )
}

#[test]
fn property_rules() {
    use property as id;
    let pt = PacketType::Publish;
    // Repeatable ones.
    let user2 = [&[0x26][..], &s("k"), &s("1"), &[0x26], &s("k"), &s("2")].concat();
    let Ok(MqttPacket::Publish(p)) = decode_one(&publish_with_props(&user2), V5) else {
        panic!()
    };
    assert_eq!(
        p.properties.user_properties,
        user(&[("k", "1"), ("k", "2")])
    );
    let Ok(MqttPacket::Publish(p)) = decode_one(&publish_with_props(&[0x0B, 1, 0x0B, 2]), V5)
    else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);

    // Repeats of the others.
    let dup = |pid| MqttDecodeError::DuplicateProperty {
        packet_type: pt,
        id: pid,
    };
    for (bytes, pid) in [
        (vec![0x01, 0, 0x01, 1], id::PAYLOAD_FORMAT_INDICATOR),
        (vec![0x23, 0, 1, 0x23, 0, 1], id::TOPIC_ALIAS),
        (
            [&[0x03][..], &s("a"), &[0x03], &s("a")].concat(),
            id::CONTENT_TYPE,
        ),
    ] {
        assert_malformed(
            &publish_with_props(&bytes),
            V5,
            dup(pid),
            reason::PROTOCOL_ERROR,
        );
    }
    assert_malformed(
        &pkt(0x82, &cat(&[&[0, 1, 4, 0x0B, 1, 0x0B, 2], &s("a"), &[0]])),
        V5,
        MqttDecodeError::DuplicateProperty {
            packet_type: PacketType::Subscribe,
            id: id::SUBSCRIPTION_IDENTIFIER,
        },
        reason::PROTOCOL_ERROR,
    );

    // Properties in the wrong packet.
    let not_allowed = |t, pid| MqttDecodeError::PropertyNotAllowed {
        packet_type: t,
        id: pid,
    };
    assert_malformed(
        &publish_with_props(&[0x11, 0, 0, 0, 1]),
        V5,
        not_allowed(pt, id::SESSION_EXPIRY_INTERVAL),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &connect_with_props(&[0x18, 0, 0, 0, 1]),
        V5,
        not_allowed(PacketType::Connect, id::WILL_DELAY_INTERVAL),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &connect_with_props(&cat(&[&[0x1F], &s("r")])),
        V5,
        not_allowed(PacketType::Connect, id::REASON_STRING),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &pkt(0x82, &cat(&[&[0, 1, 3, 0x23, 0, 1], &s("a"), &[0]])),
        V5,
        not_allowed(PacketType::Subscribe, id::TOPIC_ALIAS),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &pkt(0x40, &[0, 1, 0, 2, 0x01, 1]),
        V5,
        not_allowed(PacketType::PubAck, id::PAYLOAD_FORMAT_INDICATOR),
        reason::MALFORMED_PACKET,
    );

    // Unknown identifiers.
    for pid in [0x00u8, 0x04, 0x0A, 0x14, 0x1B, 0x2B, 0x7F, 0x80] {
        assert_malformed(
            &publish_with_props(&[pid, 0]),
            V5,
            MqttDecodeError::UnknownProperty {
                packet_type: pt,
                id: pid,
            },
            reason::MALFORMED_PACKET,
        );
    }

    // Forbidden values.
    let invalid = |t, pid, value| MqttDecodeError::InvalidPropertyValue {
        packet_type: t,
        id: pid,
        value,
    };
    assert_malformed(
        &publish_with_props(&[0x01, 2]),
        V5,
        invalid(pt, id::PAYLOAD_FORMAT_INDICATOR, 2),
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &publish_with_props(&[0x23, 0, 0]),
        V5,
        invalid(pt, id::TOPIC_ALIAS, 0),
        reason::TOPIC_ALIAS_INVALID,
    );
    assert_malformed(
        &publish_with_props(&[0x0B, 0]),
        V5,
        invalid(pt, id::SUBSCRIPTION_IDENTIFIER, 0),
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &publish_with_props(&[0x0B, 0x80, 0x00]),
        V5,
        MqttDecodeError::VarIntNotMinimal {
            what: "subscription identifier",
        },
        reason::MALFORMED_PACKET,
    );
    for (bytes, pid, value) in [
        (vec![0x21, 0, 0], id::RECEIVE_MAXIMUM, 0),
        (vec![0x27, 0, 0, 0, 0], id::MAXIMUM_PACKET_SIZE, 0),
        (vec![0x17, 2], id::REQUEST_PROBLEM_INFORMATION, 2),
        (vec![0x19, 0xFF], id::REQUEST_RESPONSE_INFORMATION, 255),
    ] {
        assert_malformed(
            &connect_with_props(&bytes),
            V5,
            invalid(PacketType::Connect, pid, value),
            reason::PROTOCOL_ERROR,
        );
    }
    assert_malformed(
        &pkt(0x20, &[0, 0, 2, 0x24, 2]),
        V5,
        invalid(PacketType::ConnAck, id::MAXIMUM_QOS, 2),
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &pkt(0x20, &[0, 0, 2, 0x25, 7]),
        V5,
        invalid(PacketType::ConnAck, id::RETAIN_AVAILABLE, 7),
        reason::PROTOCOL_ERROR,
    );
    assert_malformed(
        &connect_with_props(&cat(&[&[0x16], &s("data")])),
        V5,
        MqttDecodeError::AuthDataWithoutMethod {
            packet_type: PacketType::Connect,
        },
        reason::PROTOCOL_ERROR,
    );

    // Property lengths that do not fit.
    assert_malformed(
        &pkt(0x30, &cat(&[&s("t"), &[9, 0x01, 1]])),
        V5,
        MqttDecodeError::UnexpectedEnd {
            packet_type: pt,
            what: "properties",
        },
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &publish_with_props(&[0x02, 0, 0]),
        V5,
        MqttDecodeError::UnexpectedEnd {
            packet_type: pt,
            what: "message expiry interval",
        },
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &publish_with_props(&[0x26, 0, 1, b'k']),
        V5,
        MqttDecodeError::UnexpectedEnd {
            packet_type: pt,
            what: "user property value",
        },
        reason::MALFORMED_PACKET,
    );
}

#[test]
fn encoder_refuses_properties_the_packet_or_version_cannot_carry() {
    let bad = Publish {
        properties: Properties {
            session_expiry_interval: Some(1),
            ..Properties::default()
        },
        ..Publish::new("t", Bytes::new())
    };
    assert_eq!(
        encode_err(&bad.clone().into(), V5),
        MqttEncodeError::Invalid(MqttDecodeError::PropertyNotAllowed {
            packet_type: PacketType::Publish,
            id: property::SESSION_EXPIRY_INTERVAL
        })
    );
    assert!(matches!(
        encode_err(&bad.into(), V3_1_1),
        MqttEncodeError::NotInVersion {
            what: "properties",
            ..
        }
    ));
    for value in [0, MAX_VAR_INT + 1] {
        let p = Publish {
            properties: Properties {
                subscription_identifiers: vec![value],
                ..Properties::default()
            },
            ..Publish::new("t", Bytes::new())
        };
        assert!(matches!(
            encode_err(&p.into(), V5),
            MqttEncodeError::Invalid(MqttDecodeError::InvalidPropertyValue { .. })
        ));
    }
    let max_qos_2 = ConnAck {
        properties: Properties {
            maximum_qos: Some(QoS::ExactlyOnce),
            ..Properties::default()
        },
        ..ConnAck::default()
    };
    assert!(matches!(
        encode_err(&max_qos_2.into(), V5),
        MqttEncodeError::Invalid(MqttDecodeError::InvalidPropertyValue { value: 2, .. })
    ));
    let two_ids = Subscribe {
        packet_id: 1,
        properties: Properties {
            subscription_identifiers: vec![1, 2],
            ..Properties::default()
        },
        filters: vec![SubscribeFilter::new("a", QoS::AtMostOnce)],
    };
    assert!(matches!(
        encode_err(&two_ids.into(), V5),
        MqttEncodeError::Invalid(MqttDecodeError::DuplicateProperty { .. })
    ));
    for v in [V3_1, V3_1_1] {
        assert!(matches!(
            encode_err(&Auth::default().into(), v),
            MqttEncodeError::NotInVersion { .. }
        ));
        let nack = PubResponse {
            reason_code: 0x80,
            ..PubResponse::new(1)
        };
        assert!(matches!(
            encode_err(&MqttPacket::PubAck(nack), v),
            MqttEncodeError::NotInVersion {
                what: "a reason code",
                ..
            }
        ));
        let codes = UnsubAck {
            packet_id: 1,
            properties: Properties::default(),
            reason_codes: vec![0],
        };
        assert!(matches!(
            encode_err(&codes.into(), v),
            MqttEncodeError::NotInVersion { .. }
        ));
    }
    let session_present = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    assert!(matches!(
        encode_err(&session_present.into(), V3_1),
        MqttEncodeError::NotInVersion { .. }
    ));
}

// ----- CONNECT / CONNACK -----------------------------------------------------

fn connect_bytes(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    pkt(0x10, &cat(&[&s(name), &[level, flags, 0, 60], rest]))
}

#[test]
fn connect_protocol_name_and_level() {
    for (name, level) in [
        ("MQTT", 3u8),
        ("MQTT", 6),
        ("MQIsdp", 4),
        ("MQTX", 4),
        ("mqtt", 4),
    ] {
        assert_malformed(
            &connect_bytes(name, level, 0x02, &s("c")),
            V3_1_1,
            MqttDecodeError::UnsupportedProtocol {
                name: name.into(),
                level,
            },
            reason::UNSUPPORTED_PROTOCOL_VERSION,
        );
    }
    let Ok(MqttPacket::Connect(c)) = decode_one(&connect_bytes("MQIsdp", 3, 0x02, &s("c")), V5)
    else {
        panic!()
    };
    assert_eq!(
        (c.protocol, c.clean_session, c.keep_alive),
        (V3_1, true, 60)
    );
}

#[test]
fn connect_flags() {
    let invalid = |flags, why| MqttDecodeError::InvalidConnectFlags { flags, reason: why };
    // Reserved bit: malformed in 3.1.1 and 5.0, ignored in 3.1 (as mosquitto does).
    assert_malformed(
        &connect_bytes("MQTT", 4, 0x03, &s("c")),
        V3_1_1,
        invalid(0x03, "the reserved bit is set"),
        reason::MALFORMED_PACKET,
    );
    assert_malformed(
        &connect_bytes("MQTT", 5, 0x01, &cat(&[&[0], &s("c")])),
        V5,
        invalid(0x01, "the reserved bit is set"),
        reason::MALFORMED_PACKET,
    );
    assert!(decode_one(&connect_bytes("MQIsdp", 3, 0x03, &s("c")), V3_1).is_ok());
    // Will QoS / retain without a will.
    for flags in [0x08u8, 0x10, 0x20] {
        assert_malformed(
            &connect_bytes("MQTT", 4, flags, &s("c")),
            V3_1_1,
            invalid(flags, "will QoS or retain set without a will"),
            reason::MALFORMED_PACKET,
        );
    }
    assert_malformed(
        &connect_bytes("MQTT", 4, 0x1C, &cat(&[&s("c"), &s("w"), &s("m")])),
        V3_1_1,
        MqttDecodeError::InvalidQoS { what: "will QoS" },
        reason::MALFORMED_PACKET,
    );
    // Password without user name: malformed before 5.0, fine in 5.0.
    assert_malformed(
        &connect_bytes("MQTT", 4, 0x40, &cat(&[&s("c"), &s("pw")])),
        V3_1_1,
        invalid(0x40, "password without a user name"),
        reason::MALFORMED_PACKET,
    );
    let Ok(MqttPacket::Connect(c)) = decode_one(
        &connect_bytes("MQTT", 5, 0x40, &cat(&[&[0], &s("c"), &s("pw")])),
        V5,
    ) else {
        panic!()
    };
    assert_eq!(
        (c.username, c.password),
        (None, Some(Bytes::from_static(b"pw")))
    );
    let mut c = Connect::new(V3_1_1, "c");
    c.password = Some(Bytes::from_static(b"pw"));
    assert!(matches!(
        encode_err(&c.clone().into(), V3_1_1),
        MqttEncodeError::NotInVersion { .. }
    ));
    c.protocol = V5;
    round_trip(&c.into(), V5);
}

#[test]
fn mqtt_3_1_user_name_and_password_flags_without_the_fields_are_ignored() {
    let bytes = connect_bytes("MQIsdp", 3, 0xC2, &s("c"));
    let Ok(MqttPacket::Connect(c)) = decode_one(&bytes, V3_1) else {
        panic!()
    };
    assert_eq!((c.username, c.password), (None, None));
    let bytes = connect_bytes("MQIsdp", 3, 0xC2, &cat(&[&s("c"), &s("u")]));
    let Ok(MqttPacket::Connect(c)) = decode_one(&bytes, V3_1) else {
        panic!()
    };
    assert_eq!((c.username.as_deref(), c.password), (Some("u"), None));
    // Not in 3.1.1.
    assert_malformed(
        &connect_bytes("MQTT", 4, 0xC2, &s("c")),
        V3_1_1,
        MqttDecodeError::UnexpectedEnd {
            packet_type: PacketType::Connect,
            what: "user name",
        },
        reason::MALFORMED_PACKET,
    );
}

#[test]
fn connack_flags() {
    assert_malformed(
        &[0x20, 0x02, 0x02, 0x00],
        V3_1_1,
        MqttDecodeError::InvalidConnAckFlags { flags: 0x02 },
        reason::MALFORMED_PACKET,
    );
    // 3.1 has no session-present flag: the byte is reserved and ignored.
    assert_eq!(
        decode_one(&[0x20, 0x02, 0x01, 0x05], V3_1).unwrap(),
        ConnAck {
            session_present: false,
            code: reason::V3_NOT_AUTHORIZED,
            properties: Properties::default()
        }
        .into()
    );
}

#[test]
fn will_payload_format_check() {
    let mut will = Will::new("w", Bytes::from_static(b"\xFF"));
    assert_eq!(will.check_payload_format(), Ok(()));
    will.properties.payload_format_indicator = Some(true);
    let err = will.check_payload_format().unwrap_err();
    assert_eq!(err, MqttDecodeError::PayloadFormatInvalid);
    assert_eq!(err.reason_code(), reason::PAYLOAD_FORMAT_INVALID);
    let p = Publish {
        properties: Properties {
            payload_format_indicator: Some(true),
            ..Properties::default()
        },
        ..Publish::new("t", Bytes::from_static(b"\xC3"))
    };
    // The decoder accepts it; the check is the receiver's.
    let MqttPacket::Publish(decoded) = decode_one(&encode(&p.clone().into(), V5), V5).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        decoded.check_payload_format(),
        Err(MqttDecodeError::PayloadFormatInvalid)
    );
    let text = Publish {
        payload: Bytes::from_static("\u{2603}".as_bytes()),
        ..p
    };
    assert_eq!(text.check_payload_format(), Ok(()));
}

// ----- decode_connect and the codec -----------------------------------------

#[test]
fn decode_connect_rejects_anything_else_from_the_first_byte() {
    let mut buf = BytesMut::from(&[0x30][..]);
    assert_eq!(
        decode_connect(&mut buf, &limits()),
        Err(MqttDecodeError::NotConnect {
            packet_type: PacketType::Publish
        })
    );
    assert_eq!(
        MqttDecodeError::NotConnect {
            packet_type: PacketType::Publish
        }
        .reason_code(),
        reason::PROTOCOL_ERROR
    );
    let mut buf = BytesMut::from(&[0xF0][..]);
    assert_eq!(
        decode_connect(&mut buf, &limits()),
        Err(MqttDecodeError::NotConnect {
            packet_type: PacketType::Auth
        })
    );
    // An HTTP request is not MQTT.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert!(decode_connect(&mut buf, &limits()).is_err());
    let connect = Connect::new(V5, "c");
    let mut buf = BytesMut::from(&encode(&connect.clone().into(), V5)[..]);
    assert_eq!(decode_connect(&mut buf, &limits()), Ok(Some(connect)));
    assert!(buf.is_empty());
}

#[test]
fn codec_learns_the_version_from_connect() {
    // Server side: decodes the client's CONNECT, then speaks its version.
    let mut server = MqttCodec::new(limits());
    assert_eq!(server.version(), None);
    let mut wire = BytesMut::new();
    let mut client = MqttCodec::new(limits());
    assert!(matches!(
        client.encode(MqttPacket::PingReq, &mut wire),
        Err(MqttCodecError::VersionUnknown)
    ));
    client
        .encode(MqttPacket::from(Connect::new(V5, "c")), &mut wire)
        .unwrap();
    assert_eq!(client.version(), Some(V5));
    let ack = MqttPacket::PubAck(PubResponse {
        reason_code: 0x10,
        ..PubResponse::new(1)
    });
    client.encode(&ack, &mut wire).unwrap();
    let Some(MqttPacket::Connect(_)) = server.decode(&mut wire).unwrap() else {
        panic!()
    };
    assert_eq!(server.version(), Some(V5));
    assert_eq!(server.decode(&mut wire).unwrap(), Some(ack));
    // A server codec that has not seen CONNECT refuses anything else.
    let mut fresh = MqttCodec::new(limits());
    let mut buf = BytesMut::from(&[0xC0, 0x00][..]);
    assert!(matches!(
        fresh.decode(&mut buf),
        Err(MqttCodecError::Decode(MqttDecodeError::NotConnect { .. }))
    ));
}

#[test]
fn codec_reserves_room_for_an_announced_packet() {
    let mut codec = MqttCodec::with_version(limits(), V3_1_1);
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0x30, 0x80, 0x80, 0x01]); // 16384-byte body
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 4 + 16_384);
    assert_eq!(buf.len(), 4);
}

#[test]
fn reason_codes_of_errors() {
    use MqttDecodeError as E;
    let t = PacketType::Publish;
    let cases = [
        (E::PacketTooLarge { size: 2, max: 1 }, 0x95),
        (E::VarIntTooLong { what: "x" }, 0x81),
        (E::VarIntNotMinimal { what: "x" }, 0x81),
        (E::ReservedPacketType { packet_type: 0 }, 0x81),
        (E::NotConnect { packet_type: t }, 0x82),
        (
            E::InvalidFlags {
                packet_type: t,
                flags: 1,
            },
            0x81,
        ),
        (E::InvalidQoS { what: "x" }, 0x81),
        (E::DupWithQoS0, 0x81),
        (
            E::UnexpectedEnd {
                packet_type: t,
                what: "x",
            },
            0x81,
        ),
        (
            E::TrailingBytes {
                packet_type: t,
                count: 1,
            },
            0x81,
        ),
        (E::InvalidUtf8 { what: "x" }, 0x81),
        (
            E::DisallowedCodePoint {
                what: "x",
                code_point: 0,
            },
            0x81,
        ),
        (
            E::UnsupportedProtocol {
                name: "x".into(),
                level: 9,
            },
            0x84,
        ),
        (
            E::InvalidConnectFlags {
                flags: 1,
                reason: "x",
            },
            0x81,
        ),
        (E::InvalidConnAckFlags { flags: 2 }, 0x81),
        (E::PacketIdZero { packet_type: t }, 0x82),
        (
            E::UnknownProperty {
                packet_type: t,
                id: 0,
            },
            0x81,
        ),
        (
            E::PropertyNotAllowed {
                packet_type: t,
                id: 0x11,
            },
            0x81,
        ),
        (
            E::DuplicateProperty {
                packet_type: t,
                id: 0x01,
            },
            0x82,
        ),
        (
            E::InvalidPropertyValue {
                packet_type: t,
                id: 0x01,
                value: 2,
            },
            0x82,
        ),
        (
            E::InvalidPropertyValue {
                packet_type: t,
                id: 0x23,
                value: 0,
            },
            0x94,
        ),
        (E::AuthDataWithoutMethod { packet_type: t }, 0x82),
        (E::InvalidTopicName { reason: "x" }, 0x90),
        (E::TopicNameMissing, 0x82),
        (E::EmptyTopicFilter { packet_type: t }, 0x81),
        (E::NoTopicFilters { packet_type: t }, 0x82),
        (E::InvalidSubscriptionOptions { options: 0x40 }, 0x81),
        (E::InvalidRetainHandling, 0x82),
        (E::NoLocalOnSharedSubscription { filter: "x".into() }, 0x82),
        (E::PayloadFormatInvalid, 0x99),
    ];
    for (err, code) in cases {
        assert_eq!(err.reason_code(), code, "{err}");
        assert!(!err.to_string().is_empty());
    }
}
