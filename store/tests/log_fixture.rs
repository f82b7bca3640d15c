//! The on-disk format of `store::log` version 1, pinned by a committed fixture
//! (`tests/log_fixtures/v1`): it must keep opening, and this build must keep writing exactly
//! those bytes. Regenerate only for a deliberate format change (with a new version):
//! `LOG_FIXTURE_REGENERATE=1 cargo test -p store --test log_fixture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use store::log::{Log, LogOptions, LogRecord, LogSync, StreamConfig};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/log_fixtures/v1")
}

fn opts(dir: &Path) -> LogOptions {
    LogOptions {
        segment_bytes: 512,
        index_interval_bytes: 128,
        sync: LogSync::Never,
        ..LogOptions::new(dir)
    }
}

fn batch(p: u32, i: u64) -> Vec<LogRecord> {
    (0..1 + i % 3)
        .map(|j| {
            let mut r = LogRecord::new(
                1_700_000_000_000 + (i * 10 + j) as i64,
                Bytes::from(format!("p{p} batch {i} record {j}")),
            );
            if j % 2 == 0 {
                r = r.with_key(Bytes::from(format!("key-{i}")));
            }
            if i % 4 == 1 {
                r = r.with_header("trace", Bytes::from_static(b"\x00\x01"));
            }
            r
        })
        .collect()
}

const BATCHES: [u64; 2] = [20, 3];

fn write_fixture(dir: &Path) {
    let log = Log::open(opts(dir)).unwrap();
    log.create_stream(
        "orders",
        StreamConfig {
            partitions: 2,
            retention_ms: Some(86_400_000),
            retention_bytes: None,
        },
    )
    .unwrap();
    for p in 0..2u32 {
        for i in 0..BATCHES[p as usize] {
            log.append("orders", p, &batch(p, i)).unwrap();
        }
    }
    log.commit_offset("billing", "orders", 0, 12, "c1").unwrap();
    log.commit_offset("billing", "orders", 1, 2, "").unwrap();
    log.close().unwrap();
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for rel in files(from) {
        let dest = to.join(&rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(from.join(&rel), dest).unwrap();
    }
}

#[test]
fn fixture_v1_is_what_this_build_writes() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    if std::env::var_os("LOG_FIXTURE_REGENERATE").is_some() {
        let _ = fs::remove_dir_all(fixture());
        copy_tree(d.path(), &fixture());
    }
    let (ours, pinned) = (files(d.path()), files(&fixture()));
    assert_eq!(ours, pinned, "same files");
    assert!(pinned.len() > 10);
    for rel in pinned {
        assert_eq!(
            fs::read(d.path().join(&rel)).unwrap(),
            fs::read(fixture().join(&rel)).unwrap(),
            "{} differs from the v1 fixture",
            rel.display()
        );
    }
}

#[test]
fn fixture_v1_still_opens() {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), d.path());
    let log = Log::open(LogOptions {
        verify_on_open: true,
        ..opts(d.path())
    })
    .unwrap();
    assert!(log.recovery_report().truncations.is_empty());
    assert_eq!(log.streams(), vec!["orders".to_string()]);
    assert_eq!(
        log.stream_config("orders").unwrap().retention_ms,
        Some(86_400_000)
    );
    for p in 0..2u32 {
        let want: Vec<LogRecord> = (0..BATCHES[p as usize]).flat_map(|i| batch(p, i)).collect();
        let got: Vec<LogRecord> = log
            .read("orders", p, 0, 1 << 20)
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        assert_eq!(got, want);
    }
    assert!(log.segment_count("orders", 0).unwrap() > 2);
    // Batch 10's first record has timestamp ..._100; batches 0..10 hold 19 records.
    let at = log.offset_for_timestamp("orders", 0, 1_700_000_000_100);
    assert_eq!(at.unwrap(), Some(19));
    assert_eq!(
        log.committed_offset("billing", "orders", 0),
        Some((12, "c1".into()))
    );
    assert_eq!(
        log.committed_offset("billing", "orders", 1),
        Some((2, String::new()))
    );
    let next = log.latest_offset("orders", 0).unwrap();
    assert_eq!(log.append("orders", 0, &batch(0, 99)).unwrap(), next);
}
