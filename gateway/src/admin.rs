//! The admin HTTP server (`[admin]`, default `127.0.0.1:8161`): Prometheus `/metrics`,
//! `/healthz`, `/readyz`, and a JSON API under `/api/` that the CLI subcommands call.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text format (see `docs/operations.md`) |
//! | `GET /healthz` | 200 while the process serves HTTP |
//! | `GET /readyz` | 200 once the store is recovered and every listener is bound, else 503 |
//! | `GET /api/overview` | broker-wide figures |
//! | `GET /api/queues` | every queue and durable subscription with depths and counters |
//! | `GET /api/queues/{name}` | one queue |
//! | `DELETE /api/queues/{name}` | delete a queue (or durable subscription) and its messages |
//! | `POST /api/queues/{name}/purge` | remove its ready messages |
//! | `GET /api/queues/{name}/messages?limit=N&max_body=B` | browse without consuming |
//! | `POST /api/dlq/replay?queue=Q[&dlq=D][&limit=N]` | move dead letters back to `Q` |
//! | `GET /api/connections` | open connections |
//! | `GET /api/consumers` | open consumers |
//! | `POST /api/reload` | re-read the configuration file as SIGHUP does (routes, streams, TLS certificate); 400 with `errors` when it does not validate |
//!
//! Errors are JSON `{"error": "..."}` with 404 (unknown queue), 400 (bad request) or 503 (store
//! not open yet). The API listens on loopback by default: it can delete data.

use crate::connections::ConnectionRegistry;
use crate::metrics::{self as m, QueueLabels};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use routes::{BrowsedMessage, Engine, EngineError, PropertyValue, QueueStats, QueueStatsKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the admin server reads: the engine (once recovered), connections, metrics.
pub struct AdminState {
    prometheus: PrometheusHandle,
    connections: Arc<ConnectionRegistry>,
    data_dir: PathBuf,
    engine: OnceLock<Arc<Engine>>,
    listeners_bound: AtomicBool,
    labels: QueueLabels,
}

impl AdminState {
    /// State for a gateway whose store is not open yet.
    pub fn new(
        prometheus: PrometheusHandle,
        connections: Arc<ConnectionRegistry>,
        data_dir: PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            prometheus,
            connections,
            data_dir,
            engine: OnceLock::new(),
            listeners_bound: AtomicBool::new(false),
            labels: QueueLabels::default(),
        })
    }

    /// The store is recovered: the API can use the engine.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.engine.set(engine);
    }

    /// Every configured listener is bound.
    pub fn set_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::Relaxed);
    }

    fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.engine.get().ok_or(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is still recovering".into(),
        ))
    }
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/overview", get(overview))
        .route("/api/queues", get(list_queues))
        .route("/api/queues/{name}", get(queue).delete(delete_queue))
        .route("/api/queues/{name}/purge", post(purge_queue))
        .route("/api/queues/{name}/messages", get(browse))
        .route("/api/dlq/replay", post(replay))
        .route("/api/connections", get(connections))
        .route("/api/consumers", get(consumers))
        .route("/api/reload", post(reload))
        .with_state(state)
}

/// `POST /api/reload`: what SIGHUP does (see [`crate::server::reload`]). 200 with what was
/// reloaded; 400 with `errors` (each `FILE:LINE: key: message`) when the file does not
/// validate, or with `error` when there is no file or a stream is refused (the routes in force
/// stay); 500 when some routes could not be started.
async fn reload() -> Response {
    use crate::server::ReloadFailure;
    match crate::server::reload().await {
        Ok(outcome) => {
            tracing::info!(
                routes = outcome.routes,
                stopped = outcome.stopped,
                started = outcome.started,
                "configuration reloaded through the admin API"
            );
            (
                StatusCode::OK,
                Json(json!({ "reloaded": true, "result": outcome })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin API reload refused");
            let (status, errors) = match &e {
                ReloadFailure::Invalid(errors) => (StatusCode::BAD_REQUEST, errors.clone()),
                ReloadFailure::NoConfigFile | ReloadFailure::Streams(_) => {
                    (StatusCode::BAD_REQUEST, Vec::new())
                }
                ReloadFailure::NotRunning => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
                ReloadFailure::RoutesFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, Vec::new()),
            };
            let body = json!({ "reloaded": false, "error": e.to_string(), "errors": errors });
            (status, Json(body)).into_response()
        }
    }
}

/// An API failure: status and message, sent as `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match e {
            EngineError::UnknownDestination(_) => StatusCode::NOT_FOUND,
            EngineError::InvalidDestination(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    if let Some(engine) = state.engine.get() {
        m::refresh(engine, &state.data_dir, &state.labels);
    }
    state.prometheus.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
        .into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, Json<Value>) {
    let recovered = state.engine.get().is_some();
    let bound = state.listeners_bound.load(Ordering::Relaxed);
    let ready = recovered && bound;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "store_recovered": recovered,
            "listeners_bound": bound,
        })),
    )
}

fn queue_json(q: &QueueStats) -> Value {
    let c = &q.counters;
    let mut v = json!({
        "name": q.name,
        "kind": "queue",
        "ready": q.ready,
        "unacked": q.unacked,
        "messages": q.ready + q.unacked,
        "consumers": q.consumers,
        "bytes": q.bytes,
        "durable": q.durable,
        "enqueued": c.enqueued,
        "delivered": c.delivered,
        "redelivered": c.redelivered,
        "acknowledged": c.acknowledged,
        "dead_lettered": c.dead_lettered,
        "expired": c.expired,
        "average_residence_ms": c.acknowledged_residence_ms.checked_div(c.acknowledged).unwrap_or(0),
    });
    if let (QueueStatsKind::Subscription { pattern, durable }, Value::Object(map)) =
        (&q.kind, &mut v)
    {
        map.insert("kind".into(), json!("subscription"));
        map.insert("pattern".into(), json!(pattern));
        map.insert("subscription".into(), json!(durable));
    }
    v
}

async fn overview(State(state): State<Arc<AdminState>>) -> ApiResult {
    let engine = state.engine()?;
    let g = engine.gauges();
    let queues = engine.queue_stats();
    let summary = engine.recovery_summary();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "connections": state.connections.list().len(),
        "sessions": g.sessions,
        "consumers": g.consumers,
        "producers": g.producers,
        "producers_blocked": g.blocked_producers,
        "transactions_open": routes::open_transactions(),
        "queues": queues.len(),
        "messages": queues.iter().map(|q| q.ready + q.unacked).sum::<usize>(),
        "memory_used_bytes": g.memory_used,
        "memory_limit_bytes": g.memory_limit,
        "store_used_bytes": g.journal.bytes,
        "store_limit_bytes": g.disk_limit,
        "durable_subscriptions": g.durable_subscriptions,
        "inactive_durable_subscriptions": g.inactive_durable_subscriptions,
        "recovery": {
            "queues": summary.queues,
            "messages": summary.messages,
            "bytes": summary.bytes,
            "truncated_bytes": summary.truncated_bytes,
            "duration_ms": summary.duration.as_millis() as u64,
        },
    })))
}

async fn list_queues(State(state): State<Arc<AdminState>>) -> ApiResult {
    let engine = state.engine()?;
    let queues: Vec<Value> = engine.queue_stats().iter().map(queue_json).collect();
    Ok(Json(json!({ "queues": queues })))
}

async fn queue(State(state): State<Arc<AdminState>>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let engine = state.engine()?;
    let q = engine
        .queue_stats_of(&name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no queue named {name}")))?;
    Ok(Json(queue_json(&q)))
}

async fn delete_queue(
    State(state): State<Arc<AdminState>>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let engine = state.engine()?;
    let (messages, durable) = engine.delete_queue(&name, false, false)?;
    durable.await?;
    Ok(Json(
        json!({ "queue": name, "deleted": true, "messages": messages }),
    ))
}

async fn purge_queue(
    State(state): State<Arc<AdminState>>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let engine = state.engine()?;
    let (purged, durable) = engine.purge_queue(&name)?;
    durable.await?;
    Ok(Json(json!({ "queue": name, "purged": purged })))
}

/// `?limit=&max_body=` of a browse.
#[derive(Deserialize)]
struct BrowseParams {
    limit: Option<usize>,
    max_body: Option<usize>,
}

fn property_json(v: &PropertyValue) -> Value {
    match v {
        PropertyValue::Bool(b) => json!(b),
        PropertyValue::Byte(n) => json!(n),
        PropertyValue::Short(n) => json!(n),
        PropertyValue::Int(n) => json!(n),
        PropertyValue::Long(n) => json!(n),
        PropertyValue::Float(n) => json!(n),
        PropertyValue::Double(n) => json!(n),
        PropertyValue::String(s) => json!(s),
        PropertyValue::Bytes(b) => json!(hex(b)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn browsed_json(b: &BrowsedMessage, max_body: usize) -> Value {
    let m = &b.message;
    let shown = m.body.get(..max_body.min(m.body.len())).unwrap_or_default();
    let mut v = json!({
        "seq": b.seq,
        "message_id": m.message_id,
        "address": m.address,
        "state": if b.unacked { "unacked" } else { "ready" },
        "delivery_count": b.delivery_count,
        "persistent": m.persistent,
        "priority": m.priority,
        "timestamp": m.timestamp,
        "expiration": m.expiration,
        "correlation_id": m.correlation_id,
        "reply_to": m.reply_to,
        "type": m.message_type,
        "content_type": m.content_type,
        "body_kind": format!("{:?}", m.body_kind).to_lowercase(),
        "body_size": m.body.len(),
        "body_truncated": shown.len() < m.body.len(),
        "properties": m.properties.iter().map(|(k, v)| (k.clone(), property_json(v))).collect::<Map<String, Value>>(),
    });
    if let Value::Object(map) = &mut v {
        match std::str::from_utf8(shown) {
            Ok(text) => map.insert("body".into(), json!(text)),
            Err(_) => map.insert("body_hex".into(), json!(hex(shown))),
        };
    }
    v
}

async fn browse(
    State(state): State<Arc<AdminState>>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<BrowseParams>,
) -> ApiResult {
    let engine = state.engine()?;
    let limit = params.limit.unwrap_or(100).min(10_000);
    let max_body = params.max_body.unwrap_or(4096);
    let messages = engine.browse_queue(&name, limit)?;
    let list: Vec<Value> = messages.iter().map(|b| browsed_json(b, max_body)).collect();
    Ok(Json(json!({ "queue": name, "messages": list })))
}

/// `?queue=&dlq=&limit=` of a replay.
#[derive(Deserialize)]
struct ReplayParams {
    queue: Option<String>,
    dlq: Option<String>,
    limit: Option<usize>,
}

async fn replay(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<ReplayParams>,
) -> ApiResult {
    let engine = state.engine()?;
    let dlq = match (&params.dlq, &params.queue) {
        (Some(dlq), _) => dlq.clone(),
        (None, Some(queue)) => engine.dead_letter_queue_of(queue),
        (None, None) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "give the original queue (queue=) or the dead-letter queue (dlq=)".into(),
            ))
        }
    };
    let limit = params.limit.unwrap_or(usize::MAX);
    let (moved, durable) = engine.replay_dead_letters(&dlq, params.queue.as_deref(), limit)?;
    durable.await?;
    Ok(Json(
        json!({ "dlq": dlq, "queue": params.queue, "moved": moved }),
    ))
}

async fn connections(State(state): State<Arc<AdminState>>) -> ApiResult {
    let list: Vec<Value> = state
        .connections
        .list()
        .iter()
        .map(|c| {
            let since = c
                .since
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            json!({
                "id": c.id,
                "protocol": c.protocol,
                "listener": &*c.listener,
                "peer": c.peer.to_string(),
                "user": c.user(),
                "client_id": c.client_id(),
                "since_ms": since,
                "established": c.is_established(),
                "sessions": c.sessions(),
                "bytes_in": c.bytes_in(),
                "bytes_out": c.bytes_out(),
            })
        })
        .collect();
    Ok(Json(json!({ "connections": list })))
}

async fn consumers(State(state): State<Arc<AdminState>>) -> ApiResult {
    let engine = state.engine()?;
    let by_session: std::collections::HashMap<u64, u64> = state
        .connections
        .list()
        .iter()
        .flat_map(|c| c.sessions().into_iter().map(move |s| (s, c.id)))
        .collect();
    let list: Vec<Value> = engine
        .consumer_infos()
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "connection": by_session.get(&c.session),
                "session": c.session,
                "client_id": c.client_id,
                "queues": c.queues,
                "prefetch": c.prefetch,
                "unacked": c.unacked,
                "selector": c.selector,
            })
        })
        .collect();
    Ok(Json(json!({ "consumers": list })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::AdminClient;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use routes::store::JournalOptions;
    use routes::EngineConfig;

    async fn call(url: &str, method: &'static str, path: &'static str) -> (u16, Value) {
        let client = AdminClient::new(url).unwrap();
        let (status, body) = tokio::task::spawn_blocking(move || client.request(method, path))
            .await
            .unwrap()
            .unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// Readiness follows recovery and listener binding; the API waits for the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readyz_follows_recovery_and_listeners() {
        let dir = tempfile::tempdir().unwrap();
        // A recorder of our own (not installed globally): rendering works without one.
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let state = AdminState::new(handle, ConnectionRegistry::new(), dir.path().into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, state.clone(), stopped));

        assert_eq!(
            call(&url, "GET", "/healthz").await,
            (200, json!({"status": "ok"}))
        );
        let (status, body) = call(&url, "GET", "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body["store_recovered"], json!(false));
        assert_eq!(call(&url, "GET", "/api/queues").await.0, 503);
        assert_eq!(call(&url, "GET", "/metrics").await.0, 200);

        let options = JournalOptions::new(dir.path().join("journal"));
        let engine = Engine::open(EngineConfig::default(), options).unwrap();
        state.set_engine(engine.clone());
        let (status, body) = call(&url, "GET", "/readyz").await;
        assert_eq!(
            (status, &body["store_recovered"], &body["listeners_bound"]),
            (503, &json!(true), &json!(false))
        );
        assert_eq!(
            call(&url, "GET", "/api/queues").await,
            (200, json!({"queues": []}))
        );

        state.set_listeners_bound();
        assert_eq!(call(&url, "GET", "/readyz").await.0, 200);
        let (status, body) = call(&url, "POST", "/api/queues/none/purge").await;
        assert_eq!(status, 404);
        assert!(body["error"].as_str().unwrap().contains("none"), "{body}");

        stop.send(true).unwrap();
        server.await.unwrap().unwrap();
        engine.close().unwrap();
    }
}
