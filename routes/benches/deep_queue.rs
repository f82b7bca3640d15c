//! Deep-queue memory benchmark (a plain bench binary, `harness = false`): how much memory a queue
//! of many 1 KiB persistent messages needs, filled, recovered after a restart, and drained.
//!
//! `cargo bench -p routes --bench deep_queue` runs three phases, each in a process of its own so
//! that the peak resident size (`VmHWM`) of each is its own:
//! 1. fill: one producer sends `DEEP_QUEUE_MESSAGES` (default 1000000) persistent 1 KiB messages
//!    to one queue (journal sync `never`, so that the disk's fsync rate is not what is measured);
//! 2. recover: the engine reopens the data directory (recovery time, resident memory);
//! 3. drain: one consumer receives and acks every message, checking order and count.
//!
//! Knobs: `DEEP_QUEUE_MESSAGES`, `DEEP_QUEUE_WINDOW` (the engine's `page_window`, default 10000),
//! `DEEP_QUEUE_MEMORY_MB` (the engine's memory limit, default 1024), `DEEP_QUEUE_DIR` (default a
//! temporary directory; it holds about 2.1 KiB per message while full).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::env_u64;

use bytes::Bytes;
use routes::store::{JournalOptions, SyncPolicy};
use routes::{
    ConsumerSource, ConsumerSpec, Destination, Engine, EngineConfig, Message, SessionEvent,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn resident_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn open(dir: &Path) -> Arc<Engine> {
    let config = EngineConfig {
        page_window: env_u64("DEEP_QUEUE_WINDOW", 10_000) as usize,
        memory_limit_bytes: env_u64("DEEP_QUEUE_MEMORY_MB", 1024) << 20,
        ..EngineConfig::default()
    };
    let mut options = JournalOptions::new(dir.join("journal"));
    options.sync = SyncPolicy::Never;
    Engine::open(config, options).unwrap()
}

fn du_mib(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir) >> 20
}

async fn fill(dir: &Path, n: u64) {
    let engine = open(dir);
    let (producer, _) = engine.connect(None);
    let q = Destination::queue("deep");
    let start = Instant::now();
    for i in 0..n {
        let mut body = format!("{i:012}:").into_bytes();
        body.resize(1024, b'x');
        producer
            .send(
                &q,
                Message {
                    body: Bytes::from(body),
                    persistent: true,
                    ..Message::default()
                },
            )
            .await
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let info = engine.queue_info("deep").unwrap();
    let (rss, hwm) = resident_mib();
    println!(
        "fill:    {n} messages in {secs:.1} s ({:.0} msg/s); queue ready {} (paged {}); engine memory {} MiB, spill {} MiB; process RSS {rss} MiB, peak {hwm} MiB; data dir {} MiB",
        n as f64 / secs,
        info.ready,
        info.paged,
        engine.memory_used() >> 20,
        engine.paged_bytes() >> 20,
        du_mib(dir)
    );
    engine.close().unwrap();
}

async fn recover_and_drain(dir: &Path, n: u64) {
    let start = Instant::now();
    let engine = open(dir);
    let secs = start.elapsed().as_secs_f64();
    let info = engine.queue_info("deep").unwrap();
    let (rss, hwm) = resident_mib();
    println!(
        "recover: {} messages in {secs:.2} s; paged {}; engine memory {} MiB, spill {} MiB; process RSS {rss} MiB, peak {hwm} MiB",
        info.ready,
        info.paged,
        engine.memory_used() >> 20,
        engine.paged_bytes() >> 20,
    );
    assert_eq!(info.ready as u64, n);
    let (reader, mut rx) = engine.connect(None);
    let consumer = reader
        .subscribe(ConsumerSpec {
            prefetch: Some(1000),
            ..ConsumerSpec::new(ConsumerSource::Queue("deep".into()))
        })
        .unwrap();
    let start = Instant::now();
    let mut expected = 0u64;
    let mut pending = Vec::with_capacity(100);
    while expected < n {
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a delivery within 30 s")
            .expect("session open");
        let SessionEvent::Deliver(d) = event else {
            continue;
        };
        let number: u64 = std::str::from_utf8(&d.message.body[..12])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(number, expected, "FIFO order");
        expected += 1;
        pending.push(d.seq);
        if pending.len() == 100 || expected == n {
            drop(reader.ack(consumer, &pending).unwrap());
            pending.clear();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (rss, hwm) = resident_mib();
    println!(
        "drain:   {n} messages in {secs:.1} s ({:.0} msg/s), in order; process RSS {rss} MiB, peak {hwm} MiB",
        n as f64 / secs
    );
    engine.close().unwrap();
}

fn main() {
    let n = env_u64("DEEP_QUEUE_MESSAGES", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("DEEP_QUEUE_PHASE").as_deref() {
        Ok("fill") => {
            let dir = PathBuf::from(std::env::var("DEEP_QUEUE_DIR").unwrap());
            runtime.block_on(fill(&dir, n));
        }
        Ok("recover") => {
            let dir = PathBuf::from(std::env::var("DEEP_QUEUE_DIR").unwrap());
            runtime.block_on(recover_and_drain(&dir, n));
        }
        _ => {
            let tmp = tempfile::tempdir().unwrap();
            let dir = std::env::var("DEEP_QUEUE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| tmp.path().to_path_buf());
            println!(
                "deep queue: {n} x 1 KiB persistent messages, page window {}, memory limit {} MiB",
                env_u64("DEEP_QUEUE_WINDOW", 10_000),
                env_u64("DEEP_QUEUE_MEMORY_MB", 1024)
            );
            for phase in ["fill", "recover"] {
                let status = Command::new(std::env::current_exe().unwrap())
                    .env("DEEP_QUEUE_PHASE", phase)
                    .env("DEEP_QUEUE_DIR", &dir)
                    .env("DEEP_QUEUE_MESSAGES", n.to_string())
                    .status()
                    .unwrap();
                assert!(status.success(), "phase {phase} failed");
            }
        }
    }
}
