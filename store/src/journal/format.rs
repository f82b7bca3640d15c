//! On-disk format of the journal, version 1. Pure encoding and decoding: no I/O.
//!
//! ```text
//! segment  = header frame*
//! header   = magic "GWJRNL\r\n" (8) | version u32 | reserved u32 (0) | segment id u64
//!            | crc32c of the previous 24 bytes u32 | reserved u32 (0)            -- 32 bytes
//! frame    = len u32 | crc32c(body) u32 | body                                 -- one batch
//! body     = batch sequence u64 | record count u32 | record*
//! record   = tag u8 | fields (see `encode_record`)
//! ```
//! All integers are little-endian. Batch sequence numbers grow strictly across the whole journal;
//! a frame whose sequence does not is treated as damage. Byte strings are `len u32 | bytes`.

use super::{JournalRecord, QueueId};
use bytes::Bytes;

/// Segment file magic.
pub(crate) const MAGIC: [u8; 8] = *b"GWJRNL\r\n";
/// The only format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header.
pub(crate) const HEADER_LEN: usize = 32;
/// Bytes of a frame header (`len`, `crc`).
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// Smallest possible frame body: batch sequence and record count.
pub(crate) const MIN_BODY_LEN: usize = 12;
/// Largest frame body accepted, on write and on read.
pub(crate) const MAX_BODY_LEN: usize = 256 << 20;

const TAG_QUEUE_CREATE: u8 = 1;
const TAG_QUEUE_DELETE: u8 = 2;
const TAG_ADD: u8 = 3;
const TAG_ACK: u8 = 4;
const TAG_DELIVERY_COUNT: u8 = 5;
const TAG_TX_PREPARE: u8 = 6;
const TAG_TX_COMMIT: u8 = 7;
const TAG_TX_ROLLBACK: u8 = 8;

/// Encodes a segment header.
pub(crate) fn encode_header(segment: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&segment.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short,
    /// Wrong magic or checksum.
    Damaged(&'static str),
    /// Intact header of another format version.
    Version(u32),
    /// Intact header naming another segment than the file name does.
    WrongSegment(u64),
}

/// Checks a segment header.
pub(crate) fn decode_header(data: &[u8], segment: u64) -> Result<(), HeaderError> {
    let h = data.get(..HEADER_LEN).ok_or(HeaderError::Short)?;
    if h[0..8] != MAGIC {
        return Err(HeaderError::Damaged("bad segment magic"));
    }
    if crc32c::crc32c(&h[0..24]) != le_u32(&h[24..28]) {
        return Err(HeaderError::Damaged("segment header checksum mismatch"));
    }
    let version = le_u32(&h[8..12]);
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    let id = le_u64(&h[16..24]);
    if id != segment {
        return Err(HeaderError::WrongSegment(id));
    }
    Ok(())
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Checks records before they are encoded: transactions do not nest.
pub(crate) fn validate(records: &[JournalRecord]) -> Result<(), String> {
    for r in records {
        if let JournalRecord::TxPrepare { tx, records } = r {
            if records.iter().any(|r| {
                matches!(
                    r,
                    JournalRecord::TxPrepare { .. }
                        | JournalRecord::TxCommit { .. }
                        | JournalRecord::TxRollback { .. }
                )
            }) {
                return Err(format!("transaction {tx} contains a transaction record"));
            }
        }
    }
    Ok(())
}

/// Number of "record units" a record stands for in live/total accounting: one, or for a
/// prepared transaction the number of records it stages (at least one).
pub(crate) fn units(record: &JournalRecord) -> u64 {
    match record {
        JournalRecord::TxPrepare { records, .. } => (records.len() as u64).max(1),
        _ => 1,
    }
}

/// Appends the body of a batch *without* its leading batch sequence (record count and records).
/// The writer adds the sequence when it frames the batch.
pub(crate) fn encode_records(records: &[JournalRecord], out: &mut Vec<u8>) {
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        encode_record(r, out);
    }
}

/// Encoded size of [`encode_records`]' output, to reserve exactly.
pub(crate) fn encoded_len(records: &[JournalRecord]) -> usize {
    4 + records.iter().map(record_len).sum::<usize>()
}

fn record_len(r: &JournalRecord) -> usize {
    1 + match r {
        JournalRecord::QueueCreate { name, meta, .. } => 8 + 4 + name.len() + 4 + meta.len(),
        JournalRecord::QueueDelete { .. } => 8,
        JournalRecord::Add { payload, .. } => 16 + 4 + payload.len(),
        JournalRecord::Ack { .. } => 16,
        JournalRecord::DeliveryCount { .. } => 20,
        JournalRecord::TxPrepare { records, .. } => {
            8 + 4 + records.iter().map(record_len).sum::<usize>()
        }
        JournalRecord::TxCommit { .. } | JournalRecord::TxRollback { .. } => 8,
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode_record(r: &JournalRecord, out: &mut Vec<u8>) {
    match r {
        JournalRecord::QueueCreate { queue, name, meta } => {
            out.push(TAG_QUEUE_CREATE);
            out.extend_from_slice(&queue.to_le_bytes());
            put_bytes(out, name.as_bytes());
            put_bytes(out, meta);
        }
        JournalRecord::QueueDelete { queue } => {
            out.push(TAG_QUEUE_DELETE);
            out.extend_from_slice(&queue.to_le_bytes());
        }
        JournalRecord::Add {
            queue,
            seq,
            payload,
        } => {
            out.push(TAG_ADD);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
            put_bytes(out, payload);
        }
        JournalRecord::Ack { queue, seq } => {
            out.push(TAG_ACK);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
        }
        JournalRecord::DeliveryCount { queue, seq, count } => {
            out.push(TAG_DELIVERY_COUNT);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        JournalRecord::TxPrepare { tx, records } => {
            out.push(TAG_TX_PREPARE);
            out.extend_from_slice(&tx.to_le_bytes());
            encode_records(records, out);
        }
        JournalRecord::TxCommit { tx } => {
            out.push(TAG_TX_COMMIT);
            out.extend_from_slice(&tx.to_le_bytes());
        }
        JournalRecord::TxRollback { tx } => {
            out.push(TAG_TX_ROLLBACK);
            out.extend_from_slice(&tx.to_le_bytes());
        }
    }
}

/// Encodes a complete frame (header and body) for a batch with sequence `batch_seq` whose
/// records were encoded by [`encode_records`] into `records`.
pub(crate) fn encode_frame(batch_seq: u64, records: &[u8], out: &mut Vec<u8>) {
    let seq = batch_seq.to_le_bytes();
    let len = (seq.len() + records.len()) as u32;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq), records);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq);
    out.extend_from_slice(records);
}

/// A frame that passed its checks.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The batch sequence number.
    pub batch_seq: u64,
    /// The decoded records.
    pub records: Vec<JournalRecord>,
    /// Total frame length in bytes, header included.
    pub len: usize,
}

/// Why bytes at some offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes remain than the frame needs (a torn tail, if nothing valid follows).
    Short,
    /// The frame header or body is wrong.
    Bad(String),
}

/// Decodes the frame starting at `offset` of `data` (a whole segment). Payload bytes of the
/// records are zero-copy slices of `data`.
pub(crate) fn decode_frame(data: &Bytes, offset: usize) -> Result<Frame, FrameError> {
    let rest = data.get(offset..).ok_or(FrameError::Short)?;
    if rest.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Short);
    }
    let len = le_u32(&rest[0..4]) as usize;
    let crc = le_u32(&rest[4..8]);
    if len < MIN_BODY_LEN {
        return Err(FrameError::Bad(format!("frame length {len} too small")));
    }
    if len > MAX_BODY_LEN {
        return Err(FrameError::Bad(format!("frame length {len} too large")));
    }
    let body = rest
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
        .ok_or(FrameError::Short)?;
    if crc32c::crc32c(body) != crc {
        return Err(FrameError::Bad("frame checksum mismatch".into()));
    }
    let start = offset + FRAME_HEADER_LEN;
    let mut r = Reader {
        data,
        pos: start,
        end: start + len,
    };
    let batch_seq = r.u64()?;
    let records = r.records(true)?;
    if r.pos != r.end {
        return Err(FrameError::Bad(
            "trailing bytes after the last record".into(),
        ));
    }
    Ok(Frame {
        batch_seq,
        records,
        len: FRAME_HEADER_LEN + len,
    })
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

fn bad(what: &str) -> FrameError {
    FrameError::Bad(format!("undecodable batch: {what}"))
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| bad("length overflow"))?;
        if end > self.end {
            return Err(bad("record runs past the end of the batch"));
        }
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| bad("out of range"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(le_u32(self.take(4)?))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(le_u64(self.take(8)?))
    }
    fn bytes(&mut self) -> Result<Bytes, FrameError> {
        let n = self.u32()? as usize;
        let start = self.pos;
        self.take(n)?;
        Ok(self.data.slice(start..start + n))
    }
    fn records(&mut self, top: bool) -> Result<Vec<JournalRecord>, FrameError> {
        let n = self.u32()? as usize;
        // Every record takes at least 9 bytes: refuse counts the batch cannot hold.
        if n > (self.end - self.pos) / 9 {
            return Err(bad("record count larger than the batch"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.record(top)?);
        }
        Ok(out)
    }
    fn record(&mut self, top: bool) -> Result<JournalRecord, FrameError> {
        let tag = self.u8()?;
        Ok(match tag {
            TAG_QUEUE_CREATE => {
                let queue: QueueId = self.u64()?;
                let name = self.bytes()?;
                let name = String::from_utf8(name.to_vec()).map_err(|_| bad("queue name"))?;
                let meta = self.bytes()?;
                JournalRecord::QueueCreate { queue, name, meta }
            }
            TAG_QUEUE_DELETE => JournalRecord::QueueDelete { queue: self.u64()? },
            TAG_ADD => JournalRecord::Add {
                queue: self.u64()?,
                seq: self.u64()?,
                payload: self.bytes()?,
            },
            TAG_ACK => JournalRecord::Ack {
                queue: self.u64()?,
                seq: self.u64()?,
            },
            TAG_DELIVERY_COUNT => JournalRecord::DeliveryCount {
                queue: self.u64()?,
                seq: self.u64()?,
                count: self.u32()?,
            },
            TAG_TX_PREPARE if top => JournalRecord::TxPrepare {
                tx: self.u64()?,
                records: self.records(false)?,
            },
            TAG_TX_COMMIT if top => JournalRecord::TxCommit { tx: self.u64()? },
            TAG_TX_ROLLBACK if top => JournalRecord::TxRollback { tx: self.u64()? },
            TAG_TX_PREPARE | TAG_TX_COMMIT | TAG_TX_ROLLBACK => {
                return Err(bad("nested transaction record"))
            }
            other => return Err(FrameError::Bad(format!("unknown record tag {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<JournalRecord> {
        vec![
            JournalRecord::QueueCreate {
                queue: 7,
                name: "orders".into(),
                meta: Bytes::from_static(b"\x01meta"),
            },
            JournalRecord::Add {
                queue: 7,
                seq: 1,
                payload: Bytes::from_static(b"hello"),
            },
            JournalRecord::DeliveryCount {
                queue: 7,
                seq: 1,
                count: 3,
            },
            JournalRecord::Ack { queue: 7, seq: 1 },
            JournalRecord::TxPrepare {
                tx: 9,
                records: vec![JournalRecord::Add {
                    queue: 7,
                    seq: 2,
                    payload: Bytes::new(),
                }],
            },
            JournalRecord::TxCommit { tx: 9 },
            JournalRecord::TxRollback { tx: 10 },
            JournalRecord::QueueDelete { queue: 7 },
        ]
    }

    fn frame(seq: u64, records: &[JournalRecord]) -> Vec<u8> {
        let mut body = Vec::new();
        encode_records(records, &mut body);
        assert_eq!(body.len(), encoded_len(records));
        let mut out = Vec::new();
        encode_frame(seq, &body, &mut out);
        out
    }

    #[test]
    fn frame_round_trip_consumes_every_byte() {
        let records = sample();
        let bytes = Bytes::from(frame(42, &records));
        let f = decode_frame(&bytes, 0).unwrap();
        assert_eq!(f.batch_seq, 42);
        assert_eq!(f.records, records);
        assert_eq!(f.len, bytes.len());
    }

    #[test]
    fn every_truncation_is_short() {
        let bytes = frame(1, &sample());
        for cut in 0..bytes.len() {
            let b = Bytes::copy_from_slice(&bytes[..cut]);
            assert_eq!(
                decode_frame(&b, 0).unwrap_err(),
                FrameError::Short,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = frame(1, &sample());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let b = Bytes::from(b);
            assert!(decode_frame(&b, 0).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn zeroes_are_not_a_frame() {
        let b = Bytes::from(vec![0u8; 64]);
        assert!(matches!(decode_frame(&b, 0), Err(FrameError::Bad(_))));
    }

    #[test]
    fn header_round_trip_and_damage() {
        let h = encode_header(5);
        assert_eq!(decode_header(&h, 5), Ok(()));
        assert_eq!(decode_header(&h, 6), Err(HeaderError::WrongSegment(5)));
        assert_eq!(decode_header(&h[..10], 5), Err(HeaderError::Short));
        let mut bad = h;
        bad[17] ^= 1;
        assert!(matches!(
            decode_header(&bad, 5),
            Err(HeaderError::Damaged(_))
        ));
    }

    #[test]
    fn nested_transactions_are_refused() {
        let nested = vec![JournalRecord::TxPrepare {
            tx: 1,
            records: vec![JournalRecord::TxCommit { tx: 2 }],
        }];
        assert!(validate(&nested).is_err());
        assert!(validate(&sample()).is_ok());
    }
}
