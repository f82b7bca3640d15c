//! Lazy appends (`Journal::append_lazy`, used for consumer acks): written at once, fsynced with
//! the next append that needs an fsync, by a barrier, when awaited, or `lazy_sync` later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use std::path::Path;
use std::time::{Duration, Instant};
use store::{Commit, Journal, JournalOptions, JournalRecord, Recovery};

fn opts(dir: &Path, lazy_sync: Duration) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.lazy_sync = lazy_sync;
    o
}

fn open(o: JournalOptions) -> (Journal, Recovery) {
    Journal::open(o).expect("open")
}

fn create() -> JournalRecord {
    JournalRecord::QueueCreate {
        queue: 1,
        name: "q".into(),
        meta: Bytes::new(),
    }
}

fn add(seq: u64) -> JournalRecord {
    JournalRecord::Add {
        queue: 1,
        seq,
        payload: Bytes::from(vec![seq as u8; 100]),
    }
}

fn ack(seq: u64) -> JournalRecord {
    JournalRecord::Ack { queue: 1, seq }
}

/// A journal with queue 1 holding messages 1..=n, all durable.
fn filled(dir: &Path, lazy_sync: Duration, n: u64) -> Journal {
    let (j, _) = open(opts(dir, lazy_sync));
    let mut records = vec![create()];
    records.extend((1..=n).map(add));
    j.append(records).wait().unwrap();
    j
}

fn wait_done(c: &Commit, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if c.is_done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    c.is_done()
}

#[test]
fn a_lazy_append_is_fsynced_by_its_deadline_when_nothing_else_comes() {
    let dir = tempfile::tempdir().unwrap();
    let j = filled(dir.path(), Duration::from_secs(2), 3);
    let before = j.stats().fsyncs;
    let c = j.append_lazy(vec![ack(1)]);
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !c.is_done(),
        "a lazy append is not fsynced on its own at once"
    );
    assert_eq!(j.stats().fsyncs, before);
    assert!(
        wait_done(&c, Duration::from_secs(30)),
        "fsynced by its deadline"
    );
    assert_eq!(j.stats().fsyncs, before + 1);
    c.wait().unwrap();
}

#[test]
fn lazy_appends_ride_with_the_next_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let j = filled(dir.path(), Duration::from_secs(600), 3);
    let before = j.stats().fsyncs;
    let acks: Vec<Commit> = (1..=2).map(|s| j.append_lazy(vec![ack(s)])).collect();
    // Give the writer time to write them (alone, without an fsync) before the next append.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(j.stats().fsyncs, before);
    j.append(vec![add(4)]).wait().unwrap();
    assert!(acks.iter().all(Commit::is_done));
    assert_eq!(
        j.stats().fsyncs,
        before + 1,
        "one fsync for the send and the acks"
    );
    let c = j.append_lazy(vec![ack(3)]);
    j.append(Vec::new()).wait().unwrap();
    assert!(c.is_done(), "a barrier covers lazy appends before it");
}

#[test]
fn waiting_on_a_lazy_append_fsyncs_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = filled(dir.path(), Duration::from_secs(600), 2);
    let start = Instant::now();
    j.append_lazy(vec![ack(1)]).wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "not the 600 s deadline"
    );
    let c = j.append_lazy(vec![ack(2)]);
    assert!(!wait_done(&c, Duration::from_millis(50)));
    c.wait().unwrap();
}

#[test]
fn lazy_acks_are_recovered_and_zero_delay_syncs_each() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = filled(dir.path(), Duration::from_secs(600), 3);
        drop(j.append_lazy(vec![ack(2)]));
        j.close().unwrap();
    }
    let (j, rec) = open(opts(dir.path(), Duration::ZERO));
    let seqs: Vec<u64> = rec.queues[0].messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 3], "the lazy ack was closed into the journal");
    let before = j.stats().fsyncs;
    let c = j.append_lazy(vec![ack(1)]);
    assert!(wait_done(&c, Duration::from_secs(30)));
    assert_eq!(j.stats().fsyncs, before + 1);
}
