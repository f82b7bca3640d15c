//! Golden bytes: frames captured from the real `stomp.py` 9.0.0 client by
//! `testdata/stomp/capture.py`. Each file is decoded under the version in its
//! name, checked header by header, and re-encoded to the identical bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use codecs::stomp::{decode, StompCommand, StompFrame, StompItem, StompLimits, StompVersion};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stomp")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `stomppy-9.0.0_send_v1.2.bin` -> V1_2.
fn version_of(name: &str) -> StompVersion {
    let v = name
        .strip_suffix(".bin")
        .and_then(|n| n.rsplit_once("_v"))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no version in {name}"));
    StompVersion::parse(v).unwrap_or_else(|| panic!("bad version in {name}"))
}

fn decode_items(bytes: &[u8], version: StompVersion) -> Vec<StompItem> {
    let mut buf = BytesMut::from(bytes);
    let mut items = Vec::new();
    while let Some(item) = decode(&mut buf, version, &StompLimits::default()).unwrap() {
        items.push(item);
    }
    assert!(buf.is_empty(), "undecoded tail: {buf:?}");
    items
}

/// Decodes the single frame in `name`, checks it re-encodes byte for byte.
fn frame(name: &str) -> StompFrame {
    let bytes = read(name);
    let version = version_of(name);
    let items = decode_items(&bytes, version);
    let [StompItem::Frame(frame)] = &items[..] else {
        panic!("{name}: expected one frame, got {items:?}");
    };
    let mut again = BytesMut::new();
    frame.encode(version, &mut again);
    assert_eq!(
        Bytes::from(again),
        Bytes::from(bytes),
        "{name}: re-encoding differs"
    );
    frame.clone()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Checks command and the complete, ordered header list.
fn check(name: &str, command: StompCommand, expected: &[(&str, &str)]) -> StompFrame {
    let f = frame(name);
    assert_eq!(f.command, command, "{name}");
    assert_eq!(f.headers, headers(expected), "{name}");
    f
}

const CLIENT: &str = "stomppy-9.0.0";

fn file(frame: &str, version: &str) -> String {
    format!("{CLIENT}_{frame}_v{version}.bin")
}

const BINARY: &[u8] = b"\x00\x01\x02\x00\xff\n\x00tail";

#[test]
fn connect_frames() {
    check(
        &file("connect", "1.0"),
        StompCommand::Connect,
        &[
            ("accept-version", "1.0"),
            ("login", "guest"),
            ("passcode", "secret"),
        ],
    );
    for v in ["1.1", "1.2"] {
        let common = [
            ("accept-version", v),
            ("host", "localhost"),
            ("login", "guest"),
            ("passcode", "secret"),
        ];
        check(&file("connect", v), StompCommand::Stomp, &common);
        check(&file("connect-command", v), StompCommand::Connect, &common);
    }
}

#[test]
fn send_frames_with_headers_needing_escapes() {
    let f = check(
        &file("send", "1.0"),
        StompCommand::Send,
        &[
            ("content-length", "11"),
            ("content-type", "text/plain"),
            ("destination", "/queue/golden"),
            ("x-plain", "plain value"),
            ("x-utf8", "h\u{e9}llo \u{2603}"),
        ],
    );
    assert_eq!(f.body, "hello world");

    let escaped = [
        ("content-length", "11"),
        ("content-type", "text/plain"),
        ("destination", "/queue/golden"),
        ("x-backslash", "back\\slash"),
        ("x-colon", "a:b"),
        ("x-newline", "line1\nline2"),
        ("x-utf8", "h\u{e9}llo \u{2603}"),
    ];
    let f = check(&file("send", "1.1"), StompCommand::Send, &escaped);
    assert_eq!(f.body, "hello world");

    let mut v12 = escaped.to_vec();
    v12.insert(5, ("x-cr", "cr\rhere"));
    let f = check(&file("send", "1.2"), StompCommand::Send, &v12);
    assert_eq!(f.body, "hello world");
}

#[test]
fn send_frames_with_binary_bodies() {
    for v in ["1.0", "1.1", "1.2"] {
        let f = check(
            &file("send-binary", v),
            StompCommand::Send,
            &[
                ("content-length", "11"),
                ("content-type", "application/octet-stream"),
                ("destination", "/queue/golden"),
            ],
        );
        assert_eq!(f.body, BINARY, "{v}");
    }
}

#[test]
fn subscribe_ack_nack_unsubscribe() {
    check(
        &file("subscribe", "1.0"),
        StompCommand::Subscribe,
        &[
            ("ack", "client"),
            ("destination", "/queue/golden"),
            ("id", "sub-1"),
        ],
    );
    check(
        &file("ack", "1.0"),
        StompCommand::Ack,
        &[("message-id", "msg-1"), ("transaction", "tx-1")],
    );
    for v in ["1.1", "1.2"] {
        check(
            &file("subscribe", v),
            StompCommand::Subscribe,
            &[
                ("ack", "client-individual"),
                ("destination", "/queue/golden"),
                ("id", "sub-1"),
            ],
        );
    }
    check(
        &file("ack", "1.1"),
        StompCommand::Ack,
        &[
            ("message-id", "msg-1"),
            ("subscription", "sub-1"),
            ("transaction", "tx-1"),
        ],
    );
    check(
        &file("nack", "1.1"),
        StompCommand::Nack,
        &[("message-id", "msg-2"), ("subscription", "sub-1")],
    );
    check(
        &file("ack", "1.2"),
        StompCommand::Ack,
        &[("id", "ack-1"), ("transaction", "tx-1")],
    );
    check(&file("nack", "1.2"), StompCommand::Nack, &[("id", "ack-2")]);
    for v in ["1.0", "1.1", "1.2"] {
        check(
            &file("unsubscribe", v),
            StompCommand::Unsubscribe,
            &[("id", "sub-1")],
        );
    }
}

#[test]
fn transactions_and_disconnect() {
    for v in ["1.0", "1.1", "1.2"] {
        check(
            &file("begin", v),
            StompCommand::Begin,
            &[("transaction", "tx-1")],
        );
        check(
            &file("commit", v),
            StompCommand::Commit,
            &[("transaction", "tx-1")],
        );
        check(
            &file("abort", v),
            StompCommand::Abort,
            &[("transaction", "tx-2")],
        );
        let f = check(
            &file("disconnect", v),
            StompCommand::Disconnect,
            &[("receipt", "bye-1")],
        );
        assert!(f.body.is_empty());
    }
}

#[test]
fn heart_beating_session() {
    let name = file("session-heartbeat", "1.2");
    let items = decode_items(&read(&name), StompVersion::V1_2);
    let (first, rest) = items.split_first().unwrap();
    let (last, beats) = rest.split_last().unwrap();
    let StompItem::Frame(connect) = first else {
        panic!("{first:?}")
    };
    assert_eq!(connect.command, StompCommand::Stomp);
    assert_eq!(connect.header("heart-beat"), Some("200,0"));
    assert!(!beats.is_empty());
    assert!(
        beats.iter().all(|b| *b == StompItem::HeartBeat),
        "{beats:?}"
    );
    let StompItem::Frame(disconnect) = last else {
        panic!("{last:?}")
    };
    assert_eq!(disconnect.command, StompCommand::Disconnect);
    assert_eq!(disconnect.header("receipt"), Some("bye-hb"));
}

/// Every golden file must be covered above, and decode truncated at every
/// point to `Ok(None)`.
#[test]
fn every_golden_file_is_known_and_truncates_cleanly() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    let mut known = Vec::new();
    for v in ["1.0", "1.1", "1.2"] {
        for f in [
            "connect",
            "send",
            "send-binary",
            "subscribe",
            "ack",
            "unsubscribe",
            "begin",
            "commit",
            "abort",
            "disconnect",
        ] {
            known.push(file(f, v));
        }
        if v != "1.0" {
            known.push(file("nack", v));
            known.push(file("connect-command", v));
        }
    }
    known.push(file("session-heartbeat", "1.2"));
    known.sort();
    assert_eq!(names, known, "golden files and expectations differ");

    for name in &names {
        let bytes = read(name);
        let version = version_of(name);
        // The first item of each file, cut anywhere before its end.
        let first_len = {
            let mut buf = BytesMut::from(&bytes[..]);
            decode(&mut buf, version, &StompLimits::default())
                .unwrap()
                .unwrap();
            bytes.len() - buf.len()
        };
        for cut in 0..first_len {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(
                decode(&mut buf, version, &StompLimits::default()),
                Ok(None),
                "{name} cut at {cut}"
            );
            assert_eq!(buf.len(), cut);
        }
    }
}
