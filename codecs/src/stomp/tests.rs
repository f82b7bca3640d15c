//! Unit tests for the STOMP codec. Property tests live in `tests/stomp_props.rs`,
//! golden bytes from real clients in `tests/stomp_golden.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::*;

const ALL: [StompVersion; 3] = StompVersion::ALL;

fn limits() -> StompLimits {
    StompLimits::default()
}

/// Decodes exactly one frame from `bytes`, asserting every byte is consumed.
fn decode_one(bytes: &[u8], version: StompVersion) -> Result<StompFrame, StompDecodeError> {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, version, &limits())? {
        Some(StompItem::Frame(frame)) => {
            assert!(buf.is_empty(), "{} bytes left over", buf.len());
            Ok(frame)
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn decode_err(bytes: &[u8], version: StompVersion, limits: &StompLimits) -> StompDecodeError {
    let mut buf = BytesMut::from(bytes);
    let before = buf.clone();
    loop {
        match decode(&mut buf, version, limits) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("expected an error, got Ok(None) with {before:?}"),
            Err(e) => return e,
        }
    }
}

fn encode(frame: &StompFrame, version: StompVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    frame.encode(version, &mut buf);
    buf
}

/// Every item in `bytes`, decoding until the buffer is empty.
fn decode_all(bytes: &[u8], version: StompVersion) -> Vec<StompItem> {
    let mut buf = BytesMut::from(bytes);
    let mut items = Vec::new();
    while let Some(item) = decode(&mut buf, version, &limits()).unwrap() {
        items.push(item);
    }
    assert!(buf.is_empty(), "undecoded tail {buf:?}");
    items
}

fn sample_frames() -> Vec<StompFrame> {
    vec![
        StompFrame::new(StompCommand::Connect)
            .with_header("accept-version", "1.0,1.1,1.2")
            .with_header("host", "localhost")
            .with_header("passcode", "p:w\\d"),
        StompFrame::new(StompCommand::Connected).with_header("version", "1.2"),
        StompFrame::new(StompCommand::Send)
            .with_header("destination", "/queue/a")
            .with_header("x-colon", "a:b")
            .with_header("x-backslash", "c\\d")
            .with_body("hello"),
        StompFrame::new(StompCommand::Message)
            .with_header("destination", "/topic/t")
            .with_header("content-length", "5")
            .with_header("foo", "first")
            .with_header("foo", "second")
            .with_body(Bytes::from_static(b"a\0b\0c")),
        StompFrame::new(StompCommand::Disconnect),
        StompFrame::new(StompCommand::Error)
            .with_header("message", "")
            .with_body("\n\n"),
    ]
}

// ----- names ----------------------------------------------------------------

#[test]
fn version_strings_round_trip_and_order() {
    for v in ALL {
        assert_eq!(StompVersion::parse(v.as_str()), Some(v));
    }
    assert_eq!(StompVersion::V1_2.as_str(), "1.2");
    assert_eq!(StompVersion::parse("1.3"), None);
    assert_eq!(StompVersion::parse(" 1.2"), None);
    assert!(StompVersion::V1_0 < StompVersion::V1_1 && StompVersion::V1_1 < StompVersion::V1_2);
}

#[test]
fn command_strings_round_trip_and_are_case_sensitive() {
    for c in StompCommand::ALL {
        assert_eq!(StompCommand::parse(c.as_str()), Some(c));
    }
    assert_eq!(StompCommand::Unsubscribe.as_str(), "UNSUBSCRIBE");
    assert_eq!(StompCommand::parse("send"), None);
    for v in ALL {
        assert_eq!(
            decode_err(b"send\n\n\0", v, &limits()),
            StompDecodeError::UnknownCommand {
                command: "send".into()
            }
        );
    }
}

#[test]
fn header_returns_first_occurrence() {
    let mut frame = StompFrame::new(StompCommand::Message)
        .with_header("foo", "World")
        .with_header("foo", "Hello");
    frame.push_header("bar", "1");
    assert_eq!(frame.header("foo"), Some("World"));
    assert_eq!(frame.header("bar"), Some("1"));
    assert_eq!(frame.header("Foo"), None);
    assert_eq!(frame.headers.len(), 3);
}

#[test]
fn repeated_headers_decode_in_order_and_first_wins() {
    let frame = decode_one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0", StompVersion::V1_2).unwrap();
    assert_eq!(
        frame.headers,
        vec![
            ("foo".to_string(), "World".to_string()),
            ("foo".to_string(), "Hello".to_string())
        ]
    );
    assert_eq!(frame.header("foo"), Some("World"));
}

// ----- framing --------------------------------------------------------------

#[test]
fn decodes_a_simple_frame_and_consumes_exactly_it() {
    let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\nhello\0SUBSCRIBE\n"[..]);
    let item = decode(&mut buf, StompVersion::V1_2, &limits()).unwrap();
    let expected = StompFrame::new(StompCommand::Send)
        .with_header("destination", "/queue/a")
        .with_body("hello");
    assert_eq!(item, Some(StompItem::Frame(expected)));
    assert_eq!(&buf[..], b"SUBSCRIBE\n");
    assert_eq!(decode(&mut buf, StompVersion::V1_2, &limits()), Ok(None));
    assert_eq!(&buf[..], b"SUBSCRIBE\n", "Ok(None) must consume nothing");
}

#[test]
fn header_values_are_never_trimmed() {
    for v in ALL {
        let frame = decode_one(b"SEND\na: x \n b:y\n\n\0", v).unwrap();
        assert_eq!(frame.header("a"), Some(" x "));
        assert_eq!(frame.header(" b"), Some("y"));
    }
}

#[test]
fn value_is_split_at_the_first_colon() {
    for v in ALL {
        let frame = decode_one(b"CONNECT\npasscode:a:b::\n\n\0", v).unwrap();
        assert_eq!(frame.header("passcode"), Some("a:b::"));
        let frame = decode_one(b"SEND\nempty:\n\n\0", v).unwrap();
        assert_eq!(frame.header("empty"), Some(""));
    }
}

#[test]
fn crlf_line_endings_are_accepted_in_every_version() {
    for v in ALL {
        let frame = decode_one(b"SEND\r\ndestination:/q\r\nx:1\r\n\r\nbody\0", v).unwrap();
        assert_eq!(frame.command, StompCommand::Send);
        assert_eq!(frame.header("destination"), Some("/q"));
        assert_eq!(frame.header("x"), Some("1"));
        assert_eq!(frame.body, Bytes::from_static(b"body"));
    }
}

#[test]
fn heart_beats_are_bare_eols_between_frames() {
    for v in ALL {
        let items = decode_all(b"\n\r\nSEND\n\nx\0\n\r\n\nDISCONNECT\n\n\0", v);
        let hb = StompItem::HeartBeat;
        assert_eq!(items.len(), 7, "{items:?}");
        assert_eq!(items[..2], [hb.clone(), hb.clone()]);
        assert!(
            matches!(&items[2], StompItem::Frame(f) if f.command == StompCommand::Send && f.body == "x")
        );
        assert_eq!(items[3..6], [hb.clone(), hb.clone(), hb]);
        assert!(matches!(&items[6], StompItem::Frame(f) if f.command == StompCommand::Disconnect));
    }
}

#[test]
fn lone_cr_waits_and_cr_not_followed_by_lf_is_an_error() {
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert_eq!(decode(&mut buf, StompVersion::V1_2, &limits()), Ok(None));
    assert_eq!(buf.len(), 1);
    assert!(matches!(
        decode_err(b"\rX", StompVersion::V1_2, &limits()),
        StompDecodeError::UnknownCommand { .. }
    ));
}

#[test]
fn empty_buffer_needs_more() {
    let mut buf = BytesMut::new();
    let zero = StompLimits {
        max_frame_bytes: 0,
        ..limits()
    };
    assert_eq!(decode(&mut buf, StompVersion::V1_0, &zero), Ok(None));
}

#[test]
fn content_length_body_may_contain_nuls() {
    for v in ALL {
        let frame = decode_one(b"SEND\ncontent-length:5\n\n\0a\0b\0\0", v).unwrap();
        assert_eq!(frame.body, Bytes::from_static(b"\0a\0b\0"));
        assert_eq!(frame.header("content-length"), Some("5"));
    }
}

#[test]
fn first_content_length_wins() {
    let frame = decode_one(
        b"SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0",
        StompVersion::V1_2,
    )
    .unwrap();
    assert_eq!(frame.body, Bytes::from_static(b"a\0b"));
}

#[test]
fn zero_content_length_is_an_empty_body() {
    let frame = decode_one(b"SEND\ncontent-length:0\n\n\0", StompVersion::V1_1).unwrap();
    assert!(frame.body.is_empty());
}

#[test]
fn content_length_not_followed_by_nul_is_an_error() {
    assert_eq!(
        decode_err(
            b"SEND\ncontent-length:2\n\nabc\0",
            StompVersion::V1_2,
            &limits()
        ),
        StompDecodeError::MissingNulTerminator {
            offset: 25,
            found: b'c'
        }
    );
}

#[test]
fn bad_content_length_is_rejected() {
    for value in [
        "abc",
        "-1",
        "",
        " 5",
        "5 ",
        "+5",
        "0x10",
        "99999999999999999999999999",
    ] {
        let bytes = format!("SEND\ncontent-length:{value}\n\n\0");
        assert_eq!(
            decode_err(bytes.as_bytes(), StompVersion::V1_2, &limits()),
            StompDecodeError::BadContentLength {
                value: value.into()
            },
            "{value:?}"
        );
    }
}

#[test]
fn decoded_body_shares_the_receive_buffer() {
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:4\n\nbody\0SEND\n\nnul-ended\0"[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    for _ in 0..2 {
        let Some(StompItem::Frame(frame)) =
            decode(&mut buf, StompVersion::V1_2, &limits()).unwrap()
        else {
            panic!("expected a frame");
        };
        assert!(
            range.contains(&(frame.body.as_ptr() as usize)),
            "body was copied"
        );
    }
}

#[test]
fn unknown_and_garbage_commands_are_rejected_early() {
    for v in ALL {
        // No command starts with 'G': rejected on the first byte, no LF needed.
        assert!(matches!(
            decode_err(b"G", v, &limits()),
            StompDecodeError::UnknownCommand { .. }
        ));
        assert!(matches!(
            decode_err(b"SE\r", v, &limits()),
            StompDecodeError::UnknownCommand { .. }
        ));
        assert!(matches!(
            decode_err(b"SENDX\n\n\0", v, &limits()),
            StompDecodeError::UnknownCommand { .. }
        ));
        assert!(matches!(
            decode_err(b"SEND \n\n\0", v, &limits()),
            StompDecodeError::UnknownCommand { .. }
        ));
        assert!(matches!(
            decode_err(b"\0", v, &limits()),
            StompDecodeError::UnknownCommand { .. }
        ));
        // A long prefix of garbage is cut in the error.
        let long = [b'S'; 100];
        match decode_err(&long, v, &limits()) {
            StompDecodeError::UnknownCommand { command } => assert!(command.len() <= 12),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn malformed_headers_are_rejected() {
    for v in ALL {
        assert_eq!(
            decode_err(b"SEND\nnocolon\n\n\0", v, &limits()),
            StompDecodeError::MalformedHeader {
                line: 2,
                reason: "no ':' between name and value"
            }
        );
        assert_eq!(
            decode_err(b"SEND\na:1\n:value\n\n\0", v, &limits()),
            StompDecodeError::MalformedHeader {
                line: 3,
                reason: "empty header name"
            }
        );
        assert_eq!(
            decode_err(b"SEND\na:\xff\xfe\n\n\0", v, &limits()),
            StompDecodeError::InvalidUtf8 { line: 2 }
        );
    }
}

// ----- escaping -------------------------------------------------------------

#[test]
fn escapes_decode_per_version() {
    let wire = b"SEND\nk\\cey:a\\cb\\nc\\\\d\n\n\0";
    let v10 = decode_one(wire, StompVersion::V1_0).unwrap();
    assert_eq!(
        v10.headers,
        vec![("k\\cey".into(), "a\\cb\\nc\\\\d".into())]
    );
    for v in [StompVersion::V1_1, StompVersion::V1_2] {
        let frame = decode_one(wire, v).unwrap();
        assert_eq!(frame.headers, vec![("k:ey".into(), "a:b\nc\\d".into())]);
    }
    // `\r` exists only in 1.2.
    let cr = b"SEND\nx:a\\rb\n\n\0";
    assert_eq!(
        decode_one(cr, StompVersion::V1_0).unwrap().header("x"),
        Some("a\\rb")
    );
    assert_eq!(
        decode_err(cr, StompVersion::V1_1, &limits()),
        StompDecodeError::InvalidEscape {
            line: 2,
            sequence: "\\r".into()
        }
    );
    assert_eq!(
        decode_one(cr, StompVersion::V1_2).unwrap().header("x"),
        Some("a\rb")
    );
}

#[test]
fn undefined_escapes_are_fatal_in_1_1_and_1_2() {
    for v in [StompVersion::V1_1, StompVersion::V1_2] {
        assert_eq!(
            decode_err(b"SEND\nx:a\\tb\n\n\0", v, &limits()),
            StompDecodeError::InvalidEscape {
                line: 2,
                sequence: "\\t".into()
            }
        );
        assert_eq!(
            decode_err(b"SEND\ny:1\nx:ab\\\n\n\0", v, &limits()),
            StompDecodeError::InvalidEscape {
                line: 3,
                sequence: "\\".into()
            }
        );
        assert_eq!(
            decode_err(b"SEND\nx\\:1\n\n\0", v, &limits()),
            StompDecodeError::InvalidEscape {
                line: 2,
                sequence: "\\".into()
            },
            "a backslash at the end of a name"
        );
        assert!(matches!(
            decode_err(b"SEND\nx:\\\x01\n\n\0", v, &limits()),
            StompDecodeError::InvalidEscape { .. }
        ));
    }
    assert_eq!(
        decode_one(b"SEND\nx:a\\tb\n\n\0", StompVersion::V1_0)
            .unwrap()
            .header("x"),
        Some("a\\tb")
    );
}

#[test]
fn connect_stomp_and_connected_are_never_unescaped() {
    for v in ALL {
        for command in ["CONNECT", "STOMP", "CONNECTED"] {
            let wire = format!("{command}\npasscode:a\\cb\\t\n\n\0");
            let frame = decode_one(wire.as_bytes(), v).unwrap();
            assert_eq!(frame.header("passcode"), Some("a\\cb\\t"), "{command} {v}");
        }
    }
}

#[test]
fn encode_escapes_per_version() {
    let frame = StompFrame::new(StompCommand::Message)
        .with_header("k:ey", "a:b\nc\\d\re")
        .with_body("x");
    assert_eq!(
        &encode(&frame, StompVersion::V1_2)[..],
        b"MESSAGE\nk\\cey:a\\cb\\nc\\\\d\\re\n\nx\0"
    );
    // 1.1 has no `\r` escape: a CR is written raw.
    assert_eq!(
        &encode(&frame, StompVersion::V1_1)[..],
        b"MESSAGE\nk\\cey:a\\cb\\nc\\\\d\re\n\nx\0"
    );
    // 1.0 has no escapes: an LF becomes a space, a colon in a name becomes '_'.
    assert_eq!(
        &encode(&frame, StompVersion::V1_0)[..],
        b"MESSAGE\nk_ey:a:b c\\d\re\n\nx\0"
    );
    // A CR ending a value would merge with the EOL: it becomes a space.
    let frame = StompFrame::new(StompCommand::Send).with_header("a\r", "b\r");
    assert_eq!(
        &encode(&frame, StompVersion::V1_0)[..],
        b"SEND\na\r:b \n\n\0"
    );
    assert_eq!(
        &encode(&frame, StompVersion::V1_1)[..],
        b"SEND\na\r:b \n\n\0"
    );
    assert_eq!(
        &encode(&frame, StompVersion::V1_2)[..],
        b"SEND\na\\r:b\\r\n\n\0"
    );
}

#[test]
fn raw_cr_inside_a_header_is_kept_but_not_before_the_eol() {
    for v in ALL {
        let frame = decode_one(b"SEND\nx:a\rb\n\n\0", v).unwrap();
        assert_eq!(frame.header("x"), Some("a\rb"));
        assert_eq!(decode_one(&encode(&frame, v), v).unwrap(), frame);
        assert_eq!(
            decode_err(b"SEND\nx:a\r\r\n\n\0", v, &limits()),
            StompDecodeError::MalformedHeader {
                line: 2,
                reason: "stray CR before the end of line"
            }
        );
    }
}

#[test]
fn encode_never_escapes_connect_frames() {
    for v in ALL {
        for command in [
            StompCommand::Connect,
            StompCommand::Stomp,
            StompCommand::Connected,
        ] {
            let frame = StompFrame::new(command).with_header("passcode", "a:b\\c\nd");
            let wire = encode(&frame, v);
            let expected = format!("{command}\npasscode:a:b\\c d\n\n\0");
            assert_eq!(&wire[..], expected.as_bytes(), "{command} {v}");
        }
    }
}

#[test]
fn encode_owns_content_length() {
    let v = StompVersion::V1_2;
    // Added when the body holds a NUL.
    let frame = StompFrame::new(StompCommand::Message).with_body(Bytes::from_static(b"a\0b"));
    assert_eq!(
        &encode(&frame, v)[..],
        b"MESSAGE\ncontent-length:3\n\na\0b\0"
    );
    // Not added otherwise: the encoder writes the headers it is given.
    let frame = StompFrame::new(StompCommand::Message).with_body("ab");
    assert_eq!(&encode(&frame, v)[..], b"MESSAGE\n\nab\0");
    // Corrected in place when wrong, repeats included; kept when right.
    let frame = StompFrame::new(StompCommand::Message)
        .with_header("a", "1")
        .with_header("content-length", "999")
        .with_header("b", "2")
        .with_header("content-length", " 2")
        .with_header("content-length", "002")
        .with_body("ab");
    assert_eq!(
        &encode(&frame, v)[..],
        b"MESSAGE\na:1\ncontent-length:2\nb:2\ncontent-length:2\ncontent-length:002\n\nab\0"
    );
}

#[test]
fn encode_skips_empty_header_names() {
    let frame = StompFrame::new(StompCommand::Send)
        .with_header("", "x")
        .with_header("a", "");
    assert_eq!(&encode(&frame, StompVersion::V1_2)[..], b"SEND\na:\n\n\0");
}

#[test]
fn round_trip_sample_frames_in_every_version() {
    for v in ALL {
        for frame in sample_frames() {
            let wire = encode(&frame, v);
            assert_eq!(decode_one(&wire, v).unwrap(), frame, "{v}");
        }
    }
}

#[test]
fn every_truncation_point_needs_more_and_consumes_nothing() {
    for v in ALL {
        for frame in sample_frames() {
            let mut wire = encode(&frame, v).to_vec();
            // Trailing EOLs too: a cut inside "\r\n" must wait, not fail.
            wire.extend_from_slice(b"\r\n");
            for cut in 0..wire.len() - 2 {
                let mut buf = BytesMut::from(&wire[..cut]);
                assert_eq!(
                    decode(&mut buf, v, &limits()),
                    Ok(None),
                    "{v} cut at {cut} of {:?}",
                    Bytes::from(wire.clone())
                );
                assert_eq!(buf.len(), cut, "nothing consumed");
            }
            let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
            assert_eq!(
                decode(&mut buf, v, &limits()),
                Ok(Some(StompItem::Frame(frame.clone())))
            );
            assert_eq!(&buf[..], b"\r");
            assert_eq!(decode(&mut buf, v, &limits()), Ok(None));
        }
    }
}

// ----- limits ---------------------------------------------------------------

#[test]
fn frame_of_exactly_max_bytes_is_accepted_and_one_more_is_not() {
    let wire = b"SEND\n\n0123456789\0"; // 17 bytes
    let exact = StompLimits {
        max_frame_bytes: wire.len(),
        ..limits()
    };
    let mut buf = BytesMut::from(&wire[..]);
    assert!(matches!(
        decode(&mut buf, StompVersion::V1_2, &exact),
        Ok(Some(StompItem::Frame(_)))
    ));
    let short = StompLimits {
        max_frame_bytes: wire.len() - 1,
        ..limits()
    };
    assert_eq!(
        decode_err(wire, StompVersion::V1_2, &short),
        StompDecodeError::FrameTooLarge {
            size: wire.len(),
            max: wire.len() - 1
        }
    );
    // The same with content-length.
    let wire = b"SEND\ncontent-length:2\n\nab\0";
    let exact = StompLimits {
        max_frame_bytes: wire.len(),
        ..limits()
    };
    assert!(decode_one_with(wire, &exact).is_ok());
    let short = StompLimits {
        max_frame_bytes: wire.len() - 1,
        ..limits()
    };
    assert_eq!(
        decode_err(wire, StompVersion::V1_2, &short),
        StompDecodeError::FrameTooLarge {
            size: wire.len(),
            max: wire.len() - 1
        }
    );
}

fn decode_one_with(
    wire: &[u8],
    limits: &StompLimits,
) -> Result<Option<StompItem>, StompDecodeError> {
    decode(&mut BytesMut::from(wire), StompVersion::V1_2, limits)
}

#[test]
fn unterminated_body_errors_as_soon_as_it_exceeds_the_limit() {
    let small = StompLimits {
        max_frame_bytes: 64,
        ..limits()
    };
    let mut wire = b"SEND\n\n".to_vec();
    wire.resize(63, b'x');
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(decode(&mut buf, StompVersion::V1_2, &small), Ok(None));
    buf.extend_from_slice(b"x");
    assert_eq!(
        decode(&mut buf, StompVersion::V1_2, &small),
        Err(StompDecodeError::FrameTooLarge { size: 65, max: 64 })
    );
}

#[test]
fn oversized_content_length_errors_before_the_body_arrives() {
    let small = StompLimits {
        max_frame_bytes: 1024,
        ..limits()
    };
    // Only the header line has arrived, not even the blank line.
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:1000000\n"[..]);
    assert!(matches!(
        decode(&mut buf, StompVersion::V1_2, &small),
        Err(StompDecodeError::FrameTooLarge { max: 1024, .. })
    ));
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:18446744073709551615\n"[..]);
    assert!(matches!(
        decode(&mut buf, StompVersion::V1_2, &small),
        Err(StompDecodeError::FrameTooLarge { max: 1024, .. })
    ));
}

#[test]
fn too_many_headers() {
    let three = StompLimits {
        max_headers: 3,
        ..limits()
    };
    let ok = b"SEND\na:1\nb:2\nc:3\n\n\0";
    assert!(decode_one_with(ok, &three).unwrap().is_some());
    // The fourth header errors before the frame is complete.
    let mut buf = BytesMut::from(&b"SEND\na:1\nb:2\nc:3\nd:4\n"[..]);
    assert_eq!(
        decode(&mut buf, StompVersion::V1_2, &three),
        Err(StompDecodeError::TooManyHeaders { max: 3 })
    );
}

#[test]
fn header_line_too_long_errors_before_its_eol() {
    let small = StompLimits {
        max_header_bytes: 8,
        ..limits()
    };
    // Exactly 8 bytes, with CR LF: fine.
    assert!(decode_one_with(b"SEND\nabc:efgh\r\n\r\n\0", &small)
        .unwrap()
        .is_some());
    // 9 bytes with LF: too long.
    assert_eq!(
        decode_one_with(b"SEND\nabc:efghi\n\n\0", &small),
        Err(StompDecodeError::HeaderTooLong { line: 2, max: 8 })
    );
    // Unterminated: errors once 10 bytes of the line are buffered, without an EOL.
    let mut buf = BytesMut::from(&b"SEND\nabc:efghi"[..]);
    assert_eq!(decode(&mut buf, StompVersion::V1_2, &small), Ok(None));
    buf.extend_from_slice(b"j");
    assert_eq!(
        decode(&mut buf, StompVersion::V1_2, &small),
        Err(StompDecodeError::HeaderTooLong { line: 2, max: 8 })
    );
}

#[test]
fn unterminated_headers_count_toward_the_frame_limit() {
    let small = StompLimits {
        max_frame_bytes: 32,
        ..limits()
    };
    let mut buf = BytesMut::from(&b"SEND\n"[..]);
    let mut result = Ok(None);
    for i in 0..20 {
        buf.extend_from_slice(format!("h{i}:v\n").as_bytes());
        result = decode(&mut buf, StompVersion::V1_2, &small);
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(StompDecodeError::FrameTooLarge { max: 32, .. })),
        "{result:?}"
    );
    assert!(buf.len() <= 40, "errored late, after {} bytes", buf.len());
}

#[test]
fn errors_have_readable_messages() {
    let msg = StompDecodeError::FrameTooLarge { size: 11, max: 10 }.to_string();
    assert_eq!(
        msg,
        "STOMP frame of at least 11 bytes exceeds the limit of 10 bytes"
    );
    let msg = StompDecodeError::InvalidEscape {
        line: 3,
        sequence: "\\t".into(),
    }
    .to_string();
    assert_eq!(
        msg,
        "undefined escape sequence \"\\\\t\" in STOMP header line 3"
    );
}

// ----- tokio codec ----------------------------------------------------------

#[test]
fn codec_starts_at_1_0_and_switches_version() {
    let mut codec = StompCodec::new(limits());
    assert_eq!(codec.version(), StompVersion::V1_0);
    let mut buf = BytesMut::from(&b"SEND\nx:a\\cb\n\n\0SEND\nx:a\\cb\n\n\0"[..]);
    let Some(StompItem::Frame(f)) = codec.decode(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.header("x"), Some("a\\cb"));
    codec.set_version(StompVersion::V1_2);
    assert_eq!(codec.version(), StompVersion::V1_2);
    let Some(StompItem::Frame(f)) = codec.decode(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.header("x"), Some("a:b"));
}

#[test]
fn codec_version_change_mid_frame_reparses_the_frame() {
    let mut codec = StompCodec::new(limits());
    let mut buf = BytesMut::from(&b"SEND\nx:a\\cb\n"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    codec.set_version(StompVersion::V1_1);
    buf.extend_from_slice(b"\n\0");
    let Some(StompItem::Frame(f)) = codec.decode(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(f.header("x"), Some("a:b"));
}

#[test]
fn codec_encodes_frames_items_and_heart_beats() {
    let mut codec = StompCodec::new(limits());
    codec.set_version(StompVersion::V1_2);
    let frame = StompFrame::new(StompCommand::Receipt).with_header("receipt-id", "a:1");
    let mut dst = BytesMut::new();
    codec.encode(StompItem::HeartBeat, &mut dst).unwrap();
    codec.encode(&frame, &mut dst).unwrap();
    codec.encode(frame.clone(), &mut dst).unwrap();
    codec
        .encode(StompItem::Frame(frame.clone()), &mut dst)
        .unwrap();
    let one = b"RECEIPT\nreceipt-id:a\\c1\n\n\0";
    let mut expected = b"\n".to_vec();
    for _ in 0..3 {
        expected.extend_from_slice(one);
    }
    assert_eq!(&dst[..], &expected[..]);
}

#[test]
fn codec_byte_at_a_time_matches_whole_buffer() {
    for v in ALL {
        let mut wire = BytesMut::new();
        for frame in sample_frames() {
            frame.encode(v, &mut wire);
            wire.extend_from_slice(b"\n");
        }
        let whole = decode_all(&wire, v);
        let mut codec = StompCodec::new(limits());
        codec.set_version(v);
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for &b in wire.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                items.push(item);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(items, whole);
    }
}

#[test]
fn codec_survives_being_handed_a_shorter_buffer() {
    let mut codec = StompCodec::new(limits());
    let mut buf = BytesMut::from(&b"SEND\na:1\nb:2\n\nxxxxxxxx"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    // A different, shorter buffer: progress is discarded, no panic.
    let mut other = BytesMut::from(&b"SEND\n\n\0"[..]);
    let Some(StompItem::Frame(f)) = codec.decode(&mut other).unwrap() else {
        panic!()
    };
    assert!(f.headers.is_empty() && f.body.is_empty());
}

#[test]
fn codec_error_wraps_sources() {
    let mut codec = StompCodec::new(limits());
    let mut buf = BytesMut::from(&b"BOGUS\n\n\0"[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        StompCodecError::Decode(StompDecodeError::UnknownCommand { .. })
    ));
    assert_eq!(err.to_string(), "unknown STOMP command \"BOGUS\"");
    let io: StompCodecError = std::io::Error::other("boom").into();
    assert!(matches!(io, StompCodecError::Io(_)));
}
