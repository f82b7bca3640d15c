//! Golden bytes: AMQP 0-9-1 frames captured between the real pika 1.3.2
//! client and a real RabbitMQ 3.10.8 server by `testdata/amqp091/capture.py`
//! (a recording proxy). Every file is decoded, checked field by field, and
//! re-encoded to the identical bytes; both whole recorded directions are
//! decoded through the codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use codecs::amqp091::*;
use tokio_util::codec::Decoder;

const PIKA: &str = "pika-1.3.2";
const RABBIT: &str = "rabbitmq-3.10.8";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/amqp091")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Decodes the single frame in `<peer>_<name>.bin`, checks every byte is
/// consumed and that it re-encodes to the same bytes.
fn golden(peer: &str, name: &str) -> Frame {
    let file = format!("{peer}_{name}.bin");
    let bytes = read(&file);
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = decode_frame(&mut buf, &Amqp091Limits::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .unwrap_or_else(|| panic!("{file}: incomplete"));
    assert!(buf.is_empty(), "{file}: {} bytes left", buf.len());
    let again = frame.to_bytes().unwrap();
    assert_eq!(again, Bytes::from(bytes), "{file}: re-encoding differs");
    frame
}

fn method(peer: &str, name: &str) -> (u16, Method) {
    match golden(peer, name) {
        Frame {
            channel,
            payload: FramePayload::Method(m),
        } => (channel, m),
        other => panic!("{peer}_{name}: not a method: {other:?}"),
    }
}

fn header(peer: &str, name: &str) -> (u16, ContentHeader) {
    match golden(peer, name) {
        Frame {
            channel,
            payload: FramePayload::Header(h),
        } => (channel, *h),
        other => panic!("{peer}_{name}: not a header: {other:?}"),
    }
}

fn body(peer: &str, name: &str) -> (u16, Bytes) {
    match golden(peer, name) {
        Frame {
            channel,
            payload: FramePayload::Body(b),
        } => (channel, b),
        other => panic!("{peer}_{name}: not a body: {other:?}"),
    }
}

const fn s(v: &'static str) -> ShortStr {
    ShortStr::from_static(v)
}

fn ls(v: &'static str) -> Bytes {
    Bytes::from_static(v.as_bytes())
}

fn text(v: &'static str) -> FieldValue {
    FieldValue::LongString(ls(v))
}

#[test]
fn every_captured_frame_decodes_and_reencodes_identically() {
    let mut count = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        if stem.ends_with("_session") || stem.contains("protocol-header") {
            continue;
        }
        let (peer, frame) = stem.split_once('_').unwrap();
        golden(peer, frame);
        count += 1;
    }
    assert!(count >= 70, "only {count} golden frames");
}

#[test]
fn every_prefix_of_a_captured_session_needs_more_bytes() {
    for (name, skip) in [
        (format!("{PIKA}_session.bin"), 8),
        (format!("{RABBIT}_session.bin"), 0),
    ] {
        let bytes = read(&name);
        let mut buf = BytesMut::from(&bytes[skip..]);
        let mut start = 0;
        while !buf.is_empty() {
            let whole = buf.clone();
            let frame = decode_frame(&mut buf, &Amqp091Limits::default())
                .unwrap()
                .unwrap();
            let len = whole.len() - buf.len();
            for cut in 0..len {
                let mut part = BytesMut::from(&whole[..cut]);
                assert_eq!(
                    decode_frame(&mut part, &Amqp091Limits::default()),
                    Ok(None),
                    "{name}: frame at {start} cut at {cut} ({frame:?})"
                );
                assert_eq!(part.len(), cut);
            }
            start += len;
        }
    }
}

#[test]
fn pika_session_through_the_server_codec() {
    let bytes = read(&format!("{PIKA}_session.bin"));
    let mut codec = Amqp091Codec::server(Amqp091Limits::default());
    let mut buf = BytesMut::from(&bytes[..]);
    let first = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        first,
        Amqp091Item::ProtocolHeader(ProtocolHeader::AMQP_0_9_1)
    );
    let frames = drain(&mut codec, &mut buf);
    assert_reencodes(&frames, &bytes[8..]);

    // The 10240-byte body, published after tune-ok set frame_max 4096, came
    // in body frames of at most 4096 - 8 bytes.
    let sizes: Vec<usize> = frames
        .iter()
        .filter_map(|f| match &f.payload {
            FramePayload::Body(b) if b.len() > 100 => Some(b.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [4088, 4088, 2064]);
    let heartbeats = frames
        .iter()
        .filter(|f| f.payload == FramePayload::Heartbeat)
        .count();
    assert!(heartbeats >= 1, "no client heartbeat recorded");
    let last = frames.last().unwrap();
    assert_eq!(last.payload.frame_type(), FRAME_METHOD);
    assert!(matches!(
        &last.payload,
        FramePayload::Method(Method::ConnectionClose(_))
    ));
}

#[test]
fn rabbitmq_session_through_the_client_codec() {
    let bytes = read(&format!("{RABBIT}_session.bin"));
    let mut codec = Amqp091Codec::client(Amqp091Limits::default());
    let mut buf = BytesMut::from(&bytes[..]);
    let frames = drain(&mut codec, &mut buf);
    assert_reencodes(&frames, &bytes);
    assert!(matches!(
        &frames[0].payload,
        FramePayload::Method(Method::ConnectionStart(_))
    ));
    assert!(frames.iter().any(|f| f.payload == FramePayload::Heartbeat));
    assert!(matches!(
        &frames.last().unwrap().payload,
        FramePayload::Method(Method::ConnectionCloseOk(_))
    ));
}

/// Feeds `buf` through `codec` in 7-byte pieces, as a slow socket would.
fn drain(codec: &mut Amqp091Codec, buf: &mut BytesMut) -> Vec<Frame> {
    let all = buf.split();
    let mut frames = Vec::new();
    for piece in all.chunks(7) {
        buf.extend_from_slice(piece);
        while let Some(item) = codec.decode(buf).unwrap() {
            match item {
                Amqp091Item::Frame(f) => frames.push(f),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    frames
}

fn assert_reencodes(frames: &[Frame], wire: &[u8]) {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out).unwrap();
    }
    assert_eq!(&out[..], wire, "session re-encoding differs");
}

#[test]
fn protocol_headers() {
    let mut buf = BytesMut::from(&read(&format!("{PIKA}_protocol-header.bin"))[..]);
    assert_eq!(
        ProtocolHeader::decode(&mut buf),
        Some(ProtocolHeader::AMQP_0_9_1)
    );
    assert!(buf.is_empty());
    // Sent `AMQP 0 1 0 0` (AMQP 1.0), RabbitMQ answered with the header it
    // supports and closed.
    let reply = read(&format!("{RABBIT}_protocol-header-reply.bin"));
    assert_eq!(reply, ProtocolHeader::AMQP_0_9_1_BYTES);
    let mut buf = BytesMut::from(&b"AMQP\x00\x01\x00\x00"[..]);
    let header = ProtocolHeader::decode(&mut buf).unwrap();
    assert!(!header.is_amqp091());
    assert_eq!(
        header,
        ProtocolHeader::Amqp {
            protocol_id: 0,
            major: 1,
            minor: 0,
            revision: 0
        }
    );
}

#[test]
fn connection_start_from_rabbitmq() {
    let (channel, m) = method(RABBIT, "connection-start");
    assert_eq!(channel, 0);
    let capabilities = FieldTable::new()
        .with("publisher_confirms", true)
        .with("exchange_exchange_bindings", true)
        .with("basic.nack", true)
        .with("consumer_cancel_notify", true)
        .with("connection.blocked", true)
        .with("consumer_priorities", true)
        .with("authentication_failure_close", true)
        .with("per_consumer_qos", true)
        .with("direct_reply_to", true);
    let server_properties = FieldTable::new()
        .with("capabilities", capabilities)
        .with("cluster_name", "amqp091capture@vm")
        .with(
            "copyright",
            "Copyright (c) 2007-2022 VMware, Inc. or its affiliates.",
        )
        .with(
            "information",
            "Licensed under the MPL 2.0. Website: https://rabbitmq.com",
        )
        .with("platform", "Erlang/OTP 25.2.3")
        .with("product", "RabbitMQ")
        .with("version", "3.10.8");
    assert_eq!(
        m,
        Method::ConnectionStart(ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties,
            mechanisms: ls("PLAIN AMQPLAIN"),
            locales: ls("en_US"),
        })
    );
}

#[test]
fn connection_start_ok_from_pika_uses_plain() {
    let (channel, m) = method(PIKA, "connection-start-ok");
    assert_eq!(channel, 0);
    let capabilities = FieldTable::new()
        .with("authentication_failure_close", true)
        .with("basic.nack", true)
        .with("connection.blocked", true)
        .with("consumer_cancel_notify", true)
        .with("publisher_confirms", true);
    let Method::ConnectionStartOk(start_ok) = m else {
        panic!("{m:?}");
    };
    let mut props = start_ok.client_properties.clone();
    // The platform names the Python that ran the capture.
    let platform = props.get("platform").and_then(FieldValue::as_str).unwrap();
    assert!(platform.starts_with("Python 3."), "{platform}");
    props.insert(s("platform"), "Python");
    let expected = FieldTable::new()
        .with("product", "Pika Python Client Library")
        .with("platform", "Python")
        .with("capabilities", capabilities)
        .with("information", "See http://pika.rtfd.org")
        .with("version", "1.3.2")
        .with("connection_name", "amqp091-golden");
    assert_eq!(props, expected);
    assert_eq!(start_ok.mechanism, "PLAIN");
    assert_eq!(start_ok.response, ls("\0guest\0guest"));
    assert_eq!(start_ok.locale, "en_US");
}

#[test]
fn tune_and_open() {
    assert_eq!(
        method(RABBIT, "connection-tune"),
        (
            0,
            ConnectionTune {
                channel_max: 2047,
                frame_max: 131072,
                heartbeat: 60
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "connection-tune-ok"),
        (
            0,
            ConnectionTuneOk {
                channel_max: 64,
                frame_max: 4096,
                heartbeat: 2
            }
            .into()
        )
    );
    // pika sets the reserved `insist` bit.
    assert_eq!(
        method(PIKA, "connection-open"),
        (
            0,
            ConnectionOpen {
                virtual_host: s("/"),
                capabilities: s(""),
                insist: true
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "connection-open-ok"),
        (0, ConnectionOpenOk::default().into())
    );
    assert_eq!(
        method(PIKA, "channel-open"),
        (1, ChannelOpen::default().into())
    );
    assert_eq!(
        method(RABBIT, "channel-open-ok"),
        (1, ChannelOpenOk::default().into())
    );
    assert_eq!(
        method(PIKA, "connection-update-secret"),
        (
            0,
            ConnectionUpdateSecret {
                new_secret: ls("guest"),
                reason: s("rotated")
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "connection-update-secret-ok"),
        (0, ConnectionUpdateSecretOk {}.into())
    );
}

#[test]
fn declarations_and_bindings() {
    assert_eq!(
        method(PIKA, "exchange-declare"),
        (
            1,
            ExchangeDeclare {
                exchange: s("gw.direct"),
                exchange_type: s("direct"),
                durable: true,
                ..Default::default()
            }
            .into()
        )
    );
    let arguments = FieldTable::new()
        .with("x-message-ttl", 60000i32)
        .with("x-dead-letter-exchange", "gw.dlx")
        .with("x-max-priority", 10i32);
    assert_eq!(
        method(PIKA, "queue-declare"),
        (
            1,
            QueueDeclare {
                queue: s("gw.q"),
                durable: true,
                arguments,
                ..Default::default()
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "queue-declare-ok"),
        (
            1,
            QueueDeclareOk {
                queue: s("gw.q"),
                message_count: 0,
                consumer_count: 0
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "queue-bind"),
        (
            1,
            QueueBind {
                queue: s("gw.q"),
                exchange: s("gw.direct"),
                routing_key: s("rk"),
                ..Default::default()
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "queue-unbind"),
        (
            1,
            QueueUnbind {
                queue: s("gw.q"),
                exchange: s("gw.direct"),
                routing_key: s("rk"),
                ..Default::default()
            }
            .into()
        )
    );
    for (name, m) in [
        (
            "exchange-bind",
            Method::from(ExchangeBind {
                destination: s("gw.direct"),
                source: s("gw.src"),
                routing_key: s("#"),
                ..Default::default()
            }),
        ),
        (
            "exchange-unbind",
            ExchangeUnbind {
                destination: s("gw.direct"),
                source: s("gw.src"),
                routing_key: s("#"),
                ..Default::default()
            }
            .into(),
        ),
        (
            "exchange-delete",
            ExchangeDelete {
                exchange: s("gw.src"),
                ..Default::default()
            }
            .into(),
        ),
        (
            "queue-purge",
            QueuePurge {
                queue: s("gw.q"),
                ..Default::default()
            }
            .into(),
        ),
        (
            "queue-delete",
            QueueDelete {
                queue: s("gw.dlq"),
                ..Default::default()
            }
            .into(),
        ),
    ] {
        assert_eq!(method(PIKA, name), (1, m), "{name}");
    }
    for (name, m) in [
        ("exchange-declare-ok", Method::from(ExchangeDeclareOk {})),
        ("exchange-bind-ok", ExchangeBindOk {}.into()),
        ("exchange-unbind-ok", ExchangeUnbindOk {}.into()),
        ("exchange-delete-ok", ExchangeDeleteOk {}.into()),
        ("queue-bind-ok", QueueBindOk {}.into()),
        ("queue-unbind-ok", QueueUnbindOk {}.into()),
        ("queue-purge-ok", QueuePurgeOk { message_count: 0 }.into()),
        ("queue-delete-ok", QueueDeleteOk { message_count: 1 }.into()),
    ] {
        assert_eq!(method(RABBIT, name), (1, m), "{name}");
    }
}

fn publish_properties() -> BasicProperties {
    let headers = FieldTable::new()
        .with("str", "text é")
        .with("int", 42i32)
        .with("neg", -7i32)
        .with("big", 1i64 << 40)
        .with("bool", true)
        .with(
            "dec",
            Decimal {
                scale: 2,
                value: 314,
            },
        )
        .with("ts", FieldValue::Timestamp(1_704_164_645))
        .with("none", FieldValue::Void)
        .with(
            "bytes",
            FieldValue::ByteArray(Bytes::from_static(b"\0\x01\xff")),
        )
        .with(
            "list",
            vec![
                FieldValue::I32(1),
                text("two"),
                FieldValue::Bool(false),
                FieldValue::Void,
            ],
        )
        .with(
            "nested",
            FieldTable::new()
                .with("a", 1i32)
                .with("b", FieldTable::new().with("c", "deep")),
        );
    BasicProperties {
        content_type: Some(s("application/json")),
        content_encoding: Some(s("utf-8")),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some(s("corr-1")),
        reply_to: Some(s("reply.q")),
        expiration: Some(s("60000")),
        message_id: Some(s("msg-1")),
        timestamp: Some(1_700_000_000),
        message_type: Some(s("order.created")),
        user_id: Some(s("guest")),
        app_id: Some(s("golden")),
        cluster_id: Some(s("c1")),
    }
}

#[test]
fn publish_with_every_property_and_confirm() {
    assert_eq!(
        method(PIKA, "basic-qos"),
        (
            1,
            BasicQos {
                prefetch_size: 0,
                prefetch_count: 10,
                global: false
            }
            .into()
        )
    );
    assert_eq!(method(RABBIT, "basic-qos-ok"), (1, BasicQosOk {}.into()));
    assert_eq!(
        method(PIKA, "confirm-select"),
        (1, ConfirmSelect { no_wait: false }.into())
    );
    assert_eq!(
        method(RABBIT, "confirm-select-ok"),
        (1, ConfirmSelectOk {}.into())
    );
    let (channel, publish) = method(PIKA, "basic-publish");
    assert_eq!(channel, 1);
    assert!(publish.has_content());
    assert_eq!(
        publish,
        BasicPublish {
            ticket: 0,
            exchange: s("gw.direct"),
            routing_key: s("rk"),
            mandatory: false,
            immediate: false
        }
        .into()
    );
    let (channel, h) = header(PIKA, "basic-publish-header");
    assert_eq!(channel, 1);
    assert_eq!(h, ContentHeader::new(17, publish_properties()));
    assert_eq!(h.properties.flags(), 0xfffc, "all 14 property flags");
    assert_eq!(
        body(PIKA, "basic-publish-body"),
        (1, ls("{\"hello\":\"world\"}"))
    );
    // The broker's publisher confirm.
    assert_eq!(
        method(RABBIT, "basic-ack"),
        (
            1,
            BasicAck {
                delivery_tag: 1,
                multiple: false
            }
            .into()
        )
    );
}

#[test]
fn consume_deliver_and_settle() {
    let tag = s("ctag1.3a58f62a88404c6dab4e5e10e61aed1a");
    assert_eq!(
        method(PIKA, "basic-consume"),
        (
            1,
            BasicConsume {
                queue: s("gw.q"),
                consumer_tag: tag.clone(),
                ..Default::default()
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "basic-consume-ok"),
        (
            1,
            BasicConsumeOk {
                consumer_tag: tag.clone()
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "basic-deliver"),
        (
            1,
            BasicDeliver {
                consumer_tag: tag.clone(),
                delivery_tag: 1,
                redelivered: false,
                exchange: s("gw.direct"),
                routing_key: s("rk"),
            }
            .into()
        )
    );
    // RabbitMQ passes the publisher's header through unchanged.
    assert_eq!(
        header(RABBIT, "basic-deliver-header"),
        (1, ContentHeader::new(17, publish_properties()))
    );
    assert_eq!(
        golden(RABBIT, "basic-deliver-header").to_bytes().unwrap(),
        Bytes::from(read(&format!("{PIKA}_basic-publish-header.bin")))
    );
    assert_eq!(
        body(RABBIT, "basic-deliver-body"),
        (1, ls("{\"hello\":\"world\"}"))
    );
    assert_eq!(
        method(PIKA, "basic-ack"),
        (
            1,
            BasicAck {
                delivery_tag: 1,
                multiple: false
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "basic-nack"),
        (
            1,
            BasicNack {
                delivery_tag: 3,
                multiple: false,
                requeue: false
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "basic-reject"),
        (
            1,
            BasicReject {
                delivery_tag: 4,
                requeue: false
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "basic-cancel"),
        (
            1,
            BasicCancel {
                consumer_tag: tag.clone(),
                no_wait: false
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "basic-cancel-ok"),
        (1, BasicCancelOk { consumer_tag: tag }.into())
    );
    assert_eq!(
        method(PIKA, "basic-recover"),
        (1, BasicRecover { requeue: true }.into())
    );
    assert_eq!(
        method(RABBIT, "basic-recover-ok"),
        (1, BasicRecoverOk {}.into())
    );
}

#[test]
fn get_of_a_dead_lettered_message_and_get_empty() {
    assert_eq!(
        method(PIKA, "basic-get"),
        (
            1,
            BasicGet {
                ticket: 0,
                queue: s("gw.dlq"),
                no_ack: false
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "basic-get-ok"),
        (
            1,
            BasicGetOk {
                delivery_tag: 5,
                redelivered: false,
                exchange: s("gw.dlx"),
                routing_key: s("rk"),
                message_count: 1
            }
            .into()
        )
    );
    // The broker's x-death headers: an array of tables with `l`, `S`, `T`
    // and a nested array.
    let (_, h) = header(RABBIT, "basic-get-ok-header");
    let death = FieldTable::new()
        .with("count", 1i64)
        .with("reason", "rejected")
        .with("queue", "gw.q")
        .with("time", FieldValue::Timestamp(1_795_314_029))
        .with("exchange", "gw.direct")
        .with("routing-keys", vec![text("rk")]);
    let headers = FieldTable::new()
        .with("x-death", vec![FieldValue::Table(death)])
        .with("x-first-death-exchange", "gw.direct")
        .with("x-first-death-queue", "gw.q")
        .with("x-first-death-reason", "rejected");
    assert_eq!(
        h,
        ContentHeader::new(
            2,
            BasicProperties {
                headers: Some(headers),
                ..Default::default()
            }
        )
    );
    assert_eq!(body(RABBIT, "basic-get-ok-body"), (1, ls("m0")));
    assert_eq!(
        method(RABBIT, "basic-get-empty"),
        (1, BasicGetEmpty::default().into())
    );
}

#[test]
fn mandatory_publish_returned() {
    assert_eq!(
        method(RABBIT, "basic-return"),
        (
            1,
            BasicReturn {
                reply_code: reply_code::NO_ROUTE,
                reply_text: s("NO_ROUTE"),
                exchange: s("gw.direct"),
                routing_key: s("nowhere")
            }
            .into()
        )
    );
    assert_eq!(
        header(RABBIT, "basic-return-header"),
        (1, ContentHeader::new(10, BasicProperties::default()))
    );
    assert_eq!(body(RABBIT, "basic-return-body"), (1, ls("unroutable")));
}

#[test]
fn transactions() {
    for (name, m) in [
        ("tx-select", Method::from(TxSelect {})),
        ("tx-commit", TxCommit {}.into()),
        ("tx-rollback", TxRollback {}.into()),
    ] {
        assert_eq!(method(PIKA, name), (2, m), "{name}");
    }
    for (name, m) in [
        ("tx-select-ok", Method::from(TxSelectOk {})),
        ("tx-commit-ok", TxCommitOk {}.into()),
        ("tx-rollback-ok", TxRollbackOk {}.into()),
    ] {
        assert_eq!(method(RABBIT, name), (2, m), "{name}");
    }
}

#[test]
fn closing_and_heartbeats() {
    assert_eq!(
        method(PIKA, "channel-close"),
        (
            2,
            ChannelClose {
                reply_code: 0,
                reply_text: s("Normal shutdown"),
                class_id: 0,
                method_id: 0
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "channel-close-ok"),
        (2, ChannelCloseOk {}.into())
    );
    // queue.declare(passive) of a missing queue: the broker closes the channel.
    assert_eq!(
        method(RABBIT, "channel-close"),
        (
            2,
            ChannelClose {
                reply_code: reply_code::NOT_FOUND,
                reply_text: s("NOT_FOUND - no queue 'gw.missing' in vhost '/'"),
                class_id: QueueDeclare::CLASS_ID,
                method_id: QueueDeclare::METHOD_ID
            }
            .into()
        )
    );
    assert_eq!(
        method(PIKA, "channel-close-ok"),
        (2, ChannelCloseOk {}.into())
    );
    assert_eq!(
        method(PIKA, "connection-close"),
        (
            0,
            ConnectionClose {
                reply_code: reply_code::REPLY_SUCCESS,
                reply_text: s("Normal shutdown"),
                class_id: 0,
                method_id: 0
            }
            .into()
        )
    );
    assert_eq!(
        method(RABBIT, "connection-close-ok"),
        (0, ConnectionCloseOk {}.into())
    );
    assert_eq!(golden(PIKA, "heartbeat"), Frame::heartbeat());
    assert_eq!(golden(RABBIT, "heartbeat"), Frame::heartbeat());
    assert_eq!(
        read(&format!("{PIKA}_heartbeat.bin")),
        b"\x08\x00\x00\x00\x00\x00\x00\xce"
    );
}

/// The `connection.close` RabbitMQ sent for a malformed input, next to what
/// this decoder says about the same input.
fn rabbit_close(name: &str) -> ConnectionClose {
    match method(RABBIT, name) {
        (0, Method::ConnectionClose(close)) => close,
        other => panic!("{name}: {other:?}"),
    }
}

fn decode_err(bytes: &[u8]) -> Amqp091DecodeError {
    let mut buf = BytesMut::from(bytes);
    decode_frame(&mut buf, &Amqp091Limits::default()).unwrap_err()
}

#[test]
fn reply_codes_agree_with_rabbitmq() {
    // A method frame on channel 1 whose end octet is 0x00.
    let close = rabbit_close("connection-close-frame-error");
    let err = decode_err(b"\x01\x00\x01\x00\x00\x00\x04\x00\x0a\x00\x32\x00");
    assert_eq!(
        err,
        Amqp091DecodeError::BadFrameEnd {
            offset: 11,
            found: 0
        }
    );
    assert_eq!(close.reply_code, reply_code::FRAME_ERROR);
    assert_eq!(err.reply_code(), close.reply_code);
    assert_eq!(err.method_ids(), (close.class_id, close.method_id));

    // queue.declare whose queue name (5 bytes) overruns the payload.
    let close = rabbit_close("connection-close-cannot-decode");
    let err = decode_err(b"\x01\x00\x01\x00\x00\x00\x09\x00\x32\x00\x0a\x00\x00\x05ab\xce");
    assert_eq!(
        err,
        Amqp091DecodeError::Truncated {
            class_id: 50,
            method_id: 10,
            offset: 14,
            need: 5,
            have: 2
        }
    );
    assert_eq!(
        close.reply_text,
        s("FRAME_ERROR - cannot decode <<0,0,5,97,98>>")
    );
    assert_eq!(err.reply_code(), close.reply_code);
    assert_eq!(err.method_ids(), (close.class_id, close.method_id));

    // A body frame with no content method before it: the frame itself is
    // fine (which frame may follow which is the session's business), and
    // the session answers 505 as RabbitMQ does.
    let close = rabbit_close("connection-close-unexpected-frame");
    assert_eq!(close.reply_code, reply_code::UNEXPECTED_FRAME);
    assert_eq!((close.class_id, close.method_id), (0, 0));
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x00\x00\x05hello\xce"[..]);
    assert_eq!(
        decode_frame(&mut buf, &Amqp091Limits::default()),
        Ok(Some(Frame::body(1, "hello")))
    );
}
