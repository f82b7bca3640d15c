//! Black-box AMQP 0-9-1 tests with a third-party Rust client, `lapin` 2, against the real
//! `gateway` binary: publisher confirms, consume and ack, properties and headers round trip,
//! topic exchange bindings, confirmed persistent messages surviving a crash (SIGKILL), and a
//! stream queue read from an offset, AMQPLAIN login, a headers table with every field type,
//! exchange-to-exchange bindings with a mandatory return, transactions, and nack with requeue.

#[path = "support/lapin_values.rs"]
mod lapin_values;
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    ConfirmSelectOptions, ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use support::{TestGateway, WAIT};

async fn connect(gw: &TestGateway) -> Connection {
    connect_uri(&format!(
        "amqp://guest:guest@127.0.0.1:{}/%2f",
        gw.ports.amqp
    ))
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn connect_uri(uri: &str) -> lapin::Result<Connection> {
    tokio::time::timeout(
        WAIT,
        Connection::connect(uri, ConnectionProperties::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("connect timed out"))
}

async fn declare(ch: &Channel, queue: &str) {
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("queue.declare {queue}: {e}"));
}

/// Publishes with confirms on; panics unless the broker acks.
async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirm = ch
        .basic_publish(exchange, key, BasicPublishOptions::default(), body, props)
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"))
        .await
        .unwrap_or_else(|e| panic!("confirm: {e}"));
    assert!(confirm.is_ack(), "publish not acked: {confirm:?}");
}

#[tokio::test]
async fn lapin_confirms_consume_ack_and_properties() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select: {e}"));
    declare(&ch, "lapin-q").await;
    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongInt(42));
    headers.insert("s".into(), AMQPValue::LongString("text".into()));
    headers.insert("b".into(), AMQPValue::Boolean(true));
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_correlation_id(ShortString::from("corr-7"))
        .with_priority(3)
        .with_headers(headers.clone());
    for i in 0..10 {
        publish_confirmed(
            &ch,
            "",
            "lapin-q",
            format!("m{i}").as_bytes(),
            props.clone(),
        )
        .await;
    }
    let mut consumer = ch
        .basic_consume(
            "lapin-q",
            "lapin-consumer",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("basic.consume: {e}"));
    for i in 0..10 {
        let delivery = tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("no delivery {i}"))
            .unwrap_or_else(|| panic!("consumer ended"))
            .unwrap_or_else(|e| panic!("delivery: {e}"));
        assert_eq!(delivery.data, format!("m{i}").into_bytes());
        assert_eq!(delivery.routing_key.as_str(), "lapin-q");
        assert!(!delivery.redelivered);
        let p = &delivery.properties;
        assert_eq!(p.delivery_mode(), &Some(2));
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(
            p.correlation_id().as_ref().map(|s| s.as_str()),
            Some("corr-7")
        );
        assert_eq!(p.priority(), &Some(3));
        assert_eq!(p.headers().as_ref(), Some(&headers));
        delivery
            .ack(BasicAckOptions::default())
            .await
            .unwrap_or_else(|e| panic!("ack: {e}"));
    }
    let _ = conn.close(200, "bye").await;
}

#[tokio::test]
async fn lapin_topic_binding_and_get() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    declare(&ch, "lapin-topic").await;
    ch.queue_bind(
        "lapin-topic",
        "amq.topic",
        "metrics.*.cpu",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("queue.bind: {e}"));
    let props = BasicProperties::default();
    ch.basic_publish(
        "amq.topic",
        "metrics.host1.cpu",
        BasicPublishOptions::default(),
        b"0.93",
        props.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("publish: {e}"));
    ch.basic_publish(
        "amq.topic",
        "metrics.host1.mem",
        BasicPublishOptions::default(),
        b"ignored",
        props,
    )
    .await
    .unwrap_or_else(|e| panic!("publish: {e}"));
    let deadline = Instant::now() + WAIT;
    let got = loop {
        let got = ch
            .basic_get("lapin-topic", BasicGetOptions { no_ack: true })
            .await
            .unwrap_or_else(|e| panic!("basic.get: {e}"));
        if let Some(message) = got {
            break message;
        }
        assert!(Instant::now() < deadline, "nothing routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(got.delivery.data, b"0.93");
    assert_eq!(got.delivery.exchange.as_str(), "amq.topic");
    assert_eq!(got.delivery.routing_key.as_str(), "metrics.host1.cpu");
    assert_eq!(got.message_count, 0);
    let _ = conn.close(200, "bye").await;
}

#[tokio::test]
async fn lapin_confirmed_persistent_messages_survive_a_crash() {
    let mut gw = TestGateway::start();
    {
        let conn = connect(&gw).await;
        let ch = conn
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("confirm.select: {e}"));
        declare(&ch, "lapin-durable").await;
        for i in 0..50 {
            publish_confirmed(
                &ch,
                "",
                "lapin-durable",
                format!("d{i}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await;
        }
        // The gateway dies with the connection still open: every confirmed message is on disk.
        gw.crash_and_restart();
    }
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bodies = Vec::new();
    while let Some(message) = ch
        .basic_get("lapin-durable", BasicGetOptions { no_ack: true })
        .await
        .unwrap_or_else(|e| panic!("basic.get: {e}"))
    {
        bodies.push(String::from_utf8_lossy(&message.delivery.data).into_owned());
    }
    let want: Vec<String> = (0..50).map(|i| format!("d{i}")).collect();
    assert_eq!(bodies, want);
    let _ = conn.close(200, "bye").await;
}

/// Consumes `count` deliveries from a stream queue starting at `offset`, acking each; returns
/// (x-stream-offset header, body) pairs.
async fn read_stream(
    ch: &Channel,
    queue: &str,
    offset: AMQPValue,
    count: usize,
) -> Vec<(i64, Vec<u8>)> {
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), offset);
    let mut consumer = ch
        .basic_consume(queue, "", BasicConsumeOptions::default(), args)
        .await
        .unwrap_or_else(|e| panic!("basic.consume: {e}"));
    let mut got = Vec::new();
    while got.len() < count {
        let delivery = tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("no delivery after {}", got.len()))
            .unwrap_or_else(|| panic!("consumer ended"))
            .unwrap_or_else(|e| panic!("delivery: {e}"));
        let header = delivery.properties.headers().as_ref().and_then(|h| {
            h.inner()
                .iter()
                .find(|(k, _)| k.as_str() == "x-stream-offset")
                .map(|(_, v)| v.clone())
        });
        let offset = match header {
            Some(AMQPValue::LongLongInt(n)) => n,
            other => panic!("x-stream-offset header: {other:?}"),
        };
        got.push((offset, delivery.data.clone()));
        delivery
            .ack(BasicAckOptions::default())
            .await
            .unwrap_or_else(|e| panic!("ack: {e}"));
    }
    got
}

#[tokio::test]
async fn lapin_stream_queue_replays_from_an_offset() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select: {e}"));
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    ch.queue_declare(
        "lapin-stream",
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("queue.declare: {e}"));
    for i in 0..3 {
        publish_confirmed(
            &ch,
            "",
            "lapin-stream",
            format!("s{i}").as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await;
    }
    ch.basic_qos(10, lapin::options::BasicQosOptions::default())
        .await
        .unwrap_or_else(|e| panic!("basic.qos: {e}"));
    let first = read_stream(
        &ch,
        "lapin-stream",
        AMQPValue::LongString("first".into()),
        3,
    )
    .await;
    let expected: Vec<(i64, Vec<u8>)> = (0..3).map(|i| (i, format!("s{i}").into_bytes())).collect();
    assert_eq!(first, expected);
    // Acknowledged deliveries stay in the stream: a consumer from offset 1 reads them again.
    let again = read_stream(&ch, "lapin-stream", AMQPValue::LongLongInt(1), 2).await;
    assert_eq!(again, expected[1..].to_vec());
    let _ = conn.close(200, "bye").await;
}

/// lapin logs in with AMQPLAIN (LOGIN and PASSWORD as long strings in a table, RabbitMQ's
/// Qpid-era mechanism) and works as with PLAIN; a wrong password is refused.
#[tokio::test]
async fn lapin_logs_in_with_amqplain() {
    let gw = TestGateway::start();
    let uri = |password: &str| {
        format!(
            "amqp://guest:{password}@127.0.0.1:{}/%2f?auth_mechanism=amqplain",
            gw.ports.amqp
        )
    };
    let conn = connect_uri(&uri("guest"))
        .await
        .unwrap_or_else(|e| panic!("AMQPLAIN login: {e}"));
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select: {e}"));
    declare(&ch, "lapin-amqplain").await;
    publish_confirmed(
        &ch,
        "",
        "lapin-amqplain",
        b"hello",
        BasicProperties::default(),
    )
    .await;
    let got = ch
        .basic_get("lapin-amqplain", BasicGetOptions { no_ack: true })
        .await
        .unwrap_or_else(|e| panic!("basic.get: {e}"))
        .unwrap_or_else(|| panic!("nothing in the queue"));
    assert_eq!(got.delivery.data, b"hello");
    // The login is the AMQPLAIN LOGIN: RabbitMQ checks user-id against it.
    publish_confirmed(
        &ch,
        "",
        "lapin-amqplain",
        b"mine",
        BasicProperties::default().with_user_id(ShortString::from("guest")),
    )
    .await;
    let _ = conn.close(200, "bye").await;
    let refused = connect_uri(&uri("wrong")).await;
    assert!(refused.is_err(), "a wrong AMQPLAIN password was accepted");
}

/// Every field-table value type lapin writes comes back to lapin equal, type for type (the
/// gateway keeps an AMQP publisher's properties as sent); tests/amqp091/test_properties.py
/// reads the same table with pika through the `lapin_probe` example.
#[tokio::test]
async fn lapin_every_field_type_round_trips() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select: {e}"));
    declare(&ch, "lapin-types").await;
    let headers = lapin_values::every_field_type();
    publish_confirmed(
        &ch,
        "",
        "lapin-types",
        b"typed",
        BasicProperties::default().with_headers(headers.clone()),
    )
    .await;
    let got = ch
        .basic_get("lapin-types", BasicGetOptions { no_ack: true })
        .await
        .unwrap_or_else(|e| panic!("basic.get: {e}"))
        .unwrap_or_else(|| panic!("nothing in the queue"));
    let back = got
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_else(|| panic!("no headers"));
    for (name, value) in headers.inner() {
        assert_eq!(back.inner().get(name), Some(value), "header {name}");
    }
    assert_eq!(back, headers);
    let _ = conn.close(200, "bye").await;
}

/// Gets one message, waiting for it to arrive.
async fn get_one(ch: &Channel, queue: &str, no_ack: bool) -> lapin::message::BasicGetMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = ch
            .basic_get(queue, BasicGetOptions { no_ack })
            .await
            .unwrap_or_else(|e| panic!("basic.get {queue}: {e}"));
        if let Some(message) = got {
            return message;
        }
        assert!(Instant::now() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A declared topic exchange bound to `amq.direct` (exchange-to-exchange) routes to a bound
/// queue; an unroutable mandatory publish comes back to lapin as basic.return 312 NO_ROUTE
/// before its confirm.
#[tokio::test]
async fn lapin_exchange_to_exchange_binding_and_mandatory_return() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirm.select: {e}"));
    ch.exchange_declare(
        "lapin-events",
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("exchange.declare: {e}"));
    ch.exchange_bind(
        "lapin-events",
        "amq.direct",
        "orders",
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("exchange.bind: {e}"));
    declare(&ch, "lapin-e2e").await;
    ch.queue_bind(
        "lapin-e2e",
        "lapin-events",
        "#",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("queue.bind: {e}"));
    publish_confirmed(
        &ch,
        "amq.direct",
        "orders",
        b"via two exchanges",
        BasicProperties::default(),
    )
    .await;
    let got = get_one(&ch, "lapin-e2e", true).await;
    assert_eq!(got.delivery.data, b"via two exchanges");
    assert_eq!(got.delivery.exchange.as_str(), "amq.direct");
    let confirm = ch
        .basic_publish(
            "amq.direct",
            "nobody-listens",
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"unroutable",
            BasicProperties::default().with_correlation_id(ShortString::from("r-1")),
        )
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"))
        .await
        .unwrap_or_else(|e| panic!("confirm: {e}"));
    assert!(confirm.is_ack(), "{confirm:?}");
    let returned = confirm
        .take_message()
        .unwrap_or_else(|| panic!("no basic.return"));
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.data, b"unroutable");
    assert_eq!(
        returned
            .delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("r-1")
    );
    let _ = conn.close(200, "bye").await;
}

/// tx.select / commit / rollback from lapin: a rolled-back publish never arrives, a committed
/// one does; a nack with requeue brings a delivery back flagged redelivered.
#[tokio::test]
async fn lapin_transactions_and_nack_requeue() {
    let gw = TestGateway::start();
    let conn = connect(&gw).await;
    let ch = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    declare(&ch, "lapin-tx").await;
    ch.tx_select()
        .await
        .unwrap_or_else(|e| panic!("tx.select: {e}"));
    for body in [&b"rolled back"[..], b"committed"] {
        ch.basic_publish(
            "",
            "lapin-tx",
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
        if body == b"rolled back" {
            ch.tx_rollback()
                .await
                .unwrap_or_else(|e| panic!("tx.rollback: {e}"));
        }
    }
    ch.tx_commit()
        .await
        .unwrap_or_else(|e| panic!("tx.commit: {e}"));
    let other = conn
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = get_one(&other, "lapin-tx", false).await;
    assert_eq!(first.delivery.data, b"committed");
    assert!(!first.delivery.redelivered);
    assert_eq!(first.message_count, 0, "the rolled-back publish arrived");
    first
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .unwrap_or_else(|e| panic!("nack: {e}"));
    let again = get_one(&other, "lapin-tx", false).await;
    assert_eq!(again.delivery.data, b"committed");
    assert!(again.delivery.redelivered);
    again
        .delivery
        .ack(BasicAckOptions::default())
        .await
        .unwrap_or_else(|e| panic!("ack: {e}"));
    let _ = conn.close(200, "bye").await;
}
