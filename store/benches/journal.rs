//! Queue journal throughput and recovery benchmark (a plain bench binary, `harness = false`).
//!
//! `cargo bench -p store --bench journal` prints:
//! - the raw rate of single-writer 4 KiB `write` + `fdatasync` on the same disk (the baseline);
//! - for reference, the same with each 4 KiB write overwriting an already written (zeroed) file,
//!   which is what the journal's preallocated segments do;
//! - appends/s of 1 KiB `Add`s with `SyncPolicy::Always` at 1, 16, 64 and 256 concurrent writers,
//!   each waiting for its commit before the next append (so group commit is the only batching);
//! - the recovery time of a journal holding 1 million 1 KiB messages.
//!
//! Raw and journal runs are interleaved over `JOURNAL_BENCH_ROUNDS` (default 5) rounds and the
//! medians printed. `JOURNAL_BENCH_SECS` (default 2) sets the length of each throughput run,
//! `JOURNAL_BENCH_MESSAGES` (default 1000000) the size of the recovery run,
//! `JOURNAL_BENCH_WRITERS` (default `1,16,64,256`) the writer counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use std::io::{Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Journal, JournalOptions, JournalRecord, SyncPolicy};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn raw_fdatasync(dir: &Path, secs: Duration, overwrite: bool) -> f64 {
    let path = dir.join("raw.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    if overwrite {
        let zeroes = vec![0u8; 1 << 20];
        for _ in 0..256 {
            f.write_all(&zeroes).unwrap();
        }
        f.sync_all().unwrap();
        f.rewind().unwrap();
    }
    let buf = vec![0x5Au8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path).unwrap();
    rate
}

/// CPU time (user + system) used by this process so far.
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    // SAFETY: getrusage(2) writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// appends/s, appends per group, fsyncs/s, CPU cores busy (process CPU time / wall time).
fn journal_rate(dir: &Path, writers: u64, secs: Duration) -> (f64, f64, f64, f64) {
    let d = dir.join(format!("w{writers}"));
    let mut o = JournalOptions::new(&d);
    o.sync = SyncPolicy::Always;
    let (j, _) = Journal::open(o).unwrap();
    j.append(vec![JournalRecord::QueueCreate {
        queue: 1,
        name: "bench".into(),
        meta: Bytes::new(),
    }])
    .wait()
    .unwrap();
    let payload = Bytes::from(vec![0xC3u8; 1024]);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let before = j.stats();
    let cpu = cpu_time();
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (j, stop, next, payload) = (j.clone(), stop.clone(), next.clone(), payload.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    j.append(vec![JournalRecord::Add {
                        queue: 1,
                        seq,
                        payload: payload.clone(),
                    }])
                    .wait()
                    .unwrap();
                }
            })
        })
        .collect();
    std::thread::sleep(secs);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu).as_secs_f64();
    let after = j.stats();
    j.close().unwrap();
    drop(j);
    std::fs::remove_dir_all(&d).unwrap();
    let appends = (after.appends - before.appends) as f64;
    let groups = (after.groups - before.groups) as f64;
    let fsyncs = (after.fsyncs - before.fsyncs) as f64;
    (
        appends / elapsed,
        appends / groups.max(1.0),
        fsyncs / elapsed,
        cpu / elapsed,
    )
}

fn recovery(dir: &Path, messages: u64) {
    let d = dir.join("recovery");
    let mut o = JournalOptions::new(&d);
    o.sync = SyncPolicy::Never;
    let (j, _) = Journal::open(o.clone()).unwrap();
    j.append(vec![JournalRecord::QueueCreate {
        queue: 1,
        name: "bench".into(),
        meta: Bytes::new(),
    }])
    .wait()
    .unwrap();
    let payload = Bytes::from(vec![0x7Eu8; 1024]);
    let write = Instant::now();
    let mut seq = 1;
    while seq <= messages {
        let batch: Vec<JournalRecord> = (seq..(seq + 1000).min(messages + 1))
            .map(|s| JournalRecord::Add {
                queue: 1,
                seq: s,
                payload: payload.clone(),
            })
            .collect();
        seq += batch.len() as u64;
        drop(j.append(batch));
    }
    j.close().unwrap();
    let write = write.elapsed();
    let stats = j.stats();
    drop(j);
    println!(
        "recovery: wrote {messages} x 1 KiB adds in {:.2} s ({} segments, {:.0} MiB)",
        write.as_secs_f64(),
        stats.segments,
        stats.bytes as f64 / (1 << 20) as f64
    );
    for run in 0..3 {
        let start = Instant::now();
        let (j, rec) = Journal::open(o.clone()).unwrap();
        let open = start.elapsed();
        let count: usize = rec.queues.iter().map(|q| q.messages.len()).sum();
        assert_eq!(count as u64, messages);
        println!(
            "recovery run {run}: {count} messages, {} segments, {:.0} MiB in {:.3} s (report.duration {:.3} s, page cache warm)",
            rec.report.segments,
            rec.report.bytes as f64 / (1 << 20) as f64,
            open.as_secs_f64(),
            rec.report.duration.as_secs_f64()
        );
        drop(rec);
        j.close().unwrap();
    }
    std::fs::remove_dir_all(&d).unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs = Duration::from_secs(env_u64("JOURNAL_BENCH_SECS", if quick { 0 } else { 2 }))
        .max(Duration::from_millis(200));
    let rounds = env_u64("JOURNAL_BENCH_ROUNDS", if quick { 1 } else { 5 }) as usize;
    let messages = env_u64(
        "JOURNAL_BENCH_MESSAGES",
        if quick { 10_000 } else { 1_000_000 },
    );
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Raw and journal runs interleave, so that a noisy disk affects both sides of each ratio.
    let writers: Vec<u64> = std::env::var("JOURNAL_BENCH_WRITERS")
        .unwrap_or_else(|_| "1,16,64,256".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let mut raw = Vec::new();
    let mut raw_over = Vec::new();
    let mut fsyncs = vec![Vec::new(); writers.len()];
    let mut cores = vec![Vec::new(); writers.len()];
    let mut rates = vec![Vec::new(); writers.len()];
    let mut groups = vec![Vec::new(); writers.len()];
    let mut ratios = vec![Vec::new(); writers.len()];
    for round in 0..rounds {
        let r = raw_fdatasync(tmp.path(), secs, false);
        raw.push(r);
        let o = raw_fdatasync(tmp.path(), secs, true);
        raw_over.push(o);
        print!("round {round}: raw {r:.0}/s (overwrite {o:.0}/s)");
        for (i, w) in writers.iter().enumerate() {
            let (rate, group, fs, busy) = journal_rate(tmp.path(), *w, secs);
            cores[i].push(busy);
            rates[i].push(rate);
            groups[i].push(group);
            fsyncs[i].push(fs);
            ratios[i].push(rate / r);
            print!(", {w} writers {rate:.0}/s ({:.1}x)", rate / r);
        }
        println!();
    }
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}-{hi:.0}")
    };
    println!(
        "raw 4 KiB write+fdatasync, 1 writer: median {:.0} /s (rounds {}); overwriting a written file: median {:.0} /s (rounds {})",
        median(&mut raw),
        spread(&raw),
        median(&mut raw_over),
        spread(&raw_over),
    );
    for (i, w) in writers.iter().enumerate() {
        println!(
            "journal 1 KiB Add, sync=always, {w:>3} writers: median {:>7.0} appends/s (rounds {}), {:>5.1} appends/group, {:>5.0} fsyncs/s, {:.2} cores busy, median ratio to raw {:.1}x (rounds {:.1}-{:.1}x)",
            median(&mut rates[i]),
            spread(&rates[i]),
            median(&mut groups[i]),
            median(&mut fsyncs[i]),
            median(&mut cores[i]),
            median(&mut ratios[i]),
            ratios[i].first().copied().unwrap_or(0.0),
            ratios[i].last().copied().unwrap_or(0.0),
        );
    }
    recovery(tmp.path(), messages);
}
