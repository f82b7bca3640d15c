//! Start-up, listeners and graceful shutdown.

use crate::mqtt::{MqttSessions, MqttSettings};
use crate::openwire::{OpenWireSettings, OpenWireShared};
use crate::stomp::{self, StompSettings};
use anyhow::Context;
use codecs::mqtt::MqttLimits;
use codecs::openwire::OpenWireLimits;
use codecs::stomp::StompLimits;
use config::{Config, FlowControlPolicy, SyncMode};
use routes::store::{JournalOptions, SyncPolicy};
use routes::{DestinationPolicy, Engine, EngineConfig, FlowControl};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

fn flow_control(policy: FlowControlPolicy) -> FlowControl {
    match policy {
        FlowControlPolicy::Block => FlowControl::Block,
        FlowControlPolicy::Fail => FlowControl::Fail,
        FlowControlPolicy::DropOldest => FlowControl::DropOldest,
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
            })
            .collect(),
        prioritized_messages: b.prioritized_messages,
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
    let engine_cfg = engine_config(&config);
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
    let expiry = tokio::spawn(engine.clone().run_expiry(Duration::from_millis(
        config.broker.expiry_check_interval_ms.max(1),
    )));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut listeners = JoinSet::new();
    let stomp_cfg = &config.listeners.stomp;
    if stomp_cfg.enabled {
        let listener = TcpListener::bind(stomp_cfg.bind)
            .await
            .with_context(|| format!("cannot listen for STOMP on {}", stomp_cfg.bind))?;
        tracing::info!(address = %stomp_cfg.bind, "STOMP listener ready");
        let settings = Arc::new(StompSettings {
            limits: StompLimits {
                max_frame_bytes: stomp_cfg.max_frame_bytes,
                max_headers: stomp_cfg.max_headers,
                max_header_bytes: stomp_cfg.max_header_bytes,
            },
            heartbeat_floor: Duration::from_millis(stomp_cfg.heartbeat_min_ms),
            connect_timeout: Duration::from_millis(stomp_cfg.connect_timeout_ms),
        });
        let engine = engine.clone();
        let shutdown = shutdown_rx.clone();
        listeners.spawn(accept(
            listener,
            shutdown_rx.clone(),
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
    if mqtt_cfg.enabled {
        let listener = TcpListener::bind(mqtt_cfg.bind)
            .await
            .with_context(|| format!("cannot listen for MQTT on {}", mqtt_cfg.bind))?;
        tracing::info!(address = %mqtt_cfg.bind, "MQTT listener ready");
        let settings = Arc::new(MqttSettings {
            limits: MqttLimits {
                max_packet_size: mqtt_cfg.max_packet_bytes,
            },
            max_inflight: mqtt_cfg.max_inflight,
            topic_alias_max: mqtt_cfg.topic_alias_max,
            max_keepalive: mqtt_cfg.max_keepalive,
            connect_timeout: Duration::from_millis(mqtt_cfg.connect_timeout_ms),
        });
        let sessions = Arc::new(MqttSessions::default());
        let engine = engine.clone();
        let shutdown = shutdown_rx.clone();
        listeners.spawn(accept(
            listener,
            shutdown_rx.clone(),
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

    let openwire_cfg = &config.listeners.openwire;
    if openwire_cfg.enabled {
        let listener = TcpListener::bind(openwire_cfg.bind)
            .await
            .with_context(|| format!("cannot listen for OpenWire on {}", openwire_cfg.bind))?;
        tracing::info!(address = %openwire_cfg.bind, "OpenWire listener ready");
        let settings = Arc::new(OpenWireSettings {
            limits: OpenWireLimits {
                max_frame_size: openwire_cfg.max_frame_bytes,
                ..OpenWireLimits::default()
            },
            max_inactivity: Duration::from_millis(openwire_cfg.max_inactivity_ms),
            connect_timeout: Duration::from_millis(openwire_cfg.connect_timeout_ms),
        });
        let shared = Arc::new(OpenWireShared::default());
        let engine = engine.clone();
        let shutdown = shutdown_rx.clone();
        listeners.spawn(accept(
            listener,
            shutdown_rx.clone(),
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
    let closing = engine.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("store close task failed")?
        .context("cannot close the store cleanly")?;
    tracing::info!("store closed; bye");
    Ok(())
}

/// Accepts connections until shutdown, serving each with `serve`; then waits for the sessions,
/// which see the same shutdown signal and finish what they have in flight.
async fn accept<F, Fut>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    sessions.spawn(serve(stream, peer));
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
