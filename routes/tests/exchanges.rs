//! Exchanges, bindings and the queue operations AMQP 0-9-1 needs, protocol-neutral.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    Binding, BindingTarget, ConsumerSource, ConsumerSpec, Delivery, Destination, Engine,
    EngineConfig, EngineError, ExchangeKind, ExchangeSpec, HeadersArgs, HeadersMatch, Message,
    NackAction, PropertyValue, SessionEvent,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn open(dir: &std::path::Path) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(EngineConfig::default(), options).expect("engine opens")
}

fn msg(body: &str) -> Message {
    Message {
        body: Bytes::copy_from_slice(body.as_bytes()),
        priority: 4,
        ..Message::default()
    }
}

fn to_queue(name: &str, key: &str) -> Binding {
    Binding {
        target: BindingTarget::Queue(name.into()),
        key: key.into(),
        headers: None,
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
async fn topic_sends_reach_queues_bound_to_amq_topic_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, mut rx) = engine.connect(None);
    engine.declare_queue("bound").unwrap();
    engine.bind("amq.topic", to_queue("bound", "a.#")).unwrap();
    let queue_consumer = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Queue("bound".into())))
        .unwrap();
    let topic_consumer = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("a.*".into())))
        .unwrap();
    // A protocol-neutral topic send (STOMP /topic/a.b) reaches both.
    s.send(&Destination::topic("a.b"), msg("via topic"))
        .await
        .unwrap();
    let mut consumers = vec![next(&mut rx).await.consumer, next(&mut rx).await.consumer];
    consumers.sort();
    let mut want = vec![queue_consumer, topic_consumer];
    want.sort();
    assert_eq!(consumers, want);
    // An exchange publish to amq.topic does the same, and reports how many queues it reached.
    let (_, reached) = s
        .publish_to_exchange("amq.topic", "a.c", msg("via exchange"))
        .await
        .unwrap();
    assert_eq!(reached, 2);
    let d = next(&mut rx).await;
    assert_eq!(d.message.address, "a.c");
}

#[tokio::test]
async fn default_exchange_reaches_only_existing_queues() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, _rx) = engine.connect(None);
    let (_, reached) = s
        .publish_to_exchange("", "nowhere", msg("x"))
        .await
        .unwrap();
    assert_eq!(reached, 0);
    assert!(engine.queue_info("nowhere").is_none());
    engine.declare_queue("here").unwrap();
    let (_, reached) = s.publish_to_exchange("", "here", msg("x")).await.unwrap();
    assert_eq!(reached, 1);
    assert_eq!(engine.queue_info("here").unwrap().ready, 1);
    let err = s.publish_to_exchange("missing", "k", msg("x")).await;
    assert!(matches!(err, Err(EngineError::Exchange(_))));
}

#[tokio::test]
async fn direct_fanout_headers_and_exchange_to_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, _rx) = engine.connect(None);
    for q in ["d", "f1", "f2", "h"] {
        engine.declare_queue(q).unwrap();
    }
    engine.bind("amq.direct", to_queue("d", "k")).unwrap();
    engine.bind("amq.fanout", to_queue("f1", "")).unwrap();
    engine.bind("amq.fanout", to_queue("f2", "")).unwrap();
    engine
        .bind(
            "amq.headers",
            Binding {
                target: BindingTarget::Queue("h".into()),
                key: String::new(),
                headers: Some(HeadersArgs {
                    mode: HeadersMatch::Any,
                    values: vec![("color".into(), Some(PropertyValue::String("red".into())))],
                }),
            },
        )
        .unwrap();
    engine
        .declare_exchange("entry", ExchangeSpec::new(ExchangeKind::Direct))
        .unwrap();
    engine
        .bind(
            "entry",
            Binding {
                target: BindingTarget::Exchange("amq.fanout".into()),
                key: "go".into(),
                headers: None,
            },
        )
        .unwrap();
    assert_eq!(
        s.publish_to_exchange("amq.direct", "k", msg("1"))
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        s.publish_to_exchange("amq.direct", "z", msg("2"))
            .await
            .unwrap()
            .1,
        0
    );
    assert_eq!(
        s.publish_to_exchange("entry", "go", msg("3"))
            .await
            .unwrap()
            .1,
        2
    );
    let mut red = msg("4");
    red.properties
        .insert("color".into(), PropertyValue::String("red".into()));
    assert_eq!(
        s.publish_to_exchange("amq.headers", "", red)
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        s.publish_to_exchange("amq.headers", "", msg("5"))
            .await
            .unwrap()
            .1,
        0
    );
    engine.unbind("amq.direct", &to_queue("d", "k")).unwrap();
    assert_eq!(
        s.publish_to_exchange("amq.direct", "k", msg("6"))
            .await
            .unwrap()
            .1,
        0
    );
    // Deleting a queue removes its bindings.
    assert_eq!(engine.delete_queue("f1", false, false).unwrap().0, 1);
    assert_eq!(
        s.publish_to_exchange("amq.fanout", "", msg("7"))
            .await
            .unwrap()
            .1,
        1
    );
}

#[tokio::test]
async fn get_purge_delete_and_stopped_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, mut rx) = engine.connect(None);
    engine.declare_queue("q").unwrap();
    for i in 0..4 {
        s.send(&Destination::queue("q"), msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    let getter = s.open_getter().unwrap();
    let (d, remaining) = s.get(getter, "q").unwrap().unwrap();
    assert_eq!((body(&d), remaining), ("m0".to_string(), 3));
    s.nack(getter, &[d.seq], NackAction::Requeue).unwrap();
    let (d, _) = s.get(getter, "q").unwrap().unwrap();
    assert!(d.redelivered);
    s.ack(getter, &[d.seq]).unwrap().await.unwrap();
    // A stopped consumer gets nothing new but can still ack what it has.
    let c = s
        .subscribe(ConsumerSpec {
            prefetch: Some(1),
            ..ConsumerSpec::new(ConsumerSource::Queue("q".into()))
        })
        .unwrap();
    let d = next(&mut rx).await;
    s.stop_consumer(c);
    assert_eq!(engine.queue_info("q").unwrap().consumers, 0);
    s.ack(c, &[d.seq]).unwrap().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_err(),
        "a stopped consumer got a delivery"
    );
    assert_eq!(engine.purge_queue("q").unwrap().0, 2);
    s.send(&Destination::queue("q"), msg("last")).await.unwrap();
    let holder = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Queue("q".into())))
        .unwrap();
    let _ = next(&mut rx).await;
    assert!(matches!(
        engine.delete_queue("q", true, false),
        Err(EngineError::PreconditionFailed(_))
    ));
    assert!(matches!(
        engine.delete_queue("q", false, true),
        Err(EngineError::PreconditionFailed(_))
    ));
    assert_eq!(engine.delete_queue("q", false, false).unwrap().0, 1);
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(SessionEvent::ConsumerCancelled(id))) => assert_eq!(id, holder),
        other => panic!("expected a cancel, got {other:?}"),
    }
    assert!(engine.queue_info("q").is_none());
}

#[tokio::test]
async fn queue_options_ttl_max_length_priority_and_dead_letter_exchange() {
    use routes::{Overflow, QueueOptions};
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (s, _rx) = engine.connect(None);
    engine
        .declare_queue_with(
            "dlq",
            QueueOptions {
                discard_dead_letters: true,
                ..QueueOptions::default()
            },
        )
        .unwrap();
    engine
        .declare_queue_with(
            "capped",
            QueueOptions {
                max_length: Some(2),
                dead_letter: Some((String::new(), Some("dlq".into()))),
                discard_dead_letters: true,
                ..QueueOptions::default()
            },
        )
        .unwrap();
    for i in 0..3 {
        s.publish_to_exchange("", "capped", msg(&format!("m{i}")))
            .await
            .unwrap()
            .0
            .await
            .unwrap();
    }
    assert_eq!(engine.queue_info("capped").unwrap().ready, 2);
    let getter = s.open_getter().unwrap();
    let (d, _) = s.get(getter, "dlq").unwrap().unwrap();
    assert_eq!(body(&d), "m0");
    assert_eq!(
        d.message.properties.get("x-first-death-reason"),
        Some(&PropertyValue::String("maxlen".into()))
    );
    engine
        .declare_queue_with(
            "strict",
            QueueOptions {
                max_length: Some(1),
                overflow: Overflow::RejectPublish,
                ..QueueOptions::default()
            },
        )
        .unwrap();
    s.publish_to_exchange("", "strict", msg("a"))
        .await
        .unwrap()
        .0
        .await
        .unwrap();
    assert!(matches!(
        s.publish_to_exchange("", "strict", msg("b")).await,
        Err(EngineError::ResourceLimit { .. })
    ));
    engine
        .declare_queue_with(
            "ttl",
            QueueOptions {
                message_ttl: Some(Duration::from_millis(50)),
                discard_dead_letters: true,
                ..QueueOptions::default()
            },
        )
        .unwrap();
    s.publish_to_exchange("", "ttl", msg("gone"))
        .await
        .unwrap()
        .0
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(s.get(getter, "ttl").unwrap().is_none());
    assert!(
        s.get(getter, "dlq").unwrap().is_none(),
        "discarded, not dead-lettered"
    );
    engine
        .declare_queue_with(
            "prio",
            QueueOptions {
                max_priority: Some(9),
                ..QueueOptions::default()
            },
        )
        .unwrap();
    for p in [1u8, 9, 5] {
        let mut m = msg(&p.to_string());
        m.priority = p;
        s.publish_to_exchange("", "prio", m)
            .await
            .unwrap()
            .0
            .await
            .unwrap();
    }
    let order: Vec<String> = (0..3)
        .map(|_| body(&s.get(getter, "prio").unwrap().unwrap().0))
        .collect();
    assert_eq!(order, ["9", "5", "1"]);
}
