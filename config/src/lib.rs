//! Gateway configuration: the TOML schema, its defaults and its validation.
//!
//! # Contract
//!
//! - Every key is optional; a missing key takes the default documented on its field (and in
//!   `docs/configuration.md`). [`Config::default()`] is exactly what an empty file yields.
//! - Unknown keys, wrong types and out-of-range values are errors. Parsing never stops at the
//!   first problem: [`Config::from_toml_str`] reports **every** error in the file, each naming
//!   its dotted key (e.g. `listeners.stomp.bind`) and its 1-based line.
//! - A TOML syntax error stops parsing (the document has no tree to check) and is reported
//!   with its line.
//! - This crate does no I/O besides [`Config::from_file`] reading the one file it is given.
//!
//! ```
//! let cfg = config::Config::from_toml_str("[listeners.stomp]\nbind = \"0.0.0.0:61613\"\n", "gateway.toml")
//!     .map_err(|e| e.to_string())?;
//! assert_eq!(cfg.listeners.stomp.bind.port(), 61613);
//! # Ok::<(), String>(())
//! ```
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod error;
mod parse;
mod pattern;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use error::{ConfigError, ConfigErrors};
pub use pattern::{validate_pattern, PatternError};

/// The whole gateway configuration, as read from `gateway.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    /// Process-wide settings (`[server]`).
    pub server: ServerConfig,
    /// Network listeners, one table per protocol (`[listeners.*]`).
    pub listeners: ListenersConfig,
    /// The durable message store (`[store]`).
    pub store: StoreConfig,
    /// Broker policies: limits, flow control, redelivery (`[broker]`).
    pub broker: BrokerConfig,
    /// The certificate the TLS listeners present (`[tls]`); `None`: no TLS listener starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Connection limits and authentication back-off (`[security]`).
    pub security: SecurityConfig,
    /// Configured users (`[[users]]`). Default: none (see `docs/security.md` for who may
    /// connect then).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    /// Authorization entries (`[[authorization]]`), as ActiveMQ's `authorizationEntry`.
    /// Default: none, which lets every authenticated client do everything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization: Vec<AuthorizationEntry>,
    /// Who may create, read and write temporary destinations (`[temp_destination_authorization]`),
    /// as ActiveMQ's `tempDestinationAuthorizationEntry`. Default: none, which lets every
    /// admitted client use temporary destinations (as ActiveMQ without that entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_destination_authorization: Option<TempDestinationAuthorization>,
    /// The admin HTTP API and Prometheus `/metrics` (`[admin]`).
    pub admin: AdminConfig,
    /// The partitioned log behind streams (`[log]`).
    pub log: LogConfig,
    /// Streams created (or re-configured) at start-up (`[[streams]]`). Default: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamDefinition>,
    /// Routes between streams and queues or topics (`[[routes]]`). Default: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteDefinition>,
}

/// One end of a route: `stream:NAME`, `queue:ADDRESS` or `topic:ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteEndpoint {
    /// A stream of the log.
    Stream(String),
    /// A queue (anycast address).
    Queue(String),
    /// A topic (multicast address).
    Topic(String),
}

impl RouteEndpoint {
    /// The spelling used in the configuration file.
    pub fn to_config_string(&self) -> String {
        match self {
            RouteEndpoint::Stream(s) => format!("stream:{s}"),
            RouteEndpoint::Queue(s) => format!("queue:{s}"),
            RouteEndpoint::Topic(s) => format!("topic:{s}"),
        }
    }
}

impl Serialize for RouteEndpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_config_string())
    }
}

/// How a route from a queue or topic treats the original message (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteMode {
    /// `"copy"`: the legacy consumers still get every message (topics and queues).
    Copy,
    /// `"move"`: the route takes the messages (one queue: it consumes them; a queue pattern or a
    /// topic: matching sends go only to the route, no longer to the queue or the subscribers).
    Move,
}

/// One `[[routes]]` entry, in one of three directions:
///
/// - from a stream into a queue or topic: the stream is read as consumer group `group`; each
///   record is sent as a persistent message and the group's offset is committed only after the
///   send is durable (at least once);
/// - from a topic pattern (`mode = "copy"`, through a durable subscription), a queue pattern
///   (`mode = "copy"`, through a mirror queue named `group` that gets a copy of every send) or
///   one queue (`mode = "move"`, the default for queues), or moved from a queue pattern or a
///   topic pattern (`mode = "move"`: every matching send goes only to mirror queue `group`)
///   into a stream: each message is
///   appended, keyed by property `key` (else round robin), and acknowledged only after the
///   append is durable (at least once). With copy, the legacy consumers still get every
///   message;
/// - from a topic or queue (read the same three ways) into a queue or topic: each message is
///   sent on, unchanged but for its address, and acknowledged in the same journal write. A
///   target its own source matches, or routes feeding each other in a circle, are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDefinition {
    /// Unique route name (used in logs). Required.
    pub name: String,
    /// Where messages come from: `stream:NAME`, `topic:PATTERN` or `queue:ADDRESS`. Required.
    pub from: RouteEndpoint,
    /// Where they go: `queue:ADDRESS` or `topic:ADDRESS` (no wildcards) from anything,
    /// `stream:NAME` from a queue or topic. Required.
    pub to: RouteEndpoint,
    /// Consumer group the route reads a stream as, the durable subscription name it reads a
    /// topic through, or the mirror queue it copies queues through. Default `route.<name>`.
    pub group: String,
    /// From a queue or topic: `copy` or `move`. Default `copy` from a topic, `move` from one
    /// queue; a queue pattern needs it given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<RouteMode>,
    /// Into a stream: the message property whose value is the record key (so one key keeps one
    /// partition); without it, or when a message lacks it, round robin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Only messages matching this JMS selector (out of a stream: the message a record becomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

impl Config {
    /// Parses and validates a TOML document.
    ///
    /// `origin` is the file name used in error messages (e.g. `"gateway.toml"`). On failure
    /// every problem found in the document is returned, sorted by line.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        parse::parse(text, origin)
    }

    /// Reads, parses and validates the file at `path`.
    ///
    /// An I/O error (missing file, unreadable file, not UTF-8) becomes a single
    /// [`ConfigError`] without a line.
    pub fn from_file(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml_str(&text, &origin),
            Err(e) => Err(ConfigErrors {
                errors: vec![ConfigError {
                    origin,
                    line: None,
                    key: String::new(),
                    message: format!("cannot read configuration file: {e}"),
                }],
            }),
        }
    }

    /// Renders this configuration as a TOML document that [`Config::from_toml_str`] accepts
    /// and turns back into an equal `Config` (useful to print the effective configuration).
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// `[server]`: process-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerConfig {
    /// Directory where the store lives. Default `./data`.
    pub data_dir: PathBuf,
    /// Milliseconds given to in-flight work on SIGTERM / Ctrl-C before the store is closed
    /// anyway. Default 5000.
    pub shutdown_grace_ms: u64,
    /// `tracing` filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or an `EnvFilter`
    /// directive. Never empty. Default `info`. The `RUST_LOG` environment variable overrides it.
    pub log_level: String,
    /// Log line format: `"text"` (human-readable) or `"json"` (one JSON object per line, with
    /// the connection span's fields). Default `"text"`. The `GATEWAY_LOG_FORMAT` environment
    /// variable overrides it.
    pub log_format: LogFormat,
}

/// How log lines are written (`server.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `"text"`: human-readable lines. The default.
    #[default]
    Text,
    /// `"json"`: one JSON object per line.
    Json,
}

impl LogFormat {
    /// The spelling used in the configuration file and `GATEWAY_LOG_FORMAT`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            shutdown_grace_ms: 5000,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
        }
    }
}

/// `[admin]`: the admin HTTP server: Prometheus `/metrics`, `/healthz`, `/readyz` and the JSON
/// admin API under `/api/` that the `gateway` CLI subcommands call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminConfig {
    /// Whether the admin server is started. Default `true`.
    pub enabled: bool,
    /// `[[users]]` names allowed on the admin API (besides the members of `groups`). Default:
    /// none.
    pub users: Vec<String>,
    /// Groups of `[[users]]` whose members are allowed on the admin API. Default `["admin"]`.
    /// When any configured user is allowed (or `bind` is not a loopback address), every
    /// request but `/healthz` and `/readyz` needs HTTP Basic credentials of an allowed user.
    pub groups: Vec<String>,
    /// Whether `/metrics` needs the credentials too when they are required. Default `true`;
    /// `false` leaves it open for a Prometheus without credentials.
    pub metrics_auth: bool,
    /// Address to listen on. Default `127.0.0.1:8161` (the ActiveMQ console port, loopback
    /// only: the API can purge and delete queues).
    pub bind: SocketAddr,
    /// Whether an HTTPS twin of the admin server is started on `tls_bind` when `[tls]` is
    /// configured. Default `true`.
    pub tls_enabled: bool,
    /// Address of the HTTPS admin server. Default `127.0.0.1:8162` (ActiveMQ's HTTPS console
    /// port).
    pub tls_bind: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            users: Vec::new(),
            groups: vec!["admin".to_owned()],
            metrics_auth: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8161)),
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8162)),
        }
    }
}

/// `[listeners]`: one table per protocol. Ports for other protocols are added as they land.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ListenersConfig {
    /// The STOMP listener (`[listeners.stomp]`).
    pub stomp: StompListenerConfig,
    /// The MQTT listener (`[listeners.mqtt]`).
    pub mqtt: MqttListenerConfig,
    /// The Kafka listener (`[listeners.kafka]`).
    pub kafka: KafkaListenerConfig,
    /// The AMQP listener (`[listeners.amqp]`): AMQP 0-9-1 today, 1.0 on the same port later.
    pub amqp: AmqpListenerConfig,
    /// The OpenWire (ActiveMQ JMS client) listener (`[listeners.openwire]`).
    pub openwire: OpenWireListenerConfig,
}

/// `[listeners.kafka]`: the Kafka wire protocol listener, serving the streams of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KafkaListenerConfig {
    /// Whether the listener is started. Default `true`.
    pub enabled: bool,
    /// Address to listen on. Default `127.0.0.1:9092` (loopback only).
    pub bind: SocketAddr,
    /// Host name clients are told to connect to (Metadata, FindCoordinator). Default: the
    /// bind address's IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// Port clients are told to connect to. Default: the bind port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_port: Option<u16>,
    /// Largest accepted request, in bytes (Kafka's `socket.request.max.bytes`); at least 1024.
    /// Default 100 MiB.
    pub max_frame_bytes: usize,
    /// Node id announced for this gateway; 0 to 2147483647. Default 0.
    pub node_id: i32,
    /// After a first member joins an empty consumer group, wait this long (extended by each
    /// further join, up to the rebalance timeout) for more members before forming a
    /// generation, as Kafka's `group.initial.rebalance.delay.ms`. Default 3000.
    pub group_initial_rebalance_delay_ms: u64,
    /// Whether a TLS twin of this listener (Kafka's `SSL` security protocol) is started on
    /// `tls_bind` when `[tls]` is configured. Default `true`.
    pub tls_enabled: bool,
    /// Address of the Kafka-over-TLS listener. Default `127.0.0.1:9093`.
    pub tls_bind: SocketAddr,
    /// Port clients of the TLS listener are told to connect to (Metadata, FindCoordinator);
    /// the host is `advertised_host`, or else the `tls_bind` IP. Default: the `tls_bind` port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_advertised_port: Option<u16>,
    /// SASL mechanisms offered to Kafka clients (SaslHandshake), some of `"PLAIN"` and
    /// `"SCRAM-SHA-256"`; empty: no SASL. Default both.
    pub sasl_mechanisms: Vec<String>,
    /// Require SASL authentication before any request other than ApiVersions and
    /// SaslHandshake, even where anonymous clients are admitted. SASL is required anyway
    /// wherever anonymous clients are refused (a listener not bound to loopback, or `[[users]]`
    /// configured; see docs/security.md). Default `false`.
    pub require_sasl: bool,
}

impl Default for KafkaListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9092)),
            advertised_host: None,
            advertised_port: None,
            max_frame_bytes: 100 * 1024 * 1024,
            node_id: 0,
            group_initial_rebalance_delay_ms: 3000,
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9093)),
            tls_advertised_port: None,
            sasl_mechanisms: vec!["PLAIN".to_owned(), "SCRAM-SHA-256".to_owned()],
            require_sasl: false,
        }
    }
}

/// `[log]`: the partitioned log (stored under `<data_dir>/log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// Create a stream when a Kafka client asks for a topic that does not exist (Metadata with
    /// auto-creation allowed), as Kafka's `auto.create.topics.enable`. Default `true`.
    pub auto_create_streams: bool,
    /// Partitions of an auto-created stream, and of a CreateTopics without a count;
    /// 1 to 10000. Default 1 (Kafka's `num.partitions`).
    pub default_partitions: u32,
    /// Size at which a partition's active segment is sealed, in bytes; at least 1024.
    /// Default 1 GiB.
    pub segment_bytes: u64,
    /// How often retention is enforced, in milliseconds; at least 1. Default 300000
    /// (Kafka's `log.retention.check.interval.ms`).
    pub retention_check_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            auto_create_streams: true,
            default_partitions: 1,
            segment_bytes: 1024 * 1024 * 1024,
            retention_check_interval_ms: 300_000,
        }
    }
}

/// One `[[streams]]` entry: a stream of the log, created at start-up if missing, its retention
/// applied if it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamDefinition {
    /// Stream (Kafka topic) name: 1-249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
    /// Required.
    pub name: String,
    /// Partitions, 1 to 10000; fixed once created. Default `log.default_partitions`.
    pub partitions: u32,
    /// Delete sealed segments whose newest record is older than this. Default: keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// Per partition, delete the oldest sealed segments while at least this many bytes remain.
    /// Default: keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
}

/// `[listeners.amqp]`: the AMQP port. It sniffs the protocol header: AMQP 0-9-1 is served,
/// AMQP 1.0 will be, anything else is answered with the 0-9-1 header and closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmqpListenerConfig {
    /// Whether the listener is started. Default `true`.
    pub enabled: bool,
    /// Address to listen on. Default `127.0.0.1:5672` (loopback only).
    pub bind: SocketAddr,
    /// Largest frame the server accepts and offers in `connection.tune`, in bytes, frame header
    /// and end octet included; 4096 to 2^31-1. Default 131072 (RabbitMQ's default).
    pub frame_max: u32,
    /// Highest channel number a client may open, offered in `connection.tune`; 1 to 65535.
    /// Default 2047 (RabbitMQ's default).
    pub channel_max: u16,
    /// Heartbeat interval, in seconds, the server proposes in `connection.tune`; 0 (none) to
    /// 65535. The client's `tune-ok` value wins. Default 60 (RabbitMQ's default).
    pub heartbeat_s: u16,
    /// A connection must send its protocol header and finish the handshake (`connection.open`)
    /// within this many milliseconds; at least 1. Default 10000 (RabbitMQ's handshake timeout).
    pub connect_timeout_ms: u64,
    /// Whether a TLS twin of this listener is started on `tls_bind` when `[tls]` is
    /// configured. It sniffs the protocol header inside TLS as the plain port does.
    /// Default `true`.
    pub tls_enabled: bool,
    /// Address of the AMQP-over-TLS listener. Default `127.0.0.1:5671` (the `amqps` port).
    pub tls_bind: SocketAddr,
}

impl Default for AmqpListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5672)),
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat_s: 60,
            connect_timeout_ms: 10_000,
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5671)),
        }
    }
}

/// `[listeners.openwire]`: the OpenWire listener for ActiveMQ 5.x / 6.x JMS clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenWireListenerConfig {
    /// Whether the listener is started. Default `true`.
    pub enabled: bool,
    /// Address to listen on. Default `127.0.0.1:61616` (loopback only).
    pub bind: SocketAddr,
    /// Largest accepted command, in bytes after the 4-byte size prefix; at least 1024. Offered to
    /// clients as `MaxFrameSize`. Default 100 MiB (ActiveMQ's default).
    pub max_frame_bytes: u32,
    /// `MaxInactivityDuration` the server offers, in milliseconds: the connection uses the
    /// smaller of the client's and this; a peer silent for that long is disconnected, and
    /// `KeepAliveInfo` is sent when the server has been silent for a third of it. 0 disables
    /// inactivity monitoring. Default 30000 (ActiveMQ's default).
    pub max_inactivity_ms: u64,
    /// A new connection must send its `WireFormatInfo` within this many milliseconds; at least
    /// 1. Default 10000 (ActiveMQ's `wireFormat.maxInactivityDurationInitalDelay`).
    pub connect_timeout_ms: u64,
    /// Whether a TLS twin of this listener (ActiveMQ's `ssl://` transport) is started on
    /// `tls_bind` when `[tls]` is configured. Default `true`.
    pub tls_enabled: bool,
    /// Address of the OpenWire-over-TLS listener. Default `127.0.0.1:61617`.
    pub tls_bind: SocketAddr,
}

impl Default for OpenWireListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61616)),
            max_frame_bytes: 104_857_600,
            max_inactivity_ms: 30_000,
            connect_timeout_ms: 10_000,
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61617)),
        }
    }
}

/// `[listeners.mqtt]`: the MQTT 3.1 / 3.1.1 / 5.0 listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MqttListenerConfig {
    /// Whether the listener is started. Default `true`.
    pub enabled: bool,
    /// Address to listen on. Default `127.0.0.1:1883` (loopback only).
    pub bind: SocketAddr,
    /// Largest accepted packet, fixed header included, in bytes; at least 64. Default 10 MiB.
    /// Announced to MQTT 5 clients as Maximum Packet Size.
    pub max_packet_bytes: usize,
    /// Most QoS 1 and 2 messages in flight to one client (lowered by an MQTT 5 client's Receive
    /// Maximum), and the Receive Maximum the server announces; 1 to 65535. Default 32.
    pub max_inflight: u16,
    /// Topic aliases an MQTT 5 client may use towards the server; 0 to 65535. Default 16.
    pub topic_alias_max: u16,
    /// Longest keep-alive, in seconds, a client may ask for; 1 to 65535. An MQTT 5 client asking
    /// for more (or for none) is told this value as Server Keep Alive; a 3.x client asking for
    /// more is refused, as mosquitto does. Default 65535.
    pub max_keepalive: u16,
    /// A connection must send CONNECT within this many milliseconds; at least 1. Default 10000.
    pub connect_timeout_ms: u64,
    /// Whether a TLS twin of this listener is started on `tls_bind` when `[tls]` is
    /// configured. Default `true`.
    pub tls_enabled: bool,
    /// Address of the TLS listener. Default `127.0.0.1:8883`.
    pub tls_bind: SocketAddr,
}

impl Default for MqttListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1883)),
            max_packet_bytes: 10 * 1024 * 1024,
            max_inflight: 32,
            topic_alias_max: 16,
            max_keepalive: 65_535,
            connect_timeout_ms: 10_000,
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8883)),
        }
    }
}

/// `[listeners.stomp]`: the STOMP 1.0/1.1/1.2 listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StompListenerConfig {
    /// Whether the listener is started. Default `true`.
    pub enabled: bool,
    /// Address to listen on. Default `127.0.0.1:61613` (loopback only).
    pub bind: SocketAddr,
    /// Largest accepted frame (headers and body), in bytes; at least 1024. Default 10 MiB.
    pub max_frame_bytes: usize,
    /// Most headers accepted in one frame; at least 1. Default 1000.
    pub max_headers: usize,
    /// Largest accepted header line, in bytes; at least 64. Default 10240.
    pub max_header_bytes: usize,
    /// The shortest heart-beat interval, in milliseconds, the server agrees to in either
    /// direction. Like ActiveMQ, the server honours the intervals the client's `heart-beat`
    /// header asks for, raised to this floor. Default 100.
    pub heartbeat_min_ms: u64,
    /// A connection must send CONNECT/STOMP within this many milliseconds; at least 1.
    /// Default 10000.
    pub connect_timeout_ms: u64,
    /// Whether a TLS twin of this listener is started on `tls_bind` when `[tls]` is
    /// configured. Default `true`.
    pub tls_enabled: bool,
    /// Address of the TLS listener. Default `127.0.0.1:61614`.
    pub tls_bind: SocketAddr,
}

impl Default for StompListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61613)),
            max_frame_bytes: 10 * 1024 * 1024,
            max_headers: 1000,
            max_header_bytes: 10240,
            heartbeat_min_ms: 100,
            connect_timeout_ms: 10_000,
            tls_enabled: true,
            tls_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61614)),
        }
    }
}

/// When the store forces written data to stable storage (`store.sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// `"always"`: fsync before a write is acknowledged; an acknowledged message survives a
    /// power cut. The default.
    #[default]
    Always,
    /// `"interval"`: fsync every `store.sync_interval_ms`; a power cut can lose up to that
    /// much acknowledged data.
    Interval,
    /// `"never"`: leave flushing to the operating system; a power cut can lose any amount of
    /// acknowledged data.
    Never,
}

impl SyncMode {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Always => "always",
            SyncMode::Interval => "interval",
            SyncMode::Never => "never",
        }
    }
}

/// `[store]`: the durable journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreConfig {
    /// Durability mode. Default [`SyncMode::Always`].
    pub sync: SyncMode,
    /// Fsync period in milliseconds when `sync = "interval"`; at least 1. Default 100.
    pub sync_interval_ms: u64,
    /// With `sync = "always"`: the longest, in milliseconds, a consumer acknowledgement (or
    /// delivery count) written to the journal waits for an fsync when no persistent send needs
    /// one sooner. `0` fsyncs each on its own. Default 10.
    pub ack_sync_ms: u64,
    /// Journal segment size in bytes; at least 1 MiB. Default 64 MiB.
    pub segment_bytes: u64,
    /// Segments whose live ratio is below this are compacted; `0.0..=1.0`. Default 0.3.
    pub compact_live_ratio: f64,
    /// Truncate damage found before intact records instead of refusing to start.
    /// Default `false`.
    pub repair: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            sync: SyncMode::Always,
            sync_interval_ms: 100,
            ack_sync_ms: 10,
            segment_bytes: 64 * 1024 * 1024,
            compact_live_ratio: 0.3,
            repair: false,
        }
    }
}

/// What happens to a producer whose destination (or the broker) is past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControlPolicy {
    /// `"block"`: the send waits for room (up to `broker.send_timeout_ms`). The default.
    #[default]
    Block,
    /// `"fail"`: the send is rejected at once with a protocol error.
    Fail,
    /// `"drop-oldest"`: the oldest messages of the destination are discarded to make room.
    DropOldest,
}

impl FlowControlPolicy {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowControlPolicy::Block => "block",
            FlowControlPolicy::Fail => "fail",
            FlowControlPolicy::DropOldest => "drop-oldest",
        }
    }
}

/// `[broker]`: broker-wide policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerConfig {
    /// Where messages go after too many redeliveries. A plain address (no wildcards).
    /// Default `ActiveMQ.DLQ`.
    pub dead_letter_queue: String,
    /// Redeliveries before a message is dead-lettered; -1 = unlimited. Default 6 (as ActiveMQ).
    pub max_redeliveries: i32,
    /// Messages sent to a consumer ahead of acknowledgement when the client does not ask for a
    /// prefetch of its own.
    /// Default 1000.
    pub default_prefetch: u32,
    /// Global watermark for message bodies held in memory, in bytes; 0 = no limit.
    /// Default 1 GiB.
    pub memory_limit_bytes: u64,
    /// Global watermark for the store's size on disk, in bytes; 0 = no limit. Default 0.
    pub disk_limit_bytes: u64,
    /// What happens to a producer past a limit. Default [`FlowControlPolicy::Block`].
    pub flow_control: FlowControlPolicy,
    /// With `flow_control = "block"`: 0 waits forever, else the send fails after this many
    /// milliseconds. Default 0.
    pub send_timeout_ms: u64,
    /// How often expired messages are swept, in milliseconds; at least 1. Default 1000.
    pub expiry_check_interval_ms: u64,
    /// Per-destination policies (`[[broker.destinations]]`); the first whose pattern matches
    /// an address wins. Default: none.
    pub destinations: Vec<DestinationPolicy>,
    /// Deliver ready messages by priority (9 first) instead of in send order. Default `false`,
    /// as ActiveMQ's `prioritizedMessages`.
    pub prioritized_messages: bool,
    /// Ready messages of one queue kept in memory; the rest is paged out to spill files under
    /// `data_dir/paging` and read back as the queue drains. Paging also starts past 70 % of
    /// `memory_limit_bytes`. 0 = never page. Default 10000.
    pub queue_page_window: usize,
    /// ActiveMQ 5 virtual topics: a publish to topic `VirtualTopic.<t>` (any protocol) is also
    /// enqueued on every queue named `Consumer.<name>.VirtualTopic.<t>`. Default `true`.
    pub virtual_topics: bool,
    /// ActiveMQ's `selectorAware` for virtual topics: enqueue on a consumer queue only the
    /// messages one of its current consumers selects (none while it has no consumer). Default
    /// `false`, as ActiveMQ: every message is enqueued, unselected ones wait.
    pub virtual_topic_selector_aware: bool,
    /// The topics that are virtual, a pattern (ActiveMQ's `virtualTopic name`). Default
    /// `VirtualTopic.>`.
    pub virtual_topic_name: String,
    /// What consumer queue names start with before the virtual topic's name: whole levels,
    /// `*` for any one level, ending with `.` (ActiveMQ's `virtualTopic prefix`). Default
    /// `Consumer.*.`.
    pub virtual_topic_consumer_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            dead_letter_queue: "ActiveMQ.DLQ".to_owned(),
            max_redeliveries: 6,
            default_prefetch: 1000,
            memory_limit_bytes: 1024 * 1024 * 1024,
            disk_limit_bytes: 0,
            flow_control: FlowControlPolicy::Block,
            send_timeout_ms: 0,
            expiry_check_interval_ms: 1000,
            destinations: Vec::new(),
            prioritized_messages: false,
            queue_page_window: 10_000,
            virtual_topics: true,
            virtual_topic_selector_aware: false,
            virtual_topic_name: "VirtualTopic.>".to_owned(),
            virtual_topic_consumer_prefix: "Consumer.*.".to_owned(),
        }
    }
}

/// One `[[broker.destinations]]` entry: limits and overrides for matching destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationPolicy {
    /// Canonical address pattern: `.`-separated levels, `*` matches one level, `>` matches
    /// the rest (only as the last level). Required. See [`validate_pattern`].
    pub pattern: String,
    /// Most messages held per matching destination; 0 = unlimited. Default 0.
    pub max_messages: u64,
    /// Most body bytes held per matching destination; 0 = unlimited. Default 0.
    pub max_bytes: u64,
    /// Overrides `broker.flow_control` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_control: Option<FlowControlPolicy>,
    /// Overrides `broker.max_redeliveries` when set (-1 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_redeliveries: Option<i32>,
    /// Overrides `broker.dead_letter_queue` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    /// Overrides `broker.prioritized_messages` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prioritized_messages: Option<bool>,
}

impl DestinationPolicy {
    /// A policy for `pattern` with no limits and no overrides.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            max_messages: 0,
            max_bytes: 0,
            flow_control: None,
            max_redeliveries: None,
            dead_letter_queue: None,
            prioritized_messages: None,
        }
    }
}

/// Whether TLS listeners ask clients for a certificate (`tls.client_certificates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertificates {
    /// `"none"`: no client certificate is requested. The default.
    #[default]
    None,
    /// `"optional"`: a client may present a certificate signed by `client_ca_file`; one that
    /// does not is still served (and authenticates with a user name and password).
    Optional,
    /// `"required"`: the handshake fails unless the client presents a certificate signed by
    /// `client_ca_file` (mutual TLS).
    Required,
}

impl ClientCertificates {
    /// The spelling used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCertificates::None => "none",
            ClientCertificates::Optional => "optional",
            ClientCertificates::Required => "required",
        }
    }
}

/// `[tls]`: the certificate every TLS listener presents, and client certificate checking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain, leaf first. Required.
    pub cert_file: PathBuf,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub key_file: PathBuf,
    /// PEM file with the certificate authorities client certificates must chain to.
    /// Required unless `client_certificates = "none"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Whether clients are asked for a certificate. Default [`ClientCertificates::None`].
    pub client_certificates: ClientCertificates,
}

/// `[security]`: limits against abuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityConfig {
    /// Most client connections open at once over all listeners; 0 = no limit. Default 0.
    pub max_connections: u64,
    /// Most client connections open at once from one source IP address; 0 = no limit.
    /// Default 0.
    pub max_connections_per_address: u64,
    /// Most connections open at once authenticated as one configured user (anonymous clients
    /// are not counted); 0 = no limit. Default 0.
    pub max_connections_per_user: u64,
    /// Most subscriptions one connection may hold at once (STOMP SUBSCRIBE, MQTT topic filters,
    /// AMQP 0-9-1 consumers over all channels, OpenWire consumers other than advisory ones);
    /// 0 = no limit. Default 0.
    pub max_subscriptions_per_connection: u64,
    /// Most sessions one OpenWire connection may hold at once (`SessionInfo`; AMQP 0-9-1
    /// channels are bounded by `channel_max` instead); 0 = no limit. Default 0.
    pub max_sessions_per_connection: u64,
    /// Whether a STOMP SEND or SUBSCRIBE that brings a queue into being needs the `admin`
    /// right on it besides `write` / `read`, as on ActiveMQ (and as a queue's first use over
    /// OpenWire or AMQP does here). Default `true`.
    pub implicit_create_needs_admin: bool,
    /// Delay, in milliseconds, before a failed authentication is answered; doubled for each
    /// further failure from the same source address within a minute, up to 30 s.
    /// 0 = answer at once. Default 1000.
    pub auth_failure_delay_ms: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_connections_per_address: 0,
            max_connections_per_user: 0,
            max_subscriptions_per_connection: 0,
            max_sessions_per_connection: 0,
            implicit_create_needs_admin: true,
            auth_failure_delay_ms: 1000,
        }
    }
}

/// One `[[users]]` entry: a user who may authenticate, and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserConfig {
    /// The user name clients log in with (STOMP `login`, MQTT user name, ...), and the common
    /// name (CN) a client certificate must carry to authenticate as this user. Required,
    /// unique, non-empty.
    pub name: String,
    /// The password as an argon2 PHC string (`$argon2id$v=19$...`), as printed by
    /// `gateway hash-password`. Without it the user can authenticate only with a client
    /// certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Groups the user belongs to, named by `[[authorization]]` entries. Default: none.
    pub groups: Vec<String>,
    /// The user's SCRAM-SHA-256 credential (Kafka SASL `SCRAM-SHA-256`), as printed by
    /// `gateway hash-password --scram`: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
    /// (base64). An argon2 `password_hash` cannot give SCRAM keys, so a user who logs in with
    /// SCRAM needs this too; a user with only this field can also log in with its password
    /// (PLAIN, STOMP, ...). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scram_sha256: Option<String>,
}

/// Whether an authorization entry is about queues or topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorizationKind {
    /// The entry was written `queue = "pattern"`.
    Queue,
    /// The entry was written `topic = "pattern"`.
    Topic,
    /// The entry was written `group = "pattern"`: Kafka consumer groups (`read` lets a
    /// principal join, commit to and describe a matching group). Without any group entry,
    /// groups are not authorized.
    Group,
}

/// `[temp_destination_authorization]`, as ActiveMQ's `tempDestinationAuthorizationEntry`: the
/// groups that may read from, write to and create (admin) temporary queues and topics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TempDestinationAuthorization {
    /// Groups that may consume from temporary destinations. Default: none.
    pub read: Vec<String>,
    /// Groups that may send to temporary destinations. Default: none.
    pub write: Vec<String>,
    /// Groups that may create temporary destinations. Default: none.
    pub admin: Vec<String>,
}

/// One `[[authorization]]` entry, as ActiveMQ's `authorizationEntry`: the groups that may read
/// (consume, browse, subscribe), write (send, publish) and admin (create) the destinations
/// matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationEntry {
    /// Queues, topics or (Kafka) consumer groups.
    pub kind: AuthorizationKind,
    /// Canonical destination pattern (`orders.>`, `prices.*.eur`); see [`validate_pattern`].
    pub pattern: String,
    /// Groups that may consume from (subscribe to) matching destinations.
    pub read: Vec<String>,
    /// Groups that may send (publish) to matching destinations.
    pub write: Vec<String>,
    /// Groups that may create matching destinations.
    pub admin: Vec<String>,
}

impl Serialize for AuthorizationEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("AuthorizationEntry", 4)?;
        match self.kind {
            AuthorizationKind::Queue => s.serialize_field("queue", &self.pattern)?,
            AuthorizationKind::Topic => s.serialize_field("topic", &self.pattern)?,
            AuthorizationKind::Group => s.serialize_field("group", &self.pattern)?,
        }
        s.serialize_field("read", &self.read)?;
        s.serialize_field("write", &self.write)?;
        s.serialize_field("admin", &self.admin)?;
        s.end()
    }
}
