//! The dead-lettering history of a message, as RabbitMQ keeps it in the `x-death` header: one
//! entry per (queue, reason), most recent first, each with a count, the exchange and routing
//! keys the message had when it died there, and the time of the last such death.
//!
//! The engine records it when a queue's options dead-letter a message (AMQP's
//! `x-dead-letter-exchange`); it travels in one hidden property ([`DEATH_HISTORY`]) in a small
//! text form, and the AMQP 0-9-1 session turns it into the `x-death` array of tables.

use crate::message::{Message, PropertyValue};

/// Hidden property holding the history (`amqp.` properties are not shown to STOMP or MQTT
/// consumers).
pub const DEATH_HISTORY: &str = "amqp.x-death";

/// Separates entries.
const ENTRY_SEP: char = '\u{1e}';
/// Separates the fields of an entry.
const FIELD_SEP: char = '\u{1f}';
/// Separates routing keys.
const KEY_SEP: char = '\u{1d}';

/// One `x-death` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// The queue the message was dead-lettered from.
    pub queue: String,
    /// `rejected`, `expired`, `maxlen` or `delivery_limit`.
    pub reason: String,
    /// How many times the message died in this queue for this reason.
    pub count: u64,
    /// The exchange the message had been published to.
    pub exchange: String,
    /// The routing keys it had been published with.
    pub routing_keys: Vec<String>,
    /// When it first died there, seconds since the Unix epoch.
    pub time_s: u64,
}

fn encode(history: &[Death]) -> String {
    let mut out = String::new();
    for (i, d) in history.iter().enumerate() {
        if i > 0 {
            out.push(ENTRY_SEP);
        }
        let keys: Vec<&str> = d.routing_keys.iter().map(String::as_str).collect();
        let fields = [
            d.queue.clone(),
            d.reason.clone(),
            d.count.to_string(),
            d.exchange.clone(),
            d.time_s.to_string(),
            keys.join(&KEY_SEP.to_string()),
        ];
        out.push_str(&fields.join(&FIELD_SEP.to_string()));
    }
    out
}

/// The history recorded in `message`, most recent first (entries that do not parse are
/// skipped).
pub fn history(message: &Message) -> Vec<Death> {
    let Some(PropertyValue::String(text)) = message.properties.get(DEATH_HISTORY) else {
        return Vec::new();
    };
    text.split(ENTRY_SEP)
        .filter_map(|entry| {
            let mut f = entry.split(FIELD_SEP);
            let queue = f.next()?.to_string();
            let reason = f.next()?.to_string();
            let count = f.next()?.parse().ok()?;
            let exchange = f.next()?.to_string();
            let time_s = f.next()?.parse().ok()?;
            let keys = f.next()?;
            let routing_keys = if keys.is_empty() {
                Vec::new()
            } else {
                keys.split(KEY_SEP).map(str::to_string).collect()
            };
            Some(Death {
                queue,
                reason,
                count,
                exchange,
                routing_keys,
                time_s,
            })
        })
        .collect()
}

/// Records that `message` died in `queue` for `reason` (with the exchange and routing key it
/// carries now) at `time_s`: the entry for (queue, reason) has its count raised and moves to
/// the front (keeping the exchange, keys and time of its first death there), or a new entry
/// with count 1 goes there (RabbitMQ 3.10's rule).
pub fn record_death(
    message: &mut Message,
    queue: &str,
    reason: &str,
    exchange: &str,
    routing_key: &str,
    time_s: u64,
) {
    let mut history = history(message);
    let entry = match history
        .iter()
        .position(|d| d.queue == queue && d.reason == reason)
    {
        Some(i) => {
            let mut d = history.remove(i);
            d.count = d.count.saturating_add(1);
            d
        }
        None => Death {
            queue: queue.to_string(),
            reason: reason.to_string(),
            count: 1,
            exchange: exchange.to_string(),
            routing_keys: vec![routing_key.to_string()],
            time_s,
        },
    };
    history.insert(0, entry);
    message.properties.insert(
        DEATH_HISTORY.to_string(),
        PropertyValue::String(encode(&history)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_deaths_count_and_move_to_the_front() {
        let mut m = Message::default();
        assert!(history(&m).is_empty());
        record_death(&mut m, "work", "rejected", "jobs", "job.1", 10);
        record_death(&mut m, "retry", "expired", "dlx", "job.1", 11);
        record_death(&mut m, "work", "rejected", "jobs", "job.1", 12);
        let h = history(&m);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[0],
            Death {
                queue: "work".into(),
                reason: "rejected".into(),
                count: 2,
                exchange: "jobs".into(),
                routing_keys: vec!["job.1".into()],
                time_s: 10,
            }
        );
        assert_eq!((h[1].queue.as_str(), h[1].count), ("retry", 1));
    }

    #[test]
    fn garbage_is_no_history() {
        let mut m = Message::default();
        m.properties.insert(
            DEATH_HISTORY.into(),
            PropertyValue::String("no fields here".into()),
        );
        assert!(history(&m).is_empty());
        record_death(&mut m, "", "maxlen", "", "", 0);
        assert_eq!(history(&m).len(), 1);
    }
}
