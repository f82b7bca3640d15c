//! The MQTT 3.1.1 driver, on `rumqttc`. Subscribers always fan out (every subscriber of the
//! topic gets every message); QoS 1 publishes are counted as published when their PUBACK
//! arrives, with `--window` PUBLISHes in flight.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::oneshot;

use crate::payload;
use crate::run::{ConsumerResult, Driver, Knobs, Pacer, Shared};
use crate::verify::Tracker;

/// The MQTT driver.
#[derive(Debug, Default)]
pub struct Mqtt;

fn qos(knobs: &Knobs) -> Result<QoS> {
    match knobs.qos {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        q => bail!("--qos {q}: only 0 and 1 are measured"),
    }
}

fn options(knobs: &Knobs, client_id: String) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, knobs.host.clone(), knobs.port.unwrap_or(1883));
    o.set_keep_alive(Duration::from_secs(60));
    o.set_clean_session(true);
    o.set_max_packet_size(knobs.size + 1024, knobs.size + 1024);
    o.set_inflight(u16::try_from(knobs.window.max(1)).unwrap_or(u16::MAX));
    o.set_request_channel_capacity(1024);
    if !knobs.user.is_empty() {
        o.set_credentials(knobs.user.clone(), knobs.password.clone());
    }
    o
}

fn topic(shared: &Shared) -> String {
    format!("bench/{}", shared.destination)
}

/// Polls until the broker's CONNACK. The socket gets TCP_NODELAY (rumqttc's default leaves
/// Nagle on, which holds small publishes back by tens of milliseconds at a fixed rate).
async fn connected(eventloop: &mut EventLoop) -> Result<()> {
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    loop {
        match eventloop.poll().await.context("MQTT connect")? {
            Event::Incoming(Packet::ConnAck(ack)) => {
                if ack.code != rumqttc::ConnectReturnCode::Success {
                    bail!("MQTT CONNACK {:?}", ack.code);
                }
                return Ok(());
            }
            _ => continue,
        }
    }
}

impl Driver for Mqtt {
    fn protocol(&self) -> &'static str {
        "mqtt"
    }

    async fn consume(
        &self,
        shared: Arc<Shared>,
        id: u32,
        ready: oneshot::Sender<()>,
    ) -> ConsumerResult {
        let knobs = &shared.knobs;
        let qos = qos(knobs)?;
        let client_id = format!("bench-c{id}-{}", std::process::id());
        let (client, mut eventloop) = AsyncClient::new(options(knobs, client_id), 1024);
        connected(&mut eventloop).await?;
        client.subscribe(topic(&shared), qos).await?;
        loop {
            match eventloop.poll().await.context("MQTT subscribe")? {
                Event::Incoming(Packet::SubAck(ack)) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        bail!("MQTT SUBACK refused the subscription");
                    }
                    break;
                }
                _ => continue,
            }
        }
        let _ = ready.send(());
        let mut tracker = Tracker::default();
        let mut stop = shared.stop.clone();
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                e = eventloop.poll() => e.context("MQTT consumer")?,
            };
            if let Event::Incoming(Packet::Publish(p)) = event {
                shared.delivered(&mut tracker, &p.payload);
            }
        }
        shared.all_acked().await;
        let _ = client.try_disconnect();
        Ok(tracker)
    }

    async fn produce(&self, shared: Arc<Shared>, id: u32) -> Result<u64> {
        let knobs = shared.knobs.clone();
        let qos = qos(&knobs)?;
        let client_id = format!("bench-p{id}-{}", std::process::id());
        let (client, mut eventloop) = AsyncClient::new(options(&knobs, client_id), 1024);
        connected(&mut eventloop).await?;
        let requested = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let topic = topic(&shared);
        // The publishing side feeds rumqttc's request channel; the event loop below writes
        // them and counts what went out (QoS 0) or was acknowledged (QoS 1).
        let publisher = {
            let (requested, done) = (requested.clone(), done.clone());
            tokio::spawn(async move {
                let mut pacer = Pacer::new(&knobs, id);
                while let Some(seq) = pacer.next().await {
                    let body = payload::encode(id, seq, knobs.size);
                    client.publish(topic.as_str(), qos, false, body).await?;
                    requested.fetch_add(1, Ordering::Release);
                }
                done.store(true, Ordering::Release);
                anyhow::Ok(client)
            })
        };
        let mut completed = 0u64;
        loop {
            if done.load(Ordering::Acquire) && completed >= requested.load(Ordering::Acquire) {
                break;
            }
            let event =
                match tokio::time::timeout(Duration::from_millis(50), eventloop.poll()).await {
                    Ok(e) => e.context("MQTT producer")?,
                    Err(_) => {
                        if publisher.is_finished() && !done.load(Ordering::Acquire) {
                            break;
                        }
                        continue;
                    }
                };
            match (qos, event) {
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_))) => completed += 1,
                _ => {}
            }
        }
        let client = publisher.await.context("publisher task")??;
        let _ = client.disconnect().await;
        // Let the DISCONNECT go out.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
        Ok(completed)
    }
}
