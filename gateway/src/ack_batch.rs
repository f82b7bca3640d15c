//! Deliveries acknowledged to the engine per burst rather than with one engine call each.

use routes::{ConsumerId, Session};

/// Deliveries a session has finished (auto-acknowledged, written at QoS 0, PUBACKed) and not
/// yet acknowledged to the engine. [`AckBatch::flush`] makes one engine call per run of the
/// same consumer (one call in the common case of one consumer); both vectors keep their
/// capacity between bursts.
#[derive(Debug, Default)]
pub struct AckBatch {
    acks: Vec<(ConsumerId, u64)>,
    seqs: Vec<u64>,
}

impl AckBatch {
    /// Adds a finished delivery.
    pub fn push(&mut self, consumer: ConsumerId, seq: u64) {
        self.acks.push((consumer, seq));
    }

    /// True when nothing waits to be acknowledged.
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// Acknowledges everything added since the last call. Returns whether there was anything.
    /// An ack the engine refuses (its consumer is gone) is dropped: the engine took the
    /// delivery back already.
    pub fn flush(&mut self, session: &Session) -> bool {
        if self.acks.is_empty() {
            return false;
        }
        let mut rest = self.acks.as_slice();
        while let Some(&(consumer, _)) = rest.first() {
            let run = rest.iter().take_while(|(c, _)| *c == consumer).count();
            let (same, tail) = rest.split_at(run);
            self.seqs.clear();
            self.seqs.extend(same.iter().map(|(_, seq)| *seq));
            let _ = session.ack(consumer, &self.seqs);
            rest = tail;
        }
        self.acks.clear();
        true
    }
}
