//! Exactly-once accounting: every consumer counts what it received per producer and sequence
//! number; the run compares that with what each producer says it published.

use crate::payload::Stamp;

/// Receive counts of one consumer (or the union of a queue's consumers).
///
/// ### Invariants
/// `counts[p][s]` is how many times sequence number `s` of producer `p` was received (saturating
/// at 255); `latencies_us` has one entry per decoded delivery.
#[derive(Debug, Default)]
pub struct Tracker {
    counts: Vec<Vec<u8>>,
    /// Deliveries whose payload was not a bench payload.
    pub foreign: u64,
    /// Deliveries received, duplicates included.
    pub deliveries: u64,
    /// End-to-end latency of each delivery, in microseconds.
    pub latencies_us: Vec<u32>,
}

/// The verdict on a set of deliveries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Published messages never received.
    pub lost: u64,
    /// Extra receipts of messages already received.
    pub duplicates: u64,
    /// Receipts of sequence numbers their producer does not count as published.
    pub unexpected: u64,
}

impl Verdict {
    /// Adds another verdict (of another fan-out consumer).
    pub fn add(&mut self, other: Verdict) {
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.unexpected += other.unexpected;
    }
}

impl Tracker {
    /// Counts one delivery received at `now_ns`.
    pub fn record(&mut self, stamp: Stamp, now_ns: u64) {
        self.deliveries += 1;
        let latency_us = now_ns.saturating_sub(stamp.sent_ns) / 1000;
        self.latencies_us
            .push(u32::try_from(latency_us).unwrap_or(u32::MAX));
        let (Ok(p), Ok(s)) = (usize::try_from(stamp.producer), usize::try_from(stamp.seq)) else {
            self.foreign += 1;
            return;
        };
        // A sequence number far beyond anything sensible is not a bench payload of this run.
        if p > 1_000_000 || s > 1 << 36 {
            self.foreign += 1;
            return;
        }
        if self.counts.len() <= p {
            self.counts.resize_with(p + 1, Vec::new);
        }
        let Some(per_producer) = self.counts.get_mut(p) else {
            return;
        };
        if per_producer.len() <= s {
            per_producer.resize((s + 1).max(per_producer.len() * 2), 0);
        }
        if let Some(c) = per_producer.get_mut(s) {
            *c = c.saturating_add(1);
        }
    }

    /// Counts a delivery that is not a bench payload.
    pub fn record_foreign(&mut self) {
        self.deliveries += 1;
        self.foreign += 1;
    }

    /// Adds another consumer's counts (consumers sharing one queue).
    pub fn merge(&mut self, other: Tracker) {
        self.foreign += other.foreign;
        self.deliveries += other.deliveries;
        self.latencies_us.extend(other.latencies_us);
        if self.counts.len() < other.counts.len() {
            self.counts.resize_with(other.counts.len(), Vec::new);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = m.saturating_add(t);
            }
        }
    }

    /// Compares the counts with `published[p]` messages (sequence numbers `0..published[p]`) of
    /// each producer `p`, each expected exactly once.
    pub fn verdict(&self, published: &[u64]) -> Verdict {
        let mut v = Verdict::default();
        for (p, &sent) in published.iter().enumerate() {
            let counts = self.counts.get(p).map(Vec::as_slice).unwrap_or(&[]);
            let sent = usize::try_from(sent).unwrap_or(usize::MAX);
            for (s, &c) in counts.iter().enumerate() {
                if s < sent {
                    if c == 0 {
                        v.lost += 1;
                    } else {
                        v.duplicates += u64::from(c - 1);
                    }
                } else {
                    v.unexpected += u64::from(c);
                }
            }
            v.lost += u64::try_from(sent.saturating_sub(counts.len())).unwrap_or(u64::MAX);
        }
        for counts in self.counts.iter().skip(published.len()) {
            v.unexpected += counts.iter().map(|&c| u64::from(c)).sum::<u64>();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(producer: u32, seq: u64) -> Stamp {
        Stamp {
            producer,
            seq,
            sent_ns: 0,
        }
    }

    #[test]
    fn exactly_once_is_clean() {
        let mut t = Tracker::default();
        for p in 0..3 {
            for s in 0..100 {
                t.record(stamp(p, s), 1000);
            }
        }
        assert_eq!(t.verdict(&[100, 100, 100]), Verdict::default());
        assert_eq!(t.deliveries, 300);
    }

    #[test]
    fn loss_duplicates_and_unexpected_are_counted() {
        let mut t = Tracker::default();
        for s in [0, 1, 1, 3, 7] {
            t.record(stamp(0, s), 0);
        }
        t.record(stamp(2, 0), 0);
        let v = t.verdict(&[5]);
        assert_eq!(v.lost, 2, "2 and 4");
        assert_eq!(v.duplicates, 1, "1 twice");
        assert_eq!(v.unexpected, 2, "seq 7 of producer 0, and producer 2");
    }

    #[test]
    fn merged_consumers_of_one_queue() {
        let mut a = Tracker::default();
        let mut b = Tracker::default();
        for s in 0..10 {
            if s % 2 == 0 {
                a.record(stamp(0, s), 0);
            } else {
                b.record(stamp(0, s), 0);
            }
        }
        b.record(stamp(0, 4), 0);
        a.merge(b);
        assert_eq!(
            a.verdict(&[10]),
            Verdict {
                lost: 0,
                duplicates: 1,
                unexpected: 0
            }
        );
        assert_eq!(a.latencies_us.len(), 11);
    }
}
