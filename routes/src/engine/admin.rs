//! Operator views and actions on the engine: per-queue counters and snapshots, engine-wide
//! gauges, purge, delete, browse, dead-letter replay and the list of consumers. The gateway's
//! Prometheus metrics and admin HTTP API are built on these.
//!
//! Counters live in each queue's state and are updated under the queue lock that the operation
//! counted already holds, so a snapshot is consistent with the depth it is taken with. They count
//! from process start (a restart resets them, as Prometheus counters may); depths come from the
//! recovered queue state and so survive restarts.

use super::{
    lock, now_ms, BindingTarget, Durability, Engine, EngineError, Entry, PagedEntry, Queue,
    QueueKind, QueueState, Session, SessionId, TEMP_PREFIX,
};
use crate::address::{Destination, DestinationKind};
use crate::message::{Message, PropertyValue};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use store::{JournalRecord, JournalStats};

/// Property naming the queue a dead-lettered message came from (ActiveMQ's name).
pub const ORIGINAL_DESTINATION: &str = "originalDestination";
/// Property giving why a message was dead-lettered (ActiveMQ's name).
pub const DLQ_FAILURE_CAUSE: &str = "dlqDeliveryFailureCause";

/// What happened to one queue's messages since the gateway started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Messages added (sent, copied from a topic, dead-lettered into it, replayed into it).
    pub enqueued: u64,
    /// Deliveries to consumers, redeliveries included (ActiveMQ's DispatchCount).
    pub delivered: u64,
    /// Deliveries of a message delivered before.
    pub redelivered: u64,
    /// Messages acknowledged by consumers (ActiveMQ's DequeueCount).
    pub acknowledged: u64,
    /// Messages moved to a dead-letter queue because they were rejected or ran out of
    /// redeliveries (expired ones are counted in `expired` only).
    pub dead_lettered: u64,
    /// Messages that expired in this queue (dead-lettered when persistent, else dropped).
    pub expired: u64,
    /// Sum over acknowledged messages of milliseconds from their timestamp to their
    /// acknowledgement (divided by `acknowledged`: ActiveMQ's AverageEnqueueTime).
    pub acknowledged_residence_ms: u64,
}

impl QueueCounters {
    /// Counts one acknowledgement of `message`.
    pub(super) fn count_ack(&mut self, message: &Message) {
        self.acknowledged += 1;
        let residence = now_ms().saturating_sub(message.timestamp);
        self.acknowledged_residence_ms = self.acknowledged_residence_ms.saturating_add(residence);
    }
}

/// What kind of queue a [`QueueStats`] describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueStatsKind {
    /// A point-to-point (anycast) queue.
    Queue,
    /// A topic subscription's queue.
    Subscription {
        /// The topic pattern it is bound to.
        pattern: String,
        /// `clientId.subscriptionName` of a durable subscription; `None` when non-durable.
        durable: Option<String>,
    },
}

/// A snapshot of one queue with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Queue name.
    pub name: String,
    /// Anycast queue or subscription.
    pub kind: QueueStatsKind,
    /// Messages ready for delivery.
    pub ready: usize,
    /// Messages delivered and not yet acknowledged (ActiveMQ's InFlightCount).
    pub unacked: usize,
    /// Open consumers.
    pub consumers: usize,
    /// Body bytes held (ready and unacknowledged).
    pub bytes: u64,
    /// Whether persistent messages in it are journaled.
    pub durable: bool,
    /// Totals since the gateway started.
    pub counters: QueueCounters,
}

/// One message seen by [`Engine::browse_queue`], left in place.
#[derive(Debug, Clone)]
pub struct BrowsedMessage {
    /// Position in the journal order (unique, increasing).
    pub seq: u64,
    /// The message.
    pub message: Arc<Message>,
    /// Deliveries so far.
    pub delivery_count: u32,
    /// Delivered to a consumer and not yet acknowledged.
    pub unacked: bool,
}

/// One open consumer, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Consumer id.
    pub id: u64,
    /// The session that opened it.
    pub session: SessionId,
    /// The session's client id, if any.
    pub client_id: Option<String>,
    /// The queues it reads (several for a wildcard queue consumer).
    pub queues: Vec<String>,
    /// Most unacknowledged deliveries it is sent ahead.
    pub prefetch: u32,
    /// Deliveries not yet acknowledged.
    pub unacked: u32,
    /// Its selector, if any.
    pub selector: Option<String>,
}

/// Engine-wide figures for metrics.
#[derive(Debug, Clone)]
pub struct EngineGauges {
    /// Body bytes held in memory.
    pub memory_used: u64,
    /// `broker.memory_limit_bytes` (0 = none).
    pub memory_limit: u64,
    /// `broker.disk_limit_bytes` (0 = none).
    pub disk_limit: u64,
    /// The journal's own figures.
    pub journal: JournalStats,
    /// Open sessions.
    pub sessions: usize,
    /// Open consumers.
    pub consumers: usize,
    /// Open sessions that have sent at least one message.
    pub producers: u64,
    /// Sends currently waiting for room (flow control `block`).
    pub blocked_producers: u64,
    /// Durable subscriptions.
    pub durable_subscriptions: usize,
    /// Durable subscriptions with no open consumer.
    pub inactive_durable_subscriptions: usize,
}

/// Local transactions begun and neither committed nor rolled back yet, in this process.
static OPEN_TRANSACTIONS: AtomicU64 = AtomicU64::new(0);

/// Local transactions open in this process (every protocol's, every engine's): a [`Transaction`]
/// counts from its creation until it is committed, rolled back or dropped.
///
/// [`Transaction`]: super::Transaction
pub fn open_transactions() -> u64 {
    OPEN_TRANSACTIONS.load(Ordering::Relaxed)
}

/// Counts one open transaction while it lives (a field of [`super::Transaction`]).
#[derive(Debug)]
pub(super) struct OpenTransaction(());

impl Default for OpenTransaction {
    fn default() -> Self {
        OPEN_TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
        OpenTransaction(())
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        saturating_decrement(&OPEN_TRANSACTIONS);
    }
}

/// Engine-wide counters kept outside the registry lock.
#[derive(Default)]
pub(super) struct EngineStats {
    blocked_producers: AtomicU64,
    producers: AtomicU64,
    /// Per open session that sent: the destinations it sent to, by kind (`queue`, `topic`,
    /// `exchange`) (producers per destination).
    producer_destinations: Mutex<HashMap<SessionId, ProducedTo>>,
    /// Messages published per topic since start (at most [`MAX_TOPICS_COUNTED`] topics).
    topic_enqueued: Mutex<HashMap<String, u64>>,
}

/// Most topics counted by name: an MQTT fleet publishing to ever new topic names must not grow
/// the table (and the metric's series) without bound; publishes to later topics are not counted.
pub const MAX_TOPICS_COUNTED: usize = 10_000;

/// One topic as operators see it (ActiveMQ's topic destination, Amazon MQ's Topic dimension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStats {
    /// The topic's canonical name (`a.b.c`).
    pub name: String,
    /// Messages published to it since the gateway started (committed, for transactions).
    pub enqueued: u64,
    /// Subscriptions whose pattern matches it, durable or not, wildcard ones included.
    pub subscriptions: usize,
    /// Open consumers of those subscriptions.
    pub consumers: usize,
    /// Messages those subscriptions hold, delivered and not yet acknowledged.
    pub unacked: usize,
}

/// Where a session sent: destination names by kind.
type ProducedTo = HashMap<&'static str, HashSet<String>>;

/// Most destinations one session is counted as a producer of (an MQTT client publishing to
/// ever new topic names must not grow the table without bound); later ones are not counted.
const MAX_PRODUCED_TO_PER_SESSION: usize = 1024;

/// The producers of one destination, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationProducers {
    /// `queue`, `topic` or `exchange`.
    pub kind: &'static str,
    /// The destination's canonical name (the exchange's name for `exchange`).
    pub name: String,
    /// Open sessions that have sent to it.
    pub producers: usize,
}

impl EngineStats {
    /// Counts one publish to each of `topics` (temporary topics are not counted).
    pub(super) fn topics_published(&self, topics: &[String]) {
        let mut map = lock(&self.topic_enqueued);
        for topic in topics {
            if topic.starts_with(TEMP_PREFIX) {
                continue;
            }
            if let Some(n) = map.get_mut(topic.as_str()) {
                *n += 1;
            } else if map.len() < MAX_TOPICS_COUNTED {
                map.insert(topic.clone(), 1);
            }
        }
    }

    /// Counts a blocked send until the returned guard drops.
    pub(super) fn blocked(&self) -> BlockedSend<'_> {
        self.blocked_producers.fetch_add(1, Ordering::Relaxed);
        BlockedSend(&self.blocked_producers)
    }
}

/// A send waiting for room; see [`EngineStats::blocked`].
pub(super) struct BlockedSend<'a>(&'a AtomicU64);

impl Drop for BlockedSend<'_> {
    fn drop(&mut self) {
        saturating_decrement(self.0);
    }
}

fn saturating_decrement(n: &AtomicU64) {
    let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(1))
    });
}

impl Session {
    /// Counts this session as a producer (once).
    pub(super) fn mark_producer(&self) {
        if !self.produced.swap(true, Ordering::Relaxed) {
            self.engine.stats.producers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops counting this session as a producer (on close).
    pub(super) fn unmark_producer(&self) {
        if self.produced.swap(false, Ordering::Relaxed) {
            saturating_decrement(&self.engine.stats.producers);
        }
        lock(&self.engine.stats.producer_destinations).remove(&self.id);
    }

    /// Counts this session as a producer of `destination` (until it closes).
    pub(super) fn mark_producer_of(&self, destination: &Destination) {
        let kind = match destination.kind {
            DestinationKind::Queue => "queue",
            DestinationKind::Topic => "topic",
        };
        self.mark_produced_to(kind, &destination.name);
    }

    /// Counts this session as a producer of the AMQP 0-9-1 exchange `exchange`; the default
    /// exchange `""` counts for the queue named by `key`, which it reaches.
    pub(super) fn mark_producer_of_exchange(&self, exchange: &str, key: &str) {
        if exchange.is_empty() {
            self.mark_produced_to("queue", key);
        } else {
            self.mark_produced_to("exchange", exchange);
        }
    }

    fn mark_produced_to(&self, kind: &'static str, name: &str) {
        let mut map = lock(&self.engine.stats.producer_destinations);
        let names = map.entry(self.id).or_default().entry(kind).or_default();
        if names.len() < MAX_PRODUCED_TO_PER_SESSION && !names.contains(name) {
            names.insert(name.to_string());
        }
    }
}

impl Engine {
    /// Producers per destination: for each queue, topic or exchange, the open sessions that
    /// have sent to it (a STOMP or MQTT connection, an AMQP 0-9-1 connection, an OpenWire
    /// session, a route into the queue world), sorted by kind and name.
    pub fn producers_by_destination(&self) -> Vec<DestinationProducers> {
        let mut counts: HashMap<(&'static str, String), usize> = HashMap::new();
        for by_kind in lock(&self.stats.producer_destinations).values() {
            for (kind, names) in by_kind {
                for name in names {
                    *counts.entry((*kind, name.clone())).or_default() += 1;
                }
            }
        }
        let mut out: Vec<DestinationProducers> = counts
            .into_iter()
            .map(|((kind, name), producers)| DestinationProducers {
                kind,
                name,
                producers,
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        out
    }
}

impl Engine {
    /// Every topic known to operators, sorted by name: those published to since start and the
    /// literal (wildcard-free) patterns of current subscriptions. For each, the subscriptions
    /// matching it (wildcard ones count for every topic they match, as ActiveMQ adds a wildcard
    /// subscriber to each matching topic) and their consumers. Temporary topics are left out.
    pub fn topic_stats(&self) -> Vec<TopicStats> {
        let mut topics: HashMap<String, u64> = lock(&self.stats.topic_enqueued).clone();
        let subscriptions: Vec<(String, Arc<Queue>)> = {
            let reg = lock(&self.registry);
            reg.subscriptions
                .values()
                .filter_map(|q| match &q.kind {
                    QueueKind::Subscription { pattern, .. } => Some((pattern.clone(), q.clone())),
                    QueueKind::Anycast => None,
                })
                .collect()
        };
        for (pattern, _) in &subscriptions {
            if !crate::address::is_pattern(pattern)
                && !pattern.starts_with(TEMP_PREFIX)
                && (topics.len() < MAX_TOPICS_COUNTED || topics.contains_key(pattern))
            {
                topics.entry(pattern.clone()).or_insert(0);
            }
        }
        // One lock per subscription queue, not one per (topic, subscription) pair.
        let figures: Vec<(&str, usize, usize)> = subscriptions
            .iter()
            .map(|(pattern, q)| {
                let st = lock(&q.state);
                (pattern.as_str(), st.consumers.len(), st.in_flight.len())
            })
            .collect();
        let mut out: Vec<TopicStats> = topics
            .into_iter()
            .map(|(name, enqueued)| {
                let mut t = TopicStats {
                    name,
                    enqueued,
                    subscriptions: 0,
                    consumers: 0,
                    unacked: 0,
                };
                for (pattern, consumers, unacked) in &figures {
                    if crate::address::pattern_matches(pattern, &t.name) {
                        t.subscriptions += 1;
                        t.consumers += consumers;
                        t.unacked += unacked;
                    }
                }
                t
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn stats_of(queue: &Queue, st: &QueueState) -> QueueStats {
    let kind = match &queue.kind {
        QueueKind::Anycast => QueueStatsKind::Queue,
        QueueKind::Subscription {
            pattern, durable, ..
        } => QueueStatsKind::Subscription {
            pattern: pattern.clone(),
            durable: durable.as_ref().map(|(c, s)| format!("{c}.{s}")),
        },
    };
    QueueStats {
        name: queue.name.clone(),
        kind,
        // `len()` counts every message the queue holds (in memory or not): ready is the rest.
        ready: st.len().saturating_sub(st.in_flight.len()),
        unacked: st.in_flight.len(),
        consumers: st.consumers.len(),
        bytes: st.bytes,
        durable: queue.durable,
        counters: st.counters,
    }
}

fn original_destination(message: &Message) -> Option<&str> {
    match message.properties.get(ORIGINAL_DESTINATION) {
        Some(PropertyValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

impl Engine {
    /// Snapshots of every queue an operator manages: anycast queues and durable subscriptions,
    /// sorted by name. Temporary queues and non-durable subscriptions (named `ID:gw-...`) are
    /// left out: they come and go with connections.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        let queues: Vec<Arc<Queue>> = {
            let reg = lock(&self.registry);
            reg.queues
                .values()
                .chain(reg.durable.values())
                .filter(|q| !q.name.starts_with(TEMP_PREFIX))
                .cloned()
                .collect()
        };
        let mut out: Vec<QueueStats> = queues
            .iter()
            .map(|q| stats_of(q, &lock(&q.state)))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A snapshot of the named queue (anycast queue or subscription queue).
    pub fn queue_stats_of(&self, name: &str) -> Option<QueueStats> {
        let queue = self.find_queue(name)?;
        let st = lock(&queue.state);
        Some(stats_of(&queue, &st))
    }

    /// Engine-wide figures.
    pub fn gauges(&self) -> EngineGauges {
        let (sessions, consumers, durable, inactive) = {
            let reg = lock(&self.registry);
            let inactive = reg
                .durable
                .values()
                .filter(|q| lock(&q.state).consumers.is_empty())
                .count();
            (
                reg.sessions.len(),
                reg.consumers.len(),
                reg.durable.len(),
                inactive,
            )
        };
        EngineGauges {
            memory_used: self.memory_used(),
            memory_limit: self.config.memory_limit_bytes,
            disk_limit: self.config.disk_limit_bytes,
            journal: self.journal.stats(),
            sessions,
            consumers,
            producers: self.stats.producers.load(Ordering::Relaxed),
            blocked_producers: self.stats.blocked_producers.load(Ordering::Relaxed),
            durable_subscriptions: durable,
            inactive_durable_subscriptions: inactive,
        }
    }

    /// The dead-letter queue configured for messages of queue `name`.
    pub fn dead_letter_queue_of(&self, name: &str) -> String {
        self.dead_letter_queue_for(name)
    }

    fn find_queue(&self, name: &str) -> Option<Arc<Queue>> {
        let reg = lock(&self.registry);
        reg.queues
            .get(name)
            .cloned()
            .or_else(|| reg.subscriptions.values().find(|q| q.name == name).cloned())
    }

    /// Removes every ready message of a queue (unacknowledged deliveries stay with their
    /// consumers, as ActiveMQ's purge leaves in-flight messages alone). Returns how many went and
    /// the durability of their removal.
    pub fn purge_queue(&self, name: &str) -> Result<(usize, Durability), EngineError> {
        let queue = self
            .find_queue(name)
            .ok_or_else(|| EngineError::UnknownDestination(format!("queue://{name}")))?;
        let mut st = lock(&queue.state);
        let entries: Vec<Entry> = std::mem::take(&mut st.ready).into_values().collect();
        let mut records = Vec::new();
        let mut freed = 0u64;
        for entry in &entries {
            freed += entry.size;
            if entry.message.expiration > 0 {
                st.expiring = st.expiring.saturating_sub(1);
            }
            if entry.journaled {
                records.push(JournalRecord::Ack {
                    queue: queue.id,
                    seq: entry.seq,
                });
            }
        }
        // Paged-out messages go too; their bodies were never counted in memory.
        let mut paged_bytes = 0u64;
        let paged: Vec<PagedEntry> = st.paged.drain(..).collect();
        for entry in &paged {
            paged_bytes += entry.size;
            self.pages.release(&entry.page);
            if entry.journaled {
                records.push(JournalRecord::Ack {
                    queue: queue.id,
                    seq: entry.seq,
                });
            }
        }
        st.bytes = st.bytes.saturating_sub(freed + paged_bytes);
        // Appended under the queue lock, like every other record naming these messages.
        let commit = (!records.is_empty()).then(|| self.journal.append(records));
        drop(st);
        self.release_memory(freed);
        let purged = entries.len() + paged.len();
        tracing::info!(queue = %name, messages = purged, "queue purged");
        Ok((purged, Durability(commit)))
    }

    /// Deletes an anycast queue or a durable subscription with all its messages and its exchange
    /// bindings; its consumers are cancelled ([`SessionEvent::ConsumerCancelled`]). With
    /// `if_unused` a queue with consumers, with `if_empty` a queue with messages, is kept and
    /// [`EngineError::PreconditionFailed`] returned (AMQP 0-9-1's `queue.delete`). Returns how
    /// many messages went and the durability of the deletion. Temporary queues and non-durable
    /// subscriptions belong to their connection and cannot be deleted here.
    ///
    /// [`SessionEvent::ConsumerCancelled`]: super::SessionEvent::ConsumerCancelled
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<(usize, Durability), EngineError> {
        if name.starts_with(TEMP_PREFIX) {
            return Err(EngineError::InvalidDestination(format!(
                "{name} is temporary: it goes when its connection closes"
            )));
        }
        let queue = {
            let mut reg = lock(&self.registry);
            let durable_key = if reg.queues.contains_key(name) {
                None
            } else {
                let key = reg
                    .durable
                    .iter()
                    .find(|(_, q)| q.name == name)
                    .map(|(k, _)| k.clone());
                match key {
                    Some(key) => Some(key),
                    None => return Err(EngineError::UnknownDestination(format!("queue://{name}"))),
                }
            };
            let queue = match &durable_key {
                None => reg.queues.get(name).cloned(),
                Some(key) => reg.durable.get(key).cloned(),
            }
            .ok_or_else(|| EngineError::UnknownDestination(format!("queue://{name}")))?;
            {
                let st = lock(&queue.state);
                if if_unused && !st.consumers.is_empty() {
                    return Err(EngineError::PreconditionFailed(format!(
                        "queue '{name}' in use"
                    )));
                }
                if if_empty && st.len() > 0 {
                    return Err(EngineError::PreconditionFailed(format!(
                        "queue '{name}' not empty"
                    )));
                }
            }
            match durable_key {
                None => {
                    reg.queues.remove(name);
                    reg.temp_names.remove(name);
                }
                Some(key) => {
                    reg.durable.remove(&key);
                    reg.subscriptions.remove(&queue.id);
                }
            }
            queue
        };
        lock(&self.exchanges).remove_target(&BindingTarget::Queue(name.to_string()));
        lock(&self.queue_options).remove(name);
        let messages = lock(&queue.state).len();
        self.drop_queue(&queue);
        tracing::info!(queue = %name, messages, "queue deleted");
        // The QueueDelete record is queued; a barrier resolves once it is durable.
        Ok((messages, Durability(Some(self.journal.append(Vec::new())))))
    }

    /// Up to `limit` messages of a queue, without consuming them: ready messages in delivery
    /// order, then unacknowledged ones by arrival.
    pub fn browse_queue(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<BrowsedMessage>, EngineError> {
        let queue = self
            .find_queue(name)
            .ok_or_else(|| EngineError::UnknownDestination(format!("queue://{name}")))?;
        let st = lock(&queue.state);
        let mut out: Vec<BrowsedMessage> = st
            .ready
            .values()
            .take(limit)
            .map(|e| BrowsedMessage {
                seq: e.seq,
                message: e.message.clone(),
                delivery_count: e.delivery_count,
                unacked: false,
            })
            .collect();
        // Then the paged-out ones, read back from the spill file without leaving it.
        for paged in st.paged.iter().take(limit.saturating_sub(out.len())) {
            match self
                .pages
                .read(&paged.page)
                .map_err(|e| e.to_string())
                .and_then(|b| crate::persist::decode_message(&b).map_err(|e| e.to_string()))
            {
                Ok(message) => out.push(BrowsedMessage {
                    seq: paged.seq,
                    message: Arc::new(message),
                    delivery_count: paged.delivery_count,
                    unacked: false,
                }),
                Err(e) => {
                    tracing::warn!(queue = %name, seq = paged.seq, error = %e, "cannot browse a paged message");
                    break;
                }
            }
        }
        if out.len() < limit {
            let mut unacked: Vec<BrowsedMessage> = st
                .in_flight
                .values()
                .map(|f| BrowsedMessage {
                    seq: f.entry.seq,
                    message: f.entry.message.clone(),
                    delivery_count: f.entry.delivery_count,
                    unacked: true,
                })
                .collect();
            unacked.sort_by_key(|m| m.seq);
            out.extend(unacked.into_iter().take(limit - out.len()));
        }
        Ok(out)
    }

    /// Moves ready messages of dead-letter queue `dlq` back to the queue named by their
    /// `originalDestination` property: only those from `original` when given, at most `limit`.
    /// The replayed copy loses the dead-letter properties and starts with a delivery count of 0;
    /// each move is one journal batch (add to the target, remove from the DLQ). Returns how many
    /// moved and the durability of the moves.
    pub fn replay_dead_letters(
        &self,
        dlq: &str,
        original: Option<&str>,
        limit: usize,
    ) -> Result<(usize, Durability), EngineError> {
        let source = self
            .find_queue(dlq)
            .ok_or_else(|| EngineError::UnknownDestination(format!("queue://{dlq}")))?;
        let taken: Vec<Entry> = {
            let mut st = lock(&source.state);
            let mut taken = Vec::new();
            // The in-memory window first; a paged DLQ refills it as it empties.
            loop {
                let keys: Vec<(u8, u64)> = st
                    .ready
                    .iter()
                    .filter(|(_, e)| match original_destination(&e.message) {
                        Some(from) => from != dlq && original.is_none_or(|want| want == from),
                        None => false,
                    })
                    .map(|(k, _)| *k)
                    .take(limit - taken.len())
                    .collect();
                let before = taken.len();
                for key in keys {
                    if let Some(entry) = st.ready.remove(&key) {
                        st.bytes = st.bytes.saturating_sub(entry.size);
                        if entry.message.expiration > 0 {
                            st.expiring = st.expiring.saturating_sub(1);
                        }
                        taken.push(entry);
                    }
                }
                let window = st.ready.len();
                self.page_in(&source, &mut st);
                if taken.len() >= limit || (taken.len() == before && st.ready.len() == window) {
                    break;
                }
            }
            taken
        };
        let mut moved = 0;
        for entry in taken {
            let Some(target_name) = original_destination(&entry.message).map(str::to_string) else {
                continue;
            };
            let mut message = (*entry.message).clone();
            message.properties.remove(ORIGINAL_DESTINATION);
            message.properties.remove(DLQ_FAILURE_CAUSE);
            message.address = target_name.clone();
            let target = match self.find_queue(&target_name) {
                Some(q) => Ok(q),
                None => {
                    let mut reg = lock(&self.registry);
                    self.anycast_queue(&mut reg, &target_name)
                }
            };
            let target = match target {
                Ok(q) => q,
                Err(e) => {
                    // Put it back rather than lose it.
                    tracing::warn!(queue = %target_name, error = %e, "cannot replay a dead letter");
                    let mut st = lock(&source.state);
                    st.bytes += entry.size;
                    if entry.message.expiration > 0 {
                        st.expiring += 1;
                    }
                    st.ready
                        .insert(source.key(&entry.message, entry.seq), entry);
                    continue;
                }
            };
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let journaled = target.durable && message.persistent;
            let mut records = Vec::new();
            if journaled {
                records.push(JournalRecord::Add {
                    queue: target.id,
                    seq,
                    payload: crate::persist::encode_message(&message),
                });
            }
            if entry.journaled {
                records.push(JournalRecord::Ack {
                    queue: source.id,
                    seq: entry.seq,
                });
            }
            let mut st = lock(&target.state);
            if !records.is_empty() {
                drop(self.journal.append(records));
            }
            self.push_ready(&target, &mut st, seq, Arc::new(message), journaled, false);
            let dead = self.dispatch(&target, &mut st);
            drop(st);
            self.release_memory(entry.size);
            self.dead_letter(dead);
            moved += 1;
        }
        tracing::info!(dlq = %dlq, original = ?original, moved, "dead letters replayed");
        Ok((moved, Durability(Some(self.journal.append(Vec::new())))))
    }

    /// Every open consumer, by id.
    pub fn consumer_infos(&self) -> Vec<ConsumerInfo> {
        let reg = lock(&self.registry);
        let mut out: Vec<ConsumerInfo> = reg
            .consumers
            .iter()
            .map(|(id, entry)| {
                let slot = entry.queues.iter().find_map(|q| {
                    lock(&q.state)
                        .consumers
                        .iter()
                        .find(|c| c.id == *id)
                        .map(|c| {
                            (
                                c.prefetch.load(Ordering::Relaxed),
                                c.in_flight.load(Ordering::Relaxed),
                                c.selector.as_ref().map(|s| s.text().to_string()),
                            )
                        })
                });
                let (prefetch, unacked, selector) = slot.unwrap_or((0, 0, None));
                ConsumerInfo {
                    id: *id,
                    session: entry.session,
                    client_id: reg
                        .sessions
                        .get(&entry.session)
                        .and_then(|s| s.client_id.clone()),
                    queues: entry.queues.iter().map(|q| q.name.clone()).collect(),
                    prefetch,
                    unacked,
                    selector,
                }
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }
}
