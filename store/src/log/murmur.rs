//! Kafka's default partitioner: `toPositive(murmur2(key)) % numPartitions`.
//!
//! This is the 32-bit MurmurHash2 variant of the Java client's
//! `org.apache.kafka.common.utils.Utils.murmur2` (seed `0x9747b28c`, little-endian 4-byte
//! blocks), so a key keeps its partition number when streams move to a real Kafka cluster with
//! the same partition count.

/// The seed the Java client uses.
const SEED: u32 = 0x9747_b28c;
/// MurmurHash2's mixing constant.
const M: u32 = 0x5bd1_e995;
/// MurmurHash2's shift.
const R: u32 = 24;

/// MurmurHash2 of `data`, bit for bit the value of the Java client's `Utils.murmur2(data)`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java computes `seed ^ length` on an int; lengths beyond i32 cannot occur there.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        if let Some(&b) = tail.get(2) {
            h ^= u32::from(b) << 16;
        }
        if let Some(&b) = tail.get(1) {
            h ^= u32::from(b) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`:
/// `(murmur2(key) & 0x7fffffff) % partitions`, as the Java client's `Utils.toPositive`.
///
/// Returns 0 when `partitions` is 0 (a stream always has at least one partition).
pub fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    ((murmur2(key) as u32) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Apache Kafka's own client test,
    /// `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`, `testMurmur2`.
    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key),
                *want,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// Vectors from librdkafka's `unittest_murmur2` in `src/rdmurmur2.c`, which it checks
    /// against the Java client ("java_murmur2_results"), including every tail length and the
    /// empty key.
    #[test]
    fn murmur2_matches_librdkafka_vectors() {
        let unaligned: &[u8] = b"PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: &[(&[u8], u32)] = &[
            (b"kafka", 0xd067_cf64),
            (b"giberish123456789", 0x8f55_2b0c),
            (b"1234", 0x9fc9_7b14),
            (b"234", 0xe7c0_09ca),
            (b"34", 0x8739_30da),
            (b"4", 0x5a4b_5ca1),
            (unaligned, 0x7842_4f1c),
            (&unaligned[1..], 0x4a62_b377),
            (&unaligned[2..], 0xe0e4_e09e),
            (&unaligned[3..], 0x62b8_b43f),
            (b"", 0x106e_08d9),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as u32,
                *want,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partition_is_to_positive_modulo() {
        // murmur2("kafka") = 0xd067cf64 is negative; toPositive masks the sign bit.
        assert_eq!(kafka_partition(b"kafka", 7), 0x5067_cf64 % 7);
        assert_eq!(kafka_partition(b"21", 1), 0);
        // murmur2("abc") = 479470107 is already positive.
        assert_eq!(kafka_partition(b"abc", 10), 479_470_107 % 10);
        assert_eq!(kafka_partition(b"abc", 0), 0);
    }
}
