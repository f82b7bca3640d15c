//! Golden bytes: Kafka request frames captured from kcat 1.7.1 (librdkafka 2.0.2) and
//! kafka-python 3.0.12 by `testdata/kafka/capture.py` (a recording proxy in front of the
//! gateway). Every file decodes, re-encodes byte for byte, and fails to decode when cut short;
//! the fields the capture script made the clients send are checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use codecs::kafka::{
    decode_record_batches, decode_request, encode_request, Compression, KafkaRequest,
    KafkaRequestBody, RecordLimits,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kafka")
}

fn frames() -> Vec<(String, Bytes)> {
    let mut out: Vec<(String, Bytes)> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                Bytes::from(std::fs::read(&p).unwrap()),
            )
        })
        .collect();
    out.sort();
    out
}

fn decode(name: &str) -> KafkaRequest {
    let bytes = Bytes::from(std::fs::read(dir().join(name)).unwrap());
    decode_request(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_capture_decodes_and_re_encodes_byte_for_byte() {
    let all = frames();
    assert!(all.len() >= 30, "captures missing: {}", all.len());
    for (name, frame) in all {
        let request = decode_request(frame.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let version = name
            .rsplit_once("_v")
            .and_then(|(_, v)| v.strip_suffix(".bin"))
            .unwrap()
            .parse::<i16>()
            .unwrap();
        assert_eq!(request.header.api_version, version, "{name}");
        if request.version_unsupported() {
            // ApiVersions newer than implemented: answered from the header alone.
            continue;
        }
        let mut out = BytesMut::new();
        encode_request(&request, &mut out);
        assert_eq!(&out[4..], &frame[..], "{name} re-encodes byte for byte");
        for cut in 0..frame.len() {
            assert!(
                decode_request(frame.slice(..cut)).is_err(),
                "{name} cut at {cut} must not decode"
            );
        }
    }
}

#[test]
fn kcat_produce_batches_with_every_codec() {
    for (codec, compression) in [
        ("", Compression::None),
        ("+gzip", Compression::Gzip),
        ("+snappy", Compression::Snappy),
        ("+lz4", Compression::Lz4),
        ("+zstd", Compression::Zstd),
    ] {
        let name = format!("kcat-1.7.1{codec}_produce_v7.bin");
        let KafkaRequestBody::Produce(p) = decode(&name).body else {
            panic!("{name}: not a Produce");
        };
        assert_eq!(p.acks, -1, "{name}: librdkafka 2.0 defaults to acks=all");
        let data = p.topic_data[0].partition_data[0].records.clone().unwrap();
        let batches = decode_record_batches(&data, &RecordLimits::default()).unwrap();
        let records: Vec<_> = batches.iter().flat_map(|b| b.records.clone()).collect();
        for b in &batches {
            assert_eq!(
                Compression::from_attributes(b.attributes).unwrap(),
                compression
            );
        }
        assert!(!records.is_empty(), "{name}");
        for r in &records {
            let key = r.key.clone().unwrap();
            let value = r.value.clone().unwrap();
            match &key[..] {
                b"key-1" => assert_eq!(value, "value one ".repeat(30)),
                b"key-2" => assert_eq!(value, "value two ".repeat(30)),
                other => panic!("{name}: unexpected key {other:?}"),
            }
            assert_eq!(r.headers.len(), 1);
            assert_eq!(r.headers[0].key, "h");
            assert_eq!(r.headers[0].value.as_deref(), Some(&b"v"[..]));
        }
    }
}

#[test]
fn kafka_python_produce_is_an_idempotent_gzip_batch() {
    let KafkaRequestBody::Produce(p) = decode("kafka-python-3.0.12_produce_v8.bin").body else {
        panic!("not a Produce");
    };
    let data = p.topic_data[0].partition_data[0].records.clone().unwrap();
    let batches = decode_record_batches(&data, &RecordLimits::default()).unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(
        Compression::from_attributes(b.attributes).unwrap(),
        Compression::Gzip
    );
    assert!(
        b.producer_id >= 0,
        "idempotent producer id from InitProducerId"
    );
    assert_eq!(b.base_sequence, 0);
    let r = &b.records[0];
    assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(r.value.clone().unwrap(), "v".repeat(300));
    assert_eq!(r.timestamp, 1_700_000_000_000);
    assert_eq!(r.headers[0].key, "h");
}

#[test]
fn group_requests_carry_what_the_clients_sent() {
    let KafkaRequestBody::JoinGroup(j) = decode("kcat-1.7.1_join-group_v5.bin").body else {
        panic!("not a JoinGroup");
    };
    assert_eq!(j.group_id, "golden");
    assert_eq!(j.member_id, "", "first join: no member id yet");
    assert_eq!(j.protocol_type, "consumer");
    assert!(!j.protocols.is_empty());

    let KafkaRequestBody::OffsetCommit(c) = decode("kafka-python-3.0.12_offset-commit_v8.bin").body
    else {
        panic!("not an OffsetCommit");
    };
    assert_eq!(c.group_id, "golden-py-group");
    let p = &c.topics[0].partitions[0];
    assert_eq!(p.committed_offset, 1);
    assert_eq!(p.committed_metadata.as_deref(), Some("meta"));

    let r = decode("kafka-python-3.0.12_api-versions_v4.bin");
    assert!(
        r.version_unsupported(),
        "v4 is answered with UNSUPPORTED_VERSION"
    );
    let KafkaRequestBody::ApiVersions(a) = decode("kafka-python-3.0.12_api-versions_v3.bin").body
    else {
        panic!("not ApiVersions");
    };
    assert_eq!(a.client_software_name, "kafka-python");
}

/// Every single-byte corruption of every capture either fails to decode or decodes to a request
/// that re-encodes and decodes back equal; record batches inside never panic either. (A cheap,
/// deterministic complement to the `kafka_decode` fuzz target.)
#[test]
fn corrupted_captures_never_panic_and_round_trip_when_accepted() {
    for (name, frame) in frames() {
        for i in 0..frame.len() {
            for flip in [0xffu8, 0x80, 0x01] {
                let mut bad = frame.to_vec();
                bad[i] ^= flip;
                let bad = Bytes::from(bad);
                if let Ok(request) = decode_request(bad.clone()) {
                    let mut out = BytesMut::new();
                    encode_request(&request, &mut out);
                    let again = decode_request(out.freeze().slice(4..))
                        .unwrap_or_else(|e| panic!("{name} byte {i}: re-encoded fails: {e}"));
                    assert_eq!(again, request, "{name} byte {i}");
                    if let KafkaRequestBody::Produce(p) = &request.body {
                        for t in &p.topic_data {
                            for part in &t.partition_data {
                                if let Some(records) = &part.records {
                                    let _ =
                                        decode_record_batches(records, &RecordLimits::default());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn sasl_frames_carry_the_mechanism_and_the_first_token() {
    // Captured by testdata/kafka/capture_sasl.py (guest/guest on the loopback default).
    for client in ["kcat-1.7.1", "kafka-python-3.0.12"] {
        for (tag, mechanism, first_token) in [
            ("plain", "PLAIN", &b"\0guest\0guest"[..]),
            ("scram", "SCRAM-SHA-256", &b"n,,n=guest,r="[..]),
        ] {
            let handshake = format!("{client}+sasl-{tag}_sasl-handshake_v1.bin");
            let KafkaRequestBody::SaslHandshake(h) = decode(&handshake).body else {
                panic!("{handshake}: not a SaslHandshake");
            };
            assert_eq!(h.mechanism, mechanism, "{handshake}");
            // librdkafka 2.0 sends SaslAuthenticate v0, kafka-python v2 (flexible).
            let version = if client.starts_with("kcat") { 0 } else { 2 };
            let auth = format!("{client}+sasl-{tag}_sasl-authenticate_v{version}.bin");
            let KafkaRequestBody::SaslAuthenticate(a) = decode(&auth).body else {
                panic!("{auth}: not a SaslAuthenticate");
            };
            // PLAIN: `[authzid] NUL user NUL password` (kafka-python repeats the user as
            // authzid); SCRAM: the client-first message.
            let found = if tag == "plain" {
                a.auth_bytes.ends_with(first_token)
            } else {
                a.auth_bytes.starts_with(first_token)
            };
            assert!(found, "{auth}: {:?}", a.auth_bytes);
        }
    }
}
