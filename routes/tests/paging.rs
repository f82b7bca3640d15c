//! Paging: deep queues keep a window of ready messages in memory and the rest in spill files,
//! read back in order as the queue drains, at run time and after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Delivery, Destination, DestinationKind, Engine, EngineConfig,
    Message, SessionEvent,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const KB: usize = 1024;

fn open(dir: &Path, config: EngineConfig) -> Arc<Engine> {
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(config, options).expect("engine opens")
}

fn windowed(window: usize) -> EngineConfig {
    EngineConfig {
        page_window: window,
        ..EngineConfig::default()
    }
}

/// A 1 KB message whose body starts with its number.
fn numbered(i: usize, persistent: bool) -> Message {
    let mut body = format!("{i:08}:").into_bytes();
    body.resize(KB, b'x');
    Message {
        body: Bytes::from(body),
        persistent,
        priority: 4,
        ..Message::default()
    }
}

fn number(d: &Delivery) -> usize {
    let text = String::from_utf8_lossy(d.message.body.get(..8).unwrap_or_default()).into_owned();
    text.parse().unwrap()
}

async fn next(rx: &mut UnboundedReceiver<SessionEvent>) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(SessionEvent::Deliver(d))) => *d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Spill files hold the encoded message (body plus headers): a little over 1 KB each here.
fn assert_paged_about(engine: &Engine, messages: u64) {
    let bytes = engine.paged_bytes();
    let body = messages * KB as u64;
    assert!(
        (body..body + messages * 128).contains(&bytes),
        "{bytes} paged bytes for {messages} messages of 1 KB"
    );
}

fn spill_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("paging"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn consumer(name: &str, prefetch: u32) -> ConsumerSpec {
    ConsumerSpec {
        prefetch: Some(prefetch),
        ..ConsumerSpec::new(ConsumerSource::Queue(name.into()))
    }
}

/// Receives and acks `n` messages one by one, returning their numbers in arrival order.
async fn drain(
    session: &routes::Session,
    rx: &mut UnboundedReceiver<SessionEvent>,
    n: usize,
) -> Vec<usize> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let d = next(rx).await;
        assert_eq!(d.message.body.len(), KB);
        got.push(number(&d));
        session.ack(d.consumer, &[d.seq]).unwrap().await.unwrap();
    }
    got
}

#[tokio::test]
async fn deep_queue_pages_out_and_drains_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), windowed(100));
    let (producer, _) = engine.connect(None);
    let q = Destination::queue("deep");
    for i in 0..5000 {
        // Persistent and non-persistent alike: the spill file is a cache, not the journal.
        producer.send(&q, numbered(i, i % 3 != 0)).await.unwrap();
    }
    let info = engine.queue_info("deep").unwrap();
    assert_eq!(info.ready, 5000);
    assert_eq!(info.paged, 4900);
    assert_eq!(engine.memory_used(), 100 * KB as u64);
    assert_paged_about(&engine, 4900);
    assert!(spill_files(dir.path()) >= 1);

    let (reader, mut rx) = engine.connect(None);
    reader.subscribe(consumer("deep", 10)).unwrap();
    let got = drain(&reader, &mut rx, 5000).await;
    assert_eq!(
        got,
        (0..5000).collect::<Vec<_>>(),
        "FIFO across the page boundary"
    );
    let info = engine.queue_info("deep").unwrap();
    assert_eq!((info.ready, info.paged, info.unacked), (0, 0, 0));
    assert_eq!(engine.memory_used(), 0);
    assert_eq!(engine.paged_bytes(), 0);
}

#[tokio::test]
async fn deep_queue_comes_back_paged_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), windowed(100));
        let (producer, _) = engine.connect(None);
        for i in 0..3000 {
            producer
                .send(&Destination::queue("jobs"), numbered(i, true))
                .await
                .unwrap();
        }
        // The first one is delivered and not acked: it comes back with its count.
        let (reader, mut rx) = engine.connect(None);
        reader.subscribe(consumer("jobs", 1)).unwrap();
        let first = next(&mut rx).await;
        assert_eq!(number(&first), 0);
        drop(reader);
        engine.close().unwrap();
    }
    let engine = open(dir.path(), windowed(100));
    let info = engine.queue_info("jobs").unwrap();
    assert_eq!(info.ready, 3000);
    assert_eq!(info.paged, 2900);
    assert_eq!(engine.memory_used(), 100 * KB as u64);
    assert_paged_about(&engine, 2900);

    let (reader, mut rx) = engine.connect(None);
    reader.subscribe(consumer("jobs", 50)).unwrap();
    let first = next(&mut rx).await;
    assert_eq!(number(&first), 0);
    assert!(first.redelivered);
    assert_eq!(first.delivery_count, 2);
    reader
        .ack(first.consumer, &[first.seq])
        .unwrap()
        .await
        .unwrap();
    let rest = drain(&reader, &mut rx, 2999).await;
    assert_eq!(rest, (1..3000).collect::<Vec<_>>());
    assert_eq!(engine.paged_bytes(), 0);
}

#[tokio::test]
async fn memory_mark_pages_before_the_window_is_full_and_producers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        memory_limit_bytes: 200 * KB as u64,
        page_window: 10_000,
        ..EngineConfig::default()
    };
    let engine = open(dir.path(), config);
    let (producer, _) = engine.connect(None);
    // Five times the memory limit: without paging the producer would block at 200 KB.
    let sent = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..1000 {
            producer
                .send(&Destination::queue("big"), numbered(i, true))
                .await
                .unwrap();
        }
    })
    .await;
    assert!(sent.is_ok(), "producers must not block while paging works");
    assert!(
        engine.memory_used() <= 140 * KB as u64,
        "memory {} past the 70 % mark",
        engine.memory_used()
    );
    assert_eq!(engine.queue_info("big").unwrap().ready, 1000);
    let (reader, mut rx) = engine.connect(None);
    reader.subscribe(consumer("big", 100)).unwrap();
    let got = drain(&reader, &mut rx, 1000).await;
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_deleted_queue_gives_its_pages_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), windowed(64));
    let (owner, _) = engine.connect(None);
    let name = owner.create_temporary(DestinationKind::Queue).unwrap();
    for i in 0..500 {
        owner
            .send(&Destination::queue(name.clone()), numbered(i, false))
            .await
            .unwrap();
    }
    assert_paged_about(&engine, 500 - 64);
    drop(owner);
    // The temporary queue dies with its session, and its spill pages with it.
    for _ in 0..50 {
        if engine.paged_bytes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.paged_bytes(), 0);
    assert_eq!(engine.memory_used(), 0);
}

#[tokio::test]
async fn window_zero_never_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), windowed(0));
    let (producer, _) = engine.connect(None);
    for i in 0..300 {
        producer
            .send(&Destination::queue("flat"), numbered(i, true))
            .await
            .unwrap();
    }
    assert_eq!(engine.queue_info("flat").unwrap().paged, 0);
    assert_eq!(engine.memory_used(), 300 * KB as u64);
    assert_eq!(spill_files(dir.path()), 0);
}

#[tokio::test]
async fn recovery_past_the_memory_mark_streams_into_spill_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        memory_limit_bytes: 200 * KB as u64,
        page_window: 10_000,
        ..EngineConfig::default()
    };
    {
        let engine = open(dir.path(), config());
        let (producer, _) = engine.connect(None);
        for i in 0..2000 {
            producer
                .send(&Destination::queue("cold"), numbered(i, true))
                .await
                .unwrap();
        }
        let (reader, mut rx) = engine.connect(None);
        reader.subscribe(consumer("cold", 1)).unwrap();
        assert_eq!(number(&next(&mut rx).await), 0);
        drop(reader);
        engine.close().unwrap();
    }
    // Ten times the memory limit on disk: recovery holds at most the 70 % mark in memory.
    let engine = open(dir.path(), config());
    assert!(
        engine.memory_used() <= 140 * KB as u64,
        "recovered {} bytes into memory",
        engine.memory_used()
    );
    let info = engine.queue_info("cold").unwrap();
    assert_eq!(info.ready, 2000);
    assert!(info.paged >= 2000 - 140, "{} paged", info.paged);
    let (reader, mut rx) = engine.connect(None);
    reader.subscribe(consumer("cold", 20)).unwrap();
    let first = next(&mut rx).await;
    assert_eq!((number(&first), first.delivery_count), (0, 2));
    reader
        .ack(first.consumer, &[first.seq])
        .unwrap()
        .await
        .unwrap();
    let rest = drain(&reader, &mut rx, 1999).await;
    assert_eq!(rest, (1..2000).collect::<Vec<_>>());
    assert_eq!(engine.paged_bytes(), 0);
}

#[tokio::test]
async fn browse_sees_paged_messages_and_purge_removes_them_durably() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), windowed(64));
        let (producer, _) = engine.connect(None);
        for i in 0..500 {
            producer
                .send(&Destination::queue("admin"), numbered(i, true))
                .await
                .unwrap();
        }
        // Browsing past the window reads paged messages back without consuming them.
        let browsed = engine.browse_queue("admin", 100).unwrap();
        let numbers: Vec<usize> = browsed
            .iter()
            .map(|b| {
                String::from_utf8_lossy(&b.message.body[..8])
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..100).collect::<Vec<_>>());
        assert_eq!(engine.queue_info("admin").unwrap().ready, 500);

        let (purged, durable) = engine.purge_queue("admin").unwrap();
        durable.await.unwrap();
        assert_eq!(purged, 500);
        let info = engine.queue_info("admin").unwrap();
        assert_eq!((info.ready, info.paged), (0, 0));
        assert_eq!(engine.paged_bytes(), 0);
        assert_eq!(engine.memory_used(), 0);
        engine.close().unwrap();
    }
    // Purged for good: nothing comes back after a restart.
    let engine = open(dir.path(), windowed(64));
    assert_eq!(engine.queue_info("admin").unwrap().ready, 0);
}
