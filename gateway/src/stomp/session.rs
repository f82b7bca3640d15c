//! One STOMP connection: handshake, heart-beats, frames in, engine calls, frames out.
//!
//! Sends are pipelined: a SEND is routed at once and its durability awaited in the background, so
//! a producer that does not ask for receipts is not held to one fsync per message; every receipt
//! (and the ERROR of a failed operation) is still emitted in the order of the frames that asked.

use super::convert::{self, StompDestination, TempNames};
use crate::ack_batch::AckBatch;
use crate::framing::Framed;
use crate::security::{Action, Authenticator, PeerInfo, Principal};
use bytes::Bytes;
use codecs::stomp::{
    StompCodec, StompCodecError, StompCommand, StompFrame, StompItem, StompLimits, StompVersion,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use routes::id_map::{IdMap, IdMapExt};
use routes::{
    ConsumerId, ConsumerSource, ConsumerSpec, Delivery, Destination, DestinationKind, Durability,
    Engine, EngineError, NackAction, Session, SessionEvent, Transaction,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

/// How many operations may wait for durability before the session stops reading frames.
const MAX_PENDING: usize = 1024;

/// Most frames, settled operations and deliveries handled between two flushes.
const DRAIN_BUDGET: usize = 1024;

/// Settings a STOMP session runs with, taken from the listener's configuration.
#[derive(Debug, Clone)]
pub struct StompSettings {
    /// Frame limits.
    pub limits: StompLimits,
    /// The shortest heart-beat interval the server agrees to, in either direction.
    pub heartbeat_floor: Duration,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
    /// Checks `login`/`passcode` and hands out the principal whose rights SEND and SUBSCRIBE
    /// are checked against.
    pub authenticator: Arc<Authenticator>,
    /// Most subscriptions one connection may hold (`security.max_subscriptions_per_connection`);
    /// 0 = no limit.
    pub max_subscriptions: usize,
    /// Whether a SEND or SUBSCRIBE that brings a queue into being also needs `admin` on it
    /// (`security.implicit_create_needs_admin`, as ActiveMQ's STOMP transport).
    pub create_needs_admin: bool,
}

/// A protocol failure that ends the connection with an ERROR frame.
struct Fatal {
    message: String,
    detail: String,
    receipt: Option<String>,
    /// Send the ERROR and go on serving, as ActiveMQ does for errors that leave the session
    /// sound (e.g. a durable subscription in use); protocol errors close.
    keep_open: bool,
}

impl Fatal {
    fn new(message: impl Into<String>, frame: Option<&StompFrame>) -> Self {
        let message = message.into();
        Fatal {
            detail: message.clone(),
            message,
            receipt: frame.and_then(|f| f.header("receipt").map(str::to_string)),
            keep_open: false,
        }
    }

    fn recoverable(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// An operation the principal may not do: ERROR in ActiveMQ's words, connection kept.
    fn denied(err: crate::security::AccessDenied, frame: &StompFrame) -> Self {
        Fatal::new(err.to_string(), Some(frame)).recoverable()
    }

    fn engine(err: EngineError, frame: &StompFrame) -> Self {
        Fatal::new(err.to_string(), Some(frame))
    }

    fn into_frame(self) -> StompFrame {
        let mut frame = StompFrame::new(StompCommand::Error)
            .with_header("message", self.message)
            .with_header("content-type", "text/plain");
        if let Some(r) = self.receipt {
            frame.push_header("receipt-id", r);
        }
        let body = Bytes::from(self.detail.into_bytes());
        frame.push_header("content-length", body.len().to_string());
        frame.with_body(body)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    Auto,
    Client,
    ClientIndividual,
}

struct Subscription {
    consumer: ConsumerId,
    ack: AckMode,
    destination: Destination,
}

struct Unacked {
    consumer: ConsumerId,
    seq: u64,
    message_id: String,
}

type PendingOp = Pin<Box<dyn Future<Output = (Option<String>, Result<(), EngineError>)> + Send>>;

fn pending(receipt: Option<String>, durability: Durability) -> PendingOp {
    Box::pin(async move { (receipt, durability.await) })
}

struct StompSession {
    version: StompVersion,
    engine: Session,
    subscriptions: HashMap<String, Subscription>,
    by_consumer: IdMap<ConsumerId, String>,
    unacked: HashMap<String, Unacked>,
    by_message_id: HashMap<String, Vec<String>>,
    transactions: HashMap<String, Transaction>,
    temps: TempNames,
    principal: Principal,
    max_subscriptions: usize,
    create_needs_admin: bool,
    user: Option<String>,
    pending: FuturesOrdered<PendingOp>,
    /// The durability of the latest ACK/NACK sent without a receipt, not awaited (the journal
    /// writes acks lazily); the next receipt waits for it, so a receipt still means every frame
    /// before it is durable.
    unawaited_ack: Option<Durability>,
    disconnecting: bool,
    /// Deliveries of `ack:auto` subscriptions written and not yet acknowledged (`ack_auto`).
    auto_acks: AckBatch,
}

/// Serves one STOMP connection until it closes, fails, or the gateway shuts down.
pub async fn serve<S>(
    stream: S,
    peer_info: PeerInfo,
    engine: Arc<Engine>,
    settings: Arc<StompSettings>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let mut framed = crate::framing::framed(stream, StompCodec::new(settings.limits));
    let deadline = Instant::now() + settings.connect_timeout;
    let connect = loop {
        let next = tokio::select! {
            r = tokio::time::timeout_at(deadline, next_frame(&mut framed)) => r,
            _ = shutdown.changed() => return,
        };
        match next {
            Ok(Ok(Some(frame)))
                if !matches!(frame.command, StompCommand::Connect | StompCommand::Stomp) =>
            {
                // As ActiveMQ: refuse the frame, keep waiting for CONNECT.
                let refusal = Fatal::new("Not connected.", Some(&frame)).into_frame();
                if framed.send(StompItem::Frame(refusal)).await.is_err() {
                    return;
                }
            }
            other => break other,
        }
    };
    let connect = match connect {
        Err(_) => {
            tracing::debug!(%peer, "no CONNECT in time");
            crate::connections::reject("no CONNECT in time");
            crate::metrics::limit_refused("stomp", "handshake_timeout");
            let _ = framed
                .send(StompItem::Frame(
                    Fatal::new("timed out waiting for CONNECT", None).into_frame(),
                ))
                .await;
            return;
        }
        Ok(Err(fatal)) => {
            crate::connections::reject("malformed CONNECT");
            let _ = framed.send(StompItem::Frame(fatal.into_frame())).await;
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(frame))) => frame,
    };
    if !matches!(connect.command, StompCommand::Connect | StompCommand::Stomp) {
        crate::connections::reject("first frame is not CONNECT");
        let fatal = Fatal::new(
            format!("expected CONNECT, got {}", connect.command.as_str()),
            Some(&connect),
        );
        let _ = framed.send(StompItem::Frame(fatal.into_frame())).await;
        return;
    }
    let version = match negotiate_version(&connect) {
        Ok(v) => v,
        Err(supported) => {
            let frame = Fatal::new(
                format!("Supported protocol versions are {supported}"),
                Some(&connect),
            )
            .into_frame()
            .with_header("version", supported);
            crate::connections::reject("unsupported STOMP version");
            let _ = framed.send(StompItem::Frame(frame)).await;
            return;
        }
    };
    let (send_every, expect_every) = match negotiate_heartbeat(&connect, version, &settings) {
        Ok(hb) => hb,
        Err(fatal) => {
            crate::connections::reject("bad heart-beat header");
            let _ = framed.send(StompItem::Frame(fatal.into_frame())).await;
            return;
        }
    };
    // As ActiveMQ: bad credentials get an ERROR naming the user, then the connection closes.
    let principal = tokio::select! {
        // Boxed, as the run loop below: an idle connection's future keeps no room for the
        // handshake states it has left behind.
        outcome = Box::pin(settings.authenticator.authenticate(
            connect.header("login"),
            connect.header("passcode").map(str::as_bytes),
            &peer_info,
        )) => match outcome {
            Ok(principal) => principal,
            Err(e) => {
                crate::connections::reject("login refused");
                let _ = framed
                    .send(StompItem::Frame(Fatal::new(e.to_string(), Some(&connect)).into_frame()))
                    .await;
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    let client_id = connect
        .header("client-id")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let (session, events) = match engine.connect_unique(client_id) {
        Ok(pair) => pair,
        Err(e) => {
            crate::connections::reject("client id in use");
            // ActiveMQ: "Broker: ... - Client: x already connected from ...", then close.
            let _ = framed
                .send(StompItem::Frame(
                    Fatal::new(e.to_string(), Some(&connect)).into_frame(),
                ))
                .await;
            return;
        }
    };
    let mut connected = StompFrame::new(StompCommand::Connected)
        .with_header("session", format!("gw-session-{}", session.id()))
        .with_header("server", concat!("gateway/", env!("CARGO_PKG_VERSION")));
    // ActiveMQ names the version even for 1.0.
    connected.push_header("version", version.as_str());
    if version >= StompVersion::V1_1 {
        connected.push_header(
            "heart-beat",
            format!(
                "{},{}",
                send_every.map_or(0, |d| d.as_millis()),
                expect_every.map_or(0, |d| d.as_millis())
            ),
        );
    }
    if framed.send(StompItem::Frame(connected)).await.is_err() {
        return;
    }
    framed.codec_mut().set_version(version);
    crate::connections::established(
        connect.header("login").filter(|l| !l.is_empty()),
        session.client_id(),
        session.id(),
    );
    tracing::debug!(%peer, version = version.as_str(), "STOMP session open");
    let mut state = StompSession {
        version,
        engine: session,
        subscriptions: HashMap::new(),
        by_consumer: IdMap::new(),
        unacked: HashMap::new(),
        by_message_id: HashMap::new(),
        transactions: HashMap::new(),
        temps: TempNames::default(),
        // The authenticated user name; for anonymous clients, the login they gave, if any.
        user: if principal.is_anonymous() {
            connect
                .header("login")
                .filter(|l| !l.is_empty())
                .map(str::to_string)
        } else {
            Some(principal.name().to_owned())
        },
        principal,
        max_subscriptions: settings.max_subscriptions,
        create_needs_admin: settings.create_needs_admin,
        pending: FuturesOrdered::new(),
        unawaited_ack: None,
        disconnecting: false,
        auto_acks: AckBatch::default(),
    };
    let outcome =
        Box::pin(state.run(&mut framed, events, send_every, expect_every, &mut shutdown)).await;
    // Written deliveries of `ack:auto` subscriptions are acknowledged, as they always were,
    // before the session's consumers close (which would give them to another consumer).
    state.ack_auto();
    if let Err(fatal) = outcome {
        tracing::debug!(%peer, error = %fatal.message, "closing STOMP connection with ERROR");
        let _ = framed.send(StompItem::Frame(fatal.into_frame())).await;
    }
    for (_, tx) in state.transactions.drain() {
        state.engine.rollback(tx);
    }
    let _ = SinkExt::<StompItem>::close(&mut framed).await;
    tracing::debug!(%peer, "STOMP session closed");
}

/// Reads the next frame, skipping heart-beats. `Ok(None)` is a closed connection.
async fn next_frame<S>(framed: &mut Framed<S, StompCodec>) -> Result<Option<StompFrame>, Fatal>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match framed.next().await {
            None => return Ok(None),
            Some(Ok(StompItem::HeartBeat)) => continue,
            Some(Ok(StompItem::Frame(f))) => return Ok(Some(f)),
            Some(Err(e)) => return Err(decode_fatal(e)),
        }
    }
}

fn decode_fatal(e: StompCodecError) -> Fatal {
    match e {
        StompCodecError::Decode(d) => {
            crate::metrics::decode_error("stomp");
            if matches!(d, codecs::stomp::StompDecodeError::FrameTooLarge { .. }) {
                crate::metrics::limit_refused("stomp", "frame_too_large");
            }
            Fatal::new(format!("malformed frame: {d}"), None)
        }
        StompCodecError::Io(io) => Fatal::new(format!("i/o error: {io}"), None),
    }
}

fn negotiate_version(connect: &StompFrame) -> Result<StompVersion, &'static str> {
    let Some(accept) = connect.header("accept-version") else {
        return Ok(StompVersion::V1_0);
    };
    accept
        .split(',')
        .filter_map(|v| StompVersion::parse(v.trim()))
        .max()
        .ok_or("1.0,1.1,1.2")
}

type Heartbeats = (Option<Duration>, Option<Duration>);

fn negotiate_heartbeat(
    connect: &StompFrame,
    version: StompVersion,
    settings: &StompSettings,
) -> Result<Heartbeats, Fatal> {
    if version == StompVersion::V1_0 {
        return Ok((None, None));
    }
    let Some(hb) = connect.header("heart-beat") else {
        return Ok((None, None));
    };
    let parsed: Option<(u64, u64)> = hb
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    let Some((client_sends, client_wants)) = parsed else {
        return Err(Fatal::new(
            format!("invalid heart-beat header `{hb}`"),
            Some(connect),
        ));
    };
    // Like ActiveMQ, honour the client's wishes, never faster than the configured floor.
    let floor = settings.heartbeat_floor;
    let interval = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms).max(floor));
    Ok((interval(client_wants), interval(client_sends)))
}

impl StompSession {
    async fn run<S>(
        &mut self,
        framed: &mut Framed<S, StompCodec>,
        mut events: UnboundedReceiver<SessionEvent>,
        send_every: Option<Duration>,
        expect_every: Option<Duration>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        // A peer that promised heart-beats is dead after twice the interval without a byte.
        let read_timeout = expect_every.map(|d| d * 2);
        let far = Duration::from_secs(86_400 * 365);
        let mut read_deadline = Instant::now() + read_timeout.unwrap_or(far);
        let mut write_deadline = Instant::now() + send_every.unwrap_or(far);
        loop {
            if self.disconnecting && self.pending.is_empty() {
                return Ok(());
            }
            let reading = !self.disconnecting && self.pending.len() < MAX_PENDING;
            tokio::select! {
                item = framed.next(), if reading => {
                    read_deadline = Instant::now() + read_timeout.unwrap_or(far);
                    match item {
                        None => return Ok(()),
                        Some(Err(e)) => return Err(decode_fatal(e)),
                        Some(Ok(item)) => self.on_item(item, framed).await?,
                    }
                }
                Some(done) = self.pending.next(), if !self.pending.is_empty() => {
                    self.on_done(done, framed).await?;
                }
                event = events.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    self.handle_event(event, framed).await?;
                    // Drain what else is ready so one flush covers a burst.
                    while let Ok(event) = events.try_recv() {
                        self.handle_event(event, framed).await?;
                    }
                    self.ack_auto();
                }
                _ = tokio::time::sleep_until(read_deadline), if read_timeout.is_some() => {
                    return Err(Fatal::new("no heart-beat received in time", None));
                }
                _ = tokio::time::sleep_until(write_deadline), if send_every.is_some() => {
                    framed.feed(StompItem::HeartBeat).await.map_err(decode_fatal)?;
                }
                _ = shutdown.changed() => {
                    self.disconnecting = true;
                    while let Some((receipt, result)) = self.pending.next().await {
                        if let (Some(r), Ok(())) = (receipt, result) {
                            let _ = framed.feed(StompItem::Frame(receipt_frame(r))).await;
                        }
                    }
                    return Err(Fatal::new("the server is shutting down", None));
                }
            }
            // Boxed: inline, its room would be part of every idle connection's future.
            if !framed.read_buffer().is_empty()
                || !self.pending.is_empty()
                || !events.is_empty()
                || !self.auto_acks.is_empty()
            {
                Box::pin(self.drain_ready(framed, &mut events)).await?;
            }
            if !framed.write_buffer().is_empty() {
                SinkExt::<StompItem>::flush(framed)
                    .await
                    .map_err(decode_fatal)?;
                write_deadline = Instant::now() + send_every.unwrap_or(far);
            }
        }
    }

    /// Handles a frame (or heart-beat) from the client.
    async fn on_item<S>(
        &mut self,
        item: StompItem,
        framed: &mut Framed<S, StompCodec>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let StompItem::Frame(frame) = item else {
            return Ok(());
        };
        match self.handle_frame(frame).await {
            Err(e) if e.keep_open => framed
                .feed(StompItem::Frame(e.into_frame()))
                .await
                .map_err(decode_fatal),
            other => other,
        }
    }

    /// Writes the receipt of an operation whose durability is settled (or ends the session
    /// with the ERROR of a failed one).
    async fn on_done<S>(
        &mut self,
        (receipt, result): (Option<String>, Result<(), EngineError>),
        framed: &mut Framed<S, StompCodec>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        match result {
            Ok(()) => {
                if let Some(r) = receipt {
                    framed
                        .feed(StompItem::Frame(receipt_frame(r)))
                        .await
                        .map_err(decode_fatal)?;
                }
                Ok(())
            }
            Err(e) => {
                let mut fatal = Fatal::new(e.to_string(), None);
                fatal.receipt = receipt;
                Err(fatal)
            }
        }
    }

    /// Before a flush, handles whatever is ready without waiting: frames already read,
    /// settled operations, deliveries. One flush (one `writev`) then covers all the replies
    /// and deliveries of a burst, where the loop above would flush after each of them (a
    /// receipt per `writev` for a producer with receipts in flight).
    async fn drain_ready<S>(
        &mut self,
        framed: &mut Framed<S, StompCodec>,
        events: &mut UnboundedReceiver<SessionEvent>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        // Bounded, so that timers and shutdown are looked at now and then.
        let mut budget = DRAIN_BUDGET;
        while budget > 0 {
            let before = budget;
            while budget > 0 && !self.disconnecting && self.pending.len() < MAX_PENDING {
                match crate::framing::next_buffered(framed) {
                    Ok(Some(item)) => {
                        budget -= 1;
                        self.on_item(item, framed).await?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(decode_fatal(e)),
                }
            }
            while budget > 0 {
                let Some(Some(done)) = self.pending.next().now_or_never() else {
                    break;
                };
                budget -= 1;
                self.on_done(done, framed).await?;
            }
            while budget > 0 {
                let Ok(event) = events.try_recv() else {
                    break;
                };
                budget -= 1;
                self.handle_event(event, framed).await?;
            }
            self.ack_auto();
            if budget == before {
                break;
            }
        }
        Ok(())
    }

    /// Acknowledges the deliveries of `ack:auto` subscriptions written since the last call.
    /// Called before any client frame is handled, so an UNSUBSCRIBE or DISCONNECT never finds
    /// them unacknowledged.
    fn ack_auto(&mut self) {
        self.auto_acks.flush(&self.engine);
    }

    async fn handle_event<S>(
        &mut self,
        event: SessionEvent,
        framed: &mut Framed<S, StompCodec>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        match event {
            SessionEvent::Deliver(delivery) => self.deliver(*delivery, framed).await,
            SessionEvent::TakenOver => Err(Fatal::new(
                "another connection took over this client id",
                None,
            )),
            SessionEvent::ConsumerCancelled(consumer) => {
                if let Some(id) = self.by_consumer.remove(&consumer) {
                    self.subscriptions.remove(&id);
                }
                Ok(())
            }
        }
    }

    async fn deliver<S>(
        &mut self,
        delivery: Delivery,
        framed: &mut Framed<S, StompCodec>,
    ) -> Result<(), Fatal>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Some(sub_id) = self.by_consumer.get(&delivery.consumer) else {
            // A delivery racing an UNSUBSCRIBE: the engine already took the message back.
            return Ok(());
        };
        let Some(sub) = self.subscriptions.get(sub_id) else {
            return Ok(());
        };
        let auto = sub.ack == AckMode::Auto;
        // The ack token is only needed (and only made) for acknowledging subscriptions.
        let token = (!auto).then(|| format!("{}-{}", delivery.consumer, delivery.seq));
        let ack_header = token
            .as_deref()
            .filter(|_| self.version == StompVersion::V1_2);
        let frame =
            convert::message_frame(&delivery, sub_id, ack_header, &sub.destination, &self.temps);
        framed
            .feed(StompItem::Frame(frame))
            .await
            .map_err(decode_fatal)?;
        let Some(token) = token else {
            // ActiveMQ's auto mode acknowledges on dispatch: before this burst is flushed
            // (`ack_auto`).
            self.auto_acks.push(delivery.consumer, delivery.seq);
            return Ok(());
        };
        self.by_message_id
            .entry(delivery.message.message_id.clone())
            .or_default()
            .push(token.clone());
        self.unacked.insert(
            token,
            Unacked {
                consumer: delivery.consumer,
                seq: delivery.seq,
                message_id: delivery.message.message_id.clone(),
            },
        );
        Ok(())
    }

    async fn handle_frame(&mut self, frame: StompFrame) -> Result<(), Fatal> {
        let receipt = frame.header("receipt").map(str::to_string);
        let durability = match frame.command {
            StompCommand::Send => self.on_send(&frame).await?,
            StompCommand::Subscribe => self.on_subscribe(&frame)?,
            StompCommand::Unsubscribe => self.on_unsubscribe(&frame)?,
            StompCommand::Ack => self.on_ack(&frame, false)?,
            StompCommand::Nack => {
                if self.version == StompVersion::V1_0 {
                    return Err(Fatal::new("NACK is not part of STOMP 1.0", Some(&frame)));
                }
                self.on_ack(&frame, true)?
            }
            StompCommand::Begin => {
                let tx = required(&frame, "transaction")?;
                if self.transactions.contains_key(tx) {
                    return Err(Fatal::new(
                        format!("transaction {tx} is already started"),
                        Some(&frame),
                    ));
                }
                self.transactions.insert(tx.to_string(), Transaction::new());
                Durability::done()
            }
            StompCommand::Commit => {
                let tx = required(&frame, "transaction")?;
                let Some(work) = self.transactions.remove(tx) else {
                    return Err(Fatal::new(
                        format!("transaction {tx} is not started"),
                        Some(&frame),
                    ));
                };
                self.engine
                    .commit(work)
                    .await
                    .map_err(|e| Fatal::engine(e, &frame))?
            }
            StompCommand::Abort => {
                let tx = required(&frame, "transaction")?;
                let Some(work) = self.transactions.remove(tx) else {
                    return Err(Fatal::new(
                        format!("transaction {tx} is not started"),
                        Some(&frame),
                    ));
                };
                self.engine.rollback(work);
                Durability::done()
            }
            StompCommand::Disconnect => {
                self.disconnecting = true;
                Durability::done()
            }
            StompCommand::Connect | StompCommand::Stomp => {
                return Err(Fatal::new("already connected", Some(&frame)));
            }
            other => {
                return Err(Fatal::new(
                    format!("{} is a server frame", other.as_str()),
                    Some(&frame),
                ));
            }
        };
        // Nobody waits on an ACK or NACK without a receipt: awaiting its durability now would
        // only make the journal fsync the (lazily written) ack on its own.
        if receipt.is_none() && matches!(frame.command, StompCommand::Ack | StompCommand::Nack) {
            if durability.is_pending() {
                self.unawaited_ack = Some(durability);
            }
            return Ok(());
        }
        if receipt.is_some() {
            if let Some(ack) = self.unawaited_ack.take() {
                self.pending.push_back(pending(None, ack));
            }
        }
        if receipt.is_some() || durability.is_pending() {
            self.pending.push_back(pending(receipt, durability));
        }
        Ok(())
    }

    fn resolve(&mut self, dest: StompDestination) -> Result<Destination, EngineError> {
        match dest {
            StompDestination::Plain(d) => Ok(d),
            StompDestination::Temporary(kind, name) => {
                if let Some(engine_name) = self.temps.lookup(kind, &name) {
                    return Ok(Destination {
                        kind,
                        name: engine_name.clone(),
                    });
                }
                let engine_name = self.engine.create_temporary(kind)?;
                self.temps.insert(kind, name, engine_name.clone());
                Ok(Destination {
                    kind,
                    name: engine_name,
                })
            }
        }
    }

    fn destination(&mut self, frame: &StompFrame) -> Result<Destination, Fatal> {
        let text = required(frame, "destination")?;
        let parsed = convert::parse_destination(text).map_err(|e| Fatal::new(e, Some(frame)))?;
        self.resolve(parsed).map_err(|e| Fatal::engine(e, frame))
    }

    /// As ActiveMQ's `AuthorizationBroker::addDestination` under its STOMP transport: a SEND
    /// or SUBSCRIBE that brings a queue into being (it does not exist yet) needs `admin` on it,
    /// as the same queue's first use over OpenWire or AMQP does. Temporary queues belong to
    /// their connection; the engine keeps no topic objects, so naming a topic creates nothing.
    fn check_create(&self, destination: &Destination, frame: &StompFrame) -> Result<(), Fatal> {
        // The cheap tests first: without authorization entries everyone has admin, and a
        // SEND costs no queue lookup.
        if !self.create_needs_admin
            || destination.kind != DestinationKind::Queue
            || destination.name.starts_with(routes::TEMP_PREFIX)
            || routes::address::is_pattern(&destination.name)
            || self.principal.may(Action::Admin, destination)
            || self.engine.engine().queue_info(&destination.name).is_some()
        {
            return Ok(());
        }
        self.principal
            .check(Action::Admin, destination)
            .map_err(|e| Fatal::denied(e, frame))
    }

    async fn on_send(&mut self, frame: &StompFrame) -> Result<Durability, Fatal> {
        let destination = self.destination(frame)?;
        self.principal
            .check(Action::Write, &destination)
            .map_err(|e| Fatal::denied(e, frame))?;
        self.check_create(&destination, frame)?;
        let reply_to = match frame.header("reply-to") {
            None => None,
            Some(text) => match convert::parse_destination(text) {
                Ok(parsed) => Some(
                    self.resolve(parsed)
                        .map_err(|e| Fatal::engine(e, frame))?
                        .to_string(),
                ),
                Err(_) => Some(text.to_string()),
            },
        };
        let mut message = convert::message_from_send(frame, reply_to, self.user.as_deref())
            .map_err(|e| Fatal::new(e, Some(frame)))?;
        message.message_id = self.engine.engine().new_message_id();
        if let Some(tx) = frame.header("transaction") {
            let Some(work) = self.transactions.get_mut(tx) else {
                return Err(Fatal::new(
                    format!("transaction {tx} is not started"),
                    Some(frame),
                ));
            };
            work.send(destination, message);
            return Ok(Durability::done());
        }
        self.engine
            .publish(&destination, message)
            .await
            .map_err(|e| Fatal::engine(e, frame))
    }

    fn on_subscribe(&mut self, frame: &StompFrame) -> Result<Durability, Fatal> {
        let destination_text = required(frame, "destination")?.to_string();
        let id = frame
            .header("id")
            .map(str::to_string)
            .unwrap_or_else(|| destination_text.clone());
        if self.subscriptions.contains_key(&id) {
            return Err(Fatal::new(
                format!("subscription id {id} is already in use"),
                Some(frame),
            ));
        }
        let ack = match frame.header("ack").unwrap_or("auto") {
            "auto" => AckMode::Auto,
            "client" => AckMode::Client,
            "client-individual" => AckMode::ClientIndividual,
            other => {
                return Err(Fatal::new(
                    format!("unknown ack mode `{other}`"),
                    Some(frame),
                ))
            }
        };
        if self.max_subscriptions > 0 && self.subscriptions.len() >= self.max_subscriptions {
            crate::metrics::limit_refused("stomp", "max_subscriptions");
            return Err(Fatal::new(
                format!(
                    "Too many subscriptions: the gateway allows {} per connection",
                    self.max_subscriptions
                ),
                Some(frame),
            )
            .recoverable());
        }
        let destination = self.destination(frame)?;
        self.principal
            .check(Action::Read, &destination)
            .map_err(|e| Fatal::denied(e, frame))?;
        self.check_create(&destination, frame)?;
        let durable_name = frame
            .header("activemq.subscriptionName")
            .or_else(|| frame.header("durable-subscription-name"))
            .filter(|n| !n.is_empty());
        let source = match (destination.kind, durable_name) {
            (DestinationKind::Queue, _) => ConsumerSource::Queue(destination.name.clone()),
            (DestinationKind::Topic, None) => ConsumerSource::Topic(destination.name.clone()),
            (DestinationKind::Topic, Some(name)) => {
                if self.engine.client_id().is_none() {
                    return Err(Fatal::new(
                        "a durable subscription needs a client-id header on CONNECT",
                        Some(frame),
                    ));
                }
                ConsumerSource::DurableTopic {
                    pattern: destination.name.clone(),
                    subscription: name.to_string(),
                }
            }
        };
        let prefetch = match frame.header("activemq.prefetchSize") {
            None => None,
            // STOMP has no pull: a prefetch of 0 still gets one message at a time.
            Some(p) => Some(
                p.trim()
                    .parse::<u32>()
                    .map_err(|_| {
                        Fatal::new(format!("invalid activemq.prefetchSize `{p}`"), Some(frame))
                    })?
                    .max(1),
            ),
        };
        // ActiveMQ's `activemq.priority` consumer priority (higher first; default 0).
        let priority = match frame.header("activemq.priority") {
            None => 0,
            Some(p) => p
                .trim()
                .parse::<i8>()
                .map_err(|_| Fatal::new(format!("invalid activemq.priority `{p}`"), Some(frame)))?,
        };
        let spec = ConsumerSpec {
            source,
            // ActiveMQ's STOMP transport compares string headers with numbers by converting them.
            selector: frame
                .header("selector")
                .filter(|s| !s.trim().is_empty())
                .map(|s| format!("{}{s}", routes::selector::CONVERT_STRING_EXPRESSIONS_PREFIX)),
            prefetch,
            exclusive: frame.header("activemq.exclusive") == Some("true"),
            priority,
            no_local: frame.header("activemq.noLocal") == Some("true"),
            retained: false,
            tag: None,
        };
        // Register before subscribing: the engine may deliver at once.
        let consumer = self
            .engine
            .subscribe(spec)
            .map_err(|e| Fatal::engine(e, frame))?;
        self.by_consumer.insert(consumer, id.clone());
        self.subscriptions.insert(
            id,
            Subscription {
                consumer,
                ack,
                destination,
            },
        );
        Ok(Durability::done())
    }

    fn on_unsubscribe(&mut self, frame: &StompFrame) -> Result<Durability, Fatal> {
        let id = frame
            .header("id")
            .or_else(|| frame.header("destination"))
            .ok_or_else(|| Fatal::new("UNSUBSCRIBE needs an id header", Some(frame)))?
            .to_string();
        let durable_name = frame
            .header("activemq.subscriptionName")
            .or_else(|| frame.header("durable-subscription-name"));
        if durable_name.is_some() && self.subscriptions.contains_key(&id) {
            // ActiveMQ: a durable subscription is removed only while inactive; UNSUBSCRIBE it
            // plainly first.
            return Err(Fatal::new("Durable consumer is in use", Some(frame)).recoverable());
        }
        if let Some(sub) = self.subscriptions.remove(&id) {
            self.by_consumer.remove(&sub.consumer);
            self.unacked.retain(|_, u| u.consumer != sub.consumer);
            self.engine.unsubscribe(sub.consumer);
        } else if frame.header("activemq.subscriptionName").is_none()
            && frame.header("durable-subscription-name").is_none()
        {
            return Err(Fatal::new(
                format!("no subscription with id {id}"),
                Some(frame),
            ));
        }
        if let Some(name) = frame
            .header("activemq.subscriptionName")
            .or_else(|| frame.header("durable-subscription-name"))
        {
            self.engine
                .remove_durable_subscription(name)
                .map_err(|e| Fatal::engine(e, frame))?;
        }
        Ok(Durability::done())
    }

    /// Finds the delivery an ACK or NACK names, by `id` (1.2) or `message-id` (1.0, 1.1).
    fn find_unacked(&self, frame: &StompFrame) -> Result<Option<String>, Fatal> {
        if let Some(id) = frame.header("id") {
            if self.unacked.contains_key(id) {
                return Ok(Some(id.to_string()));
            }
        }
        let message_id = frame.header("message-id").or_else(|| frame.header("id"));
        let Some(message_id) = message_id else {
            return Err(Fatal::new(
                "ACK and NACK need an id (1.2) or message-id (1.0, 1.1) header",
                Some(frame),
            ));
        };
        let consumer = frame
            .header("subscription")
            .and_then(|s| self.subscriptions.get(s))
            .map(|s| s.consumer);
        Ok(self.by_message_id.get(message_id).and_then(|tokens| {
            tokens
                .iter()
                .find(|t| {
                    self.unacked
                        .get(*t)
                        .is_some_and(|u| consumer.is_none_or(|c| c == u.consumer))
                })
                .cloned()
        }))
    }

    fn forget(&mut self, consumer: ConsumerId, seq: u64) {
        let token = format!("{consumer}-{seq}");
        if let Some(u) = self.unacked.remove(&token) {
            if let Some(tokens) = self.by_message_id.get_mut(&u.message_id) {
                tokens.retain(|t| t != &token);
                if tokens.is_empty() {
                    self.by_message_id.remove(&u.message_id);
                }
            }
        }
    }

    fn on_ack(&mut self, frame: &StompFrame, nack: bool) -> Result<Durability, Fatal> {
        let Some(token) = self.find_unacked(frame)? else {
            // ActiveMQ: "Unexpected ACK received for message-id".
            let what = frame
                .header("id")
                .or_else(|| frame.header("message-id"))
                .unwrap_or_default();
            return Err(Fatal::new(
                format!(
                    "unexpected {} for [{what}]: not a pending delivery of this connection",
                    frame.command.as_str()
                ),
                Some(frame),
            ));
        };
        let Some(u) = self.unacked.get(&token) else {
            return Ok(Durability::done());
        };
        let (consumer, seq) = (u.consumer, u.seq);
        let cumulative = self
            .by_consumer
            .get(&consumer)
            .and_then(|id| self.subscriptions.get(id))
            .is_some_and(|s| s.ack == AckMode::Client);
        let seqs = if cumulative {
            self.engine
                .delivered_through(consumer, seq)
                .map_err(|e| Fatal::engine(e, frame))?
        } else {
            vec![seq]
        };
        for s in &seqs {
            self.forget(consumer, *s);
        }
        if nack {
            // ActiveMQ sends a NACKed message to the dead-letter queue.
            self.engine
                .nack(consumer, &seqs, NackAction::DeadLetter)
                .map_err(|e| Fatal::engine(e, frame))?;
            return Ok(Durability::done());
        }
        if let Some(tx) = frame.header("transaction") {
            let Some(work) = self.transactions.get_mut(tx) else {
                return Err(Fatal::new(
                    format!("transaction {tx} is not started"),
                    Some(frame),
                ));
            };
            for s in seqs {
                work.ack(consumer, s);
            }
            return Ok(Durability::done());
        }
        self.engine
            .ack(consumer, &seqs)
            .map_err(|e| Fatal::engine(e, frame))
    }
}

fn required<'a>(frame: &'a StompFrame, header: &str) -> Result<&'a str, Fatal> {
    frame.header(header).ok_or_else(|| {
        Fatal::new(
            format!(
                "{} frame is missing the {header} header",
                frame.command.as_str()
            ),
            Some(frame),
        )
    })
}

fn receipt_frame(receipt: String) -> StompFrame {
    StompFrame::new(StompCommand::Receipt).with_header("receipt-id", receipt)
}
