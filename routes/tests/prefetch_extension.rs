//! `Session::set_prefetch_extension`: deliveries the client holds unacknowledged (JMS
//! `DELIVERED` acks) widen a consumer's prefetch window, as ActiveMQ's prefetch extension.
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

async fn drain(rx: &mut UnboundedReceiver<SessionEvent>) -> Vec<Delivery> {
    let mut out = Vec::new();
    while let Ok(Some(SessionEvent::Deliver(d))) =
        tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        out.push(*d);
    }
    out
}

#[tokio::test]
async fn an_extension_lets_more_than_the_prefetch_out_and_acks_shrink_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (producer, _p) = engine.connect(None);
    for i in 0..6 {
        let m = Message {
            body: Bytes::from(format!("m{i}")),
            priority: 4,
            ..Message::default()
        };
        producer
            .send(&Destination::queue("window"), m)
            .await
            .unwrap();
    }
    let (session, mut rx) = engine.connect(None);
    let mut spec = ConsumerSpec::new(ConsumerSource::Queue("window".into()));
    spec.prefetch = Some(2);
    let consumer = session.subscribe(spec).unwrap();
    let first = drain(&mut rx).await;
    assert_eq!(first.len(), 2, "the prefetch alone");
    // The client consumed both without acknowledging: two more may go out.
    session.set_prefetch_extension(consumer, 2);
    let second = drain(&mut rx).await;
    assert_eq!(second.len(), 2);
    // Acknowledging the first two and dropping the extension to the two still held keeps the
    // window at prefetch + held: two more.
    let seqs: Vec<u64> = first.iter().map(|d| d.seq).collect();
    session.ack(consumer, &seqs).unwrap().await.unwrap();
    session.set_prefetch_extension(consumer, 2);
    assert_eq!(drain(&mut rx).await.len(), 2);
    // No extension: four in flight, over the prefetch of two, nothing more.
    session.set_prefetch_extension(consumer, 0);
    assert!(drain(&mut rx).await.is_empty());
    assert_eq!(engine.queue_info("window").unwrap().unacked, 4);
}
