//! One function per Kafka API: a decoded request in, a response out, on the log and the group
//! coordinator. Blocking log calls (appends and stream changes fsync; reads touch files) run on
//! the blocking pool.

use super::KafkaBroker;
use crate::security::{Action, Principal};
use bytes::{Bytes, BytesMut};
use codecs::kafka::*;
use routes::store::log::{Log, LogError, LogRecord, StoredRecord, StreamConfig, MAX_PARTITIONS};
use routes::Destination;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Cluster id announced in Metadata responses.
const CLUSTER_ID: &str = "gateway";
/// ConfigSource values of DescribeConfigs.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// ConfigType values of DescribeConfigs (v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
/// Longest wait a Fetch may ask for (a client asking for more gets this).
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The Kafka error code for a log error.
fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::StreamNotFound(_) | LogError::PartitionNotFound { .. } => {
            error_code::UNKNOWN_TOPIC_OR_PARTITION
        }
        LogError::InvalidStreamName(_) => error_code::INVALID_TOPIC_EXCEPTION,
        LogError::InvalidGroupName(_) => error_code::INVALID_GROUP_ID,
        LogError::MetadataTooLarge { .. } => error_code::OFFSET_METADATA_TOO_LARGE,
        LogError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
        LogError::InvalidConfig(_) => error_code::INVALID_CONFIG,
        LogError::BatchTooLarge { .. } => error_code::MESSAGE_TOO_LARGE,
        LogError::EmptyBatch => error_code::CORRUPT_MESSAGE,
        _ => error_code::KAFKA_STORAGE_ERROR,
    }
}

/// Runs a blocking log operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    log: &Arc<Log>,
    f: impl FnOnce(&Log) -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    let log = Arc::clone(log);
    match tokio::task::spawn_blocking(move || f(&log)).await {
        Ok(r) => r,
        Err(e) => Err(LogError::InvalidConfig(format!("log task failed: {e}"))),
    }
}

/// May `principal` do `action` on Kafka topic `topic`? Topics are authorized by the
/// `[[authorization]]` entries written `topic = "pattern"` (a stream is the log behind a
/// topic name). No principal (a request before authentication): never.
fn may(principal: Option<&Principal>, action: Action, topic: &str) -> bool {
    principal.is_some_and(|p| p.may(action, &Destination::topic(topic)))
}

/// Kafka's DESCRIBE on a topic, which READ, WRITE and the admin rights imply.
fn may_describe(principal: Option<&Principal>, topic: &str) -> bool {
    [Action::Read, Action::Write, Action::Admin]
        .into_iter()
        .any(|a| may(principal, a, topic))
}

/// May `principal` use consumer group `group` (Kafka's READ on the group: join, sync,
/// heartbeat, leave, commit, fetch offsets, describe)? Checked against the `group = "pattern"`
/// entries; without any, every principal may.
fn may_group(principal: Option<&Principal>, group: &str) -> bool {
    principal.is_some_and(|p| p.may_group(Action::Read, group))
}

const GROUP_DENIED: i16 = error_code::GROUP_AUTHORIZATION_FAILED;

fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl KafkaBroker {
    /// Answers one request for `principal`; `None` when no response is due (Produce with
    /// acks 0). Without a principal (before authentication) every topic is refused.
    /// SaslHandshake and SaslAuthenticate belong to the session and are refused here.
    pub async fn handle(
        &self,
        request: KafkaRequest,
        peer: SocketAddr,
        principal: Option<&Principal>,
    ) -> Option<KafkaResponse> {
        let version = request.header.api_version;
        let correlation_id = request.header.correlation_id;
        let unsupported = request.version_unsupported();
        let client_id = request.header.client_id.clone().unwrap_or_default();
        tracing::debug!(
            %peer,
            api_key = request.header.api_key,
            api_version = version,
            correlation_id,
            body = ?request.body,
            "Kafka request"
        );
        let body = match request.body {
            KafkaRequestBody::ApiVersions(_) => {
                if unsupported {
                    // A v0 body, so that any client can read which versions to use.
                    return Some(KafkaResponse {
                        correlation_id,
                        api_version: 0,
                        body: KafkaResponseBody::ApiVersions(ApiVersionsResponse {
                            error_code: error_code::UNSUPPORTED_VERSION,
                            api_keys: SUPPORTED_APIS.to_vec(),
                            throttle_time_ms: 0,
                        }),
                    });
                }
                KafkaResponseBody::ApiVersions(ApiVersionsResponse {
                    error_code: error_code::NONE,
                    api_keys: SUPPORTED_APIS.to_vec(),
                    throttle_time_ms: 0,
                })
            }
            KafkaRequestBody::Metadata(r) => {
                KafkaResponseBody::Metadata(self.metadata(r, principal).await)
            }
            KafkaRequestBody::Produce(r) => {
                let acks = r.acks;
                let resp = self.produce(r, principal).await;
                if acks == 0 {
                    return None;
                }
                KafkaResponseBody::Produce(resp)
            }
            KafkaRequestBody::Fetch(r) => {
                KafkaResponseBody::Fetch(self.fetch(r, version, principal).await)
            }
            KafkaRequestBody::ListOffsets(r) => {
                KafkaResponseBody::ListOffsets(self.list_offsets(r, version, principal).await)
            }
            KafkaRequestBody::FindCoordinator(r)
                if r.key_type == 0 && !may_group(principal, &r.key) =>
            {
                KafkaResponseBody::FindCoordinator(FindCoordinatorResponse {
                    error_code: GROUP_DENIED,
                    error_message: Some(format!("not authorized to use group {}", r.key)),
                    node_id: -1,
                    port: -1,
                    ..Default::default()
                })
            }
            KafkaRequestBody::JoinGroup(r) if !may_group(principal, &r.group_id) => {
                KafkaResponseBody::JoinGroup(JoinGroupResponse {
                    error_code: GROUP_DENIED,
                    generation_id: -1,
                    member_id: r.member_id,
                    ..Default::default()
                })
            }
            KafkaRequestBody::SyncGroup(r) if !may_group(principal, &r.group_id) => {
                KafkaResponseBody::SyncGroup(SyncGroupResponse {
                    error_code: GROUP_DENIED,
                    ..Default::default()
                })
            }
            KafkaRequestBody::Heartbeat(r) if !may_group(principal, &r.group_id) => {
                KafkaResponseBody::Heartbeat(HeartbeatResponse {
                    throttle_time_ms: 0,
                    error_code: GROUP_DENIED,
                })
            }
            KafkaRequestBody::LeaveGroup(r) if !may_group(principal, &r.group_id) => {
                KafkaResponseBody::LeaveGroup(LeaveGroupResponse {
                    throttle_time_ms: 0,
                    error_code: GROUP_DENIED,
                    members: Vec::new(),
                })
            }
            KafkaRequestBody::FindCoordinator(_) => {
                KafkaResponseBody::FindCoordinator(FindCoordinatorResponse {
                    throttle_time_ms: 0,
                    error_code: error_code::NONE,
                    error_message: None,
                    node_id: self.settings.node_id,
                    host: self.settings.advertised_host.clone(),
                    port: i32::from(self.settings.advertised_port),
                })
            }
            KafkaRequestBody::JoinGroup(r) => {
                let host = format!("/{}", peer.ip());
                KafkaResponseBody::JoinGroup(self.groups.join(r, version, &client_id, &host).await)
            }
            KafkaRequestBody::SyncGroup(r) => {
                KafkaResponseBody::SyncGroup(self.groups.sync(r).await)
            }
            KafkaRequestBody::Heartbeat(r) => KafkaResponseBody::Heartbeat(HeartbeatResponse {
                throttle_time_ms: 0,
                error_code: self
                    .groups
                    .heartbeat(&r.group_id, &r.member_id, r.generation_id),
            }),
            KafkaRequestBody::LeaveGroup(r) => {
                KafkaResponseBody::LeaveGroup(self.leave(r, version))
            }
            KafkaRequestBody::OffsetCommit(r) => {
                KafkaResponseBody::OffsetCommit(self.offset_commit(r, principal).await)
            }
            KafkaRequestBody::OffsetFetch(r) => {
                KafkaResponseBody::OffsetFetch(self.offset_fetch(r, principal))
            }
            KafkaRequestBody::CreateTopics(r) => {
                KafkaResponseBody::CreateTopics(self.create_topics(r, principal).await)
            }
            KafkaRequestBody::DeleteTopics(r) => {
                KafkaResponseBody::DeleteTopics(self.delete_topics(r, principal).await)
            }
            KafkaRequestBody::DescribeConfigs(r) => {
                KafkaResponseBody::DescribeConfigs(self.describe_configs(r, principal))
            }
            KafkaRequestBody::InitProducerId(r) => {
                KafkaResponseBody::InitProducerId(self.init_producer_id(r))
            }
            KafkaRequestBody::ListGroups(r) => {
                let mut listed = self.list_groups(r);
                listed.groups.retain(|g| may_group(principal, &g.group_id));
                KafkaResponseBody::ListGroups(listed)
            }
            KafkaRequestBody::DescribeGroups(r) => {
                let mut described = self.describe_groups(r);
                for g in &mut described.groups {
                    if !may_group(principal, &g.group_id) {
                        *g = DescribedGroup {
                            error_code: GROUP_DENIED,
                            group_id: std::mem::take(&mut g.group_id),
                            authorized_operations: i32::MIN,
                            ..Default::default()
                        };
                    }
                }
                KafkaResponseBody::DescribeGroups(described)
            }
            // The session runs the SASL exchange; here (out of turn) it is an illegal state.
            KafkaRequestBody::SaslHandshake(_) => {
                KafkaResponseBody::SaslHandshake(SaslHandshakeResponse {
                    error_code: error_code::ILLEGAL_SASL_STATE,
                    mechanisms: Vec::new(),
                })
            }
            KafkaRequestBody::SaslAuthenticate(_) => {
                KafkaResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                    error_code: error_code::ILLEGAL_SASL_STATE,
                    error_message: Some("unexpected SaslAuthenticate".to_string()),
                    ..Default::default()
                })
            }
        };
        if !matches!(body, KafkaResponseBody::Fetch(_)) {
            tracing::debug!(%peer, correlation_id, body = ?body, "Kafka response");
        }
        Some(KafkaResponse {
            correlation_id,
            api_version: version,
            body,
        })
    }

    /// Idempotent producers get a fresh id (records are stored as sent; sequence numbers are
    /// not checked). Transactions are not supported.
    fn init_producer_id(&self, r: InitProducerIdRequest) -> InitProducerIdResponse {
        if r.transactional_id.is_some() {
            return InitProducerIdResponse {
                error_code: error_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                producer_id: -1,
                producer_epoch: -1,
                throttle_time_ms: 0,
            };
        }
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            producer_id: self.next_producer_id(),
            producer_epoch: 0,
        }
    }

    /// Groups with members (their state), then groups that only have committed offsets
    /// (`Empty`), as Kafka lists groups whose offsets it keeps.
    fn list_groups(&self, r: ListGroupsRequest) -> ListGroupsResponse {
        let mut groups: Vec<ListedGroup> = self
            .groups
            .list()
            .into_iter()
            .map(|(group_id, protocol_type, state)| ListedGroup {
                group_id,
                protocol_type,
                group_state: state.to_string(),
            })
            .collect();
        for g in self.log.groups() {
            if !groups.iter().any(|l| l.group_id == g) {
                groups.push(ListedGroup {
                    group_id: g,
                    protocol_type: "consumer".to_string(),
                    group_state: "Empty".to_string(),
                });
            }
        }
        if !r.states_filter.is_empty() {
            groups.retain(|g| r.states_filter.contains(&g.group_state));
        }
        ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            groups,
        }
    }

    /// Groups with members as the coordinator sees them; groups with only offsets are
    /// `Empty`, unknown ones `Dead` (Kafka's answer before DescribeGroups v6).
    fn describe_groups(&self, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
        let known_offsets = self.log.groups();
        let groups = r
            .groups
            .into_iter()
            .map(|id| {
                self.groups.describe(&id).unwrap_or_else(|| {
                    let (state, protocol_type) = if known_offsets.contains(&id) {
                        ("Empty", "consumer")
                    } else {
                        ("Dead", "")
                    };
                    DescribedGroup {
                        error_code: error_code::NONE,
                        group_id: id,
                        group_state: state.to_string(),
                        protocol_type: protocol_type.to_string(),
                        protocol_data: String::new(),
                        members: Vec::new(),
                        authorized_operations: i32::MIN,
                    }
                })
            })
            .collect();
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    fn broker_entry(&self) -> MetadataBroker {
        MetadataBroker {
            node_id: self.settings.node_id,
            host: self.settings.advertised_host.clone(),
            port: i32::from(self.settings.advertised_port),
            rack: None,
        }
    }

    fn topic_metadata(&self, name: String, partitions: u32) -> MetadataTopic {
        let node = self.settings.node_id;
        MetadataTopic {
            error_code: error_code::NONE,
            name,
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| MetadataPartition {
                    error_code: error_code::NONE,
                    partition_index: p as i32,
                    leader_id: node,
                    leader_epoch: 0,
                    replica_nodes: vec![node],
                    isr_nodes: vec![node],
                    offline_replicas: Vec::new(),
                })
                .collect(),
            topic_authorized_operations: i32::MIN,
        }
    }

    async fn metadata(
        &self,
        r: MetadataRequest,
        principal: Option<&Principal>,
    ) -> MetadataResponse {
        let names = match r.topics {
            // All topics: those the principal may see, as Kafka lists them.
            None => self
                .log
                .streams()
                .into_iter()
                .filter(|n| may_describe(principal, n))
                .collect(),
            Some(names) => names,
        };
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let visible = may_describe(principal, &name);
            if let Some(cfg) = self.log.stream_config(&name) {
                if visible {
                    topics.push(self.topic_metadata(name, cfg.partitions));
                } else {
                    topics.push(MetadataTopic {
                        error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                        name,
                        ..Default::default()
                    });
                }
                continue;
            }
            let error = if !valid_topic_name(&name) {
                error_code::INVALID_TOPIC_EXCEPTION
            } else if self.settings.auto_create_streams
                && r.allow_auto_topic_creation
                && !may(principal, Action::Admin, &name)
            {
                // Auto-creation needs the admin right, as Kafka's CREATE.
                if visible {
                    error_code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    error_code::TOPIC_AUTHORIZATION_FAILED
                }
            } else if self.settings.auto_create_streams && r.allow_auto_topic_creation {
                let partitions = self.settings.default_partitions;
                let n = name.clone();
                match blocking(&self.log, move |log| {
                    log.create_stream(&n, StreamConfig::new(partitions))
                })
                .await
                {
                    Ok(()) => {
                        tracing::info!(stream = %name, partitions, "stream auto-created for a Kafka client");
                        let partitions = self
                            .log
                            .stream_config(&name)
                            .map_or(partitions, |c| c.partitions);
                        topics.push(self.topic_metadata(name, partitions));
                        continue;
                    }
                    Err(e) => log_error_code(&e),
                }
            } else if visible {
                error_code::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                error_code::TOPIC_AUTHORIZATION_FAILED
            };
            topics.push(MetadataTopic {
                error_code: error,
                name,
                ..Default::default()
            });
        }
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![self.broker_entry()],
            cluster_id: Some(CLUSTER_ID.to_string()),
            controller_id: self.settings.node_id,
            topics,
            cluster_authorized_operations: i32::MIN,
        }
    }

    async fn produce(&self, r: ProduceRequest, principal: Option<&Principal>) -> ProduceResponse {
        let mut responses = Vec::with_capacity(r.topic_data.len());
        let limits = RecordLimits {
            max_uncompressed_bytes: self.settings.limits.max_frame_bytes.max(1 << 20),
        };
        for topic in r.topic_data {
            let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
            let allowed = may(principal, Action::Write, &topic.name);
            for p in topic.partition_data {
                let appended = if !allowed {
                    Err((
                        error_code::TOPIC_AUTHORIZATION_FAILED,
                        format!("not authorized to write to topic {}", topic.name),
                    ))
                } else if matches!(r.acks, -1..=1) {
                    self.append(&topic.name, p.index, p.records, &limits).await
                } else {
                    Err((
                        error_code::INVALID_REQUIRED_ACKS,
                        format!("acks must be -1, 0 or 1, not {}", r.acks),
                    ))
                };
                let (error_code, base_offset, message) = match appended {
                    Ok(offset) => (error_code::NONE, offset as i64, None),
                    Err((code, message)) => (code, -1, Some(message)),
                };
                let log_start_offset = u32::try_from(p.index)
                    .ok()
                    .and_then(|i| self.log.earliest_offset(&topic.name, i).ok())
                    .map_or(-1, |o| o as i64);
                partition_responses.push(ProducePartitionResponse {
                    index: p.index,
                    error_code,
                    base_offset,
                    log_append_time_ms: -1,
                    log_start_offset,
                    record_errors: Vec::new(),
                    error_message: message,
                });
            }
            responses.push(ProduceTopicResponse {
                name: topic.name,
                partition_responses,
            });
        }
        ProduceResponse {
            responses,
            throttle_time_ms: 0,
        }
    }

    /// Appends one partition's batches as one log batch; returns the first offset.
    async fn append(
        &self,
        stream: &str,
        partition: i32,
        records: Option<Bytes>,
        limits: &RecordLimits,
    ) -> Result<u64, (i16, String)> {
        let unknown = || {
            (
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("{stream}-{partition} does not exist"),
            )
        };
        let partitions = self
            .log
            .stream_config(stream)
            .ok_or_else(unknown)?
            .partitions;
        let partition = u32::try_from(partition)
            .ok()
            .filter(|p| *p < partitions)
            .ok_or_else(unknown)?;
        let data = records.unwrap_or_default();
        let batches = decode_record_batches(&data, limits).map_err(|e| {
            let code = match e {
                KafkaDecodeError::UnsupportedMagic { .. } => {
                    error_code::UNSUPPORTED_FOR_MESSAGE_FORMAT
                }
                _ => error_code::CORRUPT_MESSAGE,
            };
            (code, e.to_string())
        })?;
        let now = now_ms();
        let mut log_records = Vec::new();
        for batch in batches {
            if batch.is_control() || batch.is_transactional() {
                return Err((
                    error_code::INVALID_REQUEST,
                    "transactions are not supported".to_string(),
                ));
            }
            let log_append_time = batch.attributes & 0x08 != 0;
            for rec in batch.records {
                let timestamp_ms = if log_append_time || rec.timestamp < 0 {
                    now
                } else {
                    rec.timestamp
                };
                log_records.push(LogRecord {
                    timestamp_ms,
                    key: rec.key,
                    value: rec.value,
                    headers: rec
                        .headers
                        .into_iter()
                        .map(|h| (h.key, h.value.unwrap_or_default()))
                        .collect(),
                });
            }
        }
        if log_records.is_empty() {
            return Err((error_code::CORRUPT_MESSAGE, "no records".to_string()));
        }
        let name = stream.to_string();
        blocking(&self.log, move |log| {
            log.append(&name, partition, &log_records)
        })
        .await
        .map_err(|e| (log_error_code(&e), e.to_string()))
    }

    async fn fetch(
        &self,
        r: FetchRequest,
        version: i16,
        principal: Option<&Principal>,
    ) -> FetchResponse {
        let denied: Arc<HashSet<String>> = Arc::new(
            r.topics
                .iter()
                .filter(|t| !may(principal, Action::Read, &t.topic))
                .map(|t| t.topic.clone())
                .collect(),
        );
        if r.session_id != 0 || r.session_epoch > 0 {
            // No fetch sessions are ever created (every response has session id 0), so an
            // incremental fetch names a session this node does not know.
            return FetchResponse {
                error_code: error_code::FETCH_SESSION_ID_NOT_FOUND,
                ..Default::default()
            };
        }
        let wait = Duration::from_millis(r.max_wait_ms.max(0) as u64).min(MAX_FETCH_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        let mut watchers = Vec::new();
        for t in r.topics.iter().filter(|t| !denied.contains(&t.topic)) {
            for p in &t.partitions {
                if let Ok(rx) = u32::try_from(p.partition)
                    .map_err(|_| ())
                    .and_then(|i| self.log.subscribe(&t.topic, i).map_err(|_| ()))
                {
                    watchers.push(rx);
                }
            }
        }
        let request = Arc::new(r);
        loop {
            for w in &mut watchers {
                w.borrow_and_update();
            }
            let req = Arc::clone(&request);
            let d = Arc::clone(&denied);
            let (response, bytes) =
                blocking(&self.log, move |log| Ok(read_fetch(log, &req, version, &d)))
                    .await
                    .unwrap_or_default();
            let enough = bytes >= request.min_bytes.max(1) as usize;
            if enough || tokio::time::Instant::now() >= deadline || watchers.is_empty() {
                return response;
            }
            let changed =
                futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                // Deadline: answer with what there is (read again: data may have arrived
                // between the read and the wait).
                let req = Arc::clone(&request);
                let d = Arc::clone(&denied);
                return blocking(&self.log, move |log| Ok(read_fetch(log, &req, version, &d)))
                    .await
                    .map_or_else(|_| FetchResponse::default(), |(r, _)| r);
            }
        }
    }

    async fn list_offsets(
        &self,
        r: ListOffsetsRequest,
        version: i16,
        principal: Option<&Principal>,
    ) -> ListOffsetsResponse {
        let denied: HashSet<String> = r
            .topics
            .iter()
            .filter(|t| !may_describe(principal, &t.name))
            .map(|t| t.name.clone())
            .collect();
        let log = Arc::clone(&self.log);
        blocking(&log, move |log| Ok(list_offsets(log, r, version, &denied)))
            .await
            .unwrap_or_default()
    }

    fn leave(&self, r: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        if version <= 2 {
            return LeaveGroupResponse {
                throttle_time_ms: 0,
                error_code: self.groups.leave(&r.group_id, &r.member_id),
                members: Vec::new(),
            };
        }
        let members = r
            .members
            .into_iter()
            .map(|m| LeaveGroupMemberResponse {
                error_code: self.groups.leave(&r.group_id, &m.member_id),
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
            })
            .collect();
        LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            members,
        }
    }

    async fn offset_commit(
        &self,
        r: OffsetCommitRequest,
        principal: Option<&Principal>,
    ) -> OffsetCommitResponse {
        let check = if may_group(principal, &r.group_id) {
            self.groups
                .check_commit(&r.group_id, &r.member_id, r.generation_id)
        } else {
            GROUP_DENIED
        };
        let mut topics = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let readable = may(principal, Action::Read, &t.name);
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let code = if check == GROUP_DENIED {
                    GROUP_DENIED
                } else if !readable {
                    error_code::TOPIC_AUTHORIZATION_FAILED
                } else if check != error_code::NONE {
                    check
                } else if p.committed_offset < 0 {
                    error_code::OFFSET_OUT_OF_RANGE
                } else if let Ok(partition) = u32::try_from(p.partition_index) {
                    let (group, stream) = (r.group_id.clone(), t.name.clone());
                    let metadata = p.committed_metadata.clone().unwrap_or_default();
                    let offset = p.committed_offset as u64;
                    match blocking(&self.log, move |log| {
                        log.commit_offset(&group, &stream, partition, offset, &metadata)
                    })
                    .await
                    {
                        Ok(()) => error_code::NONE,
                        Err(e) => log_error_code(&e),
                    }
                } else {
                    error_code::UNKNOWN_TOPIC_OR_PARTITION
                };
                partitions.push(OffsetCommitPartitionResponse {
                    partition_index: p.partition_index,
                    error_code: code,
                });
            }
            topics.push(OffsetCommitTopicResponse {
                name: t.name,
                partitions,
            });
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let lag: u64 = super::group_lag(&self.log, &r.group_id)
                .iter()
                .map(|l| l.lag)
                .sum();
            tracing::debug!(group = %r.group_id, lag, "Kafka offsets committed");
        }
        OffsetCommitResponse {
            throttle_time_ms: 0,
            topics,
        }
    }

    fn offset_fetch(
        &self,
        r: OffsetFetchRequest,
        principal: Option<&Principal>,
    ) -> OffsetFetchResponse {
        if !may_group(principal, &r.group_id) {
            // The top-level error (v2+), and each partition's for v0-1.
            let topics = r
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| OffsetFetchTopicResponse {
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| OffsetFetchPartitionResponse {
                            partition_index: p,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error_code: GROUP_DENIED,
                        })
                        .collect(),
                    name: t.name,
                })
                .collect();
            return OffsetFetchResponse {
                throttle_time_ms: 0,
                topics,
                error_code: GROUP_DENIED,
            };
        }
        let entry = |partition_index: i32, found: Option<(u64, String)>| {
            let (offset, metadata) = found.map_or((-1, String::new()), |(o, m)| (o as i64, m));
            OffsetFetchPartitionResponse {
                partition_index,
                committed_offset: offset,
                committed_leader_epoch: -1,
                metadata: Some(metadata),
                error_code: error_code::NONE,
            }
        };
        let topics = match r.topics {
            Some(topics) => topics
                .into_iter()
                .map(|t| OffsetFetchTopicResponse {
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            if !may_describe(principal, &t.name) {
                                return OffsetFetchPartitionResponse {
                                    error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                                    ..entry(p, None)
                                };
                            }
                            let found = u32::try_from(p)
                                .ok()
                                .and_then(|p| self.log.committed_offset(&r.group_id, &t.name, p));
                            entry(p, found)
                        })
                        .collect(),
                    name: t.name,
                })
                .collect(),
            None => {
                let mut by_stream: BTreeMap<String, Vec<OffsetFetchPartitionResponse>> =
                    BTreeMap::new();
                for c in self.log.group_offsets(&r.group_id) {
                    if !may_describe(principal, &c.stream) {
                        continue;
                    }
                    by_stream
                        .entry(c.stream)
                        .or_default()
                        .push(entry(c.partition as i32, Some((c.offset, c.metadata))));
                }
                by_stream
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchTopicResponse { name, partitions })
                    .collect()
            }
        };
        OffsetFetchResponse {
            throttle_time_ms: 0,
            topics,
            error_code: error_code::NONE,
        }
    }

    async fn create_topics(
        &self,
        r: CreateTopicsRequest,
        principal: Option<&Principal>,
    ) -> CreateTopicsResponse {
        let mut topics = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let result = if may(principal, Action::Admin, &t.name) {
                self.create_topic(&t, r.validate_only).await
            } else {
                Err((
                    error_code::TOPIC_AUTHORIZATION_FAILED,
                    format!("not authorized to create topic {}", t.name),
                ))
            };
            let (error_code, error_message) = match result {
                Ok(()) => (error_code::NONE, None),
                Err((code, message)) => (code, Some(message)),
            };
            topics.push(TopicResult {
                name: t.name,
                error_code,
                error_message,
            });
        }
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics,
        }
    }

    async fn create_topic(
        &self,
        t: &CreatableTopic,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        if !valid_topic_name(&t.name) {
            return Err((
                error_code::INVALID_TOPIC_EXCEPTION,
                format!("invalid topic name {:?}", t.name),
            ));
        }
        if self.log.stream_config(&t.name).is_some() {
            return Err((
                error_code::TOPIC_ALREADY_EXISTS,
                format!("topic {:?} already exists", t.name),
            ));
        }
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i64
        } else if t.num_partitions == -1 {
            i64::from(self.settings.default_partitions)
        } else {
            i64::from(t.num_partitions)
        };
        if !(1..=i64::from(MAX_PARTITIONS)).contains(&partitions) {
            return Err((
                error_code::INVALID_PARTITIONS,
                format!("partitions must be between 1 and {MAX_PARTITIONS}"),
            ));
        }
        if !(t.replication_factor == -1 || t.replication_factor == 1) {
            return Err((
                error_code::INVALID_REPLICATION_FACTOR,
                "replication factor must be 1: the gateway is a single node".to_string(),
            ));
        }
        let mut cfg = StreamConfig::new(partitions as u32);
        for c in &t.configs {
            let value = c.value.as_deref().unwrap_or("");
            let parse = || -> Result<Option<u64>, (i16, String)> {
                let v: i64 = value.parse().map_err(|_| {
                    (
                        error_code::INVALID_CONFIG,
                        format!("{} must be an integer, found {value:?}", c.name),
                    )
                })?;
                Ok(u64::try_from(v).ok())
            };
            match c.name.as_str() {
                "retention.ms" => cfg.retention_ms = parse()?,
                "retention.bytes" => cfg.retention_bytes = parse()?,
                "cleanup.policy" if value == "delete" => {}
                other => {
                    return Err((
                        error_code::INVALID_CONFIG,
                        format!(
                            "unsupported topic config {other:?}={value:?} (supported: \
                             retention.ms, retention.bytes, cleanup.policy=delete)"
                        ),
                    ))
                }
            }
        }
        if validate_only {
            return Ok(());
        }
        let name = t.name.clone();
        blocking(&self.log, move |log| log.create_stream(&name, cfg))
            .await
            .map_err(|e| (log_error_code(&e), e.to_string()))?;
        tracing::info!(stream = %t.name, partitions, "stream created by a Kafka client");
        Ok(())
    }

    async fn delete_topics(
        &self,
        r: DeleteTopicsRequest,
        principal: Option<&Principal>,
    ) -> DeleteTopicsResponse {
        let mut responses = Vec::with_capacity(r.topic_names.len());
        for name in r.topic_names {
            if !may(principal, Action::Admin, &name) {
                responses.push(TopicResult {
                    name,
                    error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                    error_message: None,
                });
                continue;
            }
            let n = name.clone();
            let error_code = match blocking(&self.log, move |log| log.delete_stream(&n)).await {
                Ok(()) => {
                    tracing::info!(stream = %name, "stream deleted by a Kafka client");
                    error_code::NONE
                }
                Err(e) => log_error_code(&e),
            };
            responses.push(TopicResult {
                name,
                error_code,
                error_message: None,
            });
        }
        DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses,
        }
    }

    fn describe_configs(
        &self,
        r: DescribeConfigsRequest,
        principal: Option<&Principal>,
    ) -> DescribeConfigsResponse {
        let results = r
            .resources
            .into_iter()
            .map(|res| {
                if res.resource_type == 2 && !may_describe(principal, &res.resource_name) {
                    return DescribeConfigsResult {
                        error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                        error_message: Some(format!(
                            "not authorized to describe topic {}",
                            res.resource_name
                        )),
                        resource_type: res.resource_type,
                        resource_name: res.resource_name,
                        configs: Vec::new(),
                    };
                }
                self.describe_resource(res)
            })
            .collect();
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
        }
    }

    fn describe_resource(&self, res: DescribeConfigsResource) -> DescribeConfigsResult {
        let entry = |name: &str, value: String, source: i8, config_type: i8| DescribeConfigsEntry {
            name: name.to_string(),
            value: Some(value),
            read_only: source != SOURCE_TOPIC && source != SOURCE_DEFAULT,
            is_default: source == SOURCE_DEFAULT,
            config_source: source,
            is_sensitive: false,
            synonyms: Vec::new(),
            config_type,
            documentation: None,
        };
        let opt = |v: Option<u64>| {
            v.map_or((String::from("-1"), SOURCE_DEFAULT), |v| {
                (v.to_string(), SOURCE_TOPIC)
            })
        };
        let mut result = DescribeConfigsResult {
            error_code: error_code::NONE,
            error_message: None,
            resource_type: res.resource_type,
            resource_name: res.resource_name.clone(),
            configs: Vec::new(),
        };
        let configs = match res.resource_type {
            2 => match self.log.stream_config(&res.resource_name) {
                Some(cfg) => {
                    let (ms, ms_source) = opt(cfg.retention_ms);
                    let (bytes, bytes_source) = opt(cfg.retention_bytes);
                    vec![
                        entry("retention.ms", ms, ms_source, TYPE_LONG),
                        entry("retention.bytes", bytes, bytes_source, TYPE_LONG),
                        entry(
                            "cleanup.policy",
                            "delete".to_string(),
                            SOURCE_DEFAULT,
                            TYPE_STRING,
                        ),
                    ]
                }
                None => {
                    result.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                    result.error_message =
                        Some(format!("topic {:?} does not exist", res.resource_name));
                    return result;
                }
            },
            4 => vec![
                entry(
                    "num.partitions",
                    self.settings.default_partitions.to_string(),
                    SOURCE_STATIC_BROKER,
                    TYPE_INT,
                ),
                entry(
                    "auto.create.topics.enable",
                    self.settings.auto_create_streams.to_string(),
                    SOURCE_STATIC_BROKER,
                    TYPE_BOOLEAN,
                ),
            ],
            other => {
                result.error_code = error_code::INVALID_REQUEST;
                result.error_message = Some(format!("unsupported resource type {other}"));
                return result;
            }
        };
        result.configs = match &res.configuration_keys {
            Some(keys) => configs
                .into_iter()
                .filter(|c| keys.contains(&c.name))
                .collect(),
            None => configs,
        };
        result
    }
}

/// Reads what a Fetch asks for; returns the response and the record bytes in it.
fn read_fetch(
    log: &Log,
    r: &FetchRequest,
    version: i16,
    denied: &HashSet<String>,
) -> (FetchResponse, usize) {
    let mut total = 0usize;
    let budget = r.max_bytes.max(0) as usize;
    let mut responses = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut out = FetchPartitionResponse {
                partition_index: p.partition,
                error_code: error_code::NONE,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                aborted_transactions: None,
                preferred_read_replica: -1,
                records: Some(Bytes::new()),
            };
            if denied.contains(&t.topic) {
                out.error_code = error_code::TOPIC_AUTHORIZATION_FAILED;
                partitions.push(out);
                continue;
            }
            let Ok(partition) = u32::try_from(p.partition) else {
                out.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                partitions.push(out);
                continue;
            };
            let (earliest, latest) = match (
                log.earliest_offset(&t.topic, partition),
                log.latest_offset(&t.topic, partition),
            ) {
                (Ok(e), Ok(l)) => (e, l),
                (Err(e), _) | (_, Err(e)) => {
                    out.error_code = log_error_code(&e);
                    partitions.push(out);
                    continue;
                }
            };
            out.high_watermark = latest as i64;
            out.last_stable_offset = latest as i64;
            out.log_start_offset = earliest as i64;
            let offset = p.fetch_offset;
            if offset < earliest as i64 || offset > latest as i64 {
                out.error_code = error_code::OFFSET_OUT_OF_RANGE;
            } else if (offset as u64) < latest && (total < budget || total == 0) {
                let max = (p.partition_max_bytes.max(1) as usize)
                    .min(budget.saturating_sub(total).max(1));
                match log.read(&t.topic, partition, offset as u64, max) {
                    Ok(records) if !records.is_empty() => {
                        let mut buf = BytesMut::new();
                        let kafka: Vec<Record> = records.into_iter().map(to_kafka_record).collect();
                        // Fetch below v4 predates record batches: down-convert to message
                        // format v1, as Kafka brokers do (headers cannot be expressed there).
                        let encoded = if version < 4 {
                            encode_legacy_message_set(&kafka, &mut buf);
                            true
                        } else {
                            encode_record_batch(&kafka, Compression::None, &mut buf).is_ok()
                        };
                        if encoded {
                            total += buf.len();
                            out.records = Some(buf.freeze());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => out.error_code = log_error_code(&e),
                }
            }
            partitions.push(out);
        }
        responses.push(FetchTopicResponse {
            topic: t.topic.clone(),
            partitions,
        });
    }
    (
        FetchResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            session_id: 0,
            responses,
        },
        total,
    )
}

fn to_kafka_record(s: StoredRecord) -> Record {
    Record {
        offset: s.offset as i64,
        timestamp: s.record.timestamp_ms,
        key: s.record.key,
        value: s.record.value,
        headers: s
            .record
            .headers
            .into_iter()
            .map(|(key, value)| RecordHeader {
                key,
                value: Some(value),
            })
            .collect(),
    }
}

fn list_offsets(
    log: &Log,
    r: ListOffsetsRequest,
    version: i16,
    denied: &HashSet<String>,
) -> ListOffsetsResponse {
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: error_code::NONE,
                        old_style_offsets: Vec::new(),
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: 0,
                    };
                    if denied.contains(&t.name) {
                        out.error_code = error_code::TOPIC_AUTHORIZATION_FAILED;
                        return out;
                    }
                    let found = u32::try_from(p.partition_index)
                        .map_err(|_| LogError::StreamNotFound(t.name.clone()))
                        .and_then(|partition| lookup_offset(log, &t.name, partition, p.timestamp));
                    match found {
                        Ok((offset, timestamp)) => {
                            out.offset = offset;
                            out.timestamp = timestamp;
                            if version == 0 && offset >= 0 {
                                out.old_style_offsets = vec![offset];
                            }
                        }
                        Err(e) => out.error_code = log_error_code(&e),
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name,
                partitions,
            }
        })
        .collect();
    ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// (offset, timestamp) for a ListOffsets query: -1 latest, -2 earliest, else the first record
/// at or after the timestamp ((-1, -1) when there is none).
fn lookup_offset(
    log: &Log,
    stream: &str,
    partition: u32,
    timestamp: i64,
) -> Result<(i64, i64), LogError> {
    match timestamp {
        -1 => Ok((log.latest_offset(stream, partition)? as i64, -1)),
        -2 => Ok((log.earliest_offset(stream, partition)? as i64, -1)),
        ts => match log.offset_for_timestamp(stream, partition, ts)? {
            Some(offset) => {
                let found_ts = log
                    .read(stream, partition, offset, 1)?
                    .first()
                    .map_or(-1, |r| r.record.timestamp_ms);
                Ok((offset as i64, found_ts))
            }
            None => Ok((-1, -1)),
        },
    }
}
