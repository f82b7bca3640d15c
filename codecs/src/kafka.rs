//! The Kafka wire protocol: size-prefixed request and response frames for the APIs a
//! single-node broker needs, and record batches (message format v2).
//!
//! Sans-IO: [`decode_frame`] takes one size-prefixed frame from the front of a buffer
//! (`Ok(None)` = need more bytes, nothing consumed) after checking the announced size against
//! [`KafkaLimits::max_frame_bytes`] *before* buffering it; [`decode_request`] parses a frame
//! into a [`KafkaRequest`] (header and body); [`encode_response`] writes a size-prefixed
//! response. [`KafkaCodec`] adapts both to `tokio_util::codec`. Record batches inside Produce
//! requests are decoded separately with [`decode_record_batches`] (so that one bad batch fails
//! one partition, not the connection) and written with [`encode_record_batch`].
//!
//! # Versions
//!
//! [`SUPPORTED_APIS`] lists each API with the version range implemented; it is what an
//! ApiVersions response advertises. Versions at or above an API's first flexible version
//! ([`first_flexible_version`]) use request header v2 and response header v1 with compact
//! strings and arrays and tagged fields, except that ApiVersions responses always have header
//! v0 (a client cannot know the flexible format before it has the answer). A request for an
//! unknown API or an unimplemented version of a known one is an error that closes the
//! connection, as Kafka brokers do, except ApiVersions: its body is not parsed
//! ([`KafkaRequestBody::ApiVersions`] holds defaults) and the session answers
//! `UNSUPPORTED_VERSION` with a v0 body, so the client can retry with a version it supports.
//!
//! # SASL
//!
//! SaslHandshake (v0-1) and SaslAuthenticate (v0-2) are ordinary requests. After a
//! SaslHandshake **v0**, though, the SASL tokens travel as bare size-prefixed frames without a
//! request header: [`decode_frame`] returns them like any frame (the session knows not to parse
//! them as requests) and [`encode_sasl_token`] (or [`SaslToken`] through [`KafkaCodec`]) writes
//! the server's.
//!
//! # Wire rules enforced on decode
//!
//! Lengths must be non-negative (or -1 for null where the field is nullable), array counts
//! must not exceed the bytes left, strings must be UTF-8, varints at most 5 (10) bytes, tagged
//! fields in ascending order, and the body must fill its frame exactly. Record batches must
//! have magic 2, a correct CRC32C, a known compression codec and records filling the batch.

mod error;
mod messages;
mod records;
#[cfg(test)]
mod tests;
mod wire;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

pub use error::KafkaDecodeError;
pub use messages::*;
pub use records::{
    compress, decode_record_batches, encode_legacy_message_set, encode_record_batch, Compression,
    Record, RecordBatch, RecordHeader, RecordLimits, BATCH_HEADER_LEN,
};

use wire::{Io, Reader, Writer};

/// API keys of the implemented APIs.
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Fetch.
    pub const FETCH: i16 = 1;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// OffsetCommit.
    pub const OFFSET_COMMIT: i16 = 8;
    /// OffsetFetch.
    pub const OFFSET_FETCH: i16 = 9;
    /// FindCoordinator.
    pub const FIND_COORDINATOR: i16 = 10;
    /// JoinGroup.
    pub const JOIN_GROUP: i16 = 11;
    /// Heartbeat.
    pub const HEARTBEAT: i16 = 12;
    /// LeaveGroup.
    pub const LEAVE_GROUP: i16 = 13;
    /// SyncGroup.
    pub const SYNC_GROUP: i16 = 14;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// CreateTopics.
    pub const CREATE_TOPICS: i16 = 19;
    /// DeleteTopics.
    pub const DELETE_TOPICS: i16 = 20;
    /// DescribeConfigs.
    pub const DESCRIBE_CONFIGS: i16 = 32;
    /// InitProducerId.
    pub const INIT_PRODUCER_ID: i16 = 22;
    /// DescribeGroups.
    pub const DESCRIBE_GROUPS: i16 = 15;
    /// ListGroups.
    pub const LIST_GROUPS: i16 = 16;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 17;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 36;
}

/// Kafka error codes used by a single-node broker.
pub mod error_code {
    /// No error.
    pub const NONE: i16 = 0;
    /// Requested offset is outside the partition's range.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// A record batch failed its CRC or could not be parsed.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// Topic or partition does not exist.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// Batch larger than allowed.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// Produce `acks` other than -1, 0 and 1.
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    /// The coordinator is still loading.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// Not the coordinator for this group.
    pub const NOT_COORDINATOR: i16 = 16;
    /// Invalid topic name.
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// Storage failed.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// Generation is not the group's current one.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// Member protocols do not match the group's.
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    /// Invalid group id.
    pub const INVALID_GROUP_ID: i16 = 24;
    /// Member id not known in the group.
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    /// Session timeout outside the allowed range.
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    /// The group is rebalancing: rejoin.
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    /// Commit metadata too large.
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    /// Version not supported.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// Topic exists.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// Invalid partition count.
    pub const INVALID_PARTITIONS: i16 = 37;
    /// Invalid replication factor.
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// Invalid request.
    pub const INVALID_REQUEST: i16 = 42;
    /// Invalid configuration.
    pub const INVALID_CONFIG: i16 = 40;
    /// Unsupported for message format.
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    /// Fetch session id not found.
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    /// Join again with the member id in the response (JoinGroup v4+).
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    /// Group is not empty (DeleteGroups).
    pub const NON_EMPTY_GROUP: i16 = 68;
    /// Transactional id not authorized (used to refuse transactions, which are not supported).
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    /// Unknown server error.
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// The principal may not do this to the topic.
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    /// The principal may not use this consumer group.
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    /// The principal may not do this to the cluster.
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    /// The SASL mechanism asked for is not enabled.
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// A request that is not allowed in the SASL state of the connection.
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    /// SASL authentication failed (bad credentials).
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
}

/// Implemented APIs and version ranges, as advertised in ApiVersions responses.
pub const SUPPORTED_APIS: &[ApiVersionRange] = &[
    range(api_key::PRODUCE, 0, 8),
    range(api_key::FETCH, 0, 11),
    range(api_key::LIST_OFFSETS, 0, 5),
    range(api_key::METADATA, 0, 9),
    range(api_key::OFFSET_COMMIT, 0, 8),
    range(api_key::OFFSET_FETCH, 0, 7),
    range(api_key::FIND_COORDINATOR, 0, 3),
    range(api_key::JOIN_GROUP, 0, 7),
    range(api_key::HEARTBEAT, 0, 4),
    range(api_key::LEAVE_GROUP, 0, 4),
    range(api_key::SYNC_GROUP, 0, 5),
    range(api_key::API_VERSIONS, 0, 3),
    range(api_key::CREATE_TOPICS, 0, 4),
    range(api_key::DELETE_TOPICS, 0, 4),
    range(api_key::DESCRIBE_CONFIGS, 0, 4),
    range(api_key::INIT_PRODUCER_ID, 0, 4),
    range(api_key::DESCRIBE_GROUPS, 0, 5),
    range(api_key::LIST_GROUPS, 0, 4),
    range(api_key::SASL_HANDSHAKE, 0, 1),
    range(api_key::SASL_AUTHENTICATE, 0, 2),
];

const fn range(api_key: i16, min_version: i16, max_version: i16) -> ApiVersionRange {
    ApiVersionRange {
        api_key,
        min_version,
        max_version,
    }
}

/// The implemented version range of an API, if it is implemented.
pub fn supported_range(key: i16) -> Option<&'static ApiVersionRange> {
    SUPPORTED_APIS.iter().find(|r| r.api_key == key)
}

/// The first flexible version of an implemented API (`None` for unknown keys).
pub fn first_flexible_version(key: i16) -> Option<i16> {
    Some(match key {
        api_key::PRODUCE => 9,
        api_key::FETCH => 12,
        api_key::LIST_OFFSETS => 6,
        api_key::METADATA => 9,
        api_key::OFFSET_COMMIT => 8,
        api_key::OFFSET_FETCH => 6,
        api_key::FIND_COORDINATOR => 3,
        api_key::JOIN_GROUP => 6,
        api_key::HEARTBEAT => 4,
        api_key::LEAVE_GROUP => 4,
        api_key::SYNC_GROUP => 4,
        api_key::API_VERSIONS => 3,
        api_key::CREATE_TOPICS => 5,
        api_key::DELETE_TOPICS => 4,
        api_key::DESCRIBE_CONFIGS => 4,
        api_key::INIT_PRODUCER_ID => 2,
        api_key::DESCRIBE_GROUPS => 5,
        api_key::LIST_GROUPS => 3,
        // SaslHandshake has no flexible version.
        api_key::SASL_HANDSHAKE => i16::MAX,
        api_key::SASL_AUTHENTICATE => 2,
        _ => return None,
    })
}

fn is_flexible(key: i16, version: i16) -> bool {
    first_flexible_version(key).is_some_and(|f| version >= f)
}

/// Bounds for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaLimits {
    /// Largest accepted frame, size prefix excluded (Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: usize,
}

impl Default for KafkaLimits {
    /// 100 MiB, Kafka's default `socket.request.max.bytes`.
    fn default() -> Self {
        KafkaLimits {
            max_frame_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Takes one size-prefixed frame from the front of `buf` and returns its content (without the
/// prefix). `Ok(None)`: more bytes are needed and nothing was consumed.
pub fn decode_frame(
    buf: &mut BytesMut,
    limits: &KafkaLimits,
) -> Result<Option<Bytes>, KafkaDecodeError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([
        prefix.first().copied().unwrap_or(0),
        prefix.get(1).copied().unwrap_or(0),
        prefix.get(2).copied().unwrap_or(0),
        prefix.get(3).copied().unwrap_or(0),
    ]);
    if size < 0 {
        return Err(KafkaDecodeError::NegativeSize(size));
    }
    let size = size as usize;
    if size > limits.max_frame_bytes {
        return Err(KafkaDecodeError::FrameTooLarge {
            size,
            max: limits.max_frame_bytes,
        });
    }
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// A request header (v1, or v2 in flexible versions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeader {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// Client id.
    pub client_id: Option<String>,
}

/// A request body of an implemented API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum KafkaRequestBody {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    SyncGroup(SyncGroupRequest),
    /// Holds defaults when the version is above the supported range (body not parsed).
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    SaslHandshake(SaslHandshakeRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRequest {
    /// Header.
    pub header: RequestHeader,
    /// Body.
    pub body: KafkaRequestBody,
}

impl KafkaRequest {
    /// Whether the version is above what [`SUPPORTED_APIS`] advertises (only possible for
    /// ApiVersions, which is decoded anyway).
    pub fn version_unsupported(&self) -> bool {
        supported_range(self.header.api_key).is_none_or(|r| {
            self.header.api_version < r.min_version || self.header.api_version > r.max_version
        })
    }
}

macro_rules! body_io {
    ($body:expr, $c:expr, $($variant:ident),*) => {
        match $body {
            $(KafkaRequestBody::$variant(b) => b.io($c),)*
        }
    };
}

impl KafkaRequestBody {
    fn io<C: Io>(&mut self, c: &mut C) -> wire::R {
        body_io!(
            self,
            c,
            Produce,
            Fetch,
            ListOffsets,
            Metadata,
            OffsetCommit,
            OffsetFetch,
            FindCoordinator,
            JoinGroup,
            Heartbeat,
            LeaveGroup,
            SyncGroup,
            ApiVersions,
            CreateTopics,
            DeleteTopics,
            DescribeConfigs,
            InitProducerId,
            DescribeGroups,
            ListGroups,
            SaslHandshake,
            SaslAuthenticate
        )
    }

    fn empty(key: i16) -> Option<KafkaRequestBody> {
        Some(match key {
            api_key::PRODUCE => KafkaRequestBody::Produce(Default::default()),
            api_key::FETCH => KafkaRequestBody::Fetch(Default::default()),
            api_key::LIST_OFFSETS => KafkaRequestBody::ListOffsets(Default::default()),
            api_key::METADATA => KafkaRequestBody::Metadata(Default::default()),
            api_key::OFFSET_COMMIT => KafkaRequestBody::OffsetCommit(Default::default()),
            api_key::OFFSET_FETCH => KafkaRequestBody::OffsetFetch(Default::default()),
            api_key::FIND_COORDINATOR => KafkaRequestBody::FindCoordinator(Default::default()),
            api_key::JOIN_GROUP => KafkaRequestBody::JoinGroup(Default::default()),
            api_key::HEARTBEAT => KafkaRequestBody::Heartbeat(Default::default()),
            api_key::LEAVE_GROUP => KafkaRequestBody::LeaveGroup(Default::default()),
            api_key::SYNC_GROUP => KafkaRequestBody::SyncGroup(Default::default()),
            api_key::API_VERSIONS => KafkaRequestBody::ApiVersions(Default::default()),
            api_key::CREATE_TOPICS => KafkaRequestBody::CreateTopics(Default::default()),
            api_key::DELETE_TOPICS => KafkaRequestBody::DeleteTopics(Default::default()),
            api_key::DESCRIBE_CONFIGS => KafkaRequestBody::DescribeConfigs(Default::default()),
            api_key::INIT_PRODUCER_ID => KafkaRequestBody::InitProducerId(Default::default()),
            api_key::DESCRIBE_GROUPS => KafkaRequestBody::DescribeGroups(Default::default()),
            api_key::LIST_GROUPS => KafkaRequestBody::ListGroups(Default::default()),
            api_key::SASL_HANDSHAKE => KafkaRequestBody::SaslHandshake(Default::default()),
            api_key::SASL_AUTHENTICATE => KafkaRequestBody::SaslAuthenticate(Default::default()),
            _ => return None,
        })
    }
}

/// Decodes just the header of a request frame (to answer even a request whose body cannot be
/// parsed, or to log it).
pub fn decode_request_header(frame: &Bytes) -> Result<RequestHeader, KafkaDecodeError> {
    let mut r = Reader::new(frame.clone(), 0, false);
    read_header(&mut r)
}

fn read_header(r: &mut Reader) -> Result<RequestHeader, KafkaDecodeError> {
    let mut h = RequestHeader::default();
    r.i16(&mut h.api_key)?;
    r.i16(&mut h.api_version)?;
    r.i32(&mut h.correlation_id)?;
    r.classic_nstring(&mut h.client_id)?;
    let supported = supported_range(h.api_key)
        .is_some_and(|s| (s.min_version..=s.max_version).contains(&h.api_version));
    // The tag section of an unsupported version is not read: the body is not parsed either.
    if supported && is_flexible(h.api_key, h.api_version) {
        r.set_version(0, true);
        r.tags()?;
    }
    Ok(h)
}

/// Decodes a request frame (as returned by [`decode_frame`]).
pub fn decode_request(frame: Bytes) -> Result<KafkaRequest, KafkaDecodeError> {
    let mut r = Reader::new(frame, 0, false);
    let header = read_header(&mut r)?;
    let (key, version) = (header.api_key, header.api_version);
    let Some(mut body) = KafkaRequestBody::empty(key) else {
        return Err(KafkaDecodeError::UnknownApiKey {
            api_key: key,
            api_version: version,
        });
    };
    let supported =
        supported_range(key).is_some_and(|s| (s.min_version..=s.max_version).contains(&version));
    if !supported {
        if key == api_key::API_VERSIONS && version >= 0 {
            return Ok(KafkaRequest { header, body });
        }
        return Err(KafkaDecodeError::UnsupportedVersion {
            api_key: key,
            api_version: version,
        });
    }
    r.set_version(version, is_flexible(key, version));
    body.io(&mut r)?;
    r.finish()?;
    Ok(KafkaRequest { header, body })
}

/// Encodes a request, size prefix included (used by tests, fuzzing and clients).
pub fn encode_request(request: &KafkaRequest, out: &mut BytesMut) {
    let start = out.len();
    out.put_i32(0);
    let h = &request.header;
    let flexible = is_flexible(h.api_key, h.api_version);
    {
        let mut w = Writer::new(out, h.api_version, false);
        let (mut k, mut v, mut c, mut id) = (
            h.api_key,
            h.api_version,
            h.correlation_id,
            h.client_id.clone(),
        );
        let _ = w.i16(&mut k);
        let _ = w.i16(&mut v);
        let _ = w.i32(&mut c);
        let _ = w.classic_nstring(&mut id);
        if flexible {
            w.raw(&[0]);
        }
    }
    let mut body = request.body.clone();
    let mut w = Writer::new(out, h.api_version, flexible);
    let _ = body.io(&mut w);
    patch_size(out, start);
}

fn patch_size(out: &mut BytesMut, start: usize) {
    let size = (out.len() - start - 4) as i32;
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
}

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum KafkaResponseBody {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    SyncGroup(SyncGroupResponse),
    ApiVersions(ApiVersionsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    InitProducerId(InitProducerIdResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    SaslHandshake(SaslHandshakeResponse),
    SaslAuthenticate(SaslAuthenticateResponse),
}

macro_rules! response_io {
    ($body:expr, $c:expr, $($variant:ident),*) => {
        match $body {
            $(KafkaResponseBody::$variant(b) => b.io($c),)*
        }
    };
}

impl KafkaResponseBody {
    fn io<C: Io>(&mut self, c: &mut C) -> wire::R {
        response_io!(
            self,
            c,
            Produce,
            Fetch,
            ListOffsets,
            Metadata,
            OffsetCommit,
            OffsetFetch,
            FindCoordinator,
            JoinGroup,
            Heartbeat,
            LeaveGroup,
            SyncGroup,
            ApiVersions,
            CreateTopics,
            DeleteTopics,
            DescribeConfigs,
            InitProducerId,
            DescribeGroups,
            ListGroups,
            SaslHandshake,
            SaslAuthenticate
        )
    }

    /// The API key this body answers.
    pub fn api_key(&self) -> i16 {
        match self {
            KafkaResponseBody::Produce(_) => api_key::PRODUCE,
            KafkaResponseBody::Fetch(_) => api_key::FETCH,
            KafkaResponseBody::ListOffsets(_) => api_key::LIST_OFFSETS,
            KafkaResponseBody::Metadata(_) => api_key::METADATA,
            KafkaResponseBody::OffsetCommit(_) => api_key::OFFSET_COMMIT,
            KafkaResponseBody::OffsetFetch(_) => api_key::OFFSET_FETCH,
            KafkaResponseBody::FindCoordinator(_) => api_key::FIND_COORDINATOR,
            KafkaResponseBody::JoinGroup(_) => api_key::JOIN_GROUP,
            KafkaResponseBody::Heartbeat(_) => api_key::HEARTBEAT,
            KafkaResponseBody::LeaveGroup(_) => api_key::LEAVE_GROUP,
            KafkaResponseBody::SyncGroup(_) => api_key::SYNC_GROUP,
            KafkaResponseBody::ApiVersions(_) => api_key::API_VERSIONS,
            KafkaResponseBody::CreateTopics(_) => api_key::CREATE_TOPICS,
            KafkaResponseBody::DeleteTopics(_) => api_key::DELETE_TOPICS,
            KafkaResponseBody::DescribeConfigs(_) => api_key::DESCRIBE_CONFIGS,
            KafkaResponseBody::InitProducerId(_) => api_key::INIT_PRODUCER_ID,
            KafkaResponseBody::DescribeGroups(_) => api_key::DESCRIBE_GROUPS,
            KafkaResponseBody::ListGroups(_) => api_key::LIST_GROUPS,
            KafkaResponseBody::SaslHandshake(_) => api_key::SASL_HANDSHAKE,
            KafkaResponseBody::SaslAuthenticate(_) => api_key::SASL_AUTHENTICATE,
        }
    }
}

/// A response ready to encode: the correlation id and version of its request, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaResponse {
    /// Correlation id of the request.
    pub correlation_id: i32,
    /// Version of the request (and so of the response).
    pub api_version: i16,
    /// Body.
    pub body: KafkaResponseBody,
}

/// Whether a response to `key` at `version` has header v1 (with tagged fields).
fn response_header_flexible(key: i16, version: i16) -> bool {
    key != api_key::API_VERSIONS && is_flexible(key, version)
}

/// Encodes a response, size prefix included.
pub fn encode_response(response: &KafkaResponse, out: &mut BytesMut) {
    let start = out.len();
    out.put_i32(0);
    out.put_i32(response.correlation_id);
    let key = response.body.api_key();
    let version = response.api_version;
    if response_header_flexible(key, version) {
        out.put_u8(0);
    }
    let mut body = response.body.clone();
    let mut w = Writer::new(out, version, is_flexible(key, version));
    let _ = body.io(&mut w);
    patch_size(out, start);
}

/// Decodes a response frame (no size prefix) to `api_key` at `api_version` (for tests and
/// clients).
pub fn decode_response(
    frame: Bytes,
    api_key: i16,
    api_version: i16,
) -> Result<KafkaResponse, KafkaDecodeError> {
    let mut r = Reader::new(frame, api_version, false);
    let mut correlation_id = 0;
    r.i32(&mut correlation_id)?;
    if response_header_flexible(api_key, api_version) {
        r.set_version(api_version, true);
        r.tags()?;
    }
    r.set_version(api_version, is_flexible(api_key, api_version));
    let mut body = match api_key {
        api_key::PRODUCE => KafkaResponseBody::Produce(Default::default()),
        api_key::FETCH => KafkaResponseBody::Fetch(Default::default()),
        api_key::LIST_OFFSETS => KafkaResponseBody::ListOffsets(Default::default()),
        api_key::METADATA => KafkaResponseBody::Metadata(Default::default()),
        api_key::OFFSET_COMMIT => KafkaResponseBody::OffsetCommit(Default::default()),
        api_key::OFFSET_FETCH => KafkaResponseBody::OffsetFetch(Default::default()),
        api_key::FIND_COORDINATOR => KafkaResponseBody::FindCoordinator(Default::default()),
        api_key::JOIN_GROUP => KafkaResponseBody::JoinGroup(Default::default()),
        api_key::HEARTBEAT => KafkaResponseBody::Heartbeat(Default::default()),
        api_key::LEAVE_GROUP => KafkaResponseBody::LeaveGroup(Default::default()),
        api_key::SYNC_GROUP => KafkaResponseBody::SyncGroup(Default::default()),
        api_key::API_VERSIONS => KafkaResponseBody::ApiVersions(Default::default()),
        api_key::CREATE_TOPICS => KafkaResponseBody::CreateTopics(Default::default()),
        api_key::DELETE_TOPICS => KafkaResponseBody::DeleteTopics(Default::default()),
        api_key::DESCRIBE_CONFIGS => KafkaResponseBody::DescribeConfigs(Default::default()),
        api_key::INIT_PRODUCER_ID => KafkaResponseBody::InitProducerId(Default::default()),
        api_key::DESCRIBE_GROUPS => KafkaResponseBody::DescribeGroups(Default::default()),
        api_key::LIST_GROUPS => KafkaResponseBody::ListGroups(Default::default()),
        api_key::SASL_HANDSHAKE => KafkaResponseBody::SaslHandshake(Default::default()),
        api_key::SASL_AUTHENTICATE => KafkaResponseBody::SaslAuthenticate(Default::default()),
        _ => {
            return Err(KafkaDecodeError::UnknownApiKey {
                api_key,
                api_version,
            })
        }
    };
    body.io(&mut r)?;
    r.finish()?;
    Ok(KafkaResponse {
        correlation_id,
        api_version,
        body,
    })
}

/// Error from [`KafkaCodec`].
#[derive(Debug, thiserror::Error)]
pub enum KafkaCodecError {
    /// The peer sent bytes that are not a valid request.
    #[error(transparent)]
    Decode(#[from] KafkaDecodeError),
    /// Reading or writing the transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util::codec` adapter: decodes size-prefixed frames (the raw frame, so that the
/// session can read its header even when the body is bad) and encodes responses.
#[derive(Debug, Clone, Default)]
pub struct KafkaCodec {
    limits: KafkaLimits,
}

impl KafkaCodec {
    /// A codec with these limits.
    pub fn new(limits: KafkaLimits) -> Self {
        KafkaCodec { limits }
    }

    /// Changes the limits for the frames still to come (a session raises them once the client
    /// has authenticated, as Kafka's `sasl.server.max.receive.size` bounds frames before).
    pub fn set_limits(&mut self, limits: KafkaLimits) {
        self.limits = limits;
    }
}

impl Decoder for KafkaCodec {
    type Item = Bytes;
    type Error = KafkaCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, KafkaCodecError> {
        Ok(decode_frame(src, &self.limits)?)
    }
}

/// A bare SASL token: after a SaslHandshake v0, SASL tokens travel as size-prefixed frames
/// without a Kafka header in both directions (the client's arrive as ordinary frames from
/// [`decode_frame`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslToken(pub Bytes);

/// Encodes a bare SASL token: its size, then its bytes.
pub fn encode_sasl_token(token: &[u8], out: &mut BytesMut) {
    out.reserve(4 + token.len());
    out.put_i32(i32::try_from(token.len()).unwrap_or(i32::MAX));
    out.put_slice(token);
}

impl Encoder<SaslToken> for KafkaCodec {
    type Error = KafkaCodecError;

    fn encode(&mut self, item: SaslToken, dst: &mut BytesMut) -> Result<(), KafkaCodecError> {
        encode_sasl_token(&item.0, dst);
        Ok(())
    }
}

impl Encoder<KafkaResponse> for KafkaCodec {
    type Error = KafkaCodecError;

    fn encode(&mut self, item: KafkaResponse, dst: &mut BytesMut) -> Result<(), KafkaCodecError> {
        encode_response(&item, dst);
        Ok(())
    }
}
