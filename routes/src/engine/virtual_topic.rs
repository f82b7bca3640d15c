//! ActiveMQ 5 virtual topics: a message published to topic `VirtualTopic.<t>` is also enqueued
//! on every existing queue named `Consumer.<name>.VirtualTopic.<t>` (ActiveMQ's default
//! `VirtualTopic.>` / `Consumer.*.` naming, both configurable as ActiveMQ's `name` and `prefix`),
//! whatever protocol published it and whatever protocol consumes the queue.
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
use crate::address::pattern_matches;
use crate::message::Message;
use std::collections::HashSet;
use std::sync::Arc;

/// The topics that are virtual by default (ActiveMQ's default `name`).
pub const VIRTUAL_TOPIC_PATTERN: &str = "VirtualTopic.>";
/// The prefix of consumer queue names by default (ActiveMQ's default `prefix`).
pub const CONSUMER_QUEUE_PREFIX: &str = "Consumer.*.";

/// How publishes to virtual topics reach consumer queues (ActiveMQ's `virtualTopic` element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualTopics {
    /// Fan virtual topic publishes out to consumer queues at all. Default `true`.
    pub enabled: bool,
    /// Enqueue on a consumer queue only what one of its current consumers selects (ActiveMQ's
    /// `selectorAware`). Default `false`, as ActiveMQ.
    pub selector_aware: bool,
    /// The topics that are virtual, a pattern (ActiveMQ's `name`). Default `VirtualTopic.>`.
    pub topic_pattern: String,
    /// What a consumer queue's name starts with before the topic's name: a pattern of whole
    /// levels ending with `.`, without `>` (ActiveMQ's `prefix`). Default `Consumer.*.`.
    pub consumer_prefix: String,
}

impl Default for VirtualTopics {
    fn default() -> Self {
        VirtualTopics {
            enabled: true,
            selector_aware: false,
            topic_pattern: VIRTUAL_TOPIC_PATTERN.to_string(),
            consumer_prefix: CONSUMER_QUEUE_PREFIX.to_string(),
        }
    }
}

impl VirtualTopics {
    /// The virtual topic a queue consumes under these settings: `queue` is the consumer
    /// prefix's levels, then a topic matching the topic pattern. Names with an empty level are
    /// never consumer queues.
    pub fn topic_of<'q>(&self, queue: &'q str) -> Option<&'q str> {
        let prefix = self.consumer_prefix.strip_suffix('.')?;
        if queue.split('.').any(str::is_empty) {
            return None;
        }
        let levels = prefix.split('.').count();
        let split = queue.match_indices('.').nth(levels - 1)?.0;
        let head = queue.get(..split)?;
        let topic = queue.get(split + 1..)?;
        (pattern_matches(prefix, head) && pattern_matches(&self.topic_pattern, topic))
            .then_some(topic)
    }
}

/// The virtual topic a consumer queue reads, by ActiveMQ's default naming:
/// `Consumer.<name>.VirtualTopic.<t>` reads what is published to `VirtualTopic.<t>`.
pub fn virtual_topic_of(queue: &str) -> Option<&str> {
    VirtualTopics::default().topic_of(queue)
}

impl Engine {
    /// Sets how virtual topics behave (see the module documentation); applies to the
    /// publishes that follow.
    pub fn set_virtual_topics(&self, settings: VirtualTopics) {
        *lock(&self.virtual_topics) = settings;
    }

    /// The virtual topic settings in force.
    pub fn virtual_topics(&self) -> VirtualTopics {
        lock(&self.virtual_topics).clone()
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
        if !settings.enabled || !pattern_matches(&settings.topic_pattern, address) {
            return;
        }
        let reg = lock(&self.registry);
        let mut seen: HashSet<u64> = targets.iter().map(|q| q.id).collect();
        for queue in consumer_queues(&reg, &settings, address) {
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
fn consumer_queues(reg: &Registry, settings: &VirtualTopics, address: &str) -> Vec<Arc<Queue>> {
    reg.queues
        .iter()
        .filter(|(name, q)| {
            matches!(q.kind, QueueKind::Anycast)
                && name.ends_with(address)
                && settings.topic_of(name) == Some(address)
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

    #[test]
    fn custom_naming_as_activemq_name_and_prefix() {
        let custom = VirtualTopics {
            topic_pattern: "events.>".into(),
            consumer_prefix: "VirtualTopicConsumers.*.".into(),
            ..VirtualTopics::default()
        };
        assert_eq!(
            custom.topic_of("VirtualTopicConsumers.billing.events.orders"),
            Some("events.orders")
        );
        assert_eq!(custom.topic_of("Consumer.A.VirtualTopic.Orders"), None);
        assert_eq!(custom.topic_of("VirtualTopicConsumers.billing.other"), None);
        let two_levels = VirtualTopics {
            consumer_prefix: "Q.*.*.".into(),
            ..VirtualTopics::default()
        };
        assert_eq!(
            two_levels.topic_of("Q.a.b.VirtualTopic.x"),
            Some("VirtualTopic.x")
        );
        assert_eq!(two_levels.topic_of("Q.a.VirtualTopic.x"), None);
    }
}
