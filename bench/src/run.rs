//! What every protocol driver shares: the knobs, the pacing and stop rules of producers, the
//! orchestration of one run (consumers ready first, then producers, then the drain) and its
//! report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tokio::sync::{oneshot, watch};

use crate::payload::now_ns;
use crate::verify::{Tracker, Verdict};

/// How consumers acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// The broker forgets a message once sent (STOMP `ack:auto`, AMQP `no-ack`, JMS
    /// AUTO_ACKNOWLEDGE; MQTT acknowledges QoS 1 per message whatever this says).
    Auto,
    /// Cumulative acks, one per `ack_every` messages (STOMP `ack:client`, AMQP `multiple`).
    Client,
    /// One ack per message (STOMP `ack:client-individual`, AMQP `basic.ack` per delivery).
    Individual,
}

/// The knobs of one run (the same for every protocol).
#[derive(Debug, Clone, Args)]
pub struct Knobs {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port (default: the protocol's standard port).
    #[arg(long)]
    pub port: Option<u16>,
    /// User name.
    #[arg(long, default_value = "guest")]
    pub user: String,
    /// Password.
    #[arg(long, default_value = "guest")]
    pub password: String,
    /// Label copied into the JSON line (e.g. the broker's name).
    #[arg(long, default_value = "")]
    pub label: String,
    /// Queue or topic name (default: unique per run).
    #[arg(long)]
    pub destination: Option<String>,
    /// Producer connections.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Consumer connections (0: publish only, nothing is verified).
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Message size in bytes (at least 24: the header with producer, sequence and time).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Messages to publish in total (split evenly across producers).
    #[arg(long, default_value_t = 100_000, conflicts_with = "duration")]
    pub count: u64,
    /// Publish for this many seconds instead of a count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Fixed total publish rate in messages per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Persistent (durable) messages, on a durable queue where the protocol has one.
    #[arg(long)]
    pub persistent: bool,
    /// Messages in flight per producer awaiting the broker's confirmation (STOMP receipts, AMQP
    /// publisher confirms, MQTT QoS 1 in-flight window); 0: no confirmations asked for.
    #[arg(long, default_value_t = 0)]
    pub window: u32,
    /// Consumer acknowledgement mode.
    #[arg(long, value_enum, default_value_t = AckMode::Auto)]
    pub ack: AckMode,
    /// With `--ack client`: one cumulative ack per this many messages (default: prefetch / 2).
    #[arg(long)]
    pub ack_every: Option<u32>,
    /// Consumer prefetch (STOMP activemq.prefetchSize / prefetch-count, AMQP basic.qos).
    #[arg(long, default_value_t = 1000)]
    pub prefetch: u32,
    /// Fan-out: every consumer gets every message (STOMP /topic, AMQP fanout exchange; MQTT
    /// subscribers always fan out).
    #[arg(long)]
    pub fanout: bool,
    /// MQTT QoS of publishes and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0)]
    pub qos: u8,
    /// Seconds without a delivery, after the producers finished, before the run gives up
    /// waiting and counts what is missing as lost.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
}

impl Knobs {
    /// The destination name of this run.
    pub fn destination(&self) -> String {
        self.destination.clone().unwrap_or_else(|| {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            format!("bench-{}-{ms}", std::process::id())
        })
    }

    /// With `--ack client`: messages per cumulative ack (`--ack-every`, default half the
    /// prefetch, at least 1).
    pub fn cumulative_ack_every(&self) -> u32 {
        self.ack_every.unwrap_or((self.prefetch / 2).max(1)).max(1)
    }

    /// Messages producer `id` publishes when the run is bounded by a count.
    pub fn count_for(&self, id: u32) -> u64 {
        let n = u64::from(self.producers.max(1));
        self.count / n + u64::from(u64::from(id) < self.count % n)
    }

    /// Whether every consumer is expected to get every message.
    pub fn fans_out(&self, protocol: &str) -> bool {
        self.fanout || protocol == "mqtt"
    }
}

/// State shared by the producers and consumers of a run.
#[derive(Debug)]
pub struct Shared {
    /// The knobs.
    pub knobs: Knobs,
    /// The resolved destination name.
    pub destination: String,
    /// Deliveries received by all consumers so far.
    pub received: AtomicU64,
    /// `now_ns` of the last delivery.
    pub last_delivery_ns: AtomicU64,
    /// Flips to true when consumers must stop.
    pub stop: watch::Receiver<bool>,
    /// Consumers meet here after their last acknowledgement and before they disconnect, so
    /// that no consumer's unacknowledged messages are redelivered to another one still open.
    pub acked: tokio::sync::Barrier,
}

impl Shared {
    /// Waits (at most 10 s) until every consumer has sent its last acknowledgement.
    pub async fn all_acked(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.acked.wait()).await;
    }
}

impl Shared {
    /// Records a delivery in `tracker` and the shared counters.
    pub fn delivered(&self, tracker: &mut Tracker, payload: &[u8]) {
        let now = now_ns();
        match crate::payload::decode(payload) {
            Some(stamp) => tracker.record(stamp, now),
            None => tracker.record_foreign(),
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
    }
}

/// Spaces a producer's sends at a fixed rate and says when it must stop.
#[derive(Debug)]
pub struct Pacer {
    period: Option<Duration>,
    start: Instant,
    deadline: Option<Instant>,
    limit: u64,
    sent: u64,
}

impl Pacer {
    /// The pacer of producer `id`.
    pub fn new(knobs: &Knobs, id: u32) -> Pacer {
        let per_producer = knobs
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| r / f64::from(knobs.producers.max(1)));
        let start = Instant::now();
        Pacer {
            period: per_producer.map(|r| Duration::from_secs_f64(1.0 / r)),
            start,
            deadline: knobs.duration.map(|d| start + Duration::from_secs_f64(d)),
            limit: if knobs.duration.is_some() {
                u64::MAX
            } else {
                knobs.count_for(id)
            },
            sent: 0,
        }
    }

    /// Whether sends are paced (then each one should be flushed at once).
    pub fn paced(&self) -> bool {
        self.period.is_some()
    }

    /// The sequence number of the next message, after waiting for its slot; `None` when the
    /// producer is done.
    pub async fn next(&mut self) -> Option<u64> {
        if self.sent >= self.limit || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        if let Some(period) = self.period {
            let slot = self.start + period.mul_f64(self.sent as f64);
            tokio::time::sleep_until(slot.into()).await;
        }
        let seq = self.sent;
        self.sent += 1;
        Some(seq)
    }
}

/// What one consumer hands back.
pub type ConsumerResult = Result<Tracker>;

/// A protocol driver: connects producers and consumers with its third-party client.
pub trait Driver: Send + Sync + 'static {
    /// Short protocol name for the report.
    fn protocol(&self) -> &'static str;
    /// Runs consumer `id` until `shared.stop` flips; sends on `ready` once subscribed.
    fn consume(
        &self,
        shared: Arc<Shared>,
        id: u32,
        ready: oneshot::Sender<()>,
    ) -> impl std::future::Future<Output = ConsumerResult> + Send;
    /// Runs producer `id` to the end of its count or duration, and returns how many messages it
    /// published (all confirmed, when confirmations were asked for).
    fn produce(
        &self,
        shared: Arc<Shared>,
        id: u32,
    ) -> impl std::future::Future<Output = Result<u64>> + Send;
}

/// Latency percentile (in milliseconds) of sorted microsecond samples.
fn percentile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us.get(rank - 1).map(|&us| f64::from(us) / 1000.0)
}

/// Runs one benchmark with `driver` and prints its report: a human line on stderr and a JSON
/// line on stdout. Fails when a message was lost, duplicated or unexpected.
pub async fn run<D: Driver>(driver: D, knobs: Knobs) -> Result<()> {
    if knobs.size < crate::payload::HEADER_LEN {
        bail!("--size must be at least {}", crate::payload::HEADER_LEN);
    }
    if knobs.producers == 0 {
        bail!("--producers must be at least 1");
    }
    let driver = Arc::new(driver);
    let protocol = driver.protocol();
    let fanout = knobs.fans_out(protocol);
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        destination: knobs.destination(),
        knobs: knobs.clone(),
        received: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        stop: stop_rx,
        acked: tokio::sync::Barrier::new(usize::try_from(knobs.consumers).unwrap_or(usize::MAX)),
    });

    let mut consumers = Vec::new();
    for id in 0..knobs.consumers {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (d, s) = (driver.clone(), shared.clone());
        consumers.push(tokio::spawn(
            async move { d.consume(s, id, ready_tx).await },
        ));
        // A consumer that fails before it is ready drops `ready_tx`: report its own error.
        if tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .is_none()
        {
            let _ = stop_tx.send(true);
            let handle = consumers.pop().context("consumer handle")?;
            handle.abort();
            match handle.await {
                Ok(Err(e)) => return Err(e.context(format!("consumer {id}"))),
                _ => bail!("consumer {id} did not subscribe within 30 s"),
            }
        }
    }

    let start_ns = now_ns();
    let started = Instant::now();
    let mut producers = Vec::new();
    for id in 0..knobs.producers {
        let (d, s) = (driver.clone(), shared.clone());
        producers.push(tokio::spawn(async move { d.produce(s, id).await }));
    }
    let mut published = Vec::new();
    let mut first_error = None;
    for (id, handle) in producers.into_iter().enumerate() {
        match handle.await {
            Ok(Ok(n)) => published.push(n),
            Ok(Err(e)) => {
                published.push(0);
                first_error.get_or_insert(e.context(format!("producer {id}")));
            }
            Err(e) => {
                published.push(0);
                first_error.get_or_insert(anyhow::anyhow!("producer {id} panicked: {e}"));
            }
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let total_published: u64 = published.iter().sum();
    let expected = total_published
        * if fanout {
            u64::from(knobs.consumers)
        } else {
            1
        };

    // Drain: wait for every expected delivery, or for the consumers to fall silent.
    let drain_timeout = Duration::from_secs_f64(knobs.drain_timeout);
    let mut last_count = shared.received.load(Ordering::Relaxed);
    let mut last_progress = Instant::now();
    if knobs.consumers > 0 && first_error.is_none() {
        loop {
            let got = shared.received.load(Ordering::Relaxed);
            if got >= expected {
                // A short grace period so that duplicates right behind the last one are seen.
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            if got != last_count {
                last_count = got;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= drain_timeout {
                break;
            }
            if consumers.iter().any(|c| c.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let _ = stop_tx.send(true);

    let mut verdict = Verdict::default();
    let mut union = Tracker::default();
    let mut latencies = Vec::new();
    let mut deliveries = 0;
    let mut foreign = 0;
    for (id, handle) in consumers.into_iter().enumerate() {
        let tracker = match tokio::time::timeout(Duration::from_secs(30), handle).await {
            Ok(Ok(Ok(t))) => t,
            Ok(Ok(Err(e))) => {
                first_error.get_or_insert(e.context(format!("consumer {id}")));
                continue;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(anyhow::anyhow!("consumer {id} panicked: {e}"));
                continue;
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("consumer {id} did not stop"));
                continue;
            }
        };
        deliveries += tracker.deliveries;
        foreign += tracker.foreign;
        if fanout {
            verdict.add(tracker.verdict(&published));
            latencies.extend_from_slice(&tracker.latencies_us);
        } else {
            union.merge(tracker);
        }
    }
    if !fanout && knobs.consumers > 0 {
        verdict = union.verdict(&published);
        latencies = std::mem::take(&mut union.latencies_us);
    }
    latencies.sort_unstable();
    let last_ns = shared.last_delivery_ns.load(Ordering::Relaxed);
    let consume_secs = last_ns.saturating_sub(start_ns) as f64 / 1e9;
    let ok = first_error.is_none()
        && (knobs.consumers == 0 || (verdict == Verdict::default() && foreign == 0));
    let rate = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let (p50, p99, p999) = (
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&latencies, 0.999),
    );
    let report = serde_json::json!({
        "bench": "gateway-bench",
        "label": knobs.label,
        "protocol": protocol,
        "host": knobs.host,
        "port": knobs.port,
        "destination": shared.destination,
        "producers": knobs.producers,
        "consumers": knobs.consumers,
        "size": knobs.size,
        "persistent": knobs.persistent,
        "window": knobs.window,
        "ack": format!("{:?}", knobs.ack).to_lowercase(),
        "prefetch": knobs.prefetch,
        "fanout": fanout,
        "qos": knobs.qos,
        "rate_target": knobs.rate,
        "published": total_published,
        "expected_deliveries": expected,
        "deliveries": deliveries,
        "lost": verdict.lost,
        "duplicates": verdict.duplicates,
        "unexpected": verdict.unexpected + foreign,
        "publish_secs": publish_secs,
        "consume_secs": consume_secs,
        "published_per_sec": rate(total_published, publish_secs),
        "consumed_per_sec": rate(deliveries, consume_secs),
        "latency_ms": { "p50": p50, "p99": p99, "p999": p999 },
        "ok": ok,
        "error": first_error.as_ref().map(|e| format!("{e:#}")),
    });
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    eprintln!(
        "{protocol} {label}: published {total_published} in {publish_secs:.2} s ({:.0}/s), \
         {deliveries} deliveries of {expected} ({:.0}/s), lost {}, duplicates {}, unexpected {}, \
         latency ms p50 {} p99 {} p99.9 {} -> {}",
        rate(total_published, publish_secs),
        rate(deliveries, consume_secs),
        verdict.lost,
        verdict.duplicates,
        verdict.unexpected + foreign,
        fmt(p50),
        fmt(p99),
        fmt(p999),
        if ok { "OK" } else { "FAILED" },
        label = knobs.label,
    );
    println!("{report}");
    if let Some(e) = first_error {
        return Err(e);
    }
    if !ok {
        bail!(
            "exactly-once check failed: lost {}, duplicates {}, unexpected {}",
            verdict.lost,
            verdict.duplicates,
            verdict.unexpected + foreign
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_samples() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), Some(0.5));
        assert_eq!(percentile_ms(&v, 0.99), Some(0.99));
        assert_eq!(percentile_ms(&v, 0.999), Some(0.999));
        assert_eq!(percentile_ms(&[], 0.5), None);
    }
}
