//! Random operation sequences against a simple model: after every crash (drop, plus a torn tail)
//! or clean reopen, recovery returns exactly the unacked messages, their delivery counts, the live
//! queues and the pending transactions. Segments are tiny so compaction runs all the time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use store::{Journal, JournalOptions, JournalRecord, Recovery, SyncPolicy};

#[derive(Debug, Clone)]
enum Junk {
    Zeroes(usize),
    Garbage(Vec<u8>),
    /// A copy of the last `n` bytes: looks like a frame but is stale.
    Replay(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Recreate(u8),
    Delete(u8),
    Add(u8, u16, u8),
    Ack(u8, usize),
    Dc(u8, usize, u8),
    Prepare(u8, Vec<(bool, usize)>),
    Resolve(bool),
    Crash(Option<Junk>),
    Reopen,
    Compact,
}

fn junk() -> impl Strategy<Value = Option<Junk>> {
    prop_oneof![
        Just(None),
        (1usize..300).prop_map(|n| Some(Junk::Zeroes(n))),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(|v| Some(Junk::Garbage(v))),
        (1usize..300).prop_map(|n| Some(Junk::Replay(n))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..3).prop_map(Op::Create),
        1 => (0u8..3).prop_map(Op::Recreate),
        1 => (0u8..3).prop_map(Op::Delete),
        12 => (0u8..3, 0u16..300, 1u8..4).prop_map(|(q, len, n)| Op::Add(q, len, n)),
        8 => (0u8..3, any::<usize>()).prop_map(|(q, i)| Op::Ack(q, i)),
        3 => (0u8..3, any::<usize>(), any::<u8>()).prop_map(|(q, i, c)| Op::Dc(q, i, c)),
        2 => (0u8..3, proptest::collection::vec((any::<bool>(), any::<usize>()), 1..4))
            .prop_map(|(q, v)| Op::Prepare(q, v)),
        2 => any::<bool>().prop_map(Op::Resolve),
        2 => junk().prop_map(Op::Crash),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

/// queue id -> (name, seq -> (delivery count, payload))
type Queues = BTreeMap<u64, (String, BTreeMap<u64, (u32, Bytes)>)>;

#[derive(Default, Debug)]
struct Model {
    /// slot -> live queue id
    slots: [Option<u64>; 3],
    /// queue id -> (name, seq -> (count, payload))
    queues: Queues,
    /// pending transactions, oldest first
    pending: Vec<(u64, Vec<JournalRecord>)>,
    next_queue: u64,
    next_seq: u64,
    next_tx: u64,
}

impl Model {
    fn apply(&mut self, r: &JournalRecord) {
        match r {
            JournalRecord::Add {
                queue,
                seq,
                payload,
            } => {
                if let Some((_, m)) = self.queues.get_mut(queue) {
                    m.insert(*seq, (0, payload.clone()));
                }
            }
            JournalRecord::Ack { queue, seq } => {
                if let Some((_, m)) = self.queues.get_mut(queue) {
                    m.remove(seq);
                }
            }
            _ => unreachable!(),
        }
    }

    fn pick(&self, slot: u8, i: usize) -> Option<(u64, u64)> {
        let q = self.slots[slot as usize]?;
        let msgs = &self.queues.get(&q)?.1;
        if msgs.is_empty() {
            return None;
        }
        let seq = *msgs.keys().nth(i % msgs.len())?;
        Some((q, seq))
    }
}

fn opts(dir: &Path, sync: SyncPolicy) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.segment_bytes = 512;
    o.compact_live_ratio = 0.8;
    o.sync = sync;
    o
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v.pop().unwrap()
}

fn check(model: &Model, rec: &Recovery, expect_truncated: u64) -> Result<(), TestCaseError> {
    let got: Queues = rec
        .queues
        .iter()
        .map(|q| {
            (
                q.queue,
                (
                    q.name.clone(),
                    q.messages
                        .iter()
                        .map(|m| (m.seq, (m.delivery_count, m.payload.clone())))
                        .collect(),
                ),
            )
        })
        .collect();
    prop_assert_eq!(&got, &model.queues);
    let prepared: Vec<(u64, Vec<JournalRecord>)> = rec
        .prepared
        .iter()
        .map(|p| (p.tx, p.records.clone()))
        .collect();
    let mut expect = model.pending.clone();
    expect.sort_by_key(|p| p.0);
    prop_assert_eq!(prepared, expect);
    prop_assert_eq!(rec.report.truncated_bytes, expect_truncated);
    prop_assert!(!rec.report.repaired);
    Ok(())
}

fn run(ops: Vec<Op>, always: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let sync = if always {
        SyncPolicy::Always
    } else {
        SyncPolicy::Never
    };
    let (mut j, rec) = Journal::open(opts(dir.path(), sync)).unwrap();
    let mut m = Model::default();
    check(&m, &rec, 0)?;
    for op in ops {
        let mut records = Vec::new();
        match op {
            Op::Create(s) => {
                if m.slots[s as usize].is_none() {
                    m.next_queue += 1;
                    let q = m.next_queue;
                    m.slots[s as usize] = Some(q);
                    let name = format!("queue-{q}");
                    m.queues.insert(q, (name.clone(), BTreeMap::new()));
                    records.push(JournalRecord::QueueCreate {
                        queue: q,
                        name,
                        meta: Bytes::from_static(b"m"),
                    });
                }
            }
            Op::Recreate(s) => {
                if let Some(q) = m.slots[s as usize] {
                    let name = format!("renamed-{q}-{}", m.next_seq);
                    if let Some(e) = m.queues.get_mut(&q) {
                        e.0 = name.clone();
                    }
                    records.push(JournalRecord::QueueCreate {
                        queue: q,
                        name,
                        meta: Bytes::from_static(b"m"),
                    });
                }
            }
            Op::Delete(s) => {
                if let Some(q) = m.slots[s as usize].take() {
                    m.queues.remove(&q);
                    records.push(JournalRecord::QueueDelete { queue: q });
                }
            }
            Op::Add(s, len, n) => {
                if let Some(q) = m.slots[s as usize] {
                    for _ in 0..n {
                        m.next_seq += 1;
                        let seq = m.next_seq;
                        let payload = Bytes::from(vec![seq as u8; len as usize]);
                        let r = JournalRecord::Add {
                            queue: q,
                            seq,
                            payload,
                        };
                        m.apply(&r);
                        records.push(r);
                    }
                }
            }
            Op::Ack(s, i) => {
                if let Some((q, seq)) = m.pick(s, i) {
                    let r = JournalRecord::Ack { queue: q, seq };
                    m.apply(&r);
                    records.push(r);
                }
            }
            Op::Dc(s, i, c) => {
                if let Some((q, seq)) = m.pick(s, i) {
                    if let Some(e) = m.queues.get_mut(&q).and_then(|e| e.1.get_mut(&seq)) {
                        e.0 = c as u32;
                    }
                    records.push(JournalRecord::DeliveryCount {
                        queue: q,
                        seq,
                        count: c as u32,
                    });
                }
            }
            Op::Prepare(s, items) => {
                if let Some(q) = m.slots[s as usize] {
                    let mut staged = Vec::new();
                    for (is_add, i) in items {
                        if is_add {
                            m.next_seq += 1;
                            staged.push(JournalRecord::Add {
                                queue: q,
                                seq: m.next_seq,
                                payload: Bytes::from(vec![7u8; i % 50]),
                            });
                        } else if let Some((q, seq)) = m.pick(s, i) {
                            staged.push(JournalRecord::Ack { queue: q, seq });
                        }
                    }
                    m.next_tx += 1;
                    m.pending.push((m.next_tx, staged.clone()));
                    records.push(JournalRecord::TxPrepare {
                        tx: m.next_tx,
                        records: staged,
                    });
                }
            }
            Op::Resolve(commit) => {
                if !m.pending.is_empty() {
                    let (tx, staged) = m.pending.remove(0);
                    if commit {
                        for r in &staged {
                            m.apply(r);
                        }
                        records.push(JournalRecord::TxCommit { tx });
                    } else {
                        records.push(JournalRecord::TxRollback { tx });
                    }
                }
            }
            Op::Crash(junk) => {
                drop(j);
                let seg = last_segment(dir.path());
                let data = std::fs::read(&seg).unwrap();
                let tail: Vec<u8> = match junk {
                    None => Vec::new(),
                    Some(Junk::Zeroes(n)) => vec![0; n],
                    Some(Junk::Garbage(v)) => v,
                    Some(Junk::Replay(n)) => {
                        let n = n.min(data.len().saturating_sub(32));
                        data[data.len() - n..].to_vec()
                    }
                };
                let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
                f.write_all(&tail).unwrap();
                drop(f);
                // A run of zeroes after the last batch is a clean end (unwritten preallocated
                // space), not a torn tail.
                let torn = if tail.iter().all(|&b| b == 0) {
                    0
                } else {
                    tail.len() as u64
                };
                let (j2, rec) = Journal::open(opts(dir.path(), sync)).unwrap();
                check(&m, &rec, torn)?;
                j = j2;
            }
            Op::Reopen => {
                j.close().unwrap();
                drop(j);
                let (j2, rec) = Journal::open(opts(dir.path(), sync)).unwrap();
                check(&m, &rec, 0)?;
                j = j2;
            }
            Op::Compact => {
                j.compact().unwrap();
            }
        }
        if !records.is_empty() {
            j.append(records).wait().unwrap();
        }
        let s = j.stats();
        prop_assert!(s.live_records <= s.total_records, "{:?}", s);
    }
    drop(j);
    let (_j, rec) = Journal::open(opts(dir.path(), sync)).unwrap();
    check(&m, &rec, 0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn recovery_matches_the_model(ops in proptest::collection::vec(op(), 1..120), always in any::<bool>()) {
        run(ops, always)?;
    }
}
