//! The benchmark payload: a fixed header (producer, sequence number, send time) padded to the
//! message size, so that every consumer can check exactly-once arrival and measure latency.

use std::sync::OnceLock;
use std::time::Instant;

/// Bytes of the header at the start of every payload.
pub const HEADER_LEN: usize = 24;

/// First four bytes of every payload ("GWB1"): tells bench messages from anything else.
const MAGIC: [u8; 4] = *b"GWB1";

/// The clock every producer and consumer of this process shares.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide base instant (monotonic).
pub fn now_ns() -> u64 {
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What a payload header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the producer that sent it.
    pub producer: u32,
    /// Its sequence number within that producer (0, 1, 2, ...).
    pub seq: u64,
    /// [`now_ns`] when it was sent.
    pub sent_ns: u64,
}

/// A `size`-byte payload (at least [`HEADER_LEN`]) stamped with `now_ns()`; the padding is ASCII
/// so that text-only paths (STOMP without content-length, JMS TextMessage) could carry it too.
pub fn encode(producer: u32, seq: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(HEADER_LEN));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&producer.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&now_ns().to_le_bytes());
    out.resize(size.max(HEADER_LEN), b'x');
    out
}

/// Reads the header of a payload; `None` when it is not a bench payload.
pub fn decode(payload: &[u8]) -> Option<Stamp> {
    let header = payload.get(..HEADER_LEN)?;
    let (magic, rest) = header.split_at(4);
    if magic != MAGIC {
        return None;
    }
    let (producer, rest) = rest.split_at(4);
    let (seq, sent) = rest.split_at(8);
    Some(Stamp {
        producer: u32::from_le_bytes(producer.try_into().ok()?),
        seq: u64::from_le_bytes(seq.try_into().ok()?),
        sent_ns: u64::from_le_bytes(sent.try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let p = encode(7, 123_456_789, 1024);
        assert_eq!(p.len(), 1024);
        let s = decode(&p).unwrap_or_else(|| panic!("not decoded"));
        assert_eq!((s.producer, s.seq), (7, 123_456_789));
        assert!(s.sent_ns <= now_ns());
        assert_eq!(
            encode(1, 2, 3).len(),
            HEADER_LEN,
            "never shorter than the header"
        );
    }

    #[test]
    fn foreign_or_short_payloads_are_not_decoded() {
        assert_eq!(decode(b"hello"), None);
        let mut p = encode(1, 1, 64);
        p[0] = b'X';
        assert_eq!(decode(&p), None);
    }
}
