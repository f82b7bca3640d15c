//! Start-up, listeners and graceful shutdown.

use crate::admin::{self, AdminState};
use crate::connections::{ConnectionRegistry, ListenerTracker, MeteredStream};
use crate::kafka::{KafkaBroker, KafkaSettings};
use crate::mqtt::{MqttSessions, MqttSettings};
use crate::openwire::{OpenWireSettings, OpenWireShared};
use crate::security::{
    Authenticator, ClientStream, ConnectionLimiter, ListenerSecurity, PeerInfo, TlsAcceptor,
    TlsListener, MAX_REFUSAL_ANSWERS, REFUSAL_DEADLINE, REFUSAL_READ_BUDGET,
};
use crate::stomp::{self, StompSettings};
use anyhow::Context;
use codecs::mqtt::MqttLimits;
use codecs::openwire::OpenWireLimits;
use codecs::stomp::StompLimits;
use config::{Config, FlowControlPolicy, SyncMode};
use routes::store::log::{Log, LogOptions, LogSync, StreamConfig};
use routes::store::{JournalOptions, SyncPolicy};
use routes::{DestinationPolicy, Engine, EngineConfig, FlowControl};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

fn flow_control(policy: FlowControlPolicy) -> FlowControl {
    match policy {
        FlowControlPolicy::Block => FlowControl::Block,
        FlowControlPolicy::Fail => FlowControl::Fail,
        FlowControlPolicy::DropOldest => FlowControl::DropOldest,
    }
}

/// How long a Kafka client has for a TLS handshake (Kafka has no CONNECT frame to time out).
const KAFKA_HANDSHAKE_MS: u64 = 10_000;
/// How long an HTTPS client of the admin server has for its TLS handshake.
const ADMIN_HANDSHAKE_MS: u64 = 10_000;

/// The `listener` label of a listener's connection metrics: the protocol, `+ssl` for its TLS
/// twin (as ActiveMQ's `stomp+ssl`, `mqtt+ssl`, ... transport schemes).
fn listener_label(protocol: &str, tls: &Option<TlsAcceptor>) -> String {
    match tls {
        Some(_) => format!("{protocol}+ssl"),
        None => protocol.to_owned(),
    }
}

/// The engine settings a configuration asks for.
pub fn engine_config(config: &Config) -> EngineConfig {
    let b = &config.broker;
    EngineConfig {
        dead_letter_queue: b.dead_letter_queue.clone(),
        max_redeliveries: b.max_redeliveries,
        default_prefetch: b.default_prefetch,
        memory_limit_bytes: b.memory_limit_bytes,
        disk_limit_bytes: b.disk_limit_bytes,
        flow_control: flow_control(b.flow_control),
        send_timeout: (b.send_timeout_ms > 0).then(|| Duration::from_millis(b.send_timeout_ms)),
        destinations: b
            .destinations
            .iter()
            .map(|d| DestinationPolicy {
                pattern: d.pattern.clone(),
                max_messages: d.max_messages,
                max_bytes: d.max_bytes,
                flow_control: d.flow_control.map(flow_control),
                max_redeliveries: d.max_redeliveries,
                dead_letter_queue: d.dead_letter_queue.clone(),
                prioritized_messages: d.prioritized_messages,
                max_priority: None,
            })
            .collect(),
        prioritized_messages: b.prioritized_messages,
        page_window: b.queue_page_window,
        // `paging` beside the journal, in the data directory.
        paging_dir: None,
    }
}

/// The journal settings a configuration asks for.
pub fn journal_options(config: &Config) -> JournalOptions {
    let s = &config.store;
    let mut options = JournalOptions::new(config.server.data_dir.join("journal"));
    options.sync = match s.sync {
        SyncMode::Always => SyncPolicy::Always,
        SyncMode::Interval => SyncPolicy::Interval(Duration::from_millis(s.sync_interval_ms)),
        SyncMode::Never => SyncPolicy::Never,
    };
    options.segment_bytes = s.segment_bytes;
    options.compact_live_ratio = s.compact_live_ratio;
    options.repair = s.repair;
    options.lazy_sync = Duration::from_millis(s.ack_sync_ms);
    options
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the gateway until SIGTERM or Ctrl-C, then shuts down gracefully: stop accepting, let
/// sessions finish what they have in flight (up to the grace period), close the store.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let prometheus = crate::metrics::install().context("cannot install the metrics recorder")?;
    let connections = ConnectionRegistry::new();
    let admin_state = AdminState::new(prometheus, connections.clone(), data_dir.clone());
    admin_state.set_auth(crate::admin_auth::AdminAuth::from_config(&config));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let tls = match &config.tls {
        Some(t) => Some(TlsAcceptor::from_config(t).context("cannot set up TLS ([tls])")?),
        None => None,
    };
    // The admin server starts first: /healthz answers and /readyz says 503 during recovery.
    let admin_tls_task = match (&tls, config.admin.enabled && config.admin.tls_enabled) {
        (Some(tls), true) => {
            let bind = config.admin.tls_bind;
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen for admin HTTPS on {bind}"))?;
            let listener = TlsListener::new(
                listener,
                tls.clone(),
                Duration::from_millis(ADMIN_HANDSHAKE_MS),
            )
            .with_context(|| format!("cannot listen for admin HTTPS on {bind}"))?;
            tracing::info!(address = %bind, "admin HTTPS listener ready");
            Some(tokio::spawn(admin::serve(
                listener,
                admin_state.clone(),
                shutdown_rx.clone(),
            )))
        }
        _ => None,
    };
    let admin_task = if config.admin.enabled {
        let listener = TcpListener::bind(config.admin.bind)
            .await
            .with_context(|| format!("cannot listen for admin HTTP on {}", config.admin.bind))?;
        tracing::info!(address = %config.admin.bind, "admin HTTP listener ready");
        Some(tokio::spawn(admin::serve(
            listener,
            admin_state.clone(),
            shutdown_rx.clone(),
        )))
    } else {
        None
    };
    let mut engine_cfg = engine_config(&config);
    // AMQP queues declared with `x-max-priority` are recovered with priority order (appended:
    // the configured policies come first).
    engine_cfg
        .destinations
        .extend(crate::amqp091::topology::priority_policies(
            &crate::amqp091::topology::topology_path(&config.server.data_dir),
        ));
    let journal = journal_options(&config);
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_cfg, journal))
        .await
        .context("recovery task failed")?
        .context("cannot open the store")?;
    let summary = engine.recovery_summary();
    tracing::info!(
        queues = summary.queues,
        messages = summary.messages,
        bytes = summary.bytes,
        truncated_bytes = summary.truncated_bytes,
        duration_ms = summary.duration.as_millis() as u64,
        "store recovered"
    );
    crate::metrics::record_recovery(summary);
    engine.set_virtual_topics(routes::VirtualTopics {
        enabled: config.broker.virtual_topics,
        selector_aware: config.broker.virtual_topic_selector_aware,
        topic_pattern: config.broker.virtual_topic_name.clone(),
        consumer_prefix: config.broker.virtual_topic_consumer_prefix.clone(),
    });
    admin_state.set_engine(engine.clone());
    crate::bridge::prepare(&engine, &config.routes).context("cannot set up the routes")?;
    let expiry = tokio::spawn(engine.clone().run_expiry(Duration::from_millis(
        config.broker.expiry_check_interval_ms.max(1),
    )));

    let mut listeners = JoinSet::new();
    let authenticator = Arc::new(Authenticator::from_config(&config));
    let limiter = Arc::new(ConnectionLimiter::from_config(&config.security));
    let tls_reload = tls.clone().map(|t| tokio::spawn(reload_tls_on_sighup(t)));
    // Each protocol gets a plain listener and, when [tls] is configured, a TLS twin.
    let with_tls = |enabled: bool, bind: SocketAddr, tls_enabled: bool, tls_bind: SocketAddr| {
        let mut binds = Vec::new();
        if enabled {
            binds.push((bind, None));
            if let (true, Some(tls)) = (tls_enabled, &tls) {
                binds.push((tls_bind, Some(tls.clone())));
            }
        }
        binds
    };
    let no_users = config.users.is_empty();
    let refusal_answers = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSAL_ANSWERS));
    let security_for = |bind: SocketAddr, tls: Option<TlsAcceptor>, handshake_ms: u64| {
        if no_users && !bind.ip().is_loopback() {
            tracing::warn!(
                address = %bind,
                "listener not bound to loopback and no [[users]] configured: it will refuse \
                 every client (see docs/security.md)"
            );
        }
        ListenerSecurity {
            limiter: limiter.clone(),
            tls,
            handshake_timeout: Duration::from_millis(handshake_ms),
            listener_is_loopback: bind.ip().is_loopback(),
            answer_refusals: true,
            refusal_answers: refusal_answers.clone(),
        }
    };
    let stomp_cfg = &config.listeners.stomp;
    let stomp_settings = Arc::new(StompSettings {
        limits: StompLimits {
            max_frame_bytes: stomp_cfg.max_frame_bytes,
            max_headers: stomp_cfg.max_headers,
            max_header_bytes: stomp_cfg.max_header_bytes,
        },
        heartbeat_floor: Duration::from_millis(stomp_cfg.heartbeat_min_ms),
        connect_timeout: Duration::from_millis(stomp_cfg.connect_timeout_ms),
        authenticator: authenticator.clone(),
        max_subscriptions: usize::try_from(config.security.max_subscriptions_per_connection)
            .unwrap_or(usize::MAX),
        create_needs_admin: config.security.implicit_create_needs_admin,
    });
    for (bind, tls) in with_tls(
        stomp_cfg.enabled,
        stomp_cfg.bind,
        stomp_cfg.tls_enabled,
        stomp_cfg.tls_bind,
    ) {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen for STOMP on {bind}"))?;
        tracing::info!(address = %bind, tls = tls.is_some(), "STOMP listener ready");
        let label = listener_label("stomp", &tls);
        let security = security_for(bind, tls, stomp_cfg.connect_timeout_ms);
        let settings = stomp_settings.clone();
        let engine = engine.clone();
        let shutdown = shutdown_rx.clone();
        listeners.spawn(accept(
            listener,
            connections.listener("stomp", &label),
            shutdown_rx.clone(),
            security,
            move |stream, peer| {
                stomp::session::serve(
                    stream,
                    peer,
                    engine.clone(),
                    settings.clone(),
                    shutdown.clone(),
                )
            },
        ));
    }
    let mqtt_cfg = &config.listeners.mqtt;
    let mqtt_settings = Arc::new(MqttSettings {
        limits: MqttLimits {
            max_packet_size: mqtt_cfg.max_packet_bytes,
        },
        max_inflight: mqtt_cfg.max_inflight,
        topic_alias_max: mqtt_cfg.topic_alias_max,
        max_keepalive: mqtt_cfg.max_keepalive,
        connect_timeout: Duration::from_millis(mqtt_cfg.connect_timeout_ms),
        authenticator: authenticator.clone(),
        max_subscriptions: usize::try_from(config.security.max_subscriptions_per_connection)
            .unwrap_or(usize::MAX),
    });
    // One session table for both MQTT listeners: a client id is one client on either.
    let mqtt_sessions = Arc::new(MqttSessions::default());
    for (bind, tls) in with_tls(
        mqtt_cfg.enabled,
        mqtt_cfg.bind,
        mqtt_cfg.tls_enabled,
        mqtt_cfg.tls_bind,
    ) {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen for MQTT on {bind}"))?;
        tracing::info!(address = %bind, tls = tls.is_some(), "MQTT listener ready");
        let label = listener_label("mqtt", &tls);
        let security = security_for(bind, tls, mqtt_cfg.connect_timeout_ms);
        let settings = mqtt_settings.clone();
        let sessions = mqtt_sessions.clone();
        let engine = engine.clone();
        let shutdown = shutdown_rx.clone();
        listeners.spawn(accept(
            listener,
            connections.listener("mqtt", &label),
            shutdown_rx.clone(),
            security,
            move |stream, peer| {
                crate::mqtt::session::serve(
                    stream,
                    peer,
                    engine.clone(),
                    settings.clone(),
                    sessions.clone(),
                    shutdown.clone(),
                )
            },
        ));
    }

    let log = open_log(&config).await?;
    admin_state.set_log(log.clone());
    let kafka_cfg = &config.listeners.kafka;
    let mut kafka_tasks = Vec::new();
    if kafka_cfg.enabled {
        let settings = KafkaSettings {
            limits: codecs::kafka::KafkaLimits {
                max_frame_bytes: kafka_cfg.max_frame_bytes,
            },
            node_id: kafka_cfg.node_id,
            advertised_host: kafka_cfg
                .advertised_host
                .clone()
                .unwrap_or_else(|| kafka_cfg.bind.ip().to_string()),
            advertised_port: kafka_cfg.advertised_port.unwrap_or(kafka_cfg.bind.port()),
            auto_create_streams: config.log.auto_create_streams,
            default_partitions: config.log.default_partitions,
            group_initial_rebalance_delay: Duration::from_millis(
                kafka_cfg.group_initial_rebalance_delay_ms,
            ),
            authenticator: authenticator.clone(),
            sasl_mechanisms: kafka_cfg.sasl_mechanisms.clone(),
            require_sasl: kafka_cfg.require_sasl,
        };
        let broker = Arc::new(KafkaBroker::new(log.clone(), settings));
        admin_state.set_kafka(broker.clone());
        kafka_tasks.push(tokio::spawn(
            broker.clone().run_group_expiry(Duration::from_millis(250)),
        ));
        for (bind, tls) in with_tls(
            true,
            kafka_cfg.bind,
            kafka_cfg.tls_enabled,
            kafka_cfg.tls_bind,
        ) {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen for Kafka on {bind}"))?;
            tracing::info!(address = %bind, tls = tls.is_some(), "Kafka listener ready");
            // Clients of the TLS listener are sent back to it (Metadata, FindCoordinator).
            let advertised = tls.is_some().then(|| crate::kafka::AdvertisedListener {
                host: kafka_cfg
                    .advertised_host
                    .clone()
                    .unwrap_or_else(|| kafka_cfg.tls_bind.ip().to_string()),
                port: kafka_cfg
                    .tls_advertised_port
                    .unwrap_or(kafka_cfg.tls_bind.port()),
            });
            let label = listener_label("kafka", &tls);
            // Kafka has no error for "too many connections": a refused client is just closed.
            let security = ListenerSecurity {
                answer_refusals: false,
                ..security_for(bind, tls, KAFKA_HANDSHAKE_MS)
            };
            let broker = broker.clone();
            let shutdown = shutdown_rx.clone();
            listeners.spawn(accept(
                listener,
                connections.listener("kafka", &label),
                shutdown_rx.clone(),
                security,
                move |stream, peer| {
                    crate::kafka::session::serve(
                        stream,
                        peer,
                        broker.clone(),
                        advertised.clone(),
                        shutdown.clone(),
                    )
                },
            ));
        }
    }
    let route_set = Arc::new(std::sync::Mutex::new(crate::bridge::RouteSet::start(
        &engine,
        &log,
        &config.routes,
    )));
    admin_state.set_routes(route_set.clone());
    *RELOAD_TARGET.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(ReloadTarget {
        engine: engine.clone(),
        log: log.clone(),
        route_set: route_set.clone(),
        tls: tls.clone(),
    }));
    kafka_tasks.push(tokio::spawn(reload_on_sighup()));
    kafka_tasks.push(tokio::spawn(enforce_retention(
        log.clone(),
        Duration::from_millis(config.log.retention_check_interval_ms.max(1)),
    )));

    let amqp_cfg = &config.listeners.amqp;
    if amqp_cfg.enabled {
        let topology = crate::amqp091::topology::topology_path(&config.server.data_dir);
        let amqp091_broker = Arc::new(
            crate::amqp091::Amqp091Broker::with_topology(topology.clone()).with_log(log.clone()),
        );
        // Durable queues first, so that the bindings `load` restores find every one of them.
        let queues = crate::amqp091::topology::restore_queues(&engine, &amqp091_broker, &topology)
            .with_context(|| format!("cannot read the AMQP topology {}", topology.display()))?;
        let (exchanges, bindings) = crate::amqp091::topology::load(&engine, &topology)
            .with_context(|| format!("cannot read the AMQP topology {}", topology.display()))?;
        tracing::info!(exchanges, bindings, queues, "AMQP topology restored");
        let port = Arc::new(crate::amqp_port::AmqpPort {
            engine: engine.clone(),
            amqp091: Arc::new(crate::amqp091::Amqp091Settings {
                frame_max: amqp_cfg.frame_max,
                channel_max: amqp_cfg.channel_max,
                heartbeat_s: amqp_cfg.heartbeat_s,
                connect_timeout: Duration::from_millis(amqp_cfg.connect_timeout_ms),
                max_message_bytes: 128 * 1024 * 1024,
                authenticator: authenticator.clone(),
                max_consumers: usize::try_from(config.security.max_subscriptions_per_connection)
                    .unwrap_or(usize::MAX),
            }),
            amqp091_broker,
        });
        // The TLS twin (5671) sniffs the protocol header inside TLS, as the plain port does.
        for (bind, tls) in with_tls(true, amqp_cfg.bind, amqp_cfg.tls_enabled, amqp_cfg.tls_bind) {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen for AMQP on {bind}"))?;
            tracing::info!(address = %bind, tls = tls.is_some(), "AMQP listener ready");
            let label = listener_label("amqp", &tls);
            let security = security_for(bind, tls, amqp_cfg.connect_timeout_ms);
            let port = port.clone();
            let shutdown = shutdown_rx.clone();
            listeners.spawn(accept(
                listener,
                connections.listener("amqp", &label),
                shutdown_rx.clone(),
                security,
                move |stream, peer| {
                    crate::amqp_port::serve(stream, peer, port.clone(), shutdown.clone())
                },
            ));
        }
    }

    let openwire_cfg = &config.listeners.openwire;
    if openwire_cfg.enabled {
        let settings = Arc::new(OpenWireSettings {
            limits: OpenWireLimits {
                max_frame_size: openwire_cfg.max_frame_bytes,
                ..OpenWireLimits::default()
            },
            max_inactivity: Duration::from_millis(openwire_cfg.max_inactivity_ms),
            connect_timeout: Duration::from_millis(openwire_cfg.connect_timeout_ms),
            authenticator: authenticator.clone(),
            max_consumers: usize::try_from(config.security.max_subscriptions_per_connection)
                .unwrap_or(usize::MAX),
            max_sessions: usize::try_from(config.security.max_sessions_per_connection)
                .unwrap_or(usize::MAX),
        });
        // One set of temporary destinations for both listeners (ssl:// 61617 is the TLS twin).
        let shared = Arc::new(OpenWireShared::default());
        for (bind, tls) in with_tls(
            true,
            openwire_cfg.bind,
            openwire_cfg.tls_enabled,
            openwire_cfg.tls_bind,
        ) {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen for OpenWire on {bind}"))?;
            tracing::info!(address = %bind, tls = tls.is_some(), "OpenWire listener ready");
            let label = listener_label("openwire", &tls);
            let security = security_for(bind, tls, openwire_cfg.connect_timeout_ms);
            let settings = settings.clone();
            let shared = shared.clone();
            let engine = engine.clone();
            let shutdown = shutdown_rx.clone();
            listeners.spawn(accept(
                listener,
                connections.listener("openwire", &label),
                shutdown_rx.clone(),
                security,
                move |stream, peer| {
                    crate::openwire::session::serve(
                        stream,
                        peer,
                        engine.clone(),
                        settings.clone(),
                        shared.clone(),
                        shutdown.clone(),
                    )
                },
            ));
        }
    }

    admin_state.set_listeners_bound();
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    if tokio::time::timeout(grace, async {
        while listeners.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("sessions still busy after the grace period; closing anyway");
        listeners.abort_all();
    }
    expiry.abort();
    if let Some(task) = tls_reload {
        task.abort();
    }
    if let Some(task) = admin_task {
        // Graceful: in-flight admin requests finish (within the grace period).
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("admin requests still busy after the grace period");
        }
    }
    if let Some(task) = admin_tls_task {
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("admin HTTPS requests still busy after the grace period");
        }
    }
    for task in kafka_tasks {
        task.abort();
    }
    route_set
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stop_all();
    let closing_log = log.clone();
    tokio::task::spawn_blocking(move || closing_log.close())
        .await
        .context("log close task failed")?
        .context("cannot close the log cleanly")?;
    let closing = engine.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("store close task failed")?
        .context("cannot close the store cleanly")?;
    tracing::info!("store closed; bye");
    Ok(())
}

/// Opens the partitioned log under `<data_dir>/log` and creates (or re-configures) the
/// streams of `[[streams]]`.
async fn open_log(config: &Config) -> anyhow::Result<Arc<Log>> {
    let mut options = LogOptions::new(config.server.data_dir.join("log"));
    options.segment_bytes = config.log.segment_bytes;
    options.repair = config.store.repair;
    options.sync = match config.store.sync {
        SyncMode::Always => LogSync::Always,
        SyncMode::Interval | SyncMode::Never => LogSync::Never,
    };
    let streams = config.streams.clone();
    let log = tokio::task::spawn_blocking(move || -> anyhow::Result<Log> {
        let log = Log::open(options).context("cannot open the log")?;
        for s in &streams {
            let cfg = StreamConfig {
                partitions: s.partitions,
                retention_ms: s.retention_ms,
                retention_bytes: s.retention_bytes,
            };
            log.create_stream(&s.name, cfg)
                .with_context(|| format!("cannot create stream {:?}", s.name))?;
        }
        Ok(log)
    })
    .await
    .context("log recovery task failed")??;
    for t in &log.recovery_report().truncations {
        tracing::warn!(path = %t.path.display(), position = t.position, reason = %t.reason, "log recovery truncated a file");
    }
    tracing::info!(streams = log.streams().len(), "log opened");
    Ok(Arc::new(log))
}

/// The configuration file the gateway was started with, for reloads (unset: the embedded
/// default, nothing to reload).
static CONFIG_PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Records the configuration file for reloads on SIGHUP. Call before [`run`].
pub fn set_config_path(path: std::path::PathBuf) {
    let _ = CONFIG_PATH.set(path);
}

/// What a reload acts on: the running engine, log and routes, and the TLS certificate.
pub struct ReloadTarget {
    engine: Arc<routes::Engine>,
    log: Arc<Log>,
    route_set: Arc<std::sync::Mutex<crate::bridge::RouteSet>>,
    tls: Option<TlsAcceptor>,
}

/// The running gateway's reload target, for `POST /api/reload` (set by [`run`]).
static RELOAD_TARGET: std::sync::Mutex<Option<Arc<ReloadTarget>>> = std::sync::Mutex::new(None);

/// What a successful reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// The configuration file read.
    pub config: String,
    /// Streams of `[[streams]]` created or re-configured.
    pub streams: usize,
    /// Routes in the new configuration.
    pub routes: usize,
    /// Routes stopped (removed or changed).
    pub stopped: usize,
    /// Routes started (new or changed).
    pub started: usize,
    /// `"reloaded"`, `"not configured"`, or why the certificate in use was kept.
    pub tls: String,
}

/// Why a reload changed nothing (or, for [`ReloadFailure::RoutesFailed`], not everything).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadFailure {
    /// The gateway runs on the embedded default configuration: there is no file to re-read.
    #[error("running on the embedded default configuration: nothing to reload")]
    NoConfigFile,
    /// The gateway is not running yet (or any more).
    #[error("the gateway is not running")]
    NotRunning,
    /// The file does not validate: every error, as `FILE:LINE: key: message`.
    #[error("configuration refused ({} errors); the routes in force stay", .0.len())]
    Invalid(Vec<String>),
    /// A `[[streams]]` entry could not be applied.
    #[error("streams refused; the routes in force stay: {0}")]
    Streams(String),
    /// Some routes could not be started (the others are in force).
    #[error("routes could not all be started: {0}")]
    RoutesFailed(String),
}

/// Re-reads the configuration file; if it validates, creates (or re-configures) its
/// `[[streams]]`, replaces the routes that changed without touching any connection, and
/// reloads the `[tls]` certificate files; if it does not validate, changes nothing. What
/// SIGHUP and `POST /api/reload` do. Other sections need a restart.
pub async fn reload() -> Result<ReloadOutcome, ReloadFailure> {
    reload_target(true).await
}

/// [`reload`], with or without the TLS certificate (SIGHUP reloads it in its own task).
async fn reload_target(with_tls: bool) -> Result<ReloadOutcome, ReloadFailure> {
    // One reload at a time.
    static RELOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = RELOADING.lock().await;
    let target = RELOAD_TARGET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or(ReloadFailure::NotRunning)?;
    let path = CONFIG_PATH.get().ok_or(ReloadFailure::NoConfigFile)?;
    let config = Config::from_file(path).map_err(|errors| {
        ReloadFailure::Invalid(errors.errors.iter().map(ToString::to_string).collect())
    })?;
    // Selectors are parsed by the engine, not by the config crate: checked here, before any
    // stream or route changes, so that a bad one is refused like any invalid key.
    let bad_selectors: Vec<String> = config
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let text = r.selector.as_deref()?;
            ::routes::selector::Selector::parse(text)
                .err()
                .map(|e| format!("routes[{i}].selector: {e}"))
        })
        .collect();
    if !bad_selectors.is_empty() {
        return Err(ReloadFailure::Invalid(bad_selectors));
    }
    // The one stream change the log refuses, checked for every stream before any is applied,
    // so that a refused reload leaves no stream half changed.
    let bad_streams: Vec<String> = config
        .streams
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let existing = target.log.stream_config(&s.name)?.partitions;
            (existing != s.partitions).then(|| {
                format!(
                    "streams[{i}].partitions: stream {:?} has {existing} partitions; the count \
                     of an existing stream cannot change",
                    s.name
                )
            })
        })
        .collect();
    if !bad_streams.is_empty() {
        return Err(ReloadFailure::Invalid(bad_streams));
    }
    let l = target.log.clone();
    let streams = config.streams.clone();
    let created = tokio::task::spawn_blocking(move || {
        for s in &streams {
            let cfg = StreamConfig {
                partitions: s.partitions,
                retention_ms: s.retention_ms,
                retention_bytes: s.retention_bytes,
            };
            l.create_stream(&s.name, cfg)
                .map_err(|e| format!("stream {:?}: {e}", s.name))?;
        }
        Ok::<(), String>(())
    })
    .await;
    if let Ok(Err(e)) | Err(e) = created.map_err(|e| e.to_string()) {
        return Err(ReloadFailure::Streams(e));
    }
    let result = target
        .route_set
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .reload(&target.engine, &target.log, &config.routes);
    let tls = match &target.tls {
        _ if !with_tls => "reloaded by its own SIGHUP handler".to_string(),
        None => "not configured".to_string(),
        Some(tls) => match tls.reload() {
            Ok(()) => "reloaded".to_string(),
            Err(e) => format!("kept the certificate in use: {e}"),
        },
    };
    match result {
        Ok((stopped, started)) => Ok(ReloadOutcome {
            config: path.display().to_string(),
            streams: config.streams.len(),
            routes: config.routes.len(),
            stopped,
            started,
            tls,
        }),
        Err(e) => Err(ReloadFailure::RoutesFailed(e.to_string())),
    }
}

/// On SIGHUP: [`reload`] (the TLS certificate is reloaded by its own SIGHUP task), logging
/// the outcome and every error.
async fn reload_on_sighup() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: routes will not reload");
            return;
        };
        while hup.recv().await.is_some() {
            match reload_target(false).await {
                Ok(o) => tracing::info!(
                    stopped = o.stopped,
                    started = o.started,
                    routes = o.routes,
                    "routes reloaded"
                ),
                Err(ReloadFailure::Invalid(errors)) => {
                    for e in &errors {
                        tracing::error!("{e}");
                    }
                    tracing::error!(
                        errors = errors.len(),
                        "configuration refused on reload; the routes in force stay"
                    );
                }
                Err(e @ ReloadFailure::NoConfigFile) => tracing::warn!("SIGHUP: {e}"),
                Err(e) => tracing::error!("SIGHUP: {e}"),
            }
        }
    }
}

/// Applies every stream's retention each `period`.
async fn enforce_retention(log: Arc<Log>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        let l = log.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        match tokio::task::spawn_blocking(move || l.enforce_retention(now)).await {
            Ok(Ok(report)) if !report.deleted.is_empty() => tracing::info!(
                segments = report.deleted.len(),
                bytes = report.bytes_deleted(),
                "log retention deleted segments"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "log retention failed"),
            Err(e) => tracing::warn!(error = %e, "log retention task failed"),
        }
    }
}

/// Accepts connections until shutdown, serving each with `serve`; then waits for the sessions,
/// which see the same shutdown signal and finish what they have in flight.
///
/// - Security: connections past the `[security]` limits are counted as rejected and served
///   only to be refused in their protocol (the session's authentication step refuses a
///   [`PeerInfo`] marked `refused`), within [`REFUSAL_DEADLINE`] and [`REFUSAL_READ_BUDGET`]
///   bytes, at most [`MAX_REFUSAL_ANSWERS`] at once; Kafka listeners, and refusals past that
///   number, are closed at once (as ActiveMQ's `maximumConnections`). On a TLS listener the
///   handshake runs in the connection's own task (bounded by the handshake timeout) before
///   `serve` gets the stream and the [`PeerInfo`] to authenticate with.
/// - Observability: each connection is registered with `tracker` (connection metrics,
///   `/api/connections`), its bytes (after TLS) are counted by the [`MeteredStream`] it is
///   served on, and its session runs inside the connection's tracing span (see
///   [`crate::connections`]).
pub(crate) async fn accept<F, Fut>(
    listener: TcpListener,
    tracker: ListenerTracker,
    mut shutdown: watch::Receiver<bool>,
    security: ListenerSecurity,
    serve: F,
) where
    F: Fn(MeteredStream<ClientStream>, PeerInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let permit = match security.permit(peer) {
                        Ok(permit) => permit,
                        Err(refused) => {
                            tracing::warn!(%peer, reason = %refused, "connection refused");
                            tracker.refused();
                            tracker.limit_refused(refused.limit_name());
                            // Answered in the protocol when there is room for it (bounded in
                            // time, bytes and number); otherwise closed at once.
                            let answer = security
                                .answer_refusals
                                .then(|| security.refusal_answers.clone().try_acquire_owned().ok())
                                .flatten();
                            if let Some(place) = answer {
                                let _ = stream.set_nodelay(true);
                                let security = security.clone();
                                let serve = serve.clone();
                                let info = tracker.refused_info(peer);
                                sessions.spawn(async move {
                                    let _place = place;
                                    let answer = async {
                                        if let Ok((stream, mut peer_info)) =
                                            security.admit(stream, peer).await
                                        {
                                            peer_info.refused = Some(refused);
                                            let stream = MeteredStream::new(stream, info)
                                                .with_read_budget(REFUSAL_READ_BUDGET);
                                            serve(stream, peer_info).await;
                                        }
                                    };
                                    let _ = tokio::time::timeout(REFUSAL_DEADLINE, answer).await;
                                });
                            }
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let security = security.clone();
                    let serve = serve.clone();
                    let connection = tracker.accepted(peer);
                    let info = connection.info().clone();
                    sessions.spawn(connection.run(async move {
                        let _permit = permit;
                        // Both boxed so that the task itself stays small: a future is as large
                        // as the largest state it can be in, and these two are large (the TLS
                        // handshake, and the whole session with its handshake and run loop).
                        match Box::pin(security.admit(stream, peer)).await {
                            Ok((stream, peer_info)) => {
                                Box::pin(serve(MeteredStream::new(stream, info), peer_info)).await
                            }
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                crate::connections::reject("TLS handshake failed");
                                if e.kind() == std::io::ErrorKind::TimedOut {
                                    crate::connections::limit_refused("handshake_timeout");
                                }
                            }
                        }
                    }));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}

/// Reloads the `[tls]` certificate, key and client CA files on SIGHUP (as mosquitto does), for
/// every TLS listener; a reload that fails is logged and the certificate in use is kept.
async fn reload_tls_on_sighup(tls: TlsAcceptor) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: TLS certificates reload only on restart");
            return;
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP: TLS reload failed; keeping the current certificate")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tls;
    }
}
