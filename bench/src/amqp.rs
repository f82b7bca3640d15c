//! The AMQP 0-9-1 driver, on `lapin`. Queue mode publishes to the default exchange with the
//! queue's name as routing key; fan-out publishes to a fanout exchange to which every consumer
//! binds a queue of its own. Publisher confirms keep `--window` publishes in flight.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::oneshot;

use crate::payload;
use crate::run::{AckMode, ConsumerResult, Driver, Knobs, Pacer, Shared};
use crate::verify::Tracker;

/// The AMQP 0-9-1 driver.
#[derive(Debug, Default)]
pub struct Amqp;

async fn open(knobs: &Knobs) -> Result<(Connection, Channel)> {
    let port = knobs.port.unwrap_or(5672);
    let uri = format!(
        "amqp://{}:{}@{}:{port}/%2f",
        knobs.user, knobs.password, knobs.host
    );
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .with_context(|| format!("connect to AMQP {}:{port}", knobs.host))?;
    let channel = conn.create_channel().await?;
    Ok((conn, channel))
}

/// The fanout exchange of a `--fanout` run (both AMQP drivers).
pub(crate) fn exchange_name(shared: &Shared) -> String {
    format!("{}.fanout", shared.destination)
}

/// Declares the run's queue (queue mode) or exchange (fan-out) so that either side may start.
async fn declare(channel: &Channel, shared: &Shared) -> Result<()> {
    let durable = shared.knobs.persistent;
    if shared.knobs.fanout {
        channel
            .exchange_declare(
                &exchange_name(shared),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("exchange.declare")?;
    } else {
        channel
            .queue_declare(
                &shared.destination,
                QueueDeclareOptions {
                    durable,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("queue.declare")?;
    }
    Ok(())
}

impl Driver for Amqp {
    fn protocol(&self) -> &'static str {
        "amqp091"
    }

    async fn consume(
        &self,
        shared: Arc<Shared>,
        id: u32,
        ready: oneshot::Sender<()>,
    ) -> ConsumerResult {
        let knobs = &shared.knobs;
        let (conn, channel) = open(knobs).await?;
        declare(&channel, &shared).await?;
        let queue = if knobs.fanout {
            let q = channel
                .queue_declare(
                    "",
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        durable: knobs.persistent,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .context("queue.declare (fan-out consumer)")?;
            let name = q.name().as_str().to_string();
            channel
                .queue_bind(
                    &name,
                    &exchange_name(&shared),
                    "",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .context("queue.bind")?;
            name
        } else {
            shared.destination.clone()
        };
        let no_ack = knobs.ack == AckMode::Auto;
        if !no_ack {
            let prefetch = u16::try_from(knobs.prefetch).unwrap_or(u16::MAX);
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .context("basic.qos")?;
        }
        let mut consumer = channel
            .basic_consume(
                &queue,
                &format!("bench-c{id}"),
                BasicConsumeOptions {
                    no_ack,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("basic.consume")?;
        let _ = ready.send(());
        let ack_every = knobs.cumulative_ack_every();
        let mut unacked = 0u32;
        let mut last_tag = None;
        let mut acks: FuturesUnordered<BoxFuture<'_, lapin::Result<()>>> = FuturesUnordered::new();
        let mut tracker = Tracker::default();
        let mut stop = shared.stop.clone();
        loop {
            let delivery = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                Some(r) = acks.next(), if !acks.is_empty() => {
                    r.context("basic.ack")?;
                    continue;
                }
                d = consumer.next() => match d {
                    Some(d) => d.context("delivery")?,
                    None => bail!("consumer cancelled by the broker"),
                },
            };
            shared.delivered(&mut tracker, &delivery.data);
            let tag = delivery.delivery_tag;
            match knobs.ack {
                AckMode::Auto => {}
                // Acks are not awaited one by one (that caps a lapin consumer near 8k/s): they
                // complete concurrently while deliveries keep coming.
                AckMode::Individual => {
                    acks.push(Box::pin(
                        channel.basic_ack(tag, BasicAckOptions { multiple: false }),
                    ));
                }
                AckMode::Client => {
                    unacked += 1;
                    last_tag = Some(tag);
                    if unacked >= ack_every {
                        acks.push(Box::pin(
                            channel.basic_ack(tag, BasicAckOptions { multiple: true }),
                        ));
                        unacked = 0;
                    }
                }
            }
        }
        // The last cumulative ack, and every pending one, before anyone disconnects.
        if let (true, Some(tag)) = (unacked > 0, last_tag) {
            acks.push(Box::pin(
                channel.basic_ack(tag, BasicAckOptions { multiple: true }),
            ));
        }
        while let Some(r) = acks.next().await {
            r.context("basic.ack")?;
        }
        shared.all_acked().await;
        let _ = conn.close(200, "bench done").await;
        Ok(tracker)
    }

    async fn produce(&self, shared: Arc<Shared>, id: u32) -> Result<u64> {
        let knobs = &shared.knobs;
        let (conn, channel) = open(knobs).await?;
        declare(&channel, &shared).await?;
        let window = usize::try_from(knobs.window).unwrap_or(usize::MAX);
        if window > 0 {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .context("confirm.select")?;
        }
        let (exchange, key) = if knobs.fanout {
            (exchange_name(&shared), String::new())
        } else {
            (String::new(), shared.destination.clone())
        };
        let properties =
            BasicProperties::default().with_delivery_mode(if knobs.persistent { 2 } else { 1 });
        let mut pacer = Pacer::new(knobs, id);
        let mut in_flight = VecDeque::new();
        let mut published = 0u64;
        while let Some(seq) = pacer.next().await {
            if window > 0 && in_flight.len() >= window {
                if let Some(confirm) = in_flight.pop_front() {
                    let c: lapin::publisher_confirm::PublisherConfirm = confirm;
                    if !c.await?.is_ack() {
                        bail!("publish nacked by the broker");
                    }
                }
            }
            let body = payload::encode(id, seq, knobs.size);
            let confirm = channel
                .basic_publish(
                    &exchange,
                    &key,
                    BasicPublishOptions::default(),
                    &body,
                    properties.clone(),
                )
                .await
                .context("basic.publish")?;
            if window > 0 {
                in_flight.push_back(confirm);
            }
            published += 1;
        }
        for confirm in in_flight {
            if !confirm.await?.is_ack() {
                bail!("publish nacked by the broker");
            }
        }
        // Without confirms, closing the channel waits until the broker has read every publish.
        channel
            .close(200, "bench done")
            .await
            .context("channel.close")?;
        let _ = conn.close(200, "bench done").await;
        Ok(published)
    }
}
