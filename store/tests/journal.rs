//! Behaviour of the queue journal: recovery, torn tails, interior damage, group commit,
//! compaction (including the tombstone trap), transactions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{
    Journal, JournalOptions, JournalRecord, RecoveredQueue, Recovery, StoreError, SyncPolicy,
};

fn opts(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.segment_bytes = 64 << 10;
    o
}

fn open(o: JournalOptions) -> (Journal, Recovery) {
    Journal::open(o).expect("open")
}

fn create(q: u64) -> JournalRecord {
    JournalRecord::QueueCreate {
        queue: q,
        name: format!("q{q}"),
        meta: Bytes::from(vec![q as u8; 3]),
    }
}

fn add(q: u64, seq: u64, len: usize) -> JournalRecord {
    JournalRecord::Add {
        queue: q,
        seq,
        payload: payload(seq, len),
    }
}

fn payload(seq: u64, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (seq as usize * 31 + i) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn ack(q: u64, seq: u64) -> JournalRecord {
    JournalRecord::Ack { queue: q, seq }
}

fn append(j: &Journal, records: Vec<JournalRecord>) {
    j.append(records).wait().expect("append");
}

/// `queue -> seq -> delivery count` of a recovery.
fn summary(queues: &[RecoveredQueue]) -> BTreeMap<u64, BTreeMap<u64, u32>> {
    queues
        .iter()
        .map(|q| {
            (
                q.queue,
                q.messages
                    .iter()
                    .map(|m| (m.seq, m.delivery_count))
                    .collect(),
            )
        })
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for p in segments(from) {
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn recovers_unacked_messages_with_delivery_counts_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let (j, rec) = open(opts(dir.path()));
    assert!(rec.queues.is_empty());
    append(&j, vec![create(1), create(2)]);
    append(&j, vec![add(1, 5, 10), add(1, 3, 10), add(2, 4, 10)]);
    append(
        &j,
        vec![
            JournalRecord::DeliveryCount {
                queue: 1,
                seq: 5,
                count: 2,
            },
            ack(2, 4),
            add(2, 6, 0),
        ],
    );
    j.close().unwrap();
    assert!(matches!(
        j.append(vec![ack(1, 3)]).wait(),
        Err(StoreError::Closed)
    ));

    let (j, rec) = open(opts(dir.path()));
    assert_eq!(rec.queues.len(), 2);
    let q1 = &rec.queues[0];
    assert_eq!((q1.queue, q1.name.as_str()), (1, "q1"));
    assert_eq!(q1.meta, Bytes::from(vec![1u8; 3]));
    let seqs: Vec<_> = q1
        .messages
        .iter()
        .map(|m| (m.seq, m.delivery_count))
        .collect();
    assert_eq!(seqs, vec![(3, 0), (5, 2)]);
    assert_eq!(q1.messages[1].payload, payload(5, 10));
    assert_eq!(summary(&rec.queues)[&2], BTreeMap::from([(6, 0)]));
    assert_eq!(rec.report.max_seq, 6);
    assert_eq!(rec.report.max_queue, 2);
    assert_eq!(rec.report.truncated_bytes, 0);
    assert!(!rec.report.repaired);
    j.close().unwrap();
}

#[test]
fn queue_delete_drops_the_queue_and_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    append(&j, vec![create(1), create(2), add(1, 1, 5), add(2, 2, 5)]);
    append(&j, vec![JournalRecord::QueueDelete { queue: 1 }]);
    drop(j);
    let (_j, rec) = open(opts(dir.path()));
    assert_eq!(
        summary(&rec.queues),
        BTreeMap::from([(2, BTreeMap::from([(2, 0)]))])
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    assert!(matches!(
        Journal::open(opts(dir.path())),
        Err(StoreError::Locked { .. })
    ));
    j.close().unwrap();
    drop(j);
    let (_j2, _) = open(opts(dir.path()));
}

#[test]
fn commits_resolve_when_awaited_in_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        j.append(vec![create(1)]).await.unwrap();
        let mut tasks = Vec::new();
        for seq in 0..100u64 {
            let j = j.clone();
            tasks.push(tokio::spawn(
                async move { j.append(vec![add(1, seq, 8)]).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // An empty append is a barrier: resolves once everything before it is durable.
        j.append(Vec::new()).await.unwrap();
    });
    drop(j);
    let (_j, rec) = open(opts(dir.path()));
    assert_eq!(rec.queues[0].messages.len(), 100);
}

#[test]
fn interval_and_never_policies_recover_what_was_written() {
    for sync in [
        SyncPolicy::Interval(std::time::Duration::from_millis(5)),
        SyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.sync = sync;
        let (j, _) = open(o.clone());
        append(&j, vec![create(1)]);
        for seq in 0..50 {
            drop(j.append(vec![add(1, seq, 100)]));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        j.close().unwrap();
        let (_j, rec) = open(o);
        assert_eq!(rec.queues[0].messages.len(), 50, "{sync:?}");
    }
}

#[test]
fn invalid_batches_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    let nested = JournalRecord::TxPrepare {
        tx: 1,
        records: vec![JournalRecord::TxCommit { tx: 2 }],
    };
    assert!(matches!(
        j.append(vec![nested]).wait(),
        Err(StoreError::InvalidBatch { .. })
    ));
    assert_eq!(j.stats().appends, 0);
}

#[test]
fn prepared_transactions_apply_only_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    append(&j, vec![create(1), add(1, 1, 4)]);
    let staged = vec![add(1, 2, 4), ack(1, 1)];
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 7,
            records: staged.clone(),
        }],
    );
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 8,
            records: vec![add(1, 3, 4)],
        }],
    );
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 9,
            records: vec![add(1, 4, 4)],
        }],
    );
    append(&j, vec![JournalRecord::TxRollback { tx: 8 }]);
    drop(j);

    let (j, rec) = open(opts(dir.path()));
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::from([(1, 0)]));
    assert_eq!(rec.prepared.len(), 2);
    assert_eq!(rec.prepared[0].tx, 7);
    assert_eq!(rec.prepared[0].records, staged);
    assert_eq!(rec.prepared[1].tx, 9);
    assert_eq!(rec.report.max_tx, 9);
    append(&j, vec![JournalRecord::TxCommit { tx: 7 }]);
    drop(j);

    let (_j, rec) = open(opts(dir.path()));
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::from([(2, 0)]));
    assert_eq!(rec.prepared.len(), 1);
    assert_eq!(rec.prepared[0].tx, 9);
}

/// Writes `n` batches of one add each into one segment, closes, returns the segment file and
/// its length before the last batch.
fn journal_with_last_batch(dir: &Path, n: u64) -> (PathBuf, u64, u64) {
    let mut o = opts(dir);
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    for seq in 1..n {
        append(&j, vec![add(1, seq, 40)]);
    }
    j.close().unwrap();
    drop(j);
    let seg = segments(dir).pop().unwrap();
    let before = std::fs::metadata(&seg).unwrap().len();
    let (j, _) = open(o);
    append(&j, vec![add(1, n, 40), add(1, n + 1, 40), ack(1, 1)]);
    j.close().unwrap();
    let after = std::fs::metadata(&seg).unwrap().len();
    (seg, before, after)
}

#[test]
fn torn_last_batch_is_cut_at_every_offset_and_everything_before_survives() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20;
    let (seg, before, after) = journal_with_last_batch(dir.path(), n);
    let full = std::fs::read(&seg).unwrap();
    assert!(after > before);
    for cut in before..=after {
        for junk in [None, Some(0u8), Some(0xA5u8)] {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(dir.path(), copy.path());
            let target = copy.path().join(seg.file_name().unwrap());
            let mut bytes = full[..cut as usize].to_vec();
            let junk_len = match junk {
                Some(b) if cut < after => {
                    // A torn write can also leave garbage or zeroes up to the block end.
                    let len = (after - cut) as usize;
                    bytes.extend(vec![b; len]);
                    len as u64
                }
                _ => 0,
            };
            if cut < after && bytes == full {
                continue; // the "junk" equals the bytes it replaced
            }
            std::fs::write(&target, &bytes).unwrap();
            let mut o = opts(copy.path());
            o.compact_live_ratio = 0.0;
            let (j, rec) = Journal::open(o.clone())
                .unwrap_or_else(|e| panic!("cut at {cut} junk {junk:?}: {e}"));
            let msgs = summary(&rec.queues)[&1].clone();
            if cut == after {
                assert_eq!(msgs.len(), n as usize, "cut at {cut}");
                assert!(!msgs.contains_key(&1));
                assert_eq!(rec.report.truncated_bytes, 0);
            } else if cut == before && junk == Some(0) {
                // Only zeroes after the last intact batch: the clean end of a preallocated
                // segment, kept in place (the writer overwrites it).
                let expect: BTreeMap<u64, u32> = (1..n).map(|s| (s, 0)).collect();
                assert_eq!(msgs, expect, "zero tail");
                assert_eq!(rec.report.truncated_bytes, 0);
                assert_eq!(std::fs::metadata(&target).unwrap().len(), after);
            } else {
                let expect: BTreeMap<u64, u32> = (1..n).map(|s| (s, 0)).collect();
                assert_eq!(msgs, expect, "cut at {cut} junk {junk:?}");
                assert_eq!(rec.report.truncated_bytes, cut - before + junk_len);
                assert_eq!(std::fs::metadata(&target).unwrap().len(), before);
            }
            assert!(!rec.report.repaired);
            // The journal keeps working after the cut, and the cut is durable.
            append(&j, vec![add(1, 1000, 8)]);
            drop(j);
            let (_j, rec) = open(o);
            assert!(summary(&rec.queues)[&1].contains_key(&1000));
            assert_eq!(rec.report.truncated_bytes, 0);
        }
    }
}

#[test]
fn interior_damage_is_refused_and_repair_drops_only_the_damaged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    for seq in 1..=50 {
        append(&j, vec![add(1, seq, 100)]);
    }
    j.close().unwrap();
    drop(j);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();

    match Journal::open(o.clone()) {
        Err(e @ StoreError::Corrupt { .. }) => {
            let text = e.to_string();
            assert!(text.contains("store.repair = true"), "{text}");
            let StoreError::Corrupt { offset, .. } = e else {
                unreachable!()
            };
            assert!(
                offset <= mid as u64 && offset + 200 > mid as u64,
                "offset {offset}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Refusal changed nothing on disk.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);

    let mut r = o.clone();
    r.repair = true;
    let (j, rec) = open(r);
    assert!(rec.report.repaired);
    assert!(rec.report.truncated_bytes > 0);
    let msgs = summary(&rec.queues)[&1].clone();
    assert_eq!(msgs.len(), 49, "exactly the damaged batch is lost");
    append(&j, vec![add(1, 51, 100)]);
    drop(j);
    // The repair is durable: a plain open now succeeds.
    let (_j, rec) = open(o);
    assert!(!rec.report.repaired);
    assert_eq!(summary(&rec.queues)[&1].len(), 50);
}

#[test]
fn damage_at_the_end_of_a_sealed_segment_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.segment_bytes = 4096;
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    for seq in 1..=100 {
        append(&j, vec![add(1, seq, 100)]);
    }
    drop(j);
    let segs = segments(dir.path());
    assert!(segs.len() > 2);
    let first = &segs[0];
    let len = std::fs::metadata(first).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(first).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    assert!(matches!(
        Journal::open(o.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    let mut r = o.clone();
    r.repair = true;
    let (_j, rec) = open(r);
    assert!(rec.report.repaired);
    assert_eq!(summary(&rec.queues)[&1].len(), 99);
}

#[test]
fn group_commit_with_64_threads_needs_fewer_fsyncs_than_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(opts(dir.path()));
    append(&j, vec![create(1)]);
    let per_thread = 50u64;
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    j.append(vec![add(1, t * 1000 + i, 1024)]).wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = j.stats();
    assert_eq!(stats.appends, 64 * per_thread + 1);
    assert!(
        stats.fsyncs < stats.appends / 4,
        "fsyncs {} appends {}",
        stats.fsyncs,
        stats.appends
    );
    assert!(stats.avg_batch_size > 4.0, "{stats:?}");
    drop(j);
    let (_j, rec) = open(opts(dir.path()));
    assert_eq!(rec.queues[0].messages.len(), 64 * per_thread as usize);
}

fn small(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.segment_bytes = 2048;
    o.compact_live_ratio = 0.5;
    o
}

#[test]
fn compaction_reclaims_acked_segments_and_keeps_live_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(small(dir.path()));
    append(&j, vec![create(1)]);
    for seq in 1..=400 {
        append(&j, vec![add(1, seq, 64)]);
        if !seq.is_multiple_of(10) {
            append(&j, vec![ack(1, seq)]);
        }
    }
    j.compact().unwrap();
    let stats = j.stats();
    assert!(stats.compactions > 10, "{stats:?}");
    assert!(stats.segments < 20, "{stats:?}");
    drop(j);
    let (_j, rec) = open(small(dir.path()));
    let expect: BTreeMap<u64, u32> = (1..=40).map(|i| (i * 10, 0)).collect();
    assert_eq!(summary(&rec.queues)[&1], expect);
    assert_eq!(rec.queues[0].messages[0].payload, payload(10, 64));
}

/// The classic trap: acks in a later segment must outlive the adds they cancel in an older one.
#[test]
fn compacting_a_segment_of_acks_does_not_resurrect_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = small(dir.path());
    o.segment_bytes = 8192;
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    // Segment A: 60 adds, all stay live except ten acked later (A stays above the ratio).
    for seq in 1..=60 {
        append(&j, vec![add(1, seq, 80)]);
    }
    // Segment B onwards: acks of ten A messages among lots of short-lived traffic.
    for seq in 1..=10 {
        append(&j, vec![ack(1, seq)]);
        for k in 0..5 {
            let s = 1000 + seq * 10 + k;
            append(&j, vec![add(1, s, 80)]);
            append(&j, vec![ack(1, s)]);
        }
    }
    for seq in 2000..2100 {
        append(&j, vec![add(1, seq, 80), ack(1, seq)]);
    }
    j.compact().unwrap();
    assert!(j.stats().compactions > 0);
    drop(j);
    let (j, rec) = open(o.clone());
    let expect: BTreeMap<u64, u32> = (11..=60).map(|i| (i, 0)).collect();
    assert_eq!(summary(&rec.queues)[&1], expect);
    // Ack the rest: everything becomes garbage and compacts down to the active segment.
    for seq in 11..=60 {
        append(&j, vec![ack(1, seq)]);
    }
    for seq in 3000..3100 {
        append(&j, vec![add(1, seq, 80), ack(1, seq)]);
    }
    j.compact().unwrap();
    drop(j);
    let (j, rec) = open(o);
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::new());
    assert!(j.stats().segments <= 4, "{:?}", j.stats());
}

#[test]
fn delivery_counts_and_queue_metadata_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let o = small(dir.path());
    let (j, _) = open(o.clone());
    append(&j, vec![create(1), create(2), add(1, 1, 50), add(2, 2, 50)]);
    append(&j, vec![JournalRecord::QueueDelete { queue: 2 }]);
    for c in 1..=5 {
        append(
            &j,
            vec![JournalRecord::DeliveryCount {
                queue: 1,
                seq: 1,
                count: c,
            }],
        );
    }
    for seq in 100..300 {
        append(&j, vec![add(1, seq, 50), ack(1, seq)]);
    }
    j.compact().unwrap();
    drop(j);
    let (_j, rec) = open(o);
    assert_eq!(
        summary(&rec.queues),
        BTreeMap::from([(1, BTreeMap::from([(1, 5)]))])
    );
    assert_eq!(rec.queues[0].name, "q1");
    assert_eq!(rec.queues[0].meta, Bytes::from(vec![1u8; 3]));
}

#[test]
fn transactions_survive_compaction_of_prepare_and_commit_segments() {
    let dir = tempfile::tempdir().unwrap();
    let o = small(dir.path());
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    // tx 1: prepared, committed in a later segment; one of its messages acked afterwards.
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 1,
            records: vec![add(1, 1, 40), add(1, 2, 40)],
        }],
    );
    // tx 2: stays prepared.
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 2,
            records: vec![add(1, 3, 40)],
        }],
    );
    // tx 3: rolled back later.
    append(
        &j,
        vec![JournalRecord::TxPrepare {
            tx: 3,
            records: vec![add(1, 4, 40)],
        }],
    );
    for seq in 100..140 {
        append(&j, vec![add(1, seq, 40), ack(1, seq)]);
    }
    append(&j, vec![JournalRecord::TxCommit { tx: 1 }]);
    append(&j, vec![JournalRecord::TxRollback { tx: 3 }]);
    append(&j, vec![ack(1, 1)]);
    for seq in 200..400 {
        append(&j, vec![add(1, seq, 40), ack(1, seq)]);
    }
    j.compact().unwrap();
    assert!(j.stats().compactions > 0);
    drop(j);
    let (j, rec) = open(o.clone());
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::from([(2, 0)]));
    assert_eq!(rec.prepared.len(), 1);
    assert_eq!(rec.prepared[0].tx, 2);
    append(&j, vec![JournalRecord::TxCommit { tx: 2 }]);
    for seq in 400..600 {
        append(&j, vec![add(1, seq, 40), ack(1, seq)]);
    }
    j.compact().unwrap();
    drop(j);
    let (_j, rec) = open(o);
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::from([(2, 0), (3, 0)]));
    assert!(rec.prepared.is_empty());
}

/// A crash between writing the compacted copy and deleting the old segment leaves both on disk:
/// recovery must treat the copies as the same records.
#[test]
fn an_interrupted_compaction_leaves_a_recoverable_journal() {
    let dir = tempfile::tempdir().unwrap();
    let o = small(dir.path());
    let mut no_compaction = o.clone();
    no_compaction.compact_live_ratio = 0.0;
    let (j, _) = open(no_compaction);
    append(&j, vec![create(1)]);
    for seq in 1..=200 {
        append(&j, vec![add(1, seq, 64)]);
        if !seq.is_multiple_of(4) {
            append(&j, vec![ack(1, seq)]);
        }
        if seq.is_multiple_of(8) {
            append(
                &j,
                vec![JournalRecord::DeliveryCount {
                    queue: 1,
                    seq,
                    count: 3,
                }],
            );
        }
    }
    j.close().unwrap();
    drop(j);
    let saved = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), saved.path());
    let (j, _) = open(o.clone());
    j.compact().unwrap();
    assert!(j.stats().compactions > 0);
    drop(j);
    // Put every deleted segment back, as if the unlinks had been lost.
    for p in segments(saved.path()) {
        let target = dir.path().join(p.file_name().unwrap());
        if !target.exists() {
            std::fs::copy(&p, &target).unwrap();
        }
    }
    let (j, rec) = open(o.clone());
    let expect: BTreeMap<u64, u32> = (1..=50)
        .map(|i| (i * 4, if (i * 4u64).is_multiple_of(8) { 3 } else { 0 }))
        .collect();
    assert_eq!(summary(&rec.queues)[&1], expect);
    j.compact().unwrap();
    drop(j);
    let (j, rec) = open(o.clone());
    assert_eq!(summary(&rec.queues)[&1], expect);
    // Acks must now outlive every copy of the adds, the restored stale ones included.
    for seq in expect.keys() {
        append(&j, vec![ack(1, *seq)]);
    }
    for seq in 1000..1200 {
        append(&j, vec![add(1, seq, 64), ack(1, seq)]);
    }
    j.compact().unwrap();
    drop(j);
    let (_j, rec) = open(o);
    assert_eq!(summary(&rec.queues)[&1], BTreeMap::new());
}

#[test]
fn stats_count_segments_bytes_and_live_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o);
    append(&j, vec![create(1), add(1, 1, 10), add(1, 2, 10)]);
    append(&j, vec![ack(1, 1)]);
    let s = j.stats();
    assert_eq!(s.segments, 1);
    assert_eq!(s.total_records, 4);
    assert_eq!(s.live_records, 2, "{s:?}");
    assert_eq!(s.appends, 2);
    assert_eq!(s.records, 4);
    assert!(s.bytes > 32);
    let shared = Arc::new(j);
    assert_eq!(shared.dir(), dir.path());
}

/// Waits until the preallocation thread has zeroed the last segment up to `len` bytes.
fn wait_for_prealloc(dir: &Path, len: u64) -> PathBuf {
    let seg = segments(dir).pop().unwrap();
    let start = std::time::Instant::now();
    while std::fs::metadata(&seg).unwrap().len() < len {
        assert!(start.elapsed().as_secs() < 20, "segment never preallocated");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    seg
}

/// 32 batches of 50 adds of 1000 bytes (about 1.6 MB) with `sync = always` into a preallocated
/// 4 MiB segment; the directory is copied while the journal is open (a crash). Returns the
/// copy, the segment file name, the logical length and the length of one batch's frame.
fn crashed_preallocated_journal() -> (tempfile::TempDir, std::ffi::OsString, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.segment_bytes = 4 << 20;
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o);
    append(&j, vec![create(1)]);
    for b in 0..32u64 {
        append(&j, (0..50).map(|i| add(1, 1 + b * 50 + i, 1000)).collect());
    }
    let logical = j.stats().bytes as usize;
    let seg = wait_for_prealloc(dir.path(), 4 << 20);
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    drop(j);
    let frame = 8 + 8 + 4 + 50 * (1 + 16 + 4 + 1000);
    (copy, seg.file_name().unwrap().to_owned(), logical, frame)
}

#[test]
fn a_preallocated_zero_tail_is_the_clean_end_of_the_log() {
    let (copy, name, logical, _) = crashed_preallocated_journal();
    let seg = copy.path().join(&name);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 4 << 20);
    let mut o = opts(copy.path());
    o.segment_bytes = 4 << 20;
    let (j, rec) = open(o.clone());
    assert_eq!(summary(&rec.queues)[&1].len(), 32 * 50);
    assert_eq!(rec.report.truncated_bytes, 0);
    assert!(!rec.report.repaired);
    assert_eq!(j.stats().bytes as usize, logical);
    // Appends overwrite the zeroes; a clean close trims the segment to its length.
    append(&j, vec![add(1, 5000, 10)]);
    j.close().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    assert!(len > logical && len < logical + 100, "{len} vs {logical}");
    let (_j, rec) = open(o);
    assert_eq!(summary(&rec.queues)[&1].len(), 32 * 50 + 1);
}

#[test]
fn a_torn_group_in_a_preallocated_segment_is_cut_but_older_damage_is_refused() {
    let (copy, name, logical, frame) = crashed_preallocated_journal();
    let seg = copy.path().join(&name);
    let data = std::fs::read(&seg).unwrap();
    let mut o = opts(copy.path());
    o.segment_bytes = 4 << 20;

    // A power cut during the last fdatasync: a page of the third-last batch never reached the
    // disk (zeroes) while the two batches after it did. None of the three was confirmed.
    let torn = copy.path().join("torn");
    copy_dir(copy.path(), &torn);
    let mut bytes = data.clone();
    let at = logical - 3 * frame;
    bytes[at + 4096..at + 8192].fill(0);
    std::fs::write(torn.join(&name), &bytes).unwrap();
    let mut t = o.clone();
    t.dir = torn.clone();
    let (j, rec) = Journal::open(t.clone()).expect("a torn group is a torn tail");
    assert_eq!(summary(&rec.queues)[&1].len(), 29 * 50);
    assert!(!rec.report.repaired);
    assert!(rec.report.truncated_bytes >= 3 * frame as u64);
    append(&j, vec![add(1, 5000, 10)]);
    drop(j);
    let (_j, rec) = open(t);
    assert_eq!(summary(&rec.queues)[&1].len(), 29 * 50 + 1);

    // The same damage more than TORN_MAX (1 MiB) before the end was confirmed data: refused.
    let mut bytes = data;
    let at = 32 + frame;
    bytes[at + 4096..at + 8192].fill(0);
    std::fs::write(&seg, &bytes).unwrap();
    assert!(matches!(Journal::open(o), Err(StoreError::Corrupt { .. })));
}

#[test]
fn sealed_segments_never_keep_a_preallocated_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.segment_bytes = 1 << 20;
    o.compact_live_ratio = 0.0;
    let (j, _) = open(o.clone());
    append(&j, vec![create(1)]);
    for b in 0..60u64 {
        append(&j, (0..50).map(|i| add(1, 1 + b * 50 + i, 1000)).collect());
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    // Crash now: every sealed segment was trimmed before its successor was created.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    drop(j);
    for s in &segs[..segs.len() - 1] {
        let len = std::fs::metadata(s).unwrap().len();
        assert!(
            len <= 1 << 20 && len % (1 << 20) != 0,
            "{} is {len} bytes",
            s.display()
        );
    }
    let mut c = o;
    c.dir = copy.path().to_path_buf();
    let (_j, rec) = open(c);
    assert_eq!(summary(&rec.queues)[&1].len(), 60 * 50);
    assert_eq!(rec.report.truncated_bytes, 0);
}

#[test]
fn budgeted_recovery_streams_payloads_past_the_budget_to_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = open(opts(dir.path()));
        append(&j, vec![create(1), create(2)]);
        // 200 messages of 1 KB over several 64 KB segments, every third one acked.
        for seq in 1..=200u64 {
            append(&j, vec![add(1 + seq % 2, seq, 1024)]);
        }
        for seq in (3..=200u64).step_by(3) {
            append(&j, vec![ack(1 + seq % 2, seq)]);
        }
        // A committed transaction's adds live in its prepare record.
        append(
            &j,
            vec![JournalRecord::TxPrepare {
                tx: 9,
                records: vec![add(1, 201, 1024), add(2, 202, 1024)],
            }],
        );
        append(&j, vec![JournalRecord::TxCommit { tx: 9 }]);
        j.close().unwrap();
    }
    // The same recovery without a budget is the reference.
    let reference = {
        let (j, r) = open(opts(dir.path()));
        j.close().unwrap();
        r
    };
    let mut streamed: Vec<(u64, u64, Bytes)> = Vec::new();
    let (j, r) = Journal::open_paged(opts(dir.path()), 20 * 1024, &mut |q, seq, p| {
        streamed.push((q, seq, p.clone()));
        Ok(())
    })
    .unwrap();
    assert_eq!(summary(&r.queues), summary(&reference.queues));
    let mut held = 0;
    let mut on_disk = Vec::new();
    for q in &r.queues {
        for m in &q.messages {
            if m.on_disk {
                assert!(m.payload.is_empty());
                on_disk.push((q.queue, m.seq));
            } else {
                assert_eq!(m.payload, payload(m.seq, 1024));
                held += m.payload.len();
            }
        }
    }
    assert!(held <= 20 * 1024, "{held} bytes held past the budget");
    assert!(held >= 10 * 1024, "the budget is used ({held} bytes held)");
    // Every message left on disk reached the sink once, with its exact payload.
    let mut got: Vec<(u64, u64)> = streamed.iter().map(|(q, s, _)| (*q, *s)).collect();
    got.sort_unstable();
    on_disk.sort_unstable();
    assert_eq!(got, on_disk);
    // The transaction's messages (applied at its commit, from the prepare record) are there.
    let recovered: Vec<(u64, u64)> = r
        .queues
        .iter()
        .flat_map(|q| q.messages.iter().map(move |m| (q.queue, m.seq)))
        .collect();
    assert!(recovered.contains(&(1, 201)) && recovered.contains(&(2, 202)));
    for (_, seq, p) in &streamed {
        assert_eq!(*p, payload(*seq, 1024));
    }
    // The journal works on after a budgeted open.
    append(&j, vec![add(1, 300, 10)]);
    j.close().unwrap();
}

#[test]
fn budgeted_recovery_streams_committed_transaction_adds_from_their_prepare_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = open(opts(dir.path()));
        append(&j, vec![create(1)]);
        for seq in 1..=10u64 {
            append(&j, vec![add(1, seq, 1024)]);
        }
        append(
            &j,
            vec![JournalRecord::TxPrepare {
                tx: 4,
                records: vec![add(1, 11, 1024), add(1, 12, 1024)],
            }],
        );
        append(&j, vec![JournalRecord::TxCommit { tx: 4 }]);
        j.close().unwrap();
    }
    let mut streamed = Vec::new();
    let (j, r) = Journal::open_paged(opts(dir.path()), 4 * 1024, &mut |q, seq, p| {
        assert_eq!(*p, payload(seq, 1024));
        streamed.push((q, seq));
        Ok(())
    })
    .unwrap();
    let messages = &r.queues[0].messages;
    assert_eq!(messages.len(), 12);
    let loaded: Vec<u64> = messages
        .iter()
        .filter(|m| !m.on_disk)
        .map(|m| m.seq)
        .collect();
    assert_eq!(loaded, vec![1, 2, 3, 4]);
    assert_eq!(streamed, (5..=12).map(|s| (1, s)).collect::<Vec<_>>());
    j.close().unwrap();
}
