//! One AMQP 0-9-1 connection: handshake, heartbeats, channels, exchanges, queues, consumers,
//! acknowledgements, publisher confirms and transactions, on the shared engine.
//!
//! Errors follow the specification's two blast radii: a *soft* error (404, 403, 405, 406)
//! closes only its channel with `channel.close`; a *hard* error (501-506, 530, 540, 541)
//! closes the connection with `connection.close`, which waits for the client's `close-ok`.

use super::arguments::{expire_when_unused, headers_args, queue_arguments, queue_options};
use super::broker::{Amqp091Broker, QueueDeclaration};
use super::convert;
use super::handshake::handshake;
use super::stream::{StreamDelivery, StreamEvent, StreamOffset};
use crate::ack_batch::AckBatch;
use crate::framing::Framed;
use crate::security::{Action, PeerInfo, Principal};
use bytes::{Bytes, BytesMut};
use codecs::amqp091::{
    body_frames, reply_code, Amqp091Codec, Amqp091CodecError, Amqp091Item, Amqp091Limits, BasicAck,
    BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk, BasicDeliver, BasicGet,
    BasicGetEmpty, BasicGetOk, BasicNack, BasicPublish, BasicQosOk, BasicRecoverOk, BasicReturn,
    ChannelClose, ChannelCloseOk, ChannelFlowOk, ChannelOpenOk, ConfirmSelectOk, ConnectionBlocked,
    ConnectionClose, ConnectionCloseOk, ContentHeader, ExchangeBindOk, ExchangeDeclareOk,
    ExchangeDeleteOk, ExchangeUnbindOk, Frame, FramePayload, Method, QueueBindOk, QueueDeclareOk,
    QueueDeleteOk, QueuePurgeOk, QueueUnbindOk, ShortStr, TxCommitOk, TxRollbackOk, TxSelectOk,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use routes::id_map::{IdMap, IdMapExt};
use routes::{
    Binding, BindingTarget, ConsumerId, ConsumerSource, ConsumerSpec, Delivery, Destination,
    Durability, Engine, EngineError, ExchangeError, ExchangeKind, ExchangeSpec, NackAction,
    QueueOptions, Session, SessionEvent, Transaction,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::time::Instant;

/// Settings an AMQP 0-9-1 connection runs with, taken from `[listeners.amqp]`.
#[derive(Debug, Clone)]
pub struct Amqp091Settings {
    /// Largest frame offered in `connection.tune` and accepted (whole frame).
    pub frame_max: u32,
    /// Highest channel number offered in `connection.tune`.
    pub channel_max: u16,
    /// Heartbeat interval proposed in `connection.tune`, seconds (0: none).
    pub heartbeat_s: u16,
    /// Time a connection has to complete the handshake.
    pub connect_timeout: Duration,
    /// Largest message body accepted (RabbitMQ's `max_message_size`).
    pub max_message_bytes: u64,
    /// Who may connect (shared by every protocol).
    pub authenticator: Arc<crate::security::Authenticator>,
    /// Most consumers one connection may hold over all its channels
    /// (`security.max_subscriptions_per_connection`); 0 = no limit.
    pub max_consumers: usize,
}

/// The pseudo-queue of RabbitMQ's direct reply-to.
static DIRECT_REPLY_TO: ShortStr = ShortStr::from_static("amq.rabbitmq.reply-to");

/// The virtual host every connection opens (the only one there is).
pub const VHOST: &str = "/";

/// The framed socket of a connection.
pub(super) type Framer<S> = Framed<S, Amqp091Codec>;

/// What ends a method's handling early: the channel or the whole connection is closed.
#[derive(Debug)]
enum Fault {
    Channel {
        code: u16,
        text: String,
        class_id: u16,
        method_id: u16,
    },
    Connection {
        code: u16,
        text: String,
        class_id: u16,
        method_id: u16,
    },
}

fn name_of(code: u16) -> &'static str {
    match code {
        reply_code::CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        reply_code::NO_ROUTE => "NO_ROUTE",
        reply_code::CONNECTION_FORCED => "CONNECTION_FORCED",
        reply_code::ACCESS_REFUSED => "ACCESS_REFUSED",
        reply_code::NOT_FOUND => "NOT_FOUND",
        reply_code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
        reply_code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        reply_code::FRAME_ERROR => "FRAME_ERROR",
        reply_code::SYNTAX_ERROR => "SYNTAX_ERROR",
        reply_code::COMMAND_INVALID => "COMMAND_INVALID",
        reply_code::CHANNEL_ERROR => "CHANNEL_ERROR",
        reply_code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        reply_code::RESOURCE_ERROR => "RESOURCE_ERROR",
        reply_code::NOT_ALLOWED => "NOT_ALLOWED",
        reply_code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        reply_code::INTERNAL_ERROR => "INTERNAL_ERROR",
        _ => "ERROR",
    }
}

/// RabbitMQ's reply text form: `NOT_FOUND - no queue 'x' in vhost '/'`.
fn reply_text(code: u16, text: &str) -> ShortStr {
    let full = format!("{} - {text}", name_of(code));
    let mut end = full.len().min(ShortStr::MAX_LEN);
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    ShortStr::try_from(full.get(..end).unwrap_or_default()).unwrap_or_default()
}

impl Fault {
    fn channel(code: u16, text: impl Into<String>, method: &Method) -> Fault {
        Fault::Channel {
            code,
            text: text.into(),
            class_id: method.class_id(),
            method_id: method.method_id(),
        }
    }

    fn connection(code: u16, text: impl Into<String>, ids: (u16, u16)) -> Fault {
        Fault::Connection {
            code,
            text: text.into(),
            class_id: ids.0,
            method_id: ids.1,
        }
    }

    fn from_engine(e: EngineError, method: &Method) -> Fault {
        let ids = (method.class_id(), method.method_id());
        match e {
            EngineError::UnknownDestination(d) => {
                let name = d.strip_prefix("queue://").unwrap_or(&d).to_string();
                Fault::channel(
                    reply_code::NOT_FOUND,
                    format!("no queue '{name}' in vhost '{VHOST}'"),
                    method,
                )
            }
            EngineError::Exchange(ExchangeError::NotFound(x)) => Fault::channel(
                reply_code::NOT_FOUND,
                format!("no exchange '{x}' in vhost '{VHOST}'"),
                method,
            ),
            EngineError::Exchange(ExchangeError::PreconditionFailed(t))
            | EngineError::PreconditionFailed(t) => {
                Fault::channel(reply_code::PRECONDITION_FAILED, t, method)
            }
            EngineError::Exchange(ExchangeError::AccessRefused(t)) => {
                Fault::channel(reply_code::ACCESS_REFUSED, t, method)
            }
            EngineError::Exchange(ExchangeError::InvalidKind(k)) => Fault::connection(
                reply_code::COMMAND_INVALID,
                format!("invalid exchange type '{k}'"),
                ids,
            ),
            EngineError::InvalidDestination(t) => {
                Fault::channel(reply_code::PRECONDITION_FAILED, t, method)
            }
            e @ (EngineError::ResourceLimit { .. } | EngineError::SendTimeout(_)) => {
                Fault::channel(reply_code::PRECONDITION_FAILED, e.to_string(), method)
            }
            e => Fault::connection(reply_code::INTERNAL_ERROR, e.to_string(), ids),
        }
    }
}

/// What an unroutable `mandatory` publish is returned with: its method, properties and body.
type Returned = (BasicPublish, codecs::amqp091::BasicProperties, Bytes);

/// A complete publish waiting to be routed.
struct Deferred {
    channel: u16,
    exchange: String,
    key: String,
    message: routes::Message,
    /// For `mandatory`: the method, properties and body to return it with if unroutable
    /// (boxed: it is rare, and this value is moved with every publish).
    returned: Option<Box<Returned>>,
    confirm_tag: Option<u64>,
}

/// A `tx.commit` taken off the channel, to be committed by [`Connection::tx_commit`].
struct PendingCommit {
    channel: u16,
    tx: Transaction,
    returns: Vec<Option<Returned>>,
    refusals: Vec<(Vec<Tagged>, bool)>,
    /// The `tx.commit` method, for error replies.
    method: Method,
}

/// A message being received: `basic.publish`, then its content header, then body frames.
struct Incoming {
    publish: BasicPublish,
    header: Option<ContentHeader>,
    body: IncomingBody,
}

/// The body frames received so far. A body that comes in one frame (every message up to
/// `frame_max`) is kept as that frame's bytes, a slice of the read buffer, as the STOMP codec
/// keeps its bodies: no copy and no allocation per message. Only a body split over several
/// frames is gathered into a buffer of its own.
#[derive(Default)]
struct IncomingBody {
    /// The first frame's bytes, while it is the only one.
    first: Bytes,
    /// Every frame's bytes once there is more than one.
    gathered: BytesMut,
}

impl IncomingBody {
    /// Bytes received so far.
    fn len(&self) -> usize {
        self.first.len() + self.gathered.len()
    }

    /// Adds one body frame's bytes; `size` is the announced body size (already checked
    /// against `max_message_bytes` and against what arrived, so it bounds the allocation).
    fn push(&mut self, frame: Bytes, size: usize) {
        if self.len() == 0 {
            self.first = frame;
            return;
        }
        if !self.first.is_empty() {
            self.gathered.reserve(size);
            self.gathered
                .extend_from_slice(&std::mem::take(&mut self.first));
        }
        self.gathered.extend_from_slice(&frame);
    }

    /// The whole body.
    fn into_bytes(self) -> Bytes {
        if self.gathered.is_empty() {
            self.first
        } else {
            self.gathered.freeze()
        }
    }
}

struct ConsumerState {
    id: ConsumerId,
    queue: String,
    exclusive: bool,
}

/// What a delivery to a consumer needs, found with one lookup by its engine id: its channel,
/// its tag and its ack mode (`no-ack`, fixed by `basic.consume`).
struct ConsumerRoute {
    channel: u16,
    tag: ShortStr,
    no_ack: bool,
}

/// One open channel.
#[derive(Default)]
struct Channel {
    /// `channel.close` sent by the server, waiting for `close-ok`: other frames are dropped.
    closing: bool,
    incoming: Option<Incoming>,
    consumers: HashMap<ShortStr, ConsumerState>,
    next_tag: u64,
    unacked: BTreeMap<u64, (ConsumerId, u64)>,
    /// Tags whose delivery went back to its queue (consumer cancelled): acks are ignored.
    returned_tags: BTreeSet<u64>,
    prefetch: u16,
    confirm: bool,
    next_publish: u64,
    tx: Option<Transaction>,
    /// Acks staged in the transaction, restored to `unacked` on rollback.
    tx_acks: Vec<Tagged>,
    /// `basic.reject` / `nack` staged in the transaction (deliveries, requeue), applied at commit
    /// and undone (unacknowledged again) by rollback.
    tx_refusals: Vec<(Vec<Tagged>, bool)>,
    /// Per publish staged in the transaction, in order: what to return it with if it is
    /// `mandatory` and turns out unroutable at commit.
    tx_returns: Vec<Option<Returned>>,
    getter: Option<ConsumerId>,
    last_queue: Option<String>,
    /// Cancelled consumers whose deliveries are not all acknowledged yet; closed once they are.
    cancelled: Vec<ConsumerId>,
    /// The queue behind this channel's direct reply-to consumer (`amq.rabbitmq.reply-to`).
    reply_queue: Option<String>,
    /// `basic.qos` with `global`: most unacknowledged deliveries on the channel (0: no limit).
    global_prefetch: u16,
    /// Deliveries beyond `global_prefetch`, sent as acknowledgements make room.
    held: std::collections::VecDeque<Delivery>,
    /// Consumers of stream queues, by tag: the connection's id for each.
    stream_consumers: HashMap<ShortStr, u64>,
    /// Unacknowledged stream deliveries: tag -> stream consumer id.
    stream_unacked: BTreeMap<u64, u64>,
}

/// A consumer of a stream queue: reader tasks (one per partition) feeding the connection.
struct StreamConsumer {
    channel: u16,
    tag: ShortStr,
    stream: String,
    /// Deliveries it may still send before acknowledgements (its prefetch).
    credit: Arc<tokio::sync::Semaphore>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for StreamConsumer {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// A delivery tag and the delivery it names (consumer, queue sequence).
type Tagged = (u64, (ConsumerId, u64));

type Confirm = Pin<Box<dyn Future<Output = (u16, u64, bool)> + Send>>;

struct Connection {
    id: u64,
    peer: SocketAddr,
    user: String,
    /// What the user may do (the `[[authorization]]` entries); see [`Connection::authorize`].
    principal: Principal,
    engine: Arc<Engine>,
    session: Session,
    broker: Arc<Amqp091Broker>,
    settings: Arc<Amqp091Settings>,
    frame_max: u32,
    channel_max: u16,
    channels: IdMap<u16, Channel>,
    /// Every consumer of the connection's channels, by engine id: where its deliveries go.
    consumers: IdMap<ConsumerId, ConsumerRoute>,
    out: Vec<Frame>,
    /// Deliveries to no-ack consumers sent in the current burst of events, acknowledged to the
    /// engine together when the burst is over ([`Connection::flush_auto_acks`]): one engine
    /// call (registry and queue locks, redispatch) per consumer and burst instead of one per
    /// message.
    auto_acks: AckBatch,
    confirms: FuturesOrdered<Confirm>,
    /// A publish that waits for memory, done by the run loop after `connection.blocked` is out.
    deferred: Option<Deferred>,
    /// A `tx.commit` to finish, left by `channel_method` for the run loop.
    commit: Option<PendingCommit>,
    /// The client announced the `connection.blocked` capability.
    blocked_capable: bool,
    /// `connection.blocked` was sent and `connection.unblocked` not yet.
    blocked_sent: bool,
    /// Stream queue consumers, by the connection's id for them.
    stream_consumers: HashMap<u64, StreamConsumer>,
    next_stream_consumer: u64,
    /// Where stream readers send records; the run loop receives them.
    stream_tx: UnboundedSender<StreamEvent>,
    stream_rx: Option<UnboundedReceiver<StreamEvent>>,
}

/// Most deliveries or confirms that are ready at once and gathered into one write.
const WRITE_BURST: usize = 256;

/// Most frames already read that one turn of the run loop handles before it looks at events,
/// timers and shutdown again.
const DRAIN_BUDGET: usize = 1024;

/// What the run loop does after one item from the client.
enum Turn {
    /// Go on.
    Continue,
    /// The connection is over (the socket failed or the client went away).
    End,
    /// The client sent `connection.close`: write what is queued (close-ok) and end.
    Closed,
    /// Close the connection (or the channel, for a soft error) with this error.
    Fault(Fault),
}

/// Writes frames and flushes; false when the socket failed. The run loop passes
/// `self.out.drain(..)`, so that the vector keeps its capacity from one write to the next.
pub(super) async fn write<S, I>(framed: &mut Framer<S>, frames: I) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    I: IntoIterator<Item = Frame>,
{
    for frame in frames {
        if let Err(e) = SinkExt::<Frame>::feed(framed, frame).await {
            tracing::debug!(error = %e, "AMQP write failed");
            return false;
        }
    }
    SinkExt::<Frame>::flush(framed).await.is_ok()
}

/// Sends `connection.close` and waits (briefly) for `close-ok`, then the socket is dropped.
pub(super) async fn close_connection<S>(
    framed: &mut Framer<S>,
    code: u16,
    text: &str,
    ids: (u16, u16),
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let close = ConnectionClose {
        reply_code: code,
        reply_text: reply_text(code, text),
        class_id: ids.0,
        method_id: ids.1,
    };
    if !write(framed, vec![Frame::method(0, close)]).await {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(item) = framed.next().await {
            match item {
                Ok(Amqp091Item::Frame(Frame {
                    payload: FramePayload::Method(Method::ConnectionCloseOk(_)),
                    ..
                }))
                | Err(_) => return,
                _ => {}
            }
        }
    })
    .await;
}

/// Serves one AMQP 0-9-1 connection. `preread` holds the bytes the listener read while
/// sniffing the protocol (the 0-9-1 header, maybe more).
pub async fn serve<S>(
    stream: S,
    preread: BytesMut,
    peer_info: PeerInfo,
    engine: Arc<Engine>,
    settings: Arc<Amqp091Settings>,
    broker: Arc<Amqp091Broker>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let limits = Amqp091Limits {
        frame_max: settings.frame_max,
        ..Amqp091Limits::default()
    };
    let mut framed =
        crate::framing::framed_with::<Frame, _, _>(stream, Amqp091Codec::server(limits), preread);
    let tuned = tokio::select! {
        // Boxed, as the run loop below: the connection's future keeps no room for the
        // handshake once it is over.
        r = tokio::time::timeout(settings.connect_timeout, Box::pin(handshake(&mut framed, &settings, &peer_info))) => r,
        _ = shutdown.changed() => return,
    };
    let tuned = match tuned {
        Ok(Ok(t)) => t,
        Ok(Err(())) => return,
        Err(_) => {
            tracing::debug!(%peer, "AMQP handshake timed out");
            crate::connections::reject("handshake timed out");
            crate::metrics::limit_refused("amqp", "handshake_timeout");
            return;
        }
    };
    framed.codec_mut().set_frame_max(tuned.frame_max);
    let (session, mut events) = engine.connect(None);
    crate::connections::established(
        Some(&tuned.user),
        tuned.connection_name.as_deref(),
        session.id(),
    );
    let (stream_tx, stream_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut conn = Connection {
        id: broker.connection_id(),
        peer,
        user: tuned.user,
        principal: tuned.principal,
        engine: engine.clone(),
        session,
        broker,
        settings,
        frame_max: tuned.frame_max,
        channel_max: tuned.channel_max,
        channels: IdMap::new(),
        consumers: IdMap::new(),
        out: Vec::new(),
        auto_acks: AckBatch::default(),
        confirms: FuturesOrdered::new(),
        deferred: None,
        commit: None,
        blocked_capable: tuned.blocked_capable,
        blocked_sent: false,
        stream_consumers: HashMap::new(),
        next_stream_consumer: 1,
        stream_tx,
        stream_rx: Some(stream_rx),
    };
    tracing::debug!(%peer, user = %conn.user, anonymous = conn.principal.is_anonymous(), heartbeat = tuned.heartbeat, frame_max = tuned.frame_max, "AMQP 0-9-1 connection open");
    Box::pin(conn.run(&mut framed, &mut events, tuned.heartbeat, &mut shutdown)).await;
    conn.teardown();
    let _ = SinkExt::<Frame>::close(&mut framed).await;
    tracing::debug!(%peer, "AMQP 0-9-1 connection closed");
}

fn short(s: &str) -> ShortStr {
    let mut end = s.len().min(ShortStr::MAX_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    ShortStr::try_from(s.get(..end).unwrap_or_default()).unwrap_or_default()
}

fn text(s: &ShortStr) -> String {
    s.to_string_lossy().into_owned()
}

/// The destination the authorization entries are checked against when a message enters
/// `exchange` with routing key `key` (a publish, or either side of a binding): the default
/// exchange stands for the queue the key names, `amq.topic` for the topic address of the key
/// (as a STOMP `/topic/a.b` or MQTT `a/b` send), and any other exchange for the topic of its
/// own name (as RabbitMQ checks the exchange).
pub(super) fn exchange_destination(exchange: &str, key: &str) -> Destination {
    match exchange {
        routes::exchange::DEFAULT_EXCHANGE => Destination::queue(key),
        routes::exchange::TOPIC_EXCHANGE => Destination::topic(key),
        other => Destination::topic(other),
    }
}

/// Names the server gives queues of one connection (`amq.gen-*` from a declare without a name,
/// direct reply-to queues). Such a queue, declared over AMQP, is like a temporary destination:
/// no authorization entry applies to it (clients cannot declare such names themselves: `amq.`
/// is reserved; a queue of that name made another way is checked as any other).
fn is_server_named(queue: &str) -> bool {
    queue.starts_with("amq.gen-") || queue.starts_with("amq.rabbitmq.reply-to.")
}

impl Connection {
    /// Checks that the user may do `action` on `destination`; a refusal is the channel error
    /// 403 ACCESS_REFUSED with ActiveMQ's wording (the connection and other channels go on).
    fn authorize(
        &self,
        action: Action,
        destination: &Destination,
        method: &Method,
    ) -> Result<(), Fault> {
        if destination.kind == routes::DestinationKind::Queue
            && is_server_named(&destination.name)
            && self.broker.declaration(&destination.name).is_some()
        {
            return Ok(());
        }
        self.principal.check(action, destination).map_err(|denied| {
            tracing::info!(peer = %self.peer, %denied, method = method.name(), "AMQP operation refused");
            Fault::channel(reply_code::ACCESS_REFUSED, denied.to_string(), method)
        })
    }

    async fn run<S>(
        &mut self,
        framed: &mut Framer<S>,
        events: &mut UnboundedReceiver<SessionEvent>,
        heartbeat_s: u16,
        shutdown: &mut watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let heartbeat = (heartbeat_s > 0).then(|| Duration::from_secs(u64::from(heartbeat_s)));
        let tick = heartbeat
            .map(|h| (h / 2).max(Duration::from_millis(500)))
            .unwrap_or(Duration::from_secs(3600));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_received = Instant::now();
        let mut last_sent = Instant::now();
        let Some(mut stream_rx) = self.stream_rx.take() else {
            return;
        };
        loop {
            let mut fault = None;
            tokio::select! {
                item = framed.next() => {
                    last_received = Instant::now();
                    // Every frame this read brought is handled before anything is written, so
                    // that a burst of publishes costs one turn of this loop (and its replies
                    // one write), as in the STOMP and MQTT sessions. Bounded, so that events,
                    // timers and shutdown are looked at now and then.
                    let mut item = item;
                    let mut budget = DRAIN_BUDGET;
                    loop {
                        let mut turn = self.on_item(item);
                        if matches!(turn, Turn::Continue)
                            && (self.commit.is_some() || self.deferred.is_some())
                        {
                            turn = self.finish_waiting(framed, heartbeat).await;
                        }
                        match turn {
                            Turn::Continue => {}
                            Turn::End => return,
                            Turn::Closed => {
                                // connection.close from the client: answer and end.
                                let _ = write(framed, self.out.drain(..)).await;
                                return;
                            }
                            Turn::Fault(f) => {
                                fault = Some(f);
                                break;
                            }
                        }
                        budget -= 1;
                        if budget == 0 {
                            break;
                        }
                        item = match crate::framing::next_buffered(framed) {
                            Ok(Some(next)) => Some(Ok(next)),
                            Ok(None) => break,
                            Err(e) => Some(Err(e)),
                        };
                    }
                }
                event = events.recv() => match event {
                    Some(event) => {
                        self.on_event(event);
                        // Take what else is ready, so that one write covers a burst of
                        // deliveries instead of one writev per message.
                        for _ in 1..WRITE_BURST {
                            let Ok(event) = events.try_recv() else { break };
                            self.on_event(event);
                        }
                        self.flush_auto_acks();
                    }
                    None => return,
                },
                Some(event) = stream_rx.recv() => match event {
                    StreamEvent::Record(delivery) => self.stream_deliver(delivery),
                    StreamEvent::Ended { consumer } => self.cancel_stream_consumer(consumer),
                },
                Some((channel, tag, ok)) = self.confirms.next(), if !self.confirms.is_empty() => {
                    self.confirm(channel, tag, ok);
                    // Confirms already decided go out in the same write.
                    for _ in 1..WRITE_BURST {
                        let Some(Some((channel, tag, ok))) = self.confirms.next().now_or_never() else {
                            break;
                        };
                        self.confirm(channel, tag, ok);
                    }
                }
                _ = ticker.tick() => {
                    self.check_unblocked();
                    if let Some(h) = heartbeat {
                        if last_received.elapsed() > h * 2 {
                            tracing::debug!(peer = %self.peer, "missed heartbeats from client; closing");
                            return;
                        }
                        if last_sent.elapsed() >= h / 2 {
                            self.out.push(Frame::heartbeat());
                        }
                    }
                }
                _ = shutdown.changed() => {
                    let _ = write(framed, self.out.drain(..)).await;
                    close_connection(
                        framed,
                        reply_code::CONNECTION_FORCED,
                        "broker forced connection closure with reason 'shutdown'",
                        (0, 0),
                    )
                    .await;
                    return;
                }
            }
            match fault {
                None => {}
                // Soft errors are answered where they happen (`close_channel_with`).
                Some(Fault::Channel { .. }) => {}
                Some(Fault::Connection {
                    code,
                    text,
                    class_id,
                    method_id,
                }) => {
                    tracing::debug!(peer = %self.peer, code, %text, "closing AMQP connection");
                    let _ = write(framed, self.out.drain(..)).await;
                    close_connection(framed, code, &text, (class_id, method_id)).await;
                    return;
                }
            }
            // Whatever sent a no-ack delivery in this turn (the event burst flushes already).
            self.flush_auto_acks();
            if !self.out.is_empty() {
                if !write(framed, self.out.drain(..)).await {
                    return;
                }
                last_sent = Instant::now();
            }
        }
    }

    /// Handles one item read from the client: a frame, or the read's failure. What must wait
    /// (a publish, a commit) is left for [`Connection::finish_waiting`].
    fn on_item(&mut self, item: Option<Result<Amqp091Item, Amqp091CodecError>>) -> Turn {
        match item {
            None => Turn::End,
            Some(Err(Amqp091CodecError::Decode(e))) => {
                tracing::debug!(peer = %self.peer, error = %e, "malformed AMQP frame");
                crate::metrics::amqp091_decode_error(&e);
                Turn::Fault(Fault::connection(
                    e.reply_code(),
                    e.to_string(),
                    e.method_ids(),
                ))
            }
            Some(Err(_)) => Turn::End,
            Some(Ok(Amqp091Item::ProtocolHeader(_))) => Turn::End,
            Some(Ok(Amqp091Item::Frame(frame))) => match self.handle(frame) {
                Ok(true) => Turn::Continue,
                Ok(false) => Turn::Closed,
                Err(f) => Turn::Fault(f),
            },
        }
    }

    /// Does what the last frame left waiting: commits a transaction, routes a publish.
    async fn finish_waiting<S>(
        &mut self,
        framed: &mut Framer<S>,
        heartbeat: Option<Duration>,
    ) -> Turn
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if let Some(commit) = self.commit.take() {
            let channel = commit.channel;
            // Boxed: rare, and its future is large (the engine's commit).
            let done = Box::pin(self.tx_commit(commit)).await;
            if let Err(f) = self.channel_fault(channel, done) {
                return Turn::Fault(f);
            }
        }
        let Some(publish) = self.deferred.take() else {
            return Turn::Continue;
        };
        let done = self.publish(publish, framed, heartbeat).await;
        self.check_unblocked();
        match done {
            Ok(()) => Turn::Continue,
            Err(f) => Turn::Fault(f),
        }
    }

    /// Handles one frame. `Ok(false)`: the client closed the connection. Synchronous, as the
    /// frames of a publish are the hot path: what must wait (a publish, a commit) is left in
    /// `self.deferred` or `self.commit` for the run loop.
    fn handle(&mut self, frame: Frame) -> Result<bool, Fault> {
        let channel = frame.channel;
        match frame.payload {
            FramePayload::Heartbeat => Ok(true),
            FramePayload::Method(method) if channel == 0 => self.connection_method(method),
            FramePayload::Method(method) => {
                let done = self.channel_method(channel, method);
                self.channel_fault(channel, done)?;
                Ok(true)
            }
            FramePayload::Header(header) => {
                self.content_header(channel, *header)?;
                Ok(true)
            }
            FramePayload::Body(body) => {
                self.content_body(channel, body)?;
                Ok(true)
            }
        }
    }

    /// Closes the channel for a soft error; a connection error is passed on.
    fn channel_fault(&mut self, channel: u16, done: Result<(), Fault>) -> Result<(), Fault> {
        match done {
            Ok(()) => Ok(()),
            Err(Fault::Channel {
                code,
                text,
                class_id,
                method_id,
            }) => {
                self.close_channel_with(channel, code, &text, class_id, method_id);
                Ok(())
            }
            Err(f) => Err(f),
        }
    }

    fn connection_method(&mut self, method: Method) -> Result<bool, Fault> {
        let ids = (method.class_id(), method.method_id());
        match method {
            Method::ConnectionClose(_) => {
                self.out
                    .push(Frame::method(0, ConnectionCloseOk::default()));
                Ok(false)
            }
            Method::ConnectionCloseOk(_) => Ok(false),
            Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_) => Ok(true),
            Method::ConnectionUpdateSecret(_) => {
                self.out.push(Frame::method(
                    0,
                    codecs::amqp091::ConnectionUpdateSecretOk::default(),
                ));
                Ok(true)
            }
            m if m.class_id() == 10 => Err(Fault::connection(
                reply_code::COMMAND_INVALID,
                format!("{} is not valid after the handshake", m.name()),
                ids,
            )),
            m => Err(Fault::connection(
                reply_code::COMMAND_INVALID,
                format!("{} on channel 0", m.name()),
                ids,
            )),
        }
    }

    /// Closes a channel from the server side: releases what it holds and sends `channel.close`.
    fn close_channel_with(&mut self, channel: u16, code: u16, text: &str, class: u16, method: u16) {
        tracing::debug!(peer = %self.peer, channel, code, text, "closing AMQP channel");
        self.release_channel(channel);
        if let Some(c) = self.channels.get_mut(&channel) {
            c.closing = true;
        }
        self.out.push(Frame::method(
            channel,
            ChannelClose {
                reply_code: code,
                reply_text: reply_text(code, text),
                class_id: class,
                method_id: method,
            },
        ));
    }

    /// Cancels a channel's consumers, returns its unacknowledged deliveries, drops what it was
    /// receiving; the channel entry stays (closing) or is removed by the caller.
    fn release_channel(&mut self, channel: u16) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        c.incoming = None;
        c.tx = None;
        c.tx_acks.clear();
        c.tx_returns.clear();
        c.tx_refusals.clear();
        c.unacked.clear();
        c.stream_unacked.clear();
        for (_, id) in c.stream_consumers.drain() {
            self.stream_consumers.remove(&id);
        }
        // Held deliveries are in flight on their consumers: unsubscribing returns them.
        c.held.clear();
        let consumers: Vec<ConsumerState> = c.consumers.drain().map(|(_, s)| s).collect();
        let getter = c.getter.take();
        for id in std::mem::take(&mut c.cancelled) {
            self.session.unsubscribe(id);
        }
        for consumer in &consumers {
            self.consumers.remove(&consumer.id);
            self.session.unsubscribe(consumer.id);
            if consumer.exclusive {
                self.broker.release_exclusive_consumer(&consumer.queue);
            }
        }
        if let Some(g) = getter {
            self.session.unsubscribe(g);
        }
        for consumer in consumers {
            self.auto_delete(&consumer.queue);
        }
    }

    /// Deletes an auto-delete queue that has no consumer left.
    fn auto_delete(&self, queue: &str) {
        let auto = self
            .broker
            .declaration(queue)
            .is_some_and(|d| d.auto_delete);
        if auto
            && self
                .engine
                .queue_info(queue)
                .is_some_and(|i| i.consumers == 0)
        {
            let _ = self.engine.delete_queue(queue, false, false);
            self.broker.forget(queue);
            self.broker.save_topology(&self.engine);
        }
    }

    /// The connection ends: consumers, deliveries, exclusive queues go.
    fn teardown(&mut self) {
        self.flush_auto_acks();
        let channels: Vec<u16> = self.channels.keys().copied().collect();
        for channel in channels {
            self.release_channel(channel);
        }
        self.channels.clear();
        self.stream_consumers.clear();
        let exclusive = self.broker.exclusive_queues_of(self.id);
        for queue in &exclusive {
            let _ = self.engine.delete_queue(queue, false, false);
            self.broker.forget(queue);
        }
        if !exclusive.is_empty() {
            self.broker.save_topology(&self.engine);
        }
    }

    fn channel_fault_unexpected(method: &Method, channel: u16) -> Fault {
        Fault::connection(
            reply_code::CHANNEL_ERROR,
            format!("expected 'channel.open' on channel {channel}"),
            (method.class_id(), method.method_id()),
        )
    }

    /// Handles a method on an open channel. A `tx.commit` is left in `self.commit` for
    /// [`Connection::tx_commit`], the one method that waits for the engine, so that this stays
    /// synchronous: the future of an `async fn` is moved whole on every call, and this one
    /// runs for every publish.
    fn channel_method(&mut self, channel: u16, method: Method) -> Result<(), Fault> {
        let ids = (method.class_id(), method.method_id());
        if method.class_id() == 10 {
            return Err(Fault::connection(
                reply_code::COMMAND_INVALID,
                format!("{} on channel {channel}", method.name()),
                ids,
            ));
        }
        if let Method::ChannelOpen(_) = method {
            if channel > self.channel_max {
                crate::metrics::limit_refused("amqp", "max_sessions");
                return Err(Fault::connection(
                    reply_code::NOT_ALLOWED,
                    format!(
                        "channel {channel} is above the negotiated channel_max {}",
                        self.channel_max
                    ),
                    ids,
                ));
            }
            if self.channels.contains_key(&channel) {
                return Err(Fault::connection(
                    reply_code::CHANNEL_ERROR,
                    format!("channel {channel} is already open"),
                    ids,
                ));
            }
            self.channels.insert(
                channel,
                Channel {
                    next_tag: 1,
                    next_publish: 1,
                    ..Channel::default()
                },
            );
            self.out
                .push(Frame::method(channel, ChannelOpenOk::default()));
            return Ok(());
        }
        let Some(c) = self.channels.get_mut(&channel) else {
            return Err(Self::channel_fault_unexpected(&method, channel));
        };
        if c.closing {
            match method {
                Method::ChannelCloseOk(_) => {
                    self.channels.remove(&channel);
                }
                Method::ChannelClose(_) => {
                    self.out
                        .push(Frame::method(channel, ChannelCloseOk::default()));
                }
                _ => {}
            }
            return Ok(());
        }
        let changes_topology = matches!(
            method,
            Method::ExchangeDeclare(_)
                | Method::ExchangeDelete(_)
                | Method::ExchangeBind(_)
                | Method::ExchangeUnbind(_)
                | Method::QueueBind(_)
                | Method::QueueUnbind(_)
                | Method::QueueDelete(_)
        ) || matches!(&method, Method::QueueDeclare(d) if !d.passive && (!d.durable || d.exclusive));
        if c.incoming.is_some() {
            return Err(Fault::connection(
                reply_code::UNEXPECTED_FRAME,
                format!(
                    "expected content for basic.publish on channel {channel}, got {}",
                    method.name()
                ),
                ids,
            ));
        }
        match method {
            Method::ChannelClose(_) => {
                self.release_channel(channel);
                self.channels.remove(&channel);
                self.out
                    .push(Frame::method(channel, ChannelCloseOk::default()));
            }
            Method::ChannelCloseOk(_) => {}
            Method::ChannelFlow(m) => {
                // As RabbitMQ 3: a client cannot pause deliveries this way (basic.qos can).
                if !m.active {
                    return Err(Fault::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "active=false",
                        ids,
                    ));
                }
                self.out
                    .push(Frame::method(channel, ChannelFlowOk { active: true }));
            }
            Method::AccessRequest(_) => {
                self.out.push(Frame::method(
                    channel,
                    codecs::amqp091::AccessRequestOk { ticket: 1 },
                ));
            }
            Method::ExchangeDeclare(ref m) => self.exchange_declare(channel, m, &method)?,
            Method::ExchangeDelete(ref m) => {
                let name = text(&m.exchange);
                self.authorize(Action::Admin, &Destination::topic(name.clone()), &method)?;
                match self.engine.delete_exchange(&name, m.if_unused) {
                    Ok(()) | Err(EngineError::Exchange(ExchangeError::NotFound(_))) => {}
                    Err(e) => return Err(Fault::from_engine(e, &method)),
                }
                if !m.no_wait {
                    self.out
                        .push(Frame::method(channel, ExchangeDeleteOk::default()));
                }
            }
            Method::ExchangeBind(ref m) => {
                self.authorize_binding(
                    &text(&m.source),
                    &exchange_destination(&text(&m.destination), &text(&m.routing_key)),
                    &text(&m.routing_key),
                    &method,
                )?;
                let binding = Binding {
                    target: BindingTarget::Exchange(text(&m.destination)),
                    key: text(&m.routing_key),
                    headers: headers_args(&m.arguments),
                };
                self.engine
                    .bind(&text(&m.source), binding)
                    .map_err(|e| Fault::from_engine(e, &method))?;
                if !m.no_wait {
                    self.out
                        .push(Frame::method(channel, ExchangeBindOk::default()));
                }
            }
            Method::ExchangeUnbind(ref m) => {
                self.authorize_binding(
                    &text(&m.source),
                    &exchange_destination(&text(&m.destination), &text(&m.routing_key)),
                    &text(&m.routing_key),
                    &method,
                )?;
                let binding = Binding {
                    target: BindingTarget::Exchange(text(&m.destination)),
                    key: text(&m.routing_key),
                    headers: headers_args(&m.arguments),
                };
                match self.engine.unbind(&text(&m.source), &binding) {
                    Ok(()) | Err(EngineError::Exchange(ExchangeError::NotFound(_))) => {}
                    Err(e) => return Err(Fault::from_engine(e, &method)),
                }
                if !m.no_wait {
                    self.out
                        .push(Frame::method(channel, ExchangeUnbindOk::default()));
                }
            }
            Method::QueueDeclare(ref m) => self.queue_declare(channel, m, &method)?,
            Method::QueueBind(ref m) => {
                let queue = self.queue_name(channel, &m.queue, &method)?;
                self.authorize_binding(
                    &text(&m.exchange),
                    &Destination::queue(queue.clone()),
                    &text(&m.routing_key),
                    &method,
                )?;
                self.check_lock(&queue, &method)?;
                let binding = Binding {
                    target: BindingTarget::Queue(queue),
                    key: text(&m.routing_key),
                    headers: headers_args(&m.arguments),
                };
                self.engine
                    .bind(&text(&m.exchange), binding)
                    .map_err(|e| Fault::from_engine(e, &method))?;
                if !m.no_wait {
                    self.out
                        .push(Frame::method(channel, QueueBindOk::default()));
                }
            }
            Method::QueueUnbind(ref m) => {
                let queue = self.queue_name(channel, &m.queue, &method)?;
                self.authorize_binding(
                    &text(&m.exchange),
                    &Destination::queue(queue.clone()),
                    &text(&m.routing_key),
                    &method,
                )?;
                self.check_lock(&queue, &method)?;
                let binding = Binding {
                    target: BindingTarget::Queue(queue),
                    key: text(&m.routing_key),
                    headers: headers_args(&m.arguments),
                };
                match self.engine.unbind(&text(&m.exchange), &binding) {
                    Ok(()) | Err(EngineError::Exchange(ExchangeError::NotFound(_))) => {}
                    Err(e) => return Err(Fault::from_engine(e, &method)),
                }
                self.out
                    .push(Frame::method(channel, QueueUnbindOk::default()));
            }
            Method::QueuePurge(ref m) => {
                let queue = self.queue_name(channel, &m.queue, &method)?;
                self.authorize(Action::Read, &Destination::queue(queue.clone()), &method)?;
                self.check_lock(&queue, &method)?;
                // A stream is not purged (RabbitMQ: nothing to purge; retention removes).
                let count = if self.broker.is_stream(&queue) {
                    0
                } else {
                    self.engine
                        .purge_queue(&queue)
                        .map_err(|e| Fault::from_engine(e, &method))?
                        .0
                };
                if !m.no_wait {
                    self.out.push(Frame::method(
                        channel,
                        QueuePurgeOk {
                            message_count: u32::try_from(count).unwrap_or(u32::MAX),
                        },
                    ));
                }
            }
            Method::QueueDelete(ref m) => {
                let queue = self.queue_name(channel, &m.queue, &method)?;
                self.authorize(Action::Admin, &Destination::queue(queue.clone()), &method)?;
                self.check_lock(&queue, &method)?;
                let stream = self.broker.is_stream(&queue);
                let count = match self.engine.delete_queue(&queue, m.if_unused, m.if_empty) {
                    Ok((n, _)) => n,
                    // Deleting a queue that does not exist succeeds, as in RabbitMQ 3.x.
                    Err(EngineError::UnknownDestination(_)) => 0,
                    Err(e) => return Err(Fault::from_engine(e, &method)),
                };
                if stream {
                    // As RabbitMQ: deleting a stream queue deletes its data.
                    self.delete_stream(&queue);
                }
                self.broker.forget(&queue);
                if !m.no_wait {
                    self.out.push(Frame::method(
                        channel,
                        QueueDeleteOk {
                            message_count: u32::try_from(count).unwrap_or(u32::MAX),
                        },
                    ));
                }
            }
            Method::BasicQos(m) => {
                // As RabbitMQ 3: `global` limits the channel as a whole, otherwise each
                // consumer started after this.
                if m.global {
                    c.global_prefetch = m.prefetch_count;
                } else {
                    c.prefetch = m.prefetch_count;
                }
                self.out.push(Frame::method(channel, BasicQosOk::default()));
            }
            Method::BasicConsume(ref m) => self.basic_consume(channel, m, &method)?,
            Method::BasicCancel(m) => {
                let Some(c) = self.channels.get_mut(&channel) else {
                    return Ok(());
                };
                // Its unacknowledged deliveries can still be acknowledged (no credit to give).
                if let Some(id) = c.stream_consumers.remove(&m.consumer_tag) {
                    self.stream_consumers.remove(&id);
                }
                if let Some(consumer) = c.consumers.remove(&m.consumer_tag) {
                    // As RabbitMQ: what the consumer has unacknowledged stays so, and can
                    // still be acknowledged on this channel.
                    self.consumers.remove(&consumer.id);
                    if c.unacked.values().any(|(id, _)| *id == consumer.id) {
                        self.session.stop_consumer(consumer.id);
                        c.cancelled.push(consumer.id);
                    } else {
                        self.session.unsubscribe(consumer.id);
                    }
                    if consumer.exclusive {
                        self.broker.release_exclusive_consumer(&consumer.queue);
                    }
                    self.auto_delete(&consumer.queue);
                }
                if !m.no_wait {
                    self.out.push(Frame::method(
                        channel,
                        BasicCancelOk {
                            consumer_tag: m.consumer_tag,
                        },
                    ));
                }
            }
            Method::BasicPublish(m) => {
                if m.immediate {
                    return Err(Fault::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "immediate=true",
                        ids,
                    ));
                }
                c.incoming = Some(Incoming {
                    publish: m,
                    header: None,
                    body: IncomingBody::default(),
                });
            }
            Method::BasicGet(ref m) => self.basic_get(channel, m, &method)?,
            Method::BasicAck(ref m) => {
                let settled = self.settle_stream(channel, m.delivery_tag, m.multiple);
                let taken = if settled && !m.multiple {
                    Vec::new()
                } else {
                    self.take_tags(channel, m.delivery_tag, m.multiple, &method)?
                };
                let Some(c) = self.channels.get_mut(&channel) else {
                    return Ok(());
                };
                if let Some(tx) = c.tx.as_mut() {
                    for (tag, (consumer, seq)) in taken {
                        tx.ack(consumer, seq);
                        c.tx_acks.push((tag, (consumer, seq)));
                    }
                } else {
                    for (consumer, seqs) in group(&taken) {
                        // Already returned (consumer gone) deliveries are skipped by the engine.
                        let _ = self.session.ack(consumer, &seqs);
                    }
                }
            }
            Method::BasicReject(ref m) => {
                // A stream delivery is neither requeued nor dead-lettered: it stays in the log.
                if self.settle_stream(channel, m.delivery_tag, false) {
                    return Ok(());
                }
                let taken = self.take_tags(channel, m.delivery_tag, false, &method)?;
                self.refuse_or_stage(channel, taken, m.requeue);
            }
            Method::BasicNack(ref m) => {
                let settled = self.settle_stream(channel, m.delivery_tag, m.multiple);
                if settled && !m.multiple {
                    return Ok(());
                }
                let taken = self.take_tags(channel, m.delivery_tag, m.multiple, &method)?;
                self.refuse_or_stage(channel, taken, m.requeue);
            }
            Method::BasicRecover(_) | Method::BasicRecoverAsync(_) => {
                let requeue = match &method {
                    Method::BasicRecover(m) => m.requeue,
                    Method::BasicRecoverAsync(m) => m.requeue,
                    _ => true,
                };
                if !requeue {
                    // RabbitMQ 3 has never implemented redelivery to the same consumer: a
                    // connection error, as `rabbit_channel` answers it.
                    return Err(Fault::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "requeue=false",
                        ids,
                    ));
                }
                let all: Vec<Tagged> = std::mem::take(&mut c.unacked).into_iter().collect();
                self.refuse(all, true);
                if matches!(method, Method::BasicRecover(_)) {
                    self.out
                        .push(Frame::method(channel, BasicRecoverOk::default()));
                }
            }
            Method::ConfirmSelect(ref m) => {
                if c.tx.is_some() {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        "cannot switch from tx to confirm mode",
                        &method,
                    ));
                }
                c.confirm = true;
                if !m.no_wait {
                    self.out
                        .push(Frame::method(channel, ConfirmSelectOk::default()));
                }
            }
            Method::TxSelect(_) => {
                if c.confirm {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        "cannot switch from confirm to tx mode",
                        &method,
                    ));
                }
                if c.tx.is_none() {
                    c.tx = Some(Transaction::new());
                }
                self.out.push(Frame::method(channel, TxSelectOk::default()));
            }
            Method::TxCommit(_) => {
                let Some(tx) = c.tx.replace(Transaction::new()) else {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        "channel is not transactional",
                        &method,
                    ));
                };
                c.tx_acks.clear();
                self.commit = Some(PendingCommit {
                    channel,
                    tx,
                    returns: std::mem::take(&mut c.tx_returns),
                    refusals: std::mem::take(&mut c.tx_refusals),
                    method,
                });
                // The rest (commit-ok, held deliveries) comes after the commit.
                return Ok(());
            }
            Method::TxRollback(_) => {
                if c.tx.is_none() {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        "channel is not transactional",
                        &method,
                    ));
                }
                // Staged publishes are dropped; staged acks are undone: those deliveries are
                // unacknowledged again, as in RabbitMQ.
                c.tx = Some(Transaction::new());
                c.tx_returns.clear();
                for (taken, _) in c.tx_refusals.drain(..) {
                    c.unacked.extend(taken);
                }
                for (tag, delivery) in c.tx_acks.drain(..) {
                    c.unacked.insert(tag, delivery);
                }
                self.out
                    .push(Frame::method(channel, TxRollbackOk::default()));
            }
            m => {
                return Err(Fault::connection(
                    reply_code::COMMAND_INVALID,
                    format!("{} is not valid from a client", m.name()),
                    ids,
                ))
            }
        }
        self.close_drained(channel);
        self.release_held(channel);
        if changes_topology {
            self.broker.save_topology(&self.engine);
        }
        Ok(())
    }

    /// Commits a transaction left by `channel_method`: waits for the engine and the journal,
    /// then applies the staged refusals, returns unroutable mandatory publishes and answers
    /// `commit-ok`.
    async fn tx_commit(&mut self, commit: PendingCommit) -> Result<(), Fault> {
        let PendingCommit {
            channel,
            tx,
            returns,
            refusals,
            method,
        } = commit;
        let (durability, reached) = self
            .session
            .commit_counted(tx)
            .await
            .map_err(|e| Fault::from_engine(e, &method))?;
        durability
            .await
            .map_err(|e| Fault::from_engine(e, &method))?;
        for (taken, requeue) in refusals {
            self.refuse(taken, requeue);
        }
        // Unroutable mandatory publishes come back before commit-ok, as in RabbitMQ.
        for (returned, reached) in returns.into_iter().zip(reached) {
            if let (Some((publish, properties, body)), 0) = (returned, reached) {
                self.push_return(channel, publish, properties, body);
            }
        }
        self.out.push(Frame::method(channel, TxCommitOk::default()));
        self.close_drained(channel);
        self.release_held(channel);
        Ok(())
    }

    /// Sends held deliveries while the channel-wide prefetch has room; those of consumers
    /// cancelled meanwhile go back to their queue.
    fn release_held(&mut self, channel: u16) {
        loop {
            let Some(c) = self.channels.get_mut(&channel) else {
                return;
            };
            if c.held.is_empty()
                || (c.global_prefetch > 0 && c.unacked.len() >= usize::from(c.global_prefetch))
            {
                return;
            }
            let Some(delivery) = c.held.pop_front() else {
                return;
            };
            self.deliver_checked(delivery, false);
        }
    }

    /// Closes the cancelled consumers of `channel` that have nothing unacknowledged left.
    fn close_drained(&mut self, channel: u16) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        if c.cancelled.is_empty() {
            return;
        }
        let unacked = &c.unacked;
        let (drained, waiting): (Vec<ConsumerId>, Vec<ConsumerId>) = c
            .cancelled
            .iter()
            .partition(|id| !unacked.values().any(|(cid, _)| cid == *id));
        c.cancelled = waiting;
        for id in drained {
            self.session.unsubscribe(id);
        }
    }

    /// The queue a method names; `""` means the channel's last declared queue.
    fn queue_name(&self, channel: u16, name: &ShortStr, method: &Method) -> Result<String, Fault> {
        if !name.is_empty() {
            return Ok(text(name));
        }
        self.channels
            .get(&channel)
            .and_then(|c| c.last_queue.clone())
            .ok_or_else(|| {
                Fault::connection(
                    reply_code::NOT_ALLOWED,
                    "no previously declared queue",
                    (method.class_id(), method.method_id()),
                )
            })
    }

    fn check_lock(&self, queue: &str, method: &Method) -> Result<(), Fault> {
        if self.broker.locked_for(queue, self.id) {
            return Err(Fault::channel(
                reply_code::RESOURCE_LOCKED,
                format!(
                    "cannot obtain exclusive access to locked queue '{queue}' in vhost '{VHOST}'"
                ),
                method,
            ));
        }
        Ok(())
    }

    /// A binding lets messages flow from the `source` exchange into `target`: the user must be
    /// allowed to read what enters the source with the binding's key and to write to the
    /// target (RabbitMQ's rule for `queue.bind` and `exchange.bind`).
    fn authorize_binding(
        &self,
        source: &str,
        target: &Destination,
        key: &str,
        method: &Method,
    ) -> Result<(), Fault> {
        self.authorize(Action::Read, &exchange_destination(source, key), method)?;
        self.authorize(Action::Write, target, method)
    }

    fn exchange_declare(
        &mut self,
        channel: u16,
        m: &codecs::amqp091::ExchangeDeclare,
        method: &Method,
    ) -> Result<(), Fault> {
        let name = text(&m.exchange);
        let kind_name = text(&m.exchange_type);
        if m.passive {
            if self.engine.exchange(&name).is_none() {
                return Err(Fault::channel(
                    reply_code::NOT_FOUND,
                    format!("no exchange '{name}' in vhost '{VHOST}'"),
                    method,
                ));
            }
        } else {
            self.authorize(Action::Admin, &Destination::topic(name.clone()), method)?;
            let Some(kind) = ExchangeKind::parse(&kind_name) else {
                return Err(Fault::connection(
                    reply_code::COMMAND_INVALID,
                    format!("invalid exchange type '{kind_name}'"),
                    (method.class_id(), method.method_id()),
                ));
            };
            let spec = ExchangeSpec {
                kind,
                durable: m.durable,
                auto_delete: m.auto_delete,
                internal: m.internal,
            };
            // The predeclared exchanges are durable; RabbitMQ accepts their redeclaration as is.
            let spec = match self.engine.exchange(&name) {
                Some(existing) if routes::exchange::is_reserved(&name) => ExchangeSpec {
                    durable: existing.durable,
                    ..spec
                },
                _ => spec,
            };
            let existed = self.engine.exchange(&name).is_some();
            self.engine
                .declare_exchange(&name, spec)
                .map_err(|e| Fault::from_engine(e, method))?;
            if !existed {
                let alternate = m
                    .arguments
                    .get("alternate-exchange")
                    .and_then(codecs::amqp091::FieldValue::as_str)
                    .map(str::to_string);
                self.engine.set_alternate_exchange(&name, alternate);
            }
        }
        if !m.no_wait {
            self.out
                .push(Frame::method(channel, ExchangeDeclareOk::default()));
        }
        Ok(())
    }

    fn queue_declare(
        &mut self,
        channel: u16,
        m: &codecs::amqp091::QueueDeclare,
        method: &Method,
    ) -> Result<(), Fault> {
        let mut name = text(&m.queue);
        if name.is_empty() && !m.passive {
            name = self.broker.generate_name("amq.gen-");
        } else if name.is_empty() {
            name = self.queue_name(channel, &m.queue, method)?;
        } else if name.starts_with("amq.") && !m.passive && self.engine.queue_info(&name).is_none()
        {
            return Err(Fault::channel(
                reply_code::ACCESS_REFUSED,
                format!("queue name '{name}' contains reserved prefix 'amq.*'"),
                method,
            ));
        }
        // A server-named queue (no name given) needs no right: it is the connection's own.
        if !m.passive && !m.queue.is_empty() {
            self.authorize(Action::Admin, &Destination::queue(name.clone()), method)?;
        }
        let arguments = queue_arguments(&m.arguments);
        let (options, expires) = queue_options(&m.arguments).map_err(|arg| {
            Fault::channel(
                reply_code::PRECONDITION_FAILED,
                format!("invalid arg '{arg}' for queue '{name}' in vhost '{VHOST}'"),
                method,
            )
        })?;
        let stream = !m.passive && super::stream::is_stream_arguments(&arguments);
        let options = if stream {
            self.prepare_stream(&name, m, method)?;
            // The engine queue only passes messages on to the log: no classic-queue limits
            // (`x-max-length-bytes` is the stream's retention).
            QueueOptions {
                discard_dead_letters: true,
                ..QueueOptions::default()
            }
        } else {
            options
        };
        let existing = self.engine.queue_info(&name);
        if existing.is_some() {
            self.check_lock(&name, method)?;
        }
        let info = if m.passive {
            existing.ok_or_else(|| {
                Fault::channel(
                    reply_code::NOT_FOUND,
                    format!("no queue '{name}' in vhost '{VHOST}'"),
                    method,
                )
            })?
        } else {
            if let (Some(_), Some(d)) = (&existing, self.broker.declaration(&name)) {
                if d.durable != m.durable {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        format!(
                            "inequivalent arg 'durable' for queue '{name}' in vhost '{VHOST}': received '{}' but current is '{}'",
                            m.durable, d.durable
                        ),
                        method,
                    ));
                }
                if let Some((key, _)) = d
                    .arguments
                    .iter()
                    .filter(|a| !arguments.contains(a))
                    .chain(arguments.iter().filter(|a| !d.arguments.contains(a)))
                    .next()
                {
                    return Err(Fault::channel(
                        reply_code::PRECONDITION_FAILED,
                        format!("inequivalent arg '{key}' for queue '{name}' in vhost '{VHOST}'"),
                        method,
                    ));
                }
            }
            if existing.is_none() || self.broker.declaration(&name).is_none() {
                self.broker.declare(
                    &name,
                    QueueDeclaration {
                        durable: m.durable,
                        exclusive_owner: m.exclusive.then_some(self.id),
                        auto_delete: m.auto_delete,
                        arguments,
                        table: m.arguments.clone(),
                    },
                );
                if m.durable && !m.exclusive {
                    // Its arguments are kept in the topology file.
                    self.broker.save_topology(&self.engine);
                }
            }
            let info = self
                .engine
                .declare_queue_with(&name, options)
                .map_err(|e| Fault::from_engine(e, method))?;
            self.broker.touch(&name);
            if stream && self.broker.is_stream(&name) {
                self.broker.start_mover(&self.engine, &name);
            }
            if let Some(expires) = expires {
                // Also for a queue recovered after a restart and declared again.
                if self.broker.watch_expiry(&name) {
                    tokio::spawn(expire_when_unused(
                        self.engine.clone(),
                        self.broker.clone(),
                        name.clone(),
                        expires,
                    ));
                }
            }
            info
        };
        if let Some(c) = self.channels.get_mut(&channel) {
            c.last_queue = Some(name.clone());
        }
        if !m.no_wait {
            self.out.push(Frame::method(
                channel,
                QueueDeclareOk {
                    queue: short(&name),
                    message_count: u32::try_from(info.ready).unwrap_or(u32::MAX),
                    consumer_count: u32::try_from(info.consumers).unwrap_or(u32::MAX),
                },
            ));
        }
        Ok(())
    }

    /// Checks a stream queue declaration (durable, not exclusive, not auto-delete, as RabbitMQ
    /// requires) and creates its stream in the log.
    fn prepare_stream(
        &self,
        name: &str,
        m: &codecs::amqp091::QueueDeclare,
        method: &Method,
    ) -> Result<(), Fault> {
        let refuse = |text: String| Fault::channel(reply_code::PRECONDITION_FAILED, text, method);
        for (bad, property) in [
            (!m.durable, "non-durable"),
            (m.exclusive, "exclusive"),
            (m.auto_delete, "auto-delete"),
        ] {
            if bad {
                return Err(refuse(format!(
                    "invalid property '{property}' for queue '{name}' in vhost '{VHOST}'"
                )));
            }
        }
        let Some(log) = self.broker.log() else {
            return Err(refuse(format!(
                "stream queues are not available (no log) for queue '{name}'"
            )));
        };
        if self
            .broker
            .declaration(name)
            .is_some_and(|d| !super::stream::is_stream_arguments(&d.arguments))
        {
            // Another kind of queue: the redeclaration is refused as inequivalent.
            return Ok(());
        }
        let config = super::stream::stream_config(&m.arguments).map_err(|arg| {
            refuse(format!(
                "invalid arg '{arg}' for queue '{name}' in vhost '{VHOST}'"
            ))
        })?;
        super::stream::ensure_stream(&log, name, config).map_err(|e| {
            refuse(format!(
                "cannot create the stream of queue '{name}' in vhost '{VHOST}': {e}"
            ))
        })
    }

    /// `basic.consume` on a stream queue: manual acknowledgement and a prefetch are required
    /// (as RabbitMQ); reading starts at `x-stream-offset` in every partition of the stream.
    fn stream_consume(
        &mut self,
        channel: u16,
        m: &BasicConsume,
        method: &Method,
        queue: String,
    ) -> Result<(), Fault> {
        let refuse = |text: String| Fault::channel(reply_code::PRECONDITION_FAILED, text, method);
        let Some(log) = self.broker.log() else {
            return Err(refuse(format!("no log for stream queue '{queue}'")));
        };
        let partitions = log.stream_config(&queue).map_or(0, |c| c.partitions);
        if partitions == 0 {
            return Err(Fault::channel(
                reply_code::NOT_FOUND,
                format!("no stream '{queue}' in vhost '{VHOST}'"),
                method,
            ));
        }
        if m.no_ack {
            return Err(refuse(format!(
                "automatic acknowledgement not supported by stream queues queue '{queue}' in vhost '{VHOST}'"
            )));
        }
        let start = StreamOffset::from_arguments(&m.arguments).map_err(refuse)?;
        let tag = if m.consumer_tag.is_empty() {
            short(&self.broker.generate_name("amq.ctag-"))
        } else {
            m.consumer_tag.clone()
        };
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let prefetch = match (c.prefetch, c.global_prefetch) {
            (0, g) => g,
            (p, 0) => p,
            (p, g) => p.min(g),
        };
        if prefetch == 0 {
            return Err(refuse(format!(
                "consumer prefetch count is not set for queue '{queue}' in vhost '{VHOST}'"
            )));
        }
        if c.consumers.contains_key(&tag) || c.stream_consumers.contains_key(&tag) {
            return Err(Fault::connection(
                reply_code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{}'", text(&tag)),
                (method.class_id(), method.method_id()),
            ));
        }
        if !m.no_wait {
            self.out.push(Frame::method(
                channel,
                BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            ));
        }
        let id = self.next_stream_consumer;
        self.next_stream_consumer += 1;
        let credit = Arc::new(tokio::sync::Semaphore::new(usize::from(prefetch)));
        let readers = (0..partitions)
            .map(|partition| {
                tokio::spawn(super::stream::run_reader(
                    log.clone(),
                    queue.clone(),
                    partition,
                    start,
                    id,
                    credit.clone(),
                    self.stream_tx.clone(),
                ))
            })
            .collect();
        c.stream_consumers.insert(tag.clone(), id);
        self.stream_consumers.insert(
            id,
            StreamConsumer {
                channel,
                tag,
                stream: queue,
                credit,
                readers,
            },
        );
        Ok(())
    }

    /// Sends a record read for a stream consumer as `basic.deliver`, with its offset in the
    /// `x-stream-offset` header.
    fn stream_deliver(&mut self, delivery: StreamDelivery) {
        let Some(consumer) = self.stream_consumers.get(&delivery.consumer) else {
            return;
        };
        let (channel, tag, stream) = (
            consumer.channel,
            consumer.tag.clone(),
            consumer.stream.clone(),
        );
        let id = delivery.consumer;
        let offset = delivery.record.offset;
        let (message, exchange) = super::stream::message_for_delivery(&stream, delivery);
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        if c.closing {
            return;
        }
        let delivery_tag = c.next_tag;
        c.next_tag += 1;
        c.stream_unacked.insert(delivery_tag, id);
        let mut properties = convert::properties_for_delivery(&message);
        let mut headers = properties.headers.take().unwrap_or_default();
        headers.insert(
            ShortStr::from_static("x-stream-offset"),
            codecs::amqp091::FieldValue::I64(i64::try_from(offset).unwrap_or(i64::MAX)),
        );
        properties.headers = Some(headers);
        let deliver = BasicDeliver {
            consumer_tag: tag,
            delivery_tag,
            redelivered: false,
            exchange: short(&exchange),
            routing_key: short(&stream),
        };
        self.out.push(Frame::method(channel, deliver));
        self.out.push(Frame::header(
            channel,
            ContentHeader::new(message.body.len() as u64, properties),
        ));
        self.out
            .extend(body_frames(channel, message.body, self.frame_max));
    }

    /// Settles stream deliveries (`tag`, or with `multiple` every tag up to it, 0: all): they
    /// give their consumer credit back. True when some stream delivery was settled.
    fn settle_stream(&mut self, channel: u16, tag: u64, multiple: bool) -> bool {
        let Some(c) = self.channels.get_mut(&channel) else {
            return false;
        };
        let tags: Vec<u64> = if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            c.stream_unacked.range(..=upto).map(|(t, _)| *t).collect()
        } else {
            c.stream_unacked
                .get(&tag)
                .map(|_| tag)
                .into_iter()
                .collect()
        };
        for t in &tags {
            if let Some(id) = c.stream_unacked.remove(t) {
                if let Some(consumer) = self.stream_consumers.get(&id) {
                    consumer.credit.add_permits(1);
                }
            }
        }
        !tags.is_empty()
    }

    /// Ends a stream consumer whose stream is gone, with a consumer cancel notification (as for
    /// any deleted queue); nothing if it already ended.
    fn cancel_stream_consumer(&mut self, id: u64) {
        let Some(consumer) = self.stream_consumers.remove(&id) else {
            return;
        };
        tracing::debug!(peer = %self.peer, stream = %consumer.stream, "stream consumer cancelled: stream gone");
        if let Some(c) = self.channels.get_mut(&consumer.channel) {
            c.stream_consumers.remove(&consumer.tag);
            if !c.closing {
                self.out.push(Frame::method(
                    consumer.channel,
                    BasicCancel {
                        consumer_tag: consumer.tag.clone(),
                        no_wait: true,
                    },
                ));
            }
        }
    }

    /// Deletes the log stream of a deleted stream queue (its readers end with it).
    fn delete_stream(&mut self, queue: &str) {
        let gone: Vec<u64> = self
            .stream_consumers
            .iter()
            .filter(|(_, c)| c.stream == queue)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.cancel_stream_consumer(id);
        }
        if let Some(log) = self.broker.log() {
            if let Err(e) = log.delete_stream(queue) {
                tracing::warn!(%queue, error = %e, "cannot delete the stream of a stream queue");
            }
        }
    }

    /// Refuses one consumer more than `security.max_subscriptions_per_connection` allows (over
    /// every channel, stream consumers included): the channel closes with 530 NOT_ALLOWED, in
    /// the words of RabbitMQ's `consumer_max_per_channel` refusal; the connection stays.
    fn check_consumer_limit(&self, method: &Method) -> Result<(), Fault> {
        let limit = self.settings.max_consumers;
        if limit == 0 || self.consumers.len() + self.stream_consumers.len() < limit {
            return Ok(());
        }
        crate::metrics::limit_refused("amqp", "max_subscriptions");
        Err(Fault::channel(
            reply_code::NOT_ALLOWED,
            format!("reached maximum ({limit}) of consumers per connection"),
            method,
        ))
    }

    fn basic_consume(
        &mut self,
        channel: u16,
        m: &BasicConsume,
        method: &Method,
    ) -> Result<(), Fault> {
        let queue = if m.queue == DIRECT_REPLY_TO {
            self.direct_reply_queue(channel, m, method)?
        } else {
            self.queue_name(channel, &m.queue, method)?
        };
        self.authorize(Action::Read, &Destination::queue(queue.clone()), method)?;
        self.check_consumer_limit(method)?;
        self.check_lock(&queue, method)?;
        let Some(info) = self.engine.queue_info(&queue) else {
            return Err(Fault::channel(
                reply_code::NOT_FOUND,
                format!("no queue '{queue}' in vhost '{VHOST}'"),
                method,
            ));
        };
        if self.broker.is_stream(&queue) {
            return self.stream_consume(channel, m, method, queue);
        }
        if self.broker.has_exclusive_consumer(&queue) || (m.exclusive && info.consumers > 0) {
            return Err(Fault::channel(
                reply_code::ACCESS_REFUSED,
                format!("queue '{queue}' in vhost '{VHOST}' in exclusive use"),
                method,
            ));
        }
        self.broker.touch(&queue);
        let tag = if m.consumer_tag.is_empty() {
            short(&self.broker.generate_name("amq.ctag-"))
        } else {
            m.consumer_tag.clone()
        };
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if c.consumers.contains_key(&tag) || c.stream_consumers.contains_key(&tag) {
            return Err(Fault::connection(
                reply_code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{}'", text(&tag)),
                (method.class_id(), method.method_id()),
            ));
        }
        // A channel-wide limit also bounds each consumer, so that deliveries held back for it
        // stay few.
        let per_consumer = match (c.prefetch, c.global_prefetch) {
            (0, g) => g,
            (p, 0) => p,
            (p, g) => p.min(g),
        };
        let prefetch = if m.no_ack || per_consumer == 0 {
            u32::MAX
        } else {
            u32::from(per_consumer)
        };
        if m.exclusive && !self.broker.claim_exclusive_consumer(&queue) {
            return Err(Fault::channel(
                reply_code::ACCESS_REFUSED,
                format!("queue '{queue}' in vhost '{VHOST}' in exclusive use"),
                method,
            ));
        }
        let spec = ConsumerSpec {
            prefetch: Some(prefetch),
            exclusive: m.exclusive,
            ..ConsumerSpec::new(ConsumerSource::Queue(queue.clone()))
        };
        // consume-ok goes out before any delivery: deliveries arrive as events, handled later.
        if !m.no_wait {
            self.out.push(Frame::method(
                channel,
                BasicConsumeOk {
                    consumer_tag: tag.clone(),
                },
            ));
        }
        let id = match self.session.subscribe(spec) {
            Ok(id) => id,
            Err(e) => {
                if m.exclusive {
                    self.broker.release_exclusive_consumer(&queue);
                }
                self.out.pop();
                return Err(Fault::from_engine(e, method));
            }
        };
        c.consumers.insert(
            tag.clone(),
            ConsumerState {
                id,
                queue,
                exclusive: m.exclusive,
            },
        );
        self.consumers.insert(
            id,
            ConsumerRoute {
                channel,
                tag,
                no_ack: m.no_ack,
            },
        );
        Ok(())
    }

    /// RabbitMQ's direct reply-to: consuming from the pseudo-queue `amq.rabbitmq.reply-to`
    /// (with `no-ack`) creates a queue of this connection, `amq.rabbitmq.reply-to.<id>`, which the
    /// channel's publishes name in `reply-to`; responders publish to it on the default exchange.
    fn direct_reply_queue(
        &mut self,
        channel: u16,
        m: &BasicConsume,
        method: &Method,
    ) -> Result<String, Fault> {
        if !m.no_ack {
            return Err(Fault::channel(
                reply_code::PRECONDITION_FAILED,
                "reply consumer cannot acknowledge",
                method,
            ));
        }
        if self
            .channels
            .get(&channel)
            .is_some_and(|c| c.reply_queue.is_some())
        {
            return Err(Fault::channel(
                reply_code::PRECONDITION_FAILED,
                "reply consumer already set",
                method,
            ));
        }
        let name = self
            .broker
            .generate_name(&format!("{}.", text(&DIRECT_REPLY_TO)));
        self.broker.declare(
            &name,
            QueueDeclaration {
                durable: false,
                exclusive_owner: Some(self.id),
                auto_delete: true,
                arguments: Vec::new(),
                table: codecs::amqp091::FieldTable::new(),
            },
        );
        self.engine
            .declare_queue_with(
                &name,
                QueueOptions {
                    discard_dead_letters: true,
                    ..QueueOptions::default()
                },
            )
            .map_err(|e| Fault::from_engine(e, method))?;
        if let Some(c) = self.channels.get_mut(&channel) {
            c.reply_queue = Some(name.clone());
        }
        self.broker.save_topology(&self.engine);
        Ok(name)
    }

    fn basic_get(&mut self, channel: u16, m: &BasicGet, method: &Method) -> Result<(), Fault> {
        let queue = self.queue_name(channel, &m.queue, method)?;
        self.authorize(Action::Read, &Destination::queue(queue.clone()), method)?;
        self.check_lock(&queue, method)?;
        if self.broker.is_stream(&queue) {
            return Err(Fault::connection(
                reply_code::NOT_IMPLEMENTED,
                format!(
                    "basic.get not supported by stream queues queue '{queue}' in vhost '{VHOST}'"
                ),
                (method.class_id(), method.method_id()),
            ));
        }
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let getter = match c.getter {
            Some(g) => g,
            None => {
                let g = self
                    .session
                    .open_getter()
                    .map_err(|e| Fault::from_engine(e, method))?;
                c.getter = Some(g);
                g
            }
        };
        self.broker.touch(&queue);
        let got = self
            .session
            .get(getter, &queue)
            .map_err(|e| Fault::from_engine(e, method))?;
        let Some((delivery, remaining)) = got else {
            self.out
                .push(Frame::method(channel, BasicGetEmpty::default()));
            return Ok(());
        };
        let tag = c.next_tag;
        c.next_tag += 1;
        if m.no_ack {
            let _ = self.session.ack(getter, &[delivery.seq]);
        } else {
            c.unacked.insert(tag, (getter, delivery.seq));
        }
        let (exchange, key) = convert::exchange_and_key(&delivery.message, &delivery.destination);
        let get_ok = BasicGetOk {
            delivery_tag: tag,
            redelivered: delivery.redelivered,
            exchange: short(exchange),
            routing_key: short(key),
            message_count: u32::try_from(remaining).unwrap_or(u32::MAX),
        };
        self.push_content(channel, get_ok.into(), &delivery);
        Ok(())
    }

    /// Appends a content-bearing method, its header and body frames.
    fn push_content(&mut self, channel: u16, method: Method, delivery: &Delivery) {
        let message = &delivery.message;
        let properties = convert::properties_for_delivery(message);
        self.out.push(Frame::method(channel, method));
        self.out.push(Frame::header(
            channel,
            ContentHeader::new(message.body.len() as u64, properties),
        ));
        self.out
            .extend(body_frames(channel, message.body.clone(), self.frame_max));
    }

    /// Removes delivery tags from the channel's unacknowledged set: `tag`, or with `multiple`
    /// every tag up to it (0: all). An unknown tag is a channel error (406).
    fn take_tags(
        &mut self,
        channel: u16,
        tag: u64,
        multiple: bool,
        method: &Method,
    ) -> Result<Vec<Tagged>, Fault> {
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(Vec::new());
        };
        if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let tags: Vec<u64> = c.unacked.range(..=upto).map(|(t, _)| *t).collect();
            if tags.is_empty() && tag != 0 && !c.returned_tags.contains(&tag) && tag >= c.next_tag {
                return Err(unknown_tag(tag, method));
            }
            c.returned_tags.retain(|t| *t > upto);
            return Ok(tags
                .into_iter()
                .filter_map(|t| c.unacked.remove(&t).map(|d| (t, d)))
                .collect());
        }
        match c.unacked.remove(&tag) {
            Some(d) => Ok(vec![(tag, d)]),
            None if c.returned_tags.remove(&tag) => Ok(Vec::new()),
            None => Err(unknown_tag(tag, method)),
        }
    }

    /// `basic.reject` / `basic.nack`: requeue (redelivered later) or discard.
    /// Refuses deliveries now, or at commit on a transactional channel (as RabbitMQ does).
    fn refuse_or_stage(&mut self, channel: u16, taken: Vec<Tagged>, requeue: bool) {
        if let Some(c) = self.channels.get_mut(&channel) {
            if c.tx.is_some() {
                c.tx_refusals.push((taken, requeue));
                return;
            }
        }
        self.refuse(taken, requeue);
    }

    fn refuse(&mut self, taken: Vec<Tagged>, requeue: bool) {
        for (consumer, seqs) in group(&taken) {
            if requeue {
                let _ = self.session.nack(consumer, &seqs, NackAction::Requeue);
            } else {
                // Dead-lettered: to the queue's dead-letter exchange, dropped when it has none
                // (queues declared over AMQP), or to the dead-letter queue (other queues).
                let _ = self.session.nack(consumer, &seqs, NackAction::DeadLetter);
            }
        }
    }

    fn content_header(&mut self, channel: u16, header: ContentHeader) -> Result<(), Fault> {
        let max = self.settings.max_message_bytes;
        let Some(c) = self.channels.get_mut(&channel) else {
            return Err(Fault::connection(
                reply_code::CHANNEL_ERROR,
                format!("content header on channel {channel}, which is not open"),
                (0, 0),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some(incoming) = c.incoming.as_mut().filter(|i| i.header.is_none()) else {
            return Err(Fault::connection(
                reply_code::UNEXPECTED_FRAME,
                format!("unexpected content header on channel {channel}"),
                (60, 40),
            ));
        };
        if header.body_size > max {
            let publish = Method::BasicPublish(incoming.publish.clone());
            c.incoming = None;
            let fault = Fault::channel(
                reply_code::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than configured max size {max}",
                    header.body_size
                ),
                &publish,
            );
            return self.channel_fault(channel, Err(fault));
        }
        let done = header.body_size == 0;
        incoming.header = Some(header);
        if done {
            self.finish_publish(channel)?;
        }
        Ok(())
    }

    fn content_body(&mut self, channel: u16, body: Bytes) -> Result<(), Fault> {
        let Some(c) = self.channels.get_mut(&channel) else {
            return Err(Fault::connection(
                reply_code::CHANNEL_ERROR,
                format!("content body on channel {channel}, which is not open"),
                (0, 0),
            ));
        };
        if c.closing {
            return Ok(());
        }
        let Some((incoming, size)) = c
            .incoming
            .as_mut()
            .and_then(|i| i.header.as_ref().map(|h| h.body_size).map(|s| (i, s)))
        else {
            return Err(Fault::connection(
                reply_code::UNEXPECTED_FRAME,
                format!("unexpected content body on channel {channel}"),
                (60, 40),
            ));
        };
        if incoming.body.len() as u64 + body.len() as u64 > size {
            return Err(Fault::connection(
                reply_code::FRAME_ERROR,
                format!("content body larger than the {size} bytes announced"),
                (60, 40),
            ));
        }
        // `size` was checked against `max_message_bytes` with the content header.
        incoming
            .body
            .push(body, usize::try_from(size).unwrap_or(usize::MAX));
        if incoming.body.len() as u64 == size {
            self.finish_publish(channel)?;
        }
        Ok(())
    }

    /// A publish is complete: route it (or stage it in the transaction), report it unroutable
    /// if mandatory, and confirm it once durable in confirm mode.
    fn finish_publish(&mut self, channel: u16) -> Result<(), Fault> {
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let Some(incoming) = c.incoming.take() else {
            return Ok(());
        };
        let Some(mut header) = incoming.header else {
            return Ok(());
        };
        let reply_queue = c.reply_queue.clone();
        let publish = incoming.publish;
        let method = basic_publish_method();
        let exchange = text(&publish.exchange);
        let key = text(&publish.routing_key);
        let soft = |code: u16, text: String| Fault::channel(code, text, &method);
        let result = (|| {
            self.authorize(
                Action::Write,
                &exchange_destination(&exchange, &key),
                &method,
            )?;
            let spec = self.engine.exchange(&exchange).ok_or_else(|| {
                soft(
                    reply_code::NOT_FOUND,
                    format!("no exchange '{exchange}' in vhost '{VHOST}'"),
                )
            })?;
            if spec.internal {
                return Err(soft(
                    reply_code::ACCESS_REFUSED,
                    format!("cannot publish to internal exchange '{exchange}' in vhost '{VHOST}'"),
                ));
            }
            if header.properties.reply_to.as_ref() == Some(&DIRECT_REPLY_TO) {
                let Some(queue) = &reply_queue else {
                    return Err(soft(
                        reply_code::PRECONDITION_FAILED,
                        "fast reply consumer does not exist".to_string(),
                    ));
                };
                header.properties.reply_to = Some(short(queue));
            }
            if let Some(uid) = &header.properties.user_id {
                if text(uid) != self.user {
                    return Err(soft(
                        reply_code::PRECONDITION_FAILED,
                        format!(
                            "user_id property set to '{}' but authenticated user was '{}'",
                            text(uid),
                            self.user
                        ),
                    ));
                }
            }
            convert::message_from_publish(
                &exchange,
                &header.properties,
                incoming.body.into_bytes(),
                &self.user,
            )
            .map_err(|convert::PropertyError::InvalidExpiration(e)| {
                soft(
                    reply_code::PRECONDITION_FAILED,
                    format!("invalid expiration '{e}'"),
                )
            })
        })();
        let message = match result {
            Ok(m) => m,
            Err(f) => return self.channel_fault(channel, Err(f)),
        };
        let Some(c) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if let Some(tx) = c.tx.as_mut() {
            c.tx_returns.push(publish.mandatory.then(|| {
                (
                    publish.clone(),
                    header.properties.clone(),
                    message.body.clone(),
                )
            }));
            tx.publish_to_exchange(&exchange, &key, message);
            return Ok(());
        }
        let confirm_tag = c.confirm.then(|| {
            let tag = c.next_publish;
            c.next_publish += 1;
            tag
        });
        let returned = publish
            .mandatory
            .then(|| Box::new((publish, header.properties, message.body.clone())));
        let publish = Deferred {
            channel,
            exchange,
            key,
            message,
            returned,
            confirm_tag,
        };
        if self.blocked_capable
            && !self.blocked_sent
            && self
                .engine
                .memory_pressure(publish.message.body.len() as u64)
        {
            // The publish will wait for memory: tell the client first.
            self.blocked_sent = true;
            self.out.push(Frame::method(
                0,
                ConnectionBlocked {
                    reason: ShortStr::from_static("low on memory"),
                },
            ));
        }
        // The run loop routes it once what is queued is written, heartbeats going on while
        // flow control makes it wait.
        self.deferred = Some(publish);
        Ok(())
    }

    /// Appends a `basic.return` 312 NO_ROUTE with the message's properties and body.
    fn push_return(
        &mut self,
        channel: u16,
        publish: BasicPublish,
        properties: codecs::amqp091::BasicProperties,
        body: Bytes,
    ) {
        let ret = BasicReturn {
            reply_code: reply_code::NO_ROUTE,
            reply_text: ShortStr::from_static("NO_ROUTE"),
            exchange: publish.exchange,
            routing_key: publish.routing_key,
        };
        self.out.push(Frame::method(channel, ret));
        self.out.push(Frame::header(
            channel,
            ContentHeader::new(body.len() as u64, properties),
        ));
        self.out.extend(body_frames(channel, body, self.frame_max));
    }

    /// Sends `connection.unblocked` once memory is available again.
    fn check_unblocked(&mut self) {
        if self.blocked_sent && !self.engine.memory_pressure(0) {
            self.blocked_sent = false;
            self.out.push(Frame::method(
                0,
                codecs::amqp091::ConnectionUnblocked::default(),
            ));
        }
    }

    /// Routes a complete publish; reports it unroutable if mandatory and confirms it once durable.
    /// While the engine makes the publish wait (flow control), heartbeats keep being sent; no
    /// further frame is read from this connection until it is through, as RabbitMQ does.
    async fn publish<S>(
        &mut self,
        publish: Deferred,
        framed: &mut Framer<S>,
        heartbeat: Option<Duration>,
    ) -> Result<(), Fault>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Deferred {
            channel,
            exchange,
            key,
            message,
            returned,
            confirm_tag,
        } = publish;
        let result = {
            let routed = self.session.publish_to_exchange(&exchange, &key, message);
            let mut routed = std::pin::pin!(routed);
            // Nearly every publish is routed at once: only one that waits (flow control) needs
            // the heartbeat timer, whose setup (clock read, timer wheel entry) would otherwise
            // be paid per message, and whose future is boxed so that it is not part of every
            // publish's.
            match futures::poll!(routed.as_mut()) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => {
                    Box::pin(routed_with_heartbeats(
                        routed,
                        &mut self.out,
                        framed,
                        heartbeat,
                    ))
                    .await
                }
            }
        };
        match result {
            Ok((durability, reached)) => {
                if reached == 0 {
                    if let Some(returned) = returned {
                        let (publish, properties, body) = *returned;
                        self.push_return(channel, publish, properties, body);
                    }
                }
                if let Some(tag) = confirm_tag {
                    self.confirms
                        .push_back(confirm_after(channel, tag, durability));
                }
                Ok(())
            }
            Err(e) => {
                if let Some(tag) = confirm_tag {
                    tracing::debug!(peer = %self.peer, error = %e, "publish refused; nack");
                    self.confirms
                        .push_back(Box::pin(async move { (channel, tag, false) }));
                    return Ok(());
                }
                self.channel_fault(channel, Err(Fault::from_engine(e, &basic_publish_method())))
            }
        }
    }

    fn confirm(&mut self, channel: u16, tag: u64, ok: bool) {
        if self.channels.get(&channel).is_none_or(|c| c.closing) {
            return;
        }
        let frame = if ok {
            Frame::method(
                channel,
                BasicAck {
                    delivery_tag: tag,
                    multiple: false,
                },
            )
        } else {
            Frame::method(
                channel,
                BasicNack {
                    delivery_tag: tag,
                    multiple: false,
                    requeue: false,
                },
            )
        };
        self.out.push(frame);
    }

    fn on_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Deliver(delivery) => self.deliver(*delivery),
            SessionEvent::ConsumerCancelled(id) => {
                // Deliveries already sent to it are settled before it goes.
                self.flush_auto_acks();
                let Some(ConsumerRoute { channel, tag, .. }) = self.consumers.remove(&id) else {
                    return;
                };
                let Some(c) = self.channels.get_mut(&channel) else {
                    return;
                };
                if let Some(consumer) = c.consumers.remove(&tag) {
                    if consumer.exclusive {
                        self.broker.release_exclusive_consumer(&consumer.queue);
                    }
                }
                let stale: Vec<u64> = c
                    .unacked
                    .iter()
                    .filter(|(_, (cid, _))| *cid == id)
                    .map(|(t, _)| *t)
                    .collect();
                for t in stale {
                    c.unacked.remove(&t);
                    c.returned_tags.insert(t);
                }
                if !c.closing {
                    self.out.push(Frame::method(
                        channel,
                        BasicCancel {
                            consumer_tag: tag,
                            no_wait: true,
                        },
                    ));
                }
            }
            SessionEvent::TakenOver => {}
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        self.deliver_checked(delivery, true);
    }

    /// Acknowledges to the engine the deliveries sent to no-ack consumers since the last call.
    fn flush_auto_acks(&mut self) {
        self.auto_acks.flush(&self.session);
    }

    /// Sends a delivery to its consumer, or holds it back when the channel-wide prefetch is
    /// full (`hold`: deliveries already held skip the queue of held ones).
    fn deliver_checked(&mut self, delivery: Delivery, hold: bool) {
        // `consumers` and the channels' consumer maps gain and lose a consumer together.
        let Some(route) = self.consumers.get(&delivery.consumer) else {
            // Dispatched just before its consumer was cancelled: back to the queue.
            let _ = self
                .session
                .nack(delivery.consumer, &[delivery.seq], NackAction::Requeue);
            return;
        };
        let (channel, no_ack) = (route.channel, route.no_ack);
        let tag = route.tag.clone();
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        if hold
            && !no_ack
            && c.global_prefetch > 0
            && (c.unacked.len() >= usize::from(c.global_prefetch) || !c.held.is_empty())
        {
            c.held.push_back(delivery);
            return;
        }
        let delivery_tag = c.next_tag;
        c.next_tag += 1;
        if no_ack {
            self.auto_acks.push(delivery.consumer, delivery.seq);
        } else {
            c.unacked
                .insert(delivery_tag, (delivery.consumer, delivery.seq));
        }
        let (exchange, key) = convert::exchange_and_key(&delivery.message, &delivery.destination);
        let deliver = BasicDeliver {
            consumer_tag: tag,
            delivery_tag,
            redelivered: delivery.redelivered,
            exchange: short(exchange),
            routing_key: short(key),
        };
        self.push_content(channel, deliver.into(), &delivery);
    }
}

/// `basic.publish` without its arguments: all that a publish's error replies and logs use (its
/// class and method ids and its name), made without copying the publish's fields, as every
/// publish needs one at hand.
fn basic_publish_method() -> Method {
    Method::BasicPublish(BasicPublish::default())
}

/// Waits for a publish that flow control holds, sending heartbeats meanwhile. What is queued
/// in `out` (`connection.blocked` among it) is written first.
async fn routed_with_heartbeats<F, S>(
    mut routed: Pin<&mut F>,
    out: &mut Vec<Frame>,
    framed: &mut Framer<S>,
    heartbeat: Option<Duration>,
) -> F::Output
where
    F: Future,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if !out.is_empty() {
        let _ = write(framed, out.drain(..)).await;
    }
    let Some(h) = heartbeat else {
        return routed.await;
    };
    loop {
        tokio::select! {
            r = &mut routed => break r,
            _ = tokio::time::sleep(h / 2) => {
                let _ = write(framed, vec![Frame::heartbeat()]).await;
            }
        }
    }
}

fn confirm_after(channel: u16, tag: u64, durability: Durability) -> Confirm {
    Box::pin(async move { (channel, tag, durability.await.is_ok()) })
}

fn unknown_tag(tag: u64, method: &Method) -> Fault {
    Fault::channel(
        reply_code::PRECONDITION_FAILED,
        format!("unknown delivery tag {tag}"),
        method,
    )
}

/// Groups taken deliveries by consumer, in tag order.
fn group(taken: &[Tagged]) -> Vec<(ConsumerId, Vec<u64>)> {
    let mut out: Vec<(ConsumerId, Vec<u64>)> = Vec::new();
    for (_, (consumer, seq)) in taken {
        match out.iter_mut().find(|(c, _)| c == consumer) {
            Some((_, seqs)) => seqs.push(*seq),
            None => out.push((*consumer, vec![*seq])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use codecs::amqp091::BasicGet;

    #[test]
    fn engine_errors_map_to_rabbitmq_reply_codes() {
        let get = Method::BasicGet(BasicGet::default());
        let code = |e: EngineError| match Fault::from_engine(e, &get) {
            Fault::Channel { code, .. } => (code, false),
            Fault::Connection {
                code,
                class_id,
                method_id,
                ..
            } => {
                assert_eq!((class_id, method_id), (60, 70));
                (code, true)
            }
        };
        assert_eq!(
            code(EngineError::UnknownDestination("queue://q".into())),
            (reply_code::NOT_FOUND, false)
        );
        assert_eq!(
            code(EngineError::ResourceLimit {
                destination: "q".into(),
                reason: "1 messages".into(),
            }),
            (reply_code::PRECONDITION_FAILED, false)
        );
        // What has no AMQP meaning (a store failure, a recovery error) is 541 INTERNAL_ERROR,
        // a connection error, as RabbitMQ answers an internal failure.
        assert_eq!(
            code(EngineError::Recovery("journal unreadable".into())),
            (reply_code::INTERNAL_ERROR, true)
        );
        assert_eq!(
            code(EngineError::SessionClosed),
            (reply_code::INTERNAL_ERROR, true)
        );
    }

    #[test]
    fn reply_text_is_rabbitmqs_form_and_fits_a_short_string() {
        assert_eq!(
            reply_text(reply_code::INTERNAL_ERROR, "boom").to_string_lossy(),
            "INTERNAL_ERROR - boom"
        );
        let long = "é".repeat(300);
        let text = reply_text(reply_code::NOT_FOUND, &long);
        assert!(text.len() <= ShortStr::MAX_LEN);
        assert!(text.as_str().is_some(), "cut at a character boundary");
    }
}
