//! Walks a span-preserving TOML tree, checking keys, types and ranges, collecting every error.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::pattern::{validate_address, validate_pattern};
use crate::{
    BrokerConfig, Config, ConfigError, ConfigErrors, DestinationPolicy, FlowControlPolicy,
    MqttListenerConfig, OpenWireListenerConfig, ServerConfig, StompListenerConfig, StoreConfig,
    SyncMode,
};

const ROOT_KEYS: &[&str] = &["server", "listeners", "store", "broker"];
const SERVER_KEYS: &[&str] = &["data_dir", "shutdown_grace_ms", "log_level"];
const LISTENERS_KEYS: &[&str] = &["stomp", "mqtt", "openwire"];
const OPENWIRE_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_frame_bytes",
    "max_inactivity_ms",
    "connect_timeout_ms",
];
const MQTT_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_packet_bytes",
    "max_inflight",
    "topic_alias_max",
    "max_keepalive",
    "connect_timeout_ms",
];
const STOMP_KEYS: &[&str] = &[
    "enabled",
    "bind",
    "max_frame_bytes",
    "max_headers",
    "max_header_bytes",
    "heartbeat_min_ms",
    "connect_timeout_ms",
];
const STORE_KEYS: &[&str] = &[
    "sync",
    "sync_interval_ms",
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
}

fn bind(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut SocketAddr) {
    if let Some(f) = cx.field(t, "bind") {
        if let Some(s) = cx.string(&f) {
            match s.parse::<SocketAddr>() {
                Ok(addr) => *out = addr,
                Err(_) => cx.error_at(&f, format!("invalid socket address {s:?}")),
            }
        }
    }
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
}

fn store(cx: &mut Cx<'_>, t: &Tbl<'_>, out: &mut StoreConfig) {
    cx.choice(t, "sync", SYNC_MODES, &mut out.sync);
    cx.int(t, "sync_interval_ms", POSITIVE, &mut out.sync_interval_ms);
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
    let entries: Vec<(&dyn TableLike, Option<Range<usize>>)> = match f.item {
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
            cx.type_error(f, "an array of tables ([[broker.destinations]])");
            return Vec::new();
        }
    };

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
