//! Recovery of `store::log`: torn tails are truncated, damage followed by intact data refuses
//! to open unless `repair`, and every acknowledged batch before the damage stays readable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use store::log::{Log, LogError, LogOptions, LogRecord, LogSync, StreamConfig};

fn opts(dir: &Path, segment_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes,
        index_interval_bytes: 256,
        sync: LogSync::Never,
        ..LogOptions::new(dir)
    }
}

fn seg(dir: &Path, base: u64) -> PathBuf {
    dir.join("streams/s/0").join(format!("{base:020}.log"))
}

fn batch(i: u64) -> Vec<LogRecord> {
    (0..1 + i % 4)
        .map(|j| {
            LogRecord::new(
                i as i64,
                Bytes::from(format!(
                    "batch {i} record {j} {}",
                    "x".repeat((i * 7 % 90) as usize)
                )),
            )
        })
        .collect()
}

/// Appends `n` batches with the log then "crashes" (no close, no flush); returns the byte
/// position after each batch and the offset after each batch.
fn build_crashed(dir: &Path, n: u64, segment_bytes: u64) -> (Vec<u64>, Vec<u64>) {
    let log = Log::open(opts(dir, segment_bytes)).unwrap();
    log.create_stream("s", StreamConfig::new(1)).unwrap();
    let (mut ends, mut offsets) = (Vec::new(), Vec::new());
    for i in 0..n {
        log.append("s", 0, &batch(i)).unwrap();
        ends.push(log.partition_size_bytes("s", 0).unwrap());
        offsets.push(log.latest_offset("s", 0).unwrap());
    }
    // A crash: nothing is flushed or closed.
    std::mem::forget(log);
    (ends, offsets)
}

fn all_values(log: &Log) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = log.earliest_offset("s", 0).unwrap();
    loop {
        let got = log.read("s", 0, at, 1 << 16).unwrap();
        if got.is_empty() {
            return out;
        }
        for r in got {
            assert_eq!(r.offset, at);
            at += 1;
            out.push(r.record.value_bytes());
        }
    }
}

fn expected_values(batches: u64) -> Vec<Bytes> {
    (0..batches)
        .flat_map(batch)
        .map(|r| r.value_bytes())
        .collect()
}

fn flip(path: &Path, pos: u64) {
    let mut b = fs::read(path).unwrap();
    b[pos as usize] ^= 0x40;
    fs::write(path, b).unwrap();
}

fn cut(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn torn_tail_is_truncated_at_every_kind_of_cut_and_appends_continue() {
    const N: u64 = 12;
    let probe = tempfile::tempdir().unwrap();
    let (ends, offsets) = build_crashed(probe.path(), N, 1 << 20);
    let mut cuts = Vec::new();
    for k in [3usize, 7, 10] {
        let (start, end) = (ends[k - 1], ends[k]);
        // Inside the length field, inside the header, right after it, mid body, one short.
        for c in [
            start + 1,
            start + 3,
            start + 17,
            start + 32,
            (start + end) / 2,
            end - 1,
        ] {
            cuts.push((k, c));
        }
    }
    for (k, c) in cuts {
        let d = tempfile::tempdir().unwrap();
        let (ends2, _) = build_crashed(d.path(), N, 1 << 20);
        assert_eq!(ends2, ends, "deterministic layout");
        cut(&seg(d.path(), 0), c);
        let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
        let t = &log.recovery_report().truncations;
        assert_eq!(t.len(), 1, "cut at {c}");
        assert_eq!(t[0].position, ends[k - 1]);
        assert!(!t[0].interior);
        assert_eq!(
            log.latest_offset("s", 0).unwrap(),
            offsets[k - 1],
            "cut at {c}"
        );
        assert_eq!(all_values(&log), expected_values(k as u64), "cut at {c}");
        // Appending continues at the right offset and the result survives a reopen.
        assert_eq!(
            log.append("s", 0, &batch(k as u64)).unwrap(),
            offsets[k - 1]
        );
        drop(log);
        assert_eq!(fs::metadata(seg(d.path(), 0)).unwrap().len(), ends[k]);
        let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
        assert!(log.recovery_report().truncations.is_empty());
        assert_eq!(all_values(&log), expected_values(k as u64 + 1));
    }
}

#[test]
fn torn_tail_after_a_clean_close_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    let (ends, offsets) = build_crashed(d.path(), 30, 1 << 20);
    // A clean close writes index files of the active segment; then a crash tears the tail.
    drop(Log::open(opts(d.path(), 1 << 20)).unwrap());
    assert!(d
        .path()
        .join("streams/s/0/00000000000000000000.index")
        .exists());
    cut(&seg(d.path(), 0), ends[29] - 5);
    let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
    assert_eq!(log.latest_offset("s", 0).unwrap(), offsets[28]);
    assert_eq!(all_values(&log), expected_values(29));
}

#[test]
fn zeroed_or_garbage_tail_is_truncated() {
    for garbage in [vec![0u8; 4096], b"not a batch at all".to_vec()] {
        let d = tempfile::tempdir().unwrap();
        let (ends, offsets) = build_crashed(d.path(), 5, 1 << 20);
        let mut b = fs::read(seg(d.path(), 0)).unwrap();
        b.extend_from_slice(&garbage);
        fs::write(seg(d.path(), 0), b).unwrap();
        let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
        assert_eq!(log.recovery_report().truncations[0].position, ends[4]);
        assert_eq!(log.latest_offset("s", 0).unwrap(), offsets[4]);
        assert_eq!(log.append("s", 0, &batch(5)).unwrap(), offsets[4]);
    }
}

#[test]
fn interior_damage_in_the_active_segment_refuses_to_open_unless_repair() {
    let d = tempfile::tempdir().unwrap();
    let (ends, offsets) = build_crashed(d.path(), 10, 1 << 20);
    let path = seg(d.path(), 0);
    flip(&path, ends[3] + 40); // inside batch 4; batches 5..9 are intact
    let before = fs::read(&path).unwrap();
    match Log::open(opts(d.path(), 1 << 20)) {
        Err(LogError::InteriorDamage {
            path: p, position, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, ends[3]);
        }
        other => panic!("expected InteriorDamage, got {other:?}"),
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a refused open changes nothing"
    );
    let log = Log::open(LogOptions {
        repair: true,
        ..opts(d.path(), 1 << 20)
    })
    .unwrap();
    let t = &log.recovery_report().truncations;
    assert!(t[0].interior);
    assert_eq!(t[0].position, ends[3]);
    assert_eq!(log.latest_offset("s", 0).unwrap(), offsets[3]);
    assert_eq!(all_values(&log), expected_values(4));
    assert_eq!(log.append("s", 0, &batch(4)).unwrap(), offsets[3]);
}

#[test]
fn damaged_length_field_followed_by_intact_data_is_interior() {
    let d = tempfile::tempdir().unwrap();
    let (ends, _) = build_crashed(d.path(), 6, 1 << 20);
    // A huge length makes batch 2 look like it runs past the end of the file.
    flip(&seg(d.path(), 0), ends[1] + 3);
    assert!(matches!(
        Log::open(opts(d.path(), 1 << 20)),
        Err(LogError::InteriorDamage { position, .. }) if position == ends[1]
    ));
}

#[test]
fn damage_in_a_sealed_segment_needs_verify_on_open_or_is_found_on_read() {
    let d = tempfile::tempdir().unwrap();
    let (ends, _) = build_crashed(d.path(), 200, 2048);
    let first_sealed_len = fs::metadata(seg(d.path(), 0)).unwrap().len();
    assert!(first_sealed_len < *ends.last().unwrap(), "several segments");
    // Damage the second batch of segment 0 (the index trusts it; its last batch is checked).
    let second = ends[0];
    flip(&seg(d.path(), 0), second + 36);

    // Default open trusts the sealed segment up to its last index entry...
    let log = Log::open(opts(d.path(), 2048)).unwrap();
    match log.read("s", 0, 1, 0) {
        Err(LogError::Corrupt { position, .. }) => assert_eq!(position, second),
        other => panic!("expected Corrupt on read, got {other:?}"),
    }
    drop(log);

    // ...a full verification refuses, because later segments hold data...
    let verify = LogOptions {
        verify_on_open: true,
        ..opts(d.path(), 2048)
    };
    assert!(
        matches!(Log::open(verify.clone()), Err(LogError::InteriorDamage { position, .. }) if position == second)
    );

    // ...and repair truncates there and drops the later segments, as Kafka does.
    let log = Log::open(LogOptions {
        repair: true,
        ..verify
    })
    .unwrap();
    let t = &log.recovery_report().truncations;
    assert_eq!(t.len(), 1);
    assert!(!t[0].segments_dropped.is_empty());
    assert_eq!(log.latest_offset("s", 0).unwrap(), 1);
    assert_eq!(log.segment_count("s", 0).unwrap(), 1);
    assert_eq!(all_values(&log), expected_values(1));
    assert_eq!(log.append("s", 0, &batch(1)).unwrap(), 1);
}

#[test]
fn damaged_last_batch_of_a_sealed_segment_is_found_on_open() {
    let d = tempfile::tempdir().unwrap();
    build_crashed(d.path(), 200, 2048);
    let len = fs::metadata(seg(d.path(), 0)).unwrap().len();
    flip(&seg(d.path(), 0), len - 2);
    assert!(matches!(
        Log::open(opts(d.path(), 2048)),
        Err(LogError::InteriorDamage { .. })
    ));
}

#[test]
fn damaged_index_files_are_ignored_and_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    build_crashed(d.path(), 200, 2048);
    drop(Log::open(opts(d.path(), 2048)).unwrap());
    let dir = d.path().join("streams/s/0");
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        match p.extension().unwrap().to_str().unwrap() {
            "index" => fs::write(&p, [0xffu8; 24]).unwrap(),
            "timeindex" => {
                let mut b = fs::read(&p).unwrap();
                b.truncate(b.len().saturating_sub(5));
                fs::write(&p, b).unwrap();
            }
            _ => {}
        }
    }
    let log = Log::open(opts(d.path(), 2048)).unwrap();
    assert_eq!(all_values(&log), expected_values(200));
    for off in [0, 17, 100, 333] {
        assert_eq!(log.read("s", 0, off, 0).unwrap()[0].offset, off);
    }
    assert_eq!(
        log.offset_for_timestamp("s", 0, 150).unwrap(),
        Some(expected_values(150).len() as u64)
    );
}

#[test]
fn committed_offsets_file_recovers_like_segments() {
    let d = tempfile::tempdir().unwrap();
    {
        let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
        log.create_stream("s", StreamConfig::new(4)).unwrap();
        for p in 0..4 {
            log.commit_offset("g", "s", p, 10 + u64::from(p), "meta")
                .unwrap();
        }
    }
    let file = fs::read_dir(d.path().join("groups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&file).unwrap();
    let rec_len = good.len() / 4;

    // Torn tail: the last commit is lost, the others stay.
    cut(&file, (good.len() - 3) as u64);
    let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
    assert_eq!(log.committed_offset("g", "s", 2), Some((12, "meta".into())));
    assert_eq!(log.committed_offset("g", "s", 3), None);
    assert_eq!(log.recovery_report().truncations.len(), 1);
    drop(log);

    // Interior damage: refused, then repaired by truncation.
    fs::write(&file, &good).unwrap();
    flip(&file, (rec_len + 12) as u64);
    assert!(matches!(
        Log::open(opts(d.path(), 1 << 20)),
        Err(LogError::InteriorDamage { .. })
    ));
    let log = Log::open(LogOptions {
        repair: true,
        ..opts(d.path(), 1 << 20)
    })
    .unwrap();
    assert_eq!(log.committed_offset("g", "s", 0), Some((10, "meta".into())));
    assert_eq!(log.committed_offset("g", "s", 1), None);
}

#[test]
fn damaged_stream_meta_refuses_to_open() {
    let d = tempfile::tempdir().unwrap();
    build_crashed(d.path(), 1, 1 << 20);
    flip(&d.path().join("streams/s/stream.meta"), 12);
    assert!(matches!(
        Log::open(opts(d.path(), 1 << 20)),
        Err(LogError::Corrupt { .. })
    ));
}

#[test]
fn leftover_staging_directories_are_removed() {
    let d = tempfile::tempdir().unwrap();
    drop(Log::open(opts(d.path(), 1 << 20)).unwrap());
    // A crash in the middle of create_stream leaves only a staging directory.
    fs::create_dir_all(d.path().join("tmp/half.create/0")).unwrap();
    let log = Log::open(opts(d.path(), 1 << 20)).unwrap();
    assert!(log.streams().is_empty());
    assert!(!d.path().join("tmp/half.create").exists());
}
