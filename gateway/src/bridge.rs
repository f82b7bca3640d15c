//! Routes between streams and the queue world (`[[routes]]`), both at least once.
//!
//! **Stream -> queue or topic**: each partition is read as the route's consumer group, every
//! record becomes a persistent message, and the group's offset is committed only after the
//! message is durable in the queue store (a crash between the two repeats the records after
//! the last commit). A route's selector skips the records whose message does not match. Events produced by Kafka clients thereby reach STOMP, MQTT and JMS
//! consumers.
//!
//! **Topic or queue -> stream**: a durable subscription on the topic pattern (copy: the legacy
//! subscribers keep getting every message), a mirror queue that the engine fills with a copy of
//! every send to the matching queues (copy: the queues' own consumers keep getting every
//! message; see `Engine::mirror_queue_sends`), a consumer on the queue (move from one queue),
//! or a mirror queue that every matching send is redirected to (move from a queue pattern or a
//! topic pattern: the legacy queues or subscribers no longer get them; see
//! `Engine::divert_queue_sends`, `Engine::divert_topic_sends`) receives the messages; each is appended to the stream, keyed by the configured property, and
//! acknowledged only after the append is durable (a crash in between appends it again).
//!
//! **Topic or queue -> queue or topic**: read the same ways, each message is sent on to
//! the target queue or topic and acknowledged in the same transaction (one journal write), so
//! the legacy consumers (copy) still get every message and the target gets each one once.
//!
//! Record -> message (see docs/mapping.md): the value becomes the body byte for byte; each
//! header becomes a string property (bytes that are not UTF-8 stay bytes; a repeated name keeps
//! its first value), `content-type` sets the content type; the key is property `kafka.key`
//! (and the message group, so one key keeps its order for JMS message-group consumers); the
//! record timestamp is the message timestamp; `kafka.topic`, `kafka.partition` and
//! `kafka.offset` say where it came from.

use bytes::Bytes;
use config::{RouteDefinition, RouteEndpoint, RouteMode};
use routes::store::log::{Log, LogError, LogRecord, StoredRecord};
use routes::{
    BodyKind, ConsumerSource, ConsumerSpec, Delivery, Destination, Engine, Message, NackAction,
    PropertyValue, SessionEvent, Transaction,
};
use std::sync::Arc;
use std::time::Duration;

/// Most bytes of records read at once per partition.
const READ_BYTES: usize = 1 << 20;
/// How often a route waits for its stream to appear, or retries after an error.
const RETRY: Duration = Duration::from_secs(1);

/// How a route from a queue or topic has the engine hand it the sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// Its own consumer on the queue, or its durable subscription on the topic pattern.
    Direct,
    /// A copy of every matching queue send in mirror queue `group` (copy from queues).
    MirrorQueues,
    /// Every matching queue send, and only there, in mirror queue `group` (move from a pattern).
    DivertQueues,
    /// Every matching topic send, and only there, in mirror queue `group` (move from a topic).
    DivertTopics,
}

fn feed(route: &RouteDefinition) -> Feed {
    match (&route.from, route.mode) {
        (RouteEndpoint::Queue(_), Some(RouteMode::Copy)) => Feed::MirrorQueues,
        (RouteEndpoint::Queue(q), Some(RouteMode::Move)) if routes::address::is_pattern(q) => {
            Feed::DivertQueues
        }
        (RouteEndpoint::Topic(_), Some(RouteMode::Move)) => Feed::DivertTopics,
        _ => Feed::Direct,
    }
}

/// Undoes what [`prepare`] registered for `route`.
fn unprepare(engine: &Engine, route: &RouteDefinition) {
    match (&route.from, feed(route)) {
        (RouteEndpoint::Queue(p), Feed::MirrorQueues | Feed::DivertQueues) => {
            engine.stop_mirroring_queue_sends(p, &route.group);
        }
        (RouteEndpoint::Topic(p), Feed::DivertTopics) => {
            engine.stop_diverting_topic_sends(p, &route.group);
        }
        _ => {}
    }
}

/// Registers the queue mirrors of the routes that copy from queues, and the diverts of the routes
/// that move from a queue pattern or a topic, so that no send is missed
/// between start-up and the routes' start, after checking that every selector parses. Call
/// before the listeners accept connections.
pub fn prepare(engine: &Engine, routes: &[RouteDefinition]) -> Result<(), routes::EngineError> {
    // Every selector parses, or nothing is set up (a topic route would only log it later).
    for route in routes {
        if let Some(text) = &route.selector {
            routes::selector::Selector::parse(text)?;
        }
    }
    for route in routes {
        let selector = route.selector.as_deref();
        match (&route.from, feed(route)) {
            (RouteEndpoint::Queue(p), Feed::MirrorQueues) => {
                engine.mirror_queue_sends_matching(p, &route.group, selector)?;
            }
            (RouteEndpoint::Queue(p), Feed::DivertQueues) => {
                engine.divert_queue_sends(p, &route.group, selector)?;
            }
            (RouteEndpoint::Topic(p), Feed::DivertTopics) => {
                engine.divert_topic_sends(p, &route.group, selector)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The running routes, by name; replaced route by route on reload.
#[derive(Default)]
pub struct RouteSet {
    running: std::collections::HashMap<String, (RouteDefinition, tokio::task::JoinHandle<()>)>,
}

impl RouteSet {
    /// Starts `routes` (after [`prepare`] registered their queue mirrors).
    pub fn start(engine: &Arc<Engine>, log: &Arc<Log>, routes: &[RouteDefinition]) -> RouteSet {
        let mut set = RouteSet::default();
        for route in routes {
            set.spawn(engine, log, route);
        }
        set
    }

    fn spawn(&mut self, engine: &Arc<Engine>, log: &Arc<Log>, route: &RouteDefinition) {
        crate::metrics::register_route(&route.name);
        if let Some(task) = spawn_route(engine, log, route) {
            self.running
                .insert(route.name.clone(), (route.clone(), task));
        }
    }

    /// Replaces the running routes by `routes`: routes that disappeared or changed are stopped
    /// (an interrupted batch is repeated by their successor: at least once), new and changed
    /// ones started; unchanged ones keep running untouched. Returns (stopped, started).
    pub fn reload(
        &mut self,
        engine: &Arc<Engine>,
        log: &Arc<Log>,
        routes: &[RouteDefinition],
    ) -> Result<(usize, usize), routes::EngineError> {
        // A selector that does not parse refuses the whole reload before anything is stopped.
        for route in routes {
            if let Some(text) = &route.selector {
                routes::selector::Selector::parse(text)?;
            }
        }
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, (def, _))| !routes.iter().any(|r| &r.name == *name && r == def))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            if let Some((def, task)) = self.running.remove(name) {
                task.abort();
                // A successor copying (or moving) the same sends into the same mirror keeps it
                // registered (`prepare` only swaps its selector), so that no send in between goes
                // uncopied or back to the legacy destination.
                let successor = routes
                    .iter()
                    .any(|r| r.from == def.from && r.mode == def.mode && r.group == def.group);
                if !successor {
                    unprepare(engine, &def);
                }
            }
        }
        let fresh: Vec<RouteDefinition> = routes
            .iter()
            .filter(|r| !self.running.contains_key(&r.name))
            .cloned()
            .collect();
        prepare(engine, &fresh)?;
        for route in &fresh {
            self.spawn(engine, log, route);
        }
        Ok((stale.len(), fresh.len()))
    }

    /// The running stream -> queue (or topic) routes: (route, consumer group, stream), for
    /// their lag in `/metrics` and the admin API.
    pub fn stream_sources(&self) -> Vec<crate::metrics::StreamRouteSource> {
        let mut out: Vec<_> = self
            .running
            .values()
            .filter_map(|(def, _)| match &def.from {
                RouteEndpoint::Stream(stream) => {
                    Some((def.name.clone(), def.group.clone(), stream.clone()))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Stops every route.
    pub fn stop_all(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

fn spawn_route(
    engine: &Arc<Engine>,
    log: &Arc<Log>,
    route: &RouteDefinition,
) -> Option<tokio::task::JoinHandle<()>> {
    if let RouteEndpoint::Stream(stream) = &route.to {
        let source = match &route.from {
            // The mirror queue `prepare` registered (named after the group).
            _ if feed(route) != Feed::Direct => ConsumerSource::Queue(route.group.clone()),
            RouteEndpoint::Topic(pattern) => ConsumerSource::DurableTopic {
                pattern: pattern.clone(),
                subscription: route.group.clone(),
            },
            RouteEndpoint::Queue(queue) => ConsumerSource::Queue(queue.clone()),
            RouteEndpoint::Stream(_) => return None,
        };
        return Some(tokio::spawn(run_into_stream(
            Arc::clone(engine),
            Arc::clone(log),
            route.clone(),
            source,
            stream.clone(),
        )));
    }
    let RouteEndpoint::Stream(stream) = &route.from else {
        // Queue or topic -> queue or topic, read as into a stream.
        let source = match &route.from {
            // The mirror queue `prepare` registered (named after the group).
            _ if feed(route) != Feed::Direct => ConsumerSource::Queue(route.group.clone()),
            RouteEndpoint::Topic(pattern) => ConsumerSource::DurableTopic {
                pattern: pattern.clone(),
                subscription: route.group.clone(),
            },
            RouteEndpoint::Queue(queue) => ConsumerSource::Queue(queue.clone()),
            RouteEndpoint::Stream(_) => return None,
        };
        let destination = match &route.to {
            RouteEndpoint::Queue(a) => Destination::queue(a.clone()),
            RouteEndpoint::Topic(a) => Destination::topic(a.clone()),
            RouteEndpoint::Stream(_) => return None,
        };
        return Some(tokio::spawn(run_forward(
            Arc::clone(engine),
            route.clone(),
            source,
            destination,
        )));
    };
    let destination = match &route.to {
        RouteEndpoint::Queue(a) => Destination::queue(a.clone()),
        RouteEndpoint::Topic(a) => Destination::topic(a.clone()),
        RouteEndpoint::Stream(_) => return None,
    };
    Some(tokio::spawn(run_route(
        Arc::clone(engine),
        Arc::clone(log),
        route.clone(),
        stream.clone(),
        destination,
    )))
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
    // Checked by `prepare`; a record whose message does not match is skipped (and committed).
    let selector = route
        .selector
        .as_deref()
        .and_then(|text| routes::selector::Selector::parse(text).ok());
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
            if selector.as_ref().is_some_and(|s| !s.matches(&message, 1)) {
                next = record_offset + 1;
                continue;
            }
            message.message_id = engine.new_message_id();
            if let Err(e) = session.send(&destination, message).await {
                tracing::warn!(route = %route.name, error = %e, "route cannot enqueue; retrying");
                crate::metrics::route_failed(&route.name, 1);
                break;
            }
            crate::metrics::route_carried(&route.name, 1);
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

/// Most deliveries appended as one batch.
const INTO_STREAM_BATCH: usize = 500;

async fn run_into_stream(
    engine: Arc<Engine>,
    log: Arc<Log>,
    route: RouteDefinition,
    source: ConsumerSource,
    stream: String,
) {
    while log.stream_config(&stream).is_none() {
        tokio::time::sleep(RETRY).await;
    }
    let (session, mut events) = engine.connect(Some(format!("gateway-route:{}", route.name)));
    let mut spec = ConsumerSpec::new(source);
    // A mirror queue holds only the sends that matched (filtered at send time).
    if feed(&route) == Feed::Direct {
        spec.selector = route.selector.clone();
    }
    spec.prefetch = Some(INTO_STREAM_BATCH as u32);
    let consumer = match session.subscribe(spec) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(route = %route.name, error = %e, "route cannot subscribe; it is not running");
            return;
        }
    };
    tracing::info!(route = %route.name, %stream, "route into stream running");
    loop {
        let Some(batch) = next_batch(&mut events).await else {
            return;
        };
        if batch.is_empty() {
            continue;
        }
        // One append per partition, in delivery order within each.
        let mut by_partition: std::collections::BTreeMap<u32, (Vec<LogRecord>, Vec<u64>)> =
            std::collections::BTreeMap::new();
        let mut failed: Vec<u64> = Vec::new();
        for d in &batch {
            let record = to_record(&d.message, route.key.as_deref());
            match log.partition_for(&stream, record.key.as_deref()) {
                Ok(p) => {
                    let entry = by_partition.entry(p).or_default();
                    entry.0.push(record);
                    entry.1.push(d.seq);
                }
                Err(_) => failed.push(d.seq),
            }
        }
        let mut appended: Vec<u64> = Vec::new();
        for (partition, (records, seqs)) in by_partition {
            let s = stream.clone();
            let log2 = Arc::clone(&log);
            let result =
                tokio::task::spawn_blocking(move || log2.append(&s, partition, &records)).await;
            match result {
                Ok(Ok(_)) => appended.extend(seqs),
                Ok(Err(e)) => {
                    tracing::warn!(route = %route.name, %stream, partition, error = %e, "route cannot append");
                    failed.extend(seqs);
                }
                Err(e) => {
                    tracing::warn!(route = %route.name, error = %e, "route append task failed");
                    failed.extend(seqs);
                }
            }
        }
        crate::metrics::route_carried(&route.name, appended.len() as u64);
        crate::metrics::route_failed(&route.name, failed.len() as u64);
        if !appended.is_empty() {
            match session.ack(consumer, &appended) {
                Ok(durable) => {
                    if let Err(e) = durable.await {
                        tracing::warn!(route = %route.name, error = %e, "route acknowledgement not durable");
                    }
                }
                Err(e) => {
                    tracing::warn!(route = %route.name, error = %e, "route cannot acknowledge")
                }
            }
        }
        if !failed.is_empty() {
            tokio::time::sleep(RETRY).await;
            if let Err(e) = session.nack(consumer, &failed, NackAction::Requeue) {
                tracing::warn!(route = %route.name, error = %e, "route cannot requeue");
            }
        }
    }
}

/// Queue or topic -> queue or topic: every delivery is sent on to `destination` and
/// acknowledged in one transaction, so the journal has the forwarded copy and the source's
/// acknowledgement in the same write (a crash forwards a message once or not yet, never twice
/// and never loses it). The message keeps its id, properties and body; only its address
/// changes (as ActiveMQ's composite destinations forward).
async fn run_forward(
    engine: Arc<Engine>,
    route: RouteDefinition,
    source: ConsumerSource,
    destination: Destination,
) {
    let (session, mut events) = engine.connect(Some(format!("gateway-route:{}", route.name)));
    let mut spec = ConsumerSpec::new(source);
    // A mirror queue holds only the sends that matched (filtered at send time).
    if feed(&route) == Feed::Direct {
        spec.selector = route.selector.clone();
    }
    spec.prefetch = Some(INTO_STREAM_BATCH as u32);
    let consumer = match session.subscribe(spec) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(route = %route.name, error = %e, "route cannot subscribe; it is not running");
            return;
        }
    };
    tracing::info!(route = %route.name, to = %destination.name, "route running");
    loop {
        let Some(batch) = next_batch(&mut events).await else {
            return;
        };
        if batch.is_empty() {
            continue;
        }
        let mut tx = Transaction::new();
        let mut seqs = Vec::with_capacity(batch.len());
        for d in &batch {
            let mut message = Message::clone(&d.message);
            message.address = destination.name.clone();
            tx.send(destination.clone(), message);
            tx.ack(consumer, d.seq);
            seqs.push(d.seq);
        }
        let committed = match session.commit(tx).await {
            Ok(durable) => durable.await,
            Err(e) => Err(e),
        };
        match committed {
            Ok(()) => crate::metrics::route_carried(&route.name, seqs.len() as u64),
            Err(e) => {
                // Nothing of the transaction applied: the batch goes back to the source.
                tracing::warn!(route = %route.name, error = %e, "route cannot forward; retrying");
                crate::metrics::route_failed(&route.name, seqs.len() as u64);
                tokio::time::sleep(RETRY).await;
                if let Err(e) = session.nack(consumer, &seqs, NackAction::Requeue) {
                    tracing::warn!(route = %route.name, error = %e, "route cannot requeue");
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn property_bytes(value: &PropertyValue) -> Bytes {
    match value {
        PropertyValue::Bytes(b) => b.clone(),
        other => Bytes::from(other.to_text()),
    }
}

/// The record a message becomes on its way into a stream: the body is the value, the
/// property named `key_property` (if given and present) the key, the standard fields that are
/// set and every property become headers.
pub fn to_record(message: &Message, key_property: Option<&str>) -> LogRecord {
    let timestamp_ms = i64::try_from(message.timestamp)
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or_else(now_ms);
    let mut headers: Vec<(String, Bytes)> = Vec::new();
    let standard = [
        ("content-type", message.content_type.as_deref()),
        ("correlation-id", message.correlation_id.as_deref()),
        ("reply-to", message.reply_to.as_deref()),
        ("type", message.message_type.as_deref()),
        ("message-id", Some(message.message_id.as_str())),
    ];
    for (name, value) in standard {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            headers.push((name.to_string(), Bytes::from(v.to_string())));
        }
    }
    for (name, value) in &message.properties {
        headers.push((name.clone(), property_bytes(value)));
    }
    LogRecord {
        timestamp_ms,
        key: key_property
            .and_then(|k| message.properties.get(k))
            .map(property_bytes),
        value: Some(message.body.clone()),
        headers,
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
        // A null value (Kafka tombstone) becomes an empty body.
        body: r.value.unwrap_or_default(),
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

/// Waits for the route consumer's next deliveries and takes what else is ready, up to
/// `INTO_STREAM_BATCH`, so that one journal write carries them all; `None` once the session ends.
async fn next_batch(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
) -> Option<Vec<Delivery>> {
    let first = events.recv().await?;
    let mut batch: Vec<Delivery> = Vec::new();
    let mut next = Some(first);
    while let Some(event) = next.take() {
        if let SessionEvent::Deliver(d) = event {
            batch.push(*d);
        }
        if batch.len() < INTO_STREAM_BATCH {
            next = events.try_recv().ok();
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn messages_become_records_keyed_by_a_property() {
        let mut m = Message {
            message_id: "ID:gw-1".into(),
            body: Bytes::from_static(b"order body"),
            content_type: Some("application/json".into()),
            correlation_id: Some("corr-9".into()),
            timestamp: 1_700_000_000_123,
            ..Default::default()
        };
        m.properties
            .insert("customerId".into(), PropertyValue::Long(42));
        m.properties
            .insert("region".into(), PropertyValue::String("eu".into()));
        let r = to_record(&m, Some("customerId"));
        assert_eq!(r.value.as_deref(), Some(&b"order body"[..]));
        assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(r.timestamp_ms, 1_700_000_000_123);
        let h: Vec<(&str, &[u8])> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), &v[..]))
            .collect();
        assert!(h.contains(&("content-type", &b"application/json"[..])));
        assert!(h.contains(&("correlation-id", &b"corr-9"[..])));
        assert!(h.contains(&("message-id", &b"ID:gw-1"[..])));
        assert!(h.contains(&("region", &b"eu"[..])));
        assert!(h.contains(&("customerId", &b"42"[..])));
        assert_eq!(
            to_record(&m, Some("missing")).key,
            None,
            "round robin without the key"
        );
        assert_eq!(to_record(&m, None).key, None);
    }

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
