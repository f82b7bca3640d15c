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
//! | `GET /api/streams` | every stream with its partitions' offsets, size and segments |
//! | `GET /api/streams/{name}` | one stream |
//! | `GET /api/groups` | every consumer group (committed offsets or joined members) with its lag |
//! | `GET /api/groups/{name}` | one group: members, committed offsets and lag per partition |
//! | `POST /api/groups/{name}/reset?to=earliest\|latest\|datetime[&datetime=T][&stream=S][&dry_run=true]` | move the group's committed offsets (409 while it has members) |
//! | `POST /api/reload` | re-read the configuration file as SIGHUP does (routes, streams, TLS certificate); 400 with `errors` when it does not validate |
//!
//! Errors are JSON `{"error": "..."}` with 404 (unknown queue, stream or group), 400 (bad
//! request), 409 (offsets reset of a group with members) or 503 (store not open yet). The API listens on loopback by default: it can delete data.

use crate::admin_auth::AdminAuth;
use crate::bridge::RouteSet;
use crate::connections::{ConnectionInfo, ConnectionRegistry};
use crate::kafka::KafkaBroker;
use crate::metrics::{self as m, QueueLabels, StreamLabels};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use routes::store::log::Log;
use routes::{BrowsedMessage, Engine, EngineError, PropertyValue, QueueStats, QueueStatsKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::UNIX_EPOCH;
use tokio::sync::watch;

/// What the admin server reads: the engine (once recovered), connections, metrics.
pub struct AdminState {
    prometheus: PrometheusHandle,
    connections: Arc<ConnectionRegistry>,
    data_dir: PathBuf,
    engine: OnceLock<Arc<Engine>>,
    listeners_bound: AtomicBool,
    labels: QueueLabels,
    streams: StreamsState,
    auth: OnceLock<Arc<AdminAuth>>,
}

/// What the stream and consumer-group endpoints and metrics read, each set once at start-up.
#[derive(Default)]
struct StreamsState {
    log: OnceLock<Arc<Log>>,
    kafka: OnceLock<Arc<KafkaBroker>>,
    routes: OnceLock<Arc<Mutex<RouteSet>>>,
    labels: StreamLabels,
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
            streams: StreamsState::default(),
            auth: OnceLock::new(),
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

    /// Who may use the API (see [`crate::admin_auth`]); unset: everyone. Set before serving.
    pub fn set_auth(&self, auth: AdminAuth) {
        let _ = self.auth.set(Arc::new(auth));
    }

    /// The access rules, once set.
    pub(crate) fn auth(&self) -> Option<&Arc<AdminAuth>> {
        self.auth.get()
    }

    /// The partitioned log is open: the stream and group endpoints can use it.
    pub fn set_log(&self, log: Arc<Log>) {
        let _ = self.streams.log.set(log);
    }

    /// The Kafka listener runs: groups show their joined members, and a reset is refused
    /// while a group has any.
    pub fn set_kafka(&self, broker: Arc<KafkaBroker>) {
        let _ = self.streams.kafka.set(broker);
    }

    /// The running routes: their lag is published, and their groups cannot be reset.
    pub fn set_routes(&self, routes: Arc<Mutex<RouteSet>>) {
        let _ = self.streams.routes.set(routes);
    }

    fn log(&self) -> Result<&Arc<Log>, ApiError> {
        self.streams.log.get().ok_or(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the log is still recovering".into(),
        ))
    }

    /// Stream -> queue routes: (route, group, stream).
    fn stream_routes(&self) -> Vec<m::StreamRouteSource> {
        self.streams
            .routes
            .get()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).stream_sources())
            .unwrap_or_default()
    }

    /// Groups with joined Kafka members: (group, members).
    fn joined_groups(&self) -> Vec<(String, usize)> {
        let Some(kafka) = self.streams.kafka.get() else {
            return Vec::new();
        };
        kafka
            .groups
            .list()
            .into_iter()
            .map(|(group, _, _)| {
                let n = kafka.groups.describe(&group).map_or(0, |d| d.members.len());
                (group, n)
            })
            .collect()
    }

    fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.engine.get().ok_or(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is still recovering".into(),
        ))
    }
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn serve<L>(
    listener: L,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    // A plain `TcpListener`, or a `security::TlsListener` for HTTPS.
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
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
        .route("/api/connections/{id}", get(connection))
        .route("/api/consumers", get(consumers))
        .route("/api/consumers/{id}", get(consumer))
        .route("/api/streams", get(list_streams))
        .route("/api/streams/{name}", get(stream))
        .route("/api/groups", get(list_groups))
        .route("/api/groups/{name}", get(group))
        .route("/api/groups/{name}/reset", post(reset_group))
        .route("/api/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::admin_auth::require_credentials,
        ))
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
    let stream_bytes = state
        .streams
        .log
        .get()
        .map_or(0, |log| m::stream_bytes(log));
    if let Some(engine) = state.engine.get() {
        m::refresh(engine, &state.data_dir, stream_bytes, &state.labels);
    }
    if let Some(log) = state.streams.log.get() {
        m::refresh_streams(
            log,
            &state.joined_groups(),
            &state.stream_routes(),
            &state.streams.labels,
        );
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
        "store_used_bytes": g.journal.bytes + engine.paged_bytes(),
        "data_dir_used_bytes": (g.journal.bytes + engine.paged_bytes())
            .saturating_add(state.streams.log.get().map_or(0, |log| m::stream_bytes(log))),
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

fn connection_json(c: &ConnectionInfo) -> Value {
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
}

fn consumer_json(c: &routes::ConsumerInfo, connection: Option<u64>) -> Value {
    json!({
        "id": c.id,
        "connection": connection,
        "session": c.session,
        "client_id": c.client_id,
        "queues": c.queues,
        "prefetch": c.prefetch,
        "unacked": c.unacked,
        "selector": c.selector,
    })
}

/// Engine session id -> the id of the connection that opened it.
fn connection_of_session(state: &AdminState) -> HashMap<u64, u64> {
    state
        .connections
        .list()
        .iter()
        .flat_map(|c| c.sessions().into_iter().map(move |s| (s, c.id)))
        .collect()
}

async fn connections(State(state): State<Arc<AdminState>>) -> ApiResult {
    let list: Vec<Value> = state
        .connections
        .list()
        .iter()
        .map(|c| connection_json(c))
        .collect();
    Ok(Json(json!({ "connections": list })))
}

/// One open connection, with the consumers its engine sessions opened (none for Kafka, whose
/// clients have no engine session; an empty list before the store is recovered).
async fn connection(State(state): State<Arc<AdminState>>, UrlPath(id): UrlPath<u64>) -> ApiResult {
    let conn = state
        .connections
        .list()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no open connection {id}")))?;
    let sessions = conn.sessions();
    let consumers: Vec<Value> = state
        .engine
        .get()
        .map(|engine| engine.consumer_infos())
        .unwrap_or_default()
        .iter()
        .filter(|c| sessions.contains(&c.session))
        .map(|c| consumer_json(c, Some(id)))
        .collect();
    let mut body = connection_json(&conn);
    if let Some(map) = body.as_object_mut() {
        map.insert("consumers".into(), json!(consumers));
    }
    Ok(Json(body))
}

async fn consumers(State(state): State<Arc<AdminState>>) -> ApiResult {
    let engine = state.engine()?;
    let by_session = connection_of_session(&state);
    let list: Vec<Value> = engine
        .consumer_infos()
        .iter()
        .map(|c| consumer_json(c, by_session.get(&c.session).copied()))
        .collect();
    Ok(Json(json!({ "consumers": list })))
}

async fn consumer(State(state): State<Arc<AdminState>>, UrlPath(id): UrlPath<u64>) -> ApiResult {
    let engine = state.engine()?;
    let c = engine
        .consumer_infos()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no open consumer {id}")))?;
    let connection = connection_of_session(&state).get(&c.session).copied();
    Ok(Json(consumer_json(&c, connection)))
}

// --- streams and consumer groups ------------------------------------------------------------

fn stream_json(log: &Log, name: &str) -> Option<Value> {
    let cfg = log.stream_config(name)?;
    let (mut messages, mut bytes, mut segments) = (0u64, 0u64, 0u64);
    let partitions: Vec<Value> = (0..cfg.partitions)
        .map(|p| {
            let start = log.earliest_offset(name, p).unwrap_or(0);
            let end = log.latest_offset(name, p).unwrap_or(0);
            let size = log.partition_size_bytes(name, p).unwrap_or(0);
            let segs = log.segment_count(name, p).unwrap_or(0) as u64;
            messages += end.saturating_sub(start);
            bytes += size;
            segments += segs;
            json!({
                "partition": p,
                "start_offset": start,
                "end_offset": end,
                "messages": end.saturating_sub(start),
                "size_bytes": size,
                "segments": segs,
            })
        })
        .collect();
    Some(json!({
        "name": name,
        "partition_count": cfg.partitions,
        "retention_ms": cfg.retention_ms,
        "retention_bytes": cfg.retention_bytes,
        "messages": messages,
        "size_bytes": bytes,
        "segments": segments,
        "partitions": partitions,
    }))
}

async fn list_streams(State(state): State<Arc<AdminState>>) -> ApiResult {
    let log = state.log()?;
    let streams: Vec<Value> = log
        .streams()
        .iter()
        .filter_map(|name| stream_json(log, name))
        .collect();
    Ok(Json(json!({ "streams": streams })))
}

async fn stream(State(state): State<Arc<AdminState>>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let log = state.log()?;
    stream_json(log, &name)
        .map(Json)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no stream named {name}")))
}

/// Every known group: those that committed offsets and those with joined members, sorted.
fn group_names(state: &AdminState, log: &Log) -> Vec<String> {
    let mut names = log.groups();
    names.extend(state.joined_groups().into_iter().map(|(g, _)| g));
    names.sort();
    names.dedup();
    names
}

fn group_json(state: &AdminState, log: &Log, name: &str, detail: bool) -> Value {
    let described = state
        .streams
        .kafka
        .get()
        .and_then(|k| k.groups.describe(name));
    let route = state
        .stream_routes()
        .into_iter()
        .find(|(_, group, _)| group == name)
        .map(|(route, _, _)| route);
    let lags = crate::kafka::group_lag(log, name);
    let offsets: Vec<Value> = lags
        .iter()
        .map(|l| {
            json!({
                "stream": l.stream,
                "partition": l.partition,
                "committed_offset": l.committed,
                "start_offset": log.earliest_offset(&l.stream, l.partition).unwrap_or(0),
                "end_offset": l.high_watermark,
                "lag": l.lag,
            })
        })
        .collect();
    let state_name = match &described {
        Some(d) => d.group_state.clone(),
        None => "Empty".to_string(),
    };
    let mut v = json!({
        "name": name,
        "state": state_name,
        "members": described.as_ref().map_or(0, |d| d.members.len()),
        "route": route,
        "streams": lags.iter().map(|l| l.stream.clone()).collect::<std::collections::BTreeSet<_>>(),
        "lag": lags.iter().map(|l| l.lag).sum::<u64>(),
    });
    if let (true, Value::Object(map)) = (detail, &mut v) {
        map.insert("offsets".into(), json!(offsets));
        let members: Vec<Value> = described
            .iter()
            .flat_map(|d| d.members.iter())
            .map(|m| {
                json!({
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                })
            })
            .collect();
        map.insert("member_list".into(), json!(members));
        if let Some(d) = &described {
            map.insert("protocol".into(), json!(d.protocol_data));
        }
    }
    v
}

async fn list_groups(State(state): State<Arc<AdminState>>) -> ApiResult {
    let log = state.log()?;
    let groups: Vec<Value> = group_names(&state, log)
        .iter()
        .map(|g| group_json(&state, log, g, false))
        .collect();
    Ok(Json(json!({ "groups": groups })))
}

async fn group(State(state): State<Arc<AdminState>>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let log = state.log()?;
    if !group_names(&state, log).contains(&name) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no consumer group named {name}"),
        ));
    }
    Ok(Json(group_json(&state, log, &name, true)))
}

/// `?to=&datetime=&stream=&dry_run=` of an offsets reset.
#[derive(Deserialize)]
struct ResetParams {
    to: Option<String>,
    datetime: Option<String>,
    stream: Option<String>,
    /// Compute the new offsets without committing them (Kafka's `--dry-run`).
    dry_run: Option<bool>,
}

/// Where a reset moves each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResetTarget {
    /// The log start offset.
    Earliest,
    /// The end offset: nothing left to consume.
    Latest,
    /// The first record at or after this time (milliseconds since the Unix epoch); the end
    /// offset when no record is that recent (as `kafka-consumer-groups --to-datetime`).
    Timestamp(i64),
}

fn reset_target(params: &ResetParams) -> Result<ResetTarget, String> {
    match params.to.as_deref() {
        Some("earliest") => Ok(ResetTarget::Earliest),
        Some("latest") => Ok(ResetTarget::Latest),
        Some("datetime") => {
            let text = params
                .datetime
                .as_deref()
                .ok_or("to=datetime needs datetime=YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]")?;
            parse_datetime_ms(text).ok_or_else(|| {
                format!(
                    "bad datetime {text:?}: expected YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM] (UTC when no offset is given) or milliseconds since the epoch"
                )
            })
            .map(ResetTarget::Timestamp)
        }
        Some(other) => Err(format!(
            "to={other:?}: expected earliest, latest or datetime"
        )),
        None => Err("give to=earliest, to=latest or to=datetime".into()),
    }
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM]` (UTC when
/// no offset is given; a space may replace the `T`), or of a plain integer of milliseconds.
fn parse_datetime_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, rest) = text.split_at_checked(10)?;
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (time, offset_s) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => {
            let (time, zone) = rest.split_at(i);
            let offset = match zone {
                "Z" | "z" => 0,
                _ => {
                    let sign = if zone.starts_with('-') { -1 } else { 1 };
                    let (h, m) = zone.get(1..)?.split_once(':')?;
                    let (h, m) = (num(h)?, num(m)?);
                    if h > 23 || m > 59 {
                        return None;
                    }
                    sign * (h * 3600 + m * 60)
                }
            };
            (time, offset)
        }
        None => (rest, 0),
    };
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            let digits = frac.get(..frac.len().min(3))?;
            let scale = 10i64.pow(3 - digits.len() as u32);
            (hms, num(digits)? * scale)
        }
        None => (time, 0),
    };
    let mut t = hms.split(':');
    let (h, mi, sec) = (
        num(t.next()?)?,
        num(t.next()?)?,
        num(t.next().unwrap_or("0"))?,
    );
    if t.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000 + millis)
}

async fn reset_group(
    State(state): State<Arc<AdminState>>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<ResetParams>,
) -> ApiResult {
    let log = state.log()?.clone();
    let target = reset_target(&params).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    // Refused while members are joined, as Kafka's coordinator refuses it. The check and the
    // commits below do not share a lock with the coordinator: a consumer joining in between
    // fetches its offsets only after its join and sync round trips (and, for an empty group,
    // the initial rebalance delay), so it normally sees the reset; the window is not closed.
    if let Some(described) = state
        .streams
        .kafka
        .get()
        .and_then(|k| k.groups.describe(&name))
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "consumer group {name} has {} active member(s) (state {}): stop them before resetting its offsets",
                described.members.len(),
                described.group_state
            ),
        ));
    }
    if let Some((route, _, _)) = state
        .stream_routes()
        .into_iter()
        .find(|(_, group, _)| *group == name)
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("consumer group {name} is read by the running route {route}"),
        ));
    }
    // The partitions to move: every partition of `stream=`, else every committed one.
    let partitions: Vec<(String, u32)> = match &params.stream {
        Some(stream) => {
            let cfg = log.stream_config(stream).ok_or_else(|| {
                ApiError(StatusCode::NOT_FOUND, format!("no stream named {stream}"))
            })?;
            (0..cfg.partitions).map(|p| (stream.clone(), p)).collect()
        }
        None => log
            .group_offsets(&name)
            .into_iter()
            .map(|c| (c.stream, c.partition))
            .collect(),
    };
    if partitions.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("consumer group {name} has no committed offsets (name a stream with stream=)"),
        ));
    }
    let group = name.clone();
    let dry_run = params.dry_run.unwrap_or(false);
    let moved = tokio::task::spawn_blocking(move || {
        let mut moved = Vec::new();
        for (stream, partition) in partitions {
            let previous = log
                .committed_offset(&group, &stream, partition)
                .map(|c| c.0);
            let end = log.latest_offset(&stream, partition)?;
            let offset = match target {
                ResetTarget::Earliest => log.earliest_offset(&stream, partition)?,
                ResetTarget::Latest => end,
                ResetTarget::Timestamp(ts) => log
                    .offset_for_timestamp(&stream, partition, ts)?
                    .unwrap_or(end),
            };
            if !dry_run {
                log.commit_offset(&group, &stream, partition, offset, "")?;
            }
            moved.push(json!({
                "stream": stream,
                "partition": partition,
                "previous_offset": previous,
                "offset": offset,
            }));
        }
        Ok::<_, routes::store::log::LogError>(moved)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !dry_run {
        tracing::info!(group = %name, ?target, partitions = moved.len(), "consumer group offsets reset");
    }
    Ok(Json(
        json!({ "group": name, "dry_run": dry_run, "offsets": moved }),
    ))
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

    #[test]
    fn datetimes_parse_to_epoch_milliseconds() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime_ms("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13:20.123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_datetime_ms("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29 12:00:00Z"),
            Some(1_709_208_000_000)
        );
        assert_eq!(parse_datetime_ms("2023-13-01T00:00:00"), None);
        assert_eq!(parse_datetime_ms("yesterday"), None);
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13"),
            Some(1_699_999_980_000)
        );
    }

    /// Readiness follows recovery and listener binding; the API waits for the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readyz_follows_recovery_and_listeners() {
        let dir = tempfile::tempdir().unwrap();
        // A recorder of our own (not installed globally): rendering works without one.
        let handle = PrometheusBuilder::new().build_recorder().handle();
        let state = AdminState::new(handle, ConnectionRegistry::new(), dir.path().into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
