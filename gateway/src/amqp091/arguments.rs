//! Queue and binding arguments: equivalence, the engine options they ask for (`x-message-ttl`,
//! `x-max-length`, `x-overflow`, `x-dead-letter-*`, `x-max-priority`, `x-queue-type`), the
//! `x-expires` watcher, and headers-exchange binding arguments.

use super::broker::Amqp091Broker;
use super::convert;
use codecs::amqp091::{FieldTable, FieldValue, ShortStr};
use routes::{Engine, HeadersArgs, HeadersMatch, Overflow, QueueOptions};
use std::sync::Arc;
use std::time::Duration;

fn text(s: &ShortStr) -> String {
    s.to_string_lossy().into_owned()
}

/// The arguments that matter for queue equivalence, as text.
pub(super) fn queue_arguments(table: &FieldTable) -> Vec<(String, String)> {
    let mut args: Vec<(String, String)> = table
        .iter()
        .map(|(k, v)| {
            let value = match v {
                FieldValue::LongString(b) => String::from_utf8_lossy(b).into_owned(),
                other => other
                    .as_i64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| format!("{other:?}")),
            };
            (text(k), value)
        })
        .collect();
    args.sort();
    args
}

/// The engine options a queue's arguments ask for, and its `x-expires`; `Err` names the first
/// invalid argument.
pub(super) fn queue_options(
    table: &FieldTable,
) -> Result<(QueueOptions, Option<Duration>), String> {
    let mut options = QueueOptions {
        discard_dead_letters: true,
        ..QueueOptions::default()
    };
    let mut expires = None;
    let non_negative = |name: &str, v: &FieldValue| -> Result<u64, String> {
        v.as_i64()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| name.to_string())
    };
    let mut dlx = None;
    let mut dl_key = None;
    for (key, value) in table.iter() {
        let key = text(key);
        match key.as_str() {
            "x-message-ttl" => {
                options.message_ttl = Some(Duration::from_millis(non_negative(&key, value)?));
            }
            "x-expires" => {
                let ms = non_negative(&key, value)?;
                if ms == 0 {
                    return Err(key);
                }
                expires = Some(Duration::from_millis(ms));
            }
            "x-max-length" => options.max_length = Some(non_negative(&key, value)?),
            "x-max-length-bytes" => options.max_length_bytes = Some(non_negative(&key, value)?),
            "x-overflow" => {
                options.overflow = match value.as_str() {
                    Some("drop-head") => Overflow::DropHead,
                    Some("reject-publish") => Overflow::RejectPublish,
                    Some("reject-publish-dlx") => Overflow::RejectPublishDeadLetter,
                    _ => return Err(key),
                }
            }
            "x-dead-letter-exchange" => match value.as_str() {
                Some(v) => dlx = Some(v.to_string()),
                None => return Err(key),
            },
            "x-dead-letter-routing-key" => match value.as_str() {
                Some(v) => dl_key = Some(v.to_string()),
                None => return Err(key),
            },
            "x-max-priority" => {
                // Every level RabbitMQ allows (up to 255) is kept: the engine ranks by it.
                match u8::try_from(non_negative(&key, value)?) {
                    Ok(p) => options.max_priority = Some(p),
                    Err(_) => return Err(key),
                }
            }
            "x-queue-type" if !matches!(value.as_str(), Some("classic" | "quorum" | "stream")) => {
                return Err(key);
            }
            _ => {}
        }
    }
    if let Some(exchange) = dlx {
        options.dead_letter = Some((exchange, dl_key));
    }
    Ok((options, expires))
}

/// Deletes a queue declared with `x-expires` once it has had no consumer and no use for that
/// long (RabbitMQ's queue TTL).
pub(super) async fn expire_when_unused(
    engine: Arc<Engine>,
    broker: Arc<Amqp091Broker>,
    queue: String,
    expires: Duration,
) {
    let step = (expires / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        tokio::time::sleep(step).await;
        let Some(info) = engine.queue_info(&queue) else {
            broker.forget(&queue);
            return;
        };
        if info.consumers > 0 {
            broker.touch(&queue);
            continue;
        }
        if broker.idle_for(&queue) >= expires {
            let _ = engine.delete_queue(&queue, false, false);
            broker.forget(&queue);
            broker.save_topology(&engine);
            tracing::debug!(%queue, "queue expired (x-expires)");
            return;
        }
    }
}

/// The arguments of a headers-exchange binding (none for an empty table).
pub(super) fn headers_args(table: &FieldTable) -> Option<HeadersArgs> {
    let mode = match table.get("x-match").and_then(FieldValue::as_str) {
        Some("any") | Some("any-with-x") => HeadersMatch::Any,
        _ => HeadersMatch::All,
    };
    let values: Vec<_> = table
        .iter()
        .filter(|(k, _)| !k.as_bytes().starts_with(b"x-"))
        .map(|(k, v)| (text(k), convert::property_from_field(v)))
        .collect();
    (!table.is_empty()).then_some(HeadersArgs { mode, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arguments_become_engine_options() {
        let table = FieldTable::new()
            .with("x-message-ttl", FieldValue::I32(1500))
            .with("x-max-length", FieldValue::I64(10))
            .with("x-overflow", "reject-publish")
            .with("x-dead-letter-exchange", "dlx")
            .with("x-max-priority", FieldValue::U8(20))
            .with("x-expires", FieldValue::I32(60000))
            .with("x-queue-type", "quorum");
        let (options, expires) = queue_options(&table).unwrap();
        assert_eq!(options.message_ttl, Some(Duration::from_millis(1500)));
        assert_eq!(options.max_length, Some(10));
        assert_eq!(options.overflow, Overflow::RejectPublish);
        assert_eq!(options.dead_letter, Some(("dlx".to_string(), None)));
        assert_eq!(options.max_priority, Some(20));
        assert!(options.discard_dead_letters);
        assert_eq!(expires, Some(Duration::from_secs(60)));
    }

    #[test]
    fn invalid_arguments_are_named() {
        for (key, value) in [
            ("x-message-ttl", FieldValue::I32(-1)),
            ("x-overflow", FieldValue::from("sometimes")),
            ("x-queue-type", FieldValue::from("weird")),
            ("x-expires", FieldValue::I32(0)),
        ] {
            let table = FieldTable::new().with(key, value);
            assert_eq!(queue_options(&table).err().as_deref(), Some(key));
        }
    }

    #[test]
    fn headers_binding_arguments() {
        let table = FieldTable::new()
            .with("x-match", "any")
            .with("a", "1")
            .with("b", FieldValue::Void);
        let args = headers_args(&table).unwrap();
        assert_eq!(args.mode, HeadersMatch::Any);
        assert_eq!(args.values.len(), 2);
        assert!(headers_args(&FieldTable::new()).is_none());
    }
}
