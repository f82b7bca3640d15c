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
    /// directive. Never empty. Default `info`.
    pub log_level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            shutdown_grace_ms: 5000,
            log_level: "info".to_owned(),
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
    /// The OpenWire (ActiveMQ JMS client) listener (`[listeners.openwire]`).
    pub openwire: OpenWireListenerConfig,
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
}

impl Default for OpenWireListenerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61616)),
            max_frame_bytes: 104_857_600,
            max_inactivity_ms: 30_000,
            connect_timeout_ms: 10_000,
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
