//! Routes from a stream into a queue or topic (`[[routes]]` with `from = "stream:NAME"`): each
//! partition is read as the route's consumer group, every record becomes a persistent message,
//! and the group's offset is committed only after the message is durable in the queue store,
//! so delivery is at least once (a crash between the two repeats the records after the last
//! commit). Events produced by Kafka clients thereby reach STOMP, MQTT and JMS consumers.
//!
//! Record -> message (see docs/mapping.md): the value becomes the body byte for byte; each
//! header becomes a string property (bytes that are not UTF-8 stay bytes; a repeated name keeps
//! its first value), `content-type` sets the content type; the key is property `kafka.key`
//! (and the message group, so one key keeps its order for JMS message-group consumers); the
//! record timestamp is the message timestamp; `kafka.topic`, `kafka.partition` and
//! `kafka.offset` say where it came from.

use bytes::Bytes;
use config::{RouteDefinition, RouteEndpoint};
use routes::store::log::{Log, LogError, StoredRecord};
use routes::{BodyKind, Destination, Engine, Message, PropertyValue};
use std::sync::Arc;
use std::time::Duration;

/// Most bytes of records read at once per partition.
const READ_BYTES: usize = 1 << 20;
/// How often a route waits for its stream to appear, or retries after an error.
const RETRY: Duration = Duration::from_secs(1);

/// Starts every stream route; returns their tasks (abort them at shutdown: an interrupted
/// batch is repeated from the last commit).
pub fn start(
    engine: &Arc<Engine>,
    log: &Arc<Log>,
    routes: &[RouteDefinition],
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for route in routes {
        let RouteEndpoint::Stream(stream) = &route.from else {
            continue;
        };
        let destination = match &route.to {
            RouteEndpoint::Queue(a) => Destination::queue(a.clone()),
            RouteEndpoint::Topic(a) => Destination::topic(a.clone()),
            RouteEndpoint::Stream(_) => continue,
        };
        tasks.push(tokio::spawn(run_route(
            Arc::clone(engine),
            Arc::clone(log),
            route.clone(),
            stream.clone(),
            destination,
        )));
    }
    tasks
}

async fn run_route(
    engine: Arc<Engine>,
    log: Arc<Log>,
    route: RouteDefinition,
    stream: String,
    destination: Destination,
) {
    let partitions = loop {
        if let Some(cfg) = log.stream_config(&stream) {
            break cfg.partitions;
        }
        tokio::time::sleep(RETRY).await;
    };
    tracing::info!(route = %route.name, %stream, partitions, to = %destination.name, "stream route running");
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..partitions {
        tasks.spawn(run_partition(
            Arc::clone(&engine),
            Arc::clone(&log),
            route.clone(),
            stream.clone(),
            partition,
            destination.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn blocking<T: Send + 'static>(
    log: &Arc<Log>,
    f: impl FnOnce(&Log) -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    let log = Arc::clone(log);
    match tokio::task::spawn_blocking(move || f(&log)).await {
        Ok(r) => r,
        Err(e) => Err(LogError::InvalidConfig(format!("log task failed: {e}"))),
    }
}

async fn run_partition(
    engine: Arc<Engine>,
    log: Arc<Log>,
    route: RouteDefinition,
    stream: String,
    partition: u32,
    destination: Destination,
) {
    let (session, _events) = engine.connect(None);
    let mut offset = match log.committed_offset(&route.group, &stream, partition) {
        Some((o, _)) => o,
        None => log.earliest_offset(&stream, partition).unwrap_or(0),
    };
    loop {
        let Ok(mut appended) = log.subscribe(&stream, partition) else {
            tracing::warn!(route = %route.name, %stream, "stream deleted; route stops");
            return;
        };
        appended.borrow_and_update();
        let (s, from) = (stream.clone(), offset);
        let records = match blocking(&log, move |l| l.read(&s, partition, from, READ_BYTES)).await {
            Ok(r) => r,
            Err(LogError::OffsetOutOfRange {
                earliest, latest, ..
            }) => {
                // Retention removed what the route had not read (or the stream was recreated).
                offset = if offset < earliest { earliest } else { latest };
                tracing::warn!(route = %route.name, %stream, partition, offset, "route skipped to the stream's range");
                continue;
            }
            Err(e) => {
                tracing::warn!(route = %route.name, %stream, partition, error = %e, "route cannot read");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if records.is_empty() {
            if appended.changed().await.is_err() {
                return;
            }
            continue;
        }
        let mut next = offset;
        for record in records {
            let record_offset = record.offset;
            let mut message = to_message(&stream, partition, record, &destination);
            message.message_id = engine.new_message_id();
            if let Err(e) = session.send(&destination, message).await {
                tracing::warn!(route = %route.name, error = %e, "route cannot enqueue; retrying");
                break;
            }
            next = record_offset + 1;
        }
        if next > offset {
            let (group, s) = (route.group.clone(), stream.clone());
            match blocking(&log, move |l| {
                l.commit_offset(&group, &s, partition, next, "")
            })
            .await
            {
                Ok(()) => offset = next,
                Err(e) => {
                    tracing::warn!(route = %route.name, error = %e, "route cannot commit its offset");
                    offset = next;
                }
            }
        } else {
            tokio::time::sleep(RETRY).await;
        }
    }
}

fn property(value: &Bytes) -> PropertyValue {
    match std::str::from_utf8(value) {
        Ok(s) => PropertyValue::String(s.to_string()),
        Err(_) => PropertyValue::Bytes(value.clone()),
    }
}

/// The message a stream record becomes (message id left empty for the engine to assign).
pub fn to_message(
    stream: &str,
    partition: u32,
    record: StoredRecord,
    destination: &Destination,
) -> Message {
    let r = record.record;
    let mut message = Message {
        address: destination.name.clone(),
        body: r.value,
        body_kind: BodyKind::Bytes,
        priority: routes::message::DEFAULT_PRIORITY,
        timestamp: u64::try_from(r.timestamp_ms).unwrap_or(0),
        persistent: true,
        ..Default::default()
    };
    for (name, value) in r.headers {
        if name == "content-type" {
            if let Ok(ct) = std::str::from_utf8(&value) {
                message.content_type.get_or_insert_with(|| ct.to_string());
            }
            continue;
        }
        message
            .properties
            .entry(name)
            .or_insert_with(|| property(&value));
    }
    if let Some(key) = r.key {
        message.group_id = std::str::from_utf8(&key).ok().map(str::to_string);
        message
            .properties
            .insert("kafka.key".to_string(), property(&key));
    }
    message.properties.insert(
        "kafka.topic".to_string(),
        PropertyValue::String(stream.to_string()),
    );
    message.properties.insert(
        "kafka.partition".to_string(),
        PropertyValue::Int(partition as i32),
    );
    message.properties.insert(
        "kafka.offset".to_string(),
        PropertyValue::Long(record.offset as i64),
    );
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use routes::store::log::LogRecord;

    #[test]
    fn records_become_persistent_messages_with_their_headers() {
        let record = StoredRecord {
            offset: 41,
            record: LogRecord::new(1_700_000_000_000, "body ✓")
                .with_key("customer-7")
                .with_header("content-type", "text/plain")
                .with_header("tenant", "acme")
                .with_header("tenant", "second")
                .with_header("raw", Bytes::from_static(&[0xff, 0x00])),
        };
        let m = to_message(
            "payments",
            2,
            record,
            &Destination::queue("legacy.payments"),
        );
        assert_eq!(m.address, "legacy.payments");
        assert_eq!(&m.body[..], "body ✓".as_bytes());
        assert!(m.persistent);
        assert_eq!(m.timestamp, 1_700_000_000_000);
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.group_id.as_deref(), Some("customer-7"));
        let p = &m.properties;
        assert_eq!(p["tenant"], PropertyValue::String("acme".into()));
        assert_eq!(
            p["raw"],
            PropertyValue::Bytes(Bytes::from_static(&[0xff, 0x00]))
        );
        assert_eq!(p["kafka.key"], PropertyValue::String("customer-7".into()));
        assert_eq!(p["kafka.topic"], PropertyValue::String("payments".into()));
        assert_eq!(p["kafka.partition"], PropertyValue::Int(2));
        assert_eq!(p["kafka.offset"], PropertyValue::Long(41));
    }
}
