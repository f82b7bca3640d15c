//! Model test of `store::log`: random appends, reads, timestamp lookups, clean reopens and
//! crashes against a `Vec` per partition. Reads must return exactly what was appended, in
//! order, across segment rolls and reopens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use store::log::{Log, LogOptions, LogRecord, LogSync, StreamConfig};

const PARTITIONS: u32 = 2;

#[derive(Clone, Debug)]
enum Op {
    Append(u32, Vec<LogRecord>),
    Read(u32, prop::sample::Index, usize),
    FindTime(u32, i64),
    Reopen,
    Crash,
}

fn record() -> impl Strategy<Value = LogRecord> {
    (
        -5i64..1000,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        prop::collection::vec(
            ("[a-z]{0,4}", prop::collection::vec(any::<u8>(), 0..6)),
            0..3,
        ),
    )
        .prop_map(|(ts, key, value, headers)| LogRecord {
            timestamp_ms: ts,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n, Bytes::from(v)))
                .collect(),
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PARTITIONS, prop::collection::vec(record(), 1..6)).prop_map(|(p, r)| Op::Append(p, r)),
        3 => (0..PARTITIONS, any::<prop::sample::Index>(), 0usize..2000).prop_map(|(p, i, m)| Op::Read(p, i, m)),
        1 => (0..PARTITIONS, -10i64..1010).prop_map(|(p, t)| Op::FindTime(p, t)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn check_read(log: &Log, model: &[LogRecord], p: u32, offset: u64, max_bytes: usize) {
    let got = log.read("s", p, offset, max_bytes).unwrap();
    let rest = &model[offset as usize..];
    if rest.is_empty() {
        assert!(got.is_empty());
        return;
    }
    assert!(!got.is_empty(), "at least one record when one exists");
    let mut used = 0;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, offset + i as u64);
        assert_eq!(&r.record, &rest[i]);
        if i > 0 {
            used += r.record.encoded_len();
        }
    }
    let first = got[0].record.encoded_len();
    assert!(
        got.len() == 1 || first + used <= max_bytes,
        "respects max_bytes"
    );
}

fn read_all(log: &Log, p: u32) -> Vec<LogRecord> {
    let mut out = Vec::new();
    loop {
        let got = log.read("s", p, out.len() as u64, 700).unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().map(|r| r.record));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_return_exactly_what_was_appended(
        segment_bytes in prop::sample::select(vec![256u64, 1024, 4096]),
        index_interval_bytes in prop::sample::select(vec![0u32, 64, 1000]),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let d = tempfile::tempdir().unwrap();
        let o = LogOptions {
            segment_bytes,
            index_interval_bytes,
            sync: LogSync::Never,
            ..LogOptions::new(d.path())
        };
        let mut log = Log::open(o.clone()).unwrap();
        log.create_stream("s", StreamConfig::new(PARTITIONS)).unwrap();
        let mut model: Vec<Vec<LogRecord>> = vec![Vec::new(); PARTITIONS as usize];
        for op in ops {
            match op {
                Op::Append(p, recs) => {
                    let m = &mut model[p as usize];
                    prop_assert_eq!(log.append("s", p, &recs).unwrap(), m.len() as u64);
                    m.extend(recs);
                }
                Op::Read(p, i, max_bytes) => {
                    let m = &model[p as usize];
                    let offset = i.index(m.len() + 1) as u64;
                    check_read(&log, m, p, offset, max_bytes);
                }
                Op::FindTime(p, ts) => {
                    let want = model[p as usize].iter().position(|r| r.timestamp_ms >= ts);
                    prop_assert_eq!(log.offset_for_timestamp("s", p, ts).unwrap(), want.map(|w| w as u64));
                }
                Op::Reopen => {
                    drop(log);
                    log = Log::open(o.clone()).unwrap();
                    prop_assert!(log.recovery_report().truncations.is_empty());
                }
                Op::Crash => {
                    std::mem::forget(log);
                    log = Log::open(o.clone()).unwrap();
                    prop_assert!(log.recovery_report().truncations.is_empty());
                }
            }
        }
        for p in 0..PARTITIONS {
            prop_assert_eq!(log.latest_offset("s", p).unwrap(), model[p as usize].len() as u64);
            prop_assert_eq!(&read_all(&log, p), &model[p as usize]);
        }
        drop(log);
        let log = Log::open(LogOptions { verify_on_open: true, ..o }).unwrap();
        for p in 0..PARTITIONS {
            prop_assert_eq!(&read_all(&log, p), &model[p as usize]);
        }
    }
}
