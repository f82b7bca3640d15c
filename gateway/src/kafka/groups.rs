//! The group coordinator: consumer-group membership and rebalancing, as a Kafka broker's
//! classic group protocol does it (JoinGroup, SyncGroup, Heartbeat, LeaveGroup).
//!
//! Membership lives in memory; committed offsets live in the log (see the session). A group
//! moves through the states Kafka names:
//!
//! - `Empty`: no members.
//! - `PreparingRebalance`: a member joined, left, changed its protocols or timed out. Every
//!   member must (re)join; heartbeats answer `REBALANCE_IN_PROGRESS` so that they do. The
//!   round completes when all known members have joined, or at the rebalance timeout, when the
//!   ones that did not are removed.
//! - `CompletingRebalance`: the generation was bumped and JoinGroup answered (the leader got
//!   every member's metadata); waiting for the leader's SyncGroup with the assignments.
//! - `Stable`: assignments handed out.
//!
//! A first JoinGroup with an empty member id gets `MEMBER_ID_REQUIRED` and a fresh id (v4+),
//! and must join again with it, as brokers since Kafka 2.2 require. A member whose session
//! times out without a heartbeat (not counting time spent waiting in JoinGroup) is removed.
//!
//! ### Invariants
//! - `leader`, when set, names a member.
//! - Join waiters exist only in `PreparingRebalance`; sync waiters only in
//!   `CompletingRebalance`. Each waiter is answered exactly once (or dropped when its member is
//!   removed, which the waiting session reports as an error to its client).

use bytes::Bytes;
use codecs::kafka::{
    error_code, DescribedGroup, DescribedGroupMember, JoinGroupMember, JoinGroupRequest,
    JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Shortest session timeout accepted (Kafka's `group.min.session.timeout.ms`).
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_millis(6_000);
/// Longest session timeout accepted (Kafka's `group.max.session.timeout.ms`).
pub const MAX_SESSION_TIMEOUT: Duration = Duration::from_millis(1_800_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name Kafka uses (ListGroups, DescribeGroups).
    fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
    assignment: Bytes,
}

struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// Members in join order (the key is a join sequence number, so the first joiner leads).
    members: BTreeMap<u64, (String, Member)>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pending: HashSet<String>,
    rebalance_deadline: Option<Instant>,
    /// While set, a join round that started from an empty group waits for more members
    /// (Kafka's `group.initial.rebalance.delay.ms`).
    initial_delay_until: Option<Instant>,
}

impl Group {
    fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashSet::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
        }
    }

    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members
            .values_mut()
            .find(|(mid, _)| mid == id)
            .map(|(_, m)| m)
    }

    fn has_member(&self, id: &str) -> bool {
        self.members.values().any(|(mid, _)| mid == id)
    }

    fn remove_member(&mut self, id: &str) -> bool {
        let key = self
            .members
            .iter()
            .find(|(_, (mid, _))| mid == id)
            .map(|(k, _)| *k);
        match key {
            Some(k) => {
                self.members.remove(&k);
                if self.leader.as_deref() == Some(id) {
                    self.leader = None;
                }
                true
            }
            None => false,
        }
    }

    /// Starts a rebalance round (if one is not under way): every member must rejoin.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        // Members waiting for an assignment of the old generation must rejoin.
        for (_, m) in self.members.values_mut() {
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncGroupResponse {
                    error_code: error_code::REBALANCE_IN_PROGRESS,
                    ..Default::default()
                });
            }
        }
        let timeout = self
            .members
            .values()
            .map(|(_, m)| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    /// Completes the join round if every member has rejoined, or `force` (the rebalance
    /// timeout passed: members that did not rejoin are removed).
    fn maybe_complete_join(&mut self, force: bool) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if !force
            && self
                .initial_delay_until
                .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        self.initial_delay_until = None;
        let all_joined = self.members.values().all(|(_, m)| m.join_waiter.is_some());
        if !all_joined && !force {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|(_, m)| m.join_waiter.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation = self.generation.wrapping_add(1);
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        // The first protocol of the first member that every member supports.
        let protocol = self.members.values().next().and_then(|(_, first)| {
            first
                .protocols
                .iter()
                .map(|(name, _)| name.clone())
                .find(|name| {
                    self.members
                        .values()
                        .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
                })
        });
        let Some(protocol) = protocol else {
            // JoinGroup refuses members without a protocol in common, so this cannot happen;
            // answer everyone rather than leave them waiting.
            for (_, m) in self.members.values_mut() {
                if let Some(tx) = m.join_waiter.take() {
                    let _ = tx.send(JoinGroupResponse {
                        error_code: error_code::INCONSISTENT_GROUP_PROTOCOL,
                        generation_id: -1,
                        ..Default::default()
                    });
                }
            }
            self.members.clear();
            self.state = GroupState::Empty;
            return;
        };
        if self.leader.as_ref().is_none_or(|l| !self.has_member(l)) {
            self.leader = self.members.values().next().map(|(id, _)| id.clone());
        }
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<JoinGroupMember> = self
            .members
            .values()
            .map(|(id, m)| JoinGroupMember {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|(n, _)| *n == protocol)
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default(),
            })
            .collect();
        self.state = GroupState::CompletingRebalance;
        self.protocol = Some(protocol.clone());
        let generation = self.generation;
        let protocol_type = self.protocol_type.clone();
        for (id, m) in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinGroupResponse {
                    error_code: error_code::NONE,
                    generation_id: generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                    throttle_time_ms: 0,
                });
            }
        }
    }

    /// After members were removed: rebalance the rest, or become empty.
    fn after_removal(&mut self, now: Instant) {
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.generation = self.generation.wrapping_add(1);
            self.leader = None;
            self.protocol = None;
            self.rebalance_deadline = None;
        } else {
            self.prepare_rebalance(now);
            self.maybe_complete_join(false);
        }
    }
}

/// The coordinator of every group of this node.
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    join_seq: AtomicU64,
    initial_rebalance_delay: Duration,
}

impl Default for GroupCoordinator {
    /// A coordinator without an initial rebalance delay.
    fn default() -> Self {
        GroupCoordinator::new(Duration::ZERO)
    }
}

fn error_join(code: i16, member_id: String) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code,
        generation_id: -1,
        member_id,
        protocol_name: Some(String::new()),
        ..Default::default()
    }
}

impl GroupCoordinator {
    /// A coordinator whose empty groups wait `initial_rebalance_delay` after a first join for
    /// more members (each join in that window extends it, up to the rebalance timeout), so
    /// that consumers started together form one generation instead of a rebalance per member,
    /// as Kafka's `group.initial.rebalance.delay.ms` does.
    pub fn new(initial_rebalance_delay: Duration) -> Self {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            join_seq: AtomicU64::new(0),
            initial_rebalance_delay,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.join_seq.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let client = if client_id.is_empty() {
            "member"
        } else {
            client_id
        };
        format!("{client}-{:016x}-{n}", nanos)
    }

    /// JoinGroup: waits until the rebalance round completes (or fails at once).
    pub async fn join(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let rx = {
            let now = Instant::now();
            let mut groups = self.lock();
            if req.group_id.is_empty() {
                return error_join(error_code::INVALID_GROUP_ID, req.member_id);
            }
            let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&session) {
                return error_join(error_code::INVALID_SESSION_TIMEOUT, req.member_id);
            }
            if req.protocols.is_empty() || req.protocol_type.is_empty() {
                return error_join(error_code::INCONSISTENT_GROUP_PROTOCOL, req.member_id);
            }
            let group = groups
                .entry(req.group_id.clone())
                .or_insert_with(Group::new);
            if !group.members.is_empty() {
                let same_type = group.protocol_type.as_deref() == Some(&req.protocol_type);
                let common = req.protocols.iter().any(|p| {
                    group
                        .members
                        .values()
                        .all(|(_, m)| m.protocols.iter().any(|(n, _)| *n == p.name))
                });
                let only_self = group.members.len() == 1 && group.has_member(&req.member_id);
                if !only_self && (!same_type || !common) {
                    return error_join(error_code::INCONSISTENT_GROUP_PROTOCOL, req.member_id);
                }
            }
            let mut member_id = req.member_id.clone();
            if member_id.is_empty() {
                member_id = self.new_member_id(client_id);
                if version >= 4 {
                    group.pending.insert(member_id.clone());
                    return error_join(error_code::MEMBER_ID_REQUIRED, member_id);
                }
            } else if !group.has_member(&member_id) && !group.pending.contains(&member_id) {
                return error_join(error_code::UNKNOWN_MEMBER_ID, member_id);
            }
            group.pending.remove(&member_id);
            group.protocol_type = Some(req.protocol_type.clone());
            let protocols: Vec<(String, Bytes)> = req
                .protocols
                .into_iter()
                .map(|p| (p.name, p.metadata))
                .collect();
            let (tx, rx) = oneshot::channel();
            let rebalance = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
            let is_leader = group.leader.as_deref() == Some(member_id.as_str());
            let state = group.state;
            let generation = group.generation;
            let protocol = group.protocol.clone();
            let protocol_type = group.protocol_type.clone();
            let leader = group.leader.clone().unwrap_or_default();
            match group.member_mut(&member_id) {
                Some(m) => {
                    let unchanged = m.protocols == protocols;
                    m.session_timeout = session;
                    m.rebalance_timeout = rebalance;
                    m.last_seen = now;
                    m.group_instance_id = req.group_instance_id.clone();
                    if unchanged && !is_leader && state == GroupState::Stable {
                        // Nothing changed: the current generation stands.
                        return JoinGroupResponse {
                            error_code: error_code::NONE,
                            generation_id: generation,
                            protocol_type,
                            protocol_name: protocol,
                            leader,
                            member_id,
                            members: Vec::new(),
                            throttle_time_ms: 0,
                        };
                    }
                    m.protocols = protocols;
                    if let Some(old) = m.join_waiter.replace(tx) {
                        let _ = old.send(error_join(error_code::UNKNOWN_MEMBER_ID, String::new()));
                    }
                }
                None => {
                    let seq = self.join_seq.fetch_add(1, Ordering::Relaxed);
                    group.members.insert(
                        seq,
                        (
                            member_id.clone(),
                            Member {
                                group_instance_id: req.group_instance_id.clone(),
                                client_id: client_id.to_string(),
                                client_host: client_host.to_string(),
                                session_timeout: session,
                                rebalance_timeout: rebalance,
                                protocols,
                                last_seen: now,
                                join_waiter: Some(tx),
                                sync_waiter: None,
                                assignment: Bytes::new(),
                            },
                        ),
                    );
                }
            }
            let from_empty = group.state == GroupState::Empty;
            let delaying = group.initial_delay_until.is_some();
            group.prepare_rebalance(now);
            if !self.initial_rebalance_delay.is_zero() && (from_empty || delaying) {
                let cap = group.rebalance_deadline.unwrap_or(now);
                group.initial_delay_until = Some((now + self.initial_rebalance_delay).min(cap));
            }
            group.maybe_complete_join(false);
            rx
        };
        match rx.await {
            Ok(resp) => resp,
            Err(_) => error_join(error_code::UNKNOWN_MEMBER_ID, String::new()),
        }
    }

    /// SyncGroup: the leader hands out assignments; the others wait for theirs.
    pub async fn sync(&self, req: SyncGroupRequest) -> SyncGroupResponse {
        let fail = |code| SyncGroupResponse {
            error_code: code,
            ..Default::default()
        };
        let rx = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(&req.group_id) else {
                return fail(error_code::UNKNOWN_MEMBER_ID);
            };
            if !group.has_member(&req.member_id) {
                return fail(error_code::UNKNOWN_MEMBER_ID);
            }
            if req.generation_id != group.generation {
                return fail(error_code::ILLEGAL_GENERATION);
            }
            let protocol_type = group.protocol_type.clone();
            let protocol_name = group.protocol.clone();
            let ok = |assignment: Bytes| SyncGroupResponse {
                error_code: error_code::NONE,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment,
                throttle_time_ms: 0,
            };
            match group.state {
                GroupState::Empty | GroupState::PreparingRebalance => {
                    return fail(error_code::REBALANCE_IN_PROGRESS)
                }
                GroupState::Stable => {
                    let m = group.member_mut(&req.member_id);
                    return ok(m.map(|m| m.assignment.clone()).unwrap_or_default());
                }
                GroupState::CompletingRebalance => {}
            }
            let now = Instant::now();
            if group.leader.as_deref() == Some(req.member_id.as_str()) {
                let assignments: HashMap<String, Bytes> = req
                    .assignments
                    .into_iter()
                    .map(|a| (a.member_id, a.assignment))
                    .collect();
                let mut own = Bytes::new();
                for (id, m) in group.members.values_mut() {
                    m.assignment = assignments.get(id).cloned().unwrap_or_default();
                    if *id == req.member_id {
                        m.last_seen = now;
                        own = m.assignment.clone();
                    }
                    if let Some(tx) = m.sync_waiter.take() {
                        let _ = tx.send(ok(m.assignment.clone()));
                    }
                }
                group.state = GroupState::Stable;
                return ok(own);
            }
            let (tx, rx) = oneshot::channel();
            if let Some(m) = group.member_mut(&req.member_id) {
                m.last_seen = now;
                m.sync_waiter = Some(tx);
            }
            rx
        };
        match rx.await {
            Ok(resp) => resp,
            Err(_) => fail(error_code::UNKNOWN_MEMBER_ID),
        }
    }

    /// Heartbeat: keeps the member alive and tells it when to rejoin.
    pub fn heartbeat(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        let state = group.state;
        let current = group.generation;
        let Some(m) = group.member_mut(member_id) else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        m.last_seen = Instant::now();
        if generation != current {
            return error_code::ILLEGAL_GENERATION;
        }
        match state {
            GroupState::PreparingRebalance => error_code::REBALANCE_IN_PROGRESS,
            _ => error_code::NONE,
        }
    }

    /// LeaveGroup for one member: `NONE` or `UNKNOWN_MEMBER_ID`.
    pub fn leave(&self, group_id: &str, member_id: &str) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        if !group.remove_member(member_id) {
            return error_code::UNKNOWN_MEMBER_ID;
        }
        group.after_removal(Instant::now());
        error_code::NONE
    }

    /// Whether an offset commit from this member at this generation is allowed now, by
    /// Kafka's rules: generation -1 (a consumer without group management) only while the
    /// group has no members; otherwise a known member at the current generation, also while
    /// the group prepares a rebalance (members commit before they rejoin), but not while it
    /// waits for the leader's assignments.
    pub fn check_commit(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let mut groups = self.lock();
        let group = groups.get_mut(group_id);
        if generation < 0 {
            return match group {
                Some(g) if !g.members.is_empty() => error_code::ILLEGAL_GENERATION,
                _ => error_code::NONE,
            };
        }
        let Some(group) = group else {
            return error_code::ILLEGAL_GENERATION;
        };
        let state = group.state;
        let current = group.generation;
        if state == GroupState::CompletingRebalance {
            return error_code::REBALANCE_IN_PROGRESS;
        }
        let Some(m) = group.member_mut(member_id) else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        m.last_seen = Instant::now();
        if generation != current {
            error_code::ILLEGAL_GENERATION
        } else {
            error_code::NONE
        }
    }

    /// The groups with members: (group id, protocol type, state name).
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.lock();
        let mut out: Vec<(String, String, &'static str)> = groups
            .iter()
            .filter(|(_, g)| !g.members.is_empty())
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// A group with members as DescribeGroups shows it; `None` if it has none.
    pub fn describe(&self, group_id: &str) -> Option<DescribedGroup> {
        let groups = self.lock();
        let g = groups.get(group_id).filter(|g| !g.members.is_empty())?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(DescribedGroup {
            error_code: error_code::NONE,
            group_id: group_id.to_string(),
            group_state: g.state.name().to_string(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: protocol.clone(),
            members: g
                .members
                .values()
                .map(|(id, m)| DescribedGroupMember {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    member_assignment: m.assignment.clone(),
                })
                .collect(),
            authorized_operations: i32::MIN,
        })
    }

    /// Removes members whose session timed out and completes rebalances whose timeout passed.
    /// Called periodically.
    pub fn expire(&self, now: Instant) {
        let mut groups = self.lock();
        for (name, group) in groups.iter_mut() {
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|(_, m)| {
                    m.join_waiter.is_none()
                        && now.saturating_duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                tracing::info!(group = %name, member = %id, "Kafka group member session expired");
                group.remove_member(id);
            }
            if !expired.is_empty() {
                group.after_removal(now);
            }
            if group.state == GroupState::PreparingRebalance
                && group.rebalance_deadline.is_some_and(|d| now >= d)
            {
                group.maybe_complete_join(true);
            } else if group.initial_delay_until.is_some_and(|until| now >= until) {
                group.maybe_complete_join(false);
            }
        }
        groups.retain(|_, g| g.state != GroupState::Empty || !g.pending.is_empty());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use codecs::kafka::{JoinGroupProtocol, SyncGroupAssignment};
    use std::sync::Arc;

    fn join_req(member_id: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 5_000,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"md"),
            }],
        }
    }

    /// Joins with an empty id (MEMBER_ID_REQUIRED), then with the id handed out.
    async fn join(c: &Arc<GroupCoordinator>, client: &str) -> JoinGroupResponse {
        let first = c.join(join_req(""), 5, client, "127.0.0.1").await;
        assert_eq!(first.error_code, error_code::MEMBER_ID_REQUIRED);
        assert!(first.member_id.starts_with(client));
        c.join(join_req(&first.member_id), 5, client, "127.0.0.1")
            .await
    }

    fn sync_req(
        member: &str,
        generation: i32,
        assignments: &[(&str, &'static [u8])],
    ) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            assignments: assignments
                .iter()
                .map(|(m, a)| SyncGroupAssignment {
                    member_id: (*m).into(),
                    assignment: Bytes::from_static(a),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_second_member_triggers_a_rebalance_and_gets_its_assignment() {
        let c = Arc::new(GroupCoordinator::default());
        let a = join(&c, "a").await;
        assert_eq!((a.error_code, a.generation_id), (error_code::NONE, 1));
        assert_eq!(a.leader, a.member_id);
        assert_eq!(a.members.len(), 1);
        let s = c
            .sync(sync_req(&a.member_id, 1, &[(&a.member_id, b"all")]))
            .await;
        assert_eq!(&s.assignment[..], b"all");
        assert_eq!(c.heartbeat("g", &a.member_id, 1), error_code::NONE);

        let c2 = Arc::clone(&c);
        let b = tokio::spawn(async move { join(&c2, "b").await });
        // a learns about the rebalance from its heartbeat, then rejoins.
        let mut hb = error_code::NONE;
        for _ in 0..100 {
            hb = c.heartbeat("g", &a.member_id, 1);
            if hb == error_code::REBALANCE_IN_PROGRESS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(hb, error_code::REBALANCE_IN_PROGRESS);
        assert_eq!(
            c.check_commit("g", &a.member_id, 1),
            error_code::NONE,
            "members commit before rejoining"
        );
        let a2 = c.join(join_req(&a.member_id), 5, "a", "h").await;
        let b = b.await.unwrap();
        assert_eq!((a2.generation_id, b.generation_id), (2, 2));
        assert_eq!(a2.leader, a.member_id, "the leader stays");
        assert_eq!((a2.members.len(), b.members.len()), (2, 0));
        assert_eq!(
            c.check_commit("g", &a.member_id, 1),
            error_code::REBALANCE_IN_PROGRESS
        );

        let c3 = Arc::clone(&c);
        let b_id = b.member_id.clone();
        let b_sync = tokio::spawn(async move { c3.sync(sync_req(&b_id, 2, &[])).await });
        tokio::task::yield_now().await;
        let a_sync = c
            .sync(sync_req(
                &a.member_id,
                2,
                &[(&a.member_id, b"p0"), (&b.member_id, b"p1")],
            ))
            .await;
        assert_eq!(&a_sync.assignment[..], b"p0");
        assert_eq!(&b_sync.await.unwrap().assignment[..], b"p1");
        assert_eq!(c.heartbeat("g", &b.member_id, 2), error_code::NONE);
        assert_eq!(
            c.heartbeat("g", &b.member_id, 1),
            error_code::ILLEGAL_GENERATION
        );
        assert_eq!(
            c.heartbeat("g", "stranger", 2),
            error_code::UNKNOWN_MEMBER_ID
        );
    }

    #[tokio::test]
    async fn silent_members_expire_and_leaving_empties_the_group() {
        let c = Arc::new(GroupCoordinator::default());
        let a = join(&c, "a").await;
        c.sync(sync_req(&a.member_id, 1, &[])).await;
        c.expire(Instant::now() + Duration::from_secs(5));
        assert_eq!(
            c.heartbeat("g", &a.member_id, 1),
            error_code::NONE,
            "within its session"
        );
        c.expire(Instant::now() + Duration::from_secs(11));
        assert_eq!(
            c.heartbeat("g", &a.member_id, 1),
            error_code::UNKNOWN_MEMBER_ID
        );

        let b = join(&c, "b").await;
        assert_eq!(c.leave("g", &b.member_id), error_code::NONE);
        assert_eq!(c.leave("g", &b.member_id), error_code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            c.check_commit("g", "", -1),
            error_code::NONE,
            "an empty group takes simple commits"
        );
    }

    #[tokio::test]
    async fn an_initial_delay_lets_members_starting_together_share_one_generation() {
        let c = Arc::new(GroupCoordinator::new(Duration::from_millis(300)));
        let c1 = Arc::clone(&c);
        let a = tokio::spawn(async move { join(&c1, "a").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c2 = Arc::clone(&c);
        let b = tokio::spawn(async move { join(&c2, "b").await });
        // The coordinator's ticker completes the round once the delay has passed.
        let ticker = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    c.expire(Instant::now());
                }
            })
        };
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        ticker.abort();
        assert_eq!(
            (a.generation_id, b.generation_id),
            (1, 1),
            "one generation for both"
        );
        assert_eq!(a.members.len() + b.members.len(), 2, "the leader sees both");
    }

    #[tokio::test]
    async fn bad_joins_are_refused() {
        let c = GroupCoordinator::default();
        let mut r = join_req("");
        r.session_timeout_ms = 10;
        assert_eq!(
            c.join(r, 5, "x", "h").await.error_code,
            error_code::INVALID_SESSION_TIMEOUT
        );
        let mut r = join_req("");
        r.group_id.clear();
        assert_eq!(
            c.join(r, 5, "x", "h").await.error_code,
            error_code::INVALID_GROUP_ID
        );
        assert_eq!(
            c.join(join_req("never-issued"), 5, "x", "h")
                .await
                .error_code,
            error_code::UNKNOWN_MEMBER_ID
        );
        // Before v4 an empty member id joins at once.
        let old = c.join(join_req(""), 3, "old", "h").await;
        assert_eq!((old.error_code, old.generation_id), (error_code::NONE, 1));
    }
}
