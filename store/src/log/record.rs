//! Records and the on-disk batch format (format version 1).
//!
//! One `append` writes one batch frame; all integers are little-endian:
//!
//! ```text
//! 0   len            u32   bytes after this field (frame length = 4 + len)
//! 4   crc            u32   CRC32C of bytes [32, 4 + len) then bytes [8, 32)
//! 8   magic          u8    1
//! 9   flags          u8    0 (reserved)
//! 10  reserved       u16   0
//! 12  base_offset    u64   offset of the first record
//! 20  record_count   u32   >= 1
//! 24  max_timestamp  i64   largest record timestamp in the batch (ms)
//! 32  records        record_count times:
//!       timestamp_ms i64
//!       key_len      i32   -1 = no key
//!       key          key_len bytes
//!       value_len    i32   -1 = null value (a Kafka tombstone)
//!       value        value_len bytes
//!       header_count u32
//!       headers      header_count times: name_len u16, name (UTF-8), value_len u32, value
//! ```
//!
//! The CRC covers everything after the CRC field, base offset included, so a batch is verified
//! as a whole. The record section is fed to it first: its CRC is computed before the offset is
//! known, outside the append lock, and only the 24 header bytes are added under it.

use bytes::Bytes;

use super::error::LogError;

/// Format version written in every batch.
pub(crate) const MAGIC: u8 = 1;
/// Size of the fixed batch header.
pub(crate) const BATCH_HEADER_LEN: usize = 32;
/// Largest encoded batch (frame) the log writes or accepts when reading.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;
/// Fixed bytes per record besides key, value and headers.
const RECORD_OVERHEAD: usize = 8 + 4 + 4 + 4;

/// One record as a producer hands it to [`crate::log::Log::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Producer-assigned timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Optional key (used for partitioning by the caller and kept with the record).
    pub key: Option<Bytes>,
    /// The payload; `None` is a null value (a Kafka tombstone), distinct from an empty one.
    pub value: Option<Bytes>,
    /// Ordered headers; names need not be unique.
    pub headers: Vec<(String, Bytes)>,
}

impl LogRecord {
    /// A record with a value, no key and no headers.
    pub fn new(timestamp_ms: i64, value: impl Into<Bytes>) -> Self {
        LogRecord {
            timestamp_ms,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// A record with a null value (a Kafka tombstone), no key and no headers.
    pub fn null_value(timestamp_ms: i64) -> Self {
        LogRecord {
            timestamp_ms,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    /// The value's bytes, empty for a null value.
    pub fn value_bytes(&self) -> Bytes {
        self.value.clone().unwrap_or_default()
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Bytes this record takes inside a batch.
    pub fn encoded_len(&self) -> usize {
        RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(n, v)| 2 + n.len() + 4 + v.len())
                .sum::<usize>()
    }
}

/// A record read back from the log, with the offset it was stored at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record as appended.
    pub record: LogRecord,
}

/// The fixed header of a batch frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    /// Bytes after the length field.
    pub len: u32,
    /// Stored CRC32C.
    pub crc: u32,
    /// Format version.
    pub magic: u8,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Number of records.
    pub count: u32,
    /// Largest record timestamp.
    pub max_timestamp: i64,
}

impl BatchHeader {
    /// Parses the fixed header; `None` if `b` is shorter than [`BATCH_HEADER_LEN`].
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        let b = b.get(..BATCH_HEADER_LEN)?;
        Some(BatchHeader {
            len: u32_at(b, 0),
            crc: u32_at(b, 4),
            magic: b[8],
            base_offset: u64_at(b, 12),
            count: u32_at(b, 20),
            max_timestamp: u64_at(b, 24) as i64,
        })
    }

    /// Length of the whole frame.
    pub fn frame_len(&self) -> u64 {
        4 + u64::from(self.len)
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }

    /// Checks the fields that can be checked without the body.
    pub fn plausible(&self) -> Result<(), &'static str> {
        if self.magic != MAGIC {
            return Err("unknown batch magic");
        }
        if (self.len as usize) < BATCH_HEADER_LEN - 4 || self.frame_len() > MAX_BATCH_BYTES {
            return Err("implausible batch length");
        }
        if self.count == 0 {
            return Err("batch with no records");
        }
        if self
            .base_offset
            .checked_add(u64::from(self.count))
            .is_none()
        {
            return Err("offset overflow");
        }
        Ok(())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A batch encoded without its base offset and CRC, ready for [`EncodedBatch::seal`].
pub(crate) struct EncodedBatch {
    buf: Vec<u8>,
    body_crc: u32,
    /// Number of records.
    pub count: u32,
    /// Largest record timestamp.
    pub max_timestamp: i64,
}

impl EncodedBatch {
    /// Encodes `records` (at least one) into a frame.
    pub fn encode(records: &[LogRecord]) -> Result<EncodedBatch, LogError> {
        if records.is_empty() {
            return Err(LogError::EmptyBatch);
        }
        let body: usize = records.iter().map(LogRecord::encoded_len).sum();
        let total = (BATCH_HEADER_LEN + body) as u64;
        if total > MAX_BATCH_BYTES || records.len() > u32::MAX as usize {
            return Err(LogError::BatchTooLarge {
                size: total,
                max: MAX_BATCH_BYTES,
            });
        }
        let mut buf = Vec::with_capacity(total as usize);
        buf.extend_from_slice(&((total - 4) as u32).to_le_bytes());
        buf.extend_from_slice(&[0u8; 4]); // crc
        buf.push(MAGIC);
        buf.push(0);
        buf.extend_from_slice(&[0u8; 2]);
        buf.extend_from_slice(&[0u8; 8]); // base offset
        buf.extend_from_slice(&(records.len() as u32).to_le_bytes());
        let max_timestamp = records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(i64::MIN);
        buf.extend_from_slice(&max_timestamp.to_le_bytes());
        for r in records {
            buf.extend_from_slice(&r.timestamp_ms.to_le_bytes());
            match &r.key {
                None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
                Some(k) => {
                    buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    buf.extend_from_slice(k);
                }
            }
            match &r.value {
                None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
                Some(v) => {
                    buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    buf.extend_from_slice(v);
                }
            }
            buf.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
            for (name, value) in &r.headers {
                let name_len = u16::try_from(name.len()).map_err(|_| LogError::BatchTooLarge {
                    size: name.len() as u64,
                    max: u64::from(u16::MAX),
                })?;
                buf.extend_from_slice(&name_len.to_le_bytes());
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
                buf.extend_from_slice(value);
            }
        }
        debug_assert_eq!(buf.len() as u64, total);
        let body_crc = crc32c::crc32c(&buf[BATCH_HEADER_LEN..]);
        Ok(EncodedBatch {
            buf,
            body_crc,
            count: records.len() as u32,
            max_timestamp,
        })
    }

    /// Frame length in bytes.
    pub fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Writes the base offset and the CRC; returns the finished frame.
    pub fn seal(&mut self, base_offset: u64) -> &[u8] {
        self.buf[12..20].copy_from_slice(&base_offset.to_le_bytes());
        let crc = frame_crc(self.body_crc, &self.buf[8..BATCH_HEADER_LEN]);
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

/// The batch CRC: CRC32C of the record section followed by header bytes [8, 32). The record
/// section comes first so its CRC can be computed before the base offset is known.
fn frame_crc(body_crc: u32, head: &[u8]) -> u32 {
    crc32c::crc32c_append(body_crc, head)
}

/// Verifies a complete frame: plausible header, exact length, CRC, and a record section that
/// decodes to exactly `record_count` records with nothing left over.
pub(crate) fn verify_frame(frame: &[u8]) -> Result<BatchHeader, &'static str> {
    let h = BatchHeader::parse(frame).ok_or("short batch header")?;
    h.plausible()?;
    if frame.len() as u64 != h.frame_len() {
        return Err("batch length mismatch");
    }
    let body_crc = crc32c::crc32c(&frame[BATCH_HEADER_LEN..]);
    if frame_crc(body_crc, &frame[8..BATCH_HEADER_LEN]) != h.crc {
        return Err("batch checksum mismatch");
    }
    let mut cur = Cursor {
        b: &frame[BATCH_HEADER_LEN..],
    };
    for _ in 0..h.count {
        skip_record(&mut cur).ok_or("malformed record")?;
    }
    if !cur.b.is_empty() {
        return Err("trailing bytes after the last record");
    }
    Ok(h)
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|s| u32_at(s, 0))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|s| u64_at(s, 0) as i64)
    }
}

/// Walks over one record checking every length and header name; allocates nothing.
fn skip_record(cur: &mut Cursor<'_>) -> Option<()> {
    cur.i64()?;
    let key_len = cur.u32()? as i32;
    if key_len >= 0 {
        cur.take(key_len as usize)?;
    } else if key_len != -1 {
        return None;
    }
    let value_len = cur.u32()? as i32;
    if value_len >= 0 {
        cur.take(value_len as usize)?;
    } else if value_len != -1 {
        return None;
    }
    let headers = cur.u32()?;
    for _ in 0..headers {
        let n = cur.u16()? as usize;
        std::str::from_utf8(cur.take(n)?).ok()?;
        let v = cur.u32()? as usize;
        cur.take(v)?;
    }
    Some(())
}

/// A batch read back from the log: a verified frame kept as shared bytes. Keys and values of
/// its records are zero-copy slices of the frame.
///
/// A batch returned by [`crate::log::Log::read_batches`] may start before the requested
/// offset; callers skip the records below it (as Kafka clients do).
#[derive(Clone, Debug)]
pub struct LogBatch {
    header: BatchHeader,
    frame: Bytes,
}

impl LogBatch {
    /// Wraps a frame that passed [`verify_frame`].
    pub(crate) fn from_verified(header: BatchHeader, frame: Bytes) -> Self {
        LogBatch { header, frame }
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.header.next_offset() - 1
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.header.next_offset()
    }

    /// Number of records.
    pub fn record_count(&self) -> u32 {
        self.header.count
    }

    /// Largest record timestamp in the batch (ms).
    pub fn max_timestamp_ms(&self) -> i64 {
        self.header.max_timestamp
    }

    /// Size of the stored frame in bytes.
    pub fn encoded_len(&self) -> usize {
        self.frame.len()
    }

    /// The raw verified frame, in the format documented in this module.
    pub fn as_bytes(&self) -> &Bytes {
        &self.frame
    }

    /// The records in offset order.
    pub fn records(&self) -> BatchRecords {
        BatchRecords {
            rest: self.frame.slice(BATCH_HEADER_LEN..),
            next_offset: self.header.base_offset,
            remaining: self.header.count,
        }
    }
}

/// Iterator over the records of a [`LogBatch`].
#[derive(Debug)]
pub struct BatchRecords {
    rest: Bytes,
    next_offset: u64,
    remaining: u32,
}

impl BatchRecords {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        if self.rest.len() < n {
            return None;
        }
        Some(self.rest.split_to(n))
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|s| u32_at(&s, 0))
    }
    fn decode(&mut self) -> Option<LogRecord> {
        let timestamp_ms = self.take(8).map(|s| u64_at(&s, 0) as i64)?;
        let key_len = self.u32()? as i32;
        let key = if key_len >= 0 {
            Some(self.take(key_len as usize)?)
        } else {
            None
        };
        let value_len = self.u32()? as i32;
        let value = if value_len >= 0 {
            Some(self.take(value_len as usize)?)
        } else {
            None
        };
        let count = self.u32()?;
        let mut headers = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let n = self.u16()? as usize;
            let name = String::from_utf8(self.take(n)?.to_vec()).ok()?;
            let v = self.u32()? as usize;
            headers.push((name, self.take(v)?));
        }
        Some(LogRecord {
            timestamp_ms,
            key,
            value,
            headers,
        })
    }
}

impl Iterator for BatchRecords {
    type Item = StoredRecord;

    fn next(&mut self) -> Option<StoredRecord> {
        if self.remaining == 0 {
            return None;
        }
        // The frame was verified, so decoding cannot fail; stop rather than panic if it does.
        let record = match self.decode() {
            Some(r) => r,
            None => {
                self.remaining = 0;
                return None;
            }
        };
        let offset = self.next_offset;
        self.next_offset += 1;
        self.remaining -= 1;
        Some(StoredRecord { offset, record })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// Splits a buffer read from a segment into verified batches. Stops at the first incomplete
/// frame; a complete frame that fails verification is an error carrying its position within
/// `buf`.
pub(crate) fn split_batches(buf: Bytes) -> Result<Vec<LogBatch>, (u64, &'static str)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(h) = BatchHeader::parse(&buf[at..]) {
        if let Err(e) = h.plausible() {
            return Err((at as u64, e));
        }
        let end = at as u64 + h.frame_len();
        if end > buf.len() as u64 {
            break;
        }
        let frame = buf.slice(at..end as usize);
        let header = verify_frame(&frame).map_err(|e| (at as u64, e))?;
        out.push(LogBatch::from_verified(header, frame));
        at = end as usize;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<LogRecord> {
        vec![
            LogRecord::new(5, &b"v1"[..])
                .with_key(&b"k"[..])
                .with_header("h", &b"x"[..]),
            LogRecord::new(3, Bytes::new()),
            LogRecord::new(9, &b"v3"[..]).with_key(Bytes::new()),
        ]
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let recs = sample();
        let mut enc = EncodedBatch::encode(&recs).unwrap();
        assert_eq!(enc.count, 3);
        assert_eq!(enc.max_timestamp, 9);
        let frame = Bytes::copy_from_slice(enc.seal(42));
        let h = verify_frame(&frame).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.frame_len(), frame.len() as u64);
        let batch = LogBatch::from_verified(h, frame);
        let got: Vec<_> = batch.records().collect();
        assert_eq!(got.len(), 3);
        for (i, (g, want)) in got.iter().zip(&recs).enumerate() {
            assert_eq!(g.offset, 42 + i as u64);
            assert_eq!(&g.record, want);
        }
    }

    #[test]
    fn null_value_stays_distinct_from_empty_value() {
        let recs = vec![
            LogRecord::null_value(1).with_key(&b"gone"[..]),
            LogRecord::new(2, Bytes::new()).with_key(&b"empty"[..]),
        ];
        assert_eq!(recs[0].encoded_len(), recs[1].encoded_len() - 1);
        let mut enc = EncodedBatch::encode(&recs).unwrap();
        let frame = Bytes::copy_from_slice(enc.seal(0));
        let h = verify_frame(&frame).unwrap();
        let got: Vec<_> = LogBatch::from_verified(h, frame)
            .records()
            .map(|r| r.record)
            .collect();
        assert_eq!(got, recs);
        assert_eq!(got[0].value, None);
        assert_eq!(got[1].value, Some(Bytes::new()));
        assert_eq!(got[0].value_bytes(), Bytes::new());
    }

    #[test]
    fn crc_covers_records_then_header() {
        let mut enc = EncodedBatch::encode(&sample()).unwrap();
        let frame = enc.seal(7).to_vec();
        let mut bytes = frame[BATCH_HEADER_LEN..].to_vec();
        bytes.extend_from_slice(&frame[8..BATCH_HEADER_LEN]);
        assert_eq!(crc32c::crc32c(&bytes), u32_at(&frame, 4));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut enc = EncodedBatch::encode(&sample()).unwrap();
        let frame = enc.seal(1).to_vec();
        for i in 0..frame.len() * 8 {
            let mut f = frame.clone();
            f[i / 8] ^= 1 << (i % 8);
            assert!(verify_frame(&f).is_err(), "flip of bit {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let mut enc = EncodedBatch::encode(&sample()).unwrap();
        let frame = enc.seal(1).to_vec();
        for cut in 0..frame.len() {
            assert!(verify_frame(&frame[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn split_stops_at_partial_frame() {
        let mut a = EncodedBatch::encode(&sample()).unwrap();
        let mut b = EncodedBatch::encode(&sample()).unwrap();
        let mut buf = a.seal(0).to_vec();
        let first = buf.len();
        buf.extend_from_slice(b.seal(3));
        buf.truncate(buf.len() - 1);
        let batches = split_batches(Bytes::from(buf)).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].encoded_len(), first);
    }

    #[test]
    fn empty_batch_is_rejected() {
        assert!(matches!(
            EncodedBatch::encode(&[]),
            Err(LogError::EmptyBatch)
        ));
    }
}
