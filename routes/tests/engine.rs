//! Engine behaviour, protocol-neutral: each test drives sessions the way a protocol session would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Delivery, Destination, DestinationKind, DestinationPolicy,
    Engine, EngineConfig, EngineError, FlowControl, Message, NackAction, PropertyValue,
    SessionEvent, Transaction,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

fn open(dir: &std::path::Path, config: EngineConfig) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(config, options).expect("engine opens")
}

fn msg(body: &str) -> Message {
    Message {
        body: Bytes::copy_from_slice(body.as_bytes()),
        priority: 4,
        ..Message::default()
    }
}

fn persistent(body: &str) -> Message {
    Message {
        persistent: true,
        ..msg(body)
    }
}

async fn next(rx: &mut UnboundedReceiver<SessionEvent>) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(SessionEvent::Deliver(d))) => *d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

async fn nothing(rx: &mut UnboundedReceiver<SessionEvent>) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
        panic!("expected nothing, got {ev:?}");
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.message.body).into_owned()
}

fn queue(name: &str) -> ConsumerSpec {
    ConsumerSpec::new(ConsumerSource::Queue(name.into()))
}

#[tokio::test]
async fn queue_delivers_once_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    let (a, mut rx_a) = engine.connect(None);
    let (b, mut rx_b) = engine.connect(None);
    let ca = a.subscribe(queue("q")).unwrap();
    let cb = b.subscribe(queue("q")).unwrap();
    for i in 0..4 {
        producer
            .send(&Destination::queue("q"), msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = next(&mut rx_a).await;
        assert_eq!(d.consumer, ca);
        got.push(body(&d));
        let d = next(&mut rx_b).await;
        assert_eq!(d.consumer, cb);
        got.push(body(&d));
    }
    got.sort();
    assert_eq!(got, vec!["m0", "m1", "m2", "m3"]);
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first_while_they_have_room() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    let (low, mut rx_low) = engine.connect(None);
    let (high, mut rx_high) = engine.connect(None);
    let c_low = low.subscribe(queue("prio")).unwrap();
    let c_high = high
        .subscribe(ConsumerSpec {
            priority: 9,
            prefetch: Some(2),
            ..queue("prio")
        })
        .unwrap();
    for i in 0..5 {
        producer
            .send(&Destination::queue("prio"), msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    for want in ["m0", "m1"] {
        let d = next(&mut rx_high).await;
        assert_eq!((d.consumer, body(&d).as_str()), (c_high, want));
    }
    for want in ["m2", "m3", "m4"] {
        let d = next(&mut rx_low).await;
        assert_eq!((d.consumer, body(&d).as_str()), (c_low, want));
    }
    nothing(&mut rx_high).await;
}

#[tokio::test]
async fn prefetch_zero_dispatches_only_what_the_extension_grants() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    let (s, mut rx) = engine.connect(None);
    let c = s
        .subscribe(ConsumerSpec {
            prefetch: Some(0),
            ..queue("pull")
        })
        .unwrap();
    for i in 0..2 {
        producer
            .send(&Destination::queue("pull"), msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    nothing(&mut rx).await;
    s.set_prefetch_extension(c, 1);
    assert_eq!(body(&next(&mut rx).await), "m0");
    nothing(&mut rx).await;
    // One held and one more granted: the second comes.
    s.set_prefetch_extension(c, 2);
    assert_eq!(body(&next(&mut rx).await), "m1");
}

#[tokio::test]
async fn topic_fans_out_to_wildcard_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let exact = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("a.b".into())))
        .unwrap();
    let star = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("a.*".into())))
        .unwrap();
    let rest = s
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("a.>".into())))
        .unwrap();
    s.send(&Destination::topic("a.b"), msg("x")).await.unwrap();
    let mut consumers = vec![
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    consumers.sort_by_key(|d| d.consumer);
    let ids: Vec<_> = consumers.iter().map(|d| d.consumer).collect();
    let mut want = vec![exact, star, rest];
    want.sort();
    assert_eq!(ids, want);
    for d in &consumers {
        assert_eq!(d.destination, Destination::topic("a.b"));
    }
    s.send(&Destination::topic("a.b.c"), msg("deep"))
        .await
        .unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.consumer, rest);
    nothing(&mut rx).await;
}

#[tokio::test]
async fn queues_are_fifo_by_default_as_activemq() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    for p in [1u8, 9, 4] {
        let mut m = msg(&format!("p{p}"));
        m.priority = p;
        s.send(&Destination::queue("fifo"), m).await.unwrap();
    }
    s.subscribe(queue("fifo")).unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(body(&next(&mut rx).await));
    }
    assert_eq!(order, vec!["p1", "p9", "p4"]);
}

#[tokio::test]
async fn prioritized_queues_deliver_higher_priority_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        destinations: vec![DestinationPolicy {
            pattern: "prio".into(),
            max_messages: 0,
            max_bytes: 0,
            flow_control: None,
            max_redeliveries: None,
            dead_letter_queue: None,
            prioritized_messages: Some(true),
            max_priority: None,
        }],
        ..EngineConfig::default()
    };
    let engine = open(dir.path(), config);
    let (s, mut rx) = engine.connect(None);
    for p in [1u8, 9, 4, 7] {
        let mut m = msg(&format!("p{p}"));
        m.priority = p;
        s.send(&Destination::queue("prio"), m).await.unwrap();
    }
    s.subscribe(queue("prio")).unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(body(&next(&mut rx).await));
    }
    assert_eq!(order, vec!["p9", "p7", "p4", "p1"]);
}

/// A `max_priority` policy (how an AMQP `x-max-priority` queue is recovered) ranks by every
/// level up to the maximum and a priority above it as the maximum (FIFO among those), the
/// same after a restart, when the ready set is rebuilt from the journal.
#[tokio::test]
async fn max_priority_caps_priorities_and_keeps_its_levels_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        destinations: vec![
            // A broad configured policy first: the queue's own maximum still applies.
            DestinationPolicy {
                pattern: ">".into(),
                max_messages: 0,
                max_bytes: 0,
                flow_control: None,
                max_redeliveries: None,
                dead_letter_queue: None,
                prioritized_messages: Some(false),
                max_priority: None,
            },
            DestinationPolicy {
                pattern: "wide".into(),
                max_messages: 0,
                max_bytes: 0,
                flow_control: None,
                max_redeliveries: None,
                dead_letter_queue: None,
                prioritized_messages: Some(true),
                max_priority: Some(20),
            },
        ],
        ..EngineConfig::default()
    };
    let sends = [
        (15u8, "p15"),
        (30, "p30"),
        (0, "p0"),
        (12, "p12"),
        (20, "p20"),
    ];
    let expected = vec!["p30", "p20", "p15", "p12", "p0"];
    {
        let engine = open(dir.path(), config.clone());
        let (s, _) = engine.connect(None);
        for (p, name) in sends {
            let mut m = persistent(name);
            m.priority = p;
            s.send(&Destination::queue("wide"), m).await.unwrap();
        }
        engine.close().unwrap();
    }
    let engine = open(dir.path(), config);
    let (s, mut rx) = engine.connect(None);
    let c = s.subscribe(queue("wide")).unwrap();
    let mut order = Vec::new();
    for _ in 0..5 {
        let d = next(&mut rx).await;
        s.ack(c, &[d.seq]).unwrap().await.unwrap();
        order.push(body(&d));
    }
    assert_eq!(order, expected);
    // Sent after the reopen, into the live queue with no consumer: the same ranking.
    s.unsubscribe(c);
    for (p, name) in sends {
        let mut m = msg(name);
        m.priority = p;
        s.send(&Destination::queue("wide"), m).await.unwrap();
    }
    s.subscribe(queue("wide")).unwrap();
    let mut order = Vec::new();
    for _ in 0..5 {
        order.push(body(&next(&mut rx).await));
    }
    assert_eq!(order, expected);
}

#[tokio::test]
async fn prefetch_limits_unacked_and_ack_frees_credit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let mut spec = queue("pf");
    spec.prefetch = Some(1);
    let c = s.subscribe(spec).unwrap();
    s.send(&Destination::queue("pf"), msg("1")).await.unwrap();
    s.send(&Destination::queue("pf"), msg("2")).await.unwrap();
    let d = next(&mut rx).await;
    nothing(&mut rx).await;
    s.ack(c, &[d.seq]).unwrap().await.unwrap();
    assert_eq!(body(&next(&mut rx).await), "2");
}

#[tokio::test]
async fn unacked_messages_redeliver_then_dead_letter_after_six_redeliveries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    producer
        .send(&Destination::queue("r"), persistent("poison"))
        .await
        .unwrap();
    for attempt in 1..=7u32 {
        let (mut s, mut rx) = engine.connect(None);
        s.subscribe(queue("r")).unwrap();
        let d = next(&mut rx).await;
        assert_eq!(d.delivery_count, attempt);
        assert_eq!(d.redelivered, attempt > 1);
        s.close();
    }
    let (s, mut rx) = engine.connect(None);
    s.subscribe(queue("r")).unwrap();
    nothing(&mut rx).await;
    s.subscribe(queue("ActiveMQ.DLQ")).unwrap();
    let d = next(&mut rx).await;
    assert_eq!(body(&d), "poison");
    assert_eq!(
        d.message.properties.get("originalDestination"),
        Some(&PropertyValue::String("r".into()))
    );
}

#[tokio::test]
async fn nack_requeue_and_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let c = s.subscribe(queue("n")).unwrap();
    s.send(&Destination::queue("n"), msg("a")).await.unwrap();
    let d = next(&mut rx).await;
    s.nack(c, &[d.seq], NackAction::Requeue).unwrap();
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    assert_eq!(again.delivery_count, 2);
    s.nack(c, &[again.seq], NackAction::DeadLetter).unwrap();
    nothing(&mut rx).await;
    assert_eq!(engine.queue_info("ActiveMQ.DLQ").map(|q| q.ready), Some(1));
}

#[tokio::test]
async fn expired_messages_go_to_the_dead_letter_queue_when_persistent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let past = 1;
    let mut p = persistent("old-persistent");
    p.expiration = past;
    let mut np = msg("old-transient");
    np.expiration = past;
    s.send(&Destination::queue("e"), p).await.unwrap();
    s.send(&Destination::queue("e"), np).await.unwrap();
    s.send(&Destination::queue("e"), msg("fresh"))
        .await
        .unwrap();
    s.subscribe(queue("e")).unwrap();
    assert_eq!(body(&next(&mut rx).await), "fresh");
    nothing(&mut rx).await;
    let dlq = engine.queue_info("ActiveMQ.DLQ").expect("dlq exists");
    assert_eq!(dlq.ready, 1);
}

#[tokio::test]
async fn expiry_sweep_moves_messages_without_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, _rx) = engine.connect(None);
    let mut p = persistent("soon");
    p.expiration = 1;
    s.send(&Destination::queue("sweep"), p).await.unwrap();
    engine.expire_now();
    assert_eq!(engine.queue_info("sweep").map(|q| q.ready), Some(0));
    assert_eq!(engine.queue_info("ActiveMQ.DLQ").map(|q| q.ready), Some(1));
}

#[tokio::test]
async fn message_groups_stick_to_one_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let c1 = s.subscribe(queue("g")).unwrap();
    let c2 = s.subscribe(queue("g")).unwrap();
    for i in 0..6 {
        let mut m = msg(&format!("{i}"));
        m.group_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        s.send(&Destination::queue("g"), m).await.unwrap();
    }
    let mut owner = std::collections::HashMap::new();
    for _ in 0..6 {
        let d = next(&mut rx).await;
        let group = d.message.group_id.clone().unwrap();
        let prev = owner.insert(group.clone(), d.consumer);
        assert!(
            prev.is_none() || prev == Some(d.consumer),
            "group {group} moved"
        );
    }
    assert_eq!(owner.len(), 2);
    let mut owners: Vec<_> = owner.values().copied().collect();
    owners.sort();
    assert_eq!(owners, vec![c1, c2]);
}

#[tokio::test]
async fn exclusive_consumer_gets_everything_until_it_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    let (mut first, mut rx1) = engine.connect(None);
    let (second, mut rx2) = engine.connect(None);
    let mut spec = queue("x");
    spec.exclusive = true;
    first.subscribe(spec.clone()).unwrap();
    second.subscribe(spec).unwrap();
    for i in 0..3 {
        producer
            .send(&Destination::queue("x"), msg(&i.to_string()))
            .await
            .unwrap();
    }
    for _ in 0..3 {
        next(&mut rx1).await;
    }
    nothing(&mut rx2).await;
    first.close();
    // The unacknowledged three move to the remaining exclusive consumer.
    for _ in 0..3 {
        assert!(next(&mut rx2).await.redelivered);
    }
}

#[tokio::test]
async fn transaction_commit_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    let c = s.subscribe(queue("t")).unwrap();
    let mut tx = Transaction::new();
    tx.send(Destination::queue("t"), msg("rolled back"));
    s.rollback(tx);
    nothing(&mut rx).await;
    let mut tx = Transaction::new();
    tx.send(Destination::queue("t"), msg("committed"));
    nothing(&mut rx).await;
    s.commit(tx).await.unwrap().await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(body(&d), "committed");
    let mut tx = Transaction::new();
    tx.ack(c, d.seq);
    s.rollback(tx);
    let again = next(&mut rx).await;
    assert!(again.redelivered);
    let mut tx = Transaction::new();
    tx.ack(c, again.seq);
    s.commit(tx).await.unwrap().await.unwrap();
    assert_eq!(
        engine.queue_info("t").map(|q| (q.ready, q.unacked)),
        Some((0, 0))
    );
}

#[tokio::test]
async fn selectors_see_every_message_not_only_a_first_page() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    for i in 0..5000 {
        let mut m = msg(&i.to_string());
        m.properties.insert("n".into(), PropertyValue::Int(i));
        s.send(&Destination::queue("sel"), m).await.unwrap();
    }
    let mut spec = queue("sel");
    spec.selector = Some("n = 4999".into());
    s.subscribe(spec).unwrap();
    assert_eq!(body(&next(&mut rx).await), "4999");
    nothing(&mut rx).await;
}

#[tokio::test]
async fn bad_selector_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, _rx) = engine.connect(None);
    let mut spec = queue("q");
    spec.selector = Some("a = ".into());
    match s.subscribe(spec) {
        Err(EngineError::InvalidSelector(e)) => assert!(!e.to_string().is_empty()),
        other => panic!("expected InvalidSelector, got {other:?}"),
    }
}

#[tokio::test]
async fn persistent_messages_survive_reopen_and_acked_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), EngineConfig::default());
        let (s, mut rx) = engine.connect(None);
        s.send(&Destination::queue("d"), persistent("acked"))
            .await
            .unwrap();
        s.send(&Destination::queue("d"), persistent("delivered"))
            .await
            .unwrap();
        s.send(&Destination::queue("d"), persistent("kept"))
            .await
            .unwrap();
        s.send(&Destination::queue("d"), msg("transient"))
            .await
            .unwrap();
        let mut spec = queue("d");
        spec.prefetch = Some(2);
        let c = s.subscribe(spec).unwrap();
        let first = next(&mut rx).await;
        assert_eq!(body(&first), "acked");
        s.ack(c, &[first.seq]).unwrap().await.unwrap();
        let second = next(&mut rx).await;
        assert_eq!(body(&second), "delivered");
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    s.subscribe(queue("d")).unwrap();
    let a = next(&mut rx).await;
    assert_eq!(body(&a), "delivered");
    assert!(a.redelivered, "delivered before the restart");
    let b = next(&mut rx).await;
    assert_eq!(body(&b), "kept");
    nothing(&mut rx).await;
}

#[tokio::test]
async fn durable_subscription_collects_while_away_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let topic = ConsumerSource::DurableTopic {
        pattern: "news.>".into(),
        subscription: "sub".into(),
    };
    {
        let engine = open(dir.path(), EngineConfig::default());
        let (mut s, _rx) = engine.connect(Some("client-1".into()));
        s.subscribe(ConsumerSpec::new(topic.clone())).unwrap();
        s.close();
        let (p, _) = engine.connect(None);
        p.send(&Destination::topic("news.eu"), persistent("while away"))
            .await
            .unwrap();
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(Some("client-1".into()));
    s.subscribe(ConsumerSpec::new(topic)).unwrap();
    let d = next(&mut rx).await;
    assert_eq!(body(&d), "while away");
    assert_eq!(d.destination, Destination::topic("news.eu"));
}

#[tokio::test]
async fn client_id_takeover_closes_the_old_session() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let source = ConsumerSource::DurableTopic {
        pattern: "t".into(),
        subscription: "s".into(),
    };
    let (old, mut old_rx) = engine.connect(Some("same".into()));
    old.subscribe(ConsumerSpec::new(source.clone())).unwrap();
    let (new, _new_rx) = engine.connect(Some("same".into()));
    match tokio::time::timeout(Duration::from_secs(1), old_rx.recv()).await {
        Ok(Some(SessionEvent::TakenOver)) => {}
        other => panic!("expected TakenOver, got {other:?}"),
    }
    // The durable subscription is free for the new session.
    new.subscribe(ConsumerSpec::new(source)).unwrap();
}

#[tokio::test]
async fn temporary_queue_dies_with_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (mut owner, _rx) = engine.connect(None);
    let name = owner.create_temporary(DestinationKind::Queue).unwrap();
    let (other, _) = engine.connect(None);
    other
        .send(&Destination::queue(name.clone()), msg("reply"))
        .await
        .unwrap();
    owner.close();
    match other.send(&Destination::queue(name), msg("late")).await {
        Err(EngineError::UnknownDestination(_)) => {}
        other => panic!("expected UnknownDestination, got {other:?}"),
    }
}

fn limited(policy: FlowControl) -> EngineConfig {
    EngineConfig {
        destinations: vec![DestinationPolicy {
            pattern: "small".into(),
            max_messages: 2,
            max_bytes: 0,
            flow_control: Some(policy),
            max_redeliveries: None,
            dead_letter_queue: None,
            prioritized_messages: None,
            max_priority: None,
        }],
        ..EngineConfig::default()
    }
}

#[tokio::test]
async fn flow_control_fail_rejects_the_send() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), limited(FlowControl::Fail));
    let (s, _rx) = engine.connect(None);
    s.send(&Destination::queue("small"), msg("1"))
        .await
        .unwrap();
    s.send(&Destination::queue("small"), msg("2"))
        .await
        .unwrap();
    assert!(matches!(
        s.send(&Destination::queue("small"), msg("3")).await,
        Err(EngineError::ResourceLimit { .. })
    ));
}

#[tokio::test]
async fn flow_control_drop_oldest_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), limited(FlowControl::DropOldest));
    let (s, mut rx) = engine.connect(None);
    for i in 1..=4 {
        s.send(&Destination::queue("small"), msg(&i.to_string()))
            .await
            .unwrap();
    }
    s.subscribe(queue("small")).unwrap();
    assert_eq!(body(&next(&mut rx).await), "3");
    assert_eq!(body(&next(&mut rx).await), "4");
    nothing(&mut rx).await;
}

#[tokio::test]
async fn flow_control_block_waits_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), limited(FlowControl::Block));
    let (s, mut rx) = engine.connect(None);
    s.send(&Destination::queue("small"), msg("1"))
        .await
        .unwrap();
    s.send(&Destination::queue("small"), msg("2"))
        .await
        .unwrap();
    let engine2 = engine.clone();
    let blocked = tokio::spawn(async move {
        let (p, _) = engine2.connect(None);
        p.send(&Destination::queue("small"), msg("3")).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!blocked.is_finished(), "the third send must wait");
    let c = s.subscribe(queue("small")).unwrap();
    let d = next(&mut rx).await;
    s.ack(c, &[d.seq]).unwrap().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .expect("unblocked")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn wildcard_queue_consumer_reads_existing_and_new_queues_with_one_prefetch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    s.send(&Destination::queue("orders.eu"), msg("eu"))
        .await
        .unwrap();
    s.send(&Destination::queue("other"), msg("no"))
        .await
        .unwrap();
    let mut spec = queue("orders.*");
    spec.prefetch = Some(1);
    let c = s.subscribe(spec).unwrap();
    let first = next(&mut rx).await;
    assert_eq!(body(&first), "eu");
    assert_eq!(first.destination, Destination::queue("orders.eu"));
    // A queue created after the subscription joins it; the shared prefetch of 1 holds it back.
    s.send(&Destination::queue("orders.us"), msg("us"))
        .await
        .unwrap();
    nothing(&mut rx).await;
    s.ack(c, &[first.seq]).unwrap().await.unwrap();
    let second = next(&mut rx).await;
    assert_eq!(body(&second), "us");
    assert_eq!(second.destination, Destination::queue("orders.us"));
    s.ack(c, &[second.seq]).unwrap().await.unwrap();
    nothing(&mut rx).await;
    assert_eq!(engine.queue_info("other").map(|q| q.ready), Some(1));
}

#[tokio::test]
async fn disk_watermark_fails_persistent_sends_but_not_transient_ones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(
        dir.path(),
        EngineConfig {
            disk_limit_bytes: 64 * 1024,
            flow_control: FlowControl::Fail,
            ..EngineConfig::default()
        },
    );
    let (s, _rx) = engine.connect(None);
    let big = "x".repeat(16 * 1024);
    let mut refused = false;
    for _ in 0..16 {
        match s.send(&Destination::queue("disk"), persistent(&big)).await {
            Ok(()) => {}
            Err(EngineError::ResourceLimit { reason, .. }) => {
                assert!(reason.contains("disk"), "{reason}");
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused, "the disk limit must stop persistent sends");
    s.send(&Destination::queue("disk"), msg(&big))
        .await
        .unwrap();
}

#[tokio::test]
async fn ids_of_acknowledged_messages_are_not_reused_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first_seq;
    {
        let engine = open(dir.path(), EngineConfig::default());
        let (s, mut rx) = engine.connect(None);
        s.send(&Destination::queue("ids"), persistent("a"))
            .await
            .unwrap();
        let c = s.subscribe(queue("ids")).unwrap();
        let d = next(&mut rx).await;
        first_seq = d.seq;
        s.ack(c, &[d.seq]).unwrap().await.unwrap();
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let (s, mut rx) = engine.connect(None);
    s.send(&Destination::queue("ids"), persistent("b"))
        .await
        .unwrap();
    s.subscribe(queue("ids")).unwrap();
    let d = next(&mut rx).await;
    assert_eq!(body(&d), "b");
    assert!(
        d.seq > first_seq,
        "seq {} reused (first was {first_seq})",
        d.seq
    );
}

fn retained_topic(pattern: &str) -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(ConsumerSource::Topic(pattern.into()));
    spec.retained = true;
    spec
}

#[tokio::test]
async fn retained_messages_replay_to_new_subscriptions_replace_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    engine
        .set_retained("sensors.1.temp", Some(msg("20")))
        .await
        .unwrap();
    engine
        .set_retained("sensors.1.temp", Some(msg("21")))
        .await
        .unwrap();
    engine
        .set_retained("sensors.2.temp", Some(msg("30")))
        .await
        .unwrap();
    engine.set_retained("other", Some(msg("x"))).await.unwrap();
    let (s, mut rx) = engine.connect(None);
    s.subscribe(retained_topic("sensors.*.temp")).unwrap();
    let a = next(&mut rx).await;
    let b = next(&mut rx).await;
    let mut got = vec![(body(&a), a.retained), (body(&b), b.retained)];
    got.sort();
    assert_eq!(
        got,
        vec![("21".to_string(), true), ("30".to_string(), true)]
    );
    nothing(&mut rx).await;
    // A live publish is not flagged retained; a subscription without the flag gets no replay.
    s.send(&Destination::topic("sensors.1.temp"), msg("22"))
        .await
        .unwrap();
    assert!(!next(&mut rx).await.retained);
    s.subscribe(ConsumerSpec::new(ConsumerSource::Topic("other".into())))
        .unwrap();
    nothing(&mut rx).await;
    engine.set_retained("sensors.2.temp", None).await.unwrap();
    assert_eq!(engine.retained_matching("sensors.>").len(), 1);
}

#[tokio::test]
async fn retained_messages_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), EngineConfig::default());
        engine.set_retained("a.b", Some(msg("old"))).await.unwrap();
        engine.set_retained("a.b", Some(msg("new"))).await.unwrap();
        engine.set_retained("a.c", Some(msg("gone"))).await.unwrap();
        engine.set_retained("a.c", None).await.unwrap();
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let kept = engine.retained_matching("a.>");
    assert_eq!(kept.len(), 1);
    assert_eq!(&kept[0].body[..], b"new");
    assert_eq!(kept[0].address, "a.b");
}

fn shared(pattern: &str, name: &str, durable: bool) -> ConsumerSpec {
    ConsumerSpec::new(ConsumerSource::SharedTopic {
        pattern: pattern.into(),
        subscription: name.into(),
        durable,
    })
}

#[tokio::test]
async fn shared_subscription_splits_messages_between_sessions_and_goes_with_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (a, mut rx_a) = engine.connect(None);
    let (b, mut rx_b) = engine.connect(None);
    let (plain, mut rx_plain) = engine.connect(None);
    let ca = a.subscribe(shared("metrics.#", "g1", false)).unwrap();
    let cb = b.subscribe(shared("metrics.#", "g1", false)).unwrap();
    plain
        .subscribe(ConsumerSpec::new(ConsumerSource::Topic("metrics.#".into())))
        .unwrap();
    for i in 0..4 {
        plain
            .send(&Destination::topic("metrics.cpu"), msg(&i.to_string()))
            .await
            .unwrap();
    }
    // The group gets each message once, round robin; a plain subscriber gets all four.
    for _ in 0..2 {
        let d = next(&mut rx_a).await;
        a.ack(ca, &[d.seq]).unwrap().await.unwrap();
        let d = next(&mut rx_b).await;
        b.ack(cb, &[d.seq]).unwrap().await.unwrap();
    }
    for _ in 0..4 {
        next(&mut rx_plain).await;
    }
    a.unsubscribe(ca);
    plain
        .send(&Destination::topic("metrics.cpu"), msg("for b"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut rx_b).await), "for b");
    b.unsubscribe(cb);
    // Gone with its last consumer: a new member starts empty.
    plain
        .send(&Destination::topic("metrics.cpu"), msg("lost"))
        .await
        .unwrap();
    let (c, mut rx_c) = engine.connect(None);
    c.subscribe(shared("metrics.#", "g1", false)).unwrap();
    nothing(&mut rx_c).await;
}

#[tokio::test]
async fn durable_shared_subscription_collects_without_consumers_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), EngineConfig::default());
        let (a, _rx) = engine.connect(None);
        let c = a.subscribe(shared("orders.>", "billing", true)).unwrap();
        a.unsubscribe(c);
        a.send(&Destination::topic("orders.new"), persistent("o-1"))
            .await
            .unwrap();
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let (x, mut rx_x) = engine.connect(Some("x".into()));
    let (y, mut rx_y) = engine.connect(Some("y".into()));
    let cx = x.subscribe(shared("orders.>", "billing", true)).unwrap();
    y.subscribe(shared("orders.>", "billing", true)).unwrap();
    let d = next(&mut rx_x).await;
    assert_eq!(body(&d), "o-1");
    x.ack(cx, &[d.seq]).unwrap().await.unwrap();
    nothing(&mut rx_y).await;
}

#[tokio::test]
async fn durable_subscriptions_are_listed_with_tags_updated_in_place_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tagged = |tag: &str| {
        let mut spec = ConsumerSpec::new(ConsumerSource::DurableTopic {
            pattern: "t.#".into(),
            subscription: "t/#".into(),
        });
        spec.tag = Some(tag.into());
        spec
    };
    {
        let engine = open(dir.path(), EngineConfig::default());
        let (mut s, _rx) = engine.connect(Some("dev-1".into()));
        let c = s.subscribe(tagged("qos=1")).unwrap();
        s.unsubscribe(c);
        s.send(&Destination::topic("t.a"), persistent("kept"))
            .await
            .unwrap();
        // Same subscription, new options: the queued message stays.
        s.subscribe(tagged("qos=2")).unwrap();
        s.close();
        engine.close().unwrap();
    }
    let engine = open(dir.path(), EngineConfig::default());
    let subs = engine.durable_subscriptions("dev-1");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].tag.as_deref(), Some("qos=2"));
    assert_eq!(subs[0].pattern, "t.#");
    assert_eq!(subs[0].pending, 1);
    assert!(engine.durable_subscriptions("other").is_empty());
    assert_eq!(engine.remove_durable_subscriptions("dev-1"), 1);
    assert!(engine.durable_subscriptions("dev-1").is_empty());
}

#[tokio::test]
async fn browse_shows_waiting_messages_without_consuming() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let (producer, _) = engine.connect(None);
    for i in 0..3 {
        producer
            .send(&Destination::queue("b"), msg(&format!("m{i}")))
            .await
            .unwrap();
    }
    // Waiting messages only (as a JMS queue browser sees them), with their delivery counts.
    let waiting = |limit: usize| -> Vec<(Arc<Message>, u32)> {
        engine
            .browse_queue("b", limit)
            .unwrap()
            .into_iter()
            .filter(|b| !b.unacked)
            .map(|b| (b.message, b.delivery_count))
            .collect()
    };
    let bodies = |v: Vec<(Arc<Message>, u32)>| -> Vec<String> {
        v.iter()
            .map(|(m, _)| String::from_utf8_lossy(&m.body).into_owned())
            .collect()
    };
    assert_eq!(bodies(waiting(10)), ["m0", "m1", "m2"]);
    assert_eq!(bodies(waiting(2)), ["m0", "m1"]);
    assert!(engine.browse_queue("nope", 10).is_err());
    // A delivered, unacknowledged message is no longer waiting; the others still are.
    let (consumer, mut rx) = engine.connect(None);
    let mut spec = queue("b");
    spec.prefetch = Some(1);
    let c = consumer.subscribe(spec).unwrap();
    let d = next(&mut rx).await;
    assert_eq!(body(&d), "m0");
    assert_eq!(bodies(waiting(10)), ["m1", "m2"]);
    // Back in the queue when its consumer goes: waiting again, with its delivery count.
    consumer.unsubscribe(c);
    let shown = waiting(10);
    assert_eq!(bodies(shown.clone()), ["m0", "m1", "m2"]);
    assert!(shown[0].1 >= 1, "{shown:?}");
}
