//! Message groups (JMSXGroupID): a group sticks to the consumer that got its first message until
//! that consumer leaves or a message with JMSXGroupSeq -1 closes the group, as on ActiveMQ.
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

fn grouped(body: &str, seq: i32) -> Message {
    Message {
        body: Bytes::copy_from_slice(body.as_bytes()),
        priority: 4,
        group_id: Some("G".into()),
        group_seq: seq,
        ..Message::default()
    }
}

async fn next(rx: &mut UnboundedReceiver<SessionEvent>) -> Option<Delivery> {
    match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        Ok(Some(SessionEvent::Deliver(d))) => Some(*d),
        Ok(other) => panic!("expected a delivery, got {other:?}"),
        Err(_) => None,
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message.body).into_owned()
}

#[tokio::test]
async fn a_group_sticks_to_its_consumer_until_seq_minus_one_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let queue = Destination::queue("grouped");
    let (producer, _p) = engine.connect(None);
    let mut spec = ConsumerSpec::new(ConsumerSource::Queue("grouped".into()));
    spec.prefetch = Some(1);
    let (first, mut first_rx) = engine.connect(None);
    let first_id = first.subscribe(spec.clone()).unwrap();
    producer.send(&queue, grouped("g-1", 1)).await.unwrap();
    let d = next(&mut first_rx)
        .await
        .expect("the first consumer opens the group");
    assert_eq!(body(&d), "g-1");
    first.ack(first_id, &[d.seq]).unwrap().await.unwrap();
    let (second, mut second_rx) = engine.connect(None);
    second.subscribe(spec).unwrap();
    // Still the first consumer's group, although the second one is idle.
    producer.send(&queue, grouped("g-2", 2)).await.unwrap();
    let d = next(&mut first_rx).await.expect("sticky");
    assert_eq!(body(&d), "g-2");
    assert!(next(&mut second_rx).await.is_none());
    first.ack(first_id, &[d.seq]).unwrap().await.unwrap();
    // Seq -1 closes the group; the first consumer keeps it unacknowledged (its prefetch of 1
    // is full), so the group's next message goes to the second consumer.
    producer.send(&queue, grouped("g-close", -1)).await.unwrap();
    let d = next(&mut first_rx)
        .await
        .expect("the closing message goes to the owner");
    assert_eq!(body(&d), "g-close");
    producer.send(&queue, grouped("g-new", 1)).await.unwrap();
    let d = next(&mut second_rx)
        .await
        .expect("a closed group goes to any consumer");
    assert_eq!(body(&d), "g-new");
}
