//! ActiveMQ 5 virtual topics: a message published to topic `VirtualTopic.<t>` is also enqueued
//! on every existing queue named `Consumer.<name>.VirtualTopic.<t>` (ActiveMQ's default
//! `VirtualTopic.>` / `Consumer.*.` naming), whatever protocol published it and whatever
//! protocol consumes the queue.
//!
//! A consumer queue is an ordinary anycast queue: it exists from its first use (usually its
//! first consumer) on, keeps collecting without consumers, survives restarts, and its consumers
//! compete for its messages, each with its own selector. Messages published before the queue
//! exists do not reach it, as on ActiveMQ.
//!
//! With [`VirtualTopics::selector_aware`] (ActiveMQ's `selectorAware`, off by default as there),
//! a message is enqueued on a consumer queue only when one of the queue's consumers at that
//! moment would select it (a consumer without a selector selects everything); a queue without
//! consumers then gets nothing. Without it, every message is enqueued and a message no selector
//! matches waits in the queue.

use super::{lock, Engine, Queue, QueueKind, Registry};
use crate::message::Message;
use std::collections::HashSet;
use std::sync::Arc;

/// The prefix of virtual topic names (ActiveMQ's default `VirtualTopic.>`).
pub const VIRTUAL_TOPIC_PREFIX: &str = "VirtualTopic.";
/// The prefix of consumer queue names (ActiveMQ's default `Consumer.*.`).
pub const CONSUMER_QUEUE_PREFIX: &str = "Consumer.";

/// How publishes to virtual topics reach consumer queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualTopics {
    /// Fan virtual topic publishes out to consumer queues at all. Default `true`.
    pub enabled: bool,
    /// Enqueue on a consumer queue only what one of its current consumers selects (ActiveMQ's
    /// `selectorAware`). Default `false`, as ActiveMQ.
    pub selector_aware: bool,
}

impl Default for VirtualTopics {
    fn default() -> Self {
        VirtualTopics {
            enabled: true,
            selector_aware: false,
        }
    }
}

/// The virtual topic a consumer queue reads, by ActiveMQ's default naming:
/// `Consumer.<name>.VirtualTopic.<t>` reads what is published to `VirtualTopic.<t>`.
pub fn virtual_topic_of(queue: &str) -> Option<&str> {
    let rest = queue.strip_prefix(CONSUMER_QUEUE_PREFIX)?;
    let (name, topic) = rest.split_once('.')?;
    let suffix = topic.strip_prefix(VIRTUAL_TOPIC_PREFIX)?;
    (!name.is_empty() && !suffix.is_empty()).then_some(topic)
}

impl Engine {
    /// Sets how virtual topics behave (see the module documentation); applies to the
    /// publishes that follow.
    pub fn set_virtual_topics(&self, settings: VirtualTopics) {
        *lock(&self.virtual_topics) = settings;
    }

    /// The virtual topic settings in force.
    pub fn virtual_topics(&self) -> VirtualTopics {
        *lock(&self.virtual_topics)
    }

    /// Adds to `targets` the consumer queues of `address` when it is a virtual topic (each
    /// queue once), leaving out, when selector-aware, those whose consumers would not select
    /// `message`.
    pub(super) fn add_virtual_topic_queues(
        &self,
        address: &str,
        message: &Message,
        targets: &mut Vec<Arc<Queue>>,
    ) {
        let settings = self.virtual_topics();
        if !settings.enabled || !address.starts_with(VIRTUAL_TOPIC_PREFIX) {
            return;
        }
        let reg = lock(&self.registry);
        let mut seen: HashSet<u64> = targets.iter().map(|q| q.id).collect();
        for queue in consumer_queues(&reg, address) {
            if settings.selector_aware && !some_consumer_selects(&queue, message) {
                continue;
            }
            if seen.insert(queue.id) {
                targets.push(queue);
            }
        }
    }
}

/// The existing consumer queues of virtual topic `address`.
fn consumer_queues(reg: &Registry, address: &str) -> Vec<Arc<Queue>> {
    reg.queues
        .iter()
        .filter(|(name, q)| {
            matches!(q.kind, QueueKind::Anycast) && virtual_topic_of(name) == Some(address)
        })
        .map(|(_, q)| q.clone())
        .collect()
}

/// Whether one of the queue's consumers would select `message` (under the registry lock; the
/// queue lock is taken after it, as everywhere).
fn some_consumer_selects(queue: &Queue, message: &Message) -> bool {
    let st = lock(&queue.state);
    st.consumers
        .iter()
        .any(|c| c.selector.as_ref().is_none_or(|s| s.matches(message, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_topic_consumer_queues_follow_activemq_naming() {
        assert_eq!(
            virtual_topic_of("Consumer.A.VirtualTopic.Orders"),
            Some("VirtualTopic.Orders")
        );
        assert_eq!(
            virtual_topic_of("Consumer.billing.VirtualTopic.a.b"),
            Some("VirtualTopic.a.b")
        );
        assert_eq!(virtual_topic_of("Consumer..VirtualTopic.Orders"), None);
        assert_eq!(virtual_topic_of("Consumer.A.VirtualTopic."), None);
        assert_eq!(virtual_topic_of("orders"), None);
        assert_eq!(virtual_topic_of("Consumer.A.B.VirtualTopic.Orders"), None);
    }
}
