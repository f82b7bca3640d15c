//! Crash test: a child process (this test binary, re-invoked with `JOURNAL_CRASH_DIR` set) appends
//! persistent adds and acks from several threads with `SyncPolicy::Always` and prints every
//! confirmed one (and every ack before it is attempted); the parent SIGKILLs it at a random moment, reopens the journal and checks that
//! every confirmed add is present exactly once with its payload, and every confirmed ack is gone.
//! Repeated 25 times on the same directory, with small segments so that compaction is often
//! interrupted too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Journal, JournalOptions, JournalRecord, SyncPolicy};

const ENV: &str = "JOURNAL_CRASH_DIR";
const QUEUE: u64 = 1;

fn opts(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.sync = SyncPolicy::Always;
    o.segment_bytes = 16 << 10;
    o.compact_live_ratio = 0.5;
    o
}

fn payload(seq: u64) -> Bytes {
    Bytes::from(format!("message {seq} ").repeat(10))
}

/// The child's body; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV) else {
        return;
    };
    let (journal, rec) = Journal::open(opts(Path::new(&dir))).expect("child open");
    if rec.queues.is_empty() {
        journal
            .append(vec![JournalRecord::QueueCreate {
                queue: QUEUE,
                name: "crash".into(),
                meta: Bytes::new(),
            }])
            .wait()
            .expect("create");
    }
    let next = Arc::new(AtomicU64::new(rec.report.max_seq + 1));
    let deadline = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let journal = journal.clone();
            let next = next.clone();
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let add = JournalRecord::Add {
                        queue: QUEUE,
                        seq,
                        payload: payload(seq),
                    };
                    journal.append(vec![add]).wait().expect("add");
                    {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "add {seq} .").expect("stdout");
                        out.flush().expect("flush");
                    }
                    if !seq.is_multiple_of(3) {
                        {
                            // Announced before appending: from here on the add may be gone.
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "acking {seq} .").expect("stdout");
                            out.flush().expect("flush");
                        }
                        // Half the acks lazily, as the engine writes them, waited on (which
                        // asks for their fsync at once): confirmed then as durable as the rest.
                        let ack = vec![JournalRecord::Ack { queue: QUEUE, seq }];
                        let commit = if seq.is_multiple_of(2) {
                            journal.append(ack)
                        } else {
                            journal.append_lazy(ack)
                        };
                        commit.wait().expect("ack");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {seq} .").expect("stdout");
                        out.flush().expect("flush");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("child thread");
    }
}

/// A tiny xorshift generator, enough for random kill delays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_confirmed_record() {
    if std::env::var_os(ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1);
    let mut adds = BTreeSet::new();
    let mut acks = BTreeSet::new();
    let mut acking = BTreeSet::new();
    let mut truncations = 0;
    for round in 0..25 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let delay = 30 + rng.next() % 400;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut confirmed = 0;
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            if let [kind, seq, "."] = parts[..] {
                let seq: u64 = seq.parse().unwrap();
                confirmed += 1;
                match kind {
                    "add" => adds.insert(seq),
                    "ack" => acks.insert(seq),
                    "acking" => acking.insert(seq),
                    _ => panic!("unexpected line {line}"),
                };
            }
        }

        let (journal, rec) = Journal::open(opts(dir.path()))
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        assert!(!rec.report.repaired);
        if rec.report.truncated_bytes > 0 {
            truncations += 1;
        }
        let q = rec
            .queues
            .iter()
            .find(|q| q.queue == QUEUE)
            .expect("queue recovered");
        let seqs: Vec<u64> = q.messages.iter().map(|m| m.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "duplicate or unordered seqs"
        );
        let present: BTreeSet<u64> = seqs.iter().copied().collect();
        for m in &q.messages {
            assert_eq!(
                m.payload,
                payload(m.seq),
                "round {round}: payload of {}",
                m.seq
            );
        }
        for seq in &adds {
            if !acking.contains(seq) {
                assert!(
                    present.contains(seq),
                    "round {round}: confirmed add {seq} lost"
                );
            }
        }
        for seq in &acks {
            assert!(
                !present.contains(seq),
                "round {round}: acked {seq} came back"
            );
        }
        eprintln!(
            "round {round}: killed after {delay} ms, {confirmed} confirmations, {} live, {} segments, truncated {} bytes",
            present.len(),
            rec.report.segments,
            rec.report.truncated_bytes
        );
        journal.close().unwrap();
    }
    assert!(
        adds.len() > 100,
        "the child confirmed too little: {}",
        adds.len()
    );
    eprintln!(
        "{} confirmed adds, {} confirmed acks, {truncations} torn tails cut",
        adds.len(),
        acks.len()
    );
}
