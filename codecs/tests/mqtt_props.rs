//! Property tests for the MQTT codec: arbitrary valid packets round-trip
//! under every version (and every proper prefix is "need more bytes");
//! arbitrary and mutated bytes never panic, and whatever they decode to
//! re-encodes and decodes back equal; the tokio codec fed in chunks agrees
//! with the one-shot decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use codecs::mqtt::{
    decode, Auth, ConnAck, Connect, Disconnect, MqttCodec, MqttDecodeError, MqttLimits, MqttPacket,
    MqttVersion, Properties, PubResponse, Publish, QoS, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;
use tokio_util::codec::Decoder;

const MAX_VAR_INT: u32 = 268_435_455;

fn version() -> impl Strategy<Value = MqttVersion> {
    select(MqttVersion::ALL.to_vec())
}

fn qos() -> impl Strategy<Value = QoS> {
    select(QoS::ALL.to_vec())
}

/// Whether the codec accepts `c` in a string.
fn allowed(c: char) -> bool {
    let cp = u32::from(c);
    !(cp <= 0x1F
        || (0x7F..=0x9F).contains(&cp)
        || (0xFDD0..=0xFDEF).contains(&cp)
        || (cp & 0xFFFE) == 0xFFFE)
}

/// Short strings the codec accepts, rich in MQTT's special characters.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => select(vec!['a', 'z', '0', '/', ' ', '-', '$']),
        1 => Just('+'),
        1 => Just('#'),
        1 => Just('\u{e9}'),
        1 => Just('\u{2603}'),
        1 => Just('\u{1F600}'),
        1 => any::<char>().prop_filter("allowed", |c| allowed(*c)),
    ];
    prop::collection::vec(ch, 0..10).prop_map(|v| v.into_iter().collect())
}

fn topic_name() -> impl Strategy<Value = String> {
    text().prop_map(|mut t| {
        t.retain(|c| c != '+' && c != '#');
        if t.is_empty() {
            t.push('t');
        }
        t
    })
}

fn topic_filter() -> impl Strategy<Value = String> {
    text().prop_map(|t| if t.is_empty() { "#".into() } else { t })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn users() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((text(), text()), 0..3)
}

fn non_zero_u16() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn sub_id() -> impl Strategy<Value = u32> {
    prop_oneof![1..=200u32, 1..=MAX_VAR_INT]
}

fn publish_props() -> impl Strategy<Value = Properties> {
    (
        (of(any::<bool>()), of(any::<u32>()), of(text()), of(text())),
        (of(bytes(8)), prop::collection::vec(sub_id(), 0..3)),
        (of(non_zero_u16()), users()),
    )
        .prop_map(
            |((pfi, mei, ct, rt), (cd, ids), (alias, user))| Properties {
                payload_format_indicator: pfi,
                message_expiry_interval: mei,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                subscription_identifiers: ids,
                topic_alias: alias,
                user_properties: user,
                ..Properties::default()
            },
        )
}

fn will_props() -> impl Strategy<Value = Properties> {
    (
        (of(any::<bool>()), of(any::<u32>()), of(text()), of(text())),
        (of(bytes(8)), of(any::<u32>()), users()),
    )
        .prop_map(|((pfi, mei, ct, rt), (cd, delay, user))| Properties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            will_delay_interval: delay,
            user_properties: user,
            ..Properties::default()
        })
}

/// Authentication method, and data only alongside a method.
fn auth() -> impl Strategy<Value = (Option<String>, Option<Bytes>)> {
    of((text(), of(bytes(8)))).prop_map(|a| match a {
        Some((m, d)) => (Some(m), d),
        None => (None, None),
    })
}

fn connect_props() -> impl Strategy<Value = Properties> {
    (
        (
            of(any::<u32>()),
            auth(),
            of(any::<bool>()),
            of(any::<bool>()),
        ),
        (
            of(non_zero_u16()),
            of(any::<u16>()),
            users(),
            of(1..=u32::MAX),
        ),
    )
        .prop_map(
            |((sei, (am, ad), rpi, rri), (rm, tam, user, mps))| Properties {
                session_expiry_interval: sei,
                authentication_method: am,
                authentication_data: ad,
                request_problem_information: rpi,
                request_response_information: rri,
                receive_maximum: rm,
                topic_alias_maximum: tam,
                user_properties: user,
                maximum_packet_size: mps,
                ..Properties::default()
            },
        )
}

fn connack_props() -> impl Strategy<Value = Properties> {
    (
        (of(any::<u32>()), of(text()), of(any::<u16>()), auth()),
        (of(text()), of(text()), of(text()), of(non_zero_u16())),
        (
            of(any::<u16>()),
            of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
            of(any::<bool>()),
            users(),
        ),
        (
            of(1..=u32::MAX),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
        ),
    )
        .prop_map(
            |(
                (sei, aci, ska, (am, ad)),
                (ri, sr, rs, rm),
                (tam, mq, ra, user),
                (mps, w, s, sh),
            )| {
                Properties {
                    session_expiry_interval: sei,
                    assigned_client_identifier: aci,
                    server_keep_alive: ska,
                    authentication_method: am,
                    authentication_data: ad,
                    response_information: ri,
                    server_reference: sr,
                    reason_string: rs,
                    receive_maximum: rm,
                    topic_alias_maximum: tam,
                    maximum_qos: mq,
                    retain_available: ra,
                    user_properties: user,
                    maximum_packet_size: mps,
                    wildcard_subscription_available: w,
                    subscription_identifier_available: s,
                    shared_subscription_available: sh,
                    ..Properties::default()
                }
            },
        )
}

fn reason_props() -> impl Strategy<Value = Properties> {
    (of(text()), users()).prop_map(|(rs, user)| Properties {
        reason_string: rs,
        user_properties: user,
        ..Properties::default()
    })
}

fn disconnect_props() -> impl Strategy<Value = Properties> {
    (of(any::<u32>()), of(text()), reason_props()).prop_map(|(sei, sr, p)| Properties {
        session_expiry_interval: sei,
        server_reference: sr,
        ..p
    })
}

fn auth_props() -> impl Strategy<Value = Properties> {
    (auth(), reason_props()).prop_map(|((am, ad), p)| Properties {
        authentication_method: am,
        authentication_data: ad,
        ..p
    })
}

/// `props` under 5.0, nothing before.
fn v5_only(v: MqttVersion, props: Properties) -> Properties {
    if v == MqttVersion::V5 {
        props
    } else {
        Properties::default()
    }
}

fn connect(v: MqttVersion) -> impl Strategy<Value = MqttPacket> {
    let will = (topic_name(), bytes(16), qos(), any::<bool>(), will_props()).prop_map(
        move |(topic, payload, qos, retain, props)| Will {
            topic,
            payload,
            qos,
            retain,
            properties: v5_only(v, props),
        },
    );
    (
        (any::<bool>(), any::<u16>(), connect_props(), text()),
        (of(will), of(text()), of(bytes(8))),
    )
        .prop_map(move |((clean, ka, props, id), (will, user, mut pw))| {
            if v != MqttVersion::V5 && user.is_none() {
                pw = None;
            }
            MqttPacket::from(Connect {
                protocol: v,
                clean_session: clean,
                keep_alive: ka,
                properties: v5_only(v, props),
                client_id: id,
                will,
                username: user,
                password: pw,
            })
        })
}

fn packet(v: MqttVersion) -> BoxedStrategy<MqttPacket> {
    let v5 = v == MqttVersion::V5;
    let code = move || {
        if v5 {
            any::<u8>().boxed()
        } else {
            Just(0u8).boxed()
        }
    };
    let pub_response = (non_zero_u16(), code(), reason_props())
        .prop_map(move |(id, rc, p)| PubResponse {
            packet_id: id,
            reason_code: rc,
            properties: v5_only(v, p),
        })
        .boxed();
    let connack = (any::<bool>(), any::<u8>(), connack_props()).prop_map(move |(sp, rc, p)| {
        MqttPacket::from(ConnAck {
            session_present: sp && v != MqttVersion::V3_1,
            code: rc,
            properties: v5_only(v, p),
        })
    });
    let publish = (
        (qos(), any::<bool>(), any::<bool>(), non_zero_u16()),
        (topic_name(), any::<bool>(), publish_props(), bytes(32)),
    )
        .prop_map(
            move |((qos, dup, retain, id), (topic, empty, props, payload))| {
                let props = v5_only(v, props);
                // 5.0 may send an empty topic name with a topic alias.
                let topic = if empty && props.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                let at_most_once = qos == QoS::AtMostOnce;
                MqttPacket::from(Publish {
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: if at_most_once { 0 } else { id },
                    properties: props,
                    payload,
                })
            },
        );
    let options =
        (qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(move |(q, nl, rap, rh)| {
            let rh = match rh {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendAtSubscribeIfNew,
                _ => RetainHandling::DoNotSend,
            };
            if v5 {
                SubscriptionOptions {
                    qos: q,
                    no_local: nl,
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions {
                    qos: q,
                    ..SubscriptionOptions::default()
                }
            }
        });
    let filter = (topic_filter(), any::<bool>(), options).prop_map(|(f, shared, mut o)| {
        let filter = if shared { format!("$share/g/{f}") } else { f };
        if filter.starts_with("$share/") {
            o.no_local = false;
        }
        SubscribeFilter { filter, options: o }
    });
    let sub_props = (of(sub_id()), users()).prop_map(|(id, user)| Properties {
        subscription_identifiers: id.into_iter().collect(),
        user_properties: user,
        ..Properties::default()
    });
    let subscribe = (
        non_zero_u16(),
        sub_props,
        prop::collection::vec(filter, 1..4),
    )
        .prop_map(move |(id, p, filters)| {
            MqttPacket::from(Subscribe {
                packet_id: id,
                properties: v5_only(v, p),
                filters,
            })
        });
    let suback = (
        non_zero_u16(),
        reason_props(),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(move |(id, p, codes)| {
            MqttPacket::from(SubAck {
                packet_id: id,
                properties: v5_only(v, p),
                codes,
            })
        });
    let unsubscribe = (
        non_zero_u16(),
        users(),
        prop::collection::vec(topic_filter(), 1..4),
    )
        .prop_map(move |(id, user, filters)| {
            MqttPacket::from(Unsubscribe {
                packet_id: id,
                properties: v5_only(
                    v,
                    Properties {
                        user_properties: user,
                        ..Properties::default()
                    },
                ),
                filters,
            })
        });
    let unsuback = (
        non_zero_u16(),
        reason_props(),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(move |(id, p, codes)| {
            MqttPacket::from(UnsubAck {
                packet_id: id,
                properties: v5_only(v, p),
                reason_codes: if v5 { codes } else { Vec::new() },
            })
        });
    let disconnect = (code(), disconnect_props()).prop_map(move |(rc, p)| {
        MqttPacket::from(Disconnect {
            reason_code: rc,
            properties: v5_only(v, p),
        })
    });
    let mut choices = vec![
        connect(v).boxed(),
        connack.boxed(),
        publish.boxed(),
        pub_response.clone().prop_map(MqttPacket::PubAck).boxed(),
        pub_response.clone().prop_map(MqttPacket::PubRec).boxed(),
        pub_response.clone().prop_map(MqttPacket::PubRel).boxed(),
        pub_response.prop_map(MqttPacket::PubComp).boxed(),
        subscribe.boxed(),
        suback.boxed(),
        unsubscribe.boxed(),
        unsuback.boxed(),
        Just(MqttPacket::PingReq).boxed(),
        Just(MqttPacket::PingResp).boxed(),
        disconnect.boxed(),
    ];
    if v5 {
        let auth = (any::<u8>(), auth_props()).prop_map(|(rc, p)| {
            MqttPacket::from(Auth {
                reason_code: rc,
                properties: p,
            })
        });
        choices.push(auth.boxed());
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn versioned_packet() -> impl Strategy<Value = (MqttVersion, MqttPacket)> {
    version().prop_flat_map(|v| packet(v).prop_map(move |p| (v, p)))
}

fn encode(packet: &MqttPacket, v: MqttVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .encode(v, &mut out)
        .unwrap_or_else(|e| panic!("{packet:?}: {e}"));
    out.to_vec()
}

/// Decodes `data` until it ends or fails, checking the consumption contract.
fn decode_all(
    data: &[u8],
    v: MqttVersion,
    limits: &MqttLimits,
) -> (Vec<MqttPacket>, Option<MqttDecodeError>) {
    let mut buf = BytesMut::from(data);
    let mut packets = Vec::new();
    loop {
        let before = buf.len();
        match decode(&mut buf, v, limits) {
            Ok(Some(p)) => {
                assert!(buf.len() < before, "a packet must consume bytes");
                packets.push(p);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                return (packets, None);
            }
            Err(e) => return (packets, Some(e)),
        }
    }
}

/// Whatever decodes re-encodes, and decodes back to itself. (CONNECT is
/// re-decoded under its own version, which is what decode does anyway.)
fn check_stable(packets: &[MqttPacket], v: MqttVersion) {
    for p in packets {
        let wire = encode(p, v);
        let (again, err) = decode_all(&wire, v, &MqttLimits::default());
        assert_eq!(err, None);
        assert_eq!(again, vec![p.clone()]);
    }
}

const SMALL: MqttLimits = MqttLimits {
    max_packet_size: 64,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packets_round_trip((v, p) in versioned_packet()) {
        let wire = encode(&p, v);
        let mut buf = BytesMut::from(&wire[..]);
        prop_assert_eq!(decode(&mut buf, v, &MqttLimits::default()), Ok(Some(p.clone())));
        prop_assert!(buf.is_empty());
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            prop_assert_eq!(decode(&mut buf, v, &MqttLimits::default()), Ok(None));
            prop_assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn size_limit_is_exact((v, p) in versioned_packet()) {
        let wire = encode(&p, v);
        let exact = MqttLimits { max_packet_size: wire.len() };
        let mut buf = BytesMut::from(&wire[..]);
        prop_assert_eq!(decode(&mut buf, v, &exact), Ok(Some(p)));
        let under = MqttLimits { max_packet_size: wire.len() - 1 };
        // Rejected as soon as the fixed header is there.
        let header_len = 1 + wire[1..].iter().take_while(|b| *b & 0x80 != 0).count() + 1;
        let mut buf = BytesMut::from(&wire[..header_len]);
        let is_too_large = matches!(
            decode(&mut buf, v, &under),
            Err(MqttDecodeError::PacketTooLarge { .. })
        );
        prop_assert!(is_too_large);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..256),
        v in version(),
    ) {
        for limits in [SMALL, MqttLimits::default()] {
            let (packets, _) = decode_all(&data, v, &limits);
            check_stable(&packets, v);
        }
    }

    #[test]
    fn mutated_packets_never_panic(
        (v, p) in versioned_packet(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = encode(&p, v);
        for (at, byte) in edits {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        let keep = cut.index(wire.len() + 1);
        for data in [&wire[..], &wire[..keep]] {
            for v in MqttVersion::ALL {
                let (packets, _) = decode_all(data, v, &MqttLimits::default());
                check_stable(&packets, v);
            }
        }
    }

    #[test]
    fn chunked_codec_agrees_with_one_shot_decode(
        (v, packets) in version().prop_flat_map(|v| {
            prop::collection::vec(packet(v), 1..5).prop_map(move |ps| (v, ps))
        }),
        chunk in 1..20usize,
    ) {
        let mut wire = Vec::new();
        for p in &packets {
            wire.extend(encode(p, v));
        }
        let mut codec = MqttCodec::with_version(MqttLimits::default(), v);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(p) = codec.decode(&mut buf).unwrap() {
                got.push(p);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, packets);
    }
}
