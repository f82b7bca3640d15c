//! Operator subcommands (`gateway queues`, `gateway connections`, `gateway queue purge NAME`,
//! `gateway dlq replay QUEUE`, ...): each calls the admin HTTP API of a running gateway and
//! prints a table, or the API's JSON with `--json`.
//!
//! The HTTP client is a few lines over `std::net` (HTTP/1.1, one request per connection), with
//! rustls for an `https://` admin URL (the 8162 twin), verified against the CA file given with
//! `--cacert` / `GATEWAY_ADMIN_CACERT`: credentials sent off loopback need not travel in clear.

use clap::Subcommand;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default admin API address (`[admin] bind`'s default).
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8161";
const TIMEOUT: Duration = Duration::from_secs(30);

/// `gateway queue ...`.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Show one queue's depths and counters.
    Show {
        /// Queue name.
        name: String,
    },
    /// Remove every ready message of a queue (unacknowledged ones stay with their consumers).
    Purge {
        /// Queue name.
        name: String,
    },
    /// Delete a queue (or durable subscription) with its messages; its consumers are cancelled.
    Delete {
        /// Queue name.
        name: String,
    },
    /// Show messages of a queue without consuming them.
    Browse {
        /// Queue name.
        name: String,
        /// Most messages shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// `gateway dlq ...`.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Move dead-lettered messages of QUEUE (those whose `originalDestination` is QUEUE) from
    /// its dead-letter queue back to QUEUE.
    Replay {
        /// The original queue.
        queue: String,
        /// The dead-letter queue to take them from (default: the one configured for QUEUE).
        #[arg(long)]
        dlq: Option<String>,
        /// Most messages moved.
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// `gateway connections ...`.
#[derive(Subcommand, Debug)]
pub enum ConnectionCommand {
    /// Show one open connection (protocol, peer, user, client id, bytes) and its consumers.
    Show {
        /// Connection id, as `gateway connections` lists it.
        id: u64,
    },
}

/// `gateway streams ...`.
#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Show one stream's partitions: start and end offsets, size, segments.
    Show {
        /// Stream name.
        name: String,
    },
}

/// `gateway groups ...`.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Show one consumer group: state, members, committed offset and lag per partition.
    Show {
        /// Group name.
        name: String,
    },
    /// Move a consumer group's committed offsets (refused while the group has members, as
    /// `kafka-consumer-groups --reset-offsets` is).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime"])))]
    Reset {
        /// Group name.
        group: String,
        /// To the log start offset of each partition.
        #[arg(long)]
        to_earliest: bool,
        /// To the end offset of each partition (skip everything stored).
        #[arg(long)]
        to_latest: bool,
        /// To the first record at or after this time: `YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]`
        /// (UTC when no offset is given), or milliseconds since the epoch.
        #[arg(long, value_name = "DATETIME")]
        to_datetime: Option<String>,
        /// Only this stream's partitions (all of them, committed or not); default: every
        /// partition the group has committed.
        #[arg(long)]
        stream: Option<String>,
        /// Show the new offsets without committing them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The admin subcommands, with where the API is and how to print.
#[derive(Debug)]
pub enum AdminCommand {
    /// List queues.
    Queues,
    /// One queue action.
    Queue(QueueCommand),
    /// List connections.
    Connections,
    /// One connection action.
    Connection(ConnectionCommand),
    /// List consumers.
    Consumers,
    /// Broker-wide figures.
    Overview,
    /// A dead-letter action.
    Dlq(DlqCommand),
    /// List streams.
    Streams,
    /// One stream action.
    Stream(StreamCommand),
    /// List consumer groups.
    Groups,
    /// One consumer-group action.
    Group(GroupCommand),
    /// Re-read the configuration file (`POST /api/reload`, as SIGHUP).
    Reload,
}

/// Admin API credentials for HTTP Basic authentication (`--user`/`--password`, or the
/// `GATEWAY_ADMIN_USER`/`GATEWAY_ADMIN_PASSWORD` environment variables).
#[derive(Clone, Default)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password (never printed).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The credentials given on the command line, else from the environment; `None` when no
    /// user is given either way. A user without a password gets an empty one.
    pub fn resolve(user: Option<String>, password: Option<String>) -> Option<Credentials> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let user = user.or_else(|| env("GATEWAY_ADMIN_USER"))?;
        let password = password
            .or_else(|| env("GATEWAY_ADMIN_PASSWORD"))
            .unwrap_or_default();
        Some(Credentials { user, password })
    }
}

/// The credentials every admin subcommand sends (set once by `main`).
static CREDENTIALS: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();

static CA_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the CA certificate file (PEM) an `https://` admin URL is verified against: `path`, or
/// else the `GATEWAY_ADMIN_CACERT` environment variable.
pub fn set_ca_file(path: Option<PathBuf>) {
    let path = path.or_else(|| {
        std::env::var_os("GATEWAY_ADMIN_CACERT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(p) = path {
        let _ = CA_FILE.set(p);
    }
}

/// Sets the admin API credentials of this process's subcommands (`None`: send none).
pub fn set_credentials(credentials: Option<Credentials>) {
    if let Some(c) = credentials {
        let _ = CREDENTIALS.set(c);
    }
}

/// Runs an admin subcommand against the API at `admin` (authenticating with the credentials
/// of [`set_credentials`], if any); prints JSON with `json`.
pub fn run(command: AdminCommand, admin: &str, json: bool) -> ExitCode {
    let client = match AdminClient::new(admin).and_then(|c| c.with_ca_file(CA_FILE.get())) {
        Ok(c) => c.with_credentials(CREDENTIALS.get().cloned()),
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let (method, path) = match &command {
        AdminCommand::Queues => ("GET", "/api/queues".to_string()),
        AdminCommand::Connections => ("GET", "/api/connections".to_string()),
        AdminCommand::Connection(ConnectionCommand::Show { id }) => {
            ("GET", format!("/api/connections/{id}"))
        }
        AdminCommand::Consumers => ("GET", "/api/consumers".to_string()),
        AdminCommand::Overview => ("GET", "/api/overview".to_string()),
        AdminCommand::Reload => ("POST", "/api/reload".to_string()),
        AdminCommand::Queue(QueueCommand::Show { name }) => {
            ("GET", format!("/api/queues/{}", encode(name)))
        }
        AdminCommand::Queue(QueueCommand::Purge { name }) => {
            ("POST", format!("/api/queues/{}/purge", encode(name)))
        }
        AdminCommand::Queue(QueueCommand::Delete { name }) => {
            ("DELETE", format!("/api/queues/{}", encode(name)))
        }
        AdminCommand::Queue(QueueCommand::Browse { name, limit }) => (
            "GET",
            format!("/api/queues/{}/messages?limit={limit}", encode(name)),
        ),
        AdminCommand::Dlq(DlqCommand::Replay { queue, dlq, limit }) => {
            let mut path = format!("/api/dlq/replay?queue={}", encode(queue));
            if let Some(dlq) = dlq {
                path.push_str(&format!("&dlq={}", encode(dlq)));
            }
            if let Some(limit) = limit {
                path.push_str(&format!("&limit={limit}"));
            }
            ("POST", path)
        }
        AdminCommand::Streams => ("GET", "/api/streams".to_string()),
        AdminCommand::Stream(StreamCommand::Show { name }) => {
            ("GET", format!("/api/streams/{}", encode(name)))
        }
        AdminCommand::Groups => ("GET", "/api/groups".to_string()),
        AdminCommand::Group(GroupCommand::Show { name }) => {
            ("GET", format!("/api/groups/{}", encode(name)))
        }
        AdminCommand::Group(GroupCommand::Reset {
            group,
            to_earliest,
            to_latest,
            to_datetime,
            stream,
            dry_run,
        }) => {
            let mut path = format!("/api/groups/{}/reset?to=", encode(group));
            match (to_earliest, to_latest, to_datetime) {
                (true, _, _) => path.push_str("earliest"),
                (_, true, _) => path.push_str("latest"),
                (_, _, Some(dt)) => path.push_str(&format!("datetime&datetime={}", encode(dt))),
                _ => path.push_str("earliest"),
            }
            if let Some(stream) = stream {
                path.push_str(&format!("&stream={}", encode(stream)));
            }
            if *dry_run {
                path.push_str("&dry_run=true");
            }
            ("POST", path)
        }
    };
    let (status, body) = match client.request(method, &path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gateway: cannot reach the admin API at {admin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let value: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => {
            eprintln!("gateway: admin API answered {status} with: {}", body.trim());
            return ExitCode::FAILURE;
        }
    };
    if status == 401 {
        eprintln!(
            "gateway: the admin API needs credentials: give --user and --password (or set GATEWAY_ADMIN_USER and GATEWAY_ADMIN_PASSWORD) (HTTP 401)"
        );
        return ExitCode::FAILURE;
    }
    if !(200..300).contains(&status) {
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("request failed");
        // A refused reload lists every configuration error.
        for e in value
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            eprintln!("{e}");
        }
        eprintln!("gateway: {message} (HTTP {status})");
        return ExitCode::FAILURE;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| body.clone())
        );
        return ExitCode::SUCCESS;
    }
    print!("{}", render(&command, &value));
    ExitCode::SUCCESS
}

/// The human-readable output of a successful command.
fn render(command: &AdminCommand, v: &Value) -> String {
    match command {
        AdminCommand::Queues => {
            let rows = rows(v, "queues", |q| {
                vec![
                    s(q, "name"),
                    s(q, "kind"),
                    s(q, "ready"),
                    s(q, "unacked"),
                    s(q, "consumers"),
                    s(q, "enqueued"),
                    s(q, "delivered"),
                    s(q, "acknowledged"),
                    s(q, "redelivered"),
                    s(q, "dead_lettered"),
                    s(q, "expired"),
                ]
            });
            table(
                &[
                    "NAME",
                    "KIND",
                    "READY",
                    "UNACKED",
                    "CONSUMERS",
                    "ENQUEUED",
                    "DELIVERED",
                    "ACKED",
                    "REDELIVERED",
                    "DEAD-LETTERED",
                    "EXPIRED",
                ],
                &rows,
            )
        }
        AdminCommand::Connections => {
            let now = now_ms();
            let rows = rows(v, "connections", |c| {
                let since = c.get("since_ms").and_then(Value::as_u64).unwrap_or(now);
                vec![
                    s(c, "id"),
                    s(c, "protocol"),
                    s(c, "listener"),
                    s(c, "peer"),
                    s(c, "user"),
                    s(c, "client_id"),
                    age(now.saturating_sub(since)),
                    s(c, "bytes_in"),
                    s(c, "bytes_out"),
                ]
            });
            table(
                &[
                    "ID",
                    "PROTOCOL",
                    "LISTENER",
                    "PEER",
                    "USER",
                    "CLIENT-ID",
                    "AGE",
                    "BYTES-IN",
                    "BYTES-OUT",
                ],
                &rows,
            )
        }
        AdminCommand::Connection(ConnectionCommand::Show { id }) => {
            let now = now_ms();
            let since = v.get("since_ms").and_then(Value::as_u64).unwrap_or(now);
            let consumers = rows(v, "consumers", |c| {
                vec![
                    s(c, "id"),
                    s(c, "queues"),
                    s(c, "prefetch"),
                    s(c, "unacked"),
                    s(c, "selector"),
                ]
            });
            format!(
                "connection {id}: {} on {} from {}, user {}, client id {}, up {}, \
                 {} byte(s) in, {} byte(s) out\n{}",
                s(v, "protocol"),
                s(v, "listener"),
                s(v, "peer"),
                s(v, "user"),
                s(v, "client_id"),
                age(now.saturating_sub(since)),
                s(v, "bytes_in"),
                s(v, "bytes_out"),
                table(
                    &["CONSUMER", "QUEUES", "PREFETCH", "UNACKED", "SELECTOR"],
                    &consumers
                )
            )
        }
        AdminCommand::Consumers => {
            let rows = rows(v, "consumers", |c| {
                vec![
                    s(c, "id"),
                    s(c, "connection"),
                    s(c, "client_id"),
                    s(c, "queues"),
                    s(c, "prefetch"),
                    s(c, "unacked"),
                    s(c, "selector"),
                ]
            });
            table(
                &[
                    "ID",
                    "CONNECTION",
                    "CLIENT-ID",
                    "QUEUES",
                    "PREFETCH",
                    "UNACKED",
                    "SELECTOR",
                ],
                &rows,
            )
        }
        AdminCommand::Queue(QueueCommand::Browse { .. }) => {
            let rows = rows(v, "messages", |m| {
                let mut body = s(m, "body");
                if body == "-" {
                    body = format!("<{} bytes>", s(m, "body_size"));
                }
                if body.chars().count() > 60 {
                    body = body.chars().take(57).collect::<String>() + "...";
                }
                vec![
                    s(m, "message_id"),
                    s(m, "state"),
                    s(m, "delivery_count"),
                    s(m, "priority"),
                    s(m, "persistent"),
                    body.replace(['\n', '\r', '\t'], " "),
                ]
            });
            table(
                &[
                    "MESSAGE-ID",
                    "STATE",
                    "DELIVERIES",
                    "PRIORITY",
                    "PERSISTENT",
                    "BODY",
                ],
                &rows,
            )
        }
        AdminCommand::Queue(QueueCommand::Purge { name }) => {
            format!("purged {} message(s) from {name}\n", s(v, "purged"))
        }
        AdminCommand::Queue(QueueCommand::Delete { name }) => {
            format!("deleted {name} ({} message(s))\n", s(v, "messages"))
        }
        AdminCommand::Dlq(DlqCommand::Replay { queue, .. }) => format!(
            "moved {} message(s) from {} back to {queue}\n",
            s(v, "moved"),
            s(v, "dlq")
        ),
        AdminCommand::Streams => {
            let rows = rows(v, "streams", |st| {
                vec![
                    s(st, "name"),
                    s(st, "partition_count"),
                    s(st, "messages"),
                    s(st, "size_bytes"),
                    s(st, "segments"),
                    s(st, "retention_ms"),
                    s(st, "retention_bytes"),
                ]
            });
            table(
                &[
                    "NAME",
                    "PARTITIONS",
                    "MESSAGES",
                    "BYTES",
                    "SEGMENTS",
                    "RETENTION-MS",
                    "RETENTION-BYTES",
                ],
                &rows,
            )
        }
        AdminCommand::Stream(StreamCommand::Show { name }) => {
            let rows = rows(v, "partitions", |p| {
                vec![
                    s(p, "partition"),
                    s(p, "start_offset"),
                    s(p, "end_offset"),
                    s(p, "messages"),
                    s(p, "size_bytes"),
                    s(p, "segments"),
                ]
            });
            format!(
                "stream {name}: {} message(s), {} byte(s)\n{}",
                s(v, "messages"),
                s(v, "size_bytes"),
                table(
                    &["PARTITION", "START", "END", "MESSAGES", "BYTES", "SEGMENTS"],
                    &rows
                )
            )
        }
        AdminCommand::Groups => {
            let rows = rows(v, "groups", |g| {
                vec![
                    s(g, "name"),
                    s(g, "state"),
                    s(g, "members"),
                    s(g, "streams"),
                    s(g, "lag"),
                    s(g, "route"),
                ]
            });
            table(
                &["NAME", "STATE", "MEMBERS", "STREAMS", "LAG", "ROUTE"],
                &rows,
            )
        }
        AdminCommand::Group(GroupCommand::Show { name }) => {
            let rows = rows(v, "offsets", |o| {
                vec![
                    s(o, "stream"),
                    s(o, "partition"),
                    s(o, "committed_offset"),
                    s(o, "start_offset"),
                    s(o, "end_offset"),
                    s(o, "lag"),
                ]
            });
            format!(
                "group {name}: state {}, {} member(s), lag {}\n{}",
                s(v, "state"),
                s(v, "members"),
                s(v, "lag"),
                table(
                    &["STREAM", "PARTITION", "COMMITTED", "START", "END", "LAG"],
                    &rows
                )
            )
        }
        AdminCommand::Group(GroupCommand::Reset { group, .. }) => {
            let rows = rows(v, "offsets", |o| {
                vec![
                    s(o, "stream"),
                    s(o, "partition"),
                    s(o, "previous_offset"),
                    s(o, "offset"),
                ]
            });
            let done = if v.get("dry_run").and_then(Value::as_bool) == Some(true) {
                "would reset (dry run, nothing committed)"
            } else {
                "reset"
            };
            format!(
                "{done} consumer group {group}\n{}",
                table(&["STREAM", "PARTITION", "PREVIOUS", "NEW-OFFSET"], &rows)
            )
        }
        AdminCommand::Reload => {
            let r = v.get("result").unwrap_or(&Value::Null);
            format!(
                "reloaded {}: {} route(s) ({} stopped, {} started), {} stream(s), TLS {}\n",
                s(r, "config"),
                s(r, "routes"),
                s(r, "stopped"),
                s(r, "started"),
                s(r, "streams"),
                s(r, "tls")
            )
        }
        AdminCommand::Queue(QueueCommand::Show { .. }) | AdminCommand::Overview => {
            let mut rows = Vec::new();
            if let Value::Object(map) = v {
                for (k, val) in map {
                    rows.push(vec![k.clone(), plain(val)]);
                }
            }
            table(&["FIELD", "VALUE"], &rows)
        }
    }
}

fn rows(v: &Value, key: &str, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(row).collect())
        .unwrap_or_default()
}

/// A field as table text: strings bare, lists comma-separated, absent or null as `-`.
fn s(v: &Value, key: &str) -> String {
    v.get(key).map(plain).unwrap_or_else(|| "-".into())
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces, header first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A minimal HTTP/1.1 client for the admin API.
pub(crate) struct AdminClient {
    host: String,
    authority: String,
    prefix: String,
    /// `Authorization` header value, when credentials were given.
    authorization: Option<String>,
    /// For an `https://` URL: the name the certificate must be valid for.
    server_name: Option<ServerName<'static>>,
    /// For an `https://` URL, once [`AdminClient::with_ca_file`] gave its CA.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl AdminClient {
    /// A client for the API at `url` (`http://host:port[/prefix]` or `https://...`).
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let (rest, https) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (rest, true)
        } else {
            return Err(format!(
                "the admin URL must start with http:// or https:// (got {url:?})"
            ));
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("no host in the admin URL {url:?}"));
        }
        let has_port = authority.contains(':') && !authority.ends_with(']');
        let host = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let server_name = if https {
            // The host without its port (and an IPv6 literal without its brackets).
            let name = match authority.rsplit_once(':') {
                Some((name, _)) if has_port => name,
                _ => authority,
            };
            let name = name.trim_start_matches('[').trim_end_matches(']');
            Some(
                ServerName::try_from(name.to_string())
                    .map_err(|e| format!("bad host in the admin URL {url:?}: {e}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            host,
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            authorization: None,
            server_name,
            tls: None,
        })
    }

    /// For an `https://` URL: trusts the CA certificates (PEM) of `ca_file`, which is then
    /// required (there are no built-in roots: the gateway's certificate is usually its own or
    /// a private CA's). TLS 1.2 and 1.3, as the server. Ignored for `http://`.
    pub(crate) fn with_ca_file(mut self, ca_file: Option<&PathBuf>) -> Result<Self, String> {
        if self.server_name.is_none() {
            return Ok(self);
        }
        let Some(path) = ca_file else {
            return Err(
                "an https:// admin URL needs --cacert FILE (or GATEWAY_ADMIN_CACERT): \
                 the CA certificate (PEM) that the gateway's certificate is checked against"
                    .to_string(),
            );
        };
        self.tls = Some(Arc::new(client_config(path)?));
        Ok(self)
    }

    /// Sends HTTP Basic credentials with every request.
    pub(crate) fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        use base64::Engine as _;
        self.authorization = credentials.map(|c| {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.user, c.password));
            format!("Basic {token}")
        });
        self
    }

    /// Sends one request; returns the status and the body.
    pub(crate) fn request(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let addr = self
            .host
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))?;
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let authorization = self
            .authorization
            .as_ref()
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.prefix, self.authority
        );
        let raw = match (&self.tls, &self.server_name) {
            (Some(config), Some(name)) => {
                let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| e.to_string())?;
                exchange(rustls::StreamOwned::new(conn, stream), request.as_bytes())?
            }
            _ => exchange(stream, request.as_bytes())?,
        };
        parse_response(&raw)
    }
}

/// Writes `request` and reads the response until the server closes (`Connection: close`).
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> Result<Vec<u8>, String> {
    stream.write_all(request).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // A TLS peer that closes without close_notify: with `Connection: close`, what came
        // before is the whole response (parse_response still checks it is complete).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e.to_string()),
    }
}

/// A TLS client trusting the certificates of `ca_file` (PEM), TLS 1.2 and 1.3.
fn client_config(ca_file: &Path) -> Result<rustls::ClientConfig, String> {
    let what =
        |e: &dyn std::fmt::Display| format!("cannot use --cacert {}: {e}", ca_file.display());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| what(&e))? {
        roots
            .add(cert.map_err(|e| what(&e))?)
            .map_err(|e| what(&e))?;
    }
    if roots.is_empty() {
        return Err(what(&"no CERTIFICATE block found"));
    }
    // ring, as the listeners (security/tls.rs): no aws-lc build; deprecated by rustls only
    // for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| what(&e))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("bad HTTP status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{}".to_string()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, "abcde".to_string()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn encodes_names_and_parses_urls() {
        assert_eq!(encode("orders.eu"), "orders.eu");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        let c = AdminClient::new("http://127.0.0.1:9000/admin/").unwrap();
        assert_eq!(
            (c.host.as_str(), c.prefix.as_str()),
            ("127.0.0.1:9000", "/admin")
        );
        assert!(AdminClient::new("ftp://x").is_err());
        // https needs a CA file; its port defaults to 443 and the name excludes the port.
        let s = AdminClient::new("https://localhost:8162").unwrap();
        assert_eq!(s.host, "localhost:8162");
        assert!(s.with_ca_file(None).is_err());
        assert_eq!(AdminClient::new("https://[::1]").unwrap().host, "[::1]:443");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    22\n");
    }
}
