//! Golden bytes: OpenWire frames captured between the real ActiveMQ 5.17.2
//! JMS client (`tests/openwire/java/JmsProbe.java`) and a real ActiveMQ
//! 5.17.2 broker by `testdata/openwire/capture.py` (a recording proxy), with
//! the loose encoding negotiated, for every protocol version 1 to 12.
//!
//! Both directions of every version's session are decoded frame by frame
//! with the format negotiated from the two `WireFormatInfo`s, and every frame
//! re-encodes to the identical bytes. The single-frame files of version 12
//! are checked field by field against what the Java program sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use codecs::openwire::*;
use tokio_util::codec::Decoder;

const CLIENT: &str = "activemq-client-5.17.2";
const BROKER: &str = "activemq-5.17.2";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/openwire")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn first_wire_format(bytes: &[u8]) -> WireFormatOptions {
    let mut buf = BytesMut::from(bytes);
    match decode_frame(&mut buf, &WireFormat::default())
        .unwrap()
        .unwrap()
    {
        Command::WireFormatInfo(info) => {
            assert!(info.is_valid());
            WireFormatOptions::from_info(&info, &OpenWireLimits::default()).unwrap()
        }
        other => panic!("first frame is {}", other.name()),
    }
}

/// The format both sides use after exchanging `WireFormatInfo`s.
fn negotiated(version: u32) -> WireFormat {
    let client = first_wire_format(&read(&format!("{CLIENT}_v{version}_session.bin")));
    let broker = first_wire_format(&read(&format!("{BROKER}_v{version}_session.bin")));
    assert_eq!(
        client.version, version,
        "client offers the version asked for"
    );
    assert_eq!(broker.version, 12);
    let agreed = broker.negotiate(&client);
    assert_eq!(agreed.version, version);
    assert!(!agreed.tight_encoding_enabled, "loose encoding negotiated");
    assert!(!agreed.cache_enabled, "no marshal cache negotiated");
    assert!(!agreed.size_prefix_disabled);
    WireFormat {
        version: agreed.version,
        stack_trace_enabled: agreed.stack_trace_enabled,
        limits: OpenWireLimits::default(),
    }
}

/// Decodes a whole recorded direction; every frame must re-encode to its
/// bytes. Returns the commands.
fn session(file: &str, format: &WireFormat) -> Vec<Command> {
    let bytes = read(file);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    loop {
        let before = buf.clone();
        match decode_frame(&mut buf, format) {
            Ok(Some(command)) => {
                let consumed = before.len() - buf.len();
                let again = command.to_bytes(format).unwrap();
                assert_eq!(
                    &again[..],
                    &before[..consumed],
                    "{file}: frame {} ({}) re-encodes differently",
                    out.len(),
                    command.name()
                );
                out.push(command);
            }
            Ok(None) => break,
            Err(e) => panic!("{file}: frame {}: {e}", out.len()),
        }
    }
    assert!(buf.is_empty(), "{file}: {} bytes left over", buf.len());
    out
}

fn kinds(commands: &[Command]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in commands {
        let name = match c {
            Command::Message(m) => format!("{:?}Message", m.kind),
            other => other.name().to_string(),
        };
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_version_session_decodes_and_reencodes_identically() {
    for version in 1..=12u32 {
        let format = negotiated(version);
        let client = session(&format!("{CLIENT}_v{version}_session.bin"), &format);
        let broker = session(&format!("{BROKER}_v{version}_session.bin"), &format);
        let ck = kinds(&client);
        let bk = kinds(&broker);
        for expected in [
            "WireFormatInfo",
            "ConnectionInfo",
            "SessionInfo",
            "ConsumerInfo",
            "ProducerInfo",
            "TransactionInfo",
            "DestinationInfo",
            "RemoveSubscriptionInfo",
            "RemoveInfo",
            "ShutdownInfo",
            "MessageAck",
            "TextMessage",
            "BytesMessage",
            "MapMessage",
            "StreamMessage",
            "ObjectMessage",
            "MessageMessage",
        ] {
            assert!(
                ck.contains_key(expected),
                "v{version} client: no {expected} in {ck:?}"
            );
        }
        for expected in [
            "WireFormatInfo",
            "BrokerInfo",
            "Response",
            "ExceptionResponse",
            "MessageDispatch",
        ] {
            assert!(
                bk.contains_key(expected),
                "v{version} broker: no {expected} in {bk:?}"
            );
        }
        if version >= 2 {
            assert!(ck.contains_key("MessagePull"), "v{version}: no MessagePull");
        }
    }
}

/// Decodes the single frame in `<peer>_v12_<name>.bin` with the version 12
/// format negotiated in the capture.
fn golden(peer: &str, name: &str) -> Command {
    let file = format!("{peer}_v12_{name}.bin");
    let bytes = read(&file);
    let format = negotiated(12);
    let mut buf = BytesMut::from(&bytes[..]);
    let command = decode_frame(&mut buf, &format)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .unwrap_or_else(|| panic!("{file}: incomplete"));
    assert!(buf.is_empty(), "{file}: {} bytes left", buf.len());
    assert_eq!(
        command.to_bytes(&format).unwrap(),
        Bytes::from(bytes),
        "{file}: re-encoding differs"
    );
    command
}

fn message(peer: &str, name: &str) -> Message {
    match golden(peer, name) {
        Command::Message(m) => *m,
        other => panic!("{name}: {}", other.name()),
    }
}

fn properties(m: &Message) -> PrimitiveMap {
    PrimitiveMap::decode(m.marshalled_properties.as_ref().unwrap(), 8)
        .unwrap()
        .unwrap()
}

#[test]
fn client_wire_format_info_offers_tight_encoding_and_cache() {
    let Command::WireFormatInfo(info) = golden(CLIENT, "wire-format-info") else {
        panic!()
    };
    let opts = WireFormatOptions::from_info(&info, &OpenWireLimits::default()).unwrap();
    assert_eq!(opts.version, 12);
    assert!(opts.tight_encoding_enabled);
    assert!(opts.cache_enabled);
    assert!(opts.stack_trace_enabled);
    assert!(!opts.size_prefix_disabled);
    assert_eq!(opts.max_inactivity_duration, 30_000);
    assert!(opts.max_frame_size > 0);
    // Our loose server offer makes the client fall back to loose, no cache, no traces.
    let agreed = WireFormatOptions::loose_server(30_000, 104_857_600).negotiate(&opts);
    assert!(!agreed.tight_encoding_enabled && !agreed.cache_enabled && !agreed.stack_trace_enabled);
    assert_eq!(agreed.version, 12);
}

#[test]
fn broker_wire_format_info_and_broker_info() {
    let Command::WireFormatInfo(info) = golden(BROKER, "wire-format-info") else {
        panic!()
    };
    let opts = WireFormatOptions::from_info(&info, &OpenWireLimits::default()).unwrap();
    assert!(!opts.tight_encoding_enabled);
    assert!(!opts.cache_enabled);
    let Command::BrokerInfo(b) = golden(BROKER, "broker-info") else {
        panic!()
    };
    assert_eq!(b.broker_name.as_deref(), Some("capture"));
    assert!(b.broker_id.is_some());
}

#[test]
fn text_message_with_every_property_type() {
    let m = message(CLIENT, "text-message");
    assert_eq!(m.kind, MessageKind::Text);
    assert_eq!(m.destination, Some(Destination::queue("capture.queue")));
    assert!(m.persistent);
    assert_eq!(m.priority, 7);
    assert!(m.expiration > m.timestamp);
    assert_eq!(m.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(m.jms_type.as_deref(), Some("probe-type"));
    assert_eq!(m.reply_to, Some(Destination::topic("capture.replies")));
    assert_eq!(m.group_id.as_deref(), Some("group-a"));
    assert_eq!(m.group_sequence, 1);
    let text = decode_text_body(m.content.as_ref().unwrap()).unwrap();
    assert_eq!(
        text.as_deref(),
        Some("hello \u{e9}\u{4e2d}\u{1f600} \u{0}end")
    );
    let p = properties(&m);
    assert_eq!(p.get("p_bool"), Some(&PrimitiveValue::Bool(true)));
    assert_eq!(p.get("p_byte"), Some(&PrimitiveValue::Byte(-7)));
    assert_eq!(p.get("p_short"), Some(&PrimitiveValue::Short(-300)));
    assert_eq!(p.get("p_int"), Some(&PrimitiveValue::Int(123_456_789)));
    assert_eq!(
        p.get("p_long"),
        Some(&PrimitiveValue::Long(-1_234_567_890_123))
    );
    assert_eq!(p.get("p_float"), Some(&PrimitiveValue::Float(1.5)));
    assert_eq!(p.get("p_double"), Some(&PrimitiveValue::Double(-2.25)));
    assert_eq!(
        p.get("p_string"),
        Some(&PrimitiveValue::String("str \u{1f600}".into()))
    );
    // The map re-encodes to the client's bytes.
    assert_eq!(
        p.to_bytes().unwrap(),
        m.marshalled_properties.clone().unwrap()
    );
    let id = m.message_id.as_ref().unwrap();
    assert!(id.to_string().starts_with("ID:"), "{id}");
}

#[test]
fn bytes_map_stream_object_and_plain_messages() {
    let b = message(CLIENT, "bytes-message");
    assert_eq!(b.kind, MessageKind::Bytes);
    assert!(!b.persistent);
    assert_eq!(
        &b.content.as_ref().unwrap()[..],
        &[0, 1, 2, 0xff, 0, 0, 0, 42]
    );

    let m = message(CLIENT, "map-message");
    let map = PrimitiveMap::decode(m.content.as_ref().unwrap(), 8)
        .unwrap()
        .unwrap();
    assert_eq!(map.get("m_bool"), Some(&PrimitiveValue::Bool(false)));
    assert_eq!(
        map.get("m_char"),
        Some(&PrimitiveValue::Char(u16::from(b'x')))
    );
    assert_eq!(
        map.get("m_string"),
        Some(&PrimitiveValue::String("seven".into()))
    );
    assert_eq!(
        map.get("m_bytes"),
        Some(&PrimitiveValue::Bytes(Bytes::from_static(&[8, 9])))
    );
    assert_eq!(map.entries.len(), 10);

    let s = message(CLIENT, "stream-message");
    let items = decode_stream_body(s.content.as_ref().unwrap(), 8).unwrap();
    assert_eq!(
        items,
        vec![
            PrimitiveValue::Bool(true),
            PrimitiveValue::Byte(1),
            PrimitiveValue::Char(u16::from(b'y')),
            PrimitiveValue::Short(2),
            PrimitiveValue::Int(3),
            PrimitiveValue::Long(4),
            PrimitiveValue::Float(5.5),
            PrimitiveValue::Double(6.5),
            PrimitiveValue::String("seven".into()),
            PrimitiveValue::Bytes(Bytes::from_static(&[8, 9])),
            PrimitiveValue::Null,
        ]
    );
    let mut again = BytesMut::new();
    encode_stream_body(&items, &mut again).unwrap();
    assert_eq!(&again[..], &s.content.as_ref().unwrap()[..]);

    let o = message(CLIENT, "object-message");
    assert_eq!(o.kind, MessageKind::Object);
    // A Java serialization stream.
    assert_eq!(&o.content.as_ref().unwrap()[..2], &[0xac, 0xed]);

    let plain = message(CLIENT, "message");
    assert_eq!(plain.kind, MessageKind::Message);
    assert!(plain.content.is_none());
    assert_eq!(
        properties(&plain).get("only"),
        Some(&PrimitiveValue::String("headers".into()))
    );
}

#[test]
fn consumer_producer_and_ack_commands() {
    let Command::ConsumerInfo(c) = golden(CLIENT, "consumer-info") else {
        panic!()
    };
    assert!(c.header.response_required);
    assert!(c.consumer_id.is_some());
    assert_eq!(c.prefetch_size, 1000);
    let Command::ProducerInfo(p) = golden(CLIENT, "producer-info") else {
        panic!()
    };
    assert!(p.producer_id.is_some());
    let Command::MessageAck(a) = golden(CLIENT, "message-ack") else {
        panic!()
    };
    assert!(a.consumer_id.is_some());
    assert!(a.last_message_id.is_some());
    let Command::MessagePull(pull) = golden(CLIENT, "message-pull") else {
        panic!()
    };
    assert_eq!(pull.destination, Some(Destination::queue("capture.pull")));
    let Command::RemoveSubscriptionInfo(r) = golden(CLIENT, "remove-subscription-info") else {
        panic!()
    };
    assert_eq!(r.subscription_name.as_deref(), Some("capture-sub"));
    assert_eq!(r.client_id.as_deref(), Some("capture-client"));
    let Command::ShutdownInfo(_) = golden(CLIENT, "shutdown-info") else {
        panic!()
    };
}

#[test]
fn transaction_and_temporary_destination_commands() {
    let Command::TransactionInfo(t) = golden(CLIENT, "transaction-info") else {
        panic!()
    };
    assert_eq!(t.transaction_type, transaction_type::BEGIN);
    assert!(matches!(t.transaction_id, Some(TransactionId::Local(_))));
    let Command::DestinationInfo(d) = golden(CLIENT, "destination-info") else {
        panic!()
    };
    let dest = d.destination.unwrap();
    assert!(dest.kind.is_temporary(), "{dest}");
}

#[test]
fn exception_response_carries_java_class_and_message() {
    let Command::ExceptionResponse(e) = golden(BROKER, "exception-response") else {
        panic!()
    };
    let ex = e.exception.unwrap();
    assert_eq!(
        ex.class_name.as_deref(),
        Some("javax.jms.InvalidClientIDException")
    );
    assert!(ex.message.unwrap().contains("capture-client"));
}

#[test]
fn message_dispatch_carries_the_message() {
    let Command::MessageDispatch(d) = golden(BROKER, "message-dispatch") else {
        panic!()
    };
    assert!(d.consumer_id.is_some());
    let m = d.message.unwrap();
    assert!(m.destination.is_some());
}

#[test]
fn codec_decodes_a_session_fed_byte_by_byte() {
    let format = negotiated(12);
    let bytes = read(&format!("{CLIENT}_v12_session.bin"));
    let whole = session(&format!("{CLIENT}_v12_session.bin"), &format);
    let mut codec = OpenWireCodec::new(format);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[b]);
        while let Some(c) = codec.decode(&mut buf).unwrap() {
            got.push(c);
        }
    }
    assert_eq!(got, whole);
}
