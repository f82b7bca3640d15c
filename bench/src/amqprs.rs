//! The AMQP 0-9-1 driver on `amqprs`, a second third-party client beside `lapin` (`amqp.rs`).
//! lapin runs each connection's socket on a thread of its own, woken by a reactor thread; amqprs
//! runs its reader and writer as tokio tasks. Measuring a broker with both tells the client's
//! share of a figure from the broker's. Same scenarios as `amqp.rs` (default exchange or a
//! fanout exchange, auto or manual acks) except publisher confirms, which amqprs reports through
//! a callback: runs with `--window` use the lapin driver.

use std::sync::Arc;

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    ExchangeDeclareArguments, QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::oneshot;

use crate::amqp::exchange_name;
use crate::payload;
use crate::run::{AckMode, ConsumerResult, Driver, Knobs, Pacer, Shared};
use crate::verify::Tracker;

/// The AMQP 0-9-1 driver on amqprs.
#[derive(Debug, Default)]
pub struct Amqprs;

/// amqprs errors are not `Sync`: carried as text.
fn err(what: &str, e: amqprs::error::Error) -> anyhow::Error {
    anyhow!("{what}: {e}")
}

async fn open(knobs: &Knobs) -> Result<(Connection, Channel)> {
    let port = knobs.port.unwrap_or(5672);
    let conn = Connection::open(&OpenConnectionArguments::new(
        &knobs.host,
        port,
        &knobs.user,
        &knobs.password,
    ))
    .await
    .map_err(|e| err(&format!("connect to AMQP {}:{port}", knobs.host), e))?;
    let channel = conn
        .open_channel(None)
        .await
        .map_err(|e| err("channel.open", e))?;
    Ok((conn, channel))
}

/// Declares the run's queue (queue mode) or exchange (fan-out) so that either side may start.
async fn declare(channel: &Channel, shared: &Shared) -> Result<()> {
    let durable = shared.knobs.persistent;
    if shared.knobs.fanout {
        channel
            .exchange_declare(
                ExchangeDeclareArguments::new(&exchange_name(shared), "fanout")
                    .durable(durable)
                    .finish(),
            )
            .await
            .map_err(|e| err("exchange.declare", e))?;
    } else {
        channel
            .queue_declare(
                QueueDeclareArguments::new(&shared.destination)
                    .durable(durable)
                    .finish(),
            )
            .await
            .map_err(|e| err("queue.declare", e))?;
    }
    Ok(())
}

impl Driver for Amqprs {
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
            let (name, _, _) = channel
                .queue_declare(
                    QueueDeclareArguments::new("")
                        .exclusive(true)
                        .auto_delete(true)
                        .durable(knobs.persistent)
                        .finish(),
                )
                .await
                .map_err(|e| err("queue.declare (fan-out consumer)", e))?
                .context("queue.declare-ok missing")?;
            channel
                .queue_bind(QueueBindArguments::new(&name, &exchange_name(&shared), ""))
                .await
                .map_err(|e| err("queue.bind", e))?;
            name
        } else {
            shared.destination.clone()
        };
        let no_ack = knobs.ack == AckMode::Auto;
        if !no_ack {
            let prefetch = u16::try_from(knobs.prefetch).unwrap_or(u16::MAX);
            channel
                .basic_qos(BasicQosArguments::new(0, prefetch, false))
                .await
                .map_err(|e| err("basic.qos", e))?;
        }
        let (_tag, mut deliveries) = channel
            .basic_consume_rx(
                BasicConsumeArguments::new(&queue, &format!("bench-c{id}"))
                    .manual_ack(!no_ack)
                    .finish(),
            )
            .await
            .map_err(|e| err("basic.consume", e))?;
        let _ = ready.send(());
        let ack_every = knobs.cumulative_ack_every();
        let mut unacked = 0u32;
        let mut last_tag = None;
        let mut tracker = Tracker::default();
        let mut stop = shared.stop.clone();
        loop {
            let message = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                m = deliveries.recv() => match m {
                    Some(m) => m,
                    None => bail!("consumer cancelled or connection closed"),
                },
            };
            let (Some(deliver), Some(body)) = (message.deliver, message.content) else {
                bail!("a delivery without its method or body");
            };
            shared.delivered(&mut tracker, &body);
            let tag = deliver.delivery_tag();
            // amqprs queues an ack on its writer task and returns: nothing to keep in flight.
            match knobs.ack {
                AckMode::Auto => {}
                AckMode::Individual => channel
                    .basic_ack(BasicAckArguments::new(tag, false))
                    .await
                    .map_err(|e| err("basic.ack", e))?,
                AckMode::Client => {
                    unacked += 1;
                    last_tag = Some(tag);
                    if unacked >= ack_every {
                        channel
                            .basic_ack(BasicAckArguments::new(tag, true))
                            .await
                            .map_err(|e| err("basic.ack", e))?;
                        unacked = 0;
                    }
                }
            }
        }
        if let (true, Some(tag)) = (unacked > 0, last_tag) {
            channel
                .basic_ack(BasicAckArguments::new(tag, true))
                .await
                .map_err(|e| err("basic.ack", e))?;
        }
        shared.all_acked().await;
        let _ = channel.close().await;
        let _ = conn.close().await;
        Ok(tracker)
    }

    async fn produce(&self, shared: Arc<Shared>, id: u32) -> Result<u64> {
        let knobs = &shared.knobs;
        if knobs.window > 0 {
            bail!("publisher confirms (--window) are measured with `gateway-bench amqp` (lapin)");
        }
        let (conn, channel) = open(knobs).await?;
        declare(&channel, &shared).await?;
        let args = if knobs.fanout {
            BasicPublishArguments::new(&exchange_name(&shared), "")
        } else {
            BasicPublishArguments::new("", &shared.destination)
        };
        let properties = BasicProperties::default()
            .with_delivery_mode(if knobs.persistent { 2 } else { 1 })
            .finish();
        let mut pacer = Pacer::new(knobs, id);
        let mut published = 0u64;
        while let Some(seq) = pacer.next().await {
            let body = payload::encode(id, seq, knobs.size);
            channel
                .basic_publish(properties.clone(), body, args.clone())
                .await
                .map_err(|e| err("basic.publish", e))?;
            published += 1;
        }
        // A synchronous close after the publishes: the broker has read every one of them.
        channel.close().await.map_err(|e| err("channel.close", e))?;
        let _ = conn.close().await;
        Ok(published)
    }
}
