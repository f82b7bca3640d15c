//! Property tests for the STOMP codec: round trips on arbitrary frames, and
//! no panic (plus re-encode stability) on arbitrary bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use codecs::stomp::{
    decode, StompCodec, StompCommand, StompDecodeError, StompFrame, StompItem, StompLimits,
    StompVersion,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use tokio_util::codec::Decoder;

fn version() -> impl Strategy<Value = StompVersion> {
    select(StompVersion::ALL.to_vec())
}

fn command() -> impl Strategy<Value = StompCommand> {
    select(StompCommand::ALL.to_vec())
}

/// Short strings rich in the octets STOMP treats specially.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => select(vec!['a', 'b', 'z', '-', '/', ' ', '0', '9']),
        1 => Just(':'),
        1 => Just('\n'),
        1 => Just('\r'),
        1 => Just('\\'),
        1 => Just('\0'),
        1 => Just('é'),
        1 => Just('☃'),
        1 => any::<char>(),
    ];
    prop::collection::vec(ch, 0..12).prop_map(|v| v.into_iter().collect())
}

fn escaped(version: StompVersion, command: StompCommand) -> bool {
    version >= StompVersion::V1_1
        && !matches!(
            command,
            StompCommand::Connect | StompCommand::Stomp | StompCommand::Connected
        )
}

/// Adjusts a header so that `version` can carry it unchanged (see
/// `StompFrame::encode` for what it cannot).
fn representable(
    mut name: String,
    mut value: String,
    version: StompVersion,
    command: StompCommand,
) -> (String, String) {
    let escaped = escaped(version, command);
    if !escaped {
        name.retain(|c| c != ':' && c != '\n');
        value.retain(|c| c != '\n');
    }
    if !(escaped && version == StompVersion::V1_2) {
        while value.ends_with('\r') {
            value.pop();
        }
    }
    if name.is_empty() || name == "content-length" {
        name.insert(0, 'h');
    }
    (name, value)
}

/// Frames that every encoder exception leaves untouched.
fn frame() -> impl Strategy<Value = (StompVersion, StompFrame)> {
    (
        version(),
        command(),
        prop::collection::vec((text(), text()), 0..6),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
        any::<Index>(),
    )
        .prop_map(|(version, command, headers, body, with_length, at)| {
            let mut headers: Vec<(String, String)> = headers
                .into_iter()
                .map(|(n, v)| representable(n, v, version, command))
                .collect();
            if with_length || body.contains(&0) {
                let at = at.index(headers.len() + 1);
                headers.insert(at, ("content-length".into(), body.len().to_string()));
            }
            let frame = StompFrame {
                command,
                headers,
                body: Bytes::from(body),
            };
            (version, frame)
        })
}

/// Byte strings shaped like STOMP frames (command line, header lines, blank
/// line, body, NUL, EOLs) built from tokens that hit escapes, content-length
/// and CR handling, so decoding gets past the command line.
fn stompish() -> impl Strategy<Value = Vec<u8>> {
    let command = prop_oneof![
        8 => select(vec![&b"SEND"[..], b"MESSAGE", b"CONNECT", b"CONNECTED", b"ACK", b"ERROR"]),
        1 => select(vec![&b"SEN"[..], b"send", b""]),
    ];
    let eol = prop_oneof![
        16 => Just(&b"\n"[..]),
        4 => Just(&b"\r\n"[..]),
        1 => Just(&b"\r"[..]),
        1 => Just(&b""[..]),
    ];
    let token = prop_oneof![
        12 => select(vec![
            &b"a"[..],
            b"b",
            b"a:b",
            b":",
            b"\\c",
            b"\\n",
            b"\\\\",
            b"0",
            b"3",
            b" ",
            b"\xc3\xa9",
        ]),
        1 => select(vec![&b"\\"[..], b"\\r", b"\\t", b"\0", b"\r", b"\xff"]),
    ];
    let name = prop_oneof![
        8 => prop::collection::vec(token.clone(), 1..3).prop_map(|t| t.concat()),
        1 => Just(Vec::new()),
        2 => Just(b"content-length".to_vec()),
    ];
    let value = prop_oneof![
        4 => prop::collection::vec(token.clone(), 0..3).prop_map(|t| t.concat()),
        2 => select(vec![&b"0"[..], b"1", b"3", b"10", b"x"]).prop_map(|v| v.to_vec()),
    ];
    let colon = prop_oneof![8 => Just(&b":"[..]), 1 => Just(&b""[..])];
    let line = (name, colon, value, eol.clone());
    let frame = (
        command,
        eol.clone(),
        prop::collection::vec(line, 0..5),
        eol.clone(),
        prop::collection::vec(token, 0..4),
        prop_oneof![8 => Just(&b"\0"[..]), 1 => Just(&b""[..])],
        eol,
    )
        .prop_map(|(command, eol1, lines, eol2, body, nul, eol3)| {
            let mut out = command.to_vec();
            out.extend_from_slice(eol1);
            for (name, colon, value, eol) in lines {
                out.extend(name);
                out.extend_from_slice(colon);
                out.extend(value);
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(eol2);
            out.extend(body.concat());
            out.extend_from_slice(nul);
            out.extend_from_slice(eol3);
            out
        });
    prop::collection::vec(frame, 1..4).prop_map(|v| v.concat())
}

fn small_limits() -> StompLimits {
    StompLimits {
        max_frame_bytes: 256,
        max_headers: 8,
        max_header_bytes: 32,
    }
}

/// What the encoder writes for a decoded frame: every `content-length`
/// states the body's length (only the first one was used for framing).
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

/// Decodes `bytes` to the end: the items, and whether it stopped on an error.
fn decode_stream(
    bytes: &[u8],
    version: StompVersion,
    limits: &StompLimits,
) -> (Vec<StompItem>, Option<StompDecodeError>) {
    let mut buf = BytesMut::from(bytes);
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
                return (items, None);
            }
            Err(e) => return (items, Some(e)),
        }
    }
}

/// The same through `StompCodec`, fed in chunks of the given sizes.
fn codec_stream(
    bytes: &[u8],
    version: StompVersion,
    limits: &StompLimits,
    chunks: &[usize],
) -> (Vec<StompItem>, bool) {
    let mut codec = StompCodec::new(*limits);
    codec.set_version(version);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        buf.extend_from_slice(chunk);
        rest = tail;
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

fn check_reencode(items: &[StompItem], version: StompVersion) {
    for item in items {
        if let StompItem::Frame(frame) = item {
            let mut wire = BytesMut::new();
            frame.encode(version, &mut wire);
            let again = decode(&mut wire, version, &StompLimits::default());
            assert_eq!(
                again,
                Ok(Some(StompItem::Frame(canonical(frame.clone())))),
                "re-encoding changed the frame"
            );
            assert!(wire.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity((version, frame) in frame(), eols in 0usize..3) {
        let mut wire = BytesMut::new();
        frame.encode(version, &mut wire);
        for _ in 0..eols {
            wire.extend_from_slice(b"\n");
        }
        let (items, err) = decode_stream(&wire, version, &StompLimits::default());
        prop_assert_eq!(err, None);
        prop_assert_eq!(items.len(), 1 + eols);
        prop_assert_eq!(&items[0], &StompItem::Frame(frame.clone()));
        prop_assert!(items[1..].iter().all(|i| *i == StompItem::HeartBeat));
    }

    #[test]
    fn every_prefix_of_an_encoded_frame_needs_more((version, frame) in frame()) {
        let mut wire = BytesMut::new();
        frame.encode(version, &mut wire);
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            prop_assert_eq!(decode(&mut buf, version, &StompLimits::default()), Ok(None));
            prop_assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn codec_in_chunks_matches_whole_buffer(
        frames in prop::collection::vec(frame(), 1..4),
        version in version(),
        chunks in prop::collection::vec(1usize..40, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for (_, frame) in &frames {
            frame.encode(version, &mut wire);
            wire.extend_from_slice(b"\r\n");
        }
        let (whole, err) = decode_stream(&wire, version, &StompLimits::default());
        let (chunked, failed) = codec_stream(&wire, version, &StompLimits::default(), &chunks);
        prop_assert_eq!(err.is_some(), failed);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for version in StompVersion::ALL {
            for limits in [small_limits(), StompLimits::default()] {
                let (items, _) = decode_stream(&bytes, version, &limits);
                check_reencode(&items, version);
            }
        }
    }

    #[test]
    fn stompish_bytes_never_panic_and_reencode_stably(
        bytes in stompish(),
        chunks in prop::collection::vec(1usize..16, 1..6),
    ) {
        for version in StompVersion::ALL {
            for limits in [small_limits(), StompLimits::default()] {
                let (items, err) = decode_stream(&bytes, version, &limits);
                check_reencode(&items, version);
                let (chunked, failed) = codec_stream(&bytes, version, &limits, &chunks);
                prop_assert_eq!(err.is_some(), failed);
                prop_assert_eq!(items, chunked);
            }
        }
    }
}
