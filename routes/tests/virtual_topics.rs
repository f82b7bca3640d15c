//! Virtual topics (`engine/virtual_topic.rs`): publishes to `VirtualTopic.<t>` reach the
//! `Consumer.<name>.VirtualTopic.<t>` queues, by destination or through `amq.topic`, with and
//! without ActiveMQ's `selectorAware`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Delivery, Destination, Engine, EngineConfig, Message,
    PropertyValue, SessionEvent, VirtualTopics,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn open(dir: &std::path::Path) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(EngineConfig::default(), options).expect("engine opens")
}

fn message(body: &str, colour: &str) -> Message {
    let mut m = Message {
        body: Bytes::copy_from_slice(body.as_bytes()),
        priority: 4,
        persistent: true,
        ..Message::default()
    };
    m.properties
        .insert("colour".into(), PropertyValue::String(colour.into()));
    m
}

async fn next(rx: &mut UnboundedReceiver<SessionEvent>) -> Option<Delivery> {
    match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        Ok(Some(SessionEvent::Deliver(d))) => Some(*d),
        Ok(other) => panic!("expected a delivery, got {other:?}"),
        Err(_) => None,
    }
}

async fn drain(rx: &mut UnboundedReceiver<SessionEvent>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(d) = next(rx).await {
        out.push(String::from_utf8_lossy(&d.message.body).into_owned());
    }
    out
}

fn consumer(queue: &str, selector: Option<&str>) -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(ConsumerSource::Queue(queue.into()));
    spec.selector = selector.map(str::to_string);
    spec
}

#[tokio::test]
async fn publishes_reach_every_existing_consumer_queue_and_wait_there() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (producer, _p) = engine.connect(None);
    let topic = Destination::topic("VirtualTopic.orders");
    // Before any consumer queue exists, a publish reaches none (as ActiveMQ).
    producer
        .send(&topic, message("early", "red"))
        .await
        .unwrap();
    let (a, mut a_rx) = engine.connect(None);
    let a_id = a
        .subscribe(consumer("Consumer.A.VirtualTopic.orders", None))
        .unwrap();
    a.unsubscribe(a_id);
    engine
        .declare_queue("Consumer.B.VirtualTopic.orders")
        .unwrap();
    engine
        .declare_queue("Consumer.C.VirtualTopic.other")
        .unwrap();
    producer.send(&topic, message("one", "red")).await.unwrap();
    // Through amq.topic too (an AMQP 0-9-1 publish).
    let mut tx = routes::Transaction::new();
    tx.publish_to_exchange("amq.topic", "VirtualTopic.orders", message("two", "blue"));
    producer.commit(tx).await.unwrap().await.unwrap();
    assert!(drain(&mut a_rx).await.is_empty());
    for queue in [
        "Consumer.A.VirtualTopic.orders",
        "Consumer.B.VirtualTopic.orders",
    ] {
        let (c, mut rx) = engine.connect(None);
        c.subscribe(consumer(queue, None)).unwrap();
        assert_eq!(drain(&mut rx).await, ["one", "two"], "{queue}");
    }
    let (c, mut rx) = engine.connect(None);
    c.subscribe(consumer("Consumer.C.VirtualTopic.other", None))
        .unwrap();
    assert!(drain(&mut rx).await.is_empty());
}

#[tokio::test]
async fn without_selector_awareness_unselected_messages_wait_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (producer, _p) = engine.connect(None);
    let (red, mut red_rx) = engine.connect(None);
    red.subscribe(consumer(
        "Consumer.A.VirtualTopic.paint",
        Some("colour = 'red'"),
    ))
    .unwrap();
    let topic = Destination::topic("VirtualTopic.paint");
    for (body, colour) in [("r1", "red"), ("b1", "blue"), ("r2", "red")] {
        producer.send(&topic, message(body, colour)).await.unwrap();
    }
    assert_eq!(drain(&mut red_rx).await, ["r1", "r2"]);
    assert_eq!(
        engine
            .queue_info("Consumer.A.VirtualTopic.paint")
            .unwrap()
            .ready,
        1,
        "the blue message waits"
    );
}

#[tokio::test]
async fn selector_aware_queues_take_only_what_a_current_consumer_selects() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.set_virtual_topics(VirtualTopics {
        selector_aware: true,
        ..VirtualTopics::default()
    });
    let (producer, _p) = engine.connect(None);
    let (red, mut red_rx) = engine.connect(None);
    red.subscribe(consumer(
        "Consumer.A.VirtualTopic.paint",
        Some("colour = 'red'"),
    ))
    .unwrap();
    let (green, mut green_rx) = engine.connect(None);
    green
        .subscribe(consumer(
            "Consumer.A.VirtualTopic.paint",
            Some("colour = 'green'"),
        ))
        .unwrap();
    // A queue with a consumer without selector takes everything.
    let (all, mut all_rx) = engine.connect(None);
    all.subscribe(consumer("Consumer.B.VirtualTopic.paint", None))
        .unwrap();
    // A queue without consumers takes nothing.
    engine
        .declare_queue("Consumer.C.VirtualTopic.paint")
        .unwrap();
    let topic = Destination::topic("VirtualTopic.paint");
    for (body, colour) in [("r1", "red"), ("b1", "blue"), ("g1", "green")] {
        producer.send(&topic, message(body, colour)).await.unwrap();
    }
    assert_eq!(drain(&mut red_rx).await, ["r1"]);
    assert_eq!(drain(&mut green_rx).await, ["g1"]);
    assert_eq!(drain(&mut all_rx).await, ["r1", "b1", "g1"]);
    let info = engine.queue_info("Consumer.A.VirtualTopic.paint").unwrap();
    assert_eq!(info.ready, 0, "the blue message was never enqueued");
    let idle = engine.queue_info("Consumer.C.VirtualTopic.paint").unwrap();
    assert_eq!(idle.ready, 0);
}

#[tokio::test]
async fn disabled_virtual_topics_are_plain_topics() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.set_virtual_topics(VirtualTopics {
        enabled: false,
        ..VirtualTopics::default()
    });
    engine.declare_queue("Consumer.A.VirtualTopic.x").unwrap();
    let (producer, _p) = engine.connect(None);
    producer
        .send(&Destination::topic("VirtualTopic.x"), message("m", "red"))
        .await
        .unwrap();
    assert_eq!(
        engine
            .queue_info("Consumer.A.VirtualTopic.x")
            .unwrap()
            .ready,
        0
    );
}

#[tokio::test]
async fn custom_names_as_activemq_name_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.set_virtual_topics(VirtualTopics {
        topic_pattern: "events.>".into(),
        consumer_prefix: "VirtualTopicConsumers.*.".into(),
        ..VirtualTopics::default()
    });
    engine
        .declare_queue("VirtualTopicConsumers.billing.events.orders")
        .unwrap();
    engine
        .declare_queue("Consumer.A.VirtualTopic.orders")
        .unwrap();
    let (producer, _p) = engine.connect(None);
    for topic in ["events.orders", "VirtualTopic.orders"] {
        producer
            .send(&Destination::topic(topic), message(topic, "red"))
            .await
            .unwrap();
    }
    let ready = |q: &str| engine.queue_info(q).unwrap().ready;
    assert_eq!(ready("VirtualTopicConsumers.billing.events.orders"), 1);
    assert_eq!(
        ready("Consumer.A.VirtualTopic.orders"),
        0,
        "default naming is off"
    );
}
