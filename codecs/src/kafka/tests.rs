#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

fn header(key: i16, version: i16) -> RequestHeader {
    RequestHeader {
        api_key: key,
        api_version: version,
        correlation_id: 7,
        client_id: Some("test".into()),
    }
}

/// One populated request of every API (fields a version lacks are left at their defaults, so a
/// round trip at any version compares equal once the version's absent fields are reset).
fn sample_requests() -> Vec<KafkaRequestBody> {
    vec![
        KafkaRequestBody::Produce(ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30000,
            topic_data: vec![ProduceTopicData {
                name: "orders".into(),
                partition_data: vec![ProducePartitionData {
                    index: 2,
                    records: Some(Bytes::from_static(b"\x00\x01")),
                }],
            }],
        }),
        KafkaRequestBody::Fetch(FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            topics: vec![FetchTopic {
                topic: "orders".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 42,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }),
        KafkaRequestBody::Metadata(MetadataRequest {
            topics: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        }),
        KafkaRequestBody::JoinGroup(JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10000,
            rebalance_timeout_ms: 10000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"meta"),
            }],
        }),
        KafkaRequestBody::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            topics: vec![OffsetCommitTopic {
                name: "orders".into(),
                partitions: vec![OffsetCommitPartition {
                    partition_index: 1,
                    committed_offset: 10,
                    committed_metadata: Some("meta".into()),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }),
        KafkaRequestBody::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "orders".into(),
                configuration_keys: None,
            }],
            ..Default::default()
        }),
        KafkaRequestBody::DeleteTopics(DeleteTopicsRequest {
            topic_names: vec!["x".into()],
            timeout_ms: 1000,
        }),
        KafkaRequestBody::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["g".into(), "h".into()],
            include_authorized_operations: false,
        }),
        KafkaRequestBody::ListGroups(ListGroupsRequest {
            states_filter: Vec::new(),
        }),
        KafkaRequestBody::SaslHandshake(SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-256".into(),
        }),
        KafkaRequestBody::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(b"n,,n=alice,r=nonce"),
        }),
    ]
}

fn key_of(body: &KafkaRequestBody) -> i16 {
    match body {
        KafkaRequestBody::Produce(_) => api_key::PRODUCE,
        KafkaRequestBody::Fetch(_) => api_key::FETCH,
        KafkaRequestBody::Metadata(_) => api_key::METADATA,
        KafkaRequestBody::JoinGroup(_) => api_key::JOIN_GROUP,
        KafkaRequestBody::OffsetCommit(_) => api_key::OFFSET_COMMIT,
        KafkaRequestBody::DescribeConfigs(_) => api_key::DESCRIBE_CONFIGS,
        KafkaRequestBody::DeleteTopics(_) => api_key::DELETE_TOPICS,
        KafkaRequestBody::DescribeGroups(_) => api_key::DESCRIBE_GROUPS,
        KafkaRequestBody::ListGroups(_) => api_key::LIST_GROUPS,
        KafkaRequestBody::SaslHandshake(_) => api_key::SASL_HANDSHAKE,
        KafkaRequestBody::SaslAuthenticate(_) => api_key::SASL_AUTHENTICATE,
        _ => unreachable!(),
    }
}

#[test]
fn requests_round_trip_at_every_supported_version() {
    for body in sample_requests() {
        let key = key_of(&body);
        let range = supported_range(key).unwrap();
        for version in range.min_version..=range.max_version {
            let req = KafkaRequest {
                header: header(key, version),
                body: body.clone(),
            };
            let mut wire = BytesMut::new();
            encode_request(&req, &mut wire);
            let frame = decode_frame(&mut wire, &KafkaLimits::default())
                .unwrap()
                .unwrap();
            assert!(wire.is_empty());
            let decoded = decode_request(frame.clone()).unwrap();
            assert_eq!(decoded.header, req.header, "key {key} v{version}");
            // Re-encoding what was decoded gives the same bytes.
            let mut again = BytesMut::new();
            encode_request(&decoded, &mut again);
            assert_eq!(&again[4..], &frame[..], "key {key} v{version}");
        }
    }
}

#[test]
fn every_truncation_of_a_request_is_an_error() {
    for body in sample_requests() {
        let key = key_of(&body);
        let version = supported_range(key).unwrap().max_version;
        let mut wire = BytesMut::new();
        encode_request(
            &KafkaRequest {
                header: header(key, version),
                body,
            },
            &mut wire,
        );
        let frame = wire.freeze().slice(4..);
        for cut in 0..frame.len() {
            assert!(
                decode_request(frame.slice(..cut)).is_err(),
                "key {key} cut at {cut}"
            );
        }
    }
}

#[test]
fn frame_size_is_checked_before_buffering() {
    let limits = KafkaLimits {
        max_frame_bytes: 100,
    };
    let mut buf = BytesMut::from(&[0u8, 0, 0, 101][..]);
    assert_eq!(
        decode_frame(&mut buf, &limits),
        Err(KafkaDecodeError::FrameTooLarge {
            size: 101,
            max: 100
        })
    );
    let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
    assert_eq!(
        decode_frame(&mut buf, &limits),
        Err(KafkaDecodeError::NegativeSize(-1))
    );
    let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
    assert_eq!(decode_frame(&mut buf, &limits), Ok(None));
    assert_eq!(buf.len(), 6, "nothing consumed");
}

#[test]
fn huge_array_count_is_rejected_without_allocating() {
    // DeleteTopics v0 with an array count of 2^31-1 and nothing after it.
    let mut frame = BytesMut::new();
    frame.put_i16(api_key::DELETE_TOPICS);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(-1);
    frame.put_i32(i32::MAX);
    assert!(matches!(
        decode_request(frame.freeze()),
        Err(KafkaDecodeError::UnexpectedEof { .. })
    ));
}

#[test]
fn unknown_keys_and_versions_are_errors_but_api_versions_is_answerable() {
    let mut frame = BytesMut::new();
    frame.put_i16(99);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(-1);
    assert_eq!(
        decode_request(frame.freeze()),
        Err(KafkaDecodeError::UnknownApiKey {
            api_key: 99,
            api_version: 0
        })
    );
    let mut frame = BytesMut::new();
    frame.put_i16(api_key::FETCH);
    frame.put_i16(99);
    frame.put_i32(1);
    frame.put_i16(-1);
    assert_eq!(
        decode_request(frame.freeze()),
        Err(KafkaDecodeError::UnsupportedVersion {
            api_key: 1,
            api_version: 99
        })
    );
    // ApiVersions v4 (newer than implemented) with a body we do not parse.
    let mut frame = BytesMut::new();
    frame.put_i16(api_key::API_VERSIONS);
    frame.put_i16(4);
    frame.put_i32(5);
    frame.put_i16(-1);
    frame.put_slice(&[0, 0x42, 0x42]);
    let req = decode_request(frame.freeze()).unwrap();
    assert!(req.version_unsupported());
    assert_eq!(req.header.correlation_id, 5);
}

#[test]
fn api_versions_response_always_has_header_v0() {
    let resp = KafkaResponse {
        correlation_id: 9,
        api_version: 3,
        body: KafkaResponseBody::ApiVersions(ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![ApiVersionRange {
                api_key: 0,
                min_version: 3,
                max_version: 8,
            }],
            throttle_time_ms: 0,
        }),
    };
    let mut out = BytesMut::new();
    encode_response(&resp, &mut out);
    // size, correlation id, then directly the body: error code, compact array of 1 (= 2),
    // key, min, max, tags, throttle, tags.
    let expected: &[u8] = &[
        0, 0, 0, 19, 0, 0, 0, 9, 0, 0, 2, 0, 0, 0, 3, 0, 8, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(&out[..], expected);
    let back = decode_response(out.freeze().slice(4..), api_key::API_VERSIONS, 3).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn flexible_responses_have_header_v1_and_round_trip() {
    let resp = KafkaResponse {
        correlation_id: 3,
        api_version: 9,
        body: KafkaResponseBody::Metadata(MetadataResponse {
            brokers: vec![MetadataBroker {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
            }],
            cluster_id: Some("c".into()),
            topics: vec![MetadataTopic {
                name: "t".into(),
                partitions: vec![MetadataPartition {
                    replica_nodes: vec![0],
                    isr_nodes: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    let mut out = BytesMut::new();
    encode_response(&resp, &mut out);
    assert_eq!(out[8], 0, "response header v1 has an empty tag section");
    let back = decode_response(out.freeze().slice(4..), api_key::METADATA, 9).unwrap();
    assert_eq!(back, resp);
}

fn sample_records() -> Vec<Record> {
    (0..5)
        .map(|i| Record {
            offset: 100 + i,
            timestamp: 1_700_000_000_000 + i * 10,
            key: (i % 2 == 0).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value {i} ✓"))),
            headers: vec![RecordHeader {
                key: "h".into(),
                value: (i != 3).then(|| Bytes::from_static(b"v")),
            }],
        })
        .collect()
}

#[test]
fn record_batches_round_trip_with_every_compression() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let records = sample_records();
        let mut out = BytesMut::new();
        encode_record_batch(&records, c, &mut out).unwrap();
        encode_record_batch(&records[..1], c, &mut out).unwrap();
        let batches = decode_record_batches(&out.freeze(), &RecordLimits::default()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].records, records, "{c:?}");
        assert_eq!(batches[0].last_offset_delta, 4);
        assert_eq!(batches[1].records, records[..1].to_vec());
        assert_eq!(
            Compression::from_attributes(batches[0].attributes).unwrap(),
            c
        );
    }
}

#[test]
fn damaged_batches_are_rejected() {
    let mut out = BytesMut::new();
    encode_record_batch(&sample_records(), Compression::None, &mut out).unwrap();
    let good = out.freeze();
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        decode_record_batches(&Bytes::from(bad), &RecordLimits::default()),
        Err(KafkaDecodeError::CrcMismatch { .. })
    ));
    let mut old = good.to_vec();
    old[16] = 3;
    assert_eq!(
        decode_record_batches(&Bytes::from(old), &RecordLimits::default()),
        Err(KafkaDecodeError::UnsupportedMagic { magic: 3 })
    );
    for cut in 1..good.len() {
        assert!(decode_record_batches(&good.slice(..cut), &RecordLimits::default()).is_err());
    }
}

#[test]
fn decompression_is_bounded() {
    let records = vec![Record {
        offset: 0,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(vec![b'x'; 100_000])),
        headers: vec![],
    }];
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut out = BytesMut::new();
        encode_record_batch(&records, c, &mut out).unwrap();
        let small = RecordLimits {
            max_uncompressed_bytes: 10_000,
        };
        assert!(
            matches!(
                decode_record_batches(&out.freeze(), &small),
                Err(KafkaDecodeError::Decompression { .. })
            ),
            "{c:?}"
        );
    }
}

#[test]
fn xerial_framed_snappy_is_accepted() {
    let records = sample_records();
    let mut plain = BytesMut::new();
    encode_record_batch(&records, Compression::None, &mut plain).unwrap();
    let section = &plain[BATCH_HEADER_LEN..];
    let block = compress(Compression::Snappy, section).unwrap();
    let mut xerial = Vec::new();
    xerial.extend_from_slice(&[
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ]);
    xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
    xerial.extend_from_slice(&block);
    // Rebuild the batch around the xerial payload.
    let mut batch = BytesMut::new();
    batch.put_slice(&plain[..BATCH_HEADER_LEN]);
    batch.put_slice(&xerial);
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    batch[21..23].copy_from_slice(&Compression::Snappy.attribute_bits().to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let decoded = decode_record_batches(&batch.freeze(), &RecordLimits::default()).unwrap();
    assert_eq!(decoded[0].records, records);
}

#[test]
fn legacy_message_sets_decode_plain_and_compressed() {
    let records: Vec<Record> = sample_records()
        .into_iter()
        .map(|mut r| {
            r.headers.clear();
            r
        })
        .collect();
    let mut plain = BytesMut::new();
    encode_legacy_message_set(&records, &mut plain);
    let batches = decode_record_batches(&plain.clone().freeze(), &RecordLimits::default()).unwrap();
    assert_eq!(batches.len(), records.len());
    assert!(batches.iter().all(|b| b.magic == 1));
    let flat: Vec<Record> = batches.into_iter().flat_map(|b| b.records).collect();
    assert_eq!(flat, records);

    // A gzip wrapper message (magic 1) whose value is the inner message set.
    let inner = compress(Compression::Gzip, &plain).unwrap();
    let mut wrapper = BytesMut::new();
    wrapper.put_i64(104);
    wrapper.put_i32(0);
    wrapper.put_u32(0);
    wrapper.put_i8(1);
    wrapper.put_i8(1);
    wrapper.put_i64(1_700_000_000_000);
    wrapper.put_i32(-1);
    wrapper.put_i32(inner.len() as i32);
    wrapper.put_slice(&inner);
    let size = (wrapper.len() - 12) as i32;
    wrapper[8..12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&wrapper[16..]);
    wrapper[12..16].copy_from_slice(&crc.to_be_bytes());
    let batches =
        decode_record_batches(&wrapper.clone().freeze(), &RecordLimits::default()).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].records, records);
    assert_eq!(
        Compression::from_attributes(batches[0].attributes).unwrap(),
        Compression::Gzip
    );
    // A damaged CRC is refused.
    let last = wrapper.len() - 1;
    wrapper[last] ^= 1;
    assert!(matches!(
        decode_record_batches(&wrapper.freeze(), &RecordLimits::default()),
        Err(KafkaDecodeError::CrcMismatch { .. }) | Err(KafkaDecodeError::Decompression { .. })
    ));
}

#[test]
fn sasl_responses_round_trip_at_every_version() {
    for version in 0..=1 {
        let resp = KafkaResponse {
            correlation_id: 5,
            api_version: version,
            body: KafkaResponseBody::SaslHandshake(SaslHandshakeResponse {
                error_code: error_code::UNSUPPORTED_SASL_MECHANISM,
                mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
            }),
        };
        let mut out = BytesMut::new();
        encode_response(&resp, &mut out);
        let back = decode_response(out.freeze().slice(4..), api_key::SASL_HANDSHAKE, version);
        assert_eq!(back.unwrap(), resp);
    }
    for version in 0..=2 {
        let resp = KafkaResponse {
            correlation_id: 6,
            api_version: version,
            body: KafkaResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                error_code: error_code::SASL_AUTHENTICATION_FAILED,
                error_message: Some("Authentication failed".into()),
                auth_bytes: Bytes::from_static(b"v=sig"),
                session_lifetime_ms: if version >= 1 { 3_600_000 } else { 0 },
            }),
        };
        let mut out = BytesMut::new();
        encode_response(&resp, &mut out);
        // v2 is flexible: response header v1 (an empty tag section after the correlation id).
        if version == 2 {
            assert_eq!(out[8], 0);
        }
        let back = decode_response(out.freeze().slice(4..), api_key::SASL_AUTHENTICATE, version);
        assert_eq!(back.unwrap(), resp);
    }
}

#[test]
fn bare_sasl_tokens_are_size_prefixed() {
    let mut out = BytesMut::new();
    encode_sasl_token(b"r=abc,s=c2FsdA==,i=4096", &mut out);
    assert_eq!(&out[..4], &23i32.to_be_bytes());
    assert_eq!(&out[4..], b"r=abc,s=c2FsdA==,i=4096");
    let mut empty = BytesMut::new();
    encode_sasl_token(b"", &mut empty);
    assert_eq!(&empty[..], &[0, 0, 0, 0]);
}
