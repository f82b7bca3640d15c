//! One OpenWire connection: wire format negotiation, inactivity monitoring, commands in, engine
//! calls, responses and dispatches out.
//!
//! Commands are handled one at a time, in order: a send the client waits for (persistent sends
//! by default) is answered once the engine has it on disk; an asynchronous send is not waited
//! for. A command the gateway cannot honour gets an `ExceptionResponse` carrying the Java
//! exception class the ActiveMQ client expects (e.g. `javax.jms.InvalidClientIDException`);
//! undecodable bytes close the connection with a `ConnectionError`. Temporary-destination
//! advisories from the listener's other connections, engine deliveries, commands and timers
//! (pulls, keep-alives, inactivity) are served by one loop, advisories first.

use super::advisory::{OpenWireShared, TempAdvisory, TEMP_QUEUE_ADVISORY, TEMP_TOPIC_ADVISORY};
use super::convert::{self, TempNames};
use crate::framing::Framed;
use crate::security::{AccessDenied, Action, AuthError, Authenticator, PeerInfo, Principal};
use codecs::openwire::{
    self as ow, ack_type, transaction_type, Command, CommandHeader, ExceptionResponse,
    JavaThrowable, MessageDispatch, OpenWireCodec, OpenWireCodecError, OpenWireLimits, Response,
    WireFormat, WireFormatOptions,
};
use futures::{SinkExt, StreamExt};
use routes::id_map::{IdMap, IdMapExt};
use routes::{
    ConsumerSource, ConsumerSpec, DestinationKind, Engine, EngineError, NackAction, Session,
    SessionEvent, Transaction,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

/// Settings an OpenWire session runs with, taken from the listener's configuration.
#[derive(Debug, Clone)]
pub struct OpenWireSettings {
    /// Decoder limits (`max_frame_size` is also offered as `MaxFrameSize`).
    pub limits: OpenWireLimits,
    /// `MaxInactivityDuration` offered; zero disables inactivity monitoring.
    pub max_inactivity: Duration,
    /// Time a new connection has to send its `WireFormatInfo`, and then again its
    /// `ConnectionInfo` (the authentication deadline, whatever inactivity was negotiated).
    pub connect_timeout: Duration,
    /// Checks the `ConnectionInfo` user name and password and hands out the principal whose
    /// rights every producer, send, consumer and destination creation is checked against.
    pub authenticator: Arc<Authenticator>,
    /// Most consumers (queue browsers included, advisory consumers not) one connection may
    /// hold (`security.max_subscriptions_per_connection`); 0 = no limit.
    pub max_consumers: usize,
    /// Most sessions one connection may hold (`security.max_sessions_per_connection`);
    /// 0 = no limit.
    pub max_sessions: usize,
}

/// The broker name shown to clients (`BrokerInfo`, exception messages).
const BROKER_NAME: &str = "gateway";

/// The exception ActiveMQ's security brokers throw (refused logins, refused operations); the
/// client's `JMSExceptionSupport` turns it into a `javax.jms.JMSSecurityException`.
const SECURITY_EXCEPTION: &str = "java.lang.SecurityException";

/// The exception XA operations fail with (the client turns it into its `XAException`).
const XA_EXCEPTION: &str = "javax.transaction.xa.XAException";

/// A failure answered with an `ExceptionResponse` (when the command wanted a response) and, when
/// `fatal`, the end of the connection.
struct Failure {
    class: &'static str,
    message: String,
    fatal: bool,
}

impl Failure {
    fn jms(class: &'static str, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
            fatal: false,
        }
    }

    fn fatal(class: &'static str, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
            fatal: true,
        }
    }

    /// An operation the principal may not do: `java.lang.SecurityException` with ActiveMQ's
    /// words, as its `AuthorizationBroker` throws it (the client raises a
    /// `JMSSecurityException`); the connection stays up.
    fn denied(e: AccessDenied) -> Self {
        Failure::jms(SECURITY_EXCEPTION, e.to_string())
    }

    fn engine(e: EngineError) -> Self {
        let class = match &e {
            EngineError::InvalidSelector(_) => "javax.jms.InvalidSelectorException",
            EngineError::InvalidDestination(_) | EngineError::UnknownDestination(_) => {
                "javax.jms.InvalidDestinationException"
            }
            EngineError::ClientIdInUse(_) => "javax.jms.InvalidClientIDException",
            EngineError::ResourceLimit { .. } | EngineError::SendTimeout(_) => {
                "javax.jms.ResourceAllocationException"
            }
            _ => "javax.jms.JMSException",
        };
        Failure::jms(class, e.to_string())
    }
}

/// One JMS consumer of this connection.
struct Consumer {
    /// The engine consumers: one per member of a composite destination; none for an advisory
    /// subscription, which is accepted but never fed.
    engine_ids: Vec<routes::ConsumerId>,
    /// The client's id for it.
    id: ow::ConsumerId,
    /// The destination as the client named it.
    destination: Option<ow::Destination>,
    /// Dispatched and not yet acknowledged, oldest first: the engine consumer and sequence, and
    /// the engine message, whose id is the text of the message id sent (kept instead of that
    /// `MessageId`, whose three strings cost three allocations per delivery; see
    /// [`names_dispatched`]).
    dispatched: VecDeque<(routes::ConsumerId, u64, Arc<routes::Message>)>,
    /// The deliveries of `dispatched` a `DELIVERED` ack said the application has consumed
    /// without acknowledging yet: they widen the engine consumers' prefetch windows.
    delivered: HashSet<(routes::ConsumerId, u64)>,
    /// Prefetch 0: the engine dispatches nothing unasked; each `MessagePull` opens the window
    /// by one message, and a pull that times out gets an empty dispatch.
    pulling: bool,
    /// A pull is waiting for its message (and holds the window open by one).
    pull_pending: bool,
    /// When the pending pull times out (`None`: it waits for ever).
    pull_deadline: Option<Instant>,
}

/// Transactions are named by the client's transaction id: a `LocalTransactionId` (per
/// connection) or an `XATransactionId` (an XA branch).
type TxKey = ow::TransactionId;

/// XA `prepare` vote: prepared, commit will follow.
const XA_OK: i32 = 0;
/// XA `prepare` vote: the branch did nothing; it is over (no commit follows).
const XA_READ_ONLY: i32 = 3;

/// A transaction (local, or an XA branch): the engine work staged so far, and the deliveries its
/// acks cover, which leave their consumers' dispatched lists only at commit (a rollback keeps
/// them pending, as the client redelivers them itself).
#[derive(Default)]
struct LocalTransaction {
    work: Transaction,
    acked: Vec<(ow::ConsumerId, routes::ConsumerId, u64)>,
    /// An XA branch that voted `XA_OK` to `prepare`: listed by `recover`.
    prepared: bool,
}

fn describe_tx(key: &TxKey) -> String {
    match key {
        ow::TransactionId::Local(tx) => format!("local transaction {}", tx.value),
        ow::TransactionId::Xa(xid) => format!("XA branch (format {})", xid.format_id),
    }
}

/// The state of one connection.
///
/// ### Invariants
///
/// - `session` and `events` are both set from the accepted `ConnectionInfo` until
///   [`OpenWireSession::close_all`], and both unset otherwise.
/// - `by_engine` maps exactly the engine consumers listed in the `engine_ids` of `consumers`.
/// - A consumer's `dispatched` holds only its engine consumers' deliveries not yet acknowledged,
///   poisoned or committed, oldest first.
/// - `own_temps` lists the temporary destinations this connection created and has not removed;
///   each is announced in `shared` until withdrawn.
struct OpenWireSession {
    engine: Arc<Engine>,
    session: Option<Session>,
    events: Option<UnboundedReceiver<SessionEvent>>,
    connection_id: Option<ow::ConnectionId>,
    consumers: HashMap<ow::ConsumerId, Consumer>,
    /// Producers with a window (`jms.producerWindowSize`): their asynchronous sends are answered
    /// with `ProducerAck`s releasing the window.
    windowed_producers: HashMap<ow::ProducerId, i32>,
    by_engine: IdMap<routes::ConsumerId, ow::ConsumerId>,
    transactions: HashMap<TxKey, LocalTransaction>,
    temps: TempNames,
    /// The user name messages are stamped with (`JMSXUserID`): the authenticated user, or the
    /// name an anonymous client gave.
    user: Option<String>,
    /// Who the connection is, from the accepted `ConnectionInfo` on.
    principal: Option<Principal>,
    authenticator: Arc<Authenticator>,
    peer_info: PeerInfo,
    peer: SocketAddr,
    closing: bool,
    /// Largest body a compressed message may inflate to.
    max_inflated: usize,
    /// The negotiated `MaxFrameSize`: the client drops its connection on a larger frame, so a
    /// delivery that would make one is dead-lettered instead.
    max_frame_out: usize,
    /// Commands to send right after the response to the command being handled (a queue
    /// browser's messages follow the `Response` to its `ConsumerInfo`).
    after_response: Vec<Command>,
    /// The response to the command being handled when it is not a plain `Response` (XA
    /// `prepare`'s `IntegerResponse`, `recover`'s `DataArrayResponse`).
    response_override: Option<Command>,
    /// Temporary-destination advisories shared by the listener's connections.
    shared: Arc<OpenWireShared>,
    /// Changes to other connections' temporary destinations, once this connection has an
    /// advisory consumer for them.
    advisories: Option<broadcast::Receiver<TempAdvisory>>,
    /// Advisory consumers: id, destination, and whether they watch temporary queues / topics.
    advisory_consumers: Vec<(ow::ConsumerId, ow::Destination, bool, bool)>,
    /// This connection's temporary destinations (engine name, kind), to withdraw at close.
    own_temps: Vec<(String, DestinationKind)>,
    /// Sequence of the advisory messages sent on this connection.
    advisory_seq: i64,
    /// `OpenWireSettings::max_consumers`.
    max_consumers: usize,
    /// `OpenWireSettings::max_sessions`.
    max_sessions: usize,
    /// The sessions admitted by `SessionInfo` (kept only while `max_sessions` is set).
    sessions: HashSet<ow::SessionId>,
}

type Io<S> = Framed<S, OpenWireCodec>;

fn io_error(e: OpenWireCodecError) -> Failure {
    crate::metrics::openwire_codec_error(&e);
    Failure::fatal("java.io.IOException", e.to_string())
}

/// Serves one OpenWire connection until it closes, fails, or the gateway shuts down.
pub async fn serve<S>(
    stream: S,
    peer_info: PeerInfo,
    engine: Arc<Engine>,
    settings: Arc<OpenWireSettings>,
    shared: Arc<OpenWireShared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let pre = WireFormat {
        limits: settings.limits,
        ..WireFormat::default()
    };
    let mut framed = crate::framing::framed(stream, OpenWireCodec::new(pre));
    let max_inactivity_ms = i64::try_from(settings.max_inactivity.as_millis()).unwrap_or(i64::MAX);
    let ours = WireFormatOptions::loose_server(
        max_inactivity_ms,
        i64::from(settings.limits.max_frame_size),
    );
    // Like ActiveMQ, the broker sends its WireFormatInfo first, without waiting.
    let Ok(info) = ours.to_info() else { return };
    if framed.send(Command::WireFormatInfo(info)).await.is_err() {
        return;
    }
    let first = tokio::select! {
        r = tokio::time::timeout(settings.connect_timeout, framed.next()) => r,
        _ = shutdown.changed() => return,
    };
    let theirs = match first {
        Ok(Some(Ok(Command::WireFormatInfo(info)))) if info.is_valid() => {
            match WireFormatOptions::from_info(&info, &settings.limits) {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "bad WireFormatInfo options");
                    crate::connections::reject("bad WireFormatInfo options");
                    return;
                }
            }
        }
        Ok(Some(Ok(other))) => {
            tracing::debug!(%peer, command = other.name(), "expected WireFormatInfo");
            crate::connections::reject("first command is not WireFormatInfo");
            return;
        }
        Ok(Some(Err(e))) => {
            tracing::debug!(%peer, error = %e, "undecodable first command");
            // Counted like any later command (a first frame over `max_frame_bytes` is the
            // cheapest abuse there is).
            crate::metrics::openwire_codec_error(&e);
            crate::connections::reject("undecodable first command");
            return;
        }
        Ok(None) => return,
        Err(_) => {
            tracing::debug!(%peer, "no WireFormatInfo in time");
            crate::connections::reject("no WireFormatInfo in time");
            crate::metrics::limit_refused("openwire", "handshake_timeout");
            return;
        }
    };
    let agreed = ours.negotiate(&theirs);
    if agreed.version < ow::MIN_VERSION || agreed.tight_encoding_enabled || agreed.cache_enabled {
        tracing::debug!(%peer, ?agreed, "cannot use the negotiated wire format");
        crate::connections::reject("unusable wire format");
        return;
    }
    let format = WireFormat {
        version: agreed.version,
        stack_trace_enabled: agreed.stack_trace_enabled,
        limits: settings.limits,
    };
    framed.codec_mut().set_format(format);
    let broker_info = Command::BrokerInfo(ow::BrokerInfo {
        broker_id: Some(ow::BrokerId {
            value: Some(format!("ID:{BROKER_NAME}-{}", engine.new_message_id())),
        }),
        broker_url: Some(format!("tcp://{}", peer.ip())),
        broker_name: Some(BROKER_NAME.to_string()),
        ..ow::BrokerInfo::default()
    });
    if framed.send(broker_info).await.is_err() {
        return;
    }
    tracing::debug!(%peer, version = format.version, "OpenWire connection negotiated");
    let inactivity = (agreed.max_inactivity_duration > 0)
        .then(|| Duration::from_millis(agreed.max_inactivity_duration.unsigned_abs()));
    let mut state = OpenWireSession {
        engine,
        session: None,
        events: None,
        connection_id: None,
        consumers: HashMap::new(),
        windowed_producers: HashMap::new(),
        by_engine: IdMap::new(),
        transactions: HashMap::new(),
        temps: TempNames::default(),
        user: None,
        principal: None,
        authenticator: settings.authenticator.clone(),
        peer_info,
        peer,
        closing: false,
        max_inflated: settings.limits.max_frame_size as usize,
        max_frame_out: if agreed.max_frame_size_enabled && agreed.max_frame_size > 0 {
            usize::try_from(agreed.max_frame_size).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        },
        after_response: Vec::new(),
        response_override: None,
        shared,
        advisories: None,
        advisory_consumers: Vec::new(),
        own_temps: Vec::new(),
        advisory_seq: 0,
        max_consumers: settings.max_consumers,
        max_sessions: settings.max_sessions,
        sessions: HashSet::new(),
    };
    // Boxed: the handshake's states above need no room while the session runs.
    let outcome = Box::pin(state.run(
        &mut framed,
        inactivity,
        settings.connect_timeout,
        &mut shutdown,
    ))
    .await;
    if let Err(failure) = outcome {
        tracing::debug!(%peer, error = %failure.message, "closing OpenWire connection");
        let error = Command::ConnectionError(ow::ConnectionError {
            header: CommandHeader::default(),
            exception: Some(JavaThrowable::new(failure.class, failure.message)),
            connection_id: state.connection_id.clone(),
        });
        let _ = framed.send(error).await;
    }
    state.close_all();
    let _ = SinkExt::<Command>::close(&mut framed).await;
    tracing::debug!(%peer, "OpenWire connection closed");
}

/// An upper bound of the encoded size of a `MessageDispatch` carrying `message`: its body and
/// properties, its variable-length strings, and room for the fixed fields and ids.
fn dispatch_size_estimate(message: &ow::Message) -> usize {
    const FIXED: usize = 1024;
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let destination = |d: &Option<ow::Destination>| d.as_ref().map_or(0, |d| d.name().len());
    let id = message.message_id.as_ref().map_or(0, |id| {
        id.text_view.as_ref().map_or(0, String::len)
            + id.producer_id
                .as_ref()
                .map_or(0, |p| p.connection_id.as_ref().map_or(0, String::len))
    });
    FIXED
        + message.content.as_ref().map_or(0, |c| c.len())
        + message.marshalled_properties.as_ref().map_or(0, |p| p.len())
        // The producer id appears twice (its own field and inside the message id).
        + 2 * id
        + 2 * destination(&message.destination)
        + destination(&message.reply_to)
        + text(&message.correlation_id)
        + text(&message.jms_type)
        + text(&message.group_id)
        + text(&message.user_id)
}

/// Waits for the next temporary-destination advisory, or forever without an advisory consumer.
async fn next_advisory(rx: &mut Option<broadcast::Receiver<TempAdvisory>>) -> TempAdvisory {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(advisory) => return advisory,
            // Missed some under load: the client re-learns them from later traffic at worst.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// Waits for the next engine event, or forever when the connection has no engine session yet.
async fn next_event(events: &mut Option<UnboundedReceiver<SessionEvent>>) -> Option<SessionEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// True when `id`, from a client's ack, names the delivery of engine message `message_id` with
/// sequence `seq`: the `MessageId` dispatched for it (`convert::message_for_dispatch`) has that
/// text view and broker sequence id, and its producer fields are parsed from that text. The
/// client acks with the `MessageId` it received, so this matches where comparing whole ids did.
/// OpenWire before version 10 has no text view on the wire: the broker sequence id alone then
/// tells the deliveries apart (the engine numbers every message once, across all queues).
fn names_dispatched(id: &ow::MessageId, seq: u64, message_id: &str) -> bool {
    id.broker_sequence_id == i64::try_from(seq).unwrap_or(i64::MAX)
        && id
            .text_view
            .as_deref()
            .is_none_or(|text| text == message_id)
}

fn response(correlation_id: i32) -> Command {
    Command::Response(Response {
        header: CommandHeader::default(),
        correlation_id,
    })
}

impl OpenWireSession {
    async fn run<S>(
        &mut self,
        framed: &mut Io<S>,
        inactivity: Option<Duration>,
        auth_timeout: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let far = Duration::from_secs(86_400 * 365);
        // Slow-loris guard: a client that negotiated `MaxInactivityDuration=0`, or that keeps
        // sending KeepAliveInfo, must still log in. Without `ConnectionInfo` in time it is
        // closed, whatever its inactivity setting (ActiveMQ leaves this to the inactivity
        // monitor alone).
        let auth_deadline = Instant::now() + auth_timeout;
        // A peer silent for the whole inactivity duration is gone (ActiveMQ's read check); we
        // keep it alive by writing a KeepAliveInfo after a third of it without output.
        let read_timeout = inactivity.unwrap_or(far);
        let write_every = inactivity.map(|d| d / 3).unwrap_or(far);
        let mut read_deadline = Instant::now() + read_timeout;
        let mut write_deadline = Instant::now() + write_every;
        loop {
            if self.closing {
                return Ok(());
            }
            let pull_deadline = self
                .consumers
                .values()
                .filter_map(|c| c.pull_deadline)
                .min();
            tokio::select! {
                // Advisories before deliveries: a client must learn of a temporary reply-to
                // destination before the request naming it reaches it.
                biased;
                _ = shutdown.changed() => {
                    return Err(Failure::fatal("java.io.IOException", "the broker is shutting down"));
                }
                advisory = next_advisory(&mut self.advisories) => {
                    self.on_advisory(advisory, framed).await?;
                }
                event = next_event(&mut self.events) => {
                    let Some(event) = event else { return Ok(()) };
                    self.handle_event(event, framed).await?;
                    while let Some(Ok(event)) = self.events.as_mut().map(|rx| rx.try_recv()) {
                        self.handle_event(event, framed).await?;
                    }
                }
                item = framed.next() => {
                    read_deadline = Instant::now() + read_timeout;
                    match item {
                        None => return Ok(()),
                        Some(Err(e)) => return Err(io_error(e)),
                        Some(Ok(command)) => self.handle(command, framed).await?,
                    }
                }
                _ = tokio::time::sleep_until(pull_deadline.unwrap_or(Instant::now() + far)),
                    if pull_deadline.is_some() => {
                    self.expire_pulls(framed).await?;
                }
                _ = tokio::time::sleep_until(auth_deadline), if self.principal.is_none() => {
                    crate::metrics::limit_refused("openwire", "handshake_timeout");
                    return Err(Failure::fatal(
                        SECURITY_EXCEPTION,
                        format!("No ConnectionInfo within {} ms: {}",
                            auth_timeout.as_millis(), self.peer),
                    ));
                }
                _ = tokio::time::sleep_until(read_deadline), if inactivity.is_some() => {
                    return Err(Failure::fatal(
                        "org.apache.activemq.transport.InactivityIOException",
                        format!("Channel was inactive for too (>{} ms) long: {}",
                            read_timeout.as_millis(), self.peer),
                    ));
                }
                _ = tokio::time::sleep_until(write_deadline), if inactivity.is_some() => {
                    framed.feed(Command::KeepAliveInfo(CommandHeader::default())).await
                        .map_err(io_error)?;
                }
            }
            if !framed.write_buffer().is_empty() {
                SinkExt::<Command>::flush(framed).await.map_err(io_error)?;
                write_deadline = Instant::now() + write_every;
            }
        }
    }

    /// Handles one command; answers it when the client asked for a response.
    async fn handle<S>(&mut self, command: Command, framed: &mut Io<S>) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let header = command.header().copied().unwrap_or_default();
        let name = command.name();
        tracing::trace!(peer = %self.peer, ?command, "OpenWire command");
        let outcome = self.dispatch_command(command, framed).await;
        let special_reply = self.response_override.take();
        match outcome {
            Ok(()) => {
                if header.response_required {
                    let reply = match special_reply {
                        Some(Command::IntegerResponse(mut r)) => {
                            r.correlation_id = header.command_id;
                            Command::IntegerResponse(r)
                        }
                        Some(Command::DataArrayResponse(mut r)) => {
                            r.correlation_id = header.command_id;
                            Command::DataArrayResponse(r)
                        }
                        _ => response(header.command_id),
                    };
                    framed.feed(reply).await.map_err(io_error)?;
                }
                for command in std::mem::take(&mut self.after_response) {
                    framed.feed(command).await.map_err(io_error)?;
                }
                Ok(())
            }
            Err(failure) => {
                tracing::debug!(peer = %self.peer, command = name, error = %failure.message,
                    "OpenWire command failed");
                if header.response_required {
                    let reply = Command::ExceptionResponse(ExceptionResponse {
                        header: CommandHeader::default(),
                        correlation_id: header.command_id,
                        exception: Some(JavaThrowable::new(failure.class, failure.message.clone())),
                    });
                    framed.feed(reply).await.map_err(io_error)?;
                    if failure.fatal {
                        SinkExt::<Command>::flush(framed).await.map_err(io_error)?;
                        self.closing = true;
                    }
                    Ok(())
                } else if failure.fatal {
                    Err(failure)
                } else {
                    // Nobody waits for an answer: ActiveMQ reports such errors as a
                    // ConnectionError the client's exception listener sees, and goes on.
                    let error = Command::ConnectionError(ow::ConnectionError {
                        header: CommandHeader::default(),
                        exception: Some(JavaThrowable::new(failure.class, failure.message)),
                        connection_id: self.connection_id.clone(),
                    });
                    framed.feed(error).await.map_err(io_error)?;
                    Ok(())
                }
            }
        }
    }

    async fn dispatch_command<S>(
        &mut self,
        command: Command,
        framed: &mut Io<S>,
    ) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        match command {
            Command::ConnectionInfo(info) => self.on_connection_info(info).await,
            Command::SessionInfo(info) => {
                self.require_connection()?;
                self.on_session_info(info)
            }
            Command::ProducerInfo(info) => {
                self.require_connection()?;
                if let Some(id) = &info.producer_id {
                    self.require_session(&id.connection_id, id.session_id, "producer")?;
                }
                // A producer with a destination needs write on it (ActiveMQ's addProducer); an
                // anonymous producer is checked at each send.
                if let Some(destination) = &info.destination {
                    let targets = convert::engine_destinations(destination, &self.temps)
                        .map_err(|e| Failure::jms("javax.jms.InvalidDestinationException", e))?;
                    for target in &targets {
                        self.authorize(Action::Write, target)?;
                    }
                }
                if let (Some(id), true) = (info.producer_id, info.window_size > 0) {
                    self.windowed_producers.insert(id, info.window_size);
                }
                Ok(())
            }
            Command::ConsumerInfo(info) => self.on_consumer_info(info),
            Command::Message(message) => {
                let ack = self.producer_ack_for(&message);
                self.on_message(*message).await?;
                if let Some(ack) = ack {
                    framed.feed(ack).await.map_err(io_error)?;
                }
                Ok(())
            }
            Command::MessageAck(ack) => self.on_ack(ack),
            Command::MessagePull(pull) => {
                if let Some(id) = &pull.consumer_id {
                    self.on_pull(id, pull.timeout);
                }
                Ok(())
            }
            Command::TransactionInfo(info) => self.on_transaction(info).await,
            Command::DestinationInfo(info) => self.on_destination_info(info),
            Command::RemoveInfo(info) => {
                self.on_remove(info);
                Ok(())
            }
            Command::RemoveSubscriptionInfo(info) => {
                let session = self.require_connection()?;
                let name = info.subscription_name.unwrap_or_default();
                session
                    .remove_durable_subscription(&name)
                    .map_err(Failure::engine)
            }
            Command::KeepAliveInfo(header) => {
                if header.response_required {
                    framed
                        .feed(Command::KeepAliveInfo(CommandHeader::default()))
                        .await
                        .map_err(io_error)?;
                }
                Ok(())
            }
            Command::ShutdownInfo(_) => {
                self.closing = true;
                Ok(())
            }
            Command::ConsumerControl(control) => {
                self.on_consumer_control(&control);
                Ok(())
            }
            Command::FlushCommand(_)
            | Command::ConnectionControl(_)
            | Command::ControlCommand(_)
            | Command::ProducerAck(_)
            | Command::Response(_)
            | Command::ExceptionResponse(_)
            | Command::ConnectionError(_) => Ok(()),
            Command::WireFormatInfo(_) => Err(Failure::fatal(
                "java.io.IOException",
                "WireFormatInfo already negotiated",
            )),
            other => Err(Failure::jms(
                "java.lang.UnsupportedOperationException",
                format!("{} is not supported by this broker", other.name()),
            )),
        }
    }

    /// The `ProducerAck` an asynchronous send of a windowed producer gets: it releases what the
    /// client counted for the message (`Message.getSize()`: 1024 bytes plus properties and body).
    fn producer_ack_for(&self, message: &ow::Message) -> Option<Command> {
        if message.header.response_required {
            return None;
        }
        let producer_id = message.producer_id.as_ref()?;
        self.windowed_producers.get(producer_id)?;
        let size = 1024
            + message
                .marshalled_properties
                .as_ref()
                .map_or(0, |p| p.len())
            + message.content.as_ref().map_or(0, |c| c.len());
        Some(Command::ProducerAck(ow::ProducerAck {
            header: CommandHeader::default(),
            producer_id: Some(producer_id.clone()),
            size: i32::try_from(size).unwrap_or(i32::MAX),
        }))
    }

    fn require_connection(&self) -> Result<&Session, Failure> {
        self.session.as_ref().ok_or_else(|| {
            Failure::fatal(
                "javax.jms.IllegalStateException",
                "no ConnectionInfo received on this connection",
            )
        })
    }

    async fn on_connection_info(&mut self, info: ow::ConnectionInfo) -> Result<(), Failure> {
        if self.session.is_some() {
            // A failover reconnect on the same transport re-sends it: nothing to do.
            return Ok(());
        }
        // As ActiveMQ's authentication brokers: a refused login is a SecurityException (the
        // client throws JMSSecurityException from createConnection/start), then the connection
        // closes.
        let given_user = info.user_name.clone().filter(|u| !u.is_empty());
        let principal = self
            .authenticator
            .authenticate(
                given_user.as_deref(),
                info.password.as_deref().map(str::as_bytes),
                &self.peer_info,
            )
            .await
            .map_err(|e| match e {
                // ActiveMQ's exception for its `maximumConnections` (ActiveMQ itself only
                // closes the socket; the client here learns why).
                AuthError::ConnectionLimit(_) => Failure::fatal(
                    "org.apache.activemq.transport.tcp.ExceededMaximumConnectionsException",
                    e.to_string(),
                ),
                _ => {
                    crate::connections::reject("login refused");
                    Failure::fatal(SECURITY_EXCEPTION, e.to_string())
                }
            })?;
        let client_id = info.client_id.clone().filter(|c| !c.is_empty());
        match self.engine.connect_unique(client_id.clone()) {
            Ok((session, events)) => {
                self.session = Some(session);
                self.events = Some(events);
                self.connection_id = info.connection_id;
                // The authenticated user name; for anonymous clients, the name they gave.
                self.user = if principal.is_anonymous() {
                    given_user
                } else {
                    Some(principal.name().to_owned())
                };
                self.principal = Some(principal);
                if let Some(session) = &self.session {
                    crate::connections::established(
                        self.user.as_deref(),
                        client_id.as_deref(),
                        session.id(),
                    );
                }
                Ok(())
            }
            Err(EngineError::ClientIdInUse(cid)) => {
                crate::connections::reject("client id in use");
                Err(Failure::fatal(
                    "javax.jms.InvalidClientIDException",
                    format!("Broker: {BROKER_NAME} - Client: {cid} already connected"),
                ))
            }
            Err(e) => Err(Failure::engine(e)),
        }
    }

    /// Checks `action` on `target` against the principal's authorization entries, and, as
    /// ActiveMQ's `AuthorizationBroker` does when a send or a consumer brings a destination
    /// into being, `admin` on a queue that does not exist yet (temporary destinations belong to
    /// their connection; the engine keeps no topic objects, so naming a topic creates nothing).
    fn authorize(&self, action: Action, target: &routes::Destination) -> Result<(), Failure> {
        let Some(principal) = &self.principal else {
            return Ok(());
        };
        principal.check(action, target).map_err(Failure::denied)?;
        // The cheap test first: without authorization entries everyone has admin, and a send
        // costs no queue lookup.
        if target.kind == DestinationKind::Queue
            && !target.name.starts_with(routes::TEMP_PREFIX)
            && !routes::address::is_pattern(&target.name)
            && !principal.may(Action::Admin, target)
            && !self.queue_exists(&target.name)
        {
            principal
                .check(Action::Admin, target)
                .map_err(Failure::denied)?;
        }
        Ok(())
    }

    /// Whether a queue exists already.
    fn queue_exists(&self, name: &str) -> bool {
        self.engine.queue_info(name).is_some()
    }

    /// Refuses one consumer more than `max_consumers`, as ActiveMQ's
    /// `maximumConsumersAllowedPerConnection` does (advisory consumers are not counted; the
    /// connection stays).
    fn check_consumer_limit(&self) -> Result<(), Failure> {
        let limit = self.max_consumers;
        if limit == 0 {
            return Ok(());
        }
        let advisory = self
            .consumers
            .values()
            .filter(|c| c.destination.as_ref().is_some_and(convert::is_advisory))
            .count();
        if self.consumers.len().saturating_sub(advisory) < limit {
            return Ok(());
        }
        crate::metrics::limit_refused("openwire", "max_subscriptions");
        let connection = self
            .connection_id
            .as_ref()
            .and_then(|c| c.value.clone())
            .unwrap_or_default();
        Err(Failure::jms(
            "java.lang.IllegalStateException",
            format!("Can't add consumer on connection {connection}: at maximum limit: {limit}"),
        ))
    }

    /// Admits a session, or refuses one more than `max_sessions` (ActiveMQ has no such limit:
    /// the refusal is worded as its `maximumConsumersAllowedPerConnection` one). `SessionInfo`
    /// is sent without waiting for an answer, so the client's exception listener sees the
    /// refusal (a `ConnectionError`), and the session's consumers and producers are refused
    /// as ActiveMQ refuses those of a session it never registered.
    fn on_session_info(&mut self, info: ow::SessionInfo) -> Result<(), Failure> {
        let limit = self.max_sessions;
        let Some(id) = info.session_id else {
            return Ok(());
        };
        if limit == 0 || self.sessions.contains(&id) {
            return Ok(());
        }
        if self.sessions.len() < limit {
            self.sessions.insert(id);
            return Ok(());
        }
        crate::metrics::limit_refused("openwire", "max_sessions");
        let connection = self
            .connection_id
            .as_ref()
            .and_then(|c| c.value.clone())
            .unwrap_or_default();
        Err(Failure::jms(
            "java.lang.IllegalStateException",
            format!("Can't add session on connection {connection}: at maximum limit: {limit}"),
        ))
    }

    /// With a session limit, a consumer or producer needs its session admitted first (as on
    /// ActiveMQ, which refuses them on a session it never registered). Negative session
    /// numbers are the client's own (its advisory consumer), never announced by `SessionInfo`.
    fn require_session(
        &self,
        connection_id: &Option<String>,
        session: i64,
        what: &str,
    ) -> Result<(), Failure> {
        if self.max_sessions == 0 || session < 0 {
            return Ok(());
        }
        let id = ow::SessionId {
            connection_id: connection_id.clone(),
            value: session,
        };
        if self.sessions.contains(&id) {
            return Ok(());
        }
        Err(Failure::jms(
            "java.lang.IllegalStateException",
            format!(
                "Cannot add a {what} to a session that had not been registered: {}:{session}",
                connection_id.as_deref().unwrap_or_default()
            ),
        ))
    }

    fn on_consumer_info(&mut self, info: ow::ConsumerInfo) -> Result<(), Failure> {
        self.require_connection()?;
        let Some(id) = info.consumer_id.clone() else {
            return Err(Failure::jms(
                "javax.jms.JMSException",
                "ConsumerInfo without a consumer id",
            ));
        };
        self.require_session(&id.connection_id, id.session_id, "consumer")?;
        let Some(destination) = info.destination.clone() else {
            return Err(Failure::jms(
                "javax.jms.InvalidDestinationException",
                "ConsumerInfo without a destination",
            ));
        };
        if !convert::is_advisory(&destination) && !self.consumers.contains_key(&id) {
            self.check_consumer_limit()?;
        }
        if info.browser {
            return self.browse(&info, id, destination);
        }
        let pulling = info.prefetch_size == 0;
        if convert::is_advisory(&destination) {
            // ActiveMQ checks advisory subscriptions like any other: with authorization
            // entries, the client's default advisory consumer needs read on
            // `ActiveMQ.Advisory.>` topics.
            if let Ok(targets) = convert::engine_destinations(&destination, &self.temps) {
                for target in &targets {
                    self.authorize(Action::Read, target)?;
                }
            }
            self.add_advisory_consumer(&id, &destination);
            self.consumers.insert(
                id.clone(),
                Consumer {
                    engine_ids: Vec::new(),
                    id,
                    destination: Some(destination),
                    dispatched: VecDeque::new(),
                    delivered: HashSet::new(),
                    pulling,
                    pull_pending: false,
                    pull_deadline: None,
                },
            );
            return Ok(());
        }
        let targets = convert::engine_destinations(&destination, &self.temps)
            .map_err(|e| Failure::jms("javax.jms.InvalidDestinationException", e))?;
        for target in &targets {
            self.authorize(Action::Read, target)?;
        }
        let session = self.require_connection()?;
        let subscription = info.subscription_name.clone().filter(|s| !s.is_empty());
        if subscription.is_some() && targets.len() > 1 {
            return Err(Failure::jms(
                "javax.jms.InvalidDestinationException",
                "a durable subscription cannot be on a composite destination",
            ));
        }
        let mut engine_ids = Vec::new();
        for target in &targets {
            let source = match (target.kind, subscription.clone()) {
                // A virtual topic's consumer queue (`Consumer.A.VirtualTopic.X`) is an
                // ordinary queue: the engine fans virtual topic publishes out to it.
                (DestinationKind::Queue, _) => ConsumerSource::Queue(target.name.clone()),
                (DestinationKind::Topic, None) => ConsumerSource::Topic(target.name.clone()),
                (DestinationKind::Topic, Some(name)) => {
                    if session.client_id().is_none() {
                        return Err(Failure::jms(
                            "javax.jms.JMSException",
                            "a durable subscription needs a client id",
                        ));
                    }
                    ConsumerSource::DurableTopic {
                        pattern: target.name.clone(),
                        subscription: name,
                    }
                }
            };
            // Prefetch 0 stays 0: a pulling consumer holds nothing a competing consumer could
            // take until it pulls.
            let prefetch = u32::try_from(info.prefetch_size).ok();
            let spec = ConsumerSpec {
                source,
                selector: info.selector.clone().filter(|s| !s.trim().is_empty()),
                prefetch,
                exclusive: info.exclusive,
                // `consumer.priority`: higher-priority consumers of a queue are served first.
                priority: info.priority,
                no_local: info.no_local,
                retained: false,
                tag: None,
            };
            match session.subscribe(spec) {
                Ok(engine_id) => engine_ids.push(engine_id),
                Err(e) => {
                    // Undo the members already subscribed.
                    for engine_id in engine_ids {
                        session.unsubscribe(engine_id);
                    }
                    return Err(match e {
                        EngineError::SubscriptionInUse(_) => Failure::jms(
                            "javax.jms.JMSException",
                            format!(
                                "Durable consumer is in use for client: {} and subscriptionName: {}",
                                session.client_id().unwrap_or_default(),
                                info.subscription_name.clone().unwrap_or_default()
                            ),
                        ),
                        other => Failure::engine(other),
                    });
                }
            }
        }
        for engine_id in &engine_ids {
            self.by_engine.insert(*engine_id, id.clone());
        }
        self.consumers.insert(
            id.clone(),
            Consumer {
                engine_ids,
                id,
                destination: Some(destination),
                dispatched: VecDeque::new(),
                delivered: HashSet::new(),
                pulling,
                pull_pending: false,
                pull_deadline: None,
            },
        );
        Ok(())
    }

    /// A queue browser: the messages waiting in the queue (up to 400, ActiveMQ's
    /// `maxBrowsePageSize`), matching its selector, then an empty dispatch that ends the browse.
    /// Nothing is consumed; the browser's acks are ignored.
    fn browse(
        &mut self,
        info: &ow::ConsumerInfo,
        id: ow::ConsumerId,
        destination: ow::Destination,
    ) -> Result<(), Failure> {
        const MAX_BROWSE: usize = 400;
        let targets = convert::engine_destinations(&destination, &self.temps)
            .map_err(|e| Failure::jms("javax.jms.InvalidDestinationException", e))?;
        for target in &targets {
            self.authorize(Action::Read, target)?;
        }
        let selector = match info.selector.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => {
                Some(routes::selector::Selector::parse(text).map_err(|e| {
                    Failure::jms("javax.jms.InvalidSelectorException", e.to_string())
                })?)
            }
            _ => None,
        };
        let mut dispatches = Vec::new();
        for target in targets.iter().filter(|t| t.kind == DestinationKind::Queue) {
            // What a queue browser shows: the messages waiting, not those out for delivery.
            let waiting = self
                .engine
                .browse_queue(&target.name, MAX_BROWSE)
                .unwrap_or_default()
                .into_iter()
                .filter(|b| !b.unacked)
                .map(|b| (b.message, b.delivery_count));
            for (n, (message, delivery_count)) in waiting.enumerate() {
                if selector
                    .as_ref()
                    .is_some_and(|s| !s.matches(&message, delivery_count + 1))
                {
                    continue;
                }
                let converted = convert::message_for_dispatch(
                    &message,
                    target,
                    n as u64,
                    delivery_count + 1,
                    &self.temps,
                )
                .map_err(|e| Failure::jms("javax.jms.JMSException", e))?;
                dispatches.push(Command::MessageDispatch(MessageDispatch {
                    header: CommandHeader::default(),
                    consumer_id: Some(id.clone()),
                    destination: Some(destination.clone()),
                    redelivery_counter: converted.redelivery_counter,
                    message: Some(Box::new(converted)),
                }));
            }
        }
        dispatches.push(Command::MessageDispatch(MessageDispatch {
            header: CommandHeader::default(),
            consumer_id: Some(id.clone()),
            destination: Some(destination.clone()),
            message: None,
            redelivery_counter: 0,
        }));
        self.after_response.extend(dispatches);
        self.consumers.insert(
            id.clone(),
            Consumer {
                engine_ids: Vec::new(),
                id,
                destination: Some(destination),
                dispatched: VecDeque::new(),
                delivered: HashSet::new(),
                pulling: false,
                pull_pending: false,
                pull_deadline: None,
            },
        );
        Ok(())
    }

    async fn on_message(&mut self, message: ow::Message) -> Result<(), Failure> {
        self.require_connection()?;
        let Some(destination) = message.destination.as_ref() else {
            return Err(Failure::jms(
                "javax.jms.InvalidDestinationException",
                "message without a destination",
            ));
        };
        let targets = convert::engine_destinations(destination, &self.temps)
            .map_err(|e| Failure::jms("javax.jms.InvalidDestinationException", e))?;
        for target in &targets {
            self.authorize(Action::Write, target)?;
        }
        let reply_to = message
            .reply_to
            .as_ref()
            .and_then(|r| convert::reply_to_uri(r, &self.temps));
        let mut converted = convert::message_from_client(
            &message,
            reply_to,
            self.user.as_deref(),
            self.max_inflated,
        )
        .map_err(|e| Failure::jms("javax.jms.MessageFormatException", e))?;
        if converted.message_id.is_empty() {
            converted.message_id = self.engine.new_message_id();
        }
        if let Some(tx) = &message.transaction_id {
            let Some(work) = self.transactions.get_mut(tx) else {
                return Err(Failure::jms(
                    "javax.jms.TransactionRolledBackException",
                    format!("{} is not started", describe_tx(tx)),
                ));
            };
            for target in targets {
                work.work.send(target, converted.clone());
            }
            return Ok(());
        }
        let Some(session) = self.session.as_ref() else {
            return Ok(());
        };
        // The last (usually only) target takes the message itself: a clone copies every string.
        let last = targets.len().saturating_sub(1);
        for (i, target) in targets.iter().enumerate() {
            let message_for_target = if i == last {
                std::mem::take(&mut converted)
            } else {
                converted.clone()
            };
            let durability = session
                .publish(target, message_for_target)
                .await
                .map_err(Failure::engine)?;
            if message.header.response_required {
                // The client waits for the response of a synchronous send (persistent ones by
                // default): it comes once the message is on disk.
                durability.await.map_err(Failure::engine)?;
            } else {
                // An asynchronous send waits for nothing: the journal write goes on (and is
                // grouped with the next ones) while the following commands are handled.
                drop(durability);
            }
        }
        Ok(())
    }

    /// A `MessagePull` of a prefetch-0 consumer (`receive`, `receive(timeout)`,
    /// `receiveNoWait`): opens its window by one message, as ActiveMQ's `pullMessage` extends the
    /// prefetch by the pull's quantity. The message, or an empty dispatch at the timeout, answers
    /// it. A timeout of 0 waits for ever; a negative one (`receiveNoWait`) expires at once,
    /// after whatever the engine dispatched for it (deliveries are served first).
    fn on_pull(&mut self, id: &ow::ConsumerId, timeout: i64) {
        let Some(c) = self.consumers.get_mut(id) else {
            return;
        };
        // Only prefetch-0 consumers pull; a queue browser or an advisory consumer has nothing
        // to pull from.
        if !c.pulling || c.engine_ids.is_empty() {
            return;
        }
        c.pull_pending = true;
        c.pull_deadline = match timeout {
            0 => None,
            t if t < 0 => Some(Instant::now()),
            t => Some(Instant::now() + Duration::from_millis(t.unsigned_abs())),
        };
        self.sync_prefetch_extension(id);
    }

    /// A client's `ConsumerControl` changes a consumer's prefetch, as ActiveMQ's
    /// `processConsumerControl` does (start, stop and close go from broker to client): a
    /// failover client resubscribes with prefetch 0 while it replays its transactions, then
    /// restores its prefetch this way. Unknown consumers are ignored, as ActiveMQ does.
    fn on_consumer_control(&mut self, control: &ow::ConsumerControl) {
        let Some(consumer_id) = control.consumer_id.as_ref() else {
            return;
        };
        let Ok(prefetch) = u32::try_from(control.prefetch) else {
            return;
        };
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let Some(consumer) = self.consumers.get_mut(consumer_id) else {
            return;
        };
        let pulling = prefetch == 0;
        if consumer.pulling != pulling {
            consumer.pulling = pulling;
            consumer.pull_pending = false;
            consumer.pull_deadline = None;
            for engine_id in &consumer.engine_ids {
                session.set_prefetch_extension(*engine_id, 0);
            }
        }
        for engine_id in &consumer.engine_ids {
            session.set_prefetch(*engine_id, prefetch);
        }
        let consumer_id = consumer_id.clone();
        self.sync_prefetch_extension(&consumer_id);
    }

    fn on_ack(&mut self, ack: ow::MessageAck) -> Result<(), Failure> {
        let outcome = self.apply_ack(&ack);
        if let Some(consumer_id) = &ack.consumer_id {
            self.sync_prefetch_extension(consumer_id);
        }
        outcome
    }

    /// Tells the engine how many of a consumer's deliveries the client has consumed without
    /// acknowledging (`DELIVERED` acks), per engine consumer, so that its prefetch window
    /// widens by as many, as ActiveMQ's prefetch extension: a transacted or CLIENT_ACKNOWLEDGE
    /// consumer may hold more messages than its prefetch before it acknowledges.
    fn sync_prefetch_extension(&mut self, consumer_id: &ow::ConsumerId) {
        let Some(consumer) = self.consumers.get_mut(consumer_id) else {
            return;
        };
        if consumer.pulling {
            // Prefetch 0: the window covers what the client holds unacknowledged, plus one
            // message while a pull waits. Deliveries still on their way to this loop are not
            // counted yet, which can only narrow the window.
            let Some(session) = self.session.as_ref() else {
                return;
            };
            for engine_id in &consumer.engine_ids {
                let held = consumer
                    .dispatched
                    .iter()
                    .filter(|(e, _, _)| e == engine_id)
                    .count()
                    + usize::from(consumer.pull_pending);
                session.set_prefetch_extension(*engine_id, u32::try_from(held).unwrap_or(u32::MAX));
            }
            return;
        }
        if consumer.delivered.is_empty() {
            return;
        }
        let live: HashSet<(routes::ConsumerId, u64)> = consumer
            .dispatched
            .iter()
            .map(|(e, s, _)| (*e, *s))
            .collect();
        consumer.delivered.retain(|d| live.contains(d));
        let Some(session) = self.session.as_ref() else {
            return;
        };
        for engine_id in &consumer.engine_ids {
            let held = consumer
                .delivered
                .iter()
                .filter(|(e, _)| e == engine_id)
                .count();
            session.set_prefetch_extension(*engine_id, u32::try_from(held).unwrap_or(u32::MAX));
        }
    }

    fn apply_ack(&mut self, ack: &ow::MessageAck) -> Result<(), Failure> {
        let Some(consumer_id) = ack.consumer_id.as_ref() else {
            return Ok(());
        };
        let Some(consumer) = self.consumers.get_mut(consumer_id) else {
            tracing::debug!(peer = %self.peer, %consumer_id, "ack for an unknown consumer");
            return Ok(());
        };
        if consumer.engine_ids.is_empty() {
            return Ok(());
        }
        let Some(last) = ack.last_message_id.as_ref() else {
            return Ok(());
        };

        let Some(pos) = consumer
            .dispatched
            .iter()
            .position(|(_, seq, m)| names_dispatched(last, *seq, &m.message_id))
        else {
            return Ok(());
        };
        // Delivered to the application only, or a rollback's redelivery notice: the messages
        // stay in flight (the client redelivers them locally, as ActiveMQ's does); delivered
        // ones widen the prefetch window until they are acknowledged.
        if ack.ack_type == ack_type::DELIVERED {
            for (engine_id, seq, _) in consumer.dispatched.range(0..=pos) {
                consumer.delivered.insert((*engine_id, *seq));
            }
            return Ok(());
        }
        if ack.ack_type == ack_type::REDELIVERED {
            return Ok(());
        }
        // Individual and expired acks name one message (the client acks an expired message
        // alone, before the ones the application holds); the others a range ending at the last
        // message.
        let range = if matches!(ack.ack_type, ack_type::INDIVIDUAL | ack_type::EXPIRED) {
            pos..=pos
        } else {
            0..=pos
        };
        if let Some(tx) = &ack.transaction_id {
            if !matches!(ack.ack_type, ack_type::POISON | ack_type::EXPIRED) {
                if let Some(local) = self.transactions.get_mut(tx) {
                    for (engine_id, seq, _) in consumer.dispatched.range(range) {
                        let entry = (consumer_id.clone(), *engine_id, *seq);
                        if !local.acked.contains(&entry) {
                            local.acked.push(entry);
                            local.work.ack(*engine_id, *seq);
                        }
                    }
                    return Ok(());
                }
            }
        }
        let mut by_engine: Vec<(routes::ConsumerId, Vec<u64>)> = Vec::new();
        for (engine_id, seq, _) in consumer.dispatched.drain(range) {
            match by_engine.iter_mut().find(|(e, _)| *e == engine_id) {
                Some((_, seqs)) => seqs.push(seq),
                None => by_engine.push((engine_id, vec![seq])),
            }
        }
        let Some(session) = self.session.as_ref() else {
            return Ok(());
        };
        for (engine_id, seqs) in by_engine {
            if ack.ack_type == ack_type::POISON {
                // The client's redelivery policy gave up: to the dead-letter queue, as ActiveMQ
                // does.
                session
                    .nack(engine_id, &seqs, NackAction::DeadLetter)
                    .map_err(Failure::engine)?;
            } else if ack.ack_type == ack_type::EXPIRED {
                // Expired in the client's prefetch buffer: dead-lettered like a message that
                // expires in its queue (ActiveMQ's messageExpired), dropped when non-persistent.
                session
                    .nack(engine_id, &seqs, NackAction::Expired)
                    .map_err(Failure::engine)?;
            } else {
                // Standard and unmatched acks remove the messages. The durability of an ack is
                // not awaited: a lost ack only means a redelivery.
                let durability = session.ack(engine_id, &seqs).map_err(Failure::engine)?;
                drop(durability);
            }
        }
        Ok(())
    }

    async fn on_transaction(&mut self, info: ow::TransactionInfo) -> Result<(), Failure> {
        self.require_connection()?;
        let Some(key) = info.transaction_id.clone() else {
            if info.transaction_type == transaction_type::RECOVER {
                return self.recover_xa();
            }
            return Err(Failure::jms(
                "javax.jms.JMSException",
                "TransactionInfo without a transaction id",
            ));
        };
        let xa = matches!(key, ow::TransactionId::Xa(_));
        let unknown = |key: &TxKey| {
            if xa {
                Failure::jms(
                    XA_EXCEPTION,
                    format!("Cannot find {} (XAER_NOTA)", describe_tx(key)),
                )
            } else {
                Failure::jms(
                    "javax.jms.TransactionRolledBackException",
                    format!("{} is not started", describe_tx(key)),
                )
            }
        };
        match info.transaction_type {
            transaction_type::BEGIN => {
                // An XA branch joined or resumed keeps what it staged so far.
                self.transactions.entry(key).or_default();
                Ok(())
            }
            transaction_type::PREPARE => {
                let Some(local) = self.transactions.get_mut(&key) else {
                    return Err(unknown(&key));
                };
                let vote = if local.work.is_empty() && local.acked.is_empty() {
                    // Nothing to commit: the branch ends here, as ActiveMQ's XA_RDONLY.
                    self.transactions.remove(&key);
                    XA_READ_ONLY
                } else {
                    local.prepared = true;
                    XA_OK
                };
                self.response_override = Some(Command::IntegerResponse(ow::IntegerResponse {
                    header: CommandHeader::default(),
                    correlation_id: info.header.command_id,
                    result: vote,
                }));
                Ok(())
            }
            transaction_type::RECOVER => self.recover_xa(),
            transaction_type::COMMIT_ONE_PHASE | transaction_type::COMMIT_TWO_PHASE => {
                let Some(local) = self.transactions.remove(&key) else {
                    return Err(unknown(&key));
                };
                for (consumer_id, engine_id, seq) in &local.acked {
                    if let Some(c) = self.consumers.get_mut(consumer_id) {
                        c.dispatched.retain(|(e, s, _)| (e, s) != (engine_id, seq));
                    }
                }
                let session = self.require_connection()?;
                let durability = session.commit(local.work).await.map_err(Failure::engine)?;
                let mut committed: Vec<ow::ConsumerId> =
                    local.acked.iter().map(|(c, _, _)| c.clone()).collect();
                committed.dedup();
                for consumer_id in &committed {
                    self.sync_prefetch_extension(consumer_id);
                }
                durability.await.map_err(Failure::engine)
            }
            transaction_type::ROLLBACK => {
                // Staged sends are dropped; staged acks are forgotten and their messages stay
                // in flight: the client redelivers them itself (and poison-acks past its limit).
                if self.transactions.remove(&key).is_none() && xa {
                    return Err(unknown(&key));
                }
                Ok(())
            }
            transaction_type::FORGET => {
                self.transactions.remove(&key);
                Ok(())
            }
            transaction_type::END => Ok(()),
            other => Err(Failure::jms(
                "javax.jms.JMSException",
                format!("transaction operation {other} is not supported"),
            )),
        }
    }

    /// XA `recover`: the prepared branches of this connection, in a `DataArrayResponse`.
    fn recover_xa(&mut self) -> Result<(), Failure> {
        let prepared: Vec<Command> = self
            .transactions
            .iter()
            .filter(|(key, t)| t.prepared && matches!(key, ow::TransactionId::Xa(_)))
            .map(|(key, _)| Command::TransactionId(key.clone()))
            .collect();
        self.response_override = Some(Command::DataArrayResponse(ow::DataArrayResponse {
            header: CommandHeader::default(),
            correlation_id: 0,
            data: Some(prepared),
        }));
        Ok(())
    }

    fn on_destination_info(&mut self, info: ow::DestinationInfo) -> Result<(), Failure> {
        let session = self.require_connection()?;
        let Some(destination) = info.destination else {
            return Ok(());
        };
        if !destination.kind.is_temporary() {
            // Creating (or removing) a destination explicitly needs admin on it, as ActiveMQ's
            // AuthorizationBroker; the engine creates queues on first use, so an add does
            // nothing else.
            let targets = convert::engine_destinations(&destination, &self.temps)
                .map_err(|e| Failure::jms("javax.jms.InvalidDestinationException", e))?;
            if let Some(principal) = &self.principal {
                for target in &targets {
                    principal
                        .check(Action::Admin, target)
                        .map_err(Failure::denied)?;
                }
            }
            if info.operation_type != 0 {
                self.destroy_queues(&targets)?;
            }
            return Ok(());
        }
        let client_name = destination.name().to_string();
        if info.operation_type == 0 {
            if self.temps.engine_name(&client_name).is_some() {
                return Ok(());
            }
            let kind = if destination.kind.is_queue() {
                DestinationKind::Queue
            } else {
                DestinationKind::Topic
            };
            // Creating one needs admin in `[temp_destination_authorization]`, when configured
            // (ActiveMQ's tempDestinationAuthorizationEntry).
            if let Some(principal) = &self.principal {
                let probe = routes::Destination {
                    kind,
                    name: format!("{}{client_name}", routes::TEMP_PREFIX),
                };
                if !principal.may(Action::Admin, &probe) {
                    let scheme = match kind {
                        DestinationKind::Queue => "temp-queue",
                        DestinationKind::Topic => "temp-topic",
                    };
                    return Err(Failure::denied(AccessDenied {
                        user: principal.name().to_string(),
                        action: Action::Admin,
                        destination: format!("{scheme}://{client_name}"),
                    }));
                }
            }
            let engine_name = session.create_temporary(kind).map_err(Failure::engine)?;
            let origin = session.id();
            self.temps.insert(client_name, engine_name.clone());
            self.own_temps.push((engine_name.clone(), kind));
            self.shared.announce(TempAdvisory {
                engine_name,
                kind,
                added: true,
                origin,
            });
        } else if let Some(engine_name) = self.temps.remove(&client_name) {
            // `TemporaryQueue.delete()`: gone now, with its messages, as on ActiveMQ (the
            // client refuses it while one of its own consumers reads it); others stop seeing it.
            if let Some(Err(e)) = self
                .session
                .as_ref()
                .map(|s| s.delete_temporary(&engine_name))
            {
                tracing::debug!(peer = %self.peer, error = %e, "temporary destination already gone");
            }
            self.withdraw_temp(&engine_name);
        }
        Ok(())
    }

    /// `ActiveMQConnection.destroyDestination`: deletes the queues with their messages, as
    /// ActiveMQ's `removeDestination`, refused while a queue has consumers; one that does not
    /// exist is no error. Topics keep nothing to delete.
    fn destroy_queues(&self, targets: &[routes::Destination]) -> Result<(), Failure> {
        for target in targets.iter().filter(|t| t.kind == DestinationKind::Queue) {
            match self.engine.delete_queue(&target.name, true, false) {
                // The deletion's journal write is not waited for, like an ack's.
                Ok((_, durability)) => drop(durability),
                Err(EngineError::UnknownDestination(_)) => {}
                Err(EngineError::PreconditionFailed(_)) => {
                    return Err(Failure::jms(
                        "javax.jms.JMSException",
                        format!(
                            "Destination still has an active subscription: queue://{}",
                            target.name
                        ),
                    ))
                }
                Err(e) => return Err(Failure::engine(e)),
            }
        }
        Ok(())
    }

    fn on_remove(&mut self, info: ow::RemoveInfo) {
        match info.object_id.as_deref() {
            Some(Command::ConsumerId(id)) => self.close_consumer(id),
            Some(Command::ProducerId(id)) => {
                self.windowed_producers.remove(id);
            }
            Some(Command::SessionId(sid)) => {
                self.sessions.remove(sid);
                let ids: Vec<ow::ConsumerId> = self
                    .consumers
                    .keys()
                    .filter(|c| c.connection_id == sid.connection_id && c.session_id == sid.value)
                    .cloned()
                    .collect();
                for id in ids {
                    self.close_consumer(&id);
                }
                // Uncommitted transactions of the session are gone with it.
            }
            Some(Command::ConnectionId(_)) => self.close_all(),
            _ => {}
        }
    }

    fn withdraw_temp(&mut self, engine_name: &str) {
        let kind = self
            .own_temps
            .iter()
            .find(|(name, _)| name == engine_name)
            .map_or(DestinationKind::Queue, |(_, kind)| *kind);
        self.own_temps.retain(|(name, _)| name != engine_name);
        self.withdraw_temp_named(engine_name, kind);
    }

    fn withdraw_temp_named(&self, engine_name: &str, kind: DestinationKind) {
        let origin = self.session.as_ref().map_or(0, |s| s.id());
        self.shared.announce(TempAdvisory {
            engine_name: engine_name.to_string(),
            kind,
            added: false,
            origin,
        });
    }

    /// Registers an advisory consumer; one watching temporary destinations starts receiving
    /// their advisories, beginning with the ones live now (after the `Response`).
    fn add_advisory_consumer(&mut self, id: &ow::ConsumerId, destination: &ow::Destination) {
        let members: Vec<&str> = destination.name().split(',').map(str::trim).collect();
        let queues = members
            .iter()
            .any(|m| m.trim_start_matches("topic://") == TEMP_QUEUE_ADVISORY);
        let topics = members
            .iter()
            .any(|m| m.trim_start_matches("topic://") == TEMP_TOPIC_ADVISORY);
        if !queues && !topics {
            return;
        }
        self.advisory_consumers
            .push((id.clone(), destination.clone(), queues, topics));
        let (rx, live) = self.shared.subscribe();
        if self.advisories.is_none() {
            self.advisories = Some(rx);
        }
        let own = self.session.as_ref().map(|s| s.id());
        for advisory in live.into_iter().filter(|a| Some(a.origin) != own) {
            let watches = match advisory.kind {
                DestinationKind::Queue => queues,
                DestinationKind::Topic => topics,
            };
            if watches {
                self.temps.set_announced(&advisory.engine_name, true);
                let dispatch = self.advisory_dispatch(id, destination, &advisory);
                self.after_response.push(dispatch);
            }
        }
    }

    /// The `MessageDispatch` of an advisory message carrying a `DestinationInfo`, as ActiveMQ's
    /// advisory broker sends it.
    fn advisory_dispatch(
        &mut self,
        consumer: &ow::ConsumerId,
        destination: &ow::Destination,
        advisory: &TempAdvisory,
    ) -> Command {
        self.advisory_seq += 1;
        let (temp_kind, topic) = match advisory.kind {
            DestinationKind::Queue => (ow::DestinationKind::TempQueue, TEMP_QUEUE_ADVISORY),
            DestinationKind::Topic => (ow::DestinationKind::TempTopic, TEMP_TOPIC_ADVISORY),
        };
        let producer_id = ow::ProducerId {
            connection_id: Some("ID:gateway-advisory-1:1".to_string()),
            value: 1,
            session_id: 1,
        };
        let info = ow::DestinationInfo {
            header: CommandHeader::default(),
            connection_id: None,
            destination: Some(ow::Destination {
                kind: temp_kind,
                physical_name: Some(advisory.engine_name.clone()),
            }),
            operation_type: if advisory.added { 0 } else { 1 },
            timeout: 0,
            broker_path: None,
        };
        let message = ow::Message {
            kind: ow::MessageKind::Message,
            producer_id: Some(producer_id.clone()),
            destination: Some(ow::Destination::topic(topic)),
            message_id: Some(ow::MessageId {
                text_view: None,
                producer_id: Some(producer_id),
                producer_sequence_id: self.advisory_seq,
                broker_sequence_id: self.advisory_seq,
            }),
            priority: 4,
            data_structure: Some(Box::new(Command::DestinationInfo(info))),
            ..ow::Message::default()
        };
        Command::MessageDispatch(MessageDispatch {
            header: CommandHeader::default(),
            consumer_id: Some(consumer.clone()),
            destination: Some(destination.clone()),
            message: Some(Box::new(message)),
            redelivery_counter: 0,
        })
    }

    /// Tells this connection's advisory consumers about another connection's temporary
    /// destination.
    async fn on_advisory<S>(
        &mut self,
        advisory: TempAdvisory,
        framed: &mut Io<S>,
    ) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if self.session.as_ref().map(|s| s.id()) == Some(advisory.origin) {
            return Ok(());
        }
        let watchers: Vec<(ow::ConsumerId, ow::Destination)> = self
            .advisory_consumers
            .iter()
            .filter(|(_, _, queues, topics)| match advisory.kind {
                DestinationKind::Queue => *queues,
                DestinationKind::Topic => *topics,
            })
            .map(|(id, d, _, _)| (id.clone(), d.clone()))
            .collect();
        if watchers.is_empty() {
            return Ok(());
        }
        self.temps
            .set_announced(&advisory.engine_name, advisory.added);
        if let Some((id, destination)) = watchers.first() {
            let dispatch = self.advisory_dispatch(id, destination, &advisory);
            framed.feed(dispatch).await.map_err(io_error)?;
        }
        Ok(())
    }

    fn close_consumer(&mut self, id: &ow::ConsumerId) {
        self.advisory_consumers.retain(|(c, _, _, _)| c != id);
        if self.advisory_consumers.is_empty() {
            self.advisories = None;
        }
        if let Some(consumer) = self.consumers.remove(id) {
            for engine_id in consumer.engine_ids {
                self.by_engine.remove(&engine_id);
                if let Some(session) = &self.session {
                    session.unsubscribe(engine_id);
                }
            }
        }
    }

    /// Closes every consumer and the engine session: unacknowledged messages go back to their
    /// queues, temporary destinations are deleted, uncommitted transactions are dropped.
    fn close_all(&mut self) {
        let ids: Vec<ow::ConsumerId> = self.consumers.keys().cloned().collect();
        for id in ids {
            self.close_consumer(&id);
        }
        self.transactions.clear();
        for (engine_name, kind) in std::mem::take(&mut self.own_temps) {
            self.withdraw_temp_named(&engine_name, kind);
        }
        self.events = None;
        if let Some(mut session) = self.session.take() {
            session.close();
        }
    }

    async fn handle_event<S>(
        &mut self,
        event: SessionEvent,
        framed: &mut Io<S>,
    ) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        match event {
            SessionEvent::Deliver(delivery) => {
                let Some(id) = self.by_engine.get(&delivery.consumer) else {
                    return Ok(());
                };
                let message = match convert::message_for_delivery(&delivery, &self.temps) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot convert a delivery for OpenWire");
                        if let Some(session) = &self.session {
                            let _ = session.nack(
                                delivery.consumer,
                                &[delivery.seq],
                                NackAction::DeadLetter,
                            );
                        }
                        return Ok(());
                    }
                };
                let size = dispatch_size_estimate(&message);
                if size > self.max_frame_out {
                    // ActiveMQ would send it and the client would drop the connection (and
                    // get it again on every reconnect): the dead-letter queue is kinder.
                    tracing::warn!(peer = %self.peer, size, max = self.max_frame_out,
                        "delivery larger than the client's MaxFrameSize: dead-lettered");
                    if let Some(session) = &self.session {
                        let _ = session.nack(
                            delivery.consumer,
                            &[delivery.seq],
                            NackAction::DeadLetter,
                        );
                    }
                    return Ok(());
                }
                let Some(consumer) = self.consumers.get_mut(id) else {
                    return Ok(());
                };
                consumer.dispatched.push_back((
                    delivery.consumer,
                    delivery.seq,
                    Arc::clone(&delivery.message),
                ));
                // This answers the pending pull: its window closes again.
                let answered_pull = consumer.pulling && consumer.pull_pending;
                consumer.pull_pending = false;
                consumer.pull_deadline = None;
                let dispatch = Command::MessageDispatch(MessageDispatch {
                    header: CommandHeader::default(),
                    consumer_id: Some(consumer.id.clone()),
                    destination: consumer.destination.clone(),
                    redelivery_counter: message.redelivery_counter,
                    message: Some(Box::new(message)),
                });
                if answered_pull {
                    let id = consumer.id.clone();
                    self.sync_prefetch_extension(&id);
                }
                framed.feed(dispatch).await.map_err(io_error)
            }
            SessionEvent::TakenOver => Err(Failure::fatal(
                "javax.jms.InvalidClientIDException",
                "another connection took over this client id",
            )),
            SessionEvent::ConsumerCancelled(engine_id) => {
                // Its queue was deleted (e.g. another connection's temporary queue went away).
                if let Some(id) = self.by_engine.remove(&engine_id) {
                    if let Some(c) = self.consumers.get_mut(&id) {
                        c.engine_ids.retain(|e| *e != engine_id);
                        c.dispatched.retain(|(e, _, _)| *e != engine_id);
                    }
                }
                Ok(())
            }
        }
    }

    /// Pulls that timed out get a dispatch without a message, which ends the client's receive.
    async fn expire_pulls<S>(&mut self, framed: &mut Io<S>) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let now = Instant::now();
        let mut empty = Vec::new();
        let mut expired = Vec::new();
        for consumer in self.consumers.values_mut() {
            if consumer.pull_deadline.is_none_or(|d| d > now) {
                continue;
            }
            consumer.pull_deadline = None;
            if consumer.pulling && consumer.pull_pending {
                consumer.pull_pending = false;
                expired.push(consumer.id.clone());
                empty.push(Command::MessageDispatch(MessageDispatch {
                    header: CommandHeader::default(),
                    consumer_id: Some(consumer.id.clone()),
                    destination: consumer.destination.clone(),
                    message: None,
                    redelivery_counter: 0,
                }));
            }
        }
        // The unanswered pulls no longer hold their windows open.
        for id in &expired {
            self.sync_prefetch_extension(id);
        }
        for command in empty {
            framed.feed(command).await.map_err(io_error)?;
        }
        Ok(())
    }
}
