//! Golden bytes: MQTT packets captured from paho-mqtt 2.2.0, Debian's
//! mosquitto_pub / mosquitto_sub 2.0.11 and the mosquitto 2.0.11 broker by
//! `testdata/mqtt/capture.py`. Each file is decoded under the version in its
//! name and compared field by field with the packet the capture script made
//! the client or broker send. Files in canonical form (all of paho's, and
//! mosquitto's unless it writes 5.0 properties out of identifier order)
//! re-encode byte for byte; the others re-encode to the same length and
//! decode back equal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use codecs::mqtt::{
    decode, reason, ConnAck, Connect, Disconnect, MqttCodec, MqttLimits, MqttPacket, MqttVersion,
    Properties, PubResponse, Publish, QoS, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
use tokio_util::codec::Decoder;

use MqttVersion::{V3_1, V3_1_1, V5};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/mqtt")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn version_tag(v: MqttVersion) -> &'static str {
    match v {
        V3_1 => "3.1",
        V3_1_1 => "3.1.1",
        V5 => "5",
    }
}

/// Whether re-encoding reproduces the capture byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Properties in identifier order: the encoder's output is identical.
    Canonical,
    /// mosquitto writes some 5.0 properties out of identifier order.
    PropertiesReordered,
}

struct Case {
    file: String,
    version: MqttVersion,
    packet: MqttPacket,
    form: Form,
}

fn case(tool: &str, packet_name: &str, v: MqttVersion, packet: MqttPacket, form: Form) -> Case {
    Case {
        file: format!("{tool}_{packet_name}_v{}.bin", version_tag(v)),
        version: v,
        packet,
        form,
    }
}

fn user(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// `props` under 5.0, nothing before.
fn only_v5(v: MqttVersion, props: Properties) -> Properties {
    if v == V5 {
        props
    } else {
        Properties::default()
    }
}

fn publish(
    qos: QoS,
    retain: bool,
    topic: &str,
    packet_id: u16,
    payload: &'static [u8],
    properties: Properties,
) -> MqttPacket {
    MqttPacket::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: topic.into(),
        packet_id,
        properties,
        payload: Bytes::from_static(payload),
    })
}

fn ack(packet_id: u16) -> PubResponse {
    PubResponse::new(packet_id)
}

fn options(
    qos: QoS,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: RetainHandling,
) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local,
        retain_as_published,
        retain_handling,
    }
}

const PAHO: &str = "paho-2.2.0";
const MOSQ_PUB: &str = "mosquitto_pub-2.0.11";
const MOSQ_SUB: &str = "mosquitto_sub-2.0.11";
const BROKER: &str = "mosquitto-2.0.11";

fn paho_cases(v: MqttVersion) -> Vec<Case> {
    use Form::Canonical;
    let mut connect = Connect::new(v, "golden-paho");
    connect.keep_alive = 1;
    connect.username = Some("golden-user".into());
    connect.password = Some(Bytes::from_static(b"golden-pass"));
    connect.properties = only_v5(
        v,
        Properties {
            session_expiry_interval: Some(300),
            request_problem_information: Some(true),
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            user_properties: user(&[("client", "paho"), ("purpose", "golden")]),
            maximum_packet_size: Some(65536),
            ..Properties::default()
        },
    );
    connect.will = Some(Will {
        topic: "golden/will".into(),
        payload: Bytes::from_static(b"client gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: only_v5(
            v,
            Properties {
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(120),
                content_type: Some("text/plain".into()),
                will_delay_interval: Some(5),
                user_properties: user(&[("will-key", "will-value")]),
                ..Properties::default()
            },
        ),
    });

    let subscribe = if v == V5 {
        Subscribe {
            packet_id: 1,
            properties: Properties {
                subscription_identifiers: vec![7],
                user_properties: user(&[("sub-key", "sub-value")]),
                ..Properties::default()
            },
            filters: vec![
                SubscribeFilter {
                    filter: "golden/a".into(),
                    options: options(QoS::AtLeastOnce, true, true, RetainHandling::DoNotSend),
                },
                SubscribeFilter {
                    filter: "golden/+/b".into(),
                    options: options(
                        QoS::ExactlyOnce,
                        false,
                        false,
                        RetainHandling::SendAtSubscribeIfNew,
                    ),
                },
                SubscribeFilter::new("golden/#", QoS::AtMostOnce),
            ],
        }
    } else {
        Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            filters: vec![
                SubscribeFilter::new("golden/a", QoS::AtLeastOnce),
                SubscribeFilter::new("golden/+/b", QoS::ExactlyOnce),
                SubscribeFilter::new("golden/#", QoS::AtMostOnce),
            ],
        }
    };

    let disconnect = if v == V5 {
        Disconnect {
            reason_code: reason::DISCONNECT_WITH_WILL_MESSAGE,
            properties: Properties {
                session_expiry_interval: Some(0),
                reason_string: Some("golden done".into()),
                ..Properties::default()
            },
        }
    } else {
        Disconnect::default()
    };

    vec![
        case(PAHO, "connect", v, connect.into(), Canonical),
        case(PAHO, "subscribe", v, subscribe.into(), Canonical),
        case(
            PAHO,
            "publish-qos0",
            v,
            publish(
                QoS::AtMostOnce,
                false,
                "golden/t",
                0,
                b"qos0 payload",
                only_v5(
                    v,
                    Properties {
                        topic_alias: Some(1),
                        user_properties: user(&[("k", "v")]),
                        ..Properties::default()
                    },
                ),
            ),
            Canonical,
        ),
        case(
            PAHO,
            "publish-qos1",
            v,
            publish(
                QoS::AtLeastOnce,
                false,
                "golden/t",
                3,
                "h\u{e9}llo \u{2603}".as_bytes(),
                only_v5(
                    v,
                    Properties {
                        payload_format_indicator: Some(true),
                        message_expiry_interval: Some(60),
                        content_type: Some("text/plain; charset=utf-8".into()),
                        response_topic: Some("golden/reply".into()),
                        correlation_data: Some(Bytes::from_static(b"\x00\x01corr\xff")),
                        user_properties: user(&[
                            ("a", "1"),
                            ("b", "2"),
                            ("a", "3"),
                            ("h\u{e9}", "\u{2603}"),
                        ]),
                        ..Properties::default()
                    },
                ),
            ),
            Canonical,
        ),
        case(
            PAHO,
            "publish-qos2-retain",
            v,
            publish(
                QoS::ExactlyOnce,
                true,
                "golden/t",
                4,
                b"\x00\x01\x02\xff binary",
                only_v5(
                    v,
                    Properties {
                        payload_format_indicator: Some(false),
                        user_properties: user(&[("qos", "2")]),
                        ..Properties::default()
                    },
                ),
            ),
            Canonical,
        ),
        case(PAHO, "puback", v, MqttPacket::PubAck(ack(1)), Canonical),
        case(PAHO, "pubrec", v, MqttPacket::PubRec(ack(2)), Canonical),
        case(PAHO, "pubcomp", v, MqttPacket::PubComp(ack(2)), Canonical),
        case(PAHO, "pubrel", v, MqttPacket::PubRel(ack(4)), Canonical),
        case(
            PAHO,
            "unsubscribe",
            v,
            Unsubscribe {
                packet_id: 5,
                properties: only_v5(
                    v,
                    Properties::default().with_user_property("unsub-key", "unsub-value"),
                ),
                filters: vec!["golden/a".into(), "golden/+/b".into()],
            }
            .into(),
            Canonical,
        ),
        case(PAHO, "pingreq", v, MqttPacket::PingReq, Canonical),
        case(PAHO, "disconnect", v, disconnect.into(), Canonical),
    ]
}

fn mosquitto_client_cases(v: MqttVersion) -> Vec<Case> {
    use Form::{Canonical, PropertiesReordered};
    let reordered_in_v5 = if v == V5 {
        PropertiesReordered
    } else {
        Canonical
    };
    let mut connect = Connect::new(v, "golden-mosq-pub");
    connect.keep_alive = 30;
    connect.username = Some("golden-user".into());
    connect.password = Some(Bytes::from_static(b"golden-pass"));
    connect.properties = only_v5(
        v,
        Properties {
            session_expiry_interval: Some(60),
            receive_maximum: Some(20),
            user_properties: user(&[("tool", "mosquitto_pub")]),
            ..Properties::default()
        },
    );
    connect.will = Some(Will {
        topic: "golden/will".into(),
        payload: Bytes::from_static(b"pub gone"),
        qos: QoS::ExactlyOnce,
        retain: true,
        properties: only_v5(
            v,
            Properties {
                content_type: Some("text/plain".into()),
                will_delay_interval: Some(3),
                ..Properties::default()
            },
        ),
    });
    let publish_props = only_v5(
        v,
        Properties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(30),
            content_type: Some("text/plain".into()),
            response_topic: Some("golden/reply".into()),
            correlation_data: Some(Bytes::from_static(b"abc")),
            user_properties: user(&[("k1", "v1"), ("k2", "v2")]),
            ..Properties::default()
        },
    );
    let pub_disconnect = Disconnect {
        reason_code: 0,
        properties: only_v5(
            v,
            Properties {
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        ),
    };

    let mut sub_connect = Connect::new(v, "golden-mosq-sub");
    sub_connect.keep_alive = 5;
    // mosquitto_sub -C 2 asks for at most 2 in-flight messages.
    sub_connect.properties = only_v5(
        v,
        Properties {
            receive_maximum: Some(2),
            ..Properties::default()
        },
    );
    let sub_options = options(
        QoS::ExactlyOnce,
        false,
        v == V5,
        RetainHandling::SendAtSubscribe,
    );
    let tool = only_v5(
        v,
        Properties::default().with_user_property("tool", "mosquitto_sub"),
    );

    vec![
        case(MOSQ_PUB, "connect", v, connect.into(), reordered_in_v5),
        case(
            MOSQ_PUB,
            "publish-qos0",
            v,
            publish(
                QoS::AtMostOnce,
                false,
                "golden/t",
                0,
                b"mosquitto qos0",
                publish_props.clone(),
            ),
            reordered_in_v5,
        ),
        case(
            MOSQ_PUB,
            "publish-qos1",
            v,
            publish(
                QoS::AtLeastOnce,
                false,
                "golden/t",
                1,
                b"mosquitto qos1",
                publish_props.clone(),
            ),
            reordered_in_v5,
        ),
        case(
            MOSQ_PUB,
            "publish-qos2-retain",
            v,
            publish(
                QoS::ExactlyOnce,
                true,
                "golden/t",
                1,
                b"mosquitto qos2",
                publish_props,
            ),
            reordered_in_v5,
        ),
        case(MOSQ_PUB, "pubrel", v, MqttPacket::PubRel(ack(1)), Canonical),
        case(MOSQ_PUB, "disconnect", v, pub_disconnect.into(), Canonical),
        case(MOSQ_SUB, "connect", v, sub_connect.into(), Canonical),
        case(
            MOSQ_SUB,
            "subscribe",
            v,
            Subscribe {
                packet_id: 1,
                properties: only_v5(
                    v,
                    Properties {
                        subscription_identifiers: vec![9],
                        ..tool.clone()
                    },
                ),
                filters: vec![
                    SubscribeFilter {
                        filter: "golden/a".into(),
                        options: sub_options,
                    },
                    SubscribeFilter {
                        filter: "golden/+/b".into(),
                        options: sub_options,
                    },
                ],
            }
            .into(),
            Canonical,
        ),
        case(MOSQ_SUB, "puback", v, MqttPacket::PubAck(ack(1)), Canonical),
        case(MOSQ_SUB, "pubrec", v, MqttPacket::PubRec(ack(2)), Canonical),
        case(
            MOSQ_SUB,
            "pubcomp",
            v,
            MqttPacket::PubComp(ack(2)),
            Canonical,
        ),
        case(
            MOSQ_SUB,
            "unsubscribe",
            v,
            Unsubscribe {
                packet_id: 2,
                properties: tool,
                filters: vec!["golden/old/#".into()],
            }
            .into(),
            Canonical,
        ),
        case(
            MOSQ_SUB,
            "disconnect",
            v,
            Disconnect::default().into(),
            Canonical,
        ),
    ]
}

fn broker_cases(v: MqttVersion) -> Vec<Case> {
    use Form::{Canonical, PropertiesReordered};
    let reordered_in_v5 = if v == V5 {
        PropertiesReordered
    } else {
        Canonical
    };
    let connack = ConnAck {
        session_present: false,
        code: reason::SUCCESS,
        properties: only_v5(
            v,
            Properties {
                receive_maximum: Some(20),
                topic_alias_maximum: Some(10),
                ..Properties::default()
            },
        ),
    };
    // What the broker forwards of the publisher's properties, plus the
    // subscription identifier of the matching subscription.
    let forwarded = only_v5(
        v,
        Properties {
            message_expiry_interval: Some(3600),
            content_type: Some("text/plain".into()),
            response_topic: Some("golden/reply".into()),
            correlation_data: Some(Bytes::from_static(b"\x01\x02\x03")),
            subscription_identifiers: vec![42],
            user_properties: user(&[("a", "1"), ("b", "2"), ("a", "3")]),
            ..Properties::default()
        },
    );
    let mut cases = vec![
        case(BROKER, "connack", v, connack.into(), reordered_in_v5),
        case(
            BROKER,
            "suback",
            v,
            SubAck {
                packet_id: 1,
                properties: Properties::default(),
                codes: vec![reason::GRANTED_QOS_2, reason::GRANTED_QOS_1],
            }
            .into(),
            Canonical,
        ),
        case(
            BROKER,
            "publish-qos0",
            v,
            publish(
                QoS::AtMostOnce,
                false,
                "golden/t",
                0,
                b"broker qos0",
                forwarded.clone(),
            ),
            reordered_in_v5,
        ),
        case(
            BROKER,
            "publish-qos1",
            v,
            publish(
                QoS::AtLeastOnce,
                false,
                "golden/t",
                1,
                b"broker qos1",
                forwarded.clone(),
            ),
            reordered_in_v5,
        ),
        case(
            BROKER,
            "publish-qos2",
            v,
            publish(
                QoS::ExactlyOnce,
                false,
                "golden/t",
                2,
                b"broker qos2",
                forwarded,
            ),
            reordered_in_v5,
        ),
        case(
            BROKER,
            "publish-qos1-retain",
            v,
            publish(
                QoS::AtLeastOnce,
                true,
                "golden/r/x",
                4,
                b"retained",
                Properties::default(),
            ),
            Canonical,
        ),
        case(BROKER, "puback", v, MqttPacket::PubAck(ack(2)), Canonical),
        case(BROKER, "pubrec", v, MqttPacket::PubRec(ack(3)), Canonical),
        case(BROKER, "pubcomp", v, MqttPacket::PubComp(ack(3)), Canonical),
        case(BROKER, "pubrel", v, MqttPacket::PubRel(ack(2)), Canonical),
        case(
            BROKER,
            "unsuback",
            v,
            UnsubAck {
                packet_id: 2,
                properties: Properties::default(),
                reason_codes: if v == V5 {
                    vec![reason::SUCCESS]
                } else {
                    vec![]
                },
            }
            .into(),
            Canonical,
        ),
        case(BROKER, "pingresp", v, MqttPacket::PingResp, Canonical),
    ];
    if v == V5 {
        cases.push(case(
            BROKER,
            "connack-max-packet-size",
            v,
            ConnAck {
                session_present: false,
                code: reason::SUCCESS,
                properties: Properties {
                    receive_maximum: Some(20),
                    topic_alias_maximum: Some(10),
                    maximum_packet_size: Some(100),
                    ..Properties::default()
                },
            }
            .into(),
            PropertiesReordered,
        ));
        cases.push(case(
            BROKER,
            "disconnect-packet-too-large",
            v,
            Disconnect {
                reason_code: reason::PACKET_TOO_LARGE,
                properties: Properties::default(),
            }
            .into(),
            Canonical,
        ));
    }
    cases
}

fn all_cases() -> Vec<Case> {
    MqttVersion::ALL
        .into_iter()
        .flat_map(|v| {
            let mut cases = paho_cases(v);
            cases.extend(mosquitto_client_cases(v));
            cases.extend(broker_cases(v));
            cases
        })
        .collect()
}

/// Decodes the single packet in `bytes`, asserting every byte is consumed.
fn decode_one(bytes: &[u8], v: MqttVersion, name: &str) -> MqttPacket {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, v, &MqttLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: incomplete"));
    assert!(buf.is_empty(), "{name}: {} bytes left over", buf.len());
    packet
}

fn encode(packet: &MqttPacket, v: MqttVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.encode(v, &mut out).unwrap();
    out.to_vec()
}

#[test]
fn every_golden_file_decodes_to_the_packet_that_was_sent() {
    let mut failures = Vec::new();
    for c in all_cases() {
        let bytes = read(&c.file);
        let packet = decode_one(&bytes, c.version, &c.file);
        if packet != c.packet {
            failures.push(format!(
                "{}:\n  got      {packet:?}\n  expected {:?}",
                c.file, c.packet
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn canonical_golden_files_re_encode_byte_for_byte() {
    let mut canonical = 0;
    for c in all_cases() {
        let bytes = read(&c.file);
        let again = encode(&c.packet, c.version);
        match c.form {
            Form::Canonical => {
                canonical += 1;
                assert_eq!(again, bytes, "{}: re-encoding differs", c.file);
            }
            Form::PropertiesReordered => {
                assert_ne!(again, bytes, "{}: is canonical after all", c.file);
                assert_eq!(again.len(), bytes.len(), "{}", c.file);
                let mut sorted_again = again.clone();
                let mut sorted = bytes.clone();
                sorted_again.sort_unstable();
                sorted.sort_unstable();
                assert_eq!(sorted_again, sorted, "{}: not a reordering", c.file);
                assert_eq!(
                    decode_one(&again, c.version, &c.file),
                    c.packet,
                    "{}",
                    c.file
                );
            }
        }
    }
    assert!(canonical >= 90, "only {canonical} canonical files");
}

#[test]
fn every_capture_has_a_case() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    let covered: BTreeSet<String> = all_cases().into_iter().map(|c| c.file).collect();
    assert_eq!(on_disk, covered);
}

#[test]
fn golden_files_are_incomplete_at_every_truncation_point() {
    for c in all_cases() {
        let bytes = read(&c.file);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(
                decode(&mut buf, c.version, &MqttLimits::default()),
                Ok(None),
                "{} cut at {cut}",
                c.file
            );
            assert_eq!(buf.len(), cut, "{}: Ok(None) consumed bytes", c.file);
        }
    }
}

/// A whole client session through the codec: the server-side codec learns
/// the version from CONNECT and then decodes every packet, fed in 3-byte reads.
#[test]
fn codec_decodes_a_paho_session_byte_by_byte() {
    for v in MqttVersion::ALL {
        let cases = paho_cases(v);
        let mut stream = Vec::new();
        for c in &cases {
            stream.extend(read(&c.file));
        }
        let mut codec = MqttCodec::new(MqttLimits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(3) {
            buf.extend_from_slice(piece);
            while let Some(packet) = codec.decode(&mut buf).unwrap() {
                got.push(packet);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(codec.version(), Some(v));
        let expected: Vec<MqttPacket> = cases.into_iter().map(|c| c.packet).collect();
        assert_eq!(got, expected, "MQTT {v}");
    }
}

/// The captured client packets fail cleanly under the wrong version where the
/// wire format differs, instead of decoding to something else.
#[test]
fn v5_packets_with_properties_do_not_decode_as_3_1_1() {
    for name in [
        "paho-2.2.0_subscribe_v5.bin",
        "paho-2.2.0_unsubscribe_v5.bin",
    ] {
        let bytes = read(name);
        let mut buf = BytesMut::from(&bytes[..]);
        let result = decode(&mut buf, V3_1_1, &MqttLimits::default());
        assert!(result.is_err(), "{name}: {result:?}");
    }
    // A 5.0 DISCONNECT with a reason code is malformed in 3.1.1.
    let bytes = read("paho-2.2.0_disconnect_v5.bin");
    let err = decode(
        &mut BytesMut::from(&bytes[..]),
        V3_1_1,
        &MqttLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), reason::MALFORMED_PACKET);
}

#[test]
fn payload_format_indicator_of_captured_publishes_holds() {
    for c in all_cases() {
        if let MqttPacket::Publish(p) = &c.packet {
            assert_eq!(p.check_payload_format(), Ok(()), "{}", c.file);
        }
        if let MqttPacket::Connect(connect) = &c.packet {
            if let Some(will) = &connect.will {
                assert_eq!(will.check_payload_format(), Ok(()), "{}", c.file);
            }
        }
    }
}
