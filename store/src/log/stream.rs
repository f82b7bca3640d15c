//! Streams: a name, a configuration file and N partition directories.
//!
//! `streams/<name>/stream.meta` (little-endian, replaced atomically):
//!
//! ```text
//! magic "GWSTREAM", version u16 = 1, partitions u32, flags u8 (bit 0: retention_ms set,
//! bit 1: retention_bytes set), retention_ms u64, retention_bytes u64, crc32c u32 of the rest
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::RwLock;

use super::error::{IoContext, LogError};
use super::fsutil::write_atomic;
use super::partition::{read, write, Partition};
use super::StreamConfig;

const META_MAGIC: &[u8; 8] = b"GWSTREAM";
const META_VERSION: u16 = 1;
const META_LEN: usize = 8 + 2 + 4 + 1 + 8 + 8 + 4;
/// File name of the stream configuration.
pub(crate) const META_FILE: &str = "stream.meta";

/// Checks a stream name: 1-249 characters of `[A-Za-z0-9._-]`, not `.` or `..` (Kafka's
/// topic name rule, so every stream can become a Kafka topic).
pub(crate) fn validate_name(name: &str) -> Result<(), LogError> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidStreamName(name.to_string()))
    }
}

pub(crate) fn encode_meta(cfg: &StreamConfig) -> Vec<u8> {
    let mut b = Vec::with_capacity(META_LEN);
    b.extend_from_slice(META_MAGIC);
    b.extend_from_slice(&META_VERSION.to_le_bytes());
    b.extend_from_slice(&cfg.partitions.to_le_bytes());
    let flags =
        u8::from(cfg.retention_ms.is_some()) | (u8::from(cfg.retention_bytes.is_some()) << 1);
    b.push(flags);
    b.extend_from_slice(&cfg.retention_ms.unwrap_or(0).to_le_bytes());
    b.extend_from_slice(&cfg.retention_bytes.unwrap_or(0).to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

pub(crate) fn decode_meta(path: &Path, b: &[u8]) -> Result<StreamConfig, LogError> {
    let corrupt = |reason: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        position: 0,
        reason: reason.to_string(),
    };
    if b.len() != META_LEN {
        return Err(corrupt("stream.meta has the wrong length"));
    }
    let (body, crc) = b.split_at(META_LEN - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(corrupt("stream.meta checksum mismatch"));
    }
    if &body[..8] != META_MAGIC {
        return Err(corrupt("stream.meta magic mismatch"));
    }
    let version = u16::from_le_bytes([body[8], body[9]]);
    if version != META_VERSION {
        return Err(LogError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: format!("stream.meta version {version}"),
            expected: format!("stream.meta version {META_VERSION}"),
        });
    }
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let partitions = u32::from_le_bytes([body[10], body[11], body[12], body[13]]);
    let flags = body[14];
    Ok(StreamConfig {
        partitions,
        retention_ms: (flags & 1 != 0).then(|| u64_at(15)),
        retention_bytes: (flags & 2 != 0).then(|| u64_at(23)),
    })
}

/// An open stream.
pub(crate) struct Stream {
    /// Directory `streams/<name>`.
    pub dir: PathBuf,
    /// Current configuration.
    pub config: RwLock<StreamConfig>,
    /// Partitions, indexed by number.
    pub partitions: Vec<Partition>,
    /// Round-robin counter for keyless records.
    pub next_rr: AtomicU32,
}

impl Stream {
    /// Next round-robin partition.
    pub fn round_robin(&self) -> u32 {
        let n = self.partitions.len() as u32;
        self.next_rr.fetch_add(1, Ordering::Relaxed) % n.max(1)
    }

    /// Configuration snapshot.
    pub fn config(&self) -> StreamConfig {
        read(&self.config).clone()
    }

    /// Replaces the retention settings (persisted atomically).
    pub fn set_config(&self, cfg: StreamConfig) -> Result<(), LogError> {
        let mut c = write(&self.config);
        if *c != cfg {
            let path = self.dir.join(META_FILE);
            write_atomic(&path, &encode_meta(&cfg))?;
            *c = cfg;
        }
        Ok(())
    }

    /// Reads the configuration of the stream in `dir`.
    pub fn read_meta(dir: &Path) -> Result<StreamConfig, LogError> {
        let path = dir.join(META_FILE);
        let b = std::fs::read(&path).ctx(&path)?;
        decode_meta(&path, &b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_detects_damage() {
        let cfg = StreamConfig {
            partitions: 12,
            retention_ms: Some(7),
            retention_bytes: None,
        };
        let b = encode_meta(&cfg);
        let p = Path::new("x");
        assert_eq!(decode_meta(p, &b).unwrap(), cfg);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            assert!(decode_meta(p, &d).is_err(), "byte {i}");
        }
    }

    #[test]
    fn names_follow_kafka_topic_rules() {
        for ok in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
