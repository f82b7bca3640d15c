//! One MQTT connection: CONNECT, QoS 0/1/2 both ways, subscriptions, retained messages, wills,
//! keep-alive, takeover, persistent sessions and the MQTT 5 extras, on the shared engine.
//!
//! Persistent sessions map onto durable subscriptions owned by the client id (one per filter,
//! named by the filter, the granted QoS in the subscription's tag), so queued messages survive a
//! restart with the journal. The QoS 2 packet ids still being exchanged live in
//! [`MqttSessions`], in memory: they survive reconnects, not a restart.

use super::convert::{self, message_qos};
use crate::ack_batch::AckBatch;
use crate::framing::Framed;
use crate::security::{AccessDenied, Action, AuthError, Authenticator, PeerInfo, Principal};
use codecs::mqtt::{
    reason, ConnAck, Disconnect, MqttCodec, MqttCodecError, MqttDecodeError, MqttLimits,
    MqttPacket, MqttVersion, Properties, PubResponse, Publish, QoS, RetainHandling, SubAck,
    Subscribe, UnsubAck, Unsubscribe,
};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use routes::id_map::{IdMap, IdMapExt};
use routes::{
    ConsumerId, ConsumerSource, ConsumerSpec, Delivery, Destination, Durability, Engine,
    EngineError, Session, SessionEvent,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

/// Settings an MQTT session runs with, taken from the listener's configuration.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// Packet size limit.
    pub limits: MqttLimits,
    /// Most QoS 1/2 deliveries in flight per subscription; the Receive Maximum announced.
    pub max_inflight: u16,
    /// Topic aliases a v5 client may use towards the server.
    pub topic_alias_max: u16,
    /// Longest keep-alive a client may ask for, in seconds.
    pub max_keepalive: u16,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
    /// Checks the user name and password and hands out the principal whose rights PUBLISH
    /// and SUBSCRIBE are checked against.
    pub authenticator: Arc<Authenticator>,
    /// Most topic filters one connection may hold (`security.max_subscriptions_per_connection`);
    /// 0 = no limit.
    pub max_subscriptions: usize,
}

/// What outlives one connection of a client id: QoS 2 exchanges in progress, and a generation
/// that tells a delayed will or a session-expiry timer whether the client came back.
#[derive(Default)]
struct ClientState {
    /// Inbound QoS 2 packet ids received (PUBREC sent) and not yet released.
    inbound_qos2: HashSet<u16>,
    /// Outbound QoS 2 packet ids acknowledged by PUBREC, waiting for PUBCOMP.
    outbound_pubrel: BTreeSet<u16>,
    generation: u64,
    /// The last connection asked for a session that outlives it.
    persistent: bool,
}

/// Per-client state shared by the MQTT connections of the gateway.
#[derive(Default)]
pub struct MqttSessions {
    clients: Mutex<HashMap<String, ClientState>>,
    generations: AtomicU64,
    assigned: AtomicU64,
}

impl MqttSessions {
    fn with<T>(&self, client_id: &str, f: impl FnOnce(&mut ClientState) -> T) -> T {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        f(clients.entry(client_id.to_string()).or_default())
    }

    /// Starts a new connection of `client_id`; returns its generation.
    fn begin(&self, client_id: &str, clean: bool) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.with(client_id, |s| {
            if clean {
                *s = ClientState::default();
            }
            s.generation = generation;
        });
        generation
    }

    /// Whether a persistent session of `client_id` is kept from an earlier connection.
    fn has_persistent(&self, client_id: &str) -> bool {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.get(client_id).is_some_and(|s| s.persistent)
    }

    fn current(&self, client_id: &str, generation: u64) -> bool {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .get(client_id)
            .is_some_and(|s| s.generation == generation)
    }

    /// Whether a newer connection of `client_id` started after `generation` (an ended session
    /// whose state is gone does not count).
    fn reconnected(&self, client_id: &str, generation: u64) -> bool {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .get(client_id)
            .is_some_and(|s| s.generation != generation)
    }

    fn forget(&self, client_id: &str) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.remove(client_id);
    }
}

/// The options of one subscription, kept in a durable subscription's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SubOptions {
    qos: QoS,
    subscription_id: Option<u32>,
    /// Retain As Published: live messages keep the retain flag they were published with.
    retain_as_published: bool,
}

impl SubOptions {
    /// `mqtt:q<qos>[;rap][;id<n>]`.
    fn tag(&self) -> String {
        let mut tag = format!("mqtt:q{}", self.qos.as_u8());
        if self.retain_as_published {
            tag.push_str(";rap");
        }
        if let Some(id) = self.subscription_id {
            tag.push_str(&format!(";id{id}"));
        }
        tag
    }

    fn parse(tag: &str) -> Option<Self> {
        let mut parts = tag.strip_prefix("mqtt:q")?.split(';');
        let qos = QoS::from_u8(parts.next()?.parse().ok()?)?;
        let mut options = SubOptions {
            qos,
            subscription_id: None,
            retain_as_published: false,
        };
        for part in parts {
            if part == "rap" {
                options.retain_as_published = true;
            } else if let Some(id) = part.strip_prefix("id") {
                options.subscription_id = id.parse().ok();
            }
        }
        Some(options)
    }
}

struct Outbound {
    consumer: ConsumerId,
    seq: u64,
}

enum Reply {
    Packet(Box<MqttPacket>),
    None,
}

/// How many operations may wait for durability before the session stops reading packets.
const MAX_PENDING: usize = 1024;

/// Most packets, settled operations and deliveries handled between two flushes.
const DRAIN_BUDGET: usize = 1024;

type PendingOp = Pin<Box<dyn Future<Output = (Reply, Result<(), EngineError>)> + Send>>;

fn pending(reply: Reply, durability: Durability) -> PendingOp {
    Box::pin(async move { (reply, durability.await) })
}

/// Why a connection ends.
enum End {
    /// DISCONNECT from the client (will sent only for v5 reason 0x04).
    Disconnect { send_will: bool },
    /// Network close, protocol error, keep-alive timeout: the will is published.
    Abnormal(Option<u8>),
    /// Another connection took the client id over.
    TakenOver,
    /// The gateway is shutting down.
    Shutdown,
}

struct MqttSession {
    version: MqttVersion,
    client_id: String,
    engine: Session,
    sessions: Arc<MqttSessions>,
    persistent: bool,
    subscriptions: HashMap<String, (ConsumerId, SubOptions)>,
    by_consumer: IdMap<ConsumerId, SubOptions>,
    outbound: IdMap<u16, Outbound>,
    next_packet_id: u16,
    inbound_aliases: HashMap<u16, String>,
    topic_alias_max: u16,
    inflight: u16,
    user: Option<String>,
    /// Whose rights PUBLISH and SUBSCRIBE are checked against.
    principal: Principal,
    /// Most topic filters held at once; 0 = no limit.
    max_subscriptions: usize,
    pending: FuturesOrdered<PendingOp>,
    session_expiry: u32,
    /// The client's Maximum Packet Size (MQTT 5): larger messages are not sent to it.
    client_max_packet: Option<u32>,
    /// SUBACKs queued and not yet written: deliveries wait, so a subscription's retained
    /// messages never overtake its SUBACK.
    subacks_queued: usize,
    /// Topic aliases towards the client (MQTT 5): topic -> alias, at most the client's Topic
    /// Alias Maximum; the first topics get them and keep them for the connection.
    outbound_aliases: HashMap<String, u16>,
    client_alias_max: u16,
    /// Deliveries waiting for room: the client's Receive Maximum counts QoS 1 until PUBACK and
    /// QoS 2 until PUBCOMP, across subscriptions; and nothing overtakes a queued SUBACK.
    held: std::collections::VecDeque<Delivery>,
    window: usize,
    /// Deliveries finished and not yet acknowledged to the engine (`ack_batched`).
    acks: AckBatch,
}

fn v5(version: MqttVersion) -> bool {
    version >= MqttVersion::V5
}

async fn send<S>(framed: &mut Framed<S, MqttCodec>, packet: impl Into<MqttPacket>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    framed.send(packet.into()).await.is_ok()
}

fn connack(code: u8, session_present: bool, properties: Properties) -> ConnAck {
    ConnAck {
        session_present,
        code,
        properties,
    }
}

/// What a successful MQTT handshake leaves for the session.
struct Opened {
    state: MqttSession,
    events: tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    will: Option<codecs::mqtt::Will>,
    keep_alive: Option<Duration>,
    generation: u64,
}

/// The handshake: CONNECT (in time), authentication, CONNACK, the engine session and the
/// resumed subscriptions. `None`: the connection is to be closed (the client has been told
/// why where the protocol allows).
async fn open<S>(
    framed: &mut Framed<S, MqttCodec>,
    peer_info: &PeerInfo,
    engine: &Arc<Engine>,
    settings: &Arc<MqttSettings>,
    sessions: &Arc<MqttSessions>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Opened>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let first = tokio::select! {
        r = tokio::time::timeout(settings.connect_timeout, framed.next()) => r,
        _ = shutdown.changed() => return None,
    };
    let connect = match first {
        Ok(Some(Ok(MqttPacket::Connect(c)))) => *c,
        Ok(Some(Err(MqttCodecError::Decode(e)))) => {
            tracing::debug!(%peer, error = %e, "bad CONNECT");
            crate::metrics::decode_error("mqtt");
            if matches!(e, MqttDecodeError::PacketTooLarge { .. }) {
                crate::metrics::limit_refused("mqtt", "frame_too_large");
            }
            crate::connections::reject("bad CONNECT");
            if e.reason_code() == reason::UNSUPPORTED_PROTOCOL_VERSION {
                // 3.1.1 return code 1: unacceptable protocol version.
                framed.codec_mut().set_version(MqttVersion::V3_1_1);
                let _ = send(framed, connack(1, false, Properties::default())).await;
            }
            return None;
        }
        Err(_) => {
            crate::connections::reject("no CONNECT in time");
            crate::metrics::limit_refused("mqtt", "handshake_timeout");
            return None;
        }
        Ok(Some(Ok(_))) => {
            // MQTT: the first packet must be CONNECT; anything else is a protocol error.
            crate::connections::reject("first packet is not CONNECT");
            return None;
        }
        _ => return None,
    };
    let version = connect.protocol;
    framed.codec_mut().set_version(version);
    let mut props = Properties::default();
    let mut client_id = connect.client_id.clone();
    if client_id.is_empty() {
        let may_assign = v5(version) || (version == MqttVersion::V3_1_1 && connect.clean_session);
        if !may_assign {
            let code = if v5(version) {
                reason::CLIENT_IDENTIFIER_NOT_VALID
            } else {
                2
            };
            crate::connections::reject("empty client id");
            let _ = send(framed, connack(code, false, Properties::default())).await;
            return None;
        }
        let n = sessions.assigned.fetch_add(1, Ordering::Relaxed);
        client_id = format!("gw-auto-{}-{n}", std::process::id());
        if v5(version) {
            props.assigned_client_identifier = Some(client_id.clone());
        }
    }
    let mut keep_alive_s = connect.keep_alive;
    if keep_alive_s == 0 || keep_alive_s > settings.max_keepalive {
        if v5(version) {
            keep_alive_s = settings.max_keepalive;
            props.server_keep_alive = Some(keep_alive_s);
        } else if keep_alive_s > settings.max_keepalive {
            // 3.x cannot be told a lower keep-alive: refuse, as mosquitto does.
            crate::connections::reject("keep-alive above max_keepalive");
            let _ = send(framed, connack(2, false, Properties::default())).await;
            return None;
        }
    }
    // As mosquitto: a refused login is CONNACK "not authorized" (3.x: 5; 5.0: 0x86 for a bad
    // password, 0x87 otherwise), and so is a will the user may not publish.
    let refuse = |bad_password: bool| match (v5(version), bad_password) {
        (false, _) => reason::V3_NOT_AUTHORIZED,
        (true, true) => reason::BAD_USER_NAME_OR_PASSWORD,
        (true, false) => reason::NOT_AUTHORIZED,
    };
    let principal = tokio::select! {
        // Boxed, as the run loop below: an idle connection's future does not keep room for
        // the states it has left behind.
        outcome = Box::pin(settings.authenticator.authenticate(
            connect.username.as_deref(),
            connect.password.as_deref(),
            peer_info,
        )) => match outcome {
            Ok(principal) => principal,
            Err(e) => {
                tracing::debug!(%peer, reason = %e, "MQTT login refused");
                crate::connections::reject("login refused");
                let code = match e {
                    // 3.x: "server unavailable"; 5.0: "quota exceeded".
                    // Also past the gateway's connection limits (the CONNECT was read only
                    // to answer this).
                    AuthError::TooManyConnections { .. } | AuthError::ConnectionLimit(_)
                        if v5(version) =>
                    {
                        reason::QUOTA_EXCEEDED
                    }
                    AuthError::TooManyConnections { .. } | AuthError::ConnectionLimit(_) => {
                        reason::V3_SERVER_UNAVAILABLE
                    }
                    _ => refuse(matches!(e, AuthError::BadCredentials { .. })),
                };
                let _ = send(framed, connack(code, false, Properties::default())).await;
                return None;
            }
        },
        _ = shutdown.changed() => return None,
    };
    if let Some(will) = &connect.will {
        let topic = Destination::topic(convert::topic_to_address(&will.topic));
        if let Err(e) = principal.check(Action::Write, &topic) {
            tracing::debug!(%peer, reason = %e, "MQTT will refused");
            crate::connections::reject("will topic not authorized");
            let _ = send(framed, connack(refuse(false), false, Properties::default())).await;
            return None;
        }
    }
    let session_expiry = if v5(version) {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_session {
        0
    } else {
        u32::MAX
    };
    let persistent = session_expiry > 0;
    let (session, events) = engine.connect(Some(client_id.clone()));
    if connect.clean_session {
        engine.remove_durable_subscriptions(&client_id);
    }
    let kept = sessions.has_persistent(&client_id);
    let generation = sessions.begin(&client_id, connect.clean_session);
    sessions.with(&client_id, |s| s.persistent = persistent);
    let resumed = if connect.clean_session {
        Vec::new()
    } else {
        engine.durable_subscriptions(&client_id)
    };
    let pending_pubrel: Vec<u16> =
        sessions.with(&client_id, |s| s.outbound_pubrel.iter().copied().collect());
    // MQTT 3.1's CONNACK has no session-present flag.
    let session_present = version >= MqttVersion::V3_1_1
        && !connect.clean_session
        && (kept || !resumed.is_empty() || !pending_pubrel.is_empty());
    let client_receive_max = connect
        .properties
        .receive_maximum
        .unwrap_or(u16::MAX)
        .max(1);
    if v5(version) {
        props.receive_maximum = Some(settings.max_inflight);
        props.topic_alias_maximum = Some(settings.topic_alias_max);
        props.maximum_packet_size =
            Some(settings.limits.max_packet_size.min(u32::MAX as usize) as u32);
        props.retain_available = Some(true);
        props.wildcard_subscription_available = Some(true);
        props.shared_subscription_available = Some(true);
        props.subscription_identifier_available = Some(true);
    }
    if !send(framed, connack(reason::SUCCESS, session_present, props)).await {
        return None;
    }
    crate::connections::established(connect.username.as_deref(), Some(&client_id), session.id());
    tracing::debug!(%peer, %client_id, version = %version, session_present, "MQTT session open");
    let mut state = MqttSession {
        version,
        client_id: client_id.clone(),
        engine: session,
        sessions: sessions.clone(),
        persistent,
        subscriptions: HashMap::new(),
        by_consumer: IdMap::new(),
        outbound: IdMap::new(),
        next_packet_id: 1,
        inbound_aliases: HashMap::new(),
        topic_alias_max: settings.topic_alias_max,
        inflight: settings.max_inflight.min(client_receive_max),
        user: connect.username.clone(),
        principal,
        max_subscriptions: settings.max_subscriptions,
        pending: FuturesOrdered::new(),
        session_expiry,
        client_max_packet: connect.properties.maximum_packet_size,
        subacks_queued: 0,
        outbound_aliases: HashMap::new(),
        client_alias_max: connect.properties.topic_alias_maximum.unwrap_or(0),
        held: std::collections::VecDeque::new(),
        window: usize::from(client_receive_max),
        acks: AckBatch::default(),
    };
    for id in pending_pubrel {
        let _ = framed.feed(MqttPacket::PubRel(PubResponse::new(id))).await;
    }
    for sub in resumed {
        let options = sub
            .tag
            .as_deref()
            .and_then(SubOptions::parse)
            .unwrap_or(SubOptions {
                qos: QoS::AtLeastOnce,
                subscription_id: None,
                retain_as_published: false,
            });
        let filter = sub.subscription.clone();
        // The session may have been made by another user: resume only what this one may read.
        if let Err(e) = state
            .principal
            .check(Action::Read, &filter_destination(&filter))
        {
            tracing::debug!(%peer, %client_id, reason = %e, "stored subscription not resumed");
            if !filter.starts_with("$share/") {
                let _ = state.engine.remove_durable_subscription(&filter);
            }
            continue;
        }
        let _ = state.attach(&filter, &sub.pattern, options, false, false);
    }
    let _ = SinkExt::<MqttPacket>::flush(framed).await;
    let keep_alive =
        (keep_alive_s > 0).then(|| Duration::from_millis(u64::from(keep_alive_s) * 1500));
    Some(Opened {
        state,
        events,
        will: connect.will,
        keep_alive,
        generation,
    })
}

/// Serves one MQTT connection until it closes, fails, or the gateway shuts down.
pub async fn serve<S>(
    stream: S,
    peer_info: PeerInfo,
    engine: Arc<Engine>,
    settings: Arc<MqttSettings>,
    sessions: Arc<MqttSessions>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let mut framed = crate::framing::framed(stream, MqttCodec::new(settings.limits));
    // The handshake in a future of its own (boxed): this one, which lives as long as the
    // connection, keeps no room for the CONNECT packet and the rest of the handshake's state.
    let Some(opened) = Box::pin(open(
        &mut framed,
        &peer_info,
        &engine,
        &settings,
        &sessions,
        &mut shutdown,
    ))
    .await
    else {
        return;
    };
    let Opened {
        mut state,
        mut events,
        will,
        keep_alive,
        generation,
    } = opened;
    let version = state.version;
    let client_id = state.client_id.clone();
    // Boxed: the run loop's future is large (it has room for handling any packet), and this
    // one would otherwise keep that room on top of its own.
    let end = Box::pin(state.run(&mut framed, &mut events, keep_alive, &mut shutdown)).await;
    // Deliveries written (QoS 0) or acknowledged (PUBACK) are acknowledged to the engine
    // before the session's consumers close, as they always were.
    state.ack_batched();
    let (send_will, code) = match &end {
        End::Disconnect { send_will } => (*send_will, None),
        End::Abnormal(code) => (true, *code),
        End::TakenOver => (true, Some(reason::SESSION_TAKEN_OVER)),
        End::Shutdown => (true, Some(reason::SERVER_SHUTTING_DOWN)),
    };
    if let (Some(code), true) = (code, v5(version)) {
        let properties = Properties {
            reason_string: Some(reason_text(code).to_string()),
            ..Properties::default()
        };
        let _ = send(
            &mut framed,
            Disconnect {
                reason_code: code,
                properties,
            },
        )
        .await;
    }
    let _ = SinkExt::<MqttPacket>::close(&mut framed).await;
    let expiry = state.session_expiry;
    let persistent = state.persistent && expiry > 0;
    drop(state);
    if send_will {
        if let Some(will) = will {
            // The will goes at the end of the session if that comes first.
            let delay = will
                .properties
                .will_delay_interval
                .unwrap_or(0)
                .min(if persistent { expiry } else { 0 });
            let engine = engine.clone();
            let sessions = sessions.clone();
            let cid = client_id.clone();
            tokio::spawn(async move {
                if delay > 0 {
                    tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
                    if sessions.reconnected(&cid, generation) {
                        return; // The client came back: no will.
                    }
                }
                publish_will(&engine, will, &cid).await;
            });
        }
    }
    if !persistent {
        if sessions.current(&client_id, generation) {
            engine.remove_durable_subscriptions(&client_id);
            sessions.forget(&client_id);
        }
    } else if expiry != u32::MAX {
        let engine = engine.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(expiry))).await;
            if sessions.current(&client_id, generation) {
                engine.remove_durable_subscriptions(&client_id);
                sessions.forget(&client_id);
            }
        });
    }
    tracing::debug!(%peer, "MQTT session closed");
}

/// The topic pattern a subscription filter reads from (the inner filter of
/// `$share/group/filter`), for authorization.
fn filter_destination(filter: &str) -> Destination {
    let unshared = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map(|(_, f)| f).unwrap_or(rest),
        None => filter,
    };
    Destination::topic(convert::topic_to_address(unshared))
}

/// The reason string sent with a server DISCONNECT.
fn reason_text(code: u8) -> &'static str {
    match code {
        reason::MALFORMED_PACKET => "malformed packet",
        reason::PROTOCOL_ERROR => "protocol error",
        reason::PACKET_TOO_LARGE => "packet larger than the maximum packet size",
        reason::KEEP_ALIVE_TIMEOUT => "keep-alive timeout",
        reason::SESSION_TAKEN_OVER => "another connection took over this client id",
        reason::SERVER_SHUTTING_DOWN => "the server is shutting down",
        reason::TOPIC_ALIAS_INVALID => "invalid topic alias",
        reason::PAYLOAD_FORMAT_INVALID => "payload is not valid UTF-8",
        reason::BAD_AUTHENTICATION_METHOD => "extended authentication is not supported",
        _ => "error",
    }
}

async fn publish_will(engine: &Arc<Engine>, will: codecs::mqtt::Will, client_id: &str) {
    let mut publish = Publish::new(will.topic.clone(), will.payload.clone());
    publish.qos = will.qos;
    publish.retain = will.retain;
    publish.properties = will.properties.clone();
    let message = convert::message_from_publish(&publish, &will.topic, None);
    let address = message.address.clone();
    if will.retain {
        let retained = (!will.payload.is_empty()).then(|| message.clone());
        let _ = engine.set_retained(&address, retained).await;
    }
    let (session, _events) = engine.connect(None);
    if let Err(e) = session.send(&Destination::topic(address), message).await {
        tracing::warn!(client_id, error = %e, "could not publish the will");
    }
}

impl MqttSession {
    async fn run<S>(
        &mut self,
        framed: &mut Framed<S, MqttCodec>,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
        keep_alive: Option<Duration>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let far = Duration::from_secs(86_400 * 365);
        let mut deadline = Instant::now() + keep_alive.unwrap_or(far);
        loop {
            tokio::select! {
                packet = framed.next(), if self.pending.len() < MAX_PENDING => {
                    deadline = Instant::now() + keep_alive.unwrap_or(far);
                    match packet {
                        None => return End::Abnormal(None),
                        Some(Err(e)) => return self.decode_end(e),
                        // Written out rather than `on_packet` / `on_done`: the nested futures
                        // would make this one (kept by every idle connection) larger.
                        Some(Ok(packet)) => {
                            if let Some(end) = self.handle(packet, framed).await {
                                return end;
                            }
                            if self.may_release() && !self.release_held(framed).await {
                                return End::Abnormal(None);
                            }
                        }
                    }
                }
                Some((reply, result)) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Reply::Packet(p) = &reply {
                        if matches!(**p, MqttPacket::SubAck(_)) {
                            self.subacks_queued = self.subacks_queued.saturating_sub(1);
                        }
                    }
                    match result {
                        Ok(()) => {
                            if let Reply::Packet(p) = reply {
                                if framed.feed(*p).await.is_err() {
                                    return End::Abnormal(None);
                                }
                            }
                            if self.may_release() && !self.release_held(framed).await {
                                return End::Abnormal(None);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(client_id = %self.client_id, error = %e, "publish failed");
                            return End::Abnormal(Some(reason::UNSPECIFIED_ERROR));
                        }
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else { return End::Abnormal(None) };
                    if let Some(end) = self.event(event, framed).await {
                        return end;
                    }
                    while let Ok(event) = events.try_recv() {
                        if let Some(end) = self.event(event, framed).await {
                            return end;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline), if keep_alive.is_some() => {
                    tracing::debug!(client_id = %self.client_id, "keep-alive expired");
                    return End::Abnormal(Some(reason::KEEP_ALIVE_TIMEOUT));
                }
                _ = shutdown.changed() => {
                    while let Some((reply, result)) = self.pending.next().await {
                        if let (Reply::Packet(p), Ok(())) = (reply, result) {
                            let _ = framed.feed(*p).await;
                        }
                    }
                    return End::Shutdown;
                }
            }
            // Boxed: inline, its room would be part of every idle connection's future.
            if self.may_drain(framed, events) {
                if let Some(end) = Box::pin(self.drain_ready(framed, events)).await {
                    return end;
                }
            }
            if !framed.write_buffer().is_empty()
                && SinkExt::<MqttPacket>::flush(framed).await.is_err()
            {
                return End::Abnormal(None);
            }
        }
    }

    /// How a packet that cannot be decoded ends the session.
    fn decode_end(&self, e: MqttCodecError) -> End {
        match e {
            MqttCodecError::Decode(e) => {
                crate::metrics::decode_error("mqtt");
                if matches!(e, MqttDecodeError::PacketTooLarge { .. }) {
                    crate::metrics::limit_refused("mqtt", "frame_too_large");
                }
                tracing::debug!(client_id = %self.client_id, error = %e, "malformed packet");
                End::Abnormal(Some(e.reason_code()))
            }
            _ => End::Abnormal(None),
        }
    }

    /// Handles a packet from the client, then sends what its window lets out.
    async fn on_packet<S>(
        &mut self,
        packet: MqttPacket,
        framed: &mut Framed<S, MqttCodec>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if let Some(end) = self.handle(packet, framed).await {
            return Some(end);
        }
        if self.may_release() && !self.release_held(framed).await {
            return Some(End::Abnormal(None));
        }
        None
    }

    /// Writes the reply of an operation whose durability is settled.
    async fn on_done<S>(
        &mut self,
        (reply, result): (Reply, Result<(), EngineError>),
        framed: &mut Framed<S, MqttCodec>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if let Reply::Packet(p) = &reply {
            if matches!(**p, MqttPacket::SubAck(_)) {
                self.subacks_queued = self.subacks_queued.saturating_sub(1);
            }
        }
        match result {
            Ok(()) => {
                if let Reply::Packet(p) = reply {
                    if framed.feed(*p).await.is_err() {
                        return Some(End::Abnormal(None));
                    }
                }
                if self.may_release() && !self.release_held(framed).await {
                    return Some(End::Abnormal(None));
                }
                None
            }
            Err(e) => {
                tracing::warn!(client_id = %self.client_id, error = %e, "publish failed");
                Some(End::Abnormal(Some(reason::UNSPECIFIED_ERROR)))
            }
        }
    }

    /// Whether [`MqttSession::drain_ready`] may find something to do.
    fn may_drain<S>(
        &self,
        framed: &Framed<S, MqttCodec>,
        events: &tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    ) -> bool {
        !framed.read_buffer().is_empty()
            || !self.pending.is_empty()
            || !events.is_empty()
            || !self.acks.is_empty()
    }

    /// Before a flush, handles whatever is ready without waiting: packets already read,
    /// settled operations (PUBACKs to a QoS 1 publisher), deliveries. One flush (one `writev`)
    /// then covers a burst, where the loop above would flush after each of them: a QoS 1
    /// publisher got one `writev` per PUBACK, a QoS 1 subscriber one per delivery.
    async fn drain_ready<S>(
        &mut self,
        framed: &mut Framed<S, MqttCodec>,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        // Bounded, so that timers and shutdown are looked at now and then.
        let mut budget = DRAIN_BUDGET;
        while budget > 0 {
            let before = budget;
            while budget > 0 && self.pending.len() < MAX_PENDING {
                match crate::framing::next_buffered(framed) {
                    Ok(Some(packet)) => {
                        budget -= 1;
                        if let Some(end) = self.on_packet(packet, framed).await {
                            return Some(end);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Some(self.decode_end(e)),
                }
            }
            while budget > 0 {
                let Some(Some(done)) = self.pending.next().now_or_never() else {
                    break;
                };
                budget -= 1;
                if let Some(end) = self.on_done(done, framed).await {
                    return Some(end);
                }
            }
            while budget > 0 {
                let Ok(event) = events.try_recv() else {
                    break;
                };
                budget -= 1;
                if let Some(end) = self.event(event, framed).await {
                    return Some(end);
                }
            }
            // Acknowledged deliveries free credit: the engine may hand over more at once.
            if self.ack_batched() {
                continue;
            }
            if budget == before {
                break;
            }
        }
        // Never wait with credit held back.
        self.ack_batched();
        None
    }

    /// Acknowledges to the engine the deliveries finished since the last call (QoS 0 ones
    /// once written, QoS 1 ones on their PUBACK). Called before any other packet from the
    /// client is handled, so an UNSUBSCRIBE or DISCONNECT never finds them unacknowledged.
    /// Returns whether there were any.
    fn ack_batched(&mut self) -> bool {
        self.acks.flush(&self.engine)
    }

    async fn event<S>(
        &mut self,
        event: SessionEvent,
        framed: &mut Framed<S, MqttCodec>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        match event {
            SessionEvent::Deliver(d) => {
                self.held.push_back(*d);
                if self.release_held(framed).await {
                    None
                } else {
                    Some(End::Abnormal(None))
                }
            }
            SessionEvent::TakenOver => Some(End::TakenOver),
            SessionEvent::ConsumerCancelled(c) => {
                self.by_consumer.remove(&c);
                self.subscriptions.retain(|_, (id, _)| *id != c);
                None
            }
        }
    }

    /// Whether held deliveries may go out now (there are some, and no SUBACK is still to be
    /// written before them). Callers look first: the future of `release_held` is large, and
    /// made after every packet it would be moved whole each time.
    fn may_release(&self) -> bool {
        !self.held.is_empty() && self.subacks_queued == 0
    }

    /// Sends held deliveries, in order, while the window has room (QoS 1/2 deliveries the
    /// client has not finished acknowledging) and no SUBACK is queued.
    async fn release_held<S>(&mut self, framed: &mut Framed<S, MqttCodec>) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if !self.may_release() {
            return true;
        }
        // PUBRELs awaiting PUBCOMP do not change while deliveries go out: looked up once
        // (a lock and a lookup of the shared session table), not once per delivery.
        let pubrel = self
            .sessions
            .with(&self.client_id, |s| s.outbound_pubrel.len());
        while self.outbound.len() + pubrel < self.window {
            let Some(d) = self.held.pop_front() else {
                break;
            };
            if !self.deliver(d, framed, pubrel == 0).await {
                return false;
            }
        }
        true
    }

    /// A packet id free for a new delivery; `no_pubrel`: no PUBREL awaits its PUBCOMP (none
    /// of their ids is taken).
    fn next_packet_id(&mut self, no_pubrel: bool) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.outbound.contains_key(&id)
                && (no_pubrel
                    || !self
                        .sessions
                        .with(&self.client_id, |s| s.outbound_pubrel.contains(&id)))
            {
                return id;
            }
        }
    }

    /// Writes one delivery; `no_pubrel` as for [`MqttSession::next_packet_id`].
    async fn deliver<S>(
        &mut self,
        d: Delivery,
        framed: &mut Framed<S, MqttCodec>,
        no_pubrel: bool,
    ) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Some(options) = self.by_consumer.get(&d.consumer).copied() else {
            return true; // racing an UNSUBSCRIBE: the engine took it back
        };
        let qos = options.qos.min(message_qos(&d.message));
        let mut publish = convert::publish_from_message(&d.message, v5(self.version));
        publish.qos = qos;
        publish.retain = d.retained
            || (options.retain_as_published
                && matches!(
                    d.message.properties.get(convert::RETAIN_PROPERTY),
                    Some(routes::PropertyValue::Bool(true))
                ));
        if let (Some(id), true) = (options.subscription_id, v5(self.version)) {
            publish.properties.subscription_identifiers = vec![id];
        }
        if let Some(max) = self.client_max_packet {
            let mut probe = bytes::BytesMut::new();
            let mut sized = publish.clone();
            if qos != QoS::AtMostOnce {
                sized.packet_id = 1; // the size is the same whatever id it gets
            }
            let fits = MqttPacket::Publish(sized)
                .encode(self.version, &mut probe)
                .is_ok()
                && probe.len() <= max as usize;
            if !fits {
                // MQTT 5: a packet over the client's maximum is discarded as if delivered.
                tracing::debug!(client_id = %self.client_id, "message larger than the client's maximum packet size dropped");
                let _ = self.engine.ack(d.consumer, &[d.seq]);
                return true;
            }
        }
        self.apply_outbound_alias(&mut publish);
        if qos == QoS::AtMostOnce {
            self.acks.push(d.consumer, d.seq);
        } else {
            publish.packet_id = self.next_packet_id(no_pubrel);
            publish.dup = d.redelivered;
            self.outbound.insert(
                publish.packet_id,
                Outbound {
                    consumer: d.consumer,
                    seq: d.seq,
                },
            );
        }
        framed.feed(MqttPacket::Publish(publish)).await.is_ok()
    }

    /// Uses (or assigns) a topic alias for an outgoing PUBLISH when the client allows them: the
    /// first PUBLISH of a topic carries the topic and the alias, later ones the alias alone.
    fn apply_outbound_alias(&mut self, publish: &mut Publish) {
        if self.client_alias_max == 0 || !v5(self.version) {
            return;
        }
        if let Some(alias) = self.outbound_aliases.get(&publish.topic) {
            publish.properties.topic_alias = Some(*alias);
            publish.topic.clear();
        } else if self.outbound_aliases.len() < usize::from(self.client_alias_max) {
            let alias = self.outbound_aliases.len() as u16 + 1;
            self.outbound_aliases.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }

    fn resolve_topic(&mut self, publish: &Publish) -> Result<String, u8> {
        let alias = publish.properties.topic_alias;
        match alias {
            None => Ok(publish.topic.clone()),
            Some(a) if a == 0 || a > self.topic_alias_max => Err(reason::TOPIC_ALIAS_INVALID),
            Some(a) => {
                if publish.topic.is_empty() {
                    self.inbound_aliases
                        .get(&a)
                        .cloned()
                        .ok_or(reason::PROTOCOL_ERROR)
                } else {
                    self.inbound_aliases.insert(a, publish.topic.clone());
                    Ok(publish.topic.clone())
                }
            }
        }
    }

    fn ack_packet(&self, kind: fn(PubResponse) -> MqttPacket, id: u16, code: u8) -> MqttPacket {
        let mut r = PubResponse::new(id);
        if v5(self.version) {
            r.reason_code = code;
        }
        kind(r)
    }

    async fn handle<S>(
        &mut self,
        packet: MqttPacket,
        framed: &mut Framed<S, MqttCodec>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if !matches!(packet, MqttPacket::PubAck(_)) {
            self.ack_batched();
        }
        match packet {
            MqttPacket::Publish(p) => return self.on_publish(p).await,
            MqttPacket::PubAck(r) => {
                if let Some(o) = self.outbound.remove(&r.packet_id) {
                    self.acks.push(o.consumer, o.seq);
                }
            }
            MqttPacket::PubRec(r) => {
                // The client owns the message now: acknowledge it, then release.
                if let Some(o) = self.outbound.remove(&r.packet_id) {
                    let _ = self.engine.ack(o.consumer, &[o.seq]);
                }
                self.sessions
                    .with(&self.client_id, |s| s.outbound_pubrel.insert(r.packet_id));
                let _ = framed
                    .feed(MqttPacket::PubRel(PubResponse::new(r.packet_id)))
                    .await;
            }
            MqttPacket::PubComp(r) => {
                self.sessions
                    .with(&self.client_id, |s| s.outbound_pubrel.remove(&r.packet_id));
            }
            MqttPacket::PubRel(r) => {
                let known = self
                    .sessions
                    .with(&self.client_id, |s| s.inbound_qos2.remove(&r.packet_id));
                let code = if known {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                let reply = self.ack_packet(MqttPacket::PubComp, r.packet_id, code);
                // After the PUBREC of the same id: keep the order of replies.
                self.pending
                    .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
            }
            MqttPacket::Subscribe(s) => {
                let ack = self.on_subscribe(s);
                self.subacks_queued += 1;
                self.pending.push_back(pending(
                    Reply::Packet(Box::new(MqttPacket::SubAck(ack))),
                    Durability::done(),
                ));
            }
            MqttPacket::Unsubscribe(u) => {
                let ack = self.on_unsubscribe(u);
                self.pending.push_back(pending(
                    Reply::Packet(Box::new(MqttPacket::UnsubAck(ack))),
                    Durability::done(),
                ));
            }
            MqttPacket::PingReq => {
                self.pending.push_back(pending(
                    Reply::Packet(Box::new(MqttPacket::PingResp)),
                    Durability::done(),
                ));
            }
            MqttPacket::Disconnect(d) => {
                // Boxed: once per connection, and its future (replies still pending) would
                // otherwise be part of every packet's.
                return Box::pin(self.on_disconnect(d, framed)).await;
            }
            MqttPacket::Connect(_) => return Some(End::Abnormal(Some(reason::PROTOCOL_ERROR))),
            MqttPacket::Auth(_) => {
                return Some(End::Abnormal(Some(reason::BAD_AUTHENTICATION_METHOD)))
            }
            // Server-to-client packets from a client.
            _ => return Some(End::Abnormal(Some(reason::PROTOCOL_ERROR))),
        }
        None
    }

    /// DISCONNECT from the client: the session's expiry, pending replies, and the will.
    async fn on_disconnect<S>(
        &mut self,
        d: Disconnect,
        framed: &mut Framed<S, MqttCodec>,
    ) -> Option<End>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if let Some(expiry) = d.properties.session_expiry_interval {
            if self.session_expiry == 0 && expiry > 0 {
                return Some(End::Abnormal(Some(reason::PROTOCOL_ERROR)));
            }
            self.session_expiry = expiry;
        }
        if self.session_expiry == 0 {
            // The session ends with this connection: say so now, before the socket
            // closes, so a client reconnecting at once finds no session.
            self.sessions
                .with(&self.client_id, |s| s.persistent = false);
            for (_, (consumer, _)) in self.subscriptions.drain() {
                self.engine.unsubscribe(consumer);
            }
            self.by_consumer.clear();
            self.engine
                .engine()
                .remove_durable_subscriptions(&self.client_id);
        }
        while let Some((reply, result)) = self.pending.next().await {
            if let (Reply::Packet(p), Ok(())) = (reply, result) {
                let _ = framed.feed(*p).await;
            }
        }
        let _ = SinkExt::<MqttPacket>::flush(framed).await;
        Some(End::Disconnect {
            send_will: d.reason_code == reason::DISCONNECT_WITH_WILL_MESSAGE,
        })
    }

    async fn on_publish(&mut self, publish: Publish) -> Option<End> {
        let topic = match self.resolve_topic(&publish) {
            Ok(t) => t,
            Err(code) => return Some(End::Abnormal(Some(code))),
        };
        let id = publish.packet_id;
        if v5(self.version) && publish.check_payload_format().is_err() {
            return match publish.qos {
                QoS::AtMostOnce => Some(End::Abnormal(Some(reason::PAYLOAD_FORMAT_INVALID))),
                QoS::AtLeastOnce => {
                    let reply =
                        self.ack_packet(MqttPacket::PubAck, id, reason::PAYLOAD_FORMAT_INVALID);
                    self.pending
                        .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
                    None
                }
                QoS::ExactlyOnce => {
                    let reply =
                        self.ack_packet(MqttPacket::PubRec, id, reason::PAYLOAD_FORMAT_INVALID);
                    self.pending
                        .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
                    None
                }
            };
        }
        if publish.qos == QoS::ExactlyOnce
            && self
                .sessions
                .with(&self.client_id, |s| s.inbound_qos2.contains(&id))
        {
            // A resend of a message already received: PUBREC again, route nothing.
            let reply = self.ack_packet(MqttPacket::PubRec, id, reason::SUCCESS);
            self.pending
                .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
            return None;
        }
        let message = convert::message_from_publish(&publish, &topic, self.user.as_deref());
        let address = message.address.clone();
        if let Err(e) = self
            .principal
            .check(Action::Write, &Destination::topic(address.clone()))
        {
            return self.publish_denied(&publish, &e);
        }
        let engine = self.engine.engine().clone();
        if publish.retain {
            let retained = (!publish.payload.is_empty()).then(|| message.clone());
            let durability = engine.set_retained(&address, retained);
            self.pending.push_back(pending(Reply::None, durability));
        }
        let durability = match self
            .engine
            .publish(&Destination::topic(address), message)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(client_id = %self.client_id, error = %e, "publish refused");
                let code = reason::IMPLEMENTATION_SPECIFIC_ERROR;
                return match publish.qos {
                    QoS::AtMostOnce => None,
                    QoS::AtLeastOnce if v5(self.version) => {
                        let reply = self.ack_packet(MqttPacket::PubAck, id, code);
                        self.pending
                            .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
                        None
                    }
                    QoS::ExactlyOnce if v5(self.version) => {
                        let reply = self.ack_packet(MqttPacket::PubRec, id, code);
                        self.pending
                            .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
                        None
                    }
                    _ => Some(End::Abnormal(None)),
                };
            }
        };
        let reply = match publish.qos {
            QoS::AtMostOnce => Reply::None,
            QoS::AtLeastOnce => Reply::Packet(Box::new(self.ack_packet(
                MqttPacket::PubAck,
                id,
                reason::SUCCESS,
            ))),
            QoS::ExactlyOnce => {
                self.sessions
                    .with(&self.client_id, |s| s.inbound_qos2.insert(id));
                Reply::Packet(Box::new(self.ack_packet(
                    MqttPacket::PubRec,
                    id,
                    reason::SUCCESS,
                )))
            }
        };
        self.pending.push_back(pending(reply, durability));
        None
    }

    /// A PUBLISH the principal may not send, answered as mosquitto does: MQTT 5 gets
    /// PUBACK / PUBREC 0x87 (QoS 0: dropped); 3.x cannot be told, so the message is acknowledged
    /// and dropped.
    fn publish_denied(&mut self, publish: &Publish, e: &AccessDenied) -> Option<End> {
        tracing::debug!(client_id = %self.client_id, reason = %e, "publish not authorized");
        let id = publish.packet_id;
        let code = if v5(self.version) {
            reason::NOT_AUTHORIZED
        } else {
            reason::SUCCESS
        };
        let reply = match publish.qos {
            QoS::AtMostOnce => return None,
            QoS::AtLeastOnce => self.ack_packet(MqttPacket::PubAck, id, code),
            QoS::ExactlyOnce => {
                if code == reason::SUCCESS {
                    // The PUBREL that follows must find the exchange.
                    self.sessions
                        .with(&self.client_id, |s| s.inbound_qos2.insert(id));
                }
                self.ack_packet(MqttPacket::PubRec, id, code)
            }
        };
        self.pending
            .push_back(pending(Reply::Packet(Box::new(reply)), Durability::done()));
        None
    }

    /// Opens the engine consumer of one filter. `new_sub` tells retain handling 1 apart.
    fn attach(
        &mut self,
        filter: &str,
        pattern: &str,
        options: SubOptions,
        retained: bool,
        no_local: bool,
    ) -> Result<(), EngineError> {
        let source = if let Some(rest) = filter.strip_prefix("$share/") {
            let inner = rest.split_once('/').map(|(_, f)| f).unwrap_or(rest);
            ConsumerSource::SharedTopic {
                pattern: convert::topic_to_address(inner),
                subscription: filter.to_string(),
                durable: false,
            }
        } else if self.persistent {
            ConsumerSource::DurableTopic {
                pattern: pattern.to_string(),
                subscription: filter.to_string(),
            }
        } else {
            ConsumerSource::Topic(pattern.to_string())
        };
        let shared = matches!(source, ConsumerSource::SharedTopic { .. });
        let spec = ConsumerSpec {
            source,
            selector: None,
            prefetch: Some(u32::from(self.inflight).max(1)),
            exclusive: false,
            priority: 0,
            no_local,
            retained: retained && !shared,
            tag: Some(options.tag()),
        };
        let consumer = self.engine.subscribe(spec)?;
        self.subscriptions
            .insert(filter.to_string(), (consumer, options));
        self.by_consumer.insert(consumer, options);
        Ok(())
    }

    fn on_subscribe(&mut self, s: Subscribe) -> SubAck {
        let failure = if v5(self.version) {
            reason::TOPIC_FILTER_INVALID
        } else {
            reason::UNSPECIFIED_ERROR
        };
        let subscription_id = s.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(s.filters.len());
        for f in &s.filters {
            if !codecs::mqtt::valid_topic_filter(&f.filter) {
                codes.push(failure);
                continue;
            }
            let options = SubOptions {
                qos: f.options.qos,
                subscription_id,
                retain_as_published: f.options.retain_as_published,
            };
            if let Err(e) = self
                .principal
                .check(Action::Read, &filter_destination(&f.filter))
            {
                tracing::debug!(client_id = %self.client_id, reason = %e, "subscribe not authorized");
                codes.push(if v5(self.version) {
                    reason::NOT_AUTHORIZED
                } else {
                    reason::V3_SUBACK_FAILURE
                });
                continue;
            }
            if self.max_subscriptions > 0
                && self.subscriptions.len() >= self.max_subscriptions
                && !self.subscriptions.contains_key(&f.filter)
            {
                crate::metrics::limit_refused("mqtt", "max_subscriptions");
                codes.push(if v5(self.version) {
                    reason::QUOTA_EXCEEDED
                } else {
                    reason::V3_SUBACK_FAILURE
                });
                continue;
            }
            let existing = self.subscriptions.remove(&f.filter);
            if let Some((consumer, _)) = existing {
                self.by_consumer.remove(&consumer);
                self.engine.unsubscribe(consumer);
            }
            let retained = match f.options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendAtSubscribeIfNew => existing.is_none(),
                RetainHandling::DoNotSend => false,
            };
            let pattern = convert::topic_to_address(&f.filter);
            match self.attach(&f.filter, &pattern, options, retained, f.options.no_local) {
                Ok(()) => codes.push(f.options.qos.as_u8()),
                Err(e) => {
                    tracing::debug!(client_id = %self.client_id, error = %e, "subscribe refused");
                    codes.push(if v5(self.version) {
                        reason::IMPLEMENTATION_SPECIFIC_ERROR
                    } else {
                        reason::UNSPECIFIED_ERROR
                    });
                }
            }
        }
        SubAck {
            packet_id: s.packet_id,
            properties: Properties::default(),
            codes,
        }
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) -> UnsubAck {
        let mut reason_codes = Vec::with_capacity(u.filters.len());
        for filter in &u.filters {
            match self.subscriptions.remove(filter) {
                Some((consumer, _)) => {
                    self.by_consumer.remove(&consumer);
                    self.engine.unsubscribe(consumer);
                    if self.persistent && !filter.starts_with("$share/") {
                        let _ = self.engine.remove_durable_subscription(filter);
                    }
                    reason_codes.push(reason::SUCCESS);
                }
                None => reason_codes.push(reason::NO_SUBSCRIPTION_EXISTED),
            }
        }
        if !v5(self.version) {
            reason_codes.clear();
        }
        UnsubAck {
            packet_id: u.packet_id,
            properties: Properties::default(),
            reason_codes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_tags_round_trip() {
        for options in [
            SubOptions {
                qos: QoS::AtMostOnce,
                subscription_id: None,
                retain_as_published: false,
            },
            SubOptions {
                qos: QoS::ExactlyOnce,
                subscription_id: Some(42),
                retain_as_published: true,
            },
        ] {
            assert_eq!(SubOptions::parse(&options.tag()), Some(options));
        }
        assert_eq!(SubOptions::parse("stomp:x"), None);
    }
}
