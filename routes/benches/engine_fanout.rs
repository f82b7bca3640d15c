//! The engine's CPU per delivery, without sockets or codecs: one producer publishes
//! non-persistent 1 KiB messages to a topic with `ENGINE_BENCH_CONSUMERS` subscribers (default
//! 4, the `bench/compare` fanout shape; 1 is a plain queue hand-off), each consumer acking every
//! delivery in batches as the gateway's auto-ack does. All on one thread, so the figure is the
//! engine's own work (publish, route, dispatch, event hand-off, ack) and varies far less between
//! runs than a socket benchmark on a shared machine.
//!
//! `cargo bench -p routes --bench engine_fanout`; knobs `ENGINE_BENCH_MESSAGES` (100000 per
//! round), `ENGINE_BENCH_ROUNDS` (7), `ENGINE_BENCH_CONSUMERS` (4). Prints the median and the
//! range of ns per delivery over the rounds (the first round is a warm-up and not counted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::env_u64;

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Destination, Engine, EngineConfig, Message, SessionEvent,
};
use std::sync::Arc;
use std::time::Instant;

/// One round: `messages` publishes, every delivery received and acked. Returns ns per delivery.
async fn round(engine: &Arc<Engine>, topic: &str, consumers: usize, messages: u64) -> f64 {
    let (producer, _) = engine.connect(None);
    let mut readers = Vec::new();
    for _ in 0..consumers {
        let (session, rx) = engine.connect(None);
        let id = session
            .subscribe(ConsumerSpec {
                prefetch: Some(1000),
                ..ConsumerSpec::new(ConsumerSource::Topic(topic.to_string()))
            })
            .unwrap();
        readers.push((session, rx, id, Vec::with_capacity(64)));
    }
    let destination = Destination::topic(topic);
    let body = Bytes::from(vec![b'x'; 1024]);
    let start = Instant::now();
    let mut delivered = 0u64;
    for _ in 0..messages {
        let message = Message {
            body: body.clone(),
            ..Message::default()
        };
        drop(producer.publish(&destination, message).await.unwrap());
        for (session, rx, id, pending) in &mut readers {
            while let Ok(event) = rx.try_recv() {
                if let SessionEvent::Deliver(d) = event {
                    delivered += 1;
                    pending.push(d.seq);
                }
            }
            // The gateway's auto-ack flushes about this many at once under load.
            if pending.len() >= 32 {
                drop(session.ack(*id, pending).unwrap());
                pending.clear();
            }
        }
    }
    for (session, rx, id, pending) in &mut readers {
        while delivered < messages * consumers as u64 {
            match rx.try_recv() {
                Ok(SessionEvent::Deliver(d)) => {
                    delivered += 1;
                    pending.push(d.seq);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if !pending.is_empty() {
            drop(session.ack(*id, pending).unwrap());
            pending.clear();
        }
    }
    let ns = start.elapsed().as_nanos() as f64;
    assert_eq!(
        delivered,
        messages * consumers as u64,
        "every delivery arrived"
    );
    ns / delivered as f64
}

fn main() {
    let messages = env_u64("ENGINE_BENCH_MESSAGES", 100_000);
    let rounds = env_u64("ENGINE_BENCH_ROUNDS", 7).max(1);
    let consumers = env_u64("ENGINE_BENCH_CONSUMERS", 4).max(1) as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut options = JournalOptions::new(dir.path().join("journal"));
    options.sync = SyncPolicy::Never;
    let engine = Engine::open(EngineConfig::default(), options).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut figures: Vec<f64> = (0..=rounds)
        .map(|r| rt.block_on(round(&engine, &format!("fanout.{r}"), consumers, messages)))
        .skip(1)
        .collect();
    figures.sort_by(f64::total_cmp);
    let median = figures[figures.len() / 2];
    println!(
        "engine fanout: {consumers} consumer(s), {messages} messages x {rounds} rounds: {median:.0} ns per delivery (median; range {:.0}-{:.0})",
        figures[0],
        figures[figures.len() - 1]
    );
    engine.close().unwrap();
}
