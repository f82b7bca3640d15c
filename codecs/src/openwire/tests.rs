//! Unit tests: framing limits, truncation at every byte, modified UTF-8,
//! nesting bounds, version-dependent fields, negotiation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

const TEXT_MESSAGE: &[u8] =
    include_bytes!("../../testdata/openwire/activemq-client-5.17.2_v12_text-message.bin");
const CONSUMER_INFO: &[u8] =
    include_bytes!("../../testdata/openwire/activemq-client-5.17.2_v12_consumer-info.bin");

fn format(version: u32) -> WireFormat {
    WireFormat {
        version,
        ..WireFormat::default()
    }
}

#[test]
fn every_truncated_frame_is_incomplete_and_consumes_nothing() {
    for golden in [TEXT_MESSAGE, CONSUMER_INFO] {
        for cut in 0..golden.len() {
            let mut buf = BytesMut::from(&golden[..cut]);
            assert_eq!(
                decode_frame(&mut buf, &format(12)),
                Ok(None),
                "cut at {cut}"
            );
            assert_eq!(buf.len(), cut);
        }
    }
}

#[test]
fn every_truncated_command_is_a_truncation_error() {
    for golden in [TEXT_MESSAGE, CONSUMER_INFO] {
        let body = &golden[4..];
        for cut in 1..body.len() {
            let err =
                decode_command(Bytes::copy_from_slice(&body[..cut]), &format(12)).unwrap_err();
            assert!(
                matches!(err, OpenWireDecodeError::Truncated { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn size_prefix_is_checked_before_the_body_arrives() {
    let limits = OpenWireLimits {
        max_frame_size: 100,
        max_depth: 8,
    };
    let f = WireFormat {
        limits,
        ..WireFormat::default()
    };
    let mut buf = BytesMut::from(&101i32.to_be_bytes()[..]);
    assert_eq!(
        decode_frame(&mut buf, &f),
        Err(OpenWireDecodeError::FrameTooLarge {
            size: 101,
            max: 100
        })
    );
    for size in [0i32, -1, i32::MIN] {
        let mut buf = BytesMut::from(&size.to_be_bytes()[..]);
        assert_eq!(
            decode_frame(&mut buf, &f),
            Err(OpenWireDecodeError::BadFrameSize { size })
        );
    }
    // The codec reports it with only the prefix buffered, too.
    let mut codec = OpenWireCodec::new(f);
    let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
    assert!(tokio_util::codec::Decoder::decode(&mut codec, &mut buf).is_err());
}

#[test]
fn trailing_bytes_and_unknown_types_are_errors() {
    let mut body = TEXT_MESSAGE[4..].to_vec();
    body.push(0);
    assert!(matches!(
        decode_command(Bytes::from(body), &format(12)),
        Err(OpenWireDecodeError::TrailingBytes { count: 1, .. })
    ));
    assert!(matches!(
        decode_command(Bytes::from_static(&[13]), &format(12)),
        Err(OpenWireDecodeError::UnknownDataType { data_type: 13, .. })
    ));
    // MessagePull does not exist in version 1.
    let pull = Command::MessagePull(MessagePull::default());
    let bytes = pull.to_bytes(&format(12)).unwrap();
    assert!(matches!(
        decode_command(bytes.slice(4..), &format(1)),
        Err(OpenWireDecodeError::UnknownDataType { data_type: 20, .. })
    ));
}

#[test]
fn a_wrong_nested_type_is_reported_with_its_field() {
    // SessionInfo whose session id is a ConnectionId.
    let mut b = BytesMut::new();
    b.put_u8(data_type::SESSION_INFO);
    b.put_i32(1);
    b.put_u8(0);
    b.put_u8(1);
    b.put_u8(data_type::CONNECTION_ID);
    b.put_u8(0);
    let err = decode_command(b.freeze(), &format(12)).unwrap_err();
    assert!(
        matches!(
            err,
            OpenWireDecodeError::UnexpectedDataType {
                field: "SessionInfo.sessionId",
                data_type: 120,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_lengths_are_errors() {
    // ControlCommand with a byte sequence field is not available; use a
    // BrokerInfo whose peer array count is negative.
    let mut b = BytesMut::new();
    b.put_u8(data_type::BROKER_INFO);
    b.put_i32(1);
    b.put_u8(0);
    b.put_u8(0); // broker id null
    b.put_u8(0); // url null
    b.put_u8(1); // peers present
    b.put_i16(-1);
    let err = decode_command(b.freeze(), &format(12)).unwrap_err();
    assert!(
        matches!(err, OpenWireDecodeError::NegativeLength { length: -1, .. }),
        "{err:?}"
    );
}

#[test]
fn modified_utf8_round_trips_nul_and_supplementary_characters() {
    let s = "a\u{0}\u{e9}\u{4e2d}\u{1f600}";
    let mut b = BytesMut::new();
    encode_modified_utf8(s, &mut b);
    assert_eq!(
        &b[..],
        &[b'a', 0xc0, 0x80, 0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]
    );
    assert_eq!(modified_utf8_len(s), b.len());
    assert_eq!(decode_modified_utf8(&b).as_deref(), Some(s));
    // Standard 4-byte UTF-8 is not modified UTF-8 (Java rejects it too).
    assert_eq!(decode_modified_utf8("\u{1f600}".as_bytes()), None);
    // Truncated sequences.
    assert_eq!(decode_modified_utf8(&[0xe4, 0xb8]), None);
    assert_eq!(decode_modified_utf8(&[0xc3]), None);
}

#[test]
fn nested_maps_deeper_than_the_limit_are_refused() {
    let mut inner = PrimitiveMap::new();
    inner.insert("x", PrimitiveValue::Int(1));
    for _ in 0..10 {
        let mut outer = PrimitiveMap::new();
        outer.insert("m", PrimitiveValue::Map(inner));
        inner = outer;
    }
    let bytes = inner.to_bytes().unwrap();
    assert_eq!(PrimitiveMap::decode(&bytes, 16).unwrap(), Some(inner));
    assert!(matches!(
        PrimitiveMap::decode(&bytes, 4),
        Err(OpenWireDecodeError::TooDeep { max: 4, .. })
    ));
}

#[test]
fn a_map_count_larger_than_the_bytes_is_refused_before_allocating() {
    let mut b = BytesMut::new();
    b.put_i32(i32::MAX);
    assert!(matches!(
        PrimitiveMap::decode(&b.freeze(), 8),
        Err(OpenWireDecodeError::Truncated { .. })
    ));
}

#[test]
fn fields_follow_the_negotiated_version() {
    let info = ConsumerInfo {
        header: CommandHeader {
            command_id: 3,
            response_required: true,
        },
        consumer_id: Some(ConsumerId {
            connection_id: Some("ID:c".into()),
            session_id: 1,
            value: 2,
        }),
        destination: Some(Destination::queue("q")),
        prefetch_size: 1000,
        client_id: Some("client".into()),
        ..ConsumerInfo::default()
    };
    let cmd = Command::ConsumerInfo(info.clone());
    let v10 = cmd.to_bytes(&format(10)).unwrap();
    let v9 = cmd.to_bytes(&format(9)).unwrap();
    // v10 adds the client id string (flag, u16 length, 6 bytes).
    assert_eq!(v10.len(), v9.len() + 9);
    let back9 = decode_command(v9.slice(4..), &format(9)).unwrap();
    assert_eq!(
        back9,
        Command::ConsumerInfo(ConsumerInfo {
            client_id: None,
            ..info.clone()
        })
    );
    assert_eq!(decode_command(v10.slice(4..), &format(10)).unwrap(), cmd);
}

#[test]
fn throwables_carry_stack_traces_only_when_negotiated() {
    let mut ex = JavaThrowable::new("javax.jms.InvalidSelectorException", "bad selector");
    ex.stack_trace.push(StackTraceElement {
        class_name: Some("Broker".into()),
        method_name: Some("addConsumer".into()),
        file_name: None,
        line_number: 7,
    });
    ex.cause = Some(Box::new(JavaThrowable::new("java.lang.Exception", "why")));
    let cmd = Command::ExceptionResponse(ExceptionResponse {
        header: CommandHeader::default(),
        correlation_id: 5,
        exception: Some(ex.clone()),
    });
    let with = WireFormat {
        stack_trace_enabled: true,
        ..format(12)
    };
    let bytes = cmd.to_bytes(&with).unwrap();
    assert_eq!(decode_command(bytes.slice(4..), &with).unwrap(), cmd);
    let without = cmd.to_bytes(&format(12)).unwrap();
    let Command::ExceptionResponse(back) = decode_command(without.slice(4..), &format(12)).unwrap()
    else {
        panic!()
    };
    let back = back.exception.unwrap();
    assert_eq!(back.class_name, ex.class_name);
    assert_eq!(back.message, ex.message);
    assert!(back.stack_trace.is_empty() && back.cause.is_none());
}

#[test]
fn negotiation_takes_the_lower_version_and_the_and_of_flags() {
    let server = WireFormatOptions::loose_server(30_000, 1 << 20);
    let mut client = server.clone();
    client.version = 6;
    client.tight_encoding_enabled = true;
    client.cache_enabled = true;
    client.stack_trace_enabled = true;
    client.max_inactivity_duration = 10_000;
    client.max_frame_size = i64::MAX;
    let agreed = server.negotiate(&client);
    assert_eq!(agreed.version, 6);
    assert!(!agreed.tight_encoding_enabled && !agreed.cache_enabled && !agreed.stack_trace_enabled);
    assert_eq!(agreed.max_inactivity_duration, 10_000);
    assert_eq!(agreed.max_frame_size, 1 << 20);
    client.max_inactivity_duration = 0;
    assert_eq!(server.negotiate(&client).max_inactivity_duration, 0);

    // The offer round-trips through a WireFormatInfo.
    let info = server.to_info().unwrap();
    assert!(info.is_valid());
    assert_eq!(
        WireFormatOptions::from_info(&info, &OpenWireLimits::default()).unwrap(),
        server
    );
}

#[test]
fn text_bodies_round_trip_and_null_text_is_minus_one() {
    let mut b = BytesMut::new();
    encode_text_body(Some("h\u{1f600}"), &mut b).unwrap();
    assert_eq!(decode_text_body(&b).unwrap().as_deref(), Some("h\u{1f600}"));
    let mut n = BytesMut::new();
    encode_text_body(None, &mut n).unwrap();
    assert_eq!(&n[..], &(-1i32).to_be_bytes());
    assert_eq!(decode_text_body(&n).unwrap(), None);
    assert!(decode_text_body(&[0, 0, 0, 5, b'a']).is_err());
}

#[test]
fn strings_longer_than_writeutf_allows_are_refused_on_encode() {
    let long = "x".repeat(70_000);
    let cmd = Command::ControlCommand(ControlCommand {
        header: CommandHeader::default(),
        command: Some(long),
    });
    let mut dst = BytesMut::from(&b"keep"[..]);
    assert_eq!(
        cmd.encode(&mut dst, &format(12)),
        Err(OpenWireEncodeError::StringTooLong { len: 70_000 })
    );
    assert_eq!(
        &dst[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );
    // Long property strings become big strings instead.
    let mut map = PrimitiveMap::new();
    map.insert("big", PrimitiveValue::String("y".repeat(70_000)));
    let bytes = map.to_bytes().unwrap();
    assert_eq!(PrimitiveMap::decode(&bytes, 4).unwrap(), Some(map));
}

#[test]
fn map_strings_accept_standard_utf8_and_can_be_written_as_utf8() {
    let mut map = PrimitiveMap::new();
    map.insert(
        "k\u{1f600}",
        PrimitiveValue::String("v\u{0}\u{1f600}".into()),
    );
    let utf8 = map.to_bytes_utf8().unwrap();
    let java = map.to_bytes().unwrap();
    assert_ne!(utf8, java);
    // Standard UTF-8: 4-byte sequences and a bare NUL.
    assert!(utf8.windows(4).any(|w| w == "\u{1f600}".as_bytes()));
    assert_eq!(PrimitiveMap::decode(&utf8, 4).unwrap(), Some(map.clone()));
    assert_eq!(PrimitiveMap::decode(&java, 4).unwrap(), Some(map));
}

#[test]
fn modified_utf8_fast_paths_agree_with_the_code_unit_loop() {
    use super::wire::decode_modified_utf8_units;
    // Every 1- and 2-byte input, and the 3- and 4-byte ones built from lead and continuation
    // bytes (and a few others): the fast path must decode exactly what the loop decodes.
    let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|a| vec![a]).collect();
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            inputs.push(vec![a, b]);
        }
    }
    let tails = [0x00u8, 0x41, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
    for a in 0xc0..=0xffu8 {
        for b in 0x7f..=0xc0u8 {
            for c in tails {
                inputs.push(vec![a, b, c]);
                inputs.push(vec![a, b, c, 0x80]);
                inputs.push(vec![b'x', a, b, c]);
            }
        }
    }
    for bytes in &inputs {
        assert_eq!(
            decode_modified_utf8(bytes),
            decode_modified_utf8_units(bytes),
            "{bytes:02x?}"
        );
    }
    // Encoding: the UTF-8 shortcut only where it is the same bytes as through UTF-16.
    for s in [
        "",
        "queue.orders",
        "ID:host-1:2:3:4",
        "caf\u{e9}",
        "\u{4e2d}\u{6587}",
        "a\0b",
        "\u{1f600}",
        "x\u{7ff}\u{800}\u{ffff}",
    ] {
        let mut want = BytesMut::new();
        for u in s.encode_utf16() {
            match u {
                1..=0x7f => want.put_u8(u as u8),
                0 | 0x80..=0x7ff => {
                    want.put_u8(0xc0 | ((u >> 6) & 0x1f) as u8);
                    want.put_u8(0x80 | (u & 0x3f) as u8);
                }
                _ => {
                    want.put_u8(0xe0 | ((u >> 12) & 0x0f) as u8);
                    want.put_u8(0x80 | ((u >> 6) & 0x3f) as u8);
                    want.put_u8(0x80 | (u & 0x3f) as u8);
                }
            }
        }
        let mut got = BytesMut::new();
        encode_modified_utf8(s, &mut got);
        assert_eq!(got, want, "{s:?}");
        assert_eq!(modified_utf8_len(s), want.len(), "{s:?}");
        assert_eq!(decode_modified_utf8(&got).as_deref(), Some(s), "{s:?}");
    }
}
