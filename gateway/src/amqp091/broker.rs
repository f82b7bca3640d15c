//! What AMQP 0-9-1 connections share: how each queue was declared (durable, exclusive owner,
//! auto-delete, arguments) and which queues have an exclusive consumer. Exchanges, bindings,
//! queues and messages themselves live in the engine.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use codecs::amqp091::FieldTable;
use routes::store::log::Log;
use routes::Engine;
use std::sync::Arc;

/// How a queue was declared over AMQP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDeclaration {
    /// Declared durable.
    pub durable: bool,
    /// The connection that owns an exclusive queue.
    pub exclusive_owner: Option<u64>,
    /// Deleted when its last consumer goes (once it had one).
    pub auto_delete: bool,
    /// `x-queue-type`, `x-max-priority` and the other arguments, as text, for equivalence.
    pub arguments: Vec<(String, String)>,
    /// The arguments as declared (typed), from which the engine options are made again after
    /// a restart.
    pub table: FieldTable,
}

/// State shared by every AMQP 0-9-1 connection of the gateway.
///
/// ### Invariants
/// - A queue in `declarations` with an `exclusive_owner` is deleted when that connection ends.
#[derive(Default)]
pub struct Amqp091Broker {
    declarations: Mutex<HashMap<String, QueueDeclaration>>,
    exclusive_consumers: Mutex<HashSet<String>>,
    last_used: Mutex<HashMap<String, Instant>>,
    /// Queues with an `x-expires` watcher running.
    expiring: Mutex<HashSet<String>>,
    /// Where durable exchanges and bindings are kept (none: not kept).
    topology: Option<PathBuf>,
    /// Serializes topology writes.
    topology_lock: Mutex<()>,
    next_connection: AtomicU64,
    next_name: AtomicU64,
    /// The partitioned log stream queues live in (none: stream queues are refused).
    log: Option<Arc<Log>>,
    /// Stream queues whose mover (engine queue -> log) runs.
    movers: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Amqp091Broker {
    /// Shared state that keeps durable exchanges and bindings in `path`.
    pub fn with_topology(path: PathBuf) -> Self {
        Amqp091Broker {
            topology: Some(path),
            ..Amqp091Broker::default()
        }
    }

    /// Serves stream queues (`x-queue-type: stream`) from `log`.
    pub fn with_log(mut self, log: Arc<Log>) -> Self {
        self.log = Some(log);
        self
    }

    /// The log stream queues live in.
    pub fn log(&self) -> Option<Arc<Log>> {
        self.log.clone()
    }

    /// True when `queue` was declared as a stream queue.
    pub fn is_stream(&self, queue: &str) -> bool {
        lock(&self.declarations)
            .get(queue)
            .is_some_and(|d| super::stream::is_stream_arguments(&d.arguments))
    }

    /// Starts moving what the engine queue `queue` receives into the stream of that name,
    /// unless that already runs.
    pub fn start_mover(self: &Arc<Self>, engine: &Arc<Engine>, queue: &str) {
        let Some(log) = self.log.clone() else {
            return;
        };
        if !lock(&self.movers).insert(queue.to_string()) {
            return;
        }
        let broker = Arc::clone(self);
        let name = queue.to_string();
        tokio::spawn(super::stream::run_mover(
            Arc::clone(engine),
            log,
            name.clone(),
            move || {
                lock(&broker.movers).remove(&name);
            },
        ));
    }

    /// Writes the durable topology after a change (errors are logged: the change itself stands).
    pub fn save_topology(&self, engine: &Engine) {
        let Some(path) = &self.topology else {
            return;
        };
        let _guard = lock(&self.topology_lock);
        if let Err(e) = super::topology::save(engine, self, path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the AMQP topology");
        }
    }

    /// A new connection id.
    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A server-generated name with `prefix` (`amq.gen-`, `amq.ctag-`), unique in this process.
    pub fn generate_name(&self, prefix: &str) -> String {
        let n = self.next_name.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{prefix}{:x}-{n}", std::process::id())
    }

    /// The declaration of `queue`, if it was declared over AMQP since the gateway started.
    pub fn declaration(&self, queue: &str) -> Option<QueueDeclaration> {
        lock(&self.declarations).get(queue).cloned()
    }

    /// Records (or replaces) the declaration of `queue`.
    pub fn declare(&self, queue: &str, declaration: QueueDeclaration) {
        lock(&self.declarations).insert(queue.to_string(), declaration);
    }

    /// Notes that `queue` was used now (declared, consumed from, read with `basic.get`).
    pub fn touch(&self, queue: &str) {
        lock(&self.last_used).insert(queue.to_string(), Instant::now());
    }

    /// How long `queue` has gone unused.
    pub fn idle_for(&self, queue: &str) -> Duration {
        lock(&self.last_used)
            .get(queue)
            .map(|t| t.elapsed())
            .unwrap_or(Duration::MAX)
    }

    /// Registers an `x-expires` watcher for `queue`; false if one already runs.
    pub fn watch_expiry(&self, queue: &str) -> bool {
        lock(&self.expiring).insert(queue.to_string())
    }

    /// Forgets a deleted queue.
    pub fn forget(&self, queue: &str) {
        lock(&self.expiring).remove(queue);
        lock(&self.last_used).remove(queue);
        lock(&self.declarations).remove(queue);
        lock(&self.exclusive_consumers).remove(queue);
    }

    /// The queues declared durable and not exclusive, by name, with their declarations: what
    /// the topology file keeps so that their arguments hold after a restart.
    pub fn durable_declarations(&self) -> Vec<(String, QueueDeclaration)> {
        let mut out: Vec<(String, QueueDeclaration)> = lock(&self.declarations)
            .iter()
            .filter(|(_, d)| d.durable && d.exclusive_owner.is_none())
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The queues declared non-durable or exclusive, by name.
    pub fn transient_queues(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.declarations)
            .iter()
            .filter(|(_, d)| !d.durable || d.exclusive_owner.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// The exclusive queues owned by `connection`.
    pub fn exclusive_queues_of(&self, connection: u64) -> Vec<String> {
        lock(&self.declarations)
            .iter()
            .filter(|(_, d)| d.exclusive_owner == Some(connection))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// True when `queue` is exclusive to a connection other than `connection`.
    pub fn locked_for(&self, queue: &str, connection: u64) -> bool {
        lock(&self.declarations)
            .get(queue)
            .and_then(|d| d.exclusive_owner)
            .is_some_and(|owner| owner != connection)
    }

    /// Marks `queue` as having an exclusive consumer; false if it already had one.
    pub fn claim_exclusive_consumer(&self, queue: &str) -> bool {
        lock(&self.exclusive_consumers).insert(queue.to_string())
    }

    /// True when `queue` has an exclusive consumer.
    pub fn has_exclusive_consumer(&self, queue: &str) -> bool {
        lock(&self.exclusive_consumers).contains(queue)
    }

    /// Releases the exclusive consumer mark of `queue`.
    pub fn release_exclusive_consumer(&self, queue: &str) {
        lock(&self.exclusive_consumers).remove(queue);
    }
}
