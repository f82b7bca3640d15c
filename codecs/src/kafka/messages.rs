//! Request and response bodies of the implemented APIs, one `io` function each (see
//! [`super::wire`]): fields in wire order, each with the versions it exists in, as in the
//! message schemas of Apache Kafka (`clients/src/main/resources/common/message/*.json`).

use bytes::Bytes;

use super::wire::{Io, R};

macro_rules! since {
    ($c:ident, $v:expr, $field:expr, $m:ident) => {
        if $c.version() >= $v {
            $c.$m(&mut $field)?;
        }
    };
}

macro_rules! between {
    ($c:ident, $lo:expr, $hi:expr, $field:expr, $m:ident) => {
        if ($lo..=$hi).contains(&$c.version()) {
            $c.$m(&mut $field)?;
        }
    };
}

fn i32_item<C: Io>(c: &mut C, v: &mut i32) -> R {
    c.i32(v)
}

fn string_item<C: Io>(c: &mut C, v: &mut String) -> R {
    c.string(v)
}

/// A string that is nullable only from version `nullable_since` on: before it, null is
/// written as an empty string and read values are never null.
fn string_nullable_since<C: Io>(c: &mut C, v: &mut Option<String>, nullable_since: i16) -> R {
    if c.version() >= nullable_since {
        return c.nstring(v);
    }
    let mut s = v.clone().unwrap_or_default();
    c.string(&mut s)?;
    *v = Some(s);
    Ok(())
}

// ---------------------------------------------------------------------------------- ApiVersions

/// ApiVersions request (key 18).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    /// Client library name (v3+).
    pub client_software_name: String,
    /// Client library version (v3+).
    pub client_software_version: String,
}

impl ApiVersionsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 3, self.client_software_name, string);
        since!(c, 3, self.client_software_version, string);
        c.tags()
    }
}

/// One API's supported version range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// API key.
    pub api_key: i16,
    /// Lowest supported version.
    pub min_version: i16,
    /// Highest supported version.
    pub max_version: i16,
}

/// ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// Error code (35 UNSUPPORTED_VERSION when the request's version is not supported).
    pub error_code: i16,
    /// Supported APIs.
    pub api_keys: Vec<ApiVersionRange>,
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
}

impl ApiVersionsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i16(&mut self.error_code)?;
        c.array(&mut self.api_keys, |c, k| {
            c.i16(&mut k.api_key)?;
            c.i16(&mut k.min_version)?;
            c.i16(&mut k.max_version)?;
            c.tags()
        })?;
        since!(c, 1, self.throttle_time_ms, i32);
        c.tags()
    }
}

// ------------------------------------------------------------------------------------- Metadata

/// Metadata request (key 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Topics asked for; `None` = all topics (v0: an empty array means all).
    pub topics: Option<Vec<String>>,
    /// Whether missing topics may be auto-created (v4+; true before).
    pub allow_auto_topic_creation: bool,
    /// v8..=10.
    pub include_cluster_authorized_operations: bool,
    /// v8+.
    pub include_topic_authorized_operations: bool,
}

impl Default for MetadataRequest {
    fn default() -> Self {
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        }
    }
}

impl MetadataRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        let topic = |c: &mut C, t: &mut String| {
            c.string(t)?;
            c.tags()
        };
        if c.version() == 0 {
            let mut v = self.topics.take().unwrap_or_default();
            c.array(&mut v, topic)?;
            self.topics = if v.is_empty() { None } else { Some(v) };
        } else {
            c.narray(&mut self.topics, topic)?;
        }
        since!(c, 4, self.allow_auto_topic_creation, bool);
        between!(c, 8, 10, self.include_cluster_authorized_operations, bool);
        since!(c, 8, self.include_topic_authorized_operations, bool);
        c.tags()
    }
}

/// A broker in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataBroker {
    /// Node id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack (v1+).
    pub rack: Option<String>,
}

/// A partition in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPartition {
    /// Error code.
    pub error_code: i16,
    /// Partition number.
    pub partition_index: i32,
    /// Leader node.
    pub leader_id: i32,
    /// Leader epoch (v7+).
    pub leader_epoch: i32,
    /// Replicas.
    pub replica_nodes: Vec<i32>,
    /// In-sync replicas.
    pub isr_nodes: Vec<i32>,
    /// Offline replicas (v5+).
    pub offline_replicas: Vec<i32>,
}

/// A topic in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Error code.
    pub error_code: i16,
    /// Topic name.
    pub name: String,
    /// Internal topic (v1+).
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
    /// Authorized operations bit field (v8+).
    pub topic_authorized_operations: i32,
}

/// Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Brokers.
    pub brokers: Vec<MetadataBroker>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Controller node (v1+).
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
    /// Authorized operations bit field (v8..=10).
    pub cluster_authorized_operations: i32,
}

impl MetadataResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 3, self.throttle_time_ms, i32);
        c.array(&mut self.brokers, |c, b| {
            c.i32(&mut b.node_id)?;
            c.string(&mut b.host)?;
            c.i32(&mut b.port)?;
            since!(c, 1, b.rack, nstring);
            c.tags()
        })?;
        since!(c, 2, self.cluster_id, nstring);
        since!(c, 1, self.controller_id, i32);
        c.array(&mut self.topics, |c, t| {
            c.i16(&mut t.error_code)?;
            c.string(&mut t.name)?;
            since!(c, 1, t.is_internal, bool);
            c.array(&mut t.partitions, |c, p| {
                c.i16(&mut p.error_code)?;
                c.i32(&mut p.partition_index)?;
                c.i32(&mut p.leader_id)?;
                since!(c, 7, p.leader_epoch, i32);
                c.array(&mut p.replica_nodes, i32_item)?;
                c.array(&mut p.isr_nodes, i32_item)?;
                if c.version() >= 5 {
                    c.array(&mut p.offline_replicas, i32_item)?;
                }
                c.tags()
            })?;
            since!(c, 8, t.topic_authorized_operations, i32);
            c.tags()
        })?;
        between!(c, 8, 10, self.cluster_authorized_operations, i32);
        c.tags()
    }
}

// -------------------------------------------------------------------------------------- Produce

/// One partition's records in a Produce request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducePartitionData {
    /// Partition number.
    pub index: i32,
    /// Record batches (decode with [`super::decode_record_batches`]).
    pub records: Option<Bytes>,
}

/// One topic in a Produce request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceTopicData {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partition_data: Vec<ProducePartitionData>,
}

/// Produce request (key 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRequest {
    /// Transactional id (v3+).
    pub transactional_id: Option<String>,
    /// 0: no response; 1: leader wrote it; -1: all in-sync replicas wrote it.
    pub acks: i16,
    /// Time to wait for acks.
    pub timeout_ms: i32,
    /// Topics.
    pub topic_data: Vec<ProduceTopicData>,
}

impl ProduceRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 3, self.transactional_id, nstring);
        c.i16(&mut self.acks)?;
        c.i32(&mut self.timeout_ms)?;
        c.array(&mut self.topic_data, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partition_data, |c, p| {
                c.i32(&mut p.index)?;
                c.nbytes(&mut p.records)?;
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

/// A batch that failed inside a partition (v8+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRecordError {
    /// Index of the batch.
    pub batch_index: i32,
    /// Why.
    pub batch_index_error_message: Option<String>,
}

/// One partition's result in a Produce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// Partition number.
    pub index: i32,
    /// Error code.
    pub error_code: i16,
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Append time if the topic uses LogAppendTime, else -1 (v2+).
    pub log_append_time_ms: i64,
    /// Partition's log start offset (v5+).
    pub log_start_offset: i64,
    /// Failed batches (v8+).
    pub record_errors: Vec<ProduceRecordError>,
    /// Error message (v8+).
    pub error_message: Option<String>,
}

/// One topic's results in a Produce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partition_responses: Vec<ProducePartitionResponse>,
}

/// Produce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceResponse {
    /// Topics.
    pub responses: Vec<ProduceTopicResponse>,
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
}

impl ProduceResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.array(&mut self.responses, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partition_responses, |c, p| {
                c.i32(&mut p.index)?;
                c.i16(&mut p.error_code)?;
                c.i64(&mut p.base_offset)?;
                since!(c, 2, p.log_append_time_ms, i64);
                since!(c, 5, p.log_start_offset, i64);
                if c.version() >= 8 {
                    c.array(&mut p.record_errors, |c, e| {
                        c.i32(&mut e.batch_index)?;
                        c.nstring(&mut e.batch_index_error_message)?;
                        c.tags()
                    })?;
                    c.nstring(&mut p.error_message)?;
                }
                c.tags()
            })?;
            c.tags()
        })?;
        since!(c, 1, self.throttle_time_ms, i32);
        c.tags()
    }
}

// ---------------------------------------------------------------------------------------- Fetch

/// One partition in a Fetch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition number.
    pub partition: i32,
    /// Leader epoch the client knows (v9+).
    pub current_leader_epoch: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Follower's log start offset (v5+).
    pub log_start_offset: i64,
    /// Most bytes wanted from this partition.
    pub partition_max_bytes: i32,
}

/// One topic in a Fetch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchTopic {
    /// Topic name.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<FetchPartition>,
}

/// Topic partitions an incremental fetch session drops (v7+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgottenTopic {
    /// Topic name.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<i32>,
}

/// Fetch request (key 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// -1 for consumers.
    pub replica_id: i32,
    /// Longest wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Least bytes worth answering with.
    pub min_bytes: i32,
    /// Most bytes in the response (v3+).
    pub max_bytes: i32,
    /// 0 read uncommitted, 1 read committed (v4+).
    pub isolation_level: i8,
    /// Fetch session id (v7+).
    pub session_id: i32,
    /// Fetch session epoch (v7+).
    pub session_epoch: i32,
    /// Topics.
    pub topics: Vec<FetchTopic>,
    /// Dropped from the session (v7+).
    pub forgotten_topics_data: Vec<ForgottenTopic>,
    /// Consumer's rack (v11+).
    pub rack_id: String,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: Vec::new(),
            forgotten_topics_data: Vec::new(),
            rack_id: String::new(),
        }
    }
}

impl FetchRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i32(&mut self.replica_id)?;
        c.i32(&mut self.max_wait_ms)?;
        c.i32(&mut self.min_bytes)?;
        since!(c, 3, self.max_bytes, i32);
        since!(c, 4, self.isolation_level, i8);
        since!(c, 7, self.session_id, i32);
        since!(c, 7, self.session_epoch, i32);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.topic)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition)?;
                since!(c, 9, p.current_leader_epoch, i32);
                c.i64(&mut p.fetch_offset)?;
                since!(c, 5, p.log_start_offset, i64);
                c.i32(&mut p.partition_max_bytes)?;
                c.tags()
            })?;
            c.tags()
        })?;
        if c.version() >= 7 {
            c.array(&mut self.forgotten_topics_data, |c, t| {
                c.string(&mut t.topic)?;
                c.array(&mut t.partitions, i32_item)?;
                c.tags()
            })?;
        }
        since!(c, 11, self.rack_id, string);
        c.tags()
    }
}

/// An aborted transaction in a Fetch response (v4+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
}

/// One partition's data in a Fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    /// Partition number.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
    /// Offset after the last record.
    pub high_watermark: i64,
    /// Last stable offset (v4+).
    pub last_stable_offset: i64,
    /// Log start offset (v5+).
    pub log_start_offset: i64,
    /// Aborted transactions (v4+).
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// Replica to read from instead, -1 for none (v11+).
    pub preferred_read_replica: i32,
    /// Record batches.
    pub records: Option<Bytes>,
}

/// One topic's data in a Fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchTopicResponse {
    /// Topic name.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<FetchPartitionResponse>,
}

/// Fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Top-level error (v7+).
    pub error_code: i16,
    /// Fetch session id, 0 for none (v7+).
    pub session_id: i32,
    /// Topics.
    pub responses: Vec<FetchTopicResponse>,
}

impl FetchResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        since!(c, 7, self.error_code, i16);
        since!(c, 7, self.session_id, i32);
        c.array(&mut self.responses, |c, t| {
            c.string(&mut t.topic)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                c.i16(&mut p.error_code)?;
                c.i64(&mut p.high_watermark)?;
                since!(c, 4, p.last_stable_offset, i64);
                since!(c, 5, p.log_start_offset, i64);
                if c.version() >= 4 {
                    c.narray(&mut p.aborted_transactions, |c, a| {
                        c.i64(&mut a.producer_id)?;
                        c.i64(&mut a.first_offset)?;
                        c.tags()
                    })?;
                }
                since!(c, 11, p.preferred_read_replica, i32);
                c.nbytes(&mut p.records)?;
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

// ---------------------------------------------------------------------------------- ListOffsets

/// One partition in a ListOffsets request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    /// Partition number.
    pub partition_index: i32,
    /// Leader epoch the client knows (v4+).
    pub current_leader_epoch: i32,
    /// -1 latest, -2 earliest, else a timestamp in ms.
    pub timestamp: i64,
    /// Most offsets wanted (v0 only).
    pub max_num_offsets: i32,
}

/// One topic in a ListOffsets request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// ListOffsets request (key 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// -1 for consumers.
    pub replica_id: i32,
    /// Isolation level (v2+).
    pub isolation_level: i8,
    /// Topics.
    pub topics: Vec<ListOffsetsTopic>,
}

impl ListOffsetsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i32(&mut self.replica_id)?;
        since!(c, 2, self.isolation_level, i8);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                since!(c, 4, p.current_leader_epoch, i32);
                c.i64(&mut p.timestamp)?;
                between!(c, 0, 0, p.max_num_offsets, i32);
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

/// One partition's answer in a ListOffsets response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    /// Partition number.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
    /// Offsets (v0 only).
    pub old_style_offsets: Vec<i64>,
    /// Timestamp of the record found, -1 if none (v1+).
    pub timestamp: i64,
    /// Offset found, -1 if none (v1+).
    pub offset: i64,
    /// Leader epoch (v4+).
    pub leader_epoch: i32,
}

/// One topic's answers in a ListOffsets response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// ListOffsets response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<ListOffsetsTopicResponse>,
}

impl ListOffsetsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 2, self.throttle_time_ms, i32);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                c.i16(&mut p.error_code)?;
                if c.version() == 0 {
                    c.array(&mut p.old_style_offsets, |c, o| c.i64(o))?;
                }
                since!(c, 1, p.timestamp, i64);
                since!(c, 1, p.offset, i64);
                since!(c, 4, p.leader_epoch, i32);
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------ FindCoordinator

/// FindCoordinator request (key 10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// Group id (or transactional id).
    pub key: String,
    /// 0 group, 1 transaction (v1+).
    pub key_type: i8,
}

impl FindCoordinatorRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.key)?;
        since!(c, 1, self.key_type, i8);
        c.tags()
    }
}

/// FindCoordinator response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindCoordinatorResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Error message (v1+).
    pub error_message: Option<String>,
    /// Coordinator node.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

impl FindCoordinatorResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        since!(c, 1, self.error_message, nstring);
        c.i32(&mut self.node_id)?;
        c.string(&mut self.host)?;
        c.i32(&mut self.port)?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------------ JoinGroup

/// A protocol a member supports, with its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupProtocol {
    /// Protocol (assignor) name.
    pub name: String,
    /// Opaque metadata.
    pub metadata: Bytes,
}

/// JoinGroup request (key 11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Member removed after this long without a heartbeat.
    pub session_timeout_ms: i32,
    /// Longest wait for members to rejoin (v1+; the session timeout before).
    pub rebalance_timeout_ms: i32,
    /// Member id, empty on first join.
    pub member_id: String,
    /// Static member id (v5+).
    pub group_instance_id: Option<String>,
    /// Protocol type, e.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<JoinGroupProtocol>,
}

impl JoinGroupRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        c.i32(&mut self.session_timeout_ms)?;
        if c.version() >= 1 {
            c.i32(&mut self.rebalance_timeout_ms)?;
        } else {
            self.rebalance_timeout_ms = self.session_timeout_ms;
        }
        c.string(&mut self.member_id)?;
        since!(c, 5, self.group_instance_id, nstring);
        c.string(&mut self.protocol_type)?;
        c.array(&mut self.protocols, |c, p| {
            c.string(&mut p.name)?;
            c.bytes(&mut p.metadata)?;
            c.tags()
        })?;
        c.tags()
    }
}

/// A member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static member id (v5+).
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinGroupResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Generation.
    pub generation_id: i32,
    /// Protocol type (v7+).
    pub protocol_type: Option<String>,
    /// Chosen protocol (nullable v7+).
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// The member's own id.
    pub member_id: String,
    /// All members, for the leader only.
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 2, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        c.i32(&mut self.generation_id)?;
        since!(c, 7, self.protocol_type, nstring);
        string_nullable_since(c, &mut self.protocol_name, 7)?;
        c.string(&mut self.leader)?;
        c.string(&mut self.member_id)?;
        c.array(&mut self.members, |c, m| {
            c.string(&mut m.member_id)?;
            since!(c, 5, m.group_instance_id, nstring);
            c.bytes(&mut m.metadata)?;
            c.tags()
        })?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------------ SyncGroup

/// One member's assignment, sent by the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroupAssignment {
    /// Member id.
    pub member_id: String,
    /// Opaque assignment.
    pub assignment: Bytes,
}

/// SyncGroup request (key 14).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static member id (v3+).
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// Assignments (leader only).
    pub assignments: Vec<SyncGroupAssignment>,
}

impl SyncGroupRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        c.i32(&mut self.generation_id)?;
        c.string(&mut self.member_id)?;
        since!(c, 3, self.group_instance_id, nstring);
        since!(c, 5, self.protocol_type, nstring);
        since!(c, 5, self.protocol_name, nstring);
        c.array(&mut self.assignments, |c, a| {
            c.string(&mut a.member_id)?;
            c.bytes(&mut a.assignment)?;
            c.tags()
        })?;
        c.tags()
    }
}

/// SyncGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        since!(c, 5, self.protocol_type, nstring);
        since!(c, 5, self.protocol_name, nstring);
        c.bytes(&mut self.assignment)?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------------ Heartbeat

/// Heartbeat request (key 12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static member id (v3+).
    pub group_instance_id: Option<String>,
}

impl HeartbeatRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        c.i32(&mut self.generation_id)?;
        c.string(&mut self.member_id)?;
        since!(c, 3, self.group_instance_id, nstring);
        c.tags()
    }
}

/// Heartbeat response; also the shape of other responses that carry only an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
}

impl HeartbeatResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        c.tags()
    }
}

// ----------------------------------------------------------------------------------- LeaveGroup

/// A member leaving (v3+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
}

/// LeaveGroup request (key 13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    /// Group id.
    pub group_id: String,
    /// The leaving member (v0..=2).
    pub member_id: String,
    /// The leaving members (v3+).
    pub members: Vec<LeaveGroupMember>,
}

impl LeaveGroupRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        if c.version() <= 2 {
            c.string(&mut self.member_id)?;
        } else {
            c.array(&mut self.members, |c, m| {
                c.string(&mut m.member_id)?;
                c.nstring(&mut m.group_instance_id)?;
                c.tags()
            })?;
        }
        c.tags()
    }
}

/// One member's result in a LeaveGroup response (v3+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// Error code.
    pub error_code: i16,
}

/// LeaveGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Per member (v3+).
    pub members: Vec<LeaveGroupMemberResponse>,
}

impl LeaveGroupResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        if c.version() >= 3 {
            c.array(&mut self.members, |c, m| {
                c.string(&mut m.member_id)?;
                c.nstring(&mut m.group_instance_id)?;
                c.i16(&mut m.error_code)?;
                c.tags()
            })?;
        }
        c.tags()
    }
}

// ---------------------------------------------------------------------------------- OffsetCommit

/// One partition's offset to commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    /// Partition number.
    pub partition_index: i32,
    /// Offset of the next record to consume.
    pub committed_offset: i64,
    /// Leader epoch (v6+).
    pub committed_leader_epoch: i32,
    /// Commit time (v1 only).
    pub commit_timestamp: i64,
    /// Client metadata, returned by OffsetFetch.
    pub committed_metadata: Option<String>,
}

/// One topic in an OffsetCommit request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetCommitPartition>,
}

/// OffsetCommit request (key 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    /// Group id.
    pub group_id: String,
    /// Generation, -1 outside group management (v1+).
    pub generation_id: i32,
    /// Member id (v1+).
    pub member_id: String,
    /// Static member id (v7+).
    pub group_instance_id: Option<String>,
    /// Retention (v2..=4).
    pub retention_time_ms: i64,
    /// Topics.
    pub topics: Vec<OffsetCommitTopic>,
}

impl Default for OffsetCommitRequest {
    fn default() -> Self {
        OffsetCommitRequest {
            group_id: String::new(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: Vec::new(),
        }
    }
}

impl OffsetCommitRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        since!(c, 1, self.generation_id, i32);
        since!(c, 1, self.member_id, string);
        since!(c, 7, self.group_instance_id, nstring);
        between!(c, 2, 4, self.retention_time_ms, i64);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                c.i64(&mut p.committed_offset)?;
                since!(c, 6, p.committed_leader_epoch, i32);
                between!(c, 1, 1, p.commit_timestamp, i64);
                c.nstring(&mut p.committed_metadata)?;
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

/// A partition's result (OffsetCommit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    /// Partition number.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
}

/// A topic's results (OffsetCommit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

/// OffsetCommit response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<OffsetCommitTopicResponse>,
}

impl OffsetCommitResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 3, self.throttle_time_ms, i32);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                c.i16(&mut p.error_code)?;
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

// ----------------------------------------------------------------------------------- OffsetFetch

/// One topic in an OffsetFetch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partition_indexes: Vec<i32>,
}

/// OffsetFetch request (key 9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    /// Group id.
    pub group_id: String,
    /// Topics; `None` = all the group committed (v2+).
    pub topics: Option<Vec<OffsetFetchTopic>>,
    /// Wait for pending transactional commits (v7+).
    pub require_stable: bool,
}

impl OffsetFetchRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.group_id)?;
        let topic = |c: &mut C, t: &mut OffsetFetchTopic| {
            c.string(&mut t.name)?;
            c.array(&mut t.partition_indexes, i32_item)?;
            c.tags()
        };
        if c.version() >= 2 {
            c.narray(&mut self.topics, topic)?;
        } else {
            let mut v = self.topics.take().unwrap_or_default();
            c.array(&mut v, topic)?;
            self.topics = Some(v);
        }
        since!(c, 7, self.require_stable, bool);
        c.tags()
    }
}

/// One partition's committed offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    /// Partition number.
    pub partition_index: i32,
    /// Committed offset, -1 if none.
    pub committed_offset: i64,
    /// Leader epoch (v5+).
    pub committed_leader_epoch: i32,
    /// Metadata committed with it.
    pub metadata: Option<String>,
    /// Error code.
    pub error_code: i16,
}

/// One topic's committed offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

/// OffsetFetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<OffsetFetchTopicResponse>,
    /// Top-level error (v2+).
    pub error_code: i16,
}

impl OffsetFetchResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 3, self.throttle_time_ms, i32);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.array(&mut t.partitions, |c, p| {
                c.i32(&mut p.partition_index)?;
                c.i64(&mut p.committed_offset)?;
                since!(c, 5, p.committed_leader_epoch, i32);
                c.nstring(&mut p.metadata)?;
                c.i16(&mut p.error_code)?;
                c.tags()
            })?;
            c.tags()
        })?;
        since!(c, 2, self.error_code, i16);
        c.tags()
    }
}

// ---------------------------------------------------------------------------------- CreateTopics

/// A manual replica assignment (accepted, ignored: there is one node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatableReplicaAssignment {
    /// Partition number.
    pub partition_index: i32,
    /// Brokers.
    pub broker_ids: Vec<i32>,
}

/// A configuration entry (name and value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatableTopicConfig {
    /// Config name, e.g. `retention.ms`.
    pub name: String,
    /// Its value.
    pub value: Option<String>,
}

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatableTopic {
    /// Topic name.
    pub name: String,
    /// Partitions, -1 for the default.
    pub num_partitions: i32,
    /// Replication factor, -1 for the default.
    pub replication_factor: i16,
    /// Manual assignments.
    pub assignments: Vec<CreatableReplicaAssignment>,
    /// Topic configuration.
    pub configs: Vec<CreatableTopicConfig>,
}

/// CreateTopics request (key 19).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    /// Topics.
    pub topics: Vec<CreatableTopic>,
    /// Time to wait.
    pub timeout_ms: i32,
    /// Only validate (v1+).
    pub validate_only: bool,
}

impl CreateTopicsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.i32(&mut t.num_partitions)?;
            c.i16(&mut t.replication_factor)?;
            c.array(&mut t.assignments, |c, a| {
                c.i32(&mut a.partition_index)?;
                c.array(&mut a.broker_ids, i32_item)?;
                c.tags()
            })?;
            c.array(&mut t.configs, |c, k| {
                c.string(&mut k.name)?;
                c.nstring(&mut k.value)?;
                c.tags()
            })?;
            c.tags()
        })?;
        c.i32(&mut self.timeout_ms)?;
        since!(c, 1, self.validate_only, bool);
        c.tags()
    }
}

/// A topic's result in a CreateTopics or DeleteTopics response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicResult {
    /// Topic name.
    pub name: String,
    /// Error code.
    pub error_code: i16,
    /// Error message (CreateTopics v1+).
    pub error_message: Option<String>,
}

/// CreateTopics response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicsResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<TopicResult>,
}

impl CreateTopicsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 2, self.throttle_time_ms, i32);
        c.array(&mut self.topics, |c, t| {
            c.string(&mut t.name)?;
            c.i16(&mut t.error_code)?;
            since!(c, 1, t.error_message, nstring);
            c.tags()
        })?;
        c.tags()
    }
}

// ---------------------------------------------------------------------------------- DeleteTopics

/// DeleteTopics request (key 20).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    /// Topics.
    pub topic_names: Vec<String>,
    /// Time to wait.
    pub timeout_ms: i32,
}

impl DeleteTopicsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.array(&mut self.topic_names, string_item)?;
        c.i32(&mut self.timeout_ms)?;
        c.tags()
    }
}

/// DeleteTopics response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicsResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Topics (`error_message` is not on the wire in v0..=4).
    pub responses: Vec<TopicResult>,
}

impl DeleteTopicsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.array(&mut self.responses, |c, t| {
            c.string(&mut t.name)?;
            c.i16(&mut t.error_code)?;
            c.tags()
        })?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------- DescribeConfigs

/// A resource whose configuration is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResource {
    /// 2 topic, 4 broker.
    pub resource_type: i8,
    /// Topic name or broker id.
    pub resource_name: String,
    /// Keys wanted; `None` = all.
    pub configuration_keys: Option<Vec<String>>,
}

/// DescribeConfigs request (key 32).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsRequest {
    /// Resources.
    pub resources: Vec<DescribeConfigsResource>,
    /// Include synonyms (v1+).
    pub include_synonyms: bool,
    /// Include documentation (v3+).
    pub include_documentation: bool,
}

impl DescribeConfigsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.array(&mut self.resources, |c, r| {
            c.i8(&mut r.resource_type)?;
            c.string(&mut r.resource_name)?;
            c.narray(&mut r.configuration_keys, string_item)?;
            c.tags()
        })?;
        since!(c, 1, self.include_synonyms, bool);
        since!(c, 3, self.include_documentation, bool);
        c.tags()
    }
}

/// A synonym of a configuration entry (v1+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsSynonym {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Source.
    pub source: i8,
}

/// One configuration entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsEntry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read only.
    pub read_only: bool,
    /// Is the default (v0 only).
    pub is_default: bool,
    /// Source: 1 topic config, 4 static broker config, 5 default (v1+).
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
    /// Synonyms (v1+).
    pub synonyms: Vec<DescribeConfigsSynonym>,
    /// Type (v3+): 3 int, 5 long, 2 string, ...
    pub config_type: i8,
    /// Documentation (v3+).
    pub documentation: Option<String>,
}

/// One resource's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResult {
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Entries.
    pub configs: Vec<DescribeConfigsEntry>,
}

/// DescribeConfigs response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Results.
    pub results: Vec<DescribeConfigsResult>,
}

impl DescribeConfigsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i32(&mut self.throttle_time_ms)?;
        c.array(&mut self.results, |c, r| {
            c.i16(&mut r.error_code)?;
            c.nstring(&mut r.error_message)?;
            c.i8(&mut r.resource_type)?;
            c.string(&mut r.resource_name)?;
            c.array(&mut r.configs, |c, e| {
                c.string(&mut e.name)?;
                c.nstring(&mut e.value)?;
                c.bool(&mut e.read_only)?;
                between!(c, 0, 0, e.is_default, bool);
                since!(c, 1, e.config_source, i8);
                c.bool(&mut e.is_sensitive)?;
                if c.version() >= 1 {
                    c.array(&mut e.synonyms, |c, s| {
                        c.string(&mut s.name)?;
                        c.nstring(&mut s.value)?;
                        c.i8(&mut s.source)?;
                        c.tags()
                    })?;
                }
                since!(c, 3, e.config_type, i8);
                since!(c, 3, e.documentation, nstring);
                c.tags()
            })?;
            c.tags()
        })?;
        c.tags()
    }
}

// -------------------------------------------------------------------------------- InitProducerId

/// InitProducerId request (key 22): an idempotent (or transactional) producer asks for its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// Transactional id; `None` for an idempotent producer.
    pub transactional_id: Option<String>,
    /// Transaction timeout.
    pub transaction_timeout_ms: i32,
    /// Current producer id, -1 if none (v3+).
    pub producer_id: i64,
    /// Current epoch, -1 if none (v3+).
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl InitProducerIdRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.nstring(&mut self.transactional_id)?;
        c.i32(&mut self.transaction_timeout_ms)?;
        since!(c, 3, self.producer_id, i64);
        since!(c, 3, self.producer_epoch, i16);
        c.tags()
    }
}

/// InitProducerId response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Assigned producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
}

impl InitProducerIdResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i32(&mut self.throttle_time_ms)?;
        c.i16(&mut self.error_code)?;
        c.i64(&mut self.producer_id)?;
        c.i16(&mut self.producer_epoch)?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------------ ListGroups

/// ListGroups request (key 16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsRequest {
    /// Only groups in these states (v4+); empty = all.
    pub states_filter: Vec<String>,
}

impl ListGroupsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        if c.version() >= 4 {
            c.array(&mut self.states_filter, string_item)?;
        }
        c.tags()
    }
}

/// A group in a ListGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`), empty for a group that only has offsets.
    pub protocol_type: String,
    /// State (v4+): `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`.
    pub group_state: String,
}

/// ListGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Groups.
    pub groups: Vec<ListedGroup>,
}

impl ListGroupsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.i16(&mut self.error_code)?;
        c.array(&mut self.groups, |c, g| {
            c.string(&mut g.group_id)?;
            c.string(&mut g.protocol_type)?;
            since!(c, 4, g.group_state, string);
            c.tags()
        })?;
        c.tags()
    }
}

// -------------------------------------------------------------------------------- DescribeGroups

/// DescribeGroups request (key 15).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    /// Group ids.
    pub groups: Vec<String>,
    /// Include authorized operations (v3+).
    pub include_authorized_operations: bool,
}

impl DescribeGroupsRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.array(&mut self.groups, string_item)?;
        since!(c, 3, self.include_authorized_operations, bool);
        c.tags()
    }
}

/// A member in a DescribeGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static member id (v4+).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the group's protocol.
    pub member_metadata: Bytes,
    /// Current assignment.
    pub member_assignment: Bytes,
}

/// A group in a DescribeGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedGroup {
    /// Error code.
    pub error_code: i16,
    /// Group id.
    pub group_id: String,
    /// State: `Dead` (unknown), `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`.
    pub group_state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol_data: String,
    /// Members.
    pub members: Vec<DescribedGroupMember>,
    /// Authorized operations (v3+).
    pub authorized_operations: i32,
}

/// DescribeGroups response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Groups.
    pub groups: Vec<DescribedGroup>,
}

impl DescribeGroupsResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        since!(c, 1, self.throttle_time_ms, i32);
        c.array(&mut self.groups, |c, g| {
            c.i16(&mut g.error_code)?;
            c.string(&mut g.group_id)?;
            c.string(&mut g.group_state)?;
            c.string(&mut g.protocol_type)?;
            c.string(&mut g.protocol_data)?;
            c.array(&mut g.members, |c, m| {
                c.string(&mut m.member_id)?;
                since!(c, 4, m.group_instance_id, nstring);
                c.string(&mut m.client_id)?;
                c.string(&mut m.client_host)?;
                c.bytes(&mut m.member_metadata)?;
                c.bytes(&mut m.member_assignment)?;
                c.tags()
            })?;
            since!(c, 3, g.authorized_operations, i32);
            c.tags()
        })?;
        c.tags()
    }
}

// --------------------------------------------------------------------------------- SaslHandshake

/// SaslHandshake request (key 17): the mechanism the client wants. After a v0 handshake the
/// SASL tokens follow as bare size-prefixed frames (see [`super::encode_sasl_token`]); after
/// v1 they travel in SaslAuthenticate requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslHandshakeRequest {
    /// Mechanism name (`PLAIN`, `SCRAM-SHA-256`, ...).
    pub mechanism: String,
}

impl SaslHandshakeRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.string(&mut self.mechanism)?;
        c.tags()
    }
}

/// SaslHandshake response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslHandshakeResponse {
    /// Error code (33 UNSUPPORTED_SASL_MECHANISM when the mechanism is not enabled).
    pub error_code: i16,
    /// The mechanisms enabled on this listener.
    pub mechanisms: Vec<String>,
}

impl SaslHandshakeResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i16(&mut self.error_code)?;
        c.array(&mut self.mechanisms, string_item)?;
        c.tags()
    }
}

// ------------------------------------------------------------------------------ SaslAuthenticate

/// SaslAuthenticate request (key 36): one SASL token from the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslAuthenticateRequest {
    /// The token.
    pub auth_bytes: Bytes,
}

impl SaslAuthenticateRequest {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.bytes(&mut self.auth_bytes)?;
        c.tags()
    }
}

/// SaslAuthenticate response: the server's token, or why authentication failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslAuthenticateResponse {
    /// Error code (58 SASL_AUTHENTICATION_FAILED for bad credentials).
    pub error_code: i16,
    /// Error message for the client.
    pub error_message: Option<String>,
    /// The server's token.
    pub auth_bytes: Bytes,
    /// How long the session may live before the client must re-authenticate; 0 = forever
    /// (v1+).
    pub session_lifetime_ms: i64,
}

impl SaslAuthenticateResponse {
    pub(crate) fn io<C: Io>(&mut self, c: &mut C) -> R {
        c.i16(&mut self.error_code)?;
        c.nstring(&mut self.error_message)?;
        c.bytes(&mut self.auth_bytes)?;
        since!(c, 1, self.session_lifetime_ms, i64);
        c.tags()
    }
}
