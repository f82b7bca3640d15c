//! `gateway-bench`: throughput, end-to-end latency and exactly-once verification against the
//! gateway or any broker speaking the same protocols, on third-party clients (`lapin` for AMQP
//! 0-9-1, and `amqprs` as a second one; `rumqttc` for MQTT) and a small STOMP client of its own. OpenWire is measured by the
//! Java program in `bench/java/JmsBench.java`, Kafka by `bench/compare` with `kcat`.
//!
//! Every run prints one human line on stderr and one JSON line on stdout, and exits non-zero
//! when a message was lost, duplicated or unexpected, whatever the speed.

mod amqp;
mod amqprs;
mod idle;
mod mqtt;
mod payload;
mod run;
mod stomp;
mod verify;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "gateway-bench",
    about = "Message broker benchmark with exactly-once checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// STOMP 1.2 (queues, or topics with --fanout).
    Stomp(run::Knobs),
    /// MQTT 3.1.1 on rumqttc (QoS 0 or 1; subscribers fan out).
    Mqtt(run::Knobs),
    /// AMQP 0-9-1 on lapin (default exchange, or a fanout exchange with --fanout).
    Amqp(run::Knobs),
    /// AMQP 0-9-1 on amqprs, a client on tokio tasks (as `amqp`, without publisher confirms).
    Amqprs(run::Knobs),
    /// Opens many idle MQTT connections and reads a broker's resident size.
    IdleMqtt(idle::IdleKnobs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The clock of every payload starts before any connection.
    let _ = payload::now_ns();
    runtime.block_on(async move {
        match cli.command {
            Command::Stomp(k) => run::run(stomp::Stomp, k).await,
            Command::Mqtt(k) => run::run(mqtt::Mqtt, k).await,
            Command::Amqp(k) => run::run(amqp::Amqp, k).await,
            Command::Amqprs(k) => run::run(amqprs::Amqprs, k).await,
            Command::IdleMqtt(k) => idle::run(k).await,
        }
    })
}
