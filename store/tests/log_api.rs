//! Behaviour of `store::log` through its public API: offsets, reads, segment rolls, reopen,
//! timestamps, retention, partitioning, consumer offsets, concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use store::log::{
    kafka_partition, Log, LogError, LogOptions, LogRecord, LogSync, RetentionReason, StreamConfig,
};

fn opts(dir: &Path) -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        sync: LogSync::Never,
        ..LogOptions::new(dir)
    }
}

fn rec(ts: i64, value: &str) -> LogRecord {
    LogRecord::new(ts, Bytes::copy_from_slice(value.as_bytes()))
}

fn values(log: &Log, stream: &str, p: u32, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let got = log.read(stream, p, at, 1000).unwrap();
        if got.is_empty() {
            return out;
        }
        for r in got {
            assert_eq!(r.offset, at, "offsets are consecutive");
            at += 1;
            out.push((
                r.offset,
                String::from_utf8(r.record.value_bytes().to_vec()).unwrap(),
            ));
        }
    }
}

fn seg_dir(dir: &Path, stream: &str, p: u32) -> PathBuf {
    dir.join("streams").join(stream).join(p.to_string())
}

#[test]
fn append_returns_base_offsets_and_read_returns_records_in_order() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(2)).unwrap();
    assert_eq!(log.append("s", 0, &[rec(1, "a"), rec(2, "b")]).unwrap(), 0);
    assert_eq!(log.append("s", 0, &[rec(3, "c")]).unwrap(), 2);
    assert_eq!(log.append("s", 1, &[rec(3, "x")]).unwrap(), 0);
    let r = log.read("s", 0, 0, 1 << 20).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[2].offset, 2);
    assert_eq!(r[2].record, rec(3, "c"));
    // Reading from the middle of a batch starts at the requested offset.
    let r = log.read("s", 0, 1, 1 << 20).unwrap();
    assert_eq!(r.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(log.earliest_offset("s", 0).unwrap(), 0);
    assert_eq!(log.latest_offset("s", 0).unwrap(), 3);
    assert_eq!(log.latest_offset("s", 1).unwrap(), 1);
}

#[test]
fn keys_and_headers_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    let r = LogRecord::new(-5, Bytes::from_static(b"v"))
        .with_key(Bytes::new())
        .with_header("a", Bytes::from_static(b"1"))
        .with_header("a", Bytes::new());
    log.append("s", 0, std::slice::from_ref(&r)).unwrap();
    drop(log);
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(log.read("s", 0, 0, 0).unwrap()[0].record, r);
}

#[test]
fn read_limits_bytes_but_always_returns_one_record() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    let big = "x".repeat(1000);
    let batch: Vec<_> = (0..3).map(|i| rec(i, &big)).collect();
    log.append("s", 0, &batch).unwrap();
    assert_eq!(log.read("s", 0, 0, 0).unwrap().len(), 1);
    assert_eq!(log.read("s", 0, 0, 10).unwrap().len(), 1);
    assert_eq!(log.read("s", 0, 0, 2100).unwrap().len(), 2);
    assert_eq!(log.read("s", 0, 2, 0).unwrap()[0].offset, 2);
    // Batches: the first is returned whole even beyond max_bytes.
    let b = log.read_batches("s", 0, 1, 0).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].base_offset(), b[0].record_count()), (0, 3));
}

#[test]
fn out_of_range_reads_are_errors_and_the_end_is_empty() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    assert!(log.read("s", 0, 0, 100).unwrap().is_empty());
    log.append("s", 0, &[rec(1, "a")]).unwrap();
    assert!(log.read("s", 0, 1, 100).unwrap().is_empty());
    assert!(matches!(
        log.read("s", 0, 2, 100),
        Err(LogError::OffsetOutOfRange {
            requested: 2,
            earliest: 0,
            latest: 1
        })
    ));
    assert!(matches!(
        log.read("s", 1, 0, 1),
        Err(LogError::PartitionNotFound { .. })
    ));
    assert!(matches!(
        log.read("t", 0, 0, 1),
        Err(LogError::StreamNotFound(_))
    ));
    assert!(matches!(log.append("s", 0, &[]), Err(LogError::EmptyBatch)));
}

#[test]
fn segments_roll_and_everything_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    let mut expect = Vec::new();
    {
        let log = Log::open(opts(d.path())).unwrap();
        log.create_stream("s", StreamConfig::new(1)).unwrap();
        for i in 0..200u64 {
            let v = format!("value-{i}-{}", "p".repeat((i % 50) as usize));
            assert_eq!(log.append("s", 0, &[rec(i as i64, &v)]).unwrap(), i);
            expect.push((i, v));
        }
        assert!(log.segment_count("s", 0).unwrap() > 3);
        assert_eq!(values(&log, "s", 0, 0), expect);
        log.close().unwrap();
        assert!(matches!(
            log.append("s", 0, &[rec(0, "z")]),
            Err(LogError::Closed)
        ));
    }
    let log = Log::open(opts(d.path())).unwrap();
    assert!(log.recovery_report().truncations.is_empty());
    assert_eq!(values(&log, "s", 0, 0), expect);
    assert_eq!(values(&log, "s", 0, 137), expect[137..].to_vec());
    assert_eq!(log.append("s", 0, &[rec(0, "next")]).unwrap(), 200);
    // Every sealed segment is named by its base offset and has both index files.
    let mut names: Vec<String> = std::fs::read_dir(seg_dir(d.path(), "s", 0))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names[0], "00000000000000000000.index");
    assert_eq!(names[1], "00000000000000000000.log");
    assert_eq!(names[2], "00000000000000000000.timeindex");
}

#[test]
fn missing_index_files_are_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    {
        let log = Log::open(opts(d.path())).unwrap();
        log.create_stream("s", StreamConfig::new(1)).unwrap();
        for i in 0..300 {
            log.append("s", 0, &[rec(i, &format!("{i:040}"))]).unwrap();
        }
    }
    let pdir = seg_dir(d.path(), "s", 0);
    let mut removed = 0;
    for e in std::fs::read_dir(&pdir).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().unwrap().to_str().unwrap().to_string();
        if ext == "index" || ext == "timeindex" {
            std::fs::remove_file(&p).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 4);
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(values(&log, "s", 0, 0).len(), 300);
    assert_eq!(
        log.read("s", 0, 123, 0).unwrap()[0].record.timestamp_ms,
        123
    );
    assert_eq!(log.offset_for_timestamp("s", 0, 250).unwrap(), Some(250));
    drop(log);
    // The rebuilt index files are back for every segment.
    let count = |ext: &str| {
        std::fs::read_dir(&pdir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == ext)
            .count()
    };
    assert_eq!(count("index"), count("log"));
    assert_eq!(count("timeindex"), count("log"));
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    // Timestamps are not monotonic: 10, 20, 15, 30, 25, ... in batches of 3.
    let mut ts = Vec::new();
    for b in 0..100i64 {
        let batch: Vec<_> = (0..3)
            .map(|i| {
                let t = b * 10 + [0, 7, 3][i as usize];
                ts.push(t);
                rec(t, &"v".repeat(40))
            })
            .collect();
        log.append("s", 0, &batch).unwrap();
    }
    assert!(log.segment_count("s", 0).unwrap() > 3);
    let model = |target: i64| ts.iter().position(|&t| t >= target).map(|p| p as u64);
    for target in [-100, 0, 1, 4, 5, 7, 8, 333, 500, 995, 997, 998, 5000] {
        assert_eq!(
            log.offset_for_timestamp("s", 0, target).unwrap(),
            model(target),
            "target {target}"
        );
    }
    drop(log);
    let log = Log::open(opts(d.path())).unwrap();
    for target in (0..1000).step_by(37) {
        assert_eq!(
            log.offset_for_timestamp("s", 0, target).unwrap(),
            model(target),
            "target {target}"
        );
    }
}

#[test]
fn retention_by_age_deletes_only_old_sealed_segments() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    let cfg = StreamConfig {
        retention_ms: Some(1000),
        ..StreamConfig::new(1)
    };
    log.create_stream("s", cfg).unwrap();
    for i in 0..100i64 {
        log.append("s", 0, &[rec(i * 100, &"a".repeat(200))])
            .unwrap();
    }
    let segs = log.segment_count("s", 0).unwrap();
    assert!(segs > 3);
    // At time 0 every record (timestamps 0..9_900) is younger than 1000 ms.
    let report = log.enforce_retention(0).unwrap();
    assert!(report.deleted.is_empty());
    let report = log.enforce_retention(5_000).unwrap();
    assert!(!report.deleted.is_empty());
    for del in &report.deleted {
        assert_eq!(del.reason, RetentionReason::Age);
        // Its newest record (offset next_offset - 1, timestamp 100 * offset) is too old.
        assert!(5_000 - ((del.next_offset - 1) as i64 * 100) > 1000);
    }
    let earliest = log.earliest_offset("s", 0).unwrap();
    assert_eq!(earliest, report.deleted.last().unwrap().next_offset);
    // The first kept segment has a record newer than 5_000 - 1000.
    let kept = log.read("s", 0, earliest, 1 << 20).unwrap();
    assert!(kept.iter().any(|r| r.record.timestamp_ms >= 4_000));
    assert!(matches!(
        log.read("s", 0, 0, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.read("s", 0, earliest, 0).unwrap()[0].offset, earliest);
    // Far in the future everything sealed goes, the active segment stays.
    log.enforce_retention(i64::MAX).unwrap();
    assert_eq!(log.segment_count("s", 0).unwrap(), 1);
    assert_eq!(log.latest_offset("s", 0).unwrap(), 100);
    assert!(!log
        .read("s", 0, log.earliest_offset("s", 0).unwrap(), 0)
        .unwrap()
        .is_empty());
    drop(log);
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(log.latest_offset("s", 0).unwrap(), 100);
    assert_eq!(log.append("s", 0, &[rec(0, "x")]).unwrap(), 100);
}

#[test]
fn retention_by_size_keeps_at_least_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    let cfg = StreamConfig {
        retention_bytes: Some(10_000),
        ..StreamConfig::new(2)
    };
    log.create_stream("s", cfg).unwrap();
    for i in 0..200i64 {
        log.append("s", 0, &[rec(i, &"a".repeat(200))]).unwrap();
    }
    let before = log.partition_size_bytes("s", 0).unwrap();
    assert!(before > 30_000);
    let report = log.enforce_retention(0).unwrap();
    assert!(report
        .deleted
        .iter()
        .all(|d| d.reason == RetentionReason::Size && d.partition == 0));
    let after = log.partition_size_bytes("s", 0).unwrap();
    assert_eq!(before - after, report.bytes_deleted());
    assert!(after >= 10_000, "keeps at least retention_bytes");
    assert!(
        after < 10_000 + 4096 + 300,
        "keeps at most one segment more"
    );
    assert!(log.enforce_retention(0).unwrap().deleted.is_empty());
    let earliest = log.earliest_offset("s", 0).unwrap();
    assert_eq!(values(&log, "s", 0, earliest).len() as u64, 200 - earliest);
}

#[test]
fn partition_for_uses_kafka_partitioner_and_round_robin() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(7)).unwrap();
    for key in [&b"kafka"[..], b"21", b"", b"order-42"] {
        assert_eq!(
            log.partition_for("s", Some(key)).unwrap(),
            kafka_partition(key, 7)
        );
    }
    // murmur2("kafka") = 0xd067cf64 (librdkafka's vectors), toPositive = 0x5067cf64.
    assert_eq!(
        log.partition_for("s", Some(b"kafka")).unwrap(),
        0x5067_cf64 % 7
    );
    let rr: Vec<u32> = (0..14)
        .map(|_| log.partition_for("s", None).unwrap())
        .collect();
    let mut counts = [0; 7];
    for p in rr {
        counts[p as usize] += 1;
    }
    assert_eq!(counts, [2; 7]);
}

#[test]
fn create_stream_is_idempotent_and_checks_names_and_counts() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(3)).unwrap();
    log.append("s", 0, &[rec(0, "a")]).unwrap();
    let cfg = StreamConfig {
        retention_ms: Some(5),
        ..StreamConfig::new(3)
    };
    log.create_stream("s", cfg.clone()).unwrap();
    assert_eq!(log.stream_config("s"), Some(cfg.clone()));
    assert_eq!(log.latest_offset("s", 0).unwrap(), 1, "data kept");
    assert!(matches!(
        log.create_stream("s", StreamConfig::new(4)),
        Err(LogError::PartitionCountMismatch {
            existing: 3,
            requested: 4,
            ..
        })
    ));
    assert!(matches!(
        log.create_stream("a/b", StreamConfig::new(1)),
        Err(LogError::InvalidStreamName(_))
    ));
    assert!(matches!(
        log.create_stream("..", StreamConfig::new(1)),
        Err(LogError::InvalidStreamName(_))
    ));
    assert!(matches!(
        log.create_stream("z", StreamConfig::new(0)),
        Err(LogError::InvalidConfig(_))
    ));
    log.create_stream("a", StreamConfig::new(1)).unwrap();
    assert_eq!(log.streams(), vec!["a".to_string(), "s".to_string()]);
    drop(log);
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(log.stream_config("s"), Some(cfg));
    assert_eq!(log.streams().len(), 2);
}

#[test]
fn delete_stream_removes_data_and_committed_offsets() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(2)).unwrap();
    log.create_stream("t", StreamConfig::new(1)).unwrap();
    log.append("s", 1, &[rec(0, "a")]).unwrap();
    log.commit_offset("g", "s", 1, 1, "m").unwrap();
    log.commit_offset("g", "t", 0, 0, "").unwrap();
    let rx = log.subscribe("s", 1).unwrap();
    log.delete_stream("s").unwrap();
    assert!(rx.has_changed().is_err(), "watch closes with the stream");
    assert!(matches!(
        log.append("s", 0, &[rec(0, "a")]),
        Err(LogError::StreamNotFound(_))
    ));
    assert!(matches!(
        log.delete_stream("s"),
        Err(LogError::StreamNotFound(_))
    ));
    assert_eq!(log.committed_offset("g", "s", 1), None);
    assert_eq!(log.committed_offset("g", "t", 0), Some((0, String::new())));
    assert!(!d.path().join("streams").join("s").exists());
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    assert_eq!(log.latest_offset("s", 0).unwrap(), 0);
    drop(log);
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(log.streams(), vec!["s".to_string(), "t".to_string()]);
    assert_eq!(log.committed_offset("g", "s", 1), None);
}

#[test]
fn committed_offsets_survive_reopen_and_compaction() {
    let d = tempfile::tempdir().unwrap();
    {
        let log = Log::open(opts(d.path())).unwrap();
        log.create_stream("s", StreamConfig::new(3)).unwrap();
        for i in 0..3000u64 {
            log.commit_offset("group-a", "s", (i % 3) as u32, i, &format!("m{i}"))
                .unwrap();
        }
        log.commit_offset("weird group/name ☃", "s", 0, 7, "")
            .unwrap();
        assert_eq!(
            log.committed_offset("group-a", "s", 2),
            Some((2999, "m2999".into()))
        );
        assert!(matches!(
            log.commit_offset("g", "s", 3, 0, ""),
            Err(LogError::PartitionNotFound { .. })
        ));
        assert!(matches!(
            log.commit_offset(&"g".repeat(121), "s", 0, 0, ""),
            Err(LogError::InvalidGroupName(_))
        ));
        assert!(matches!(
            log.commit_offset("g", "s", 0, 0, &"m".repeat(5000)),
            Err(LogError::MetadataTooLarge { .. })
        ));
    }
    // 3000 commits of 3 keys were compacted while running: the file is small.
    let files: Vec<_> = std::fs::read_dir(d.path().join("groups"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 2);
    for f in files {
        assert!(f.unwrap().metadata().unwrap().len() < 64 * 1024);
    }
    let log = Log::open(opts(d.path())).unwrap();
    assert_eq!(
        log.committed_offset("group-a", "s", 0),
        Some((2997, "m2997".into()))
    );
    assert_eq!(
        log.committed_offset("group-a", "s", 1),
        Some((2998, "m2998".into()))
    );
    assert_eq!(
        log.committed_offset("weird group/name ☃", "s", 0),
        Some((7, String::new()))
    );
    assert_eq!(log.committed_offset("nobody", "s", 0), None);
    assert_eq!(log.group_offsets("group-a").len(), 3);
    assert_eq!(
        log.groups(),
        vec!["group-a".to_string(), "weird group/name ☃".to_string()]
    );
}

#[test]
fn concurrent_appends_to_one_partition_are_serialized() {
    let d = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(opts(d.path())).unwrap());
    log.create_stream("s", StreamConfig::new(2)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut bases = Vec::new();
                for i in 0..100 {
                    let batch = vec![rec(i, &format!("{t}-{i}-0")), rec(i, &format!("{t}-{i}-1"))];
                    bases.push(log.append("s", (t % 2) as u32, &batch).unwrap());
                    if i % 10 == 0 {
                        let _ = log.read("s", (t % 2) as u32, 0, 500).unwrap();
                    }
                }
                (t, bases)
            })
        })
        .collect();
    for h in threads {
        let (t, bases) = h.join().unwrap();
        for (i, base) in bases.into_iter().enumerate() {
            let got = log.read("s", (t % 2) as u32, base, 0).unwrap();
            let want = format!("{t}-{i}-0");
            assert_eq!(got[0].record.value_bytes(), want.as_bytes());
        }
    }
    for p in 0..2 {
        assert_eq!(log.latest_offset("s", p).unwrap(), 400);
        assert_eq!(values(&log, "s", p, 0).len(), 400);
    }
}

#[test]
fn subscribers_see_the_new_end_offset() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(opts(d.path())).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    let mut rx = log.subscribe("s", 0).unwrap();
    assert_eq!(*rx.borrow_and_update(), 0);
    log.append("s", 0, &[rec(0, "a"), rec(0, "b")]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
}

#[test]
fn sync_always_appends_and_reopens() {
    let d = tempfile::tempdir().unwrap();
    let o = LogOptions {
        sync: LogSync::Always,
        ..opts(d.path())
    };
    {
        let log = Log::open(o.clone()).unwrap();
        log.create_stream("s", StreamConfig::new(1)).unwrap();
        for i in 0..50 {
            log.append("s", 0, &[rec(i, "durable")]).unwrap();
        }
        // No close: the data was synced by each append.
        std::mem::forget(log);
    }
    let log = Log::open(o).unwrap();
    assert_eq!(values(&log, "s", 0, 0).len(), 50);
}

#[test]
fn unsupported_format_is_refused() {
    let d = tempfile::tempdir().unwrap();
    drop(Log::open(opts(d.path())).unwrap());
    std::fs::write(d.path().join("FORMAT"), "gateway-log 99\n").unwrap();
    assert!(matches!(
        Log::open(opts(d.path())),
        Err(LogError::UnsupportedFormat { .. })
    ));
}

#[test]
fn invalid_options_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let o = LogOptions {
        segment_bytes: 10,
        ..opts(d.path())
    };
    assert!(matches!(Log::open(o), Err(LogError::InvalidConfig(_))));
}

#[test]
fn reads_stay_consistent_while_segments_roll_and_retention_deletes() {
    let d = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(opts(d.path())).unwrap());
    let cfg = StreamConfig {
        retention_bytes: Some(8192),
        ..StreamConfig::new(1)
    };
    log.create_stream("s", cfg).unwrap();
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..2000u64 {
                log.append("s", 0, &[rec(i as i64, &format!("{i:08}"))])
                    .unwrap();
                if i % 50 == 0 {
                    log.enforce_retention(0).unwrap();
                }
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        let from = log.earliest_offset("s", 0).unwrap();
        match log.read("s", 0, from, 2000) {
            Ok(got) => {
                for r in got {
                    assert_eq!(
                        r.record.value_bytes(),
                        format!("{:08}", r.offset).as_bytes()
                    );
                    checked += 1;
                }
            }
            // Retention may remove the segment between the two calls.
            Err(LogError::OffsetOutOfRange {
                requested,
                earliest,
                ..
            }) => assert!(requested < earliest),
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
    assert!(checked > 0);
    assert!(log.earliest_offset("s", 0).unwrap() > 0);
    assert_eq!(log.latest_offset("s", 0).unwrap(), 2000);
}
