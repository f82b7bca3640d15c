//! Pins on-disk format version 1 of the queue journal with a committed fixture: it still opens
//! with the expected content, and this build writes the same bytes for the same appends.
//! Regenerate (only when introducing a new format version, keeping the old fixture) with
//! `JOURNAL_FIXTURE_WRITE=1 cargo test -p store --test journal_format`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use std::path::{Path, PathBuf};
use store::{Journal, JournalOptions, JournalRecord};

const SEGMENT: &str = "journal-00000000000000000001.seg";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/journal_fixtures/v1")
}

fn write_sample(dir: &Path) {
    let mut o = JournalOptions::new(dir);
    o.compact_live_ratio = 0.0;
    let (j, _) = Journal::open(o).unwrap();
    let batches = vec![
        vec![JournalRecord::QueueCreate {
            queue: 1,
            name: "orders".into(),
            meta: Bytes::from_static(b"\x01anycast"),
        }],
        vec![
            JournalRecord::Add {
                queue: 1,
                seq: 1,
                payload: Bytes::from_static(b"first"),
            },
            JournalRecord::Add {
                queue: 1,
                seq: 2,
                payload: Bytes::from_static(b"second"),
            },
        ],
        vec![JournalRecord::DeliveryCount {
            queue: 1,
            seq: 2,
            count: 4,
        }],
        vec![JournalRecord::Ack { queue: 1, seq: 1 }],
        vec![JournalRecord::TxPrepare {
            tx: 9,
            records: vec![JournalRecord::Add {
                queue: 1,
                seq: 3,
                payload: Bytes::from_static(b"staged"),
            }],
        }],
        vec![
            JournalRecord::QueueCreate {
                queue: 2,
                name: "gone".into(),
                meta: Bytes::new(),
            },
            JournalRecord::QueueDelete { queue: 2 },
        ],
        vec![JournalRecord::TxPrepare {
            tx: 10,
            records: vec![],
        }],
        vec![JournalRecord::TxRollback { tx: 10 }],
        vec![JournalRecord::TxPrepare {
            tx: 11,
            records: vec![JournalRecord::Ack { queue: 1, seq: 2 }],
        }],
        vec![JournalRecord::TxCommit { tx: 11 }],
        vec![JournalRecord::Add {
            queue: 1,
            seq: 4,
            payload: Bytes::from_static(b"last"),
        }],
    ];
    for b in batches {
        j.append(b).wait().unwrap();
    }
    j.close().unwrap();
}

#[test]
fn format_v1_fixture_opens_and_matches_what_this_build_writes() {
    let fixture = fixture_dir();
    if std::env::var_os("JOURNAL_FIXTURE_WRITE").is_some() {
        let _ = std::fs::remove_dir_all(&fixture);
        let tmp = tempfile::tempdir().unwrap();
        write_sample(tmp.path());
        std::fs::create_dir_all(&fixture).unwrap();
        std::fs::copy(tmp.path().join(SEGMENT), fixture.join(SEGMENT)).unwrap();
    }
    let golden = std::fs::read(fixture.join(SEGMENT)).expect("fixture present");

    let fresh = tempfile::tempdir().unwrap();
    write_sample(fresh.path());
    assert_eq!(
        std::fs::read(fresh.path().join(SEGMENT)).unwrap(),
        golden,
        "this build writes different bytes: bump the format version and keep the v1 fixture"
    );

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(fixture.join(SEGMENT), copy.path().join(SEGMENT)).unwrap();
    let (_j, rec) = Journal::open(JournalOptions::new(copy.path())).unwrap();
    assert_eq!(rec.report.truncated_bytes, 0);
    assert_eq!(rec.queues.len(), 1);
    let q = &rec.queues[0];
    assert_eq!((q.queue, q.name.as_str()), (1, "orders"));
    assert_eq!(q.meta, Bytes::from_static(b"\x01anycast"));
    let msgs: Vec<(u64, u32, Bytes)> = q
        .messages
        .iter()
        .map(|m| (m.seq, m.delivery_count, m.payload.clone()))
        .collect();
    assert_eq!(msgs, vec![(4, 0, Bytes::from_static(b"last"))]);
    assert_eq!(rec.prepared.len(), 1);
    assert_eq!(rec.prepared[0].tx, 9);
    assert_eq!(
        (rec.report.max_queue, rec.report.max_seq, rec.report.max_tx),
        (2, 4, 11)
    );
}
