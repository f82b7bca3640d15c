//! Stream queues (`x-queue-type: stream`), as RabbitMQ's: a queue declared so is the stream of
//! that name in the partitioned log, the same stream the Kafka listener serves.
//!
//! - **Into the log**: the engine queue of the same name keeps receiving what exchanges route to
//!   it (so bindings, publisher confirms and every protocol work as for any queue); one mover
//!   task per stream consumes it and appends each message to the log as a record
//!   ([`crate::bridge::to_record`]: the body is the value, the properties headers), and
//!   acknowledges it only once the append is done (at least once).
//! - **Out of the log**: a `basic.consume` on a stream queue starts one reader task per
//!   partition at the consumer's `x-stream-offset` (`first`, `last`, `next`, an offset, or a
//!   timestamp); the reader waits for credit (the consumer's prefetch, given back by acks) before
//!   each record, so at most prefetch deliveries are unacknowledged. Acknowledging does not
//!   remove anything: the log keeps records until its retention drops them.

use crate::bridge::{to_message, to_record};
use codecs::amqp091::{FieldTable, FieldValue};
use routes::store::log::{Log, LogError, LogRecord, StoredRecord, StreamConfig};
use routes::{ConsumerSource, ConsumerSpec, Destination, Engine, Message, SessionEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;

/// Most bytes read from a partition at once.
const READ_BYTES: usize = 256 * 1024;
/// Most messages a mover appends as one batch.
const MOVE_BATCH: usize = 500;
/// Pause after a log error before trying again.
const RETRY: Duration = Duration::from_millis(500);

/// Where a stream consumer starts (`x-stream-offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOffset {
    /// The oldest record still stored.
    First,
    /// The last record stored (the next one if there is none).
    Last,
    /// Only records appended from now on (the default).
    Next,
    /// This offset (clamped to what is stored).
    Offset(u64),
    /// The first record at or after this time, milliseconds since the Unix epoch.
    Timestamp(i64),
}

impl StreamOffset {
    /// The `x-stream-offset` consumer argument; `Err` when it is none of the accepted forms.
    pub fn from_arguments(arguments: &FieldTable) -> Result<StreamOffset, String> {
        let Some(value) = arguments.get("x-stream-offset") else {
            return Ok(StreamOffset::Next);
        };
        match value {
            FieldValue::Timestamp(s) => Ok(StreamOffset::Timestamp(
                i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX),
            )),
            FieldValue::LongString(_) => match value.as_str() {
                Some("first") => Ok(StreamOffset::First),
                Some("last") => Ok(StreamOffset::Last),
                Some("next") => Ok(StreamOffset::Next),
                // An interval back from now (`30m`, `1D`), as RabbitMQ.
                Some(interval) if parse_age(interval).is_some() => {
                    let back = parse_age(interval).unwrap_or(0);
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    Ok(StreamOffset::Timestamp(
                        i64::try_from(now.saturating_sub(back)).unwrap_or(0),
                    ))
                }
                other => Err(format!(
                    "invalid x-stream-offset '{}'",
                    other.unwrap_or("?")
                )),
            },
            v => match v.as_i64().map(u64::try_from) {
                Some(Ok(n)) => Ok(StreamOffset::Offset(n)),
                _ => Err(format!("invalid x-stream-offset {v:?}")),
            },
        }
    }
}

/// True when a queue's arguments (as text) make it a stream.
pub fn is_stream_arguments(arguments: &[(String, String)]) -> bool {
    arguments
        .iter()
        .any(|(k, v)| k == "x-queue-type" && v == "stream")
}

/// A RabbitMQ duration string (`x-max-age`, `x-stream-offset` intervals): a number and a
/// unit, `Y`, `M`, `D`, `h`, `m` or `s` (`7D`, `12h`); in milliseconds.
pub fn parse_age(text: &str) -> Option<u64> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(unit_at);
    let n: u64 = digits.parse().ok()?;
    let unit_s: u64 = match unit {
        "Y" => 365 * 24 * 3600,
        "M" => 30 * 24 * 3600,
        "D" => 24 * 3600,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    n.checked_mul(unit_s)?.checked_mul(1000)
}

/// The log configuration a stream queue's arguments ask for: one partition (as a RabbitMQ
/// stream), retention by `x-max-age` and `x-max-length-bytes`. `Err` names a bad argument.
pub fn stream_config(arguments: &FieldTable) -> Result<StreamConfig, String> {
    let mut config = StreamConfig::new(1);
    if let Some(v) = arguments.get("x-max-age") {
        config.retention_ms = Some(
            v.as_str()
                .and_then(parse_age)
                .ok_or_else(|| "x-max-age".to_string())?,
        );
    }
    if let Some(v) = arguments.get("x-max-length-bytes") {
        config.retention_bytes = Some(
            v.as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| "x-max-length-bytes".to_string())?,
        );
    }
    Ok(config)
}

/// Creates the stream `name` with `config` unless it exists (a stream that exists, made by a
/// Kafka client or before a restart, keeps its own configuration).
pub fn ensure_stream(log: &Log, name: &str, config: StreamConfig) -> Result<(), LogError> {
    if log.stream_config(name).is_some() {
        return Ok(());
    }
    match log.create_stream(name, config) {
        Err(_) if log.stream_config(name).is_some() => Ok(()),
        r => r,
    }
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

/// Moves what the engine queue `name` receives into the stream `name`, until the queue is
/// deleted. `done` is called when it stops.
pub async fn run_mover(
    engine: Arc<Engine>,
    log: Arc<Log>,
    name: String,
    done: impl FnOnce() + Send,
) {
    let (session, mut events) = engine.connect(None);
    let mut spec = ConsumerSpec::new(ConsumerSource::Queue(name.clone()));
    spec.prefetch = Some(MOVE_BATCH as u32);
    let consumer = match session.subscribe(spec) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(stream = %name, error = %e, "stream queue mover cannot subscribe");
            done();
            return;
        }
    };
    tracing::debug!(stream = %name, "stream queue mover running");
    'events: while let Some(first) = events.recv().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                SessionEvent::Deliver(d) => batch.push(*d),
                SessionEvent::ConsumerCancelled(_) => break 'events,
                SessionEvent::TakenOver => {}
            }
            if batch.len() < MOVE_BATCH {
                next = events.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let records: Vec<LogRecord> = batch.iter().map(|d| to_record(&d.message, None)).collect();
        let seqs: Vec<u64> = batch.iter().map(|d| d.seq).collect();
        loop {
            let (stream, records) = (name.clone(), records.clone());
            let appended = blocking(&log, move |l| {
                let partition = l.partition_for(&stream, None)?;
                l.append(&stream, partition, &records)
            })
            .await;
            match appended {
                Ok(_) => break,
                Err(LogError::StreamNotFound(_)) => break 'events,
                Err(e) => {
                    tracing::warn!(stream = %name, error = %e, "stream queue cannot append; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        match session.ack(consumer, &seqs) {
            Ok(durable) => {
                if let Err(e) = durable.await {
                    tracing::warn!(stream = %name, error = %e, "stream queue acknowledgement not durable");
                }
            }
            Err(e) => tracing::warn!(stream = %name, error = %e, "stream queue cannot acknowledge"),
        }
    }
    tracing::debug!(stream = %name, "stream queue mover stopped");
    done();
}

/// A record read for a stream consumer.
pub struct StreamDelivery {
    /// The connection's id for the consumer.
    pub consumer: u64,
    /// The partition the record is in.
    pub partition: u32,
    /// The record.
    pub record: StoredRecord,
}

/// What a stream consumer's readers tell the connection.
pub enum StreamEvent {
    /// A record to deliver.
    Record(StreamDelivery),
    /// A reader stopped: the stream is gone (deleted). The consumer is cancelled.
    Ended {
        /// The connection's id for the consumer.
        consumer: u64,
    },
}

/// Reads one partition of `stream` for a consumer from `start`, taking a permit of `credit`
/// per record, until the receiver goes away or the stream is deleted (then says so with
/// [`StreamEvent::Ended`]).
pub async fn run_reader(
    log: Arc<Log>,
    stream: String,
    partition: u32,
    start: StreamOffset,
    consumer: u64,
    credit: Arc<Semaphore>,
    out: UnboundedSender<StreamEvent>,
) {
    read_partition(&log, &stream, partition, start, consumer, &credit, &out).await;
    let _ = out.send(StreamEvent::Ended { consumer });
}

async fn read_partition(
    log: &Arc<Log>,
    stream: &str,
    partition: u32,
    start: StreamOffset,
    consumer: u64,
    credit: &Semaphore,
    out: &UnboundedSender<StreamEvent>,
) {
    let (s, p) = (stream.to_string(), partition);
    let first = blocking(log, move |l| {
        let earliest = l.earliest_offset(&s, p)?;
        let latest = l.latest_offset(&s, p)?;
        Ok(match start {
            StreamOffset::First => earliest,
            StreamOffset::Next => latest,
            StreamOffset::Last => latest.saturating_sub(1).max(earliest),
            StreamOffset::Offset(n) => n.clamp(earliest, latest),
            StreamOffset::Timestamp(ms) => l.offset_for_timestamp(&s, p, ms)?.unwrap_or(latest),
        })
    })
    .await;
    let Ok(mut offset) = first else {
        return;
    };
    loop {
        let Ok(mut appended) = log.subscribe(stream, partition) else {
            return;
        };
        appended.borrow_and_update();
        let (s, from) = (stream.to_string(), offset);
        let records = match blocking(log, move |l| l.read(&s, partition, from, READ_BYTES)).await {
            Ok(r) => r,
            Err(LogError::OffsetOutOfRange {
                earliest, latest, ..
            }) => {
                offset = if offset < earliest { earliest } else { latest };
                continue;
            }
            Err(LogError::StreamNotFound(_)) => return,
            Err(e) => {
                tracing::warn!(%stream, partition, error = %e, "stream consumer cannot read");
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
        for record in records {
            let Ok(permit) = credit.acquire().await else {
                return;
            };
            permit.forget();
            offset = record.offset + 1;
            let delivery = StreamDelivery {
                consumer,
                partition,
                record,
            };
            if out.send(StreamEvent::Record(delivery)).is_err() {
                return;
            }
        }
    }
}

/// The engine view of a record of `stream` delivered to an AMQP consumer, with what the
/// delivery is sent with: the exchange it was published to over AMQP (`""` otherwise). The
/// `kafka.topic` / `kafka.partition` / `kafka.offset` properties are left out: the delivery's
/// `x-stream-offset` header says where it is.
pub fn message_for_delivery(stream: &str, delivery: StreamDelivery) -> (Message, String) {
    let mut message = to_message(
        stream,
        delivery.partition,
        delivery.record,
        &Destination::queue(stream),
    );
    for name in ["kafka.topic", "kafka.partition", "kafka.offset"] {
        message.properties.remove(name);
    }
    // Standard fields that `to_record` wrote as headers, back in their places.
    let mut take = |name: &str| match message.properties.remove(name) {
        Some(routes::PropertyValue::String(s)) => Some(s),
        _ => None,
    };
    let correlation_id = take("correlation-id");
    let reply_to = take("reply-to");
    let message_type = take("type");
    let message_id = take("message-id");
    message.correlation_id = correlation_id;
    message.reply_to = reply_to;
    message.message_type = message_type;
    message.message_id = message_id.unwrap_or_default();
    let exchange = match message.properties.get(super::convert::EXCHANGE_PROPERTY) {
        Some(routes::PropertyValue::String(x)) => x.clone(),
        _ => String::new(),
    };
    (message, exchange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_stream_configs() {
        assert_eq!(parse_age("7D"), Some(7 * 24 * 3600 * 1000));
        assert_eq!(parse_age("90s"), Some(90_000));
        assert_eq!(parse_age("1Y"), Some(365 * 24 * 3600 * 1000));
        for bad in ["", "D", "7", "7d", "-1h", "1.5h", "99999999999999999Y"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        let args = FieldTable::new()
            .with("x-max-age", "2h")
            .with("x-max-length-bytes", FieldValue::I64(1 << 20));
        let config = stream_config(&args).unwrap();
        assert_eq!(config.partitions, 1);
        assert_eq!(config.retention_ms, Some(7_200_000));
        assert_eq!(config.retention_bytes, Some(1 << 20));
        let bad = FieldTable::new().with("x-max-age", "soon");
        assert_eq!(stream_config(&bad).err().as_deref(), Some("x-max-age"));
    }

    #[test]
    fn stream_offsets_from_consumer_arguments() {
        let parse = |v: FieldValue| {
            StreamOffset::from_arguments(&FieldTable::new().with("x-stream-offset", v))
        };
        assert_eq!(
            StreamOffset::from_arguments(&FieldTable::new()),
            Ok(StreamOffset::Next)
        );
        assert_eq!(parse("first".into()), Ok(StreamOffset::First));
        assert_eq!(parse("last".into()), Ok(StreamOffset::Last));
        assert_eq!(parse("next".into()), Ok(StreamOffset::Next));
        assert_eq!(parse(FieldValue::I64(42)), Ok(StreamOffset::Offset(42)));
        assert_eq!(parse(FieldValue::U8(3)), Ok(StreamOffset::Offset(3)));
        assert_eq!(
            parse(FieldValue::Timestamp(1_700_000_000)),
            Ok(StreamOffset::Timestamp(1_700_000_000_000))
        );
        assert!(matches!(
            parse("10m".into()),
            Ok(StreamOffset::Timestamp(t)) if t > 1_700_000_000_000
        ));
        assert!(parse(FieldValue::I64(-1)).is_err());
        assert!(parse("sometime".into()).is_err());
        assert!(parse(FieldValue::Bool(true)).is_err());
    }

    #[test]
    fn amqp_messages_round_trip_through_records() {
        let props = codecs::amqp091::BasicProperties {
            correlation_id: codecs::amqp091::ShortStr::try_from("c-1").ok(),
            headers: Some(FieldTable::new().with("n", FieldValue::I32(7))),
            ..Default::default()
        };
        let m = super::super::convert::message_from_publish(
            "amq.direct",
            &props,
            bytes::Bytes::from_static(b"body"),
            "guest",
        )
        .unwrap();
        let record = StoredRecord {
            offset: 5,
            record: to_record(&m, None),
        };
        let (back, exchange) = message_for_delivery(
            "s",
            StreamDelivery {
                consumer: 1,
                partition: 0,
                record,
            },
        );
        assert_eq!(exchange, "amq.direct");
        assert_eq!(back.body, m.body);
        let delivered = super::super::convert::properties_for_delivery(&back);
        assert_eq!(delivered, props);
    }
}
