//! The `gateway` binary: a multi-protocol message gateway (STOMP today; OpenWire, AMQP, MQTT and
//! Kafka to come) on one durable engine.

mod ack_batch;
mod admin;
mod admin_auth;
mod amqp091;
mod amqp_port;
mod bridge;
mod cli;
mod connections;
mod framing;
mod kafka;
mod metrics;
mod mqtt;
mod openwire;
mod security;
mod server;
mod stomp;

use clap::{Parser, Subcommand};
use config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: a message is allocated on one worker thread and often
/// freed on another, and glibc's malloc and free took about a fifth of the gateway's samples in
/// `perf` (AMQP transient); jemalloc cut the gateway's CPU per message by 10-24 % (STOMP, AMQP)
/// with idle and loaded resident sizes within the documented targets (mimalloc's idle size was
/// not). Feature `jemalloc`, on by default.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Command line.
#[derive(Parser)]
#[command(name = "gateway", version, about = "Multi-protocol message gateway")]
struct Cli {
    /// Run with this TOML configuration instead of the embedded default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Admin API of the running gateway that the admin subcommands call.
    #[arg(long, value_name = "URL", global = true, default_value = cli::DEFAULT_ADMIN_URL)]
    admin: String,
    /// Admin subcommands: print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Admin subcommands: user for the admin API's HTTP Basic authentication (default: the
    /// GATEWAY_ADMIN_USER environment variable).
    #[arg(long, value_name = "USER", global = true)]
    user: Option<String>,
    /// Admin subcommands: password for `--user` (default: the GATEWAY_ADMIN_PASSWORD
    /// environment variable; prefer it: a command line is visible to other local users).
    #[arg(long, value_name = "PASSWORD", global = true)]
    password: Option<String>,
    /// Admin subcommands: CA certificate (PEM) that an `https://` admin URL's certificate is
    /// checked against (default: the GATEWAY_ADMIN_CACERT environment variable).
    #[arg(long, value_name = "FILE", global = true)]
    cacert: Option<PathBuf>,
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
    /// Hash a password for `[[users]] password_hash` (argon2id). Reads the password from
    /// standard input (one line) or, on a terminal, prompts for it twice without echo; prints
    /// the PHC string.
    HashPassword {
        /// Print a SCRAM-SHA-256 credential for `[[users]] scram_sha256` instead (Kafka SASL
        /// SCRAM-SHA-256 logins; random salt, 4096 iterations).
        #[arg(long)]
        scram: bool,
    },
    /// Write a self-signed development certificate and its private key (PEM) for `[tls]`.
    GenCert {
        /// Where to write the certificate.
        #[arg(long, value_name = "FILE", default_value = "gateway-cert.pem")]
        cert: PathBuf,
        /// Where to write the private key (created readable by its owner only).
        #[arg(long, value_name = "FILE", default_value = "gateway-key.pem")]
        key: PathBuf,
        /// DNS names and IP addresses the certificate is valid for (repeatable); the first is
        /// also its common name.
        #[arg(long = "name", value_name = "NAME", default_values = ["localhost", "127.0.0.1", "::1"])]
        names: Vec<String>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// List queues and durable subscriptions with their depths and counters.
    Queues,
    /// Inspect, purge, delete or browse one queue.
    #[command(subcommand)]
    Queue(cli::QueueCommand),
    /// List open connections (protocol, peer, user, client id, age, bytes), or show one.
    Connections {
        /// `show ID`: one connection and its consumers.
        #[command(subcommand)]
        action: Option<cli::ConnectionCommand>,
    },
    /// List open consumers.
    Consumers,
    /// Broker-wide figures.
    Overview,
    /// Dead-letter queue actions.
    #[command(subcommand)]
    Dlq(cli::DlqCommand),
    /// List streams (partitions, messages, bytes, segments), or show one.
    Streams {
        /// `show NAME`: one stream's partitions.
        #[command(subcommand)]
        action: Option<cli::StreamCommand>,
    },
    /// List consumer groups (state, members, lag), show one, or reset its offsets.
    Groups {
        /// `show NAME` or `reset GROUP --to-earliest|--to-latest|--to-datetime T`.
        #[command(subcommand)]
        action: Option<cli::GroupCommand>,
    },
    /// Make the running gateway re-read its configuration file, as SIGHUP does (routes,
    /// streams, TLS certificate); prints every error when the file does not validate (the
    /// routes in force stay).
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::set_credentials(cli::Credentials::resolve(
        cli.user.clone(),
        cli.password.clone(),
    ));
    cli::set_ca_file(cli.cacert.clone());
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
        Some(Command::HashPassword { scram }) => hash_password(scram),
        Some(Command::GenCert {
            cert,
            key,
            names,
            force,
        }) => gen_cert(&cert, &key, &names, force),
        Some(Command::Queues) => cli::run(cli::AdminCommand::Queues, &cli.admin, cli.json),
        Some(Command::Queue(q)) => cli::run(cli::AdminCommand::Queue(q), &cli.admin, cli.json),
        Some(Command::Connections { action }) => cli::run(
            action.map_or(
                cli::AdminCommand::Connections,
                cli::AdminCommand::Connection,
            ),
            &cli.admin,
            cli.json,
        ),
        Some(Command::Consumers) => cli::run(cli::AdminCommand::Consumers, &cli.admin, cli.json),
        Some(Command::Overview) => cli::run(cli::AdminCommand::Overview, &cli.admin, cli.json),
        Some(Command::Dlq(d)) => cli::run(cli::AdminCommand::Dlq(d), &cli.admin, cli.json),
        Some(Command::Streams { action }) => cli::run(
            action.map_or(cli::AdminCommand::Streams, cli::AdminCommand::Stream),
            &cli.admin,
            cli.json,
        ),
        Some(Command::Groups { action }) => cli::run(
            action.map_or(cli::AdminCommand::Groups, cli::AdminCommand::Group),
            &cli.admin,
            cli.json,
        ),
        Some(Command::Reload) => cli::run(cli::AdminCommand::Reload, &cli.admin, cli.json),
        None => run(cli.config),
    }
}

/// `gateway hash-password [--scram]`.
fn hash_password(scram: bool) -> ExitCode {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ");
        let again = rpassword::prompt_password("Again: ");
        match (first, again) {
            (Ok(a), Ok(b)) if a == b => a,
            (Ok(_), Ok(_)) => {
                eprintln!("gateway: the passwords differ");
                return ExitCode::FAILURE;
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("gateway: cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
            eprintln!("gateway: cannot read the password: {e}");
            return ExitCode::FAILURE;
        }
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    };
    if password.is_empty() {
        eprintln!("gateway: empty password");
        return ExitCode::FAILURE;
    }
    if scram {
        return match security::scram::ScramCredential::generate(password.as_bytes()) {
            Ok(credential) => {
                println!("{credential}");
                ExitCode::SUCCESS
            }
            Err(_) => {
                eprintln!("gateway: no randomness for a salt");
                ExitCode::FAILURE
            }
        };
    }
    match security::hash_password(password.as_bytes()) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway: cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `gateway gen-cert`.
fn gen_cert(cert: &Path, key: &Path, names: &[String], force: bool) -> ExitCode {
    for path in [cert, key] {
        if path.exists() && !force {
            eprintln!(
                "gateway: {} exists (use --force to overwrite)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let (cert_pem, key_pem) = match security::generate_self_signed(names) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write_private(key, key_pem.as_bytes()) {
        eprintln!("gateway: cannot write {}: {e}", key.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(cert, cert_pem) {
        eprintln!("gateway: cannot write {}: {e}", cert.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} and {} (self-signed, for {}; for development only)",
        cert.display(),
        key.display(),
        names.join(", ")
    );
    ExitCode::SUCCESS
}

/// Writes a file readable and writable by its owner only (on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
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
    let format = match std::env::var("GATEWAY_LOG_FORMAT") {
        Ok(v) if !v.is_empty() => match config::LogFormat::parse(&v) {
            Some(f) => f,
            None => {
                eprintln!("GATEWAY_LOG_FORMAT must be \"text\" or \"json\", not {v:?}");
                return ExitCode::from(2);
            }
        },
        _ => config.server.log_format,
    };
    match format {
        config::LogFormat::Text => {
            // Colours only for a terminal: log files and journald get plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .init();
        }
        config::LogFormat::Json => {
            // One object per line; `spans` carries the connection span (id, protocol, peer, user).
            tracing_subscriber::fmt()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
        }
    }
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
    if let Some(p) = path {
        server::set_config_path(p);
    }
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
