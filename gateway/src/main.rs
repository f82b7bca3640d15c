//! The `gateway` binary: a multi-protocol message gateway (STOMP today; OpenWire, AMQP, MQTT and
//! Kafka to come) on one durable engine.

mod mqtt;
mod openwire;
mod server;
mod stomp;

use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Command line.
#[derive(Parser)]
#[command(name = "gateway", version, about = "Multi-protocol message gateway")]
struct Cli {
    /// Run with this TOML configuration instead of the embedded default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and print every error with its key and line.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => match Config::from_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.errors {
                    eprintln!("{e}");
                }
                ExitCode::FAILURE
            }
        },
        None => run(cli.config),
    }
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let config = match &path {
        Some(p) => match Config::from_file(p) {
            Ok(c) => c,
            Err(errors) => {
                eprintln!("invalid configuration, not starting:");
                for e in &errors.errors {
                    eprintln!("{e}");
                }
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.server.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
