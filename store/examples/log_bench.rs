//! Append throughput of `store::log` next to the raw sequential write bandwidth of the same
//! disk, measured in the same run.
//!
//! ```text
//! cargo run --release -p store --example log_bench -- [--dir DIR] [--never-mib N] [--always-mib N] [--runs N]
//! ```
//!
//! Workload: 1 KiB records in batches of 100 (one `append` per batch, ~100 KiB frames).
//! - `Never`: appends with `LogSync::Never`, then `close` (fsync); the raw loop writes
//!   frame-sized chunks with `write`, then one `fsync`. Both timings include the final fsync.
//! - `Always`: every append is `fdatasync`ed; the raw loop `fdatasync`s every chunk.
//!
//! Each figure is the median of `--runs` runs (default 3), raw and log runs interleaved.
//! `--dir` must be on the disk being measured (default `./target/log-bench`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use store::log::{Log, LogOptions, LogRecord, LogSync, StreamConfig};

const RECORD: usize = 1024;
const BATCH: usize = 100;

struct Args {
    dir: PathBuf,
    never_mib: u64,
    always_mib: u64,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        dir: PathBuf::from("target/log-bench"),
        never_mib: 512,
        always_mib: 128,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(value()?),
            "--never-mib" => a.never_mib = value()?.parse().map_err(|e| format!("{e}"))?,
            "--always-mib" => a.always_mib = value()?.parse().map_err(|e| format!("{e}"))?,
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("{e}"))?,
            "--bench" => {} // passed by `cargo bench`-style runners
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn batch() -> Vec<LogRecord> {
    (0..BATCH)
        .map(|i| {
            let value: Vec<u8> = (0..RECORD).map(|j| (i * 31 + j) as u8).collect();
            LogRecord::new(1_700_000_000_000 + i as i64, Bytes::from(value))
        })
        .collect()
}

/// Raw sequential writes of `chunk`-sized buffers; returns bytes per second.
fn raw(
    dir: &Path,
    total: u64,
    chunk: usize,
    sync_each: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let path = dir.join("raw.bin");
    let buf = vec![0x5au8; chunk];
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let start = Instant::now();
    let mut written = 0u64;
    while written < total {
        f.write_all(&buf)?;
        if sync_each {
            f.sync_data()?;
        }
        written += chunk as u64;
    }
    let loop_secs = start.elapsed().as_secs_f64();
    f.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    if std::env::var_os("LOG_BENCH_VERBOSE").is_some() {
        eprintln!("raw sync_each={sync_each}: loop {loop_secs:.3}s total {secs:.3}s");
    }
    drop(f);
    fs::remove_file(&path)?;
    Ok(written as f64 / secs)
}

/// Log appends of 100 x 1 KiB batches; returns (bytes per second of frames, frame length).
fn log_run(
    dir: &Path,
    total: u64,
    sync: LogSync,
) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let ldir = dir.join("log");
    if ldir.exists() {
        fs::remove_dir_all(&ldir)?;
    }
    let log = Log::open(LogOptions {
        sync,
        ..LogOptions::new(&ldir)
    })?;
    log.create_stream("bench", StreamConfig::new(1))?;
    let records = batch();
    let start = Instant::now();
    let mut appended = 0u64;
    let mut frame = 0;
    while appended < total {
        log.append("bench", 0, &records)?;
        let size = log.partition_size_bytes("bench", 0)?;
        frame = size - appended;
        appended = size;
    }
    let loop_secs = start.elapsed().as_secs_f64();
    log.close()?;
    let secs = start.elapsed().as_secs_f64();
    if std::env::var_os("LOG_BENCH_VERBOSE").is_some() {
        eprintln!("log {sync:?}: loop {loop_secs:.3}s total {secs:.3}s");
    }
    drop(log);
    fs::remove_dir_all(&ldir)?;
    Ok((appended as f64 / secs, frame))
}

/// Sequential read of the whole partition with `read_batches`, decoding every record (warm
/// page cache).
fn read_run(dir: &Path, total: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let ldir = dir.join("read");
    if ldir.exists() {
        fs::remove_dir_all(&ldir)?;
    }
    let log = Log::open(LogOptions {
        sync: LogSync::Never,
        ..LogOptions::new(&ldir)
    })?;
    log.create_stream("bench", StreamConfig::new(1))?;
    let records = batch();
    while log.partition_size_bytes("bench", 0)? < total {
        log.append("bench", 0, &records)?;
    }
    let start = Instant::now();
    let (mut offset, mut bytes, mut n) = (0u64, 0u64, 0u64);
    loop {
        let batches = log.read_batches("bench", 0, offset, 1 << 20)?;
        let Some(last) = batches.last() else { break };
        offset = last.next_offset();
        for b in &batches {
            bytes += b.encoded_len() as u64;
            n += b
                .records()
                .map(|r| r.record.value.as_ref().map_or(0, |v| v.len() as u64))
                .sum::<u64>()
                .min(1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if n == 0 {
        return Err("nothing read".into());
    }
    drop(log);
    fs::remove_dir_all(&ldir)?;
    Ok(bytes as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mbs(bps: f64) -> f64 {
    bps / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse_args()?;
    fs::create_dir_all(&a.dir)?;
    // Touch the directory so errors about it come first.
    File::open(&a.dir)?;
    let mib = 1u64 << 20;
    println!(
        "dir {} ; record {RECORD} B ; batch {BATCH} records ; runs {}",
        a.dir.display(),
        a.runs
    );
    println!("| sync | written | raw disk (median) | log append (median) | log/raw (median of pairs) | frame |");
    println!("|---|---|---|---|---|---|");
    for (name, sync, total) in [
        ("Never (+ final fsync)", LogSync::Never, a.never_mib * mib),
        (
            "Always (fdatasync per batch)",
            LogSync::Always,
            a.always_mib * mib,
        ),
    ] {
        let (mut raws, mut logs, mut ratios, mut frame) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..a.runs {
            let (l, f) = log_run(&a.dir, total, sync)?;
            frame = f;
            let r = raw(&a.dir, total, frame as usize, sync == LogSync::Always)?;
            logs.push(l);
            raws.push(r);
            ratios.push(l / r);
        }
        println!(
            "| {name} | {} MiB | {:.0} MB/s | {:.0} MB/s | {:.0}% | {frame} B |",
            total / mib,
            mbs(median(raws)),
            mbs(median(logs)),
            100.0 * median(ratios)
        );
    }
    let read = median(
        (0..a.runs)
            .map(|_| read_run(&a.dir, 256 * mib))
            .collect::<Result<Vec<_>, _>>()?,
    );
    println!(
        "read_batches + decode, 1 MiB per call, warm cache, 256 MiB: {:.0} MB/s",
        mbs(read)
    );
    Ok(())
}
