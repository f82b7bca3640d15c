//! Queue mirrors (`Engine::mirror_queue_sends`): a durable copy of every send to matching
//! queues, for routes that copy queue traffic into streams while the queues' own consumers
//! still get every message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Delivery, Destination, Engine, EngineConfig, Message,
    SessionEvent,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn open(dir: &std::path::Path) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(EngineConfig::default(), options).expect("engine opens")
}

fn persistent(body: &str) -> Message {
    Message {
        body: Bytes::copy_from_slice(body.as_bytes()),
        priority: 4,
        persistent: true,
        ..Message::default()
    }
}

async fn next(rx: &mut UnboundedReceiver<SessionEvent>) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(SessionEvent::Deliver(d))) => *d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message.body).into_owned()
}

#[tokio::test]
async fn matching_queue_sends_are_mirrored_durably_and_the_queue_keeps_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        engine
            .mirror_queue_sends("orders.*", "route.orders")
            .unwrap();
        engine
            .mirror_queue_sends("orders.*", "route.orders")
            .unwrap();
        let (producer, _p) = engine.connect(None);
        for (queue, text) in [("orders.eu", "a"), ("orders.us", "b"), ("other", "c")] {
            producer
                .send(&Destination::queue(queue), persistent(text))
                .await
                .unwrap();
        }
        // The queue's own consumer gets its message...
        let (legacy, mut legacy_rx) = engine.connect(None);
        legacy
            .subscribe(ConsumerSpec::new(ConsumerSource::Queue("orders.eu".into())))
            .unwrap();
        let d = next(&mut legacy_rx).await;
        assert_eq!(body(&d), "a");
        legacy.ack(d.consumer, &[d.seq]).unwrap().await.unwrap();
        engine.close().unwrap();
    }
    // ...and the mirror kept a copy of each matching send (registered once), across a restart.
    let engine = open(dir.path());
    let (route, mut route_rx) = engine.connect(None);
    route
        .subscribe(ConsumerSpec::new(ConsumerSource::Queue(
            "route.orders".into(),
        )))
        .unwrap();
    let first = next(&mut route_rx).await;
    let second = next(&mut route_rx).await;
    assert_eq!((body(&first), body(&second)), ("a".into(), "b".into()));
    assert_eq!(
        first.message.address, "orders.eu",
        "the original address is kept"
    );
    assert_eq!(engine.queue_info("route.orders").unwrap().ready, 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), route_rx.recv())
            .await
            .is_err(),
        "one copy per send"
    );
    assert_eq!(engine.queue_info("orders.us").unwrap().ready, 1);
}

#[tokio::test]
async fn a_mirror_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.mirror_queue_sends("jobs", "route.jobs").unwrap();
    assert!(engine.stop_mirroring_queue_sends("jobs", "route.jobs"));
    assert!(!engine.stop_mirroring_queue_sends("jobs", "route.jobs"));
    let (producer, _p) = engine.connect(None);
    producer
        .send(&Destination::queue("jobs"), persistent("x"))
        .await
        .unwrap();
    assert_eq!(engine.queue_info("route.jobs").unwrap().ready, 0);
    assert_eq!(engine.queue_info("jobs").unwrap().ready, 1);
}

#[tokio::test]
async fn a_mirror_with_a_selector_copies_only_matching_sends() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    assert!(engine
        .mirror_queue_sends_matching("sales.*", "route.eu", Some("region = 'eu' AND"))
        .is_err());
    engine
        .mirror_queue_sends_matching("sales.*", "route.eu", Some("region = 'eu'"))
        .unwrap();
    let (producer, _p) = engine.connect(None);
    for (region, text) in [("eu", "a"), ("us", "b"), ("eu", "c")] {
        let mut m = persistent(text);
        m.properties.insert(
            "region".into(),
            routes::PropertyValue::String(region.into()),
        );
        producer
            .send(&Destination::queue(format!("sales.{region}")), m)
            .await
            .unwrap();
    }
    // Unfiltered sends without the property are not copied either (unknown is not TRUE).
    producer
        .send(&Destination::queue("sales.eu"), persistent("d"))
        .await
        .unwrap();
    assert_eq!(engine.queue_info("route.eu").unwrap().ready, 2);
    assert_eq!(engine.queue_info("sales.eu").unwrap().ready, 3);
    assert_eq!(engine.queue_info("sales.us").unwrap().ready, 1);
    // Registering the pair again replaces the selector.
    engine
        .mirror_queue_sends_matching("sales.*", "route.eu", None)
        .unwrap();
    producer
        .send(&Destination::queue("sales.us"), persistent("e"))
        .await
        .unwrap();
    assert_eq!(engine.queue_info("route.eu").unwrap().ready, 3);
}

#[tokio::test]
async fn a_queue_divert_takes_matching_sends_away_from_their_queue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (producer, _p) = engine.connect(None);
    producer
        .send(&Destination::queue("sales.eu"), persistent("before"))
        .await
        .unwrap();
    engine
        .divert_queue_sends("sales.*", "route.eu", Some("region = 'eu'"))
        .unwrap();
    for (queue, region, text) in [
        ("sales.eu", "eu", "a"),
        ("sales.us", "us", "b"),
        ("other", "eu", "c"),
    ] {
        let mut m = persistent(text);
        m.properties.insert(
            "region".into(),
            routes::PropertyValue::String(region.into()),
        );
        producer.send(&Destination::queue(queue), m).await.unwrap();
    }
    // Only the matching send moved; what was there before stays.
    assert_eq!(engine.queue_info("route.eu").unwrap().ready, 1);
    assert_eq!(engine.queue_info("sales.eu").unwrap().ready, 1);
    assert_eq!(engine.queue_info("sales.us").unwrap().ready, 1);
    assert_eq!(engine.queue_info("other").unwrap().ready, 1);
    assert!(engine.stop_mirroring_queue_sends("sales.*", "route.eu"));
    let mut m = persistent("after");
    m.properties
        .insert("region".into(), routes::PropertyValue::String("eu".into()));
    producer
        .send(&Destination::queue("sales.eu"), m)
        .await
        .unwrap();
    assert_eq!(engine.queue_info("sales.eu").unwrap().ready, 2);
    assert_eq!(engine.queue_info("route.eu").unwrap().ready, 1);
}

#[tokio::test]
async fn a_topic_divert_takes_matching_publishes_away_from_the_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (subscriber, mut sub_rx) = engine.connect(None);
    subscriber
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("prices.>".into())))
        .unwrap();
    engine
        .divert_topic_sends("prices.fx", "route.fx", None)
        .unwrap();
    let (producer, _p) = engine.connect(None);
    for (topic, text) in [("prices.fx", "a"), ("prices.eq", "b")] {
        producer
            .send(&Destination::topic(topic), persistent(text))
            .await
            .unwrap();
    }
    assert_eq!(body(&next(&mut sub_rx).await), "b");
    assert_eq!(engine.queue_info("route.fx").unwrap().ready, 1);
    // Nor is a diverted publish retained for later subscribers (MQTT's retain flag).
    engine
        .set_retained("prices.fx", Some(persistent("r")))
        .await
        .unwrap();
    assert!(engine.retained_matching("prices.fx").is_empty());
    assert!(engine.stop_diverting_topic_sends("prices.fx", "route.fx"));
    producer
        .send(&Destination::topic("prices.fx"), persistent("c"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut sub_rx).await), "c");
    assert_eq!(engine.queue_info("route.fx").unwrap().ready, 1);
}
