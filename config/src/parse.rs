//! Walks a span-preserving TOML tree, checking keys, types and ranges, collecting every error.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::pattern::{validate_address, validate_pattern};
use crate::{
    AdminConfig, AmqpListenerConfig, AuthorizationEntry, AuthorizationKind, BrokerConfig,
    ClientCertificates, Config, ConfigError, ConfigErrors, DestinationPolicy, FlowControlPolicy,
    KafkaListenerConfig, LogConfig, LogFormat, MqttListenerConfig, OpenWireListenerConfig,
    RouteDefinition, RouteEndpoint, RouteMode, SecurityConfig, ServerConfig, StompListenerConfig,
    StoreConfig, StreamDefinition, SyncMode, TempDestinationAuthorization, TlsConfig, UserConfig,
};

const ROOT_KEYS: &[&str] = &[
    "server",
    "listeners",
    "store",
    "broker",
    "tls",
    "security",
    "users",
    "authorization",
    "temp_destination_authorization",
    "admin",
    "log",
    "streams",
    "routes",
];
const TLS_KEYS: &[&str] = &[
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_certificates",
];
const SECURITY_KEYS: &[&str] = &[
    "max_connections",
    "max_connections_per_address",
    "max_connections_per_user",
    "max_subscriptions_per_connection",
    "max_sessions_per_connection",
    "implicit_create_needs_admin",
    "auth_failure_delay_ms",
];
const USER_KEYS: &[&str] = &["name", "password_hash", "groups", "scram_sha256"];
const AUTHORIZATION_KEYS: &[&str] = &["queue", "topic", "group", "read", "write", "admin"];
const TEMP_AUTHORIZATION_KEYS: &[&str] = &["read", "write", "admin"];
const CLIENT_CERTIFICATES: &[(&str, ClientCertificates)] = &[
    ("none", ClientCertificates::None),
    ("optional", ClientCertificates::Optional),
    ("required", ClientCertificates::Required),
];
const ADMIN_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "tls_enabled",
    "tls_bind",
    "users",
    "groups",
    "metrics_auth",
];
const SERVER_KEYS: &[&str] = &["data_dir", "shutdown_grace_ms", "log_level", "log_format"];
const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];
const LISTENERS_KEYS: &[&str] = &["stomp", "mqtt", "kafka", "amqp", "openwire"];
const ROUTE_KEYS: &[&str] = &["name", "from", "to", "group", "mode", "key", "selector"];
const ROUTE_MODES: &[(&str, RouteMode)] = &[("copy", RouteMode::Copy), ("move", RouteMode::Move)];
const KAFKA_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "advertised_host",
    "advertised_port",
    "max_frame_bytes",
    "node_id",
    "group_initial_rebalance_delay_ms",
    "tls_enabled",
    "tls_bind",
    "tls_advertised_port",
    "sasl_mechanisms",
    "require_sasl",
];
/// SASL mechanisms the Kafka listener implements.
const KAFKA_SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256"];
const LOG_KEYS: &[&str] = &[
    "auto_create_streams",
    "default_partitions",
    "segment_bytes",
    "retention_check_interval_ms",
];
const STREAM_KEYS: &[&str] = &["name", "partitions", "retention_ms", "retention_bytes"];
const AMQP_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "frame_max",
    "channel_max",
    "heartbeat_s",
    "connect_timeout_ms",
    "tls_enabled",
    "tls_bind",
];
const OPENWIRE_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_frame_bytes",
    "max_inactivity_ms",
    "connect_timeout_ms",
    "tls_enabled",
    "tls_bind",
];
const MQTT_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_packet_bytes",
    "max_inflight",
    "topic_alias_max",
    "max_keepalive",
    "connect_timeout_ms",
    "tls_enabled",
    "tls_bind",
];
const STOMP_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_frame_bytes",
    "max_headers",
    "max_header_bytes",
    "heartbeat_min_ms",
    "connect_timeout_ms",
    "tls_enabled",
    "tls_bind",
];
const STORE_KEYS: &[&str] = &[
    "sync",
    "sync_interval_ms",
    "ack_sync_ms",
    "segment_bytes",
    "compact_live_ratio",
    "repair",
];
const BROKER_KEYS: &[&str] = &[
    "dead_letter_queue",
    "max_redeliveries",
    "default_prefetch",
    "memory_limit_bytes",
    "disk_limit_bytes",
    "flow_control",
    "send_timeout_ms",
    "expiry_check_interval_ms",
    "destinations",
    "prioritized_messages",
    "queue_page_window",
    "virtual_topics",
    "virtual_topic_selector_aware",
    "virtual_topic_name",
    "virtual_topic_consumer_prefix",
];
const DESTINATION_KEYS: &[&str] = &[
    "pattern",
    "max_messages",
    "max_bytes",
    "flow_control",
    "max_redeliveries",
    "dead_letter_queue",
    "prioritized_messages",
];

const SYNC_MODES: &[(&str, SyncMode)] = &[
    ("always", SyncMode::Always),
    ("interval", SyncMode::Interval),
    ("never", SyncMode::Never),
];
const FLOW_CONTROL: &[(&str, FlowControlPolicy)] = &[
    ("block", FlowControlPolicy::Block),
    ("fail", FlowControlPolicy::Fail),
    ("drop-oldest", FlowControlPolicy::DropOldest),
];

/// Non-negative integers (TOML integers are `i64`, so this is the whole `u64` range TOML can
/// express).
const NON_NEGATIVE: RangeInclusive<i64> = 0..=i64::MAX;
const POSITIVE: RangeInclusive<i64> = 1..=i64::MAX;
const REDELIVERIES: RangeInclusive<i64> = -1..=i32::MAX as i64;

/// Parses and validates `text`; see [`Config::from_toml_str`].
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let mut cx = Cx {
        origin,
        text,
        errors: Vec::new(),
    };
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().replace('\n', "; ");
            cx.errors.push(ConfigError {
                origin: origin.to_owned(),
                line,
                key: String::new(),
                message: format!("TOML syntax error: {message}"),
            });
            return Err(cx.finish());
        }
    };
    let root = Tbl {
        path: String::new(),
        table: doc.as_table(),
        span: None,
    };
    cx.check_keys(&root, ROOT_KEYS);

    let mut config = Config::default();
    if let Some(t) = cx.subtable(&root, "server", SERVER_KEYS) {
        server(&mut cx, &t, &mut config.server);
    }
    if let Some(listeners) = cx.subtable(&root, "listeners", LISTENERS_KEYS) {
        if let Some(t) = cx.subtable(&listeners, "stomp", STOMP_KEYS) {
            stomp(&mut cx, &t, &mut config.listeners.stomp);
        }
        if let Some(t) = cx.subtable(&listeners, "mqtt", MQTT_KEYS) {
            mqtt(&mut cx, &t, &mut config.listeners.mqtt);
        }
        if let Some(t) = cx.subtable(&listeners, "kafka", KAFKA_KEYS) {
            kafka(&mut cx, &t, &mut config.listeners.kafka);
        }
        if let Some(t) = cx.subtable(&listeners, "amqp", AMQP_KEYS) {
            amqp(&mut cx, &t, &mut config.listeners.amqp);
        }
        if let Some(t) = cx.subtable(&listeners, "openwire", OPENWIRE_KEYS) {
            openwire(&mut cx, &t, &mut config.listeners.openwire);
        }
    }
    if let Some(t) = cx.subtable(&root, "store", STORE_KEYS) {
        store(&mut cx, &t, &mut config.store);
    }
    if let Some(t) = cx.subtable(&root, "broker", BROKER_KEYS) {
        broker(&mut cx, &t, &mut config.broker);
    }
    if let Some(t) = cx.subtable(&root, "tls", TLS_KEYS) {
        config.tls = tls(&mut cx, &t);
    }
    if let Some(t) = cx.subtable(&root, "security", SECURITY_KEYS) {
        security(&mut cx, &t, &mut config.security);
    }
    if let Some(f) = cx.field(&root, "users") {
        config.users = users(&mut cx, &f);
    }
    if let Some(f) = cx.field(&root, "authorization") {
        config.authorization = authorization(&mut cx, &f);
    }
    if let Some(t) = cx.subtable(
        &root,
        "temp_destination_authorization",
        TEMP_AUTHORIZATION_KEYS,
    ) {
        config.temp_destination_authorization = Some(temp_destination_authorization(&mut cx, &t));
    }
    if let Some(t) = cx.subtable(&root, "admin", ADMIN_KEYS) {
        admin(&mut cx, &t, &mut config.admin, &config.users);
    }

    if let Some(t) = cx.subtable(&root, "log", LOG_KEYS) {
        log(&mut cx, &t, &mut config.log);
    }
    if let Some(f) = cx.field(&root, "streams") {
        config.streams = streams(&mut cx, &f, config.log.default_partitions);
    }
    if let Some(f) = cx.field(&root, "routes") {
        config.routes = routes(&mut cx, &f);
    }

    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(cx.finish())
    }
}

fn server(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut ServerConfig) {
    if let Some(f) = cx.field(t, "data_dir") {
        if let Some(s) = cx.string(&f) {
            if s.is_empty() {
                cx.error_at(&f, "must not be empty");
            } else {
                out.data_dir = PathBuf::from(s);
            }
        }
    }
    cx.int(
        t,
        "shutdown_grace_ms",
        NON_NEGATIVE,
        &mut out.shutdown_grace_ms,
    );
    if let Some(f) = cx.field(t, "log_level") {
        if let Some(s) = cx.string(&f) {
            if s.trim().is_empty() {
                cx.error_at(
                    &f,
                    "must not be empty (a level such as \"info\" or an EnvFilter directive)",
                );
            } else {
                out.log_level = s.to_owned();
            }
        }
    }
    cx.choice(t, "log_format", LOG_FORMATS, &mut out.log_format);
}

fn bind(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut SocketAddr) {
    socket_address(cx, t, "bind", out);
}

fn socket_address(cx: &mut Cx<'_>, t: &Tbl<'_>, name: &str, out: &mut SocketAddr) {
    if let Some(f) = cx.field(t, name) {
        if let Some(s) = cx.string(&f) {
            match s.parse::<SocketAddr>() {
                Ok(addr) => *out = addr,
                Err(_) => cx.error_at(&f, format!("invalid socket address {s:?}")),
            }
        }
    }
}

fn admin(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut AdminConfig, users: &[UserConfig]) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
    admin_access(cx, t, out, users);
}

/// `[admin] users`, `groups` and `metrics_auth`: who may use the admin API.
fn admin_access(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut AdminConfig, users: &[UserConfig]) {
    if let Some(f) = cx.field(t, "users") {
        if let Some(names) = cx.string_list(&f) {
            for name in &names {
                if !users.iter().any(|u| &u.name == name) {
                    cx.error_at(&f, format!("no [[users]] entry named {name:?}"));
                }
            }
            out.users = names;
        }
    }
    if let Some(f) = cx.field(t, "groups") {
        if let Some(groups) = cx.string_list(&f) {
            out.groups = groups;
        }
    }
    cx.boolean(t, "metrics_auth", &mut out.metrics_auth);
}

fn mqtt(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut MqttListenerConfig) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    cx.int(
        t,
        "max_packet_bytes",
        64..=268_435_460,
        &mut out.max_packet_bytes,
    );
    cx.int(t, "max_inflight", 1..=65_535, &mut out.max_inflight);
    cx.int(t, "topic_alias_max", 0..=65_535, &mut out.topic_alias_max);
    cx.int(t, "max_keepalive", 1..=65_535, &mut out.max_keepalive);
    cx.int(
        t,
        "connect_timeout_ms",
        POSITIVE,
        &mut out.connect_timeout_ms,
    );
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
}

fn kafka(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut KafkaListenerConfig) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    if let Some(f) = cx.field(t, "advertised_host") {
        if let Some(s) = cx.string(&f) {
            if s.is_empty() || s.chars().any(char::is_whitespace) {
                cx.error_at(&f, "must be a host name or IP address");
            } else {
                out.advertised_host = Some(s.to_owned());
            }
        }
    }
    if cx.field(t, "advertised_port").is_some() {
        let mut port = 0u16;
        if cx.int(t, "advertised_port", 1..=65_535, &mut port) {
            out.advertised_port = Some(port);
        }
    }
    cx.int(
        t,
        "max_frame_bytes",
        1024..=i64::from(i32::MAX),
        &mut out.max_frame_bytes,
    );
    cx.int(t, "node_id", 0..=i64::from(i32::MAX), &mut out.node_id);
    cx.int(
        t,
        "group_initial_rebalance_delay_ms",
        0..=300_000,
        &mut out.group_initial_rebalance_delay_ms,
    );
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
    if cx.field(t, "tls_advertised_port").is_some() {
        let mut port = 0u16;
        if cx.int(t, "tls_advertised_port", 1..=65_535, &mut port) {
            out.tls_advertised_port = Some(port);
        }
    }
    if let Some(f) = cx.field(t, "sasl_mechanisms") {
        if let Some(list) = cx.string_list(&f) {
            let unknown: Vec<&String> = list
                .iter()
                .filter(|m| !KAFKA_SASL_MECHANISMS.contains(&m.as_str()))
                .collect();
            if !unknown.is_empty() {
                cx.error_at(
                    &f,
                    format!(
                        "unsupported SASL mechanism(s) {unknown:?}: expected some of {KAFKA_SASL_MECHANISMS:?}"
                    ),
                );
            } else {
                out.sasl_mechanisms = list;
            }
        }
    }
    cx.boolean(t, "require_sasl", &mut out.require_sasl);
}

fn log(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut LogConfig) {
    cx.boolean(t, "auto_create_streams", &mut out.auto_create_streams);
    cx.int(
        t,
        "default_partitions",
        1..=10_000,
        &mut out.default_partitions,
    );
    cx.int(
        t,
        "segment_bytes",
        1024..=i64::from(u32::MAX),
        &mut out.segment_bytes,
    );
    cx.int(
        t,
        "retention_check_interval_ms",
        POSITIVE,
        &mut out.retention_check_interval_ms,
    );
}

/// A stream name as Kafka accepts topic names.
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// `[[streams]]`.
fn streams(cx: &mut Cx<'_>, f: &Field<'_>, default_partitions: u32) -> Vec<StreamDefinition> {
    let Item::ArrayOfTables(aot) = f.item else {
        cx.type_error(f, "an array of tables ([[streams]])");
        return Vec::new();
    };
    let mut out: Vec<StreamDefinition> = Vec::new();
    for (i, table) in aot.iter().enumerate() {
        let t = Tbl {
            path: format!("{}[{i}]", f.path),
            table,
            span: table.span(),
        };
        cx.check_keys(&t, STREAM_KEYS);
        let mut def = StreamDefinition {
            name: String::new(),
            partitions: default_partitions,
            retention_ms: None,
            retention_bytes: None,
        };
        let mut ok = true;
        match cx.field(&t, "name") {
            None => {
                ok = false;
                let line = cx.line(t.span.clone());
                cx.push(
                    line,
                    join(&t.path, "name"),
                    "missing required key (the stream name)",
                );
            }
            Some(nf) => match cx.string(&nf) {
                Some(n) if !valid_stream_name(n) => {
                    ok = false;
                    cx.error_at(
                        &nf,
                        format!(
                            "invalid stream name {n:?}: 1-249 characters of A-Z a-z 0-9 . _ -, \
                             not \".\" or \"..\""
                        ),
                    );
                }
                Some(n) if out.iter().any(|d| d.name == n) => {
                    ok = false;
                    cx.error_at(&nf, format!("duplicate stream {n:?}"));
                }
                Some(n) => def.name = n.to_owned(),
                None => ok = false,
            },
        }
        cx.int(&t, "partitions", 1..=10_000, &mut def.partitions);
        if cx.field(&t, "retention_ms").is_some() {
            let mut v = 0u64;
            if cx.int(&t, "retention_ms", NON_NEGATIVE, &mut v) {
                def.retention_ms = Some(v);
            }
        }
        if cx.field(&t, "retention_bytes").is_some() {
            let mut v = 0u64;
            if cx.int(&t, "retention_bytes", NON_NEGATIVE, &mut v) {
                def.retention_bytes = Some(v);
            }
        }
        if ok {
            out.push(def);
        }
    }
    out
}

/// A route endpoint: `stream:NAME`, `queue:ADDRESS` or `topic:ADDRESS`.
fn endpoint(cx: &mut Cx<'_>, f: &Field<'_>, allow_patterns: bool) -> Option<RouteEndpoint> {
    let s = cx.string(f)?;
    let parsed = if let Some(name) = s.strip_prefix("stream:") {
        if valid_stream_name(name) {
            Ok(RouteEndpoint::Stream(name.to_owned()))
        } else {
            Err(format!("invalid stream name {name:?}"))
        }
    } else if let Some((kind, address)) = s
        .strip_prefix("queue:")
        .map(|a| ("queue", a))
        .or_else(|| s.strip_prefix("topic:").map(|a| ("topic", a)))
    {
        let checked = if allow_patterns {
            validate_pattern(address).map_err(|e| e.to_string())
        } else {
            validate_address(address).map_err(|e| e.to_string())
        };
        match checked {
            Ok(()) if kind == "queue" => Ok(RouteEndpoint::Queue(address.to_owned())),
            Ok(()) => Ok(RouteEndpoint::Topic(address.to_owned())),
            Err(e) => Err(format!("invalid address {address:?}: {e}")),
        }
    } else {
        Err(format!(
            "expected \"stream:NAME\", \"queue:ADDRESS\" or \"topic:ADDRESS\", found {s:?}"
        ))
    };
    match parsed {
        Ok(e) => Some(e),
        Err(message) => {
            cx.error_at(f, message);
            None
        }
    }
}

/// Whether an address has wildcard levels.
fn config_is_pattern(address: &str) -> bool {
    address.split('.').any(|level| level == "*" || level == ">")
}

/// Whether a configured pattern (`*` one level, `>` or `#` the rest, zero levels included)
/// matches an address; the engine's rule, repeated here because config does not depend on it.
fn config_pattern_matches(pattern: &str, address: &str) -> bool {
    let mut pat = pattern.split('.');
    let mut levels = address.split('.');
    loop {
        match (pat.next(), levels.next()) {
            (Some("#" | ">"), _) | (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(l)) if p == l => {}
            _ => return false,
        }
    }
}

/// `[[routes]]`.
fn routes(cx: &mut Cx<'_>, f: &Field<'_>) -> Vec<RouteDefinition> {
    let Item::ArrayOfTables(aot) = f.item else {
        cx.type_error(f, "an array of tables ([[routes]])");
        return Vec::new();
    };
    let mut out: Vec<RouteDefinition> = Vec::new();
    // Where each accepted route is (path and line of its `to`), for the loop check below.
    let mut places: Vec<(String, Option<usize>)> = Vec::new();
    for (i, table) in aot.iter().enumerate() {
        let t = Tbl {
            path: format!("{}[{i}]", f.path),
            table,
            span: table.span(),
        };
        cx.check_keys(&t, ROUTE_KEYS);
        let required = |cx: &mut Cx<'_>, key: &str, what: &str| {
            let field = cx.field(&t, key);
            if field.is_none() {
                let line = cx.line(t.span.clone());
                cx.push(
                    line,
                    join(&t.path, key),
                    format!("missing required key ({what})"),
                );
            }
            field
        };
        let name_field = required(cx, "name", "the route name");
        let from_field = required(
            cx,
            "from",
            "\"stream:NAME\", \"topic:PATTERN\" or \"queue:ADDRESS\"",
        );
        let to_field = required(
            cx,
            "to",
            "\"stream:NAME\", \"queue:ADDRESS\" or \"topic:ADDRESS\"",
        );
        let name = name_field.as_ref().and_then(|nf| {
            let n = cx.string(nf)?;
            if n.is_empty() {
                cx.error_at(nf, "must not be empty");
                None
            } else if out.iter().any(|r| r.name == n) {
                cx.error_at(nf, format!("duplicate route {n:?}"));
                None
            } else {
                Some(n.to_owned())
            }
        });
        let from = from_field.as_ref().and_then(|ff| endpoint(cx, ff, true));
        let to = to_field.as_ref().and_then(|tf| {
            let e = endpoint(cx, tf, false)?;
            match (&from, &e) {
                (Some(RouteEndpoint::Stream(_)), RouteEndpoint::Stream(_)) => {
                    cx.error_at(
                        tf,
                        "a route from a stream goes to \"queue:ADDRESS\" or \"topic:ADDRESS\"",
                    );
                    None
                }
                // A target its own source pattern matches would copy its copies for ever.
                (Some(RouteEndpoint::Queue(p)), RouteEndpoint::Queue(a))
                | (Some(RouteEndpoint::Topic(p)), RouteEndpoint::Topic(a))
                    if config_pattern_matches(p, a) =>
                {
                    cx.error_at(
                        tf,
                        format!("{a:?} matches the route's own source {p:?}: it would loop"),
                    );
                    None
                }
                _ => Some(e),
            }
        });
        // Only a record has a key: refused when either end is known not to be a stream.
        let into_stream = !matches!(from, Some(RouteEndpoint::Stream(_)))
            && !matches!(to, Some(RouteEndpoint::Queue(_) | RouteEndpoint::Topic(_)));
        let mut mode = None;
        if cx.field(&t, "mode").is_some() {
            let mut m = RouteMode::Copy;
            if cx.choice(&t, "mode", ROUTE_MODES, &mut m) {
                mode = Some(m);
            }
        }
        if let (Some(_), Some(mf), Some(RouteEndpoint::Stream(_))) =
            (mode, cx.field(&t, "mode"), &from)
        {
            cx.error_at(&mf, "only routes from a queue or topic have a mode");
        }
        if mode.is_none() {
            if let Some(RouteEndpoint::Queue(q)) = &from {
                if config_is_pattern(q) {
                    if let Some(ff) = &from_field {
                        cx.error_at(
                            ff,
                            "a queue pattern needs its mode: add mode = \"copy\" or \"move\"",
                        );
                    }
                }
            }
        }
        let mut key = None;
        let mut selector = None;
        for (name, out) in [("key", &mut key), ("selector", &mut selector)] {
            if let Some(kf) = cx.field(&t, name) {
                if let Some(v) = cx.string(&kf) {
                    // A selector filters every direction (out of a stream: on the message a
                    // record becomes); a key only means something for records.
                    if !into_stream && name == "key" {
                        cx.error_at(&kf, "only routes into a stream take this key");
                    } else if v.trim().is_empty() {
                        cx.error_at(&kf, "must not be empty");
                    } else {
                        *out = Some(v.to_owned());
                    }
                }
            }
        }
        let mut group = None;
        if let Some(gf) = cx.field(&t, "group") {
            if let Some(g) = cx.string(&gf) {
                if g.is_empty() || g.len() > 120 {
                    cx.error_at(&gf, "must be 1 to 120 bytes");
                } else {
                    group = Some(g.to_owned());
                }
            }
        }
        if let (Some(name), Some(from), Some(to)) = (name, from, to) {
            let mode = match &from {
                RouteEndpoint::Stream(_) => None,
                RouteEndpoint::Queue(_) => Some(mode.unwrap_or(RouteMode::Move)),
                RouteEndpoint::Topic(_) => Some(mode.unwrap_or(RouteMode::Copy)),
            };
            let line = to_field
                .as_ref()
                .and_then(|tf| cx.line(tf.span()))
                .or_else(|| cx.line(t.span.clone()));
            places.push((join(&t.path, "to"), line));
            out.push(RouteDefinition {
                group: group.unwrap_or_else(|| format!("route.{name}")),
                name,
                from,
                to,
                mode,
                key,
                selector,
            });
        }
    }
    // Routes that feed each other in a circle (through queues, topics or a stream) would forward
    // the same messages for ever: refuse the first route of a circle.
    if let Some((i, path)) = (0..out.len()).find_map(|i| route_loop(&out, i).map(|p| (i, p))) {
        let (key, line) = places[i].clone();
        let names: Vec<String> = path.iter().map(|j| format!("{:?}", out[*j].name)).collect();
        cx.push(
            line,
            key,
            format!("routes {} feed each other in a loop", names.join(" -> ")),
        );
    }
    out
}

/// The routes whose source the target of `route` reaches: a queue target the queue patterns,
/// a topic target the topic patterns it matches, a stream target the routes out of it.
fn feeds(routes: &[RouteDefinition], route: usize) -> Vec<usize> {
    let reached = |from: &RouteEndpoint| match (&routes[route].to, from) {
        (RouteEndpoint::Queue(a), RouteEndpoint::Queue(p))
        | (RouteEndpoint::Topic(a), RouteEndpoint::Topic(p)) => config_pattern_matches(p, a),
        (RouteEndpoint::Stream(a), RouteEndpoint::Stream(b)) => a == b,
        _ => false,
    };
    (0..routes.len())
        .filter(|j| reached(&routes[*j].from))
        .collect()
}

/// A circle of routes from `start` back to it (route indexes, `start` first and last), if any.
fn route_loop(routes: &[RouteDefinition], start: usize) -> Option<Vec<usize>> {
    let mut path = vec![start];
    let mut seen = vec![false; routes.len()];
    fn walk(
        routes: &[RouteDefinition],
        start: usize,
        path: &mut Vec<usize>,
        seen: &mut [bool],
    ) -> bool {
        let Some(&at) = path.last() else {
            return false;
        };
        for next in feeds(routes, at) {
            if next == start {
                path.push(next);
                return true;
            }
            if !seen[next] {
                seen[next] = true;
                path.push(next);
                if walk(routes, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(routes, start, &mut path, &mut seen).then_some(path)
}

fn amqp(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut AmqpListenerConfig) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    cx.int(t, "frame_max", 4096..=2_147_483_647, &mut out.frame_max);
    cx.int(t, "channel_max", 1..=65_535, &mut out.channel_max);
    cx.int(t, "heartbeat_s", 0..=65_535, &mut out.heartbeat_s);
    cx.int(
        t,
        "connect_timeout_ms",
        POSITIVE,
        &mut out.connect_timeout_ms,
    );
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
}

fn openwire(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut OpenWireListenerConfig) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    cx.int(
        t,
        "max_frame_bytes",
        1024..=2_147_483_647,
        &mut out.max_frame_bytes,
    );
    cx.int(
        t,
        "max_inactivity_ms",
        0..=i64::MAX,
        &mut out.max_inactivity_ms,
    );
    cx.int(
        t,
        "connect_timeout_ms",
        POSITIVE,
        &mut out.connect_timeout_ms,
    );
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
}

fn stomp(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut StompListenerConfig) {
    cx.boolean(t, "enabled", &mut out.enabled);
    bind(cx, t, &mut out.bind);
    cx.int(
        t,
        "max_frame_bytes",
        1024..=i64::MAX,
        &mut out.max_frame_bytes,
    );
    cx.int(t, "max_headers", POSITIVE, &mut out.max_headers);
    cx.int(
        t,
        "max_header_bytes",
        64..=i64::MAX,
        &mut out.max_header_bytes,
    );
    cx.int(
        t,
        "heartbeat_min_ms",
        NON_NEGATIVE,
        &mut out.heartbeat_min_ms,
    );
    cx.int(
        t,
        "connect_timeout_ms",
        POSITIVE,
        &mut out.connect_timeout_ms,
    );
    cx.boolean(t, "tls_enabled", &mut out.tls_enabled);
    socket_address(cx, t, "tls_bind", &mut out.tls_bind);
}

fn store(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut StoreConfig) {
    cx.choice(t, "sync", SYNC_MODES, &mut out.sync);
    cx.int(t, "sync_interval_ms", POSITIVE, &mut out.sync_interval_ms);
    cx.int(t, "ack_sync_ms", 0..=60_000, &mut out.ack_sync_ms);
    cx.int(
        t,
        "segment_bytes",
        1024 * 1024..=i64::MAX,
        &mut out.segment_bytes,
    );
    if let Some(f) = cx.field(t, "compact_live_ratio") {
        let v = match f.item.as_value() {
            Some(Value::Float(v)) => Some(*v.value()),
            // Accept `0` and `1` written as integers; they are exact in an f64.
            Some(Value::Integer(v)) => Some(*v.value() as f64),
            _ => {
                cx.type_error(&f, "a number between 0.0 and 1.0");
                None
            }
        };
        if let Some(v) = v {
            if (0.0..=1.0).contains(&v) {
                out.compact_live_ratio = v;
            } else {
                cx.error_at(&f, format!("must be between 0.0 and 1.0, found {v}"));
            }
        }
    }
    cx.boolean(t, "repair", &mut out.repair);
}

fn broker(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut BrokerConfig) {
    cx.boolean(t, "prioritized_messages", &mut out.prioritized_messages);
    cx.boolean(t, "virtual_topics", &mut out.virtual_topics);
    cx.boolean(
        t,
        "virtual_topic_selector_aware",
        &mut out.virtual_topic_selector_aware,
    );
    if let Some(f) = cx.field(t, "virtual_topic_name") {
        if let Some(p) = cx.string(&f) {
            match validate_pattern(p) {
                Ok(()) => out.virtual_topic_name = p.to_owned(),
                Err(e) => cx.error_at(&f, format!("invalid pattern {p:?}: {e}")),
            }
        }
    }
    if let Some(f) = cx.field(t, "virtual_topic_consumer_prefix") {
        if let Some(p) = cx.string(&f) {
            let levels = p
                .strip_suffix('.')
                .filter(|l| !l.contains('>') && !l.contains('#'));
            match levels.map(validate_pattern) {
                Some(Ok(())) => out.virtual_topic_consumer_prefix = p.to_owned(),
                Some(Err(e)) => cx.error_at(&f, format!("invalid prefix {p:?}: {e}")),
                None => cx.error_at(
                    &f,
                    format!("invalid prefix {p:?}: whole levels ending with '.', no '>' (e.g. \"Consumer.*.\")"),
                ),
            }
        }
    }
    cx.int(
        t,
        "queue_page_window",
        0..=100_000_000,
        &mut out.queue_page_window,
    );
    if let Some(f) = cx.field(t, "dead_letter_queue") {
        if let Some(dlq) = cx.address(&f) {
            out.dead_letter_queue = dlq;
        }
    }
    cx.int(
        t,
        "max_redeliveries",
        REDELIVERIES,
        &mut out.max_redeliveries,
    );
    cx.int(
        t,
        "default_prefetch",
        0..=i64::from(u32::MAX),
        &mut out.default_prefetch,
    );
    cx.int(
        t,
        "memory_limit_bytes",
        NON_NEGATIVE,
        &mut out.memory_limit_bytes,
    );
    cx.int(
        t,
        "disk_limit_bytes",
        NON_NEGATIVE,
        &mut out.disk_limit_bytes,
    );
    cx.choice(t, "flow_control", FLOW_CONTROL, &mut out.flow_control);
    cx.int(t, "send_timeout_ms", NON_NEGATIVE, &mut out.send_timeout_ms);
    cx.int(
        t,
        "expiry_check_interval_ms",
        POSITIVE,
        &mut out.expiry_check_interval_ms,
    );
    if let Some(f) = cx.field(t, "destinations") {
        out.destinations = destinations(cx, &f);
    }
}

/// `[[broker.destinations]]` (or an inline array of inline tables).
fn destinations(cx: &mut Cx<'_>, f: &Field<'_>) -> Vec<DestinationPolicy> {
    let entries = table_entries(cx, f, "an array of tables ([[broker.destinations]])");

    let mut policies = Vec::new();
    let mut seen: HashMap<String, Option<usize>> = HashMap::new();
    for (i, (table, span)) in entries.into_iter().enumerate() {
        let t = Tbl {
            path: format!("{}[{i}]", f.path),
            table,
            span,
        };
        cx.check_keys(&t, DESTINATION_KEYS);
        let mut ok = true;
        let mut policy = DestinationPolicy::new(String::new());
        match cx.field(&t, "pattern") {
            None => {
                ok = false;
                let line = cx.line(t.span.clone());
                cx.push(
                    line,
                    join(&t.path, "pattern"),
                    "missing required key (the address pattern this policy applies to)",
                );
            }
            Some(pf) => match cx.string(&pf) {
                None => ok = false,
                Some(p) => {
                    if let Err(e) = validate_pattern(p) {
                        ok = false;
                        cx.error_at(&pf, format!("invalid pattern {p:?}: {e}"));
                    } else {
                        let line = cx.line(pf.span());
                        if let Some(first) = seen.get(p) {
                            let at = first.map_or(String::new(), |l| format!(" at line {l}"));
                            cx.error_at(
                                &pf,
                                format!(
                                    "duplicate pattern {p:?} (first defined{at}); only the first \
                                     matching entry applies, so this one never would"
                                ),
                            );
                        } else {
                            seen.insert(p.to_owned(), line);
                        }
                        policy.pattern = p.to_owned();
                    }
                }
            },
        }
        cx.int(&t, "max_messages", NON_NEGATIVE, &mut policy.max_messages);
        cx.int(&t, "max_bytes", NON_NEGATIVE, &mut policy.max_bytes);
        if cx.field(&t, "flow_control").is_some() {
            let mut fc = FlowControlPolicy::default();
            if cx.choice(&t, "flow_control", FLOW_CONTROL, &mut fc) {
                policy.flow_control = Some(fc);
            }
        }
        if cx.field(&t, "max_redeliveries").is_some() {
            let mut n = 0i32;
            if cx.int(&t, "max_redeliveries", REDELIVERIES, &mut n) {
                policy.max_redeliveries = Some(n);
            }
        }
        if let Some(df) = cx.field(&t, "dead_letter_queue") {
            policy.dead_letter_queue = cx.address(&df);
        }
        if cx.field(&t, "prioritized_messages").is_some() {
            let mut on = false;
            cx.boolean(&t, "prioritized_messages", &mut on);
            policy.prioritized_messages = Some(on);
        }
        if ok {
            policies.push(policy);
        }
    }
    policies
}

/// `[tls]`: both files are required; a client CA is required when client certificates are asked.
fn tls(cx: &mut Cx<'_>, t: &Tbl<'_>) -> Option<TlsConfig> {
    let cert_file = cx.required_path(t, "cert_file", "the PEM certificate chain");
    let key_file = cx.required_path(t, "key_file", "the PEM private key");
    let client_ca_file = cx.field(t, "client_ca_file").and_then(|f| cx.path(&f));
    let mut client_certificates = ClientCertificates::None;
    cx.choice(
        t,
        "client_certificates",
        CLIENT_CERTIFICATES,
        &mut client_certificates,
    );
    if client_certificates != ClientCertificates::None && client_ca_file.is_none() {
        let line = cx.line(
            cx.field(t, "client_certificates")
                .and_then(|f| f.span())
                .or(t.span.clone()),
        );
        cx.push(
            line,
            join(&t.path, "client_ca_file"),
            format!(
                "missing: client_certificates = {:?} needs the CA file client certificates \
                 must chain to",
                client_certificates.as_str()
            ),
        );
    }
    Some(TlsConfig {
        cert_file: cert_file?,
        key_file: key_file?,
        client_ca_file,
        client_certificates,
    })
}

fn security(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut SecurityConfig) {
    cx.int(t, "max_connections", NON_NEGATIVE, &mut out.max_connections);
    cx.int(
        t,
        "max_connections_per_address",
        NON_NEGATIVE,
        &mut out.max_connections_per_address,
    );
    cx.int(
        t,
        "max_connections_per_user",
        NON_NEGATIVE,
        &mut out.max_connections_per_user,
    );
    cx.int(
        t,
        "max_subscriptions_per_connection",
        NON_NEGATIVE,
        &mut out.max_subscriptions_per_connection,
    );
    cx.int(
        t,
        "max_sessions_per_connection",
        NON_NEGATIVE,
        &mut out.max_sessions_per_connection,
    );
    cx.boolean(
        t,
        "implicit_create_needs_admin",
        &mut out.implicit_create_needs_admin,
    );
    cx.int(
        t,
        "auth_failure_delay_ms",
        0..=60_000,
        &mut out.auth_failure_delay_ms,
    );
}

/// The entries of an array of tables (`[[name]]`, or an inline array of inline tables); other
/// values are reported.
fn table_entries<'d>(
    cx: &mut Cx<'_>,
    f: &Field<'d>,
    expected: &str,
) -> Vec<(&'d dyn TableLike, Option<Range<usize>>)> {
    match f.item {
        Item::ArrayOfTables(aot) => aot
            .iter()
            .map(|t| (t as &dyn TableLike, t.span()))
            .collect(),
        Item::Value(Value::Array(arr)) => {
            let mut entries = Vec::new();
            for (i, v) in arr.iter().enumerate() {
                match v {
                    Value::InlineTable(t) => entries.push((t as &dyn TableLike, t.span())),
                    other => {
                        let line = cx.line(other.span()).or(cx.line(f.span()));
                        cx.push(
                            line,
                            format!("{}[{i}]", f.path),
                            format!("expected a table, found {}", value_kind(other)),
                        );
                    }
                }
            }
            entries
        }
        _ => {
            cx.type_error(f, expected);
            Vec::new()
        }
    }
}

/// `[[users]]`.
fn users(cx: &mut Cx<'_>, f: &Field<'_>) -> Vec<UserConfig> {
    let entries = table_entries(cx, f, "an array of tables ([[users]])");
    let mut users = Vec::new();
    let mut seen: HashMap<String, Option<usize>> = HashMap::new();
    for (i, (table, span)) in entries.into_iter().enumerate() {
        let t = Tbl {
            path: format!("{}[{i}]", f.path),
            table,
            span,
        };
        cx.check_keys(&t, USER_KEYS);
        let mut ok = true;
        let mut user = UserConfig {
            name: String::new(),
            password_hash: None,
            groups: Vec::new(),
            scram_sha256: None,
        };
        match cx.field(&t, "name") {
            None => {
                ok = false;
                let line = cx.line(t.span.clone());
                cx.push(
                    line,
                    join(&t.path, "name"),
                    "missing required key (the user name)",
                );
            }
            Some(nf) => match cx.string(&nf) {
                None => ok = false,
                Some("") => {
                    ok = false;
                    cx.error_at(&nf, "must not be empty");
                }
                Some(name) => {
                    let line = cx.line(nf.span());
                    if let Some(first) = seen.get(name) {
                        ok = false;
                        let at = first.map_or(String::new(), |l| format!(" at line {l}"));
                        cx.error_at(&nf, format!("duplicate user {name:?} (first defined{at})"));
                    } else {
                        seen.insert(name.to_owned(), line);
                    }
                    user.name = name.to_owned();
                }
            },
        }
        if let Some(hf) = cx.field(&t, "password_hash") {
            match cx.string(&hf) {
                None => ok = false,
                Some(hash) => match check_password_hash(hash) {
                    Ok(()) => user.password_hash = Some(hash.to_owned()),
                    Err(e) => {
                        ok = false;
                        // Never echo the value: a password pasted here by mistake stays out of
                        // logs.
                        cx.error_at(&hf, e);
                    }
                },
            }
        }
        if let Some(gf) = cx.field(&t, "groups") {
            match cx.string_list(&gf) {
                Some(groups) => user.groups = groups,
                None => ok = false,
            }
        }
        if let Some(sf) = cx.field(&t, "scram_sha256") {
            match cx.string(&sf) {
                None => ok = false,
                Some(credential) => match check_scram_credential(credential) {
                    Ok(()) => user.scram_sha256 = Some(credential.to_owned()),
                    Err(e) => {
                        ok = false;
                        // Never echo the value (as for password_hash).
                        cx.error_at(&sf, e);
                    }
                },
            }
        }
        if ok {
            users.push(user);
        }
    }
    users
}

/// Checks the shape of a SCRAM-SHA-256 credential as `gateway hash-password --scram` prints it:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64, 4096 to 1000000
/// iterations, 32-byte keys.
fn check_scram_credential(text: &str) -> Result<(), String> {
    const HINT: &str = "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> \
                        (generate one with `gateway hash-password --scram`)";
    fn base64(s: &str) -> bool {
        !s.is_empty()
            && s.len().is_multiple_of(4)
            && s.trim_end_matches('=').len() + 2 >= s.len()
            && s.trim_end_matches('=')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    }
    let parts = text
        .strip_prefix("SCRAM-SHA-256$")
        .and_then(|rest| rest.split_once('$'))
        .and_then(|(params, keys)| Some((params.split_once(':')?, keys.split_once(':')?)));
    let Some(((iterations, salt), (stored, server))) = parts else {
        return Err(format!("not a SCRAM-SHA-256 credential: {HINT}"));
    };
    match iterations.parse::<u32>() {
        Ok(4096..=1_000_000) => {}
        _ => {
            return Err(format!(
                "the iteration count must be 4096 to 1000000: {HINT}"
            ))
        }
    }
    // 32 bytes are 44 base64 characters.
    if !base64(salt)
        || !base64(stored)
        || !base64(server)
        || stored.len() != 44
        || server.len() != 44
    {
        return Err(format!(
            "the salt or a key is not valid base64 of the right size: {HINT}"
        ));
    }
    Ok(())
}

/// Checks that `hash` is an argon2 PHC string such as `gateway hash-password` prints.
fn check_password_hash(hash: &str) -> Result<(), String> {
    const HINT: &str = "(generate one with `gateway hash-password`)";
    let parsed = password_hash::PasswordHash::new(hash)
        .map_err(|e| format!("not a PHC password hash string: {e} {HINT}"))?;
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => {}
        other => {
            return Err(format!(
                "unsupported hash algorithm {other:?}: expected argon2id, argon2i or argon2d \
                 {HINT}"
            ))
        }
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(format!("the PHC string has no salt or no hash {HINT}"));
    }
    Ok(())
}

/// `[temp_destination_authorization]`.
fn temp_destination_authorization(cx: &mut Cx<'_>, t: &Tbl<'_>) -> TempDestinationAuthorization {
    let mut out = TempDestinationAuthorization::default();
    for (name, list) in [
        ("read", &mut out.read),
        ("write", &mut out.write),
        ("admin", &mut out.admin),
    ] {
        if let Some(gf) = cx.field(t, name) {
            if let Some(groups) = cx.string_list(&gf) {
                *list = groups;
            }
        }
    }
    out
}

/// `[[authorization]]`.
fn authorization(cx: &mut Cx<'_>, f: &Field<'_>) -> Vec<AuthorizationEntry> {
    let entries = table_entries(cx, f, "an array of tables ([[authorization]])");
    let mut out = Vec::new();
    for (i, (table, span)) in entries.into_iter().enumerate() {
        let t = Tbl {
            path: format!("{}[{i}]", f.path),
            table,
            span,
        };
        cx.check_keys(&t, AUTHORIZATION_KEYS);
        let queue = cx.field(&t, "queue");
        let topic = cx.field(&t, "topic");
        // `group = "pattern"`: Kafka consumer groups.
        let group = cx.field(&t, "group");
        let target = match (queue, topic, group) {
            (Some(q), None, None) => Some((AuthorizationKind::Queue, q)),
            (None, Some(tp), None) => Some((AuthorizationKind::Topic, tp)),
            (None, None, Some(g)) => Some((AuthorizationKind::Group, g)),
            (Some(_), Some(tp), _) => {
                cx.error_at(
                    &tp,
                    "an entry names either a queue or a topic pattern, not both",
                );
                None
            }
            (Some(_), None, Some(g)) | (None, Some(_), Some(g)) => {
                cx.error_at(
                    &g,
                    "an entry names one of a queue, a topic or a group pattern",
                );
                None
            }
            (None, None, None) => {
                let line = cx.line(t.span.clone());
                cx.push(
                    line,
                    join(&t.path, "queue"),
                    "missing required key: queue = \"pattern\" or topic = \"pattern\"",
                );
                None
            }
        };
        let mut entry = AuthorizationEntry {
            kind: AuthorizationKind::Queue,
            pattern: String::new(),
            read: Vec::new(),
            write: Vec::new(),
            admin: Vec::new(),
        };
        let mut ok = false;
        if let Some((kind, pf)) = target {
            if let Some(p) = cx.string(&pf) {
                match validate_pattern(p) {
                    Ok(()) => {
                        ok = true;
                        entry.kind = kind;
                        entry.pattern = p.to_owned();
                    }
                    Err(e) => cx.error_at(&pf, format!("invalid pattern {p:?}: {e}")),
                }
            }
        }
        for (name, list) in [
            ("read", &mut entry.read),
            ("write", &mut entry.write),
            ("admin", &mut entry.admin),
        ] {
            if let Some(gf) = cx.field(&t, name) {
                match cx.string_list(&gf) {
                    Some(groups) => *list = groups,
                    None => ok = false,
                }
            }
        }
        if ok {
            out.push(entry);
        }
    }
    out
}

/// A table being checked, with its dotted path.
struct Tbl<'d> {
    path: String,
    table: &'d dyn TableLike,
    span: Option<Range<usize>>,
}

/// A key found in a table.
struct Field<'d> {
    path: String,
    key_span: Option<Range<usize>>,
    item: &'d Item,
}

impl Field<'_> {
    /// Where to point for an error about this field's value: the value, else its key.
    fn span(&self) -> Option<Range<usize>> {
        self.item.span().or_else(|| self.key_span.clone())
    }
}

/// Collects errors for one document.
struct Cx<'a> {
    origin: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl<'a> Cx<'a> {
    fn finish(mut self) -> ConfigErrors {
        // Stable: errors on one line keep their schema order; errors without a line go last.
        self.errors
            .sort_by_key(|e| (e.line.is_none(), e.line.unwrap_or(0)));
        ConfigErrors {
            errors: self.errors,
        }
    }

    /// 1-based line where a byte span starts.
    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        Some(line_of(self.text, span?.start))
    }

    fn push(&mut self, line: Option<usize>, key: String, message: impl Into<String>) {
        self.errors.push(ConfigError {
            origin: self.origin.to_owned(),
            line,
            key,
            message: message.into(),
        });
    }

    fn error_at(&mut self, f: &Field<'_>, message: impl Into<String>) {
        let line = self.line(f.span());
        self.push(line, f.path.clone(), message);
    }

    fn type_error(&mut self, f: &Field<'_>, expected: &str) {
        let found = item_kind(f.item);
        self.error_at(f, format!("expected {expected}, found {found}"));
    }

    /// Reports every key of `t` not in `allowed`.
    fn check_keys(&mut self, t: &Tbl<'_>, allowed: &[&str]) {
        for (name, item) in t.table.iter() {
            if allowed.contains(&name) {
                continue;
            }
            let span = t
                .table
                .key(name)
                .and_then(|k| k.span())
                .or_else(|| item.span());
            let line = self.line(span);
            self.push(
                line,
                join(&t.path, name),
                format!(
                    "unknown key {name:?} (expected one of: {})",
                    allowed.join(", ")
                ),
            );
        }
    }

    fn field<'d>(&self, t: &Tbl<'d>, name: &str) -> Option<Field<'d>> {
        let (key, item) = t.table.get_key_value(name)?;
        if item.is_none() {
            return None;
        }
        Some(Field {
            path: join(&t.path, name),
            key_span: key.span(),
            item,
        })
    }

    /// Looks up a sub-table and checks its keys; a non-table value is a type error.
    fn subtable<'d>(&mut self, t: &Tbl<'d>, name: &str, allowed: &[&str]) -> Option<Tbl<'d>> {
        let f = self.field(t, name)?;
        match f.item.as_table_like() {
            Some(table) => {
                let sub = Tbl {
                    span: f.span(),
                    path: f.path,
                    table,
                };
                self.check_keys(&sub, allowed);
                Some(sub)
            }
            None => {
                self.type_error(&f, "a table");
                None
            }
        }
    }

    fn string<'d>(&mut self, f: &Field<'d>) -> Option<&'d str> {
        match f.item.as_value() {
            Some(Value::String(s)) => Some(s.value().as_str()),
            _ => {
                self.type_error(f, "a string");
                None
            }
        }
    }

    /// A non-empty path.
    fn path(&mut self, f: &Field<'_>) -> Option<PathBuf> {
        let s = self.string(f)?;
        if s.is_empty() {
            self.error_at(f, "must not be empty");
            return None;
        }
        Some(PathBuf::from(s))
    }

    /// A path that must be present.
    fn required_path(&mut self, t: &Tbl<'_>, name: &str, what: &str) -> Option<PathBuf> {
        match self.field(t, name) {
            Some(f) => self.path(&f),
            None => {
                let line = self.line(t.span.clone());
                self.push(
                    line,
                    join(&t.path, name),
                    format!("missing required key ({what})"),
                );
                None
            }
        }
    }

    /// An array of non-empty strings (group names).
    fn string_list(&mut self, f: &Field<'_>) -> Option<Vec<String>> {
        let Some(Value::Array(arr)) = f.item.as_value() else {
            self.type_error(f, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            match v {
                Value::String(s) if !s.value().is_empty() => out.push(s.value().clone()),
                Value::String(_) => {
                    ok = false;
                    let line = self.line(v.span()).or(self.line(f.span()));
                    self.push(line, format!("{}[{i}]", f.path), "must not be empty");
                }
                other => {
                    ok = false;
                    let line = self.line(other.span()).or(self.line(f.span()));
                    self.push(
                        line,
                        format!("{}[{i}]", f.path),
                        format!("expected a string, found {}", value_kind(other)),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A plain address (dead-letter queue names).
    fn address(&mut self, f: &Field<'_>) -> Option<String> {
        let s = self.string(f)?;
        match validate_address(s) {
            Ok(()) => Some(s.to_owned()),
            Err(e) => {
                self.error_at(f, format!("invalid address {s:?}: {e}"));
                None
            }
        }
    }

    /// Sets `out` from an integer key within `range`; returns whether it was set.
    fn int<T>(&mut self, t: &Tbl<'_>, name: &str, range: RangeInclusive<i64>, out: &mut T) -> bool
    where
        T: TryFrom<i64>,
    {
        let Some(f) = self.field(t, name) else {
            return false;
        };
        let v = match f.item.as_value() {
            Some(Value::Integer(v)) => *v.value(),
            _ => {
                self.type_error(&f, "an integer");
                return false;
            }
        };
        if !range.contains(&v) {
            let (lo, hi) = (range.start(), range.end());
            let msg = if *hi == i64::MAX {
                format!("must be at least {lo}, found {v}")
            } else {
                format!("must be between {lo} and {hi}, found {v}")
            };
            self.error_at(&f, msg);
            return false;
        }
        match T::try_from(v) {
            Ok(v) => {
                *out = v;
                true
            }
            Err(_) => {
                self.error_at(&f, format!("{v} is too large for this platform"));
                false
            }
        }
    }

    fn boolean(&mut self, t: &Tbl<'_>, name: &str, out: &mut bool) {
        let Some(f) = self.field(t, name) else {
            return;
        };
        match f.item.as_value() {
            Some(Value::Boolean(v)) => *out = *v.value(),
            _ => self.type_error(&f, "a boolean (true or false)"),
        }
    }

    /// Sets `out` from a string key that must be one of `choices`; returns whether it was set.
    fn choice<T: Copy>(
        &mut self,
        t: &Tbl<'_>,
        name: &str,
        choices: &[(&str, T)],
        out: &mut T,
    ) -> bool {
        let Some(f) = self.field(t, name) else {
            return false;
        };
        let expected = choices
            .iter()
            .map(|(s, _)| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(Value::String(s)) = f.item.as_value() else {
            self.type_error(&f, &format!("one of {expected}"));
            return false;
        };
        let s = s.value();
        match choices.iter().find(|(name, _)| name == s) {
            Some((_, v)) => {
                *out = *v;
                true
            }
            None => {
                self.error_at(&f, format!("expected one of {expected}, found {s:?}"));
                false
            }
        }
    }
}

fn join(path: &str, name: impl Display) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// 1-based line of a byte offset. An offset at the very end of a text that ends in a newline
/// (where a parser reports "unexpected end of input") counts as the last line, not the empty
/// one after it.
fn line_of(text: &str, offset: usize) -> usize {
    let mut end = offset.min(text.len());
    if end == text.len() && text.ends_with('\n') {
        end = end.saturating_sub(1);
    }
    let newlines = text.bytes().take(end).filter(|&b| b == b'\n').count();
    newlines + 1
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_kind(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}
