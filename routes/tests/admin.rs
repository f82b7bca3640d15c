//! The engine's operator views and actions (`engine/admin.rs`): counters, purge, delete, browse,
//! dead-letter replay, consumers and gauges, checked against what sessions did, and across a
//! reopen where they must last.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    open_transactions, ConsumerSource, ConsumerSpec, Delivery, Destination, Engine, EngineConfig,
    Message, NackAction, PropertyValue, QueueCounters, SessionEvent, Transaction,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn open(dir: &std::path::Path) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    let config = EngineConfig {
        max_redeliveries: 1,
        ..EngineConfig::default()
    };
    Engine::open(config, options).expect("engine opens")
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

fn queue(name: &str) -> ConsumerSpec {
    ConsumerSpec::new(ConsumerSource::Queue(name.into()))
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

#[tokio::test]
async fn counters_follow_sends_deliveries_acks_redeliveries_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (producer, _) = engine.connect(None);
    for i in 0..3 {
        producer
            .send(&Destination::queue("c"), persistent(&format!("m{i}")))
            .await
            .unwrap();
    }
    let (consumer, mut rx) = engine.connect(None);
    let id = consumer.subscribe(queue("c")).unwrap();
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    let third = next(&mut rx).await;
    consumer.ack(id, &[first.seq]).unwrap().await.unwrap();
    // Requeued once (redelivered), then past max_redeliveries = 1: dead-lettered.
    consumer
        .nack(id, &[second.seq], NackAction::Requeue)
        .unwrap();
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    consumer
        .nack(id, &[again.seq], NackAction::Requeue)
        .unwrap();
    let stats = engine.queue_stats_of("c").unwrap();
    assert_eq!((stats.ready, stats.unacked, stats.consumers), (0, 1, 1));
    let c = stats.counters;
    assert_eq!(
        (
            c.enqueued,
            c.delivered,
            c.redelivered,
            c.acknowledged,
            c.dead_lettered,
            c.expired
        ),
        (3, 4, 1, 1, 1, 0)
    );
    assert_eq!(engine.queue_stats_of("ActiveMQ.DLQ").unwrap().ready, 1);
    consumer.ack(id, &[third.seq]).unwrap().await.unwrap();
    assert_eq!(engine.queue_stats_of("c").unwrap().counters.acknowledged, 2);
    let g = engine.gauges();
    assert_eq!((g.sessions, g.consumers, g.producers), (2, 1, 1));
    drop(producer);
    assert_eq!(engine.gauges().producers, 0);
}

#[tokio::test]
async fn purge_browse_delete_and_replay_last_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, _) = engine.connect(None);
    for i in 0..4 {
        s.send(&Destination::queue("p"), persistent(&format!("p{i}")))
            .await
            .unwrap();
        s.send(&Destination::queue("d"), persistent(&format!("d{i}")))
            .await
            .unwrap();
    }
    let browsed = engine.browse_queue("p", 3).unwrap();
    assert_eq!(
        browsed.iter().map(|b| body(&b.message)).collect::<Vec<_>>(),
        ["p0", "p1", "p2"]
    );
    assert_eq!(engine.queue_stats_of("p").unwrap().ready, 4);
    let (purged, durable) = engine.purge_queue("p").unwrap();
    durable.await.unwrap();
    assert_eq!(purged, 4);
    let (deleted, durable) = engine.delete_queue("d", false, false).unwrap();
    durable.await.unwrap();
    assert_eq!(deleted, 4);
    assert!(engine.queue_stats_of("d").is_none());
    assert!(engine.purge_queue("nope").is_err());

    // Two dead letters from "r", one from "other".
    let (c, mut rx) = engine.connect(None);
    for (q, text) in [("r", "r0"), ("r", "r1"), ("other", "o0")] {
        s.send(&Destination::queue(q), persistent(text))
            .await
            .unwrap();
        let id = c.subscribe(queue(q)).unwrap();
        let d = next(&mut rx).await;
        c.nack(id, &[d.seq], NackAction::DeadLetter).unwrap();
        c.unsubscribe(id);
    }
    let dlq = engine.browse_queue("ActiveMQ.DLQ", 10).unwrap();
    assert_eq!(dlq.len(), 3);
    assert_eq!(
        dlq[0].message.properties.get("originalDestination"),
        Some(&PropertyValue::String("r".into()))
    );
    let (moved, durable) = engine
        .replay_dead_letters("ActiveMQ.DLQ", Some("r"), usize::MAX)
        .unwrap();
    durable.await.unwrap();
    assert_eq!(moved, 2);
    drop((s, c));
    engine.close().unwrap();
    drop(engine);

    let engine = open(dir.path());
    assert_eq!(engine.queue_stats_of("p").unwrap().ready, 0);
    assert!(engine.queue_stats_of("d").is_none());
    assert_eq!(engine.queue_stats_of("ActiveMQ.DLQ").unwrap().ready, 1);
    let replayed = engine.browse_queue("r", 10).unwrap();
    assert_eq!(
        replayed
            .iter()
            .map(|b| body(&b.message))
            .collect::<Vec<_>>(),
        ["r0", "r1"]
    );
    assert!(replayed.iter().all(
        |b| !b.message.properties.contains_key("originalDestination") && b.delivery_count == 0
    ));
    assert_eq!(
        engine.queue_stats_of("r").unwrap().counters,
        QueueCounters::default()
    );
}

#[tokio::test]
async fn consumers_are_listed_and_transactions_counted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, _) = engine.connect(Some("client-1".into()));
    let mut spec = queue("listed");
    spec.selector = Some("color = 'red'".into());
    spec.prefetch = Some(7);
    let id = s.subscribe(spec).unwrap();
    let infos = engine.consumer_infos();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(
        (info.id, info.session, info.client_id.as_deref()),
        (id, s.id(), Some("client-1"))
    );
    assert_eq!(info.queues, ["listed"]);
    assert_eq!((info.prefetch, info.unacked), (7, 0));
    assert_eq!(info.selector.as_deref(), Some("color = 'red'"));

    // Other tests in this binary may hold transactions: compare relative to the start.
    let before = open_transactions();
    let tx = Transaction::new();
    assert!(open_transactions() > before);
    drop(tx);
    let mut tx = Transaction::new();
    tx.send(Destination::queue("listed"), persistent("t"));
    s.commit(tx).await.unwrap().await.unwrap();
    assert_eq!(
        engine.queue_stats_of("listed").unwrap().counters.enqueued,
        1
    );
}

#[tokio::test]
async fn producers_are_counted_per_destination_until_their_session_closes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (mut a, _) = engine.connect(None);
    let (b, _) = engine.connect(None);
    a.send(&Destination::queue("p.q"), persistent("1"))
        .await
        .unwrap();
    a.send(&Destination::queue("p.q"), persistent("2"))
        .await
        .unwrap();
    a.send(&Destination::topic("p.t"), persistent("3"))
        .await
        .unwrap();
    b.send(&Destination::queue("p.q"), persistent("4"))
        .await
        .unwrap();
    let counts = |engine: &Engine| {
        engine
            .producers_by_destination()
            .into_iter()
            .map(|p| (p.kind, p.name, p.producers))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&engine),
        vec![
            ("queue", "p.q".to_string(), 2),
            ("topic", "p.t".to_string(), 1)
        ]
    );
    a.close();
    assert_eq!(counts(&engine), vec![("queue", "p.q".to_string(), 1)]);
    // A transacted send counts once committed.
    let mut tx = Transaction::new();
    tx.send(Destination::queue("p.tx"), persistent("5"));
    assert_eq!(counts(&engine).len(), 1);
    b.commit(tx).await.unwrap().await.unwrap();
    assert_eq!(
        counts(&engine),
        vec![
            ("queue", "p.q".to_string(), 1),
            ("queue", "p.tx".to_string(), 1)
        ]
    );
    drop(b);
    assert!(counts(&engine).is_empty());
}

#[tokio::test]
async fn topic_stats_count_publishes_and_every_matching_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let stats = |engine: &Engine| {
        engine
            .topic_stats()
            .into_iter()
            .map(|t| (t.name, t.enqueued, t.subscriptions, t.consumers, t.unacked))
            .collect::<Vec<_>>()
    };
    let (sub, mut rx) = engine.connect(Some("sub".into()));
    let plain = sub
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("t.a".into())))
        .unwrap();
    sub.subscribe(ConsumerSpec::new(ConsumerSource::Topic("t.*".into())))
        .unwrap();
    sub.subscribe(ConsumerSpec::new(ConsumerSource::DurableTopic {
        pattern: "t.a".into(),
        subscription: "d".into(),
    }))
    .unwrap();
    // Known through the literal subscriptions only; the wildcard is no topic.
    assert_eq!(stats(&engine), vec![("t.a".to_string(), 0, 3, 3, 0)]);

    let (producer, _) = engine.connect(None);
    producer
        .send(&Destination::topic("t.a"), persistent("1"))
        .await
        .unwrap();
    producer
        .send(&Destination::topic("t.b"), persistent("2"))
        .await
        .unwrap();
    // A transacted publish counts once committed; a queue send is no topic publish.
    let mut tx = Transaction::new();
    tx.send(Destination::topic("t.a"), persistent("3"));
    assert_eq!(stats(&engine)[0].1, 1);
    producer.commit(tx).await.unwrap().await.unwrap();
    producer
        .send(&Destination::queue("t.a"), persistent("q"))
        .await
        .unwrap();
    // t.a: 2 publishes, 3 subscriptions holding 2 + 2 + 3 deliveries (the wildcard one also
    // holds t.b's: its figure covers every topic it matches); t.b: the wildcard only.
    for _ in 0..7 {
        next(&mut rx).await;
    }
    assert_eq!(
        stats(&engine),
        vec![
            ("t.a".to_string(), 2, 3, 3, 7),
            ("t.b".to_string(), 1, 1, 1, 3)
        ]
    );
    // The plain subscription goes with its consumer; the durable one stays, inactive.
    sub.unsubscribe(plain);
    drop(sub);
    assert_eq!(
        stats(&engine),
        vec![
            ("t.a".to_string(), 2, 1, 0, 0),
            ("t.b".to_string(), 1, 0, 0, 0)
        ]
    );
}
