//! The real `gateway` binary for Rust black-box tests: one process on free ports (every
//! listener, so that tests running in parallel never meet on a default port) with its own data
//! directory, killed when dropped. A test whose gateway logged a panic fails.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound on any single wait in these tests (a hang fails instead of blocking CI).
pub const WAIT: Duration = Duration::from_secs(10);

/// A TCP port that was free a moment ago. Listener ports come from below the kernel's ephemeral
/// range (32768-60999): a port the kernel picked would also be a candidate source port for any
/// client connection made before the gateway binds it. Each port is handed out once per process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        // A different starting point per process, so parallel test binaries rarely meet.
        let seed = std::process::id().wrapping_mul(7919)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        let _ = NEXT.compare_exchange(u32::MAX, seed % COUNT, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free listener port in 20000-31999")
}

/// The listener ports of one test gateway.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// STOMP.
    pub stomp: u16,
    /// MQTT.
    pub mqtt: u16,
    /// AMQP (0-9-1 and 1.0 sniffed).
    pub amqp: u16,
    /// Kafka.
    pub kafka: u16,
    /// OpenWire.
    pub openwire: u16,
    /// Admin HTTP and `/metrics`.
    pub admin: u16,
}

/// One gateway process and its directory.
pub struct TestGateway {
    dir: tempfile::TempDir,
    /// Its listener ports.
    pub ports: Ports,
    child: Option<Child>,
}

impl TestGateway {
    /// Starts a gateway on free ports and waits until every listener accepts connections.
    pub fn start() -> TestGateway {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let ports = Ports {
            stomp: free_port(),
            mqtt: free_port(),
            amqp: free_port(),
            kafka: free_port(),
            openwire: free_port(),
            admin: free_port(),
        };
        let config = format!(
            "[server]\ndata_dir = {data:?}\n\n\
             [listeners.stomp]\nbind = \"127.0.0.1:{stomp}\"\n\n\
             [listeners.mqtt]\nbind = \"127.0.0.1:{mqtt}\"\n\n\
             [listeners.amqp]\nbind = \"127.0.0.1:{amqp}\"\n\n\
             [listeners.kafka]\nbind = \"127.0.0.1:{kafka}\"\n\n\
             [listeners.openwire]\nbind = \"127.0.0.1:{openwire}\"\n\n\
             [admin]\nbind = \"127.0.0.1:{admin}\"\n",
            data = dir.path().join("data").display().to_string(),
            stomp = ports.stomp,
            mqtt = ports.mqtt,
            amqp = ports.amqp,
            kafka = ports.kafka,
            openwire = ports.openwire,
            admin = ports.admin,
        );
        std::fs::write(dir.path().join("gateway.toml"), config)
            .unwrap_or_else(|e| panic!("write config: {e}"));
        let mut gw = TestGateway {
            dir,
            ports,
            child: None,
        };
        gw.spawn();
        gw
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// The gateway's log (stdout and stderr of every run).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("open log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("clone log: {e}"));
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn gateway: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + WAIT * 2;
        for port in [self.ports.stomp, self.ports.mqtt, self.ports.amqp] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "gateway did not listen on {addr}; log:\n{}",
                    read_log(&self.log_path())
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILL (nothing flushed or closed cleanly, as in a crash), then start again on the same
    /// data and ports.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn();
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = read_log(&self.log_path());
        if !std::thread::panicking() {
            assert!(!log.contains("panicked"), "gateway panicked:\n{log}");
        }
    }
}

/// A file's text, empty when unreadable.
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
