//! Durable AMQP topology: durable exchanges and the bindings between durable things survive a
//! restart, as in RabbitMQ. Queues and their messages are the engine's (journaled); exchanges and
//! bindings are kept in `<data_dir>/amqp091/topology.toml`, rewritten (write, fsync, rename)
//! after each change and applied to the engine at start.

use super::broker::{Amqp091Broker, QueueDeclaration};
use codecs::amqp091::{FieldTable, FieldValue, ShortStr};
use routes::{
    Binding, BindingTarget, Engine, ExchangeKind, ExchangeSpec, HeadersArgs, HeadersMatch,
    PropertyValue,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the topology file format.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopologyFile {
    version: u32,
    #[serde(default)]
    exchange: Vec<ExchangeRecord>,
    #[serde(default)]
    binding: Vec<BindingRecord>,
    /// Queues declared non-durable or exclusive: the engine journals every queue, so these are
    /// deleted at start, as RabbitMQ loses them on a restart (exclusive ones also after a crash,
    /// when their connection had no chance to delete them).
    #[serde(default)]
    transient_queues: Vec<String>,
    /// Durable queues declared over AMQP, with their arguments: a redeclaration after a
    /// restart is checked against them (406 when different) and their engine options (TTL,
    /// length limit, dead-lettering, priorities, ...) hold from the start.
    #[serde(default)]
    queue: Vec<QueueRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct QueueRecord {
    name: String,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    argument: Vec<ArgumentRecord>,
}

/// One queue argument: its value as text and its kind (`integer`, `string`, or `other`:
/// kept for equivalence only).
#[derive(Debug, Serialize, Deserialize)]
struct ArgumentRecord {
    key: String,
    value: String,
    kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExchangeRecord {
    name: String,
    kind: String,
    auto_delete: bool,
    internal: bool,
    /// `alternate-exchange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alternate: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BindingRecord {
    source: String,
    /// `queue` or `exchange`.
    target_kind: String,
    target: String,
    key: String,
    /// `all` or `any` for a headers binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers_match: Option<String>,
    /// Header name and expected value (text) pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, String)>,
    /// Headers that only have to be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    present: Vec<String>,
}

/// Where the topology of `data_dir` is kept.
pub fn topology_path(data_dir: &Path) -> PathBuf {
    data_dir.join("amqp091").join("topology.toml")
}

fn durable_queue(broker: &Amqp091Broker, queue: &str) -> bool {
    match broker.declaration(queue) {
        Some(d) => d.durable && d.exclusive_owner.is_none() && !d.auto_delete,
        // Queues of other protocols (and AMQP queues recovered from the journal) are durable.
        None => true,
    }
}

/// Writes the durable part of the engine's topology to `path`.
pub fn save(engine: &Engine, broker: &Amqp091Broker, path: &Path) -> std::io::Result<()> {
    let exchanges = engine.exchanges();
    let durable_exchange = |name: &str| {
        exchanges
            .iter()
            .any(|(n, spec, _)| n == name && spec.durable)
    };
    let mut file = TopologyFile {
        version: FORMAT_VERSION,
        ..TopologyFile::default()
    };
    for (name, spec, bindings) in &exchanges {
        if !spec.durable {
            continue;
        }
        if !routes::exchange::is_reserved(name) {
            file.exchange.push(ExchangeRecord {
                name: name.clone(),
                kind: spec.kind.as_str().to_string(),
                auto_delete: spec.auto_delete,
                internal: spec.internal,
                alternate: engine.alternate_exchange(name),
            });
        }
        for b in bindings {
            let (target_kind, target, keep) = match &b.target {
                BindingTarget::Queue(q) => ("queue", q.clone(), durable_queue(broker, q)),
                BindingTarget::Exchange(x) => ("exchange", x.clone(), durable_exchange(x)),
            };
            if !keep {
                continue;
            }
            let mut record = BindingRecord {
                source: name.clone(),
                target_kind: target_kind.to_string(),
                target,
                key: b.key.clone(),
                headers_match: None,
                headers: Vec::new(),
                present: Vec::new(),
            };
            if let Some(h) = &b.headers {
                record.headers_match = Some(
                    match h.mode {
                        HeadersMatch::All => "all",
                        HeadersMatch::Any => "any",
                    }
                    .to_string(),
                );
                for (k, v) in &h.values {
                    match v {
                        Some(v) => record.headers.push((k.clone(), v.to_text())),
                        None => record.present.push(k.clone()),
                    }
                }
            }
            file.binding.push(record);
        }
    }
    file.transient_queues = broker.transient_queues();
    for (name, d) in broker.durable_declarations() {
        let argument = d
            .arguments
            .iter()
            .map(|(key, value)| {
                let kind = match d.table.get(key) {
                    Some(FieldValue::LongString(_)) => "string",
                    Some(v) if v.as_i64().is_some() => "integer",
                    _ => "other",
                };
                ArgumentRecord {
                    key: key.clone(),
                    value: value.clone(),
                    kind: kind.to_string(),
                }
            })
            .collect();
        file.queue.push(QueueRecord {
            name,
            auto_delete: d.auto_delete,
            argument,
        });
    }
    let text = toml::to_string(&file).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Deletes the transient queues named in `path`, then declares the exchanges and bindings kept
/// there (a missing file is an empty topology). Returns how many exchanges and bindings were
/// restored.
pub fn load(engine: &Engine, path: &Path) -> std::io::Result<(usize, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let file: TopologyFile = toml::from_str(&text).map_err(std::io::Error::other)?;
    if file.version != FORMAT_VERSION {
        return Err(std::io::Error::other(format!(
            "{}: unknown topology format version {}",
            path.display(),
            file.version
        )));
    }
    for queue in &file.transient_queues {
        if let Ok((dropped, _)) = engine.delete_queue(queue, false, false) {
            tracing::debug!(%queue, messages = dropped, "transient AMQP queue removed at start");
        }
    }
    let mut exchanges = 0;
    for x in &file.exchange {
        let Some(kind) = ExchangeKind::parse(&x.kind) else {
            tracing::warn!(exchange = %x.name, kind = %x.kind, "stored exchange of unknown type skipped");
            continue;
        };
        let spec = ExchangeSpec {
            kind,
            durable: true,
            auto_delete: x.auto_delete,
            internal: x.internal,
        };
        match engine.declare_exchange(&x.name, spec) {
            Ok(()) => {
                engine.set_alternate_exchange(&x.name, x.alternate.clone());
                exchanges += 1
            }
            Err(e) => {
                tracing::warn!(exchange = %x.name, error = %e, "stored exchange not restored")
            }
        }
    }
    let mut bindings = 0;
    for b in &file.binding {
        let target = match b.target_kind.as_str() {
            "exchange" => BindingTarget::Exchange(b.target.clone()),
            _ => BindingTarget::Queue(b.target.clone()),
        };
        let headers = b.headers_match.as_deref().map(|mode| HeadersArgs {
            mode: if mode == "any" {
                HeadersMatch::Any
            } else {
                HeadersMatch::All
            },
            values: b
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Some(PropertyValue::String(v.clone()))))
                .chain(b.present.iter().map(|k| (k.clone(), None)))
                .collect(),
        });
        let binding = Binding {
            target,
            key: b.key.clone(),
            headers,
        };
        match engine.bind(&b.source, binding) {
            Ok(()) => bindings += 1,
            Err(e) => {
                tracing::warn!(source = %b.source, target = %b.target, error = %e, "stored binding not restored")
            }
        }
    }
    Ok((exchanges, bindings))
}

/// Gives the durable queues kept in `path` their declarations back (arguments and the engine
/// options they ask for; a queue the engine did not recover is created again); starts their
/// `x-expires` watchers and stream movers. Returns how many were restored. Call within the
/// runtime, before [`load`] (whose bindings may lead to these queues).
pub fn restore_queues(
    engine: &std::sync::Arc<Engine>,
    broker: &std::sync::Arc<Amqp091Broker>,
    path: &Path,
) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let file: TopologyFile = toml::from_str(&text).map_err(std::io::Error::other)?;
    let mut restored = 0;
    for q in file.queue {
        if engine.queue_info(&q.name).is_none() {
            // Declared (declare-ok sent after this file was synced) but its creation had not
            // reached the journal before a crash: the declaration stands, as in RabbitMQ, and
            // the queue is made again below.
            tracing::info!(queue = %q.name, "stored AMQP queue recreated (not in the journal)");
        }
        let mut table = FieldTable::new();
        for a in &q.argument {
            let Ok(key) = ShortStr::try_from(a.key.as_str()) else {
                continue;
            };
            match a.kind.as_str() {
                "integer" => {
                    if let Ok(n) = a.value.parse::<i64>() {
                        table.push(key, FieldValue::I64(n));
                    }
                }
                "string" => table.push(key, FieldValue::string(a.value.clone())),
                _ => {}
            }
        }
        let (options, expires) = match super::arguments::queue_options(&table) {
            Ok(o) => o,
            Err(arg) => {
                tracing::warn!(queue = %q.name, %arg, "stored AMQP queue argument invalid; declaration dropped");
                continue;
            }
        };
        let is_stream = q
            .argument
            .iter()
            .any(|a| a.key == "x-queue-type" && a.value == "stream");
        let options = if is_stream {
            // As at declaration: the engine queue of a stream has no classic-queue limits.
            routes::QueueOptions {
                discard_dead_letters: true,
                ..routes::QueueOptions::default()
            }
        } else {
            options
        };
        if let Err(e) = engine.declare_queue_with(&q.name, options) {
            tracing::warn!(queue = %q.name, error = %e, "stored AMQP queue options not restored");
            continue;
        }
        broker.declare(
            &q.name,
            QueueDeclaration {
                durable: true,
                exclusive_owner: None,
                auto_delete: q.auto_delete,
                arguments: q.argument.into_iter().map(|a| (a.key, a.value)).collect(),
                table: table.clone(),
            },
        );
        broker.touch(&q.name);
        if broker.is_stream(&q.name) {
            if let Some(log) = broker.log() {
                let config = super::stream::stream_config(&table)
                    .unwrap_or_else(|_| routes::store::log::StreamConfig::new(1));
                if let Err(e) = super::stream::ensure_stream(&log, &q.name, config) {
                    tracing::warn!(queue = %q.name, error = %e, "stream of a stored stream queue not available");
                }
            }
            broker.start_mover(engine, &q.name);
        }
        if let Some(expires) = expires {
            if broker.watch_expiry(&q.name) {
                tokio::spawn(super::arguments::expire_when_unused(
                    engine.clone(),
                    broker.clone(),
                    q.name.clone(),
                    expires,
                ));
            }
        }
        restored += 1;
    }
    Ok(restored)
}

/// Engine policies that recover the durable queues kept in `path` with an `x-max-priority`
/// argument in priority order (the engine fixes a queue's ordering when it creates it, which
/// for a recovered queue is before any declaration). An unreadable file gives none.
pub fn priority_policies(path: &Path) -> Vec<routes::DestinationPolicy> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(file) = toml::from_str::<TopologyFile>(&text) else {
        return Vec::new();
    };
    file.queue
        .iter()
        .filter(|q| !routes::address::is_pattern(&q.name))
        .filter_map(|q| {
            let max = q
                .argument
                .iter()
                .find(|a| a.key == "x-max-priority")?
                .value
                .parse::<u64>()
                .ok()?;
            Some(routes::DestinationPolicy {
                pattern: q.name.clone(),
                max_messages: 0,
                max_bytes: 0,
                flow_control: None,
                max_redeliveries: None,
                dead_letter_queue: None,
                prioritized_messages: Some(true),
                max_priority: Some(u8::try_from(max).unwrap_or(u8::MAX)),
            })
        })
        .collect()
}
