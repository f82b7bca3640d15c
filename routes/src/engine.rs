//! The broker engine: queues, subscriptions, consumers, dispatch, acknowledgement, redelivery,
//! dead-lettering, expiry, transactions and flow control, with the journal for durability.
//!
//! ### Concurrency
//! One registry lock (names, sessions, consumers) and one lock per queue; the registry lock is
//! always taken before a queue lock, never the reverse, and no two queue locks are held at once.
//! Journal appends are channel sends, cheap enough to make under a queue lock; waiting for
//! durability always happens with no lock held.
//!
//! ### Journal ordering
//! A message's `Add` record is appended before the message becomes visible to consumers, so its
//! `Ack` can only follow it in the journal. Once a message leaves memory (acked, dead-lettered,
//! dropped) no further record names it.

use crate::address::{pattern_matches, validate_name, Destination, DestinationKind};
use crate::exchange::{Binding, BindingTarget, ExchangeError, ExchangeSpec, Exchanges, Routed};
use crate::id_map::{IdMap, IdSet, IdSetExt};
use crate::message::{Message, PropertyValue};
use crate::paging::{PageFile, PageRef};
use crate::persist::{decode_message, decode_meta, encode_message, encode_meta, QueueMeta};
use crate::selector::{Selector, SelectorError};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{Commit, Journal, JournalOptions, JournalRecord, StoreError};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;

mod admin;
mod virtual_topic;
use admin::EngineStats;
pub use admin::{
    open_transactions, BrowsedMessage, ConsumerInfo, DestinationProducers, EngineGauges,
    QueueCounters, QueueStats, QueueStatsKind, TopicStats, MAX_TOPICS_COUNTED,
};
pub use virtual_topic::{
    virtual_topic_of, VirtualTopics, CONSUMER_QUEUE_PREFIX, VIRTUAL_TOPIC_PATTERN,
};

/// Identifies a client session (one connection, or one protocol session within it).
pub type SessionId = u64;
/// Identifies a consumer, unique for the engine's lifetime.
pub type ConsumerId = u64;

/// How often a producer blocked by flow control looks again without being notified.
const RECHECK_BLOCKED: Duration = Duration::from_millis(250);

/// Prefix of generated temporary queue and topic names.
pub const TEMP_PREFIX: &str = "ID:gw-";

/// Past this share of [`EngineConfig::memory_limit_bytes`], queues page new messages out even
/// before their window is full (ActiveMQ's cursor memory high-water mark is 70 % too).
pub const PAGE_AT_PERCENT: u64 = 70;

/// Recovered payloads held in memory at most while the journal is scanned (with paging on).
const RECOVERY_PAYLOAD_BUDGET: u64 = 64 << 20;

/// However full memory is, a queue keeps this many ready messages in memory (when it has them)
/// so that its consumers always have something to take.
const MIN_WINDOW: usize = 64;

/// What a producer meets when a destination or the gateway is over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// The send waits for room (the default, as ActiveMQ's producer flow control).
    Block,
    /// The send fails with [`EngineError::ResourceLimit`].
    Fail,
    /// The oldest ready message of the destination is discarded to make room.
    DropOldest,
}

/// Limits and dead-letter policy for the destinations whose name matches `pattern`.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationPolicy {
    /// Canonical address pattern.
    pub pattern: String,
    /// Maximum messages held; 0 = unlimited.
    pub max_messages: u64,
    /// Maximum body bytes held; 0 = unlimited.
    pub max_bytes: u64,
    /// Overrides [`EngineConfig::flow_control`].
    pub flow_control: Option<FlowControl>,
    /// Overrides [`EngineConfig::max_redeliveries`].
    pub max_redeliveries: Option<i32>,
    /// Overrides [`EngineConfig::dead_letter_queue`].
    pub dead_letter_queue: Option<String>,
    /// Overrides [`EngineConfig::prioritized_messages`].
    pub prioritized_messages: Option<bool>,
    /// Delivers by priority with this many levels above 0 (an AMQP 0-9-1 `x-max-priority`
    /// recovered from the topology file); wins over `prioritized_messages`.
    pub max_priority: Option<u8>,
}

/// Engine settings (the gateway maps them from its configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Queue that receives dead letters.
    pub dead_letter_queue: String,
    /// Redeliveries allowed before a message is dead-lettered; negative = unlimited.
    pub max_redeliveries: i32,
    /// Prefetch used when a consumer asks for none.
    pub default_prefetch: u32,
    /// Global bound on message bytes held in memory.
    pub memory_limit_bytes: u64,
    /// Global bound on the journal's size on disk, for persistent sends; 0 = none.
    pub disk_limit_bytes: u64,
    /// Default flow-control policy.
    pub flow_control: FlowControl,
    /// For [`FlowControl::Block`]: how long a send may wait; `None` = forever.
    pub send_timeout: Option<Duration>,
    /// Per-destination policies; the first match wins.
    pub destinations: Vec<DestinationPolicy>,
    /// Deliver a queue's ready messages by priority (9 first) rather than in send order. Off by
    /// default, as ActiveMQ's `prioritizedMessages`: a queue is FIFO unless configured.
    pub prioritized_messages: bool,
    /// Ready messages of one queue held in memory; those behind them are paged out to spill
    /// files and read back as the queue drains (ActiveMQ's cursor window). Paging also starts
    /// once memory use passes [`PAGE_AT_PERCENT`] of `memory_limit_bytes`. 0 = never page.
    /// Selectors, priorities and expiry see the in-memory window only.
    pub page_window: usize,
    /// Directory of the spill files; `None` = `paging` beside the journal directory.
    pub paging_dir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            dead_letter_queue: "ActiveMQ.DLQ".into(),
            max_redeliveries: 6,
            default_prefetch: 1000,
            memory_limit_bytes: 1 << 30,
            disk_limit_bytes: 0,
            flow_control: FlowControl::Block,
            send_timeout: None,
            destinations: Vec::new(),
            prioritized_messages: false,
            page_window: 10_000,
            paging_dir: None,
        }
    }
}

/// Errors the engine reports to protocol sessions, which translate them into protocol errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The destination does not exist and cannot be created (e.g. a deleted temporary queue).
    #[error("destination {0} does not exist")]
    UnknownDestination(String),
    /// The destination name is not valid.
    #[error("invalid destination: {0}")]
    InvalidDestination(String),
    /// The selector does not parse.
    #[error("{0}")]
    InvalidSelector(#[from] SelectorError),
    /// A limit was reached and the policy is to fail.
    #[error("resource limit reached on {destination}: {reason}")]
    ResourceLimit {
        /// Where the limit was reached.
        destination: String,
        /// Which limit.
        reason: String,
    },
    /// A blocked send waited longer than the configured send timeout.
    #[error("send to {0} timed out waiting for flow control")]
    SendTimeout(String),
    /// A durable subscription already has an active consumer.
    #[error("durable subscription {0} is already in use")]
    SubscriptionInUse(String),
    /// No such durable subscription.
    #[error("durable subscription {0} does not exist")]
    UnknownSubscription(String),
    /// The consumer is not open.
    #[error("consumer {0} is not open")]
    UnknownConsumer(ConsumerId),
    /// The message is not delivered to that consumer and unacknowledged.
    #[error("message {seq} is not pending on consumer {consumer}")]
    UnknownDelivery {
        /// The consumer named in the request.
        consumer: ConsumerId,
        /// The message sequence named in the request.
        seq: u64,
    },
    /// The session is closed.
    #[error("session closed")]
    SessionClosed,
    /// Another live session holds the client id (and this protocol does not take over).
    #[error("client id {0} is already connected")]
    ClientIdInUse(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Stored data could not be decoded during recovery.
    #[error("recovery: {0}")]
    Recovery(String),
    /// An exchange or binding operation failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// A queue operation's condition does not hold (e.g. deleting a queue in use with
    /// `if-unused`).
    #[error("{0}")]
    PreconditionFailed(String),
}

/// One message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The consumer it is for.
    pub consumer: ConsumerId,
    /// The message's sequence in its queue; names it in acks.
    pub seq: u64,
    /// The destination the consumer sees the message on.
    pub destination: Destination,
    /// The message.
    pub message: Arc<Message>,
    /// How many times it has been delivered, this time included (1 = first delivery).
    pub delivery_count: u32,
    /// True when it may have been delivered before.
    pub redelivered: bool,
    /// True for a retained message replayed to a new subscription (MQTT's retain flag).
    pub retained: bool,
}

/// Something the engine tells a session.
#[derive(Debug)]
pub enum SessionEvent {
    /// A message for one of the session's consumers. Boxed: a session's event channel
    /// allocates room for 32 events when it opens, and a `Delivery` inline made that 2.6 KB
    /// for every connection, idle ones included.
    Deliver(Box<Delivery>),
    /// Another connection took over this session's client id: close the connection.
    TakenOver,
    /// A consumer was closed by the broker (its queue was deleted).
    ConsumerCancelled(ConsumerId),
}

/// Where a consumer reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerSource {
    /// A queue (created on first use).
    Queue(String),
    /// A non-durable topic subscription on a pattern.
    Topic(String),
    /// A durable topic subscription owned by the session's client id.
    DurableTopic {
        /// Topic pattern.
        pattern: String,
        /// Subscription name.
        subscription: String,
    },
    /// A subscription shared by every consumer that names it, whatever its session (MQTT 5's
    /// `$share/group/filter`, JMS 2.0 shared subscriptions): its consumers compete for messages.
    SharedTopic {
        /// Topic pattern.
        pattern: String,
        /// Subscription name, global (not scoped by client id).
        subscription: String,
        /// Durable: it keeps collecting with no consumer and survives restarts; otherwise it
        /// goes when its last consumer does.
        durable: bool,
    },
}

/// What a session asks for when it opens a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Where to read.
    pub source: ConsumerSource,
    /// JMS selector text.
    pub selector: Option<String>,
    /// Maximum unacknowledged deliveries; `None` = the engine default. `Some(0)` dispatches
    /// nothing until [`Session::set_prefetch_extension`] opens the window (a pulling consumer,
    /// JMS prefetch 0 with `MessagePull`).
    pub prefetch: Option<u32>,
    /// Exclusive consumer: while it is open, it alone receives the queue's messages.
    pub exclusive: bool,
    /// Consumer priority (JMS `consumer.priority`, default 0): a queue dispatches to its
    /// highest-priority consumers with room in their window, round robin among equals; lower
    /// ones get messages only while those are full.
    pub priority: i8,
    /// Skip messages this session sent (topics only).
    pub no_local: bool,
    /// Topics only: replay the retained messages matching the pattern into the new subscription.
    pub retained: bool,
    /// Durable subscriptions only: protocol options kept with the subscription (and journaled),
    /// returned by [`Session::durable_subscriptions`]; a changed tag updates it in place.
    pub tag: Option<String>,
}

/// A durable subscription as [`Session::durable_subscriptions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableSubscriptionInfo {
    /// Subscription name.
    pub subscription: String,
    /// Topic pattern.
    pub pattern: String,
    /// Selector text.
    pub selector: Option<String>,
    /// Protocol options given at subscribe.
    pub tag: Option<String>,
    /// Messages waiting in it.
    pub pending: usize,
}

impl ConsumerSpec {
    /// A plain consumer on `source`.
    pub fn new(source: ConsumerSource) -> Self {
        ConsumerSpec {
            source,
            selector: None,
            prefetch: None,
            exclusive: false,
            priority: 0,
            no_local: false,
            retained: false,
            tag: None,
        }
    }
}

/// What a queue with a length limit does when it is full (AMQP's `x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The oldest ready message is dropped (dead-lettered) to make room (`drop-head`).
    #[default]
    DropHead,
    /// The new message is refused (`reject-publish`).
    RejectPublish,
    /// The new message is refused and dead-lettered from the queue with reason `maxlen`
    /// (`reject-publish-dlx`, RabbitMQ 3.10's classic queues).
    RejectPublishDeadLetter,
}

/// Per-queue options given when a queue is declared (AMQP 0-9-1 queue arguments). They live in
/// memory: a client declaring the queue again after a restart sets them again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// Messages expire this long after they enter the queue (`x-message-ttl`).
    pub message_ttl: Option<Duration>,
    /// Most messages held (`x-max-length`).
    pub max_length: Option<u64>,
    /// Most body bytes held (`x-max-length-bytes`).
    pub max_length_bytes: Option<u64>,
    /// What a full queue does (`x-overflow`).
    pub overflow: Overflow,
    /// Dead letters (rejected without requeue, expired, dropped from the head) are published to
    /// this exchange, with this routing key or their own (`x-dead-letter-exchange`,
    /// `x-dead-letter-routing-key`).
    pub dead_letter: Option<(String, Option<String>)>,
    /// Without a dead-letter exchange, dead letters are discarded (RabbitMQ's rule) instead of
    /// going to the dead-letter queue (ActiveMQ's).
    pub discard_dead_letters: bool,
    /// The queue delivers by priority, highest first, a message's priority capped at this value
    /// (`x-max-priority`: RabbitMQ treats a priority above the maximum as the maximum).
    pub max_priority: Option<u8>,
}

/// What to do with a delivery that is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackAction {
    /// Back to the queue for redelivery (dead-lettered once past the redelivery limit).
    Requeue,
    /// Straight to the dead-letter queue.
    DeadLetter,
    /// The client found it expired (OpenWire's `EXPIRED` ack): handled as the engine's own
    /// expiry is, to the dead-letter queue with cause "expired" when persistent, dropped when not.
    Expired,
}

/// A local transaction's work, applied all together by [`Session::commit`].
#[derive(Debug, Default)]
pub struct Transaction {
    sends: Vec<(Target, Message)>,
    acks: Vec<(ConsumerId, u64)>,
    /// Counts the transaction in [`open_transactions`] while it lives.
    _open: admin::OpenTransaction,
}

/// Where a send goes: a destination, or an exchange with a routing key.
#[derive(Debug, Clone)]
enum Target {
    Destination(Destination),
    Exchange { exchange: String, key: String },
}

impl Session {
    /// Counts this session as a producer of every destination `tx` sends to.
    fn mark_transacted_producer(&self, tx: &Transaction) {
        for (target, _) in &tx.sends {
            match target {
                Target::Destination(d) => self.mark_producer_of(d),
                Target::Exchange { exchange, key } => self.mark_producer_of_exchange(exchange, key),
            }
        }
    }
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages a send.
    pub fn send(&mut self, destination: Destination, message: Message) {
        self.sends.push((Target::Destination(destination), message));
    }

    /// Stages a publish to an exchange with a routing key (see [`Session::publish_to_exchange`]).
    pub fn publish_to_exchange(&mut self, exchange: &str, key: &str, message: Message) {
        self.sends.push((
            Target::Exchange {
                exchange: exchange.to_string(),
                key: key.to_string(),
            },
            message,
        ));
    }

    /// Stages an acknowledgement.
    pub fn ack(&mut self, consumer: ConsumerId, seq: u64) {
        self.acks.push((consumer, seq));
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.acks.is_empty()
    }
}

/// Durability still to come: resolves once the journal has the change on disk.
#[must_use = "a pending durability does nothing unless awaited or dropped on purpose"]
pub struct Durability(Option<Commit>);

impl Durability {
    /// Nothing to wait for.
    pub fn done() -> Self {
        Durability(None)
    }

    /// True when there is a journal write to wait for.
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }
}

impl Future for Durability {
    type Output = Result<(), EngineError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            None => Poll::Ready(Ok(())),
            Some(commit) => Pin::new(commit).poll(cx).map_err(EngineError::Store),
        }
    }
}

/// A snapshot of one queue, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Messages ready for delivery (in memory or paged out).
    pub ready: usize,
    /// Of the ready messages, those paged out to a spill file.
    pub paged: usize,
    /// Messages delivered and not yet acknowledged.
    pub unacked: usize,
    /// Open consumers.
    pub consumers: usize,
    /// Whether persistent messages in it are journaled.
    pub durable: bool,
}

/// What recovery found in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySummary {
    /// Durable queues restored.
    pub queues: usize,
    /// Messages restored.
    pub messages: usize,
    /// Journal bytes scanned.
    pub bytes: u64,
    /// Bytes of torn tail cut off.
    pub truncated_bytes: u64,
    /// Time recovery took.
    pub duration: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves consistent enough state for a broker to go on serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QueueKind {
    Anycast,
    Subscription {
        pattern: String,
        durable: Option<(String, String)>,
        no_local_session: Option<SessionId>,
    },
}

/// The limits a publish to one queue must fit, from its policy or its arguments.
struct AdmissionLimits {
    /// What happens when a limit is reached.
    mode: FlowControl,
    /// Most messages in the queue (0: no limit).
    max_messages: u64,
    /// Most bytes in the queue (0: no limit).
    max_bytes: u64,
    /// `x-overflow: reject-publish-dlx`: a refused publish is dead-lettered.
    dead_letter_refused: bool,
}

/// What [`Engine::apply`] resolves to: the durability and, per send, the queues it reached.
type Applied = Result<(Durability, Vec<usize>), EngineError>;

/// [`Engine::apply`] under way: done at once, or waiting at a limit.
enum Applying<'a> {
    /// Carried out already.
    Now(std::future::Ready<Applied>),
    /// Waiting for room.
    Later(Pin<Box<dyn Future<Output = Applied> + Send + 'a>>),
}

impl Future for Applying<'_> {
    type Output = Applied;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Applied> {
        match self.get_mut() {
            Applying::Now(ready) => Pin::new(ready).poll(cx),
            Applying::Later(waiting) => waiting.as_mut().poll(cx),
        }
    }
}

/// Sends resolved to their queues, to be admitted and carried out ([`Engine::apply`]).
struct Plan {
    /// Each send's message (id, timestamp and address set) and the queues it reaches.
    sends: Vec<(Message, Vec<Arc<Queue>>)>,
    /// Topic publishes, counted per topic once the batch is in (Amazon MQ's topic
    /// EnqueueCount).
    topics: Vec<String>,
}

struct Entry {
    seq: u64,
    message: Arc<Message>,
    delivery_count: u32,
    journaled: bool,
    size: u64,
    retained: bool,
}

/// A ready message whose body waits in a spill file, in arrival order behind the window.
struct PagedEntry {
    seq: u64,
    page: PageRef,
    delivery_count: u32,
    journaled: bool,
    size: u64,
    retained: bool,
}

struct InFlight {
    entry: Entry,
    consumer: ConsumerId,
    order: u64,
}

#[derive(Clone)]
struct ConsumerSlot {
    id: ConsumerId,
    events: UnboundedSender<SessionEvent>,
    /// Shared by the slots of one consumer across queues, like `in_flight`: a client may change
    /// it ([`Session::set_prefetch`]).
    prefetch: Arc<AtomicU32>,
    /// Unacknowledged deliveries, shared by the slots of one consumer across queues.
    in_flight: Arc<AtomicU32>,
    /// Deliveries the client has handed to its application without acknowledging them yet
    /// (JMS `DELIVERED` acks): they widen the prefetch window, as ActiveMQ's prefetch
    /// extension. Shared like `in_flight`; see [`Session::set_prefetch_extension`].
    extension: Arc<AtomicU32>,
    selector: Option<Arc<Selector>>,
    exclusive: bool,
    priority: i8,
}

#[derive(Default)]
struct QueueState {
    ready: BTreeMap<(u8, u64), Entry>,
    /// Ready messages paged out, oldest first; all of them arrived after those in `ready`
    /// (redeliveries excepted, which go back to `ready`).
    paged: VecDeque<PagedEntry>,
    in_flight: IdMap<u64, InFlight>,
    consumers: Vec<ConsumerSlot>,
    next_consumer: usize,
    groups: HashMap<String, ConsumerId>,
    bytes: u64,
    deleted: bool,
    expiring: usize,
    /// Totals since start, for metrics and the admin API.
    counters: QueueCounters,
}

impl QueueState {
    fn len(&self) -> usize {
        self.ready.len() + self.paged.len() + self.in_flight.len()
    }
}

struct Queue {
    id: u64,
    name: String,
    kind: QueueKind,
    durable: bool,
    selector: Option<Arc<Selector>>,
    /// Ready messages ordered by priority first, priorities capped at this value (`None`:
    /// by arrival only).
    priority_cap: Option<u8>,
    /// Durable subscriptions: the protocol tag and no-local flag journaled with them.
    tag: Mutex<(Option<String>, bool)>,
    state: Mutex<QueueState>,
}

impl Queue {
    fn destination_for(&self, message: &Message) -> Destination {
        match self.kind {
            QueueKind::Anycast => Destination::queue(self.name.clone()),
            QueueKind::Subscription { .. } => Destination::topic(message.address.clone()),
        }
    }

    /// The ready-set key of a message: priority first when the queue is prioritized.
    fn key(&self, message: &Message, seq: u64) -> (u8, u64) {
        ready_key(self.priority_cap, message, seq)
    }

    fn pattern(&self) -> Option<&str> {
        match &self.kind {
            QueueKind::Subscription { pattern, .. } => Some(pattern),
            QueueKind::Anycast => None,
        }
    }
}

struct SessionState {
    events: UnboundedSender<SessionEvent>,
    client_id: Option<String>,
    consumers: IdSet<ConsumerId>,
    temp_names: Vec<String>,
}

/// A consumer's place in the registry: the queues it reads (several for a wildcard queue
/// consumer, which also joins queues created later that match its pattern).
struct ConsumerEntry {
    queues: Vec<Arc<Queue>>,
    session: SessionId,
    wildcard: Option<WildcardConsumer>,
}

/// What a wildcard queue consumer needs to join a new matching queue: its pattern and the slot
/// each queue gets a clone of (the clones share one prefetch budget).
struct WildcardConsumer {
    pattern: String,
    slot: ConsumerSlot,
}

#[derive(Default)]
struct Registry {
    queues: HashMap<String, Arc<Queue>>,
    subscriptions: IdMap<u64, Arc<Queue>>,
    durable: HashMap<(String, String), Arc<Queue>>,
    sessions: IdMap<SessionId, SessionState>,
    consumers: IdMap<ConsumerId, ConsumerEntry>,
    client_ids: HashMap<String, SessionId>,
    temp_names: HashSet<String>,
    /// Non-durable shared subscriptions by name.
    shared: HashMap<String, Arc<Queue>>,
    /// Queue mirrors ([`Engine::mirror_queue_sends`]) and diverts ([`Engine::divert_queue_sends`],
    /// [`Engine::divert_topic_sends`]).
    queue_mirrors: Vec<SendMirror>,
}

/// Where sends matching a pattern also (or only) go: see [`Engine::mirror_queue_sends`].
struct SendMirror {
    /// Sends to topics (rather than queues) matching `pattern`.
    topic: bool,
    pattern: String,
    /// The queue that gets them.
    mirror: String,
    /// What a send must match to be taken.
    selector: Option<Arc<Selector>>,
    /// The matching sends go only to `mirror`, no longer where they were sent (a move).
    exclusive: bool,
}

impl SendMirror {
    fn takes(&self, topic: bool, destination: &str, message: &Message) -> bool {
        self.topic == topic
            && self.mirror != destination
            && pattern_matches(&self.pattern, destination)
            && self.selector.as_ref().is_none_or(|s| s.matches(message, 1))
    }
}

/// The broker engine. Cheap to share: hold it in an `Arc`.
pub struct Engine {
    config: EngineConfig,
    journal: Journal,
    registry: Mutex<Registry>,
    next_seq: AtomicU64,
    next_queue_id: AtomicU64,
    next_session: AtomicU64,
    next_consumer: AtomicU64,
    next_message: AtomicU64,
    next_delivery: AtomicU64,
    boot_id: u64,
    /// `ID:gw-<boot_id>-`, what every generated message id starts with.
    message_id_prefix: String,
    memory_used: AtomicU64,
    /// Engine-wide gauges for metrics (see `engine/admin.rs`).
    stats: EngineStats,
    space: Notify,
    summary: RecoverySummary,
    retained: Mutex<RetainedStore>,
    pages: PageFile,
    /// Exchanges and their bindings; locked after the registry, never before it.
    exchanges: Mutex<Exchanges>,
    /// Options of the queues declared with some; a leaf lock (nothing is locked under it).
    queue_options: Mutex<HashMap<String, Arc<QueueOptions>>>,
    /// Virtual topic settings (`engine/virtual_topic.rs`); a leaf lock.
    virtual_topics: Mutex<VirtualTopics>,
}

/// The last retained message of each address, journaled in a queue of its own.
#[derive(Default)]
struct RetainedStore {
    queue: Option<u64>,
    by_address: BTreeMap<String, (u64, Arc<Message>)>,
}

/// Hands the heap that recovery freed back to the system. Recovering a deep queue allocates
/// and frees hundreds of MB in small pieces (index entries, payloads read back); glibc keeps them
/// in the process otherwise, and the resident size after a restart stays at the recovery peak.
#[allow(unsafe_code)]
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it takes no
    // pointer and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The pages one queue's recovered messages were streamed into, in journal order. A sorted
/// vector walked along the (ascending) recovered messages: a million of them cost 40 MB here,
/// where a hash map cost twice that.
#[derive(Default)]
struct StreamedPages {
    pages: Vec<(u64, PageRef, u64)>,
    next: usize,
}

impl StreamedPages {
    fn push(&mut self, seq: u64, page: PageRef, size: u64) {
        self.pages.push((seq, page, size));
    }

    /// Sorts by sequence (journal order is ascending but for compacted segments).
    fn sort(&mut self) {
        // Stable sort: linear on the already sorted input of the common case.
        self.pages.sort_by_key(|(seq, _, _)| *seq);
    }

    /// The page of `seq`; sequences must be asked in ascending order.
    fn take(&mut self, seq: u64) -> Option<(PageRef, u64)> {
        while let Some(&(s, page, size)) = self.pages.get(self.next) {
            if s > seq {
                return None;
            }
            self.next += 1;
            if s == seq {
                return Some((page, size));
            }
        }
        None
    }
}

/// Where a dead letter comes from and why.
struct DeadLetter {
    entry: Entry,
    from: String,
    cause: &'static str,
}

impl Engine {
    /// Opens the journal, recovers every durable queue and its messages, and returns the engine.
    pub fn open(config: EngineConfig, journal: JournalOptions) -> Result<Arc<Engine>, EngineError> {
        let paging_dir = config
            .paging_dir
            .clone()
            .unwrap_or_else(|| journal.dir.with_file_name("paging"));
        let pages = PageFile::open(&paging_dir).map_err(|e| {
            EngineError::Recovery(format!("spill directory {}: {e}", paging_dir.display()))
        })?;
        // Recovery holds at most the paging mark of payloads in memory; the rest streams
        // straight from the journal into spill files.
        let mut on_disk: HashMap<u64, StreamedPages> = HashMap::new();
        let (journal, recovery) = if config.page_window > 0 && config.memory_limit_bytes > 0 {
            let journal_dir = journal.dir.clone();
            // Queues keep only their windows in memory anyway: past a modest budget, streaming
            // payloads straight into spill files beats loading them and paging them out again.
            let budget = page_threshold(&config).min(RECOVERY_PAYLOAD_BUDGET);
            Journal::open_paged(journal, budget, &mut |queue, seq, payload| {
                let fail = |e: String| StoreError::Io {
                    path: journal_dir.clone(),
                    source: std::io::Error::other(format!(
                        "paging recovered message {seq} out: {e}"
                    )),
                };
                let size = decode_message(payload)
                    .map_err(|e| fail(e.to_string()))?
                    .body
                    .len() as u64;
                let page = pages.write(payload).map_err(|e| fail(e.to_string()))?;
                on_disk.entry(queue).or_default().push(seq, page, size);
                Ok(())
            })?
        } else {
            Journal::open(journal)?
        };
        let boot_id = now_ms();
        let mut registry = Registry::default();
        let mut max_seq = 0u64;
        let mut max_queue = 0u64;
        let mut messages = 0usize;
        let mut memory = 0u64;
        let queue_count = recovery.queues.len();
        let mut retained = RetainedStore::default();
        for recovered in recovery.queues {
            max_queue = max_queue.max(recovered.queue);
            let meta = decode_meta(&recovered.meta)
                .map_err(|e| EngineError::Recovery(format!("queue {}: {e}", recovered.name)))?;
            let mut recovered_tag = (None, false);
            let (kind, selector) = match meta {
                QueueMeta::Retained => {
                    retained.queue = Some(recovered.queue);
                    let mut paged = on_disk.remove(&recovered.queue).unwrap_or_default();
                    paged.sort();
                    for m in recovered.messages {
                        max_seq = max_seq.max(m.seq);
                        // Retained messages live in memory: read back what recovery paged out.
                        let payload = match paged.take(m.seq) {
                            Some((page, _)) if m.on_disk => {
                                let bytes = pages.read(&page).map_err(|e| {
                                    EngineError::Recovery(format!(
                                        "retained message {}: {e}",
                                        m.seq
                                    ))
                                })?;
                                pages.release(&page);
                                bytes::Bytes::from(bytes)
                            }
                            _ => m.payload,
                        };
                        let message = decode_message(&payload).map_err(|e| {
                            EngineError::Recovery(format!("retained message {}: {e}", m.seq))
                        })?;
                        retained
                            .by_address
                            .insert(message.address.clone(), (m.seq, Arc::new(message)));
                    }
                    continue;
                }
                QueueMeta::Anycast => (QueueKind::Anycast, None),
                QueueMeta::DurableSubscription {
                    client_id,
                    subscription,
                    pattern,
                    selector,
                    no_local,
                    tag,
                } => {
                    recovered_tag = (tag, no_local);
                    let selector = match selector {
                        Some(text) => Some(Arc::new(Selector::parse(&text)?)),
                        None => None,
                    };
                    (
                        QueueKind::Subscription {
                            pattern,
                            durable: Some((client_id, subscription)),
                            no_local_session: None,
                        },
                        selector,
                    )
                }
            };
            let priority_cap = priority_cap_for(&config, &recovered.name);
            let mut state = QueueState::default();
            let mut paged = on_disk.remove(&recovered.queue).unwrap_or_default();
            paged.sort();
            for m in recovered.messages {
                max_seq = max_seq.max(m.seq);
                if m.on_disk {
                    let Some((page, size)) = paged.take(m.seq) else {
                        return Err(EngineError::Recovery(format!(
                            "queue {} message {}: its payload was not streamed",
                            recovered.name, m.seq
                        )));
                    };
                    state.bytes += size;
                    messages += 1;
                    state.paged.push_back(PagedEntry {
                        seq: m.seq,
                        page,
                        delivery_count: m.delivery_count,
                        journaled: true,
                        size,
                        retained: false,
                    });
                    continue;
                }
                let message = decode_message(&m.payload).map_err(|e| {
                    EngineError::Recovery(format!(
                        "queue {} message {}: {e}",
                        recovered.name, m.seq
                    ))
                })?;
                let size = message.body.len() as u64;
                state.bytes += size;
                messages += 1;
                // Deep queues come back paged: only their window is decoded into memory.
                if pages_out(&config, &state, memory, size) {
                    match pages.write(&m.payload) {
                        Ok(page) => {
                            state.paged.push_back(PagedEntry {
                                seq: m.seq,
                                page,
                                delivery_count: m.delivery_count,
                                journaled: true,
                                size,
                                retained: false,
                            });
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot page a recovered message out; keeping it in memory")
                        }
                    }
                }
                if message.expiration > 0 {
                    state.expiring += 1;
                }
                memory += size;
                state.ready.insert(
                    ready_key(priority_cap, &message, m.seq),
                    Entry {
                        seq: m.seq,
                        message: Arc::new(message),
                        delivery_count: m.delivery_count,
                        journaled: true,
                        size,
                        retained: false,
                    },
                );
            }
            let queue = Arc::new(Queue {
                id: recovered.queue,
                name: recovered.name.clone(),
                kind: kind.clone(),
                durable: true,
                selector,
                priority_cap,
                tag: Mutex::new(recovered_tag),
                state: Mutex::new(state),
            });
            match kind {
                QueueKind::Anycast => {
                    registry.queues.insert(recovered.name, queue);
                }
                QueueKind::Subscription { durable, .. } => {
                    registry.subscriptions.insert(queue.id, queue.clone());
                    if let Some(key) = durable {
                        registry.durable.insert(key, queue);
                    }
                }
            }
        }
        if !recovery.prepared.is_empty() {
            tracing::warn!(
                count = recovery.prepared.len(),
                "journal holds prepared XA transactions; they stay pending until a client resolves them"
            );
        }
        // Ids are never reused, not even those of acknowledged messages or deleted queues: the
        // journal's compaction relies on it.
        max_seq = max_seq.max(recovery.report.max_seq);
        max_queue = max_queue.max(recovery.report.max_queue);
        let summary = RecoverySummary {
            queues: queue_count,
            messages,
            bytes: recovery.report.bytes,
            truncated_bytes: recovery.report.truncated_bytes,
            duration: recovery.report.duration,
        };
        drop(on_disk);
        return_freed_memory();
        Ok(Arc::new(Engine {
            config,
            journal,
            registry: Mutex::new(registry),
            next_seq: AtomicU64::new(max_seq + 1),
            next_queue_id: AtomicU64::new(max_queue + 1),
            next_session: AtomicU64::new(1),
            next_consumer: AtomicU64::new(1),
            next_message: AtomicU64::new(1),
            next_delivery: AtomicU64::new(1),
            boot_id,
            message_id_prefix: format!("ID:gw-{boot_id}-"),
            memory_used: AtomicU64::new(memory),
            stats: EngineStats::default(),
            space: Notify::new(),
            summary,
            retained: Mutex::new(retained),
            pages,
            exchanges: Mutex::new(Exchanges::default()),
            queue_options: Mutex::new(HashMap::new()),
            virtual_topics: Mutex::new(VirtualTopics::default()),
        }))
    }

    /// What recovery found when the engine opened.
    pub fn recovery_summary(&self) -> &RecoverySummary {
        &self.summary
    }

    /// Flushes and closes the journal. Later durable operations fail.
    pub fn close(&self) -> Result<(), EngineError> {
        self.journal.close()?;
        Ok(())
    }

    /// A new unique message id, in ActiveMQ's `ID:` style.
    pub fn new_message_id(&self) -> String {
        use std::fmt::Write;
        let n = self.next_message.fetch_add(1, Ordering::Relaxed);
        // One allocation of the final size; this runs for every message sent.
        let mut id = String::with_capacity(self.message_id_prefix.len() + 20);
        id.push_str(&self.message_id_prefix);
        let _ = write!(id, "{n}");
        id
    }

    /// Sets (or, with `None`, clears) the retained message of `address`; it replaces any earlier
    /// one and is journaled whatever its persistence, as MQTT brokers keep retained messages.
    /// A message a route moving from the topic takes ([`Engine::divert_topic_sends`]) is not
    /// retained either: the topic never sees it.
    pub fn set_retained(&self, address: &str, message: Option<Message>) -> Durability {
        if let Some(m) = &message {
            let reg = lock(&self.registry);
            if send_mirrors(&reg, true, address, m).1 {
                return Durability::done();
            }
        }
        let mut store = lock(&self.retained);
        let mut records = Vec::new();
        if let Some((seq, _)) = store.by_address.remove(address) {
            if let Some(queue) = store.queue {
                records.push(JournalRecord::Ack { queue, seq });
            }
        }
        if let Some(mut message) = message {
            if message.message_id.is_empty() {
                message.message_id = self.new_message_id();
            }
            if message.timestamp == 0 {
                message.timestamp = now_ms();
            }
            message.address = address.to_string();
            let queue = match store.queue {
                Some(q) => q,
                None => {
                    let q = self.next_queue_id.fetch_add(1, Ordering::Relaxed);
                    records.push(JournalRecord::QueueCreate {
                        queue: q,
                        name: "$retained".into(),
                        meta: encode_meta(&QueueMeta::Retained),
                    });
                    store.queue = Some(q);
                    q
                }
            };
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            records.push(JournalRecord::Add {
                queue,
                seq,
                payload: encode_message(&message),
            });
            store
                .by_address
                .insert(address.to_string(), (seq, Arc::new(message)));
        }
        // Appended under the lock: the journal sees replacements in the order they happened.
        let commit = (!records.is_empty()).then(|| self.journal.append(records));
        Durability(commit)
    }

    /// The unexpired retained messages whose address matches `pattern`, in address order.
    pub fn retained_matching(&self, pattern: &str) -> Vec<Arc<Message>> {
        let now = now_ms();
        lock(&self.retained)
            .by_address
            .iter()
            .filter(|(address, (_, m))| {
                pattern_matches(pattern, address) && (m.expiration == 0 || m.expiration > now)
            })
            .map(|(_, (_, m))| m.clone())
            .collect()
    }

    /// Copies the retained messages matching the queue's pattern into it, marked as retained.
    fn replay_retained(&self, queue: &Queue) {
        let Some(pattern) = queue.pattern() else {
            return;
        };
        let messages = self.retained_matching(pattern);
        if messages.is_empty() {
            return;
        }
        let mut st = lock(&queue.state);
        let mut records = Vec::new();
        for message in messages {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let journaled = queue.durable && message.persistent;
            if journaled {
                records.push(JournalRecord::Add {
                    queue: queue.id,
                    seq,
                    payload: encode_message(&message),
                });
            }
            self.push_ready(queue, &mut st, seq, message, journaled, true);
        }
        if !records.is_empty() {
            drop(self.journal.append(records));
        }
    }

    /// Journals the `QueueCreate` that describes a durable subscription (again, when its options
    /// change: the latest one wins on recovery).
    fn journal_subscription(
        &self,
        queue: &Queue,
        key: &(String, String),
        tag: &(Option<String>, bool),
    ) {
        drop(self.journal.append(vec![JournalRecord::QueueCreate {
            queue: queue.id,
            name: queue.name.clone(),
            meta: encode_meta(&QueueMeta::DurableSubscription {
                client_id: key.0.clone(),
                subscription: key.1.clone(),
                pattern: queue.pattern().unwrap_or_default().to_string(),
                selector: queue.selector.as_ref().map(|s| s.text().to_string()),
                no_local: tag.1,
                tag: tag.0.clone(),
            }),
        }]));
    }

    /// The durable subscriptions of a client id.
    pub fn durable_subscriptions(&self, client_id: &str) -> Vec<DurableSubscriptionInfo> {
        let reg = lock(&self.registry);
        let mut subs: Vec<DurableSubscriptionInfo> = reg
            .durable
            .iter()
            .filter(|((cid, _), _)| cid == client_id)
            .map(|((_, name), q)| DurableSubscriptionInfo {
                subscription: name.clone(),
                pattern: q.pattern().unwrap_or_default().to_string(),
                selector: q.selector.as_ref().map(|s| s.text().to_string()),
                tag: lock(&q.tag).0.clone(),
                pending: lock(&q.state).len(),
            })
            .collect();
        subs.sort_by(|a, b| a.subscription.cmp(&b.subscription));
        subs
    }

    /// Deletes every durable subscription of a client id that has no open consumer (MQTT clean
    /// start, session expiry); returns how many went.
    pub fn remove_durable_subscriptions(&self, client_id: &str) -> usize {
        let queues: Vec<Arc<Queue>> = {
            let mut reg = lock(&self.registry);
            let keys: Vec<(String, String)> = reg
                .durable
                .iter()
                .filter(|((cid, _), q)| cid == client_id && lock(&q.state).consumers.is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            let mut queues = Vec::new();
            for key in keys {
                if let Some(q) = reg.durable.remove(&key) {
                    reg.subscriptions.remove(&q.id);
                    queues.push(q);
                }
            }
            queues
        };
        for q in &queues {
            self.drop_queue(q);
        }
        queues.len()
    }

    /// Adds a new message to a queue's ready set, with its memory and expiry accounting.
    fn push_ready(
        &self,
        queue: &Queue,
        st: &mut QueueState,
        seq: u64,
        message: Arc<Message>,
        journaled: bool,
        retained: bool,
    ) {
        st.counters.enqueued += 1;
        let size = message.body.len() as u64;
        st.bytes += size;
        if pages_out(
            &self.config,
            st,
            self.memory_used.load(Ordering::Relaxed),
            size,
        ) {
            match self.pages.write(&encode_message(&message)) {
                Ok(page) => {
                    st.paged.push_back(PagedEntry {
                        seq,
                        page,
                        delivery_count: 0,
                        journaled,
                        size,
                        retained,
                    });
                    return;
                }
                Err(e) => {
                    tracing::warn!(queue = %queue.name, error = %e, "cannot page a message out; keeping it in memory")
                }
            }
        }
        if message.expiration > 0 {
            st.expiring += 1;
        }
        self.memory_used.fetch_add(size, Ordering::Relaxed);
        st.ready.insert(
            queue.key(&message, seq),
            Entry {
                seq,
                message,
                delivery_count: 0,
                journaled,
                size,
                retained,
            },
        );
    }

    /// From now on, every message sent to a queue whose name matches `pattern` is also put on
    /// queue `mirror` (created if needed), in the same journal write: a durable copy that a
    /// route consumes while the queue's own consumers still get every message (a
    /// non-exclusive divert, in Artemis terms). Sends to `mirror` itself are not mirrored.
    /// Registering the same pair twice has no further effect.
    pub fn mirror_queue_sends(&self, pattern: &str, mirror: &str) -> Result<(), EngineError> {
        self.mirror_queue_sends_matching(pattern, mirror, None)
    }

    /// [`Engine::mirror_queue_sends`], copying only the sends that match `selector` (a JMS
    /// selector over the message as sent, like an Artemis divert's filter). The filter is
    /// applied at send time rather than by the mirror's consumer, so that what does not match
    /// never piles up in the mirror. Registering the pair again replaces its selector.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidSelector`] when `selector` does not parse.
    pub fn mirror_queue_sends_matching(
        &self,
        pattern: &str,
        mirror: &str,
        selector: Option<&str>,
    ) -> Result<(), EngineError> {
        self.add_send_mirror(false, pattern, mirror, selector, false)
    }

    /// Like [`Engine::mirror_queue_sends_matching`], but the matching sends go ONLY to `mirror`:
    /// the queue they were sent to does not get them (a move; an exclusive divert, in Artemis
    /// terms). Messages already in the matching queues stay there. Registering the pair again
    /// replaces its selector (and turns a mirror into a divert).
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidSelector`] when `selector` does not parse.
    pub fn divert_queue_sends(
        &self,
        pattern: &str,
        mirror: &str,
        selector: Option<&str>,
    ) -> Result<(), EngineError> {
        self.add_send_mirror(false, pattern, mirror, selector, true)
    }

    /// From now on, every send to a topic whose name matches `pattern` (and `selector`) goes
    /// ONLY to queue `mirror` (created if needed): the topic's subscribers and bound queues do
    /// not get it. Registering the pair again replaces its selector.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidSelector`] when `selector` does not parse.
    pub fn divert_topic_sends(
        &self,
        pattern: &str,
        mirror: &str,
        selector: Option<&str>,
    ) -> Result<(), EngineError> {
        self.add_send_mirror(true, pattern, mirror, selector, true)
    }

    fn add_send_mirror(
        &self,
        topic: bool,
        pattern: &str,
        mirror: &str,
        selector: Option<&str>,
        exclusive: bool,
    ) -> Result<(), EngineError> {
        let selector = match selector {
            Some(text) => Some(Arc::new(Selector::parse(text)?)),
            None => None,
        };
        let mut reg = lock(&self.registry);
        self.anycast_queue(&mut reg, mirror)?;
        reg.queue_mirrors
            .retain(|m| !(m.topic == topic && m.pattern == pattern && m.mirror == mirror));
        reg.queue_mirrors.push(SendMirror {
            topic,
            pattern: pattern.to_string(),
            mirror: mirror.to_string(),
            selector,
            exclusive,
        });
        Ok(())
    }

    /// Undoes [`Engine::mirror_queue_sends`] or [`Engine::divert_queue_sends`] for this pair (the
    /// mirror queue and what it holds stay). Returns whether the pair was registered.
    pub fn stop_mirroring_queue_sends(&self, pattern: &str, mirror: &str) -> bool {
        self.remove_send_mirror(false, pattern, mirror)
    }

    /// Undoes [`Engine::divert_topic_sends`] for this pair (the mirror queue and what it holds
    /// stay). Returns whether the pair was registered.
    pub fn stop_diverting_topic_sends(&self, pattern: &str, mirror: &str) -> bool {
        self.remove_send_mirror(true, pattern, mirror)
    }

    fn remove_send_mirror(&self, topic: bool, pattern: &str, mirror: &str) -> bool {
        let mut reg = lock(&self.registry);
        let before = reg.queue_mirrors.len();
        reg.queue_mirrors
            .retain(|m| !(m.topic == topic && m.pattern == pattern && m.mirror == mirror));
        reg.queue_mirrors.len() != before
    }

    /// Bytes of message bodies held in memory.
    pub fn memory_used(&self) -> u64 {
        self.memory_used.load(Ordering::Relaxed)
    }

    /// Bytes of paged-out messages in spill files (encoded: body plus headers).
    pub fn paged_bytes(&self) -> u64 {
        self.pages.live_bytes()
    }

    /// Refills a queue's in-memory window from its spill file, oldest first. Starts once the
    /// window is half empty (so that a draining queue reads its pages in runs, not one by one)
    /// and stops at the window, or at [`MIN_WINDOW`] while memory is past the paging mark.
    fn page_in(&self, queue: &Queue, st: &mut QueueState) {
        let window = self.config.page_window.max(MIN_WINDOW);
        if st.paged.is_empty() || st.ready.len() > window / 2 {
            return;
        }
        // How many come back: up to the window, or to MIN_WINDOW past the memory mark. Read
        // in batches of about a MiB, so that pages written in order come back in a few large
        // reads (one `pread` per message before) without holding many bodies twice.
        let (mut ready, mut memory) = (st.ready.len(), self.memory_used.load(Ordering::Relaxed));
        let mut wanted = 0;
        for front in st.paged.iter() {
            let memory_high =
                ready >= MIN_WINDOW && memory + front.size > page_threshold(&self.config);
            if ready >= window || memory_high {
                break;
            }
            ready += 1;
            memory += front.size;
            wanted += 1;
        }
        while wanted > 0 {
            let mut refs = Vec::new();
            let mut bytes = 0;
            for front in st.paged.iter().take(wanted) {
                if !refs.is_empty() && bytes + front.size > crate::paging::READ_RUN {
                    break;
                }
                bytes += front.size;
                refs.push(front.page);
            }
            wanted -= refs.len();
            if !self.page_in_batch(queue, st, &refs) {
                return;
            }
        }
    }

    /// Brings the pages `refs` (the front of `st.paged`) back into the ready set. False when
    /// one cannot be read back: it stays paged, and the queue stalls behind it.
    fn page_in_batch(&self, queue: &Queue, st: &mut QueueState, refs: &[PageRef]) -> bool {
        let bodies = match self.pages.read_many(refs) {
            Ok(bodies) => bodies,
            Err(e) => {
                // Never drop them: the queue stalls and the operator sees why.
                let seq = st.paged.front().map_or(0, |p| p.seq);
                tracing::error!(queue = %queue.name, seq, error = %e, "cannot read paged messages back");
                return false;
            }
        };
        for bytes in bodies {
            let message = match decode_message(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    // Never drop it: the queue stalls behind it and the operator sees why.
                    let seq = st.paged.front().map_or(0, |p| p.seq);
                    tracing::error!(queue = %queue.name, seq, error = %e, "cannot read a paged message back");
                    return false;
                }
            };
            let Some(paged) = st.paged.pop_front() else {
                break;
            };
            self.pages.release(&paged.page);
            if message.expiration > 0 {
                st.expiring += 1;
            }
            self.memory_used.fetch_add(paged.size, Ordering::Relaxed);
            st.ready.insert(
                queue.key(&message, paged.seq),
                Entry {
                    seq: paged.seq,
                    message: Arc::new(message),
                    delivery_count: paged.delivery_count,
                    journaled: paged.journaled,
                    size: paged.size,
                    retained: paged.retained,
                },
            );
        }
        true
    }

    /// True when `extra` more bytes would take the gateway past its memory limit: a send would
    /// meet flow control (AMQP 0-9-1 announces it with `connection.blocked`).
    pub fn memory_pressure(&self, extra: u64) -> bool {
        let limit = self.config.memory_limit_bytes;
        limit > 0 && self.memory_used().saturating_add(extra) > limit
    }

    /// Opens a session. With a client id already in use, the older session is taken over: it is
    /// told [`SessionEvent::TakenOver`] and closed before this one is registered, so its consumers
    /// and durable subscriptions are free for the new one.
    pub fn connect(
        self: &Arc<Self>,
        client_id: Option<String>,
    ) -> (Session, UnboundedReceiver<SessionEvent>) {
        self.open_session(client_id)
    }

    /// Opens a session unless another live session holds the client id: ActiveMQ's rule for
    /// OpenWire and STOMP (no link stealing), where MQTT takes over (see [`Engine::connect`]).
    pub fn connect_unique(
        self: &Arc<Self>,
        client_id: Option<String>,
    ) -> Result<(Session, UnboundedReceiver<SessionEvent>), EngineError> {
        if let Some(cid) = &client_id {
            let reg = lock(&self.registry);
            if reg.client_ids.contains_key(cid) {
                return Err(EngineError::ClientIdInUse(cid.clone()));
            }
        }
        // A race with another connect of the same id ends in a takeover, never two owners.
        Ok(self.open_session(client_id))
    }

    fn open_session(
        self: &Arc<Self>,
        client_id: Option<String>,
    ) -> (Session, UnboundedReceiver<SessionEvent>) {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = unbounded_channel();
        if let Some(cid) = &client_id {
            let previous = lock(&self.registry).client_ids.get(cid).copied();
            if let Some(old) = previous {
                let events = lock(&self.registry)
                    .sessions
                    .get(&old)
                    .map(|s| s.events.clone());
                if let Some(events) = events {
                    let _ = events.send(SessionEvent::TakenOver);
                }
                self.disconnect(old);
            }
        }
        {
            let mut reg = lock(&self.registry);
            if let Some(cid) = &client_id {
                reg.client_ids.insert(cid.clone(), id);
            }
            reg.sessions.insert(
                id,
                SessionState {
                    events: tx,
                    client_id: client_id.clone(),
                    consumers: IdSet::new(),
                    temp_names: Vec::new(),
                },
            );
        }
        (
            Session {
                engine: self.clone(),
                id,
                client_id,
                closed: false,
                produced: std::sync::atomic::AtomicBool::new(false),
            },
            rx,
        )
    }

    fn disconnect(&self, session: SessionId) {
        let state = {
            let mut reg = lock(&self.registry);
            let Some(state) = reg.sessions.remove(&session) else {
                return;
            };
            if let Some(cid) = &state.client_id {
                if reg.client_ids.get(cid) == Some(&session) {
                    reg.client_ids.remove(cid);
                }
            }
            state
        };
        for consumer in state.consumers {
            self.close_consumer(consumer);
        }
        for name in state.temp_names {
            self.delete_temp(&name);
        }
    }

    fn delete_temp(&self, name: &str) {
        let queue = {
            let mut reg = lock(&self.registry);
            reg.temp_names.remove(name);
            reg.queues.remove(name)
        };
        if let Some(queue) = queue {
            self.drop_queue(&queue);
        }
    }

    /// Removes a queue's messages and cancels its consumers; the queue must already be out of the
    /// registry.
    fn drop_queue(&self, queue: &Queue) {
        let mut freed_paged = 0u64;
        let (freed, consumers) = {
            let mut st = lock(&queue.state);
            st.deleted = true;
            let freed = st.bytes;
            st.bytes = 0;
            st.ready.clear();
            for paged in st.paged.drain(..) {
                self.pages.release(&paged.page);
                freed_paged += paged.size;
            }
            st.in_flight.clear();
            let consumers: Vec<_> = st.consumers.drain(..).map(|c| (c.id, c.events)).collect();
            (freed, consumers)
        };
        if queue.durable {
            drop(
                self.journal
                    .append(vec![JournalRecord::QueueDelete { queue: queue.id }]),
            );
        }
        // Paged bodies were never counted in memory.
        self.release_memory(freed.saturating_sub(freed_paged));
        let mut reg = lock(&self.registry);
        for (id, events) in consumers {
            let Some(entry) = reg.consumers.get_mut(&id) else {
                continue;
            };
            if entry.wildcard.is_some() {
                entry.queues.retain(|q| q.id != queue.id);
                continue;
            }
            let session = entry.session;
            reg.consumers.remove(&id);
            if let Some(s) = reg.sessions.get_mut(&session) {
                s.consumers.remove(&id);
            }
            let _ = events.send(SessionEvent::ConsumerCancelled(id));
        }
    }

    fn release_memory(&self, bytes: u64) {
        if bytes > 0 {
            // Saturating: an accounting slip must not wrap into a permanently full gateway.
            let _ = self
                .memory_used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                    Some(m.saturating_sub(bytes))
                });
            self.space.notify_waiters();
        }
    }

    fn policy_for(&self, name: &str) -> Option<&DestinationPolicy> {
        self.config
            .destinations
            .iter()
            .find(|p| pattern_matches(&p.pattern, name))
    }

    fn max_redeliveries_for(&self, name: &str) -> i32 {
        self.policy_for(name)
            .and_then(|p| p.max_redeliveries)
            .unwrap_or(self.config.max_redeliveries)
    }

    fn dead_letter_queue_for(&self, name: &str) -> String {
        self.policy_for(name)
            .and_then(|p| p.dead_letter_queue.clone())
            .unwrap_or_else(|| self.config.dead_letter_queue.clone())
    }

    /// Finds or creates the anycast queue `name`. Must be called with the registry locked.
    fn anycast_queue(&self, reg: &mut Registry, name: &str) -> Result<Arc<Queue>, EngineError> {
        if let Some(q) = reg.queues.get(name) {
            return Ok(q.clone());
        }
        if name.starts_with(TEMP_PREFIX) {
            return Err(EngineError::UnknownDestination(format!("queue://{name}")));
        }
        validate_name(name).map_err(EngineError::InvalidDestination)?;
        if crate::address::is_pattern(name) {
            return Err(EngineError::InvalidDestination(format!(
                "cannot send to or create the wildcard queue {name}"
            )));
        }
        let queue = Arc::new(Queue {
            id: self.next_queue_id.fetch_add(1, Ordering::Relaxed),
            name: name.to_string(),
            kind: QueueKind::Anycast,
            durable: true,
            selector: None,
            priority_cap: self
                .options_of(name)
                .and_then(|o| o.max_priority)
                .or_else(|| priority_cap_for(&self.config, name)),
            tag: Mutex::new((None, false)),
            state: Mutex::new(QueueState::default()),
        });
        // Appended under the registry lock: any Add for this queue is appended later.
        drop(self.journal.append(vec![JournalRecord::QueueCreate {
            queue: queue.id,
            name: name.to_string(),
            meta: encode_meta(&QueueMeta::Anycast),
        }]));
        {
            let mut st = lock(&queue.state);
            for (id, entry) in reg.consumers.iter_mut() {
                let Some(w) = &entry.wildcard else { continue };
                if pattern_matches(&w.pattern, name) {
                    debug_assert_eq!(w.slot.id, *id);
                    st.consumers.push(w.slot.clone());
                    entry.queues.push(queue.clone());
                }
            }
        }
        reg.queues.insert(name.to_string(), queue.clone());
        Ok(queue)
    }

    fn resolve_targets(
        &self,
        destination: &Destination,
        message: &Message,
        sender: SessionId,
    ) -> Result<Vec<Arc<Queue>>, EngineError> {
        let properties = &message.properties;
        let mut reg = lock(&self.registry);
        match destination.kind {
            DestinationKind::Queue => {
                let own = self.anycast_queue(&mut reg, &destination.name)?;
                let (mirrors, diverted) = send_mirrors(&reg, false, &destination.name, message);
                let mut targets = Vec::with_capacity(mirrors.len() + 1);
                // A divert (a route moving from the queue's pattern) takes the send away.
                if !diverted {
                    targets.push(own);
                }
                for mirror in mirrors {
                    targets.push(self.anycast_queue(&mut reg, &mirror)?);
                }
                Ok(targets)
            }
            DestinationKind::Topic => {
                validate_name(&destination.name).map_err(EngineError::InvalidDestination)?;
                if crate::address::is_pattern(&destination.name) {
                    return Err(EngineError::InvalidDestination(format!(
                        "cannot send to the wildcard topic {}",
                        destination.name
                    )));
                }
                if destination.name.starts_with(TEMP_PREFIX)
                    && !reg.temp_names.contains(&destination.name)
                {
                    return Err(EngineError::UnknownDestination(destination.to_string()));
                }
                // A route moving from a matching topic takes the send: only its queue gets it.
                let (mirrors, diverted) = send_mirrors(&reg, true, &destination.name, message);
                if diverted {
                    let mut targets = Vec::with_capacity(mirrors.len());
                    for mirror in mirrors {
                        targets.push(self.anycast_queue(&mut reg, &mirror)?);
                    }
                    return Ok(targets);
                }
                // A topic send is a publish to `amq.topic`: its subscriptions and the queues
                // bound to it (and through it) all get a copy.
                let routed = lock(&self.exchanges).route(
                    crate::exchange::TOPIC_EXCHANGE,
                    &destination.name,
                    properties,
                )?;
                Ok(routed_queues(&reg, &routed, sender))
            }
        }
    }

    /// The queues the bindings of `exchange` give `key`, without routes: dead letters take this
    /// way, as they are not sends and routes copy or move sends only.
    fn exchange_queues(
        &self,
        exchange: &str,
        key: &str,
        properties: &BTreeMap<String, PropertyValue>,
    ) -> Result<Vec<Arc<Queue>>, EngineError> {
        let reg = lock(&self.registry);
        let routed = lock(&self.exchanges).route(exchange, key, properties)?;
        Ok(routed_queues(&reg, &routed, 0))
    }

    /// The queues a publish to `exchange` with `key` reaches: existing anycast queues only, and
    /// the topic subscriptions of every address that reached `amq.topic`.
    ///
    /// Routes see these publishes as they see sends (`resolve_targets`): the copies and moves
    /// from a queue apply to every queue name the publish reaches (the default exchange's key
    /// among them), and a move from a topic to every address that reached `amq.topic`. A publish
    /// to `amq.topic` itself whose key a move takes goes to the route only, as a topic send.
    fn resolve_exchange(
        &self,
        exchange: &str,
        key: &str,
        message: &Message,
        sender: SessionId,
    ) -> Result<Vec<Arc<Queue>>, EngineError> {
        let mut reg = lock(&self.registry);
        let mut routed = lock(&self.exchanges).route(exchange, key, &message.properties)?;
        if reg.queue_mirrors.is_empty() {
            return Ok(routed_queues(&reg, &routed, sender));
        }
        let mut mirrors = Vec::new();
        let mut key_moved = false;
        routed.topic_addresses.retain(|address| {
            let (to, diverted) = send_mirrors(&reg, true, address, message);
            mirrors.extend(to);
            key_moved |= diverted && address == key;
            !diverted
        });
        let mut targets = if exchange == crate::exchange::TOPIC_EXCHANGE && key_moved {
            Vec::new()
        } else {
            routed.queues.retain(|name| {
                let (to, diverted) = send_mirrors(&reg, false, name, message);
                mirrors.extend(to);
                !diverted
            });
            routed_queues(&reg, &routed, sender)
        };
        for mirror in mirrors {
            let queue = self.anycast_queue(&mut reg, &mirror)?;
            if !targets.iter().any(|t| t.id == queue.id) {
                targets.push(queue);
            }
        }
        Ok(targets)
    }

    /// What a publish to `queue` must fit: its policy's or arguments' limits and what to do
    /// when they are reached.
    fn admission_limits(&self, queue: &Queue) -> AdmissionLimits {
        let policy = self.policy_for(&queue.name);
        let mut limits = AdmissionLimits {
            mode: policy
                .and_then(|p| p.flow_control)
                .unwrap_or(self.config.flow_control),
            max_messages: policy.map(|p| p.max_messages).unwrap_or(0),
            max_bytes: policy.map(|p| p.max_bytes).unwrap_or(0),
            dead_letter_refused: false,
        };
        if let Some(o) = self.options_of(&queue.name) {
            if o.max_length.is_some() || o.max_length_bytes.is_some() {
                limits.max_messages = o.max_length.unwrap_or(0);
                limits.max_bytes = o.max_length_bytes.unwrap_or(0);
                limits.mode = match o.overflow {
                    Overflow::DropHead => FlowControl::DropOldest,
                    Overflow::RejectPublish | Overflow::RejectPublishDeadLetter => {
                        FlowControl::Fail
                    }
                };
                if limits.max_messages == 0 && o.max_length.is_some() {
                    // The engine's 0 means "no limit": x-max-length 0 keeps at most one here.
                    limits.max_messages = 1;
                }
                limits.dead_letter_refused = o.overflow == Overflow::RejectPublishDeadLetter;
            }
        }
        limits
    }

    /// The limit a message of `size` bytes would pass in `queue` now, if any, and whether it
    /// is the queue's own length limit (rather than a broker-wide one).
    fn limit_reached(
        &self,
        queue: &Queue,
        limits: &AdmissionLimits,
        size: u64,
        journaled: bool,
    ) -> Option<(String, bool)> {
        let st = lock(&queue.state);
        if limits.max_messages > 0 && st.len() as u64 >= limits.max_messages {
            Some((format!("{} messages", limits.max_messages), true))
        } else if limits.max_bytes > 0 && st.bytes + size > limits.max_bytes {
            Some((format!("{} bytes", limits.max_bytes), true))
        } else if self.config.memory_limit_bytes > 0
            && self.memory_used.load(Ordering::Relaxed) + size > self.config.memory_limit_bytes
        {
            Some((
                format!(
                    "global memory limit of {} bytes",
                    self.config.memory_limit_bytes
                ),
                false,
            ))
        } else if journaled
            && self.config.disk_limit_bytes > 0
            && self.journal.stats().bytes + size > self.config.disk_limit_bytes
        {
            Some((
                format!(
                    "global disk limit of {} bytes",
                    self.config.disk_limit_bytes
                ),
                false,
            ))
        } else {
            None
        }
    }

    /// True when `queue` can take `message` now, as it nearly always can: [`Engine::apply`]
    /// then does not enter [`Engine::admit`], whose future (a wait on `space`) would otherwise
    /// be part of every publish's.
    fn admits_now(&self, queue: &Queue, message: &Message, journaled: bool) -> bool {
        let limits = self.admission_limits(queue);
        self.limit_reached(queue, &limits, message.body.len() as u64, journaled)
            .is_none()
    }

    /// Waits (or fails, or makes room) until `queue` can take `message`.
    async fn admit(
        &self,
        queue: &Queue,
        message: &Message,
        journaled: bool,
    ) -> Result<(), EngineError> {
        let size = message.body.len() as u64;
        let limits = self.admission_limits(queue);
        let deadline = self.config.send_timeout.map(|t| Instant::now() + t);
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // `at_length`: the queue's own length limit, not a broker-wide one, is what is hit.
            let Some((reason, at_length)) = self.limit_reached(queue, &limits, size, journaled)
            else {
                return Ok(());
            };
            match limits.mode {
                FlowControl::Fail => {
                    if limits.dead_letter_refused && at_length {
                        // Not journaled for this queue: nothing to acknowledge when it leaves.
                        self.dead_letter(vec![DeadLetter {
                            entry: Entry {
                                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                                message: Arc::new(message.clone()),
                                delivery_count: 0,
                                journaled: false,
                                size,
                                retained: false,
                            },
                            from: queue.name.clone(),
                            cause: "maxlen",
                        }]);
                    }
                    return Err(EngineError::ResourceLimit {
                        destination: queue.name.clone(),
                        reason,
                    });
                }
                FlowControl::DropOldest => {
                    if !self.drop_oldest(queue) {
                        return Err(EngineError::ResourceLimit {
                            destination: queue.name.clone(),
                            reason,
                        });
                    }
                }
                FlowControl::Block => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(EngineError::SendTimeout(queue.name.clone()));
                    }
                    // Acks and drops notify; disk space freed by compaction does not, so look
                    // again now and then.
                    let _blocked = self.stats.blocked();
                    let _ = tokio::time::timeout(RECHECK_BLOCKED, notified).await;
                }
            }
        }
    }

    fn drop_oldest(&self, queue: &Queue) -> bool {
        let mut st = lock(&queue.state);
        let oldest = st.ready.keys().min_by_key(|(_, seq)| *seq).copied();
        let Some(key) = oldest else {
            // Nothing in memory: the oldest is the first paged message.
            let Some(paged) = st.paged.pop_front() else {
                return false;
            };
            self.pages.release(&paged.page);
            st.bytes = st.bytes.saturating_sub(paged.size);
            if paged.journaled {
                drop(self.journal.append_lazy(vec![JournalRecord::Ack {
                    queue: queue.id,
                    seq: paged.seq,
                }]));
            }
            drop(st);
            tracing::debug!(queue = %queue.name, "dropped the oldest message to make room");
            self.space.notify_waiters();
            return true;
        };
        let Some(entry) = st.ready.remove(&key) else {
            return false;
        };
        st.bytes = st.bytes.saturating_sub(entry.size);
        if entry.message.expiration > 0 {
            st.expiring = st.expiring.saturating_sub(1);
        }
        drop(st);
        tracing::debug!(queue = %queue.name, "dropped the oldest message to make room");
        self.release_memory(entry.size);
        if self
            .options_of(&queue.name)
            .is_some_and(|o| o.dead_letter.is_some())
        {
            self.dead_letter(vec![DeadLetter {
                entry,
                from: queue.name.clone(),
                cause: "maxlen",
            }]);
        } else if entry.journaled {
            drop(self.journal.append_lazy(vec![JournalRecord::Ack {
                queue: queue.id,
                seq: entry.seq,
            }]));
        }
        true
    }

    /// Applies staged sends and acks as one journal batch, then makes the sends visible.
    /// Resolves to the durability and, per send, how many queues it reached.
    ///
    /// The sends are resolved to their queues, admitted, then carried out. Nearly every batch
    /// is admitted at once: it is then carried out before this returns, and only a batch that
    /// meets a limit waits, in a boxed future. So the future every publish embeds stays small
    /// (an `async fn` here put the wait's state, over a kilobyte, in every session's future,
    /// moved whole on every publish).
    fn apply(
        &self,
        session: SessionId,
        sends: Vec<(Target, Message)>,
        acks: Vec<(ConsumerId, u64)>,
    ) -> Applying<'_> {
        let plan = match self.plan(session, sends) {
            Ok(plan) => plan,
            Err(e) => return Applying::Now(std::future::ready(Err(e))),
        };
        let admitted = plan.sends.iter().all(|(message, targets)| {
            targets
                .iter()
                .all(|queue| self.admits_now(queue, message, message.persistent && queue.durable))
        });
        if admitted {
            return Applying::Now(std::future::ready(Ok(self.carry_out(plan, acks))));
        }
        Applying::Later(Box::pin(async move {
            for (message, targets) in &plan.sends {
                for queue in targets {
                    self.admit(queue, message, message.persistent && queue.durable)
                        .await?;
                }
            }
            Ok(self.carry_out(plan, acks))
        }))
    }

    /// Gives each send its id, timestamp and address, and resolves the queues it reaches.
    fn plan(&self, session: SessionId, sends: Vec<(Target, Message)>) -> Result<Plan, EngineError> {
        let mut plan = Plan {
            sends: Vec::with_capacity(sends.len()),
            topics: Vec::new(),
        };
        for (target, mut message) in sends {
            if message.message_id.is_empty() {
                message.message_id = self.new_message_id();
            }
            if message.timestamp == 0 {
                message.timestamp = now_ms();
            }
            let mut targets = match &target {
                Target::Destination(destination) => {
                    message.address = destination.name.clone();
                    self.resolve_targets(destination, &message, session)?
                }
                Target::Exchange { exchange, key } => {
                    message.address = key.clone();
                    self.resolve_exchange(exchange, key, &message, session)?
                }
            };
            // A publish to a virtual topic also reaches its consumer queues.
            let topic_publish = match &target {
                Target::Destination(destination) => destination.kind == DestinationKind::Topic,
                Target::Exchange { exchange, .. } => {
                    exchange.as_str() == crate::exchange::TOPIC_EXCHANGE
                }
            };
            if topic_publish {
                self.add_virtual_topic_queues(&message.address, &message, &mut targets);
                plan.topics.push(message.address.clone());
            }
            plan.sends.push((message, targets));
        }
        Ok(plan)
    }

    /// Journals and enqueues admitted sends, and takes the acks; see [`Engine::apply`].
    fn carry_out(&self, plan: Plan, acks: Vec<(ConsumerId, u64)>) -> (Durability, Vec<usize>) {
        let Plan { sends, topics } = plan;
        let mut planned: Vec<(Arc<Queue>, Arc<Message>, u64)> = Vec::new();
        let mut reached = Vec::with_capacity(sends.len());
        for (message, targets) in sends {
            reached.push(targets.len());
            let message = Arc::new(message);
            for queue in targets {
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                let ttl = self.options_of(&queue.name).and_then(|o| o.message_ttl);
                let message = match ttl {
                    // The queue's TTL caps the message's own expiration, for this queue only.
                    Some(ttl) => {
                        let deadline = now_ms().saturating_add(ttl.as_millis() as u64).max(1);
                        let mut copy = (*message).clone();
                        if copy.expiration == 0 || copy.expiration > deadline {
                            copy.expiration = deadline;
                        }
                        Arc::new(copy)
                    }
                    None => message.clone(),
                };
                planned.push((queue, message, seq));
            }
        }
        let mut records = Vec::new();
        let mut touched: Vec<Arc<Queue>> = Vec::new();
        for (consumer, seq) in &acks {
            // A delivery already returned (its consumer closed) is redelivered anyway: skip it.
            let Ok((queue, entry)) = self.take_in_flight(*consumer, *seq) else {
                continue;
            };
            if entry.journaled {
                records.push(JournalRecord::Ack {
                    queue: queue.id,
                    seq: entry.seq,
                });
            }
            self.release_memory(entry.size);
            touched.push(queue);
        }
        let mut payloads: HashMap<*const Message, bytes::Bytes> = HashMap::new();
        for (queue, message, seq) in &planned {
            if queue.durable && message.persistent {
                let payload = payloads
                    .entry(Arc::as_ptr(message))
                    .or_insert_with(|| encode_message(message))
                    .clone();
                records.push(JournalRecord::Add {
                    queue: queue.id,
                    seq: *seq,
                    payload,
                });
            }
        }
        let commit = if records.is_empty() {
            None
        } else {
            Some(self.journal.append(records))
        };
        for (queue, message, seq) in planned {
            let journaled = queue.durable && message.persistent;
            let mut st = lock(&queue.state);
            if st.deleted {
                continue;
            }
            self.push_ready(&queue, &mut st, seq, message, journaled, false);
            let dead = self.dispatch(&queue, &mut st);
            drop(st);
            self.dead_letter(dead);
        }
        for queue in touched {
            self.redispatch(&queue);
        }
        if !topics.is_empty() {
            self.stats.topics_published(&topics);
        }
        (Durability(commit), reached)
    }

    fn take_in_flight(
        &self,
        consumer: ConsumerId,
        seq: u64,
    ) -> Result<(Arc<Queue>, Entry), EngineError> {
        let queue = self.locate(consumer, seq)?;
        let mut st = lock(&queue.state);
        let owned = st
            .in_flight
            .get(&seq)
            .is_some_and(|f| f.consumer == consumer);
        if !owned {
            return Err(EngineError::UnknownDelivery { consumer, seq });
        }
        let Some(flight) = st.in_flight.remove(&seq) else {
            return Err(EngineError::UnknownDelivery { consumer, seq });
        };
        if let Some(slot) = st.consumers.iter_mut().find(|c| c.id == consumer) {
            release_credits(&slot.in_flight, 1);
        }
        st.bytes = st.bytes.saturating_sub(flight.entry.size);
        if flight.entry.message.expiration > 0 {
            st.expiring = st.expiring.saturating_sub(1);
        }
        st.counters.count_ack(&flight.entry.message);
        drop(st);
        Ok((queue, flight.entry))
    }

    fn consumer_queues(&self, consumer: ConsumerId) -> Result<Vec<Arc<Queue>>, EngineError> {
        lock(&self.registry)
            .consumers
            .get(&consumer)
            .map(|e| e.queues.clone())
            .ok_or(EngineError::UnknownConsumer(consumer))
    }

    /// The queue where `seq` is pending on `consumer`.
    fn locate(&self, consumer: ConsumerId, seq: u64) -> Result<Arc<Queue>, EngineError> {
        let queues = self.consumer_queues(consumer)?;
        if queues.len() == 1 {
            return queues
                .into_iter()
                .next()
                .ok_or(EngineError::UnknownDelivery { consumer, seq });
        }
        queues
            .into_iter()
            .find(|q| {
                lock(&q.state)
                    .in_flight
                    .get(&seq)
                    .is_some_and(|f| f.consumer == consumer)
            })
            .ok_or(EngineError::UnknownDelivery { consumer, seq })
    }

    fn redispatch(&self, queue: &Queue) {
        let mut st = lock(&queue.state);
        let dead = self.dispatch(queue, &mut st);
        drop(st);
        self.dead_letter(dead);
    }

    /// Hands ready messages to consumers with credit, round robin. Returns expired messages for
    /// the caller to dead-letter once the lock is released.
    fn dispatch(&self, queue: &Queue, st: &mut QueueState) -> Vec<DeadLetter> {
        let mut dead = Vec::new();
        if st.consumers.is_empty() {
            return dead;
        }
        self.page_in(queue, st);
        if st.ready.is_empty() {
            return dead;
        }
        let now = now_ms();
        let exclusive = st.consumers.iter().find(|c| c.exclusive).map(|c| c.id);
        // Consumer priorities, highest first: each message goes to the first level with a
        // consumer that can take it. Almost always a single level (everyone at 0).
        let top = st.consumers.first().map_or(0, |c| c.priority);
        let single = [top];
        let mut mixed: Vec<i8> = Vec::new();
        if st.consumers.iter().any(|c| c.priority != top) {
            mixed = st.consumers.iter().map(|c| c.priority).collect();
            mixed.sort_unstable_by(|a, b| b.cmp(a));
            mixed.dedup();
        }
        let levels: &[i8] = if mixed.is_empty() { &single } else { &mixed };
        loop {
            let n = st.consumers.len();
            let mut chosen: Option<(usize, (u8, u64))> = None;
            let candidates = levels
                .iter()
                .flat_map(|level| (0..n).map(move |i| (*level, i)));
            for (level, i) in candidates {
                let ci = (st.next_consumer + i) % n;
                let Some(slot) = st.consumers.get(ci) else {
                    continue;
                };
                if slot.priority != level {
                    continue;
                }
                // A prefetch of 0 (a pulling JMS consumer) gets only what its extension grants.
                let window = slot
                    .prefetch
                    .load(Ordering::Relaxed)
                    .saturating_add(slot.extension.load(Ordering::Relaxed));
                if slot.in_flight.load(Ordering::Relaxed) >= window {
                    continue;
                }
                if exclusive.is_some_and(|e| e != slot.id) {
                    continue;
                }
                let mut expired = Vec::new();
                let mut found = None;
                for (key, entry) in st.ready.iter() {
                    let m = &entry.message;
                    if m.expiration > 0 && m.expiration <= now {
                        expired.push(*key);
                        continue;
                    }
                    if let Some(sel) = &slot.selector {
                        if !sel.matches(m, entry.delivery_count + 1) {
                            continue;
                        }
                    }
                    if let Some(group) = &m.group_id {
                        if st.groups.get(group).is_some_and(|owner| *owner != slot.id) {
                            continue;
                        }
                    }
                    found = Some(*key);
                    break;
                }
                for key in expired {
                    if let Some(entry) = st.ready.remove(&key) {
                        st.bytes = st.bytes.saturating_sub(entry.size);
                        st.expiring = st.expiring.saturating_sub(1);
                        st.counters.expired += 1;
                        dead.push(DeadLetter {
                            entry,
                            from: queue.name.clone(),
                            cause: "expired",
                        });
                    }
                }
                if let Some(key) = found {
                    chosen = Some((ci, key));
                    break;
                }
            }
            let Some((ci, key)) = chosen else {
                break;
            };
            let Some(mut entry) = st.ready.remove(&key) else {
                break;
            };
            entry.delivery_count += 1;
            let order = self.next_delivery.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = st.consumers.get_mut(ci) else {
                break;
            };
            let delivery = Delivery {
                consumer: slot.id,
                seq: entry.seq,
                destination: queue.destination_for(&entry.message),
                message: entry.message.clone(),
                delivery_count: entry.delivery_count,
                redelivered: entry.delivery_count > 1,
                retained: entry.retained,
            };
            if slot
                .events
                .send(SessionEvent::Deliver(Box::new(delivery)))
                .is_err()
            {
                // The session is gone; its consumers are being closed. Keep the message.
                entry.delivery_count -= 1;
                st.ready.insert(key, entry);
                st.consumers.remove(ci);
                continue;
            }
            slot.in_flight.fetch_add(1, Ordering::Relaxed);
            let consumer = slot.id;
            st.counters.delivered += 1;
            if entry.delivery_count > 1 {
                st.counters.redelivered += 1;
            }
            if entry.journaled {
                drop(self.journal.append_lazy(vec![JournalRecord::DeliveryCount {
                    queue: queue.id,
                    seq: entry.seq,
                    count: entry.delivery_count,
                }]));
            }
            if let Some(group) = &entry.message.group_id {
                if entry.message.group_seq == -1 {
                    // As ActiveMQ: JMSXGroupSeq -1 closes the group once its message is out;
                    // the group's next message may go to any consumer.
                    st.groups.remove(group);
                } else {
                    st.groups.entry(group.clone()).or_insert(consumer);
                }
            }
            st.next_consumer = (ci + 1) % n.max(1);
            st.in_flight.insert(
                entry.seq,
                InFlight {
                    entry,
                    consumer,
                    order,
                },
            );
        }
        let freed: u64 = dead.iter().map(|d| d.entry.size).sum();
        if freed > 0 {
            self.release_memory(freed);
        }
        dead
    }

    /// Moves messages to their dead-letter queue (persistent ones atomically with their removal
    /// from the source); expired non-persistent messages are dropped, as ActiveMQ does.
    fn dead_letter(&self, dead: Vec<DeadLetter>) {
        for letter in dead {
            let letter = match self.options_of(&letter.from) {
                Some(options) => match self.dead_letter_by_options(letter, &options) {
                    Some(letter) => letter,
                    None => continue,
                },
                None => letter,
            };
            let dlq_name = self.dead_letter_queue_for(&letter.from);
            let source_id = {
                let reg = lock(&self.registry);
                reg.queues.get(&letter.from).map(|q| q.id).or_else(|| {
                    reg.subscriptions
                        .values()
                        .find(|q| q.name == letter.from)
                        .map(|q| q.id)
                })
            };
            let ack = match (letter.entry.journaled, source_id) {
                (true, Some(queue)) => Some(JournalRecord::Ack {
                    queue,
                    seq: letter.entry.seq,
                }),
                _ => None,
            };
            let drop_it = letter.from == dlq_name
                || (letter.cause == "expired" && !letter.entry.message.persistent);
            if drop_it {
                if let Some(ack) = ack {
                    drop(self.journal.append_lazy(vec![ack]));
                }
                tracing::debug!(from = %letter.from, cause = letter.cause, "message discarded");
                continue;
            }
            let mut message = (*letter.entry.message).clone();
            message.properties.insert(
                "dlqDeliveryFailureCause".into(),
                PropertyValue::String(letter.cause.into()),
            );
            message.properties.insert(
                "originalDestination".into(),
                PropertyValue::String(letter.from.clone()),
            );
            message.address = dlq_name.clone();
            if letter.cause == "expired" {
                // Dead-lettered expired messages must not expire again in the DLQ.
                message.expiration = 0;
            }
            let dlq = {
                let mut reg = lock(&self.registry);
                self.anycast_queue(&mut reg, &dlq_name)
            };
            let Ok(dlq) = dlq else {
                tracing::error!(queue = %dlq_name, "dead-letter queue unusable; message dropped");
                continue;
            };
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let mut st = lock(&dlq.state);
            let mut records = Vec::new();
            let journaled = message.persistent;
            if journaled {
                records.push(JournalRecord::Add {
                    queue: dlq.id,
                    seq,
                    payload: encode_message(&message),
                });
            }
            records.extend(ack);
            if !records.is_empty() {
                drop(self.journal.append_lazy(records));
            }
            self.push_ready(&dlq, &mut st, seq, Arc::new(message), journaled, false);
            let more = self.dispatch(&dlq, &mut st);
            drop(st);
            if !more.is_empty() {
                self.dead_letter(more);
            }
        }
    }

    /// Returns in-flight messages to the ready set; those past their redelivery limit, or asked to,
    /// go to the dead-letter queue.
    fn return_messages(
        &self,
        queue: &Queue,
        st: &mut QueueState,
        flights: Vec<InFlight>,
        action: NackAction,
    ) -> Vec<DeadLetter> {
        let max = self.max_redeliveries_for(&queue.name);
        let mut dead = Vec::new();
        for flight in flights {
            if let Some(slot) = st.consumers.iter_mut().find(|c| c.id == flight.consumer) {
                release_credits(&slot.in_flight, 1);
            }
            let entry = flight.entry;
            let exhausted = max >= 0 && entry.delivery_count > max as u32;
            if action != NackAction::Requeue || exhausted {
                if action == NackAction::Expired {
                    st.counters.expired += 1;
                } else {
                    st.counters.dead_lettered += 1;
                }
                st.bytes = st.bytes.saturating_sub(entry.size);
                if entry.message.expiration > 0 {
                    st.expiring = st.expiring.saturating_sub(1);
                }
                dead.push(DeadLetter {
                    entry,
                    from: queue.name.clone(),
                    cause: match action {
                        NackAction::DeadLetter => "rejected",
                        NackAction::Expired => "expired",
                        NackAction::Requeue => "redelivery limit exceeded",
                    },
                });
            } else {
                st.ready.insert(queue.key(&entry.message, entry.seq), entry);
            }
        }
        let freed: u64 = dead.iter().map(|d| d.entry.size).sum();
        if freed > 0 {
            self.release_memory(freed);
        }
        dead
    }

    fn close_consumer(&self, consumer: ConsumerId) {
        let found = {
            let mut reg = lock(&self.registry);
            let found = reg.consumers.remove(&consumer);
            if let Some(entry) = &found {
                if let Some(s) = reg.sessions.get_mut(&entry.session) {
                    s.consumers.remove(&consumer);
                }
            }
            found
        };
        let Some(entry) = found else {
            return;
        };
        for queue in entry.queues {
            self.detach(&queue, consumer);
        }
    }

    /// Removes a consumer from one queue, returning its unacknowledged messages; a temporary
    /// subscription queue goes with it.
    fn detach(&self, queue: &Arc<Queue>, consumer: ConsumerId) {
        let queue = queue.clone();
        let mut st = lock(&queue.state);
        st.consumers.retain(|c| c.id != consumer);
        st.groups.retain(|_, owner| *owner != consumer);
        let seqs: Vec<u64> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.consumer == consumer)
            .map(|(s, _)| *s)
            .collect();
        let flights: Vec<InFlight> = seqs.iter().filter_map(|s| st.in_flight.remove(s)).collect();
        let mut dead = self.return_messages(&queue, &mut st, flights, NackAction::Requeue);
        // A temporary subscription goes with its last consumer (a shared one may have others).
        let temporary = matches!(&queue.kind, QueueKind::Subscription { durable: None, .. })
            && st.consumers.is_empty();
        if !temporary {
            dead.extend(self.dispatch(&queue, &mut st));
        }
        drop(st);
        self.dead_letter(dead);
        if temporary {
            let removed = {
                let mut reg = lock(&self.registry);
                reg.shared.retain(|_, q| q.id != queue.id);
                reg.subscriptions.remove(&queue.id)
            };
            if removed.is_some() {
                self.drop_queue(&queue);
            }
        }
    }

    /// Moves expired messages out of every queue. Call periodically (see [`Engine::run_expiry`]).
    pub fn expire_now(&self) {
        let queues: Vec<Arc<Queue>> = {
            let reg = lock(&self.registry);
            reg.queues
                .values()
                .chain(reg.subscriptions.values())
                .cloned()
                .collect()
        };
        let now = now_ms();
        for queue in queues {
            let mut st = lock(&queue.state);
            if st.expiring == 0 {
                continue;
            }
            let keys: Vec<(u8, u64)> = st
                .ready
                .iter()
                .filter(|(_, e)| e.message.expiration > 0 && e.message.expiration <= now)
                .map(|(k, _)| *k)
                .collect();
            let mut dead = Vec::new();
            for key in keys {
                if let Some(entry) = st.ready.remove(&key) {
                    st.bytes = st.bytes.saturating_sub(entry.size);
                    st.expiring = st.expiring.saturating_sub(1);
                    st.counters.expired += 1;
                    dead.push(DeadLetter {
                        entry,
                        from: queue.name.clone(),
                        cause: "expired",
                    });
                }
            }
            drop(st);
            let freed: u64 = dead.iter().map(|d| d.entry.size).sum();
            self.release_memory(freed);
            self.dead_letter(dead);
        }
    }

    /// Runs [`Engine::expire_now`] every `interval`, forever.
    pub async fn run_expiry(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.expire_now();
        }
    }

    /// A snapshot of the named queue.
    pub fn queue_info(&self, name: &str) -> Option<QueueInfo> {
        let queue = lock(&self.registry).queues.get(name).cloned()?;
        let st = lock(&queue.state);
        Some(QueueInfo {
            name: queue.name.clone(),
            ready: st.ready.len() + st.paged.len(),
            paged: st.paged.len(),
            unacked: st.in_flight.len(),
            consumers: st.consumers.len(),
            durable: queue.durable,
        })
    }

    /// Names of every anycast queue.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.registry).queues.keys().cloned().collect();
        names.sort();
        names
    }

    /// Declares an exchange, or checks that the existing one is equivalent (see
    /// [`Exchanges::declare`]).
    pub fn declare_exchange(&self, name: &str, spec: ExchangeSpec) -> Result<(), EngineError> {
        Ok(lock(&self.exchanges).declare(name, spec)?)
    }

    /// Every exchange with its spec and bindings (to persist a topology, or show it).
    pub fn exchanges(&self) -> Vec<(String, ExchangeSpec, Vec<Binding>)> {
        lock(&self.exchanges).list()
    }

    /// Sets (or with `None` clears) the alternate exchange of `name`: messages that match none
    /// of its bindings go there (RabbitMQ's `alternate-exchange`).
    pub fn set_alternate_exchange(&self, name: &str, alternate: Option<String>) {
        lock(&self.exchanges).set_alternate(name, alternate);
    }

    /// The alternate exchange of `name`, if it has one.
    pub fn alternate_exchange(&self, name: &str) -> Option<String> {
        lock(&self.exchanges).alternate(name).map(str::to_string)
    }

    /// The spec of exchange `name`, if it exists.
    pub fn exchange(&self, name: &str) -> Option<ExchangeSpec> {
        lock(&self.exchanges).get(name)
    }

    /// Deletes an exchange and the bindings that lead to it.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), EngineError> {
        Ok(lock(&self.exchanges).delete(name, if_unused)?)
    }

    /// Binds a queue or exchange to the exchange `source`. A queue target must exist.
    pub fn bind(&self, source: &str, binding: Binding) -> Result<(), EngineError> {
        let reg = lock(&self.registry);
        if let BindingTarget::Queue(q) = &binding.target {
            if !reg.queues.contains_key(q) {
                return Err(EngineError::UnknownDestination(format!("queue://{q}")));
            }
        }
        Ok(lock(&self.exchanges).bind(source, binding)?)
    }

    /// Removes a binding from the exchange `source`.
    pub fn unbind(&self, source: &str, binding: &Binding) -> Result<(), EngineError> {
        Ok(lock(&self.exchanges).unbind(source, binding)?)
    }

    fn options_of(&self, name: &str) -> Option<Arc<QueueOptions>> {
        let options = lock(&self.queue_options);
        if options.is_empty() {
            return None;
        }
        options.get(name).cloned()
    }

    /// Dead-letters by a queue's own options: to its dead-letter exchange, or nowhere when it
    /// discards dead letters. Returns the letter when the options leave it to the default rule.
    fn dead_letter_by_options(
        &self,
        letter: DeadLetter,
        options: &QueueOptions,
    ) -> Option<DeadLetter> {
        if options.dead_letter.is_none() && !options.discard_dead_letters {
            return Some(letter);
        }
        let source = lock(&self.registry).queues.get(&letter.from).map(|q| q.id);
        let mut records = Vec::new();
        if let (true, Some(queue)) = (letter.entry.journaled, source) {
            records.push(JournalRecord::Ack {
                queue,
                seq: letter.entry.seq,
            });
        }
        let mut pushes = Vec::new();
        if let Some((exchange, key)) = &options.dead_letter {
            let mut message = (*letter.entry.message).clone();
            let reason = match letter.cause {
                "expired" => "expired",
                "rejected" => "rejected",
                "maxlen" => "maxlen",
                _ => "delivery_limit",
            };
            message.expiration = 0;
            // The exchange it was published to (AMQP) and its routing key, for `x-death`.
            let died_exchange = match message.properties.get("amqp.exchange") {
                Some(PropertyValue::String(x)) => x.clone(),
                _ => String::new(),
            };
            let died_key = message.address.clone();
            crate::death::record_death(
                &mut message,
                &letter.from,
                reason,
                &died_exchange,
                &died_key,
                now_ms() / 1000,
            );
            for (name, value) in [
                ("x-first-death-reason", reason.to_string()),
                ("x-first-death-queue", letter.from.clone()),
                ("x-first-death-exchange", died_exchange.clone()),
                ("x-last-death-reason", reason.to_string()),
                ("x-last-death-queue", letter.from.clone()),
                ("x-last-death-exchange", died_exchange.clone()),
            ] {
                if name.starts_with("x-first") && message.properties.contains_key(name) {
                    continue;
                }
                message
                    .properties
                    .insert(name.to_string(), PropertyValue::String(value));
            }
            let key = key.clone().unwrap_or_else(|| message.address.clone());
            message.address = key.clone();
            // Delivered from the dead-letter exchange, as RabbitMQ does.
            if message.properties.contains_key("amqp.exchange") {
                message.properties.insert(
                    "amqp.exchange".to_string(),
                    PropertyValue::String(exchange.clone()),
                );
            }
            let targets = self
                .exchange_queues(exchange, &key, &message.properties)
                .unwrap_or_default();
            let message = Arc::new(message);
            for queue in targets {
                if queue.name == letter.from {
                    continue; // no cycle back into the queue it left
                }
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                let journaled = queue.durable && message.persistent;
                // The target queue's own `x-message-ttl` applies, as for a publish (RabbitMQ's
                // delayed-retry pattern: dead-letter into a queue with a TTL).
                let message = match self.options_of(&queue.name).and_then(|o| o.message_ttl) {
                    Some(ttl) => {
                        let mut copy = (*message).clone();
                        copy.expiration = now_ms().saturating_add(ttl.as_millis() as u64).max(1);
                        Arc::new(copy)
                    }
                    None => message.clone(),
                };
                if journaled {
                    records.push(JournalRecord::Add {
                        queue: queue.id,
                        seq,
                        payload: encode_message(&message),
                    });
                }
                pushes.push((queue, seq, journaled, message));
            }
            if pushes.is_empty() {
                tracing::debug!(from = %letter.from, exchange = %exchange, "dead letter unroutable; dropped");
            }
            if !records.is_empty() {
                drop(self.journal.append_lazy(records));
            }
            for (queue, seq, journaled, message) in pushes {
                let mut st = lock(&queue.state);
                if st.deleted {
                    continue;
                }
                self.push_ready(&queue, &mut st, seq, message, journaled, false);
                let more = self.dispatch(&queue, &mut st);
                drop(st);
                if !more.is_empty() {
                    self.dead_letter(more);
                }
            }
        } else if !records.is_empty() {
            drop(self.journal.append_lazy(records));
        }
        None
    }

    /// Creates the anycast queue `name` with `options` if it does not exist (the options are
    /// replaced if it does; a queue's priority ordering is fixed when it is created).
    pub fn declare_queue_with(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueInfo, EngineError> {
        {
            let mut all = lock(&self.queue_options);
            if options == QueueOptions::default() {
                all.remove(name);
            } else {
                all.insert(name.to_string(), Arc::new(options));
            }
        }
        self.declare_queue(name)
    }

    /// Creates the anycast queue `name` if it does not exist; returns a snapshot of it.
    pub fn declare_queue(&self, name: &str) -> Result<QueueInfo, EngineError> {
        {
            let mut reg = lock(&self.registry);
            self.anycast_queue(&mut reg, name)?;
        }
        self.queue_info(name)
            .ok_or_else(|| EngineError::UnknownDestination(format!("queue://{name}")))
    }
}

/// The mirror queues a send to `destination` (a topic when `topic`) goes to, and whether one of
/// them diverts it (so that it does not go where it was sent).
fn send_mirrors(
    reg: &Registry,
    topic: bool,
    destination: &str,
    message: &Message,
) -> (Vec<String>, bool) {
    let mut diverted = false;
    let mut out = Vec::new();
    for m in reg.queue_mirrors.iter() {
        if m.takes(topic, destination, message) {
            diverted |= m.exclusive;
            out.push(m.mirror.clone());
        }
    }
    (out, diverted)
}

/// The queues of a routing result: existing anycast queues by name, then the topic
/// subscriptions whose pattern matches an address that reached `amq.topic` (no-local ones skip
/// their own session's sends); each queue once.
fn routed_queues(reg: &Registry, routed: &Routed, sender: SessionId) -> Vec<Arc<Queue>> {
    let mut seen = IdSet::new();
    let mut out = Vec::new();
    for name in &routed.queues {
        if let Some(q) = reg.queues.get(name) {
            if seen.insert(q.id) {
                out.push(q.clone());
            }
        }
    }
    if !routed.topic_addresses.is_empty() {
        for q in reg.subscriptions.values() {
            let QueueKind::Subscription {
                pattern,
                no_local_session,
                ..
            } = &q.kind
            else {
                continue;
            };
            if *no_local_session == Some(sender) {
                continue;
            }
            if routed
                .topic_addresses
                .iter()
                .any(|a| pattern_matches(pattern, a))
                && seen.insert(q.id)
            {
                out.push(q.clone());
            }
        }
    }
    out
}

/// Memory use past which queues page out (see [`PAGE_AT_PERCENT`]).
fn page_threshold(config: &EngineConfig) -> u64 {
    match config.memory_limit_bytes {
        0 => u64::MAX,
        limit => limit / 100 * PAGE_AT_PERCENT,
    }
}

/// Whether a new ready message of `size` bytes goes to the spill file rather than memory:
/// behind other paged messages (order), past the window, or past the memory mark (keeping a
/// minimal window either way).
fn pages_out(config: &EngineConfig, st: &QueueState, memory: u64, size: u64) -> bool {
    config.page_window > 0
        && (!st.paged.is_empty()
            || st.ready.len() >= config.page_window
            || (st.ready.len() >= MIN_WINDOW && memory + size > page_threshold(config)))
}

/// The highest priority level a queue orders by, `None` for a FIFO queue: the `max_priority`
/// of any matching policy (a queue's own declaration beats the broad configured patterns that
/// come first), else the JMS range 0-9 where the first matching policy or the broker turns
/// `prioritized_messages` on.
fn priority_cap_for(config: &EngineConfig, name: &str) -> Option<u8> {
    let matching = || {
        config
            .destinations
            .iter()
            .filter(|p| pattern_matches(&p.pattern, name))
    };
    if let Some(max) = matching().find_map(|p| p.max_priority) {
        return Some(max);
    }
    matching()
        .next()
        .and_then(|p| p.prioritized_messages)
        .unwrap_or(config.prioritized_messages)
        .then_some(9)
}

/// The ready-set key: rank (0 first) then arrival. A message above the cap ranks as the cap,
/// so that the messages of the top levels are FIFO among themselves, as RabbitMQ orders them.
fn ready_key(priority_cap: Option<u8>, message: &Message, seq: u64) -> (u8, u64) {
    let rank = match priority_cap {
        Some(cap) => u8::MAX - message.priority.min(cap),
        None => 0,
    };
    (rank, seq)
}

/// Gives `n` deliveries' credit back to a consumer's window.
fn release_credits(in_flight: &AtomicU32, n: u32) {
    let _ = in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |have| {
        Some(have.saturating_sub(n))
    });
}

/// One client session's handle on the engine. Dropping it closes the session: its consumers are
/// closed (unacknowledged messages go back to their queues) and its temporary destinations deleted.
pub struct Session {
    engine: Arc<Engine>,
    id: SessionId,
    client_id: Option<String>,
    closed: bool,
    /// Set once the session has sent a message (it then counts as a producer).
    produced: std::sync::atomic::AtomicBool,
}

impl Session {
    /// This session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The client id the session registered with.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Sends one message; resolves once it is routed and, if persistent, durable.
    pub async fn send(
        &self,
        destination: &Destination,
        message: Message,
    ) -> Result<(), EngineError> {
        self.publish(destination, message).await?.await
    }

    /// Routes one message and returns as soon as it is visible to consumers (after flow control
    /// admitted it), with the durability still to await: lets a session pipeline sends while
    /// keeping their confirmations in order.
    pub async fn publish(
        &self,
        destination: &Destination,
        message: Message,
    ) -> Result<Durability, EngineError> {
        self.mark_producer();
        self.mark_producer_of(destination);
        let (durability, _) = self
            .engine
            .apply(
                self.id,
                vec![(Target::Destination(destination.clone()), message)],
                Vec::new(),
            )
            .await?;
        Ok(durability)
    }

    /// Publishes one message to an exchange with a routing key (AMQP 0-9-1's `basic.publish`):
    /// it goes to every queue the exchange's bindings reach, the default exchange `""` reaching
    /// the existing queue named by the key and `amq.topic` the topic subscriptions of every
    /// protocol. Returns, as [`Session::publish`] does, once the message is visible, with its
    /// durability still to await and the number of queues it reached (0: unroutable).
    pub async fn publish_to_exchange(
        &self,
        exchange: &str,
        key: &str,
        message: Message,
    ) -> Result<(Durability, usize), EngineError> {
        self.mark_producer();
        self.mark_producer_of_exchange(exchange, key);
        let target = Target::Exchange {
            exchange: exchange.to_string(),
            key: key.to_string(),
        };
        let (durability, reached) = self
            .engine
            .apply(self.id, vec![(target, message)], Vec::new())
            .await?;
        Ok((durability, reached.first().copied().unwrap_or(0)))
    }

    /// Opens a consumer.
    pub fn subscribe(&self, spec: ConsumerSpec) -> Result<ConsumerId, EngineError> {
        let engine = &self.engine;
        let selector = match spec.selector.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(Arc::new(Selector::parse(text)?)),
            _ => None,
        };
        // A configured default of 0 would starve every consumer that asks for no window.
        let prefetch = spec
            .prefetch
            .unwrap_or_else(|| engine.config.default_prefetch.max(1));
        let id = engine.next_consumer.fetch_add(1, Ordering::Relaxed);
        let mut reg = lock(&engine.registry);
        let events = reg
            .sessions
            .get(&self.id)
            .map(|s| s.events.clone())
            .ok_or(EngineError::SessionClosed)?;
        let (queue, consumer_selector) = match &spec.source {
            ConsumerSource::Queue(pattern) if crate::address::is_pattern(pattern) => {
                validate_name(pattern).map_err(EngineError::InvalidDestination)?;
                let wildcard = WildcardConsumer {
                    pattern: pattern.clone(),
                    slot: ConsumerSlot {
                        id,
                        events,
                        prefetch: Arc::new(AtomicU32::new(prefetch)),
                        in_flight: Arc::new(AtomicU32::new(0)),
                        extension: Arc::new(AtomicU32::new(0)),
                        selector,
                        exclusive: spec.exclusive,
                        priority: spec.priority,
                    },
                };
                let queues: Vec<Arc<Queue>> = reg
                    .queues
                    .iter()
                    .filter(|(name, _)| pattern_matches(pattern, name))
                    .map(|(_, q)| q.clone())
                    .collect();
                let slots: Vec<ConsumerSlot> =
                    queues.iter().map(|_| wildcard.slot.clone()).collect();
                reg.consumers.insert(
                    id,
                    ConsumerEntry {
                        queues: queues.clone(),
                        session: self.id,
                        wildcard: Some(wildcard),
                    },
                );
                if let Some(s) = reg.sessions.get_mut(&self.id) {
                    s.consumers.insert(id);
                }
                drop(reg);
                for (queue, slot) in queues.iter().zip(slots) {
                    let mut st = lock(&queue.state);
                    st.consumers.push(slot);
                    let dead = engine.dispatch(queue, &mut st);
                    drop(st);
                    engine.dead_letter(dead);
                }
                return Ok(id);
            }
            ConsumerSource::Queue(name) => (engine.anycast_queue(&mut reg, name)?, selector),
            ConsumerSource::Topic(pattern) => {
                validate_name(pattern).map_err(EngineError::InvalidDestination)?;
                let queue = Arc::new(Queue {
                    id: engine.next_queue_id.fetch_add(1, Ordering::Relaxed),
                    name: format!("{TEMP_PREFIX}sub-{}-{id}", engine.boot_id),
                    kind: QueueKind::Subscription {
                        pattern: pattern.clone(),
                        durable: None,
                        no_local_session: spec.no_local.then_some(self.id),
                    },
                    durable: false,
                    selector: None,
                    priority_cap: priority_cap_for(&engine.config, pattern),
                    tag: Mutex::new((None, false)),
                    state: Mutex::new(QueueState::default()),
                });
                reg.subscriptions.insert(queue.id, queue.clone());
                (queue, selector)
            }
            ConsumerSource::SharedTopic {
                pattern,
                subscription,
                durable: false,
            } => {
                validate_name(pattern).map_err(EngineError::InvalidDestination)?;
                let queue = match reg.shared.get(subscription) {
                    Some(q) if q.pattern() == Some(pattern.as_str()) => q.clone(),
                    Some(_) => {
                        return Err(EngineError::SubscriptionInUse(format!(
                            "shared subscription {subscription} is bound to another topic"
                        )))
                    }
                    None => {
                        let queue = Arc::new(Queue {
                            id: engine.next_queue_id.fetch_add(1, Ordering::Relaxed),
                            name: format!("{TEMP_PREFIX}shared-{}-{id}", engine.boot_id),
                            kind: QueueKind::Subscription {
                                pattern: pattern.clone(),
                                durable: None,
                                no_local_session: None,
                            },
                            durable: false,
                            selector: None,
                            priority_cap: priority_cap_for(&engine.config, pattern),
                            tag: Mutex::new((None, false)),
                            state: Mutex::new(QueueState::default()),
                        });
                        reg.shared.insert(subscription.clone(), queue.clone());
                        reg.subscriptions.insert(queue.id, queue.clone());
                        queue
                    }
                };
                (queue, selector)
            }
            ConsumerSource::DurableTopic {
                pattern,
                subscription,
            }
            | ConsumerSource::SharedTopic {
                pattern,
                subscription,
                durable: true,
            } => {
                validate_name(pattern).map_err(EngineError::InvalidDestination)?;
                // A shared durable subscription has no owner: its key has an empty client id
                // (which no session can have) and any number of consumers.
                let shared = matches!(spec.source, ConsumerSource::SharedTopic { .. });
                let client_id = if shared {
                    String::new()
                } else {
                    self.client_id.clone().ok_or_else(|| {
                        EngineError::InvalidDestination(
                            "a durable subscription needs a client id".into(),
                        )
                    })?
                };
                let key = (client_id.clone(), subscription.clone());
                let selector_text = selector.as_ref().map(|s| s.text().to_string());
                let existing = reg.durable.get(&key).cloned();
                let reuse = existing.as_ref().is_some_and(|q| {
                    q.pattern() == Some(pattern.as_str())
                        && q.selector.as_ref().map(|s| s.text().to_string()) == selector_text
                });
                if let Some(old) = existing.filter(|_| !reuse) {
                    // Changed pattern or selector: JMS says the old subscription is replaced.
                    if !lock(&old.state).consumers.is_empty() {
                        return Err(EngineError::SubscriptionInUse(format!(
                            "{client_id}.{subscription}"
                        )));
                    }
                    reg.durable.remove(&key);
                    reg.subscriptions.remove(&old.id);
                    drop(reg);
                    engine.drop_queue(&old);
                    reg = lock(&engine.registry);
                }
                let wanted_tag = (spec.tag.clone(), spec.no_local);
                let queue = match reg.durable.get(&key) {
                    Some(q) => {
                        if !shared && !lock(&q.state).consumers.is_empty() {
                            return Err(EngineError::SubscriptionInUse(format!(
                                "{client_id}.{subscription}"
                            )));
                        }
                        let mut tag = lock(&q.tag);
                        if *tag != wanted_tag {
                            // New options, same messages: a later QueueCreate supersedes.
                            *tag = wanted_tag;
                            engine.journal_subscription(q, &key, &tag);
                        }
                        drop(tag);
                        q.clone()
                    }
                    None => {
                        let name = if shared {
                            format!("shared.{subscription}")
                        } else {
                            format!("{client_id}.{subscription}")
                        };
                        let queue = Arc::new(Queue {
                            id: engine.next_queue_id.fetch_add(1, Ordering::Relaxed),
                            name: name.clone(),
                            kind: QueueKind::Subscription {
                                pattern: pattern.clone(),
                                durable: Some(key.clone()),
                                no_local_session: None,
                            },
                            durable: true,
                            selector: selector.clone(),
                            priority_cap: priority_cap_for(&engine.config, pattern),
                            tag: Mutex::new(wanted_tag.clone()),
                            state: Mutex::new(QueueState::default()),
                        });
                        engine.journal_subscription(&queue, &key, &wanted_tag);
                        reg.durable.insert(key, queue.clone());
                        reg.subscriptions.insert(queue.id, queue.clone());
                        queue
                    }
                };
                // The subscription's own selector filters at dispatch, like a consumer selector.
                (queue, selector)
            }
        };
        reg.consumers.insert(
            id,
            ConsumerEntry {
                queues: vec![queue.clone()],
                session: self.id,
                wildcard: None,
            },
        );
        if let Some(s) = reg.sessions.get_mut(&self.id) {
            s.consumers.insert(id);
        }
        drop(reg);
        if spec.retained {
            engine.replay_retained(&queue);
        }
        let mut st = lock(&queue.state);
        st.consumers.push(ConsumerSlot {
            id,
            events,
            prefetch: Arc::new(AtomicU32::new(prefetch)),
            in_flight: Arc::new(AtomicU32::new(0)),
            extension: Arc::new(AtomicU32::new(0)),
            selector: consumer_selector,
            exclusive: spec.exclusive,
            priority: spec.priority,
        });
        let dead = engine.dispatch(&queue, &mut st);
        drop(st);
        engine.dead_letter(dead);
        Ok(id)
    }

    /// Stops dispatching to a consumer but keeps its unacknowledged deliveries pending on it, so
    /// they can still be acknowledged or refused (AMQP 0-9-1's `basic.cancel`). The consumer no
    /// longer counts in [`QueueInfo::consumers`]; [`Session::unsubscribe`] returns what is left.
    pub fn stop_consumer(&self, consumer: ConsumerId) {
        let engine = &self.engine;
        let queues = {
            let mut reg = lock(&engine.registry);
            let Some(entry) = reg.consumers.get_mut(&consumer) else {
                return;
            };
            entry.wildcard = None;
            entry.queues.clone()
        };
        for queue in queues {
            let mut st = lock(&queue.state);
            st.consumers.retain(|c| c.id != consumer);
            st.groups.retain(|_, owner| *owner != consumer);
            let dead = engine.dispatch(&queue, &mut st);
            drop(st);
            engine.dead_letter(dead);
        }
    }

    /// Closes a consumer; its unacknowledged messages go back to the queue, counted as delivered.
    pub fn unsubscribe(&self, consumer: ConsumerId) {
        self.engine.close_consumer(consumer);
    }

    /// Acknowledges deliveries individually. The ack record is journaled lazily (as ActiveMQ
    /// writes an ack that wants no response without a sync): it rides with the next fsync a send
    /// needs, `store.ack_sync_ms` later at the latest; awaiting the returned durability asks for
    /// the fsync at once.
    pub fn ack(&self, consumer: ConsumerId, seqs: &[u64]) -> Result<Durability, EngineError> {
        let engine = &self.engine;
        let queues = engine.consumer_queues(consumer)?;
        let mut records = Vec::new();
        let mut freed = 0;
        let mut acked = 0;
        for queue in &queues {
            let mut st = lock(&queue.state);
            let mut released = 0;
            for seq in seqs {
                let flight = match st.in_flight.entry(*seq) {
                    std::collections::hash_map::Entry::Occupied(e)
                        if e.get().consumer == consumer =>
                    {
                        e.remove()
                    }
                    _ => continue,
                };
                acked += 1;
                released += 1;
                st.counters.count_ack(&flight.entry.message);
                st.bytes = st.bytes.saturating_sub(flight.entry.size);
                if flight.entry.message.expiration > 0 {
                    st.expiring = st.expiring.saturating_sub(1);
                }
                freed += flight.entry.size;
                if flight.entry.journaled {
                    records.push(JournalRecord::Ack {
                        queue: queue.id,
                        seq: flight.entry.seq,
                    });
                }
            }
            if released > 0 {
                if let Some(slot) = st.consumers.iter().find(|c| c.id == consumer) {
                    release_credits(&slot.in_flight, released);
                }
            }
        }
        let commit = (!records.is_empty()).then(|| engine.journal.append_lazy(records));
        engine.release_memory(freed);
        // Freed credit may be usable on any queue of the consumer.
        for queue in &queues {
            engine.redispatch(queue);
        }
        if acked == 0 {
            if let Some(seq) = seqs.first() {
                return Err(EngineError::UnknownDelivery {
                    consumer,
                    seq: *seq,
                });
            }
        }
        Ok(Durability(commit))
    }

    /// Changes `consumer`'s prefetch (its window of unacknowledged deliveries), on every queue it
    /// consumes, then dispatches what the new window lets through: ActiveMQ's
    /// `ConsumerControl`, which a failover client sends to restore its prefetch after it
    /// resubscribed with 0. `0` makes it a pulling consumer (only its extension is granted).
    pub fn set_prefetch(&self, consumer: ConsumerId, prefetch: u32) {
        let engine = &self.engine;
        if let Some(w) = lock(&engine.registry)
            .consumers
            .get(&consumer)
            .and_then(|e| e.wildcard.as_ref())
        {
            w.slot.prefetch.store(prefetch, Ordering::Relaxed);
        }
        let Ok(queues) = engine.consumer_queues(consumer) else {
            return;
        };
        for queue in queues {
            let mut st = lock(&queue.state);
            if let Some(slot) = st.consumers.iter().find(|c| c.id == consumer) {
                slot.prefetch.store(prefetch, Ordering::Relaxed);
            }
            let dead = engine.dispatch(&queue, &mut st);
            drop(st);
            engine.dead_letter(dead);
        }
    }

    /// Widens `consumer`'s prefetch window by `extra` deliveries beyond its prefetch (replacing
    /// the previous extension): the number of its deliveries the client has handed to its
    /// application but not yet acknowledged (JMS `DELIVERED` acks of transacted and
    /// CLIENT_ACKNOWLEDGE sessions), as ActiveMQ's prefetch extension. Dispatches what the
    /// wider window lets through.
    pub fn set_prefetch_extension(&self, consumer: ConsumerId, extra: u32) {
        let engine = &self.engine;
        let Ok(queues) = engine.consumer_queues(consumer) else {
            return;
        };
        for queue in queues {
            let mut st = lock(&queue.state);
            if let Some(slot) = st.consumers.iter().find(|c| c.id == consumer) {
                slot.extension.store(extra, Ordering::Relaxed);
            }
            let dead = engine.dispatch(&queue, &mut st);
            drop(st);
            engine.dead_letter(dead);
        }
    }

    /// Acknowledges `seq` and every delivery to the same consumer made before it (JMS
    /// CLIENT_ACKNOWLEDGE, STOMP `ack:client`).
    pub fn ack_through(&self, consumer: ConsumerId, seq: u64) -> Result<Durability, EngineError> {
        let seqs = self.delivered_through(consumer, seq)?;
        self.ack(consumer, &seqs)
    }

    /// The unacknowledged deliveries of `consumer` up to and including `seq`, oldest first.
    pub fn delivered_through(
        &self,
        consumer: ConsumerId,
        seq: u64,
    ) -> Result<Vec<u64>, EngineError> {
        let queues = self.engine.consumer_queues(consumer)?;
        let mut pending: Vec<(u64, u64)> = Vec::new();
        let mut limit = None;
        for queue in &queues {
            let st = lock(&queue.state);
            for (s, f) in st.in_flight.iter() {
                if f.consumer == consumer {
                    pending.push((f.order, *s));
                    if *s == seq {
                        limit = Some(f.order);
                    }
                }
            }
        }
        let Some(limit) = limit else {
            return Err(EngineError::UnknownDelivery { consumer, seq });
        };
        pending.retain(|(order, _)| *order <= limit);
        pending.sort_unstable();
        Ok(pending.into_iter().map(|(_, s)| s).collect())
    }

    /// Refuses deliveries: requeued for redelivery or dead-lettered.
    pub fn nack(
        &self,
        consumer: ConsumerId,
        seqs: &[u64],
        action: NackAction,
    ) -> Result<(), EngineError> {
        let engine = &self.engine;
        let mut by_queue: Vec<(Arc<Queue>, Vec<u64>)> = Vec::new();
        for seq in seqs {
            let queue = engine.locate(consumer, *seq)?;
            match by_queue.iter_mut().find(|(q, _)| q.id == queue.id) {
                Some((_, list)) => list.push(*seq),
                None => by_queue.push((queue, vec![*seq])),
            }
        }
        for (queue, list) in by_queue {
            let mut st = lock(&queue.state);
            let mut flights = Vec::new();
            for seq in list {
                if st
                    .in_flight
                    .get(&seq)
                    .is_some_and(|f| f.consumer == consumer)
                {
                    if let Some(f) = st.in_flight.remove(&seq) {
                        flights.push(f);
                    }
                } else {
                    return Err(EngineError::UnknownDelivery { consumer, seq });
                }
            }
            let mut dead = engine.return_messages(&queue, &mut st, flights, action);
            dead.extend(engine.dispatch(&queue, &mut st));
            drop(st);
            engine.dead_letter(dead);
        }
        Ok(())
    }

    /// Commits a transaction: its sends and acks become durable in one journal batch, then the
    /// sends become visible.
    pub async fn commit(&self, tx: Transaction) -> Result<Durability, EngineError> {
        if !tx.sends.is_empty() {
            self.mark_producer();
            self.mark_transacted_producer(&tx);
        }
        Ok(self.engine.apply(self.id, tx.sends, tx.acks).await?.0)
    }

    /// Commits like [`Session::commit`] and also returns, per staged send in staging order, how
    /// many queues it reached (0: unroutable; AMQP 0-9-1 returns `mandatory` ones).
    pub async fn commit_counted(
        &self,
        tx: Transaction,
    ) -> Result<(Durability, Vec<usize>), EngineError> {
        if !tx.sends.is_empty() {
            self.mark_producer();
            self.mark_transacted_producer(&tx);
        }
        self.engine.apply(self.id, tx.sends, tx.acks).await
    }

    /// Rolls a transaction back: its sends are discarded and the messages it acknowledged are
    /// redelivered.
    pub fn rollback(&self, tx: Transaction) {
        let mut by_consumer: HashMap<ConsumerId, Vec<u64>> = HashMap::new();
        for (consumer, seq) in tx.acks {
            by_consumer.entry(consumer).or_default().push(seq);
        }
        for (consumer, seqs) in by_consumer {
            for seq in seqs {
                // A message may have been returned already (consumer closed): nothing to undo.
                let _ = self.nack(consumer, &[seq], NackAction::Requeue);
            }
        }
    }

    /// Creates a temporary queue (or topic) owned by this session and returns its name; it is
    /// deleted when the session closes.
    pub fn create_temporary(&self, kind: DestinationKind) -> Result<String, EngineError> {
        let engine = &self.engine;
        let n = engine.next_queue_id.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{}:{n}", engine.boot_id, self.id);
        let mut reg = lock(&engine.registry);
        let session = reg
            .sessions
            .get_mut(&self.id)
            .ok_or(EngineError::SessionClosed)?;
        session.temp_names.push(name.clone());
        reg.temp_names.insert(name.clone());
        if kind == DestinationKind::Queue {
            let queue = Arc::new(Queue {
                id: n,
                name: name.clone(),
                kind: QueueKind::Anycast,
                durable: false,
                selector: None,
                priority_cap: priority_cap_for(&engine.config, &name),
                tag: Mutex::new((None, false)),
                state: Mutex::new(QueueState::default()),
            });
            reg.queues.insert(name.clone(), queue);
        }
        Ok(name)
    }

    /// Deletes a temporary queue (or topic) this session created, before the session closes
    /// (JMS `TemporaryQueue.delete()`): its messages go and its consumers are cancelled; sends
    /// to it fail from then on. Another session's temporary destination is refused.
    pub fn delete_temporary(&self, name: &str) -> Result<(), EngineError> {
        {
            let mut reg = lock(&self.engine.registry);
            let session = reg
                .sessions
                .get_mut(&self.id)
                .ok_or(EngineError::SessionClosed)?;
            let Some(pos) = session.temp_names.iter().position(|n| n == name) else {
                return Err(EngineError::UnknownDestination(name.to_string()));
            };
            session.temp_names.swap_remove(pos);
        }
        self.engine.delete_temp(name);
        Ok(())
    }

    /// Opens a consumer that is never dispatched to: it only holds the messages taken with
    /// [`Session::get`] until they are acknowledged or refused like any delivery (AMQP
    /// `basic.get`). Close it with [`Session::unsubscribe`].
    pub fn open_getter(&self) -> Result<ConsumerId, EngineError> {
        let engine = &self.engine;
        let id = engine.next_consumer.fetch_add(1, Ordering::Relaxed);
        let mut reg = lock(&engine.registry);
        let session = reg
            .sessions
            .get_mut(&self.id)
            .ok_or(EngineError::SessionClosed)?;
        session.consumers.insert(id);
        reg.consumers.insert(
            id,
            ConsumerEntry {
                queues: Vec::new(),
                session: self.id,
                wildcard: None,
            },
        );
        Ok(id)
    }

    /// Takes the first ready message of the existing anycast queue `queue` for the getter
    /// consumer `getter` (see [`Session::open_getter`]); `None` when the queue has none ready.
    /// Also returns how many messages stay ready.
    pub fn get(
        &self,
        getter: ConsumerId,
        queue: &str,
    ) -> Result<Option<(Delivery, usize)>, EngineError> {
        let engine = &self.engine;
        let q = {
            let mut reg = lock(&engine.registry);
            let Some(q) = reg.queues.get(queue).cloned() else {
                return Err(EngineError::UnknownDestination(format!("queue://{queue}")));
            };
            let entry = reg
                .consumers
                .get_mut(&getter)
                .ok_or(EngineError::UnknownConsumer(getter))?;
            if !entry.queues.iter().any(|known| known.id == q.id) {
                entry.queues.push(q.clone());
            }
            q
        };
        let now = now_ms();
        let mut st = lock(&q.state);
        let mut dead = Vec::new();
        let mut taken = None;
        // A deep queue's window refills from its spill file first.
        engine.page_in(&q, &mut st);
        while let Some((key, entry)) = st.ready.pop_first() {
            if entry.message.expiration > 0 && entry.message.expiration <= now {
                st.bytes = st.bytes.saturating_sub(entry.size);
                st.expiring = st.expiring.saturating_sub(1);
                dead.push(DeadLetter {
                    entry,
                    from: q.name.clone(),
                    cause: "expired",
                });
                continue;
            }
            taken = Some((key, entry));
            break;
        }
        let result = taken.map(|(_, mut entry)| {
            entry.delivery_count += 1;
            if entry.journaled {
                drop(
                    engine
                        .journal
                        .append_lazy(vec![JournalRecord::DeliveryCount {
                            queue: q.id,
                            seq: entry.seq,
                            count: entry.delivery_count,
                        }]),
                );
            }
            let delivery = Delivery {
                consumer: getter,
                seq: entry.seq,
                destination: q.destination_for(&entry.message),
                message: entry.message.clone(),
                delivery_count: entry.delivery_count,
                redelivered: entry.delivery_count > 1,
                retained: entry.retained,
            };
            let order = engine.next_delivery.fetch_add(1, Ordering::Relaxed);
            st.in_flight.insert(
                entry.seq,
                InFlight {
                    entry,
                    consumer: getter,
                    order,
                },
            );
            delivery
        });
        let remaining = st.ready.len() + st.paged.len();
        drop(st);
        let freed: u64 = dead.iter().map(|d| d.entry.size).sum();
        engine.release_memory(freed);
        engine.dead_letter(dead);
        Ok(result.map(|d| (d, remaining)))
    }

    /// Deletes a durable subscription of this session's client id.
    pub fn remove_durable_subscription(&self, subscription: &str) -> Result<(), EngineError> {
        let engine = &self.engine;
        let client_id = self
            .client_id
            .clone()
            .ok_or_else(|| EngineError::UnknownSubscription(subscription.to_string()))?;
        let key = (client_id.clone(), subscription.to_string());
        let queue = {
            let mut reg = lock(&engine.registry);
            let Some(queue) = reg.durable.get(&key).cloned() else {
                return Err(EngineError::UnknownSubscription(format!(
                    "{client_id}.{subscription}"
                )));
            };
            if !lock(&queue.state).consumers.is_empty() {
                return Err(EngineError::SubscriptionInUse(format!(
                    "{client_id}.{subscription}"
                )));
            }
            reg.durable.remove(&key);
            reg.subscriptions.remove(&queue.id);
            queue
        };
        engine.drop_queue(&queue);
        Ok(())
    }

    /// Closes the session now (also done on drop).
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.unmark_producer();
            self.engine.disconnect(self.id);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
