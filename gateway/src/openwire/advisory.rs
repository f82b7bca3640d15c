//! Temporary-destination advisories between OpenWire connections.
//!
//! The ActiveMQ JMS client refuses to send to a temporary destination it has not seen announced
//! on `ActiveMQ.Advisory.TempQueue` / `ActiveMQ.Advisory.TempTopic` (its default advisory
//! consumer). The gateway keeps the temporary destinations OpenWire connections created, tells
//! every connection with such an advisory consumer when one is added or removed, and replays the
//! live ones to a new advisory consumer, as ActiveMQ's advisory broker does.

use routes::DestinationKind;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// The advisory topic for temporary queues.
pub const TEMP_QUEUE_ADVISORY: &str = "ActiveMQ.Advisory.TempQueue";
/// The advisory topic for temporary topics.
pub const TEMP_TOPIC_ADVISORY: &str = "ActiveMQ.Advisory.TempTopic";

/// A temporary destination added or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempAdvisory {
    /// The engine name of the destination.
    pub engine_name: String,
    /// Queue or topic.
    pub kind: DestinationKind,
    /// Added (true) or removed.
    pub added: bool,
    /// The engine session that owns it (its own connection is not told).
    pub origin: routes::SessionId,
}

/// What the OpenWire connections of one listener share.
///
/// ### Invariants
///
/// - `live` holds exactly the temporary destinations added and not yet removed.
/// - A change updates `live` and is broadcast under one lock, and [`OpenWireShared::subscribe`]
///   takes its snapshot and its receiver under the same lock: a subscriber misses no change and
///   sees none twice.
pub struct OpenWireShared {
    live: Mutex<BTreeMap<String, (DestinationKind, routes::SessionId)>>,
    events: broadcast::Sender<TempAdvisory>,
}

impl Default for OpenWireShared {
    fn default() -> Self {
        OpenWireShared {
            live: Mutex::new(BTreeMap::new()),
            events: broadcast::channel(1024).0,
        }
    }
}

impl OpenWireShared {
    fn live(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, (DestinationKind, routes::SessionId)>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records and announces a change.
    pub fn announce(&self, advisory: TempAdvisory) {
        let mut live = self.live();
        if advisory.added {
            live.insert(
                advisory.engine_name.clone(),
                (advisory.kind, advisory.origin),
            );
        } else if live.remove(&advisory.engine_name).is_none() {
            return;
        }
        // No receivers is fine.
        let _ = self.events.send(advisory);
    }

    /// Subscribes to changes, with the destinations live now (to replay).
    pub fn subscribe(&self) -> (broadcast::Receiver<TempAdvisory>, Vec<TempAdvisory>) {
        let live = self.live();
        let rx = self.events.subscribe();
        let now = live
            .iter()
            .map(|(name, (kind, origin))| TempAdvisory {
                engine_name: name.clone(),
                kind: *kind,
                added: true,
                origin: *origin,
            })
            .collect();
        (rx, now)
    }
}
