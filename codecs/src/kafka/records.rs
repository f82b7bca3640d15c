//! Record batches, message format v2 (magic 2), as carried in Produce requests and Fetch
//! responses.
//!
//! ```text
//! baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8 (= 2),
//! crc u32 (CRC32C of everything after it), attributes i16, lastOffsetDelta i32,
//! baseTimestamp i64, maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence i32,
//! recordCount i32, records (compressed as a whole when attributes & 7 != 0)
//! record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//!         key varint-length bytes (-1 = null), value likewise,
//!         headerCount varint, headers (key varint-length UTF-8, value varint-length bytes)
//! ```
//!
//! Decompression (gzip, snappy raw or in the xerial framing the Java client writes, lz4 frame,
//! zstd) never produces more than [`RecordLimits::max_uncompressed_bytes`].

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::KafkaDecodeError;
use super::wire::{put_varint, put_varlong, Reader};

/// Size of the batch header up to and including `recordCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Offset of the field after `crc`, where the CRC's coverage begins.
const CRC_START: usize = 21;

/// Bounds for decoding record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Most bytes compressed records may decompress to, per batch.
    pub max_uncompressed_bytes: usize,
}

impl Default for RecordLimits {
    /// 64 MiB.
    fn default() -> Self {
        RecordLimits {
            max_uncompressed_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Compression codec of a batch (the low three bits of its attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec named by batch attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, KafkaDecodeError> {
        Ok(match attributes & 7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            n => return Err(KafkaDecodeError::UnknownCompression(n as u8)),
        })
    }

    /// The attribute bits of this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// A record header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value, possibly null.
    pub value: Option<Bytes>,
}

/// One record with its absolute offset and timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset (batch base offset + offset delta).
    pub offset: i64,
    /// Absolute timestamp in ms (batch base timestamp + delta).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<RecordHeader>,
}

/// A decoded record batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    /// Message format: 2 for record batches; 0 or 1 for a legacy message (whose compressed
    /// inner messages, if any, are flattened into `records`).
    pub magic: i8,
    /// Base offset (producers send 0).
    pub base_offset: i64,
    /// Partition leader epoch.
    pub partition_leader_epoch: i32,
    /// Attributes: compression (bits 0-2), timestamp type (3), transactional (4), control (5).
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// First timestamp.
    pub base_timestamp: i64,
    /// Largest timestamp.
    pub max_timestamp: i64,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// The records.
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// Whether the batch is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
}

fn be_i32(b: Option<&[u8]>) -> Option<i32> {
    let b: [u8; 4] = b?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

fn invalid(what: &'static str, offset: usize) -> KafkaDecodeError {
    KafkaDecodeError::Invalid { what, offset }
}

/// Decodes every record batch in `data` (the `records` field of a Produce partition), checking
/// each batch's CRC and decompressing its records.
pub fn decode_record_batches(
    data: &Bytes,
    limits: &RecordLimits,
) -> Result<Vec<RecordBatch>, KafkaDecodeError> {
    let mut r = Reader::new(data.clone(), 0, false);
    let mut batches = Vec::new();
    while r.remaining() > 0 {
        let start = r.position();
        let head = r.take(12, "batch offset and length")?;
        let length = be_i32(head.get(8..12)).unwrap_or(-1);
        if length < LEGACY_MIN_LEN as i32 {
            return Err(invalid("batch length", start + 8));
        }
        let body = r.take(length as usize, "record batch")?;
        let mut whole = BytesMut::with_capacity(12 + body.len());
        whole.put_slice(&head);
        whole.put_slice(&body);
        let whole = whole.freeze();
        match whole.get(16).map_or(-1, |m| *m as i8) {
            2 if length >= (BATCH_HEADER_LEN - 12) as i32 => {
                batches.push(decode_one_batch(whole, start, limits)?)
            }
            2 => return Err(invalid("batch length", start + 8)),
            0 | 1 => batches.push(decode_legacy_batch(whole, limits)?),
            magic => return Err(KafkaDecodeError::UnsupportedMagic { magic }),
        }
    }
    Ok(batches)
}

fn decode_one_batch(
    b: Bytes,
    at: usize,
    limits: &RecordLimits,
) -> Result<RecordBatch, KafkaDecodeError> {
    let mut r = Reader::new(b.clone(), 0, false);
    let mut batch = RecordBatch {
        magic: 2,
        ..Default::default()
    };
    use super::wire::Io;
    r.i64(&mut batch.base_offset)?;
    let mut _length = 0i32;
    r.i32(&mut _length)?;
    r.i32(&mut batch.partition_leader_epoch)?;
    let mut _magic = 0i8;
    r.i8(&mut _magic)?;
    let mut crc = 0i32;
    r.i32(&mut crc)?;
    let stored = crc as u32;
    let computed = crc32c::crc32c(b.get(CRC_START..).unwrap_or_default());
    if stored != computed {
        return Err(KafkaDecodeError::CrcMismatch { stored, computed });
    }
    r.i16(&mut batch.attributes)?;
    r.i32(&mut batch.last_offset_delta)?;
    r.i64(&mut batch.base_timestamp)?;
    r.i64(&mut batch.max_timestamp)?;
    r.i64(&mut batch.producer_id)?;
    r.i16(&mut batch.producer_epoch)?;
    r.i32(&mut batch.base_sequence)?;
    let mut count = 0i32;
    r.i32(&mut count)?;
    if count < 0 {
        return Err(invalid("record count", at + 57));
    }
    let compression = Compression::from_attributes(batch.attributes)?;
    let rest = r.take(r.remaining(), "records")?;
    let records = match compression {
        Compression::None => rest,
        c => decompress(c, &rest, limits.max_uncompressed_bytes)?,
    };
    let mut rr = Reader::new(records, 0, false);
    // A record takes at least 7 bytes: no count beyond that sizes an allocation.
    let count = count as usize;
    if count > rr.remaining() {
        return Err(invalid("record count", at + 57));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(decode_record(&mut rr, &batch)?);
    }
    rr.finish()?;
    batch.records = out;
    Ok(batch)
}

/// Smallest legacy message after offset and size: crc, magic, attributes, key and value
/// lengths.
const LEGACY_MIN_LEN: usize = 4 + 1 + 1 + 4 + 4;

/// A legacy (magic 0 or 1) message with its offset and size, as a batch of its records.
fn decode_legacy_batch(b: Bytes, limits: &RecordLimits) -> Result<RecordBatch, KafkaDecodeError> {
    let mut records = Vec::new();
    let (magic, attributes, timestamp, offset) = decode_legacy(b, limits, 0, &mut records)?;
    Ok(RecordBatch {
        magic,
        base_offset: offset,
        attributes: i16::from(attributes),
        last_offset_delta: records.len().saturating_sub(1) as i32,
        base_timestamp: timestamp,
        max_timestamp: timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records,
        ..Default::default()
    })
}

/// Decodes one legacy message (offset, size, crc, magic, attributes, [timestamp], key, value)
/// into `out`, unpacking a compressed wrapper's inner messages (one level deep).
fn decode_legacy(
    b: Bytes,
    limits: &RecordLimits,
    depth: u8,
    out: &mut Vec<Record>,
) -> Result<(i8, i8, i64, i64), KafkaDecodeError> {
    use super::wire::Io;
    let mut r = Reader::new(b.clone(), 0, false);
    let (mut offset, mut size, mut crc, mut magic, mut attributes) = (0i64, 0i32, 0i32, 0i8, 0i8);
    r.i64(&mut offset)?;
    r.i32(&mut size)?;
    r.i32(&mut crc)?;
    let computed = crc32fast::hash(b.get(16..).unwrap_or_default());
    if crc as u32 != computed {
        return Err(KafkaDecodeError::CrcMismatch {
            stored: crc as u32,
            computed,
        });
    }
    r.i8(&mut magic)?;
    r.i8(&mut attributes)?;
    let mut timestamp = -1i64;
    if magic == 1 {
        r.i64(&mut timestamp)?;
    }
    let (mut key, mut value) = (None, None);
    r.nbytes(&mut key)?;
    r.nbytes(&mut value)?;
    r.finish()?;
    let compression = match attributes & 7 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        n => return Err(KafkaDecodeError::UnknownCompression(n as u8)),
    };
    if compression == Compression::None {
        out.push(Record {
            offset,
            timestamp,
            key,
            value,
            headers: Vec::new(),
        });
        return Ok((magic, attributes, timestamp, offset));
    }
    if depth > 0 {
        return Err(invalid("nested compressed message", 16));
    }
    let inner = decompress(
        compression,
        value.as_deref().unwrap_or_default(),
        limits.max_uncompressed_bytes,
    )?;
    let log_append_time = attributes & 0x08 != 0;
    let mut ir = Reader::new(inner, 0, false);
    while ir.remaining() > 0 {
        let head = ir.take(12, "inner message offset and size")?;
        let len = be_i32(head.get(8..12)).unwrap_or(-1);
        if len < LEGACY_MIN_LEN as i32 {
            return Err(invalid("inner message size", 8));
        }
        let body = ir.take(len as usize, "inner message")?;
        let mut whole = BytesMut::with_capacity(12 + body.len());
        whole.put_slice(&head);
        whole.put_slice(&body);
        let before = out.len();
        decode_legacy(whole.freeze(), limits, depth + 1, out)?;
        if log_append_time {
            for rec in out.iter_mut().skip(before) {
                rec.timestamp = timestamp;
            }
        }
    }
    Ok((magic, attributes, timestamp, offset))
}

/// Encodes `records` as a legacy message set (magic 1, uncompressed, no headers: the format
/// has none), for Fetch versions below 4. Appends to `out`.
pub fn encode_legacy_message_set(records: &[Record], out: &mut BytesMut) {
    for r in records {
        let start = out.len();
        out.put_i64(r.offset);
        out.put_i32(0);
        let crc_at = out.len();
        out.put_u32(0);
        out.put_i8(1);
        out.put_i8(0);
        out.put_i64(r.timestamp);
        for field in [&r.key, &r.value] {
            match field {
                Some(b) => {
                    out.put_i32(b.len() as i32);
                    out.put_slice(b);
                }
                None => out.put_i32(-1),
            }
        }
        let size = (out.len() - start - 12) as i32;
        if let Some(slot) = out.get_mut(start + 8..start + 12) {
            slot.copy_from_slice(&size.to_be_bytes());
        }
        let crc = crc32fast::hash(out.get(crc_at + 4..).unwrap_or_default());
        if let Some(slot) = out.get_mut(crc_at..crc_at + 4) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
    }
}

fn varint_bytes(r: &mut Reader, what: &'static str) -> Result<Option<Bytes>, KafkaDecodeError> {
    let at = r.position();
    match r.varint(what)? {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(r.take(n as usize, what)?)),
        _ => Err(invalid(what, at)),
    }
}

fn decode_record(r: &mut Reader, batch: &RecordBatch) -> Result<Record, KafkaDecodeError> {
    let at = r.position();
    let len = r.varint("record length")?;
    if len < 0 {
        return Err(invalid("record length", at));
    }
    let body = r.take(len as usize, "record")?;
    let mut b = Reader::new(body, 0, false);
    let mut attributes = 0i8;
    super::wire::Io::i8(&mut b, &mut attributes)?;
    let ts_delta = b.varlong("timestamp delta")?;
    let offset_delta = b.varint("offset delta")?;
    let key = varint_bytes(&mut b, "record key")?;
    let value = varint_bytes(&mut b, "record value")?;
    let hat = b.position();
    let header_count = b.varint("header count")?;
    if header_count < 0 || header_count as usize > b.remaining() {
        return Err(invalid("header count", hat));
    }
    let mut headers = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let kat = b.position();
        let key = varint_bytes(&mut b, "header key")?.ok_or(invalid("null header key", kat))?;
        let key = String::from_utf8(key.to_vec())
            .map_err(|_| KafkaDecodeError::InvalidUtf8 { offset: kat })?;
        let value = varint_bytes(&mut b, "header value")?;
        headers.push(RecordHeader { key, value });
    }
    b.finish()?;
    Ok(Record {
        offset: batch.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: batch.base_timestamp.wrapping_add(ts_delta),
        key,
        value,
        headers,
    })
}

fn too_big(codec: &'static str, max: usize) -> KafkaDecodeError {
    KafkaDecodeError::Decompression {
        codec,
        reason: format!("more than {max} bytes uncompressed"),
    }
}

fn read_bounded(
    mut reader: impl Read,
    codec: &'static str,
    max: usize,
) -> Result<Bytes, KafkaDecodeError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    (&mut reader)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| KafkaDecodeError::Decompression {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > max {
        return Err(too_big(codec, max));
    }
    Ok(Bytes::from(out))
}

/// The xerial snappy-java stream header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

fn snappy_block(block: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), KafkaDecodeError> {
    let err = |e: snap::Error| KafkaDecodeError::Decompression {
        codec: "snappy",
        reason: e.to_string(),
    };
    let n = snap::raw::decompress_len(block).map_err(err)?;
    if out.len().saturating_add(n) > max {
        return Err(too_big("snappy", max));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    snap::raw::Decoder::new()
        .decompress(block, dst)
        .map_err(err)?;
    Ok(())
}

fn decompress(c: Compression, data: &[u8], max: usize) -> Result<Bytes, KafkaDecodeError> {
    match c {
        Compression::None => Ok(Bytes::copy_from_slice(data)),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(data), "gzip", max),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), "lz4", max),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(data).map_err(|e| {
                KafkaDecodeError::Decompression {
                    codec: "zstd",
                    reason: e.to_string(),
                }
            })?;
            read_bounded(d, "zstd", max)
        }
        Compression::Snappy => {
            let mut out = Vec::new();
            if data.starts_with(XERIAL_MAGIC) {
                // magic (8), version (4), compatible version (4), then [len u32 BE, block]*.
                let mut rest = data.get(16..).unwrap_or_default();
                while !rest.is_empty() {
                    let (len, tail) = rest.split_at_checked(4).ok_or(too_short_snappy())?;
                    let len = be_i32(Some(len)).unwrap_or(0) as u32 as usize;
                    let (block, tail) = tail.split_at_checked(len).ok_or(too_short_snappy())?;
                    snappy_block(block, max, &mut out)?;
                    rest = tail;
                }
            } else {
                snappy_block(data, max, &mut out)?;
            }
            Ok(Bytes::from(out))
        }
    }
    .map_err(|e| match e {
        KafkaDecodeError::Decompression { .. } => e,
        other => KafkaDecodeError::Decompression {
            codec: c.name(),
            reason: other.to_string(),
        },
    })
}

fn too_short_snappy() -> KafkaDecodeError {
    KafkaDecodeError::Decompression {
        codec: "snappy",
        reason: "truncated xerial block".to_string(),
    }
}

/// Compresses an encoded record section (used by tests and by anyone writing compressed
/// batches); `Compression::None` copies.
pub fn compress(c: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data)?;
            e.finish()
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(std::io::Error::other),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data)?;
            e.finish().map_err(std::io::Error::other)
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3),
    }
}

fn put_varint_bytes(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.put_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// Encodes `records` (absolute offsets and timestamps, offsets ascending from the first) as one
/// batch with `compression`, appending it to `out`. Offsets and timestamps become deltas from
/// the first record.
pub fn encode_record_batch(
    records: &[Record],
    compression: Compression,
    out: &mut BytesMut,
) -> std::io::Result<()> {
    let Some(first) = records.first() else {
        return Ok(());
    };
    let base_offset = first.offset;
    let base_timestamp = first.timestamp;
    let mut body = BytesMut::new();
    let mut rec = BytesMut::new();
    let mut max_timestamp = base_timestamp;
    let mut last_delta = 0i32;
    for r in records {
        rec.clear();
        rec.put_i8(0);
        put_varlong(&mut rec, r.timestamp.wrapping_sub(base_timestamp));
        let delta = r.offset.wrapping_sub(base_offset) as i32;
        last_delta = delta;
        put_varint(&mut rec, delta);
        put_varint_bytes(&mut rec, r.key.as_deref());
        put_varint_bytes(&mut rec, r.value.as_deref());
        put_varint(&mut rec, r.headers.len() as i32);
        for h in &r.headers {
            put_varint_bytes(&mut rec, Some(h.key.as_bytes()));
            put_varint_bytes(&mut rec, h.value.as_deref());
        }
        put_varint(&mut body, rec.len() as i32);
        body.put_slice(&rec);
        max_timestamp = max_timestamp.max(r.timestamp);
    }
    let payload = compress(compression, &body)?;
    let start = out.len();
    out.put_i64(base_offset);
    out.put_i32((BATCH_HEADER_LEN - 12 + payload.len()) as i32);
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2);
    let crc_at = out.len();
    out.put_u32(0);
    out.put_i16(compression.attribute_bits());
    out.put_i32(last_delta);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(records.len() as i32);
    out.put_slice(&payload);
    let crc = crc32c::crc32c(out.get(crc_at + 4..).unwrap_or_default());
    if let Some(slot) = out.get_mut(crc_at..crc_at + 4) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    debug_assert_eq!(out.len() - start, BATCH_HEADER_LEN + payload.len());
    Ok(())
}
