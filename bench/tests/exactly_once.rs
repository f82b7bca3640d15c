//! The exactly-once check of the real `gateway-bench` binary, over sockets, against a tiny
//! in-test STOMP relay that can drop or duplicate one message: a clean relay passes, a relay
//! that loses or duplicates a message makes the run fail with the count in its JSON line.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the relay does to the message with this index (0-based, in arrival order).
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Drop(usize),
    Duplicate(usize),
}

/// Splits complete frames off `buf` (the bench sends no heart-beats): a body with a
/// content-length may hold NULs (the payload header does), one without ends at the first NUL.
fn frames(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let skip = buf.iter().take_while(|&&b| b == b'\n').count();
        buf.drain(..skip);
        let Some(head_end) = buf.windows(2).position(|w| w == b"\n\n") else {
            return out;
        };
        let length = header(
            buf.get(..head_end + 2).unwrap_or_default(),
            "content-length",
        )
        .and_then(|v| v.parse::<usize>().ok());
        let end = match length {
            Some(len) if buf.len() > head_end + 2 + len => head_end + 2 + len,
            Some(_) => return out,
            None => match buf.iter().skip(head_end).position(|&b| b == 0) {
                Some(i) => head_end + i,
                None => return out,
            },
        };
        let frame: Vec<u8> = buf.drain(..=end).collect();
        out.push(frame.get(..end).unwrap_or_default().to_vec());
    }
}

fn header<'a>(frame: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(frame).ok()?;
    let head = text.split("\n\n").next()?;
    head.lines()
        .skip(1)
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
}

/// What the relay connections share: the subscriber's outbox and the SEND counter.
#[derive(Default)]
struct Relay {
    subscriber: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    sent: AtomicUsize,
}

/// A STOMP relay: every SEND becomes a MESSAGE to the (single) subscriber, with `fault` applied.
async fn relay(listener: TcpListener, fault: Fault) {
    let shared = Arc::new(Relay::default());
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(connection(socket, shared.clone(), fault));
    }
}

async fn connection(socket: TcpStream, relay: Arc<Relay>, fault: Fault) {
    let (mut read, mut write) = socket.into_split();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut out = Vec::new();
        for f in frames(&mut buf) {
            if f.starts_with(b"CONNECT") {
                out.extend_from_slice(b"CONNECTED\nversion:1.2\n\n\0");
            } else if f.starts_with(b"SUBSCRIBE") {
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                *relay.subscriber.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
                let receipt = header(&f, "receipt").unwrap_or("").to_string();
                let _ = write
                    .write_all(format!("RECEIPT\nreceipt-id:{receipt}\n\n\0").as_bytes())
                    .await;
                // From here on this connection only writes what producers relay to it.
                while let Some(frame) = rx.recv().await {
                    if write.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                return;
            } else if f.starts_with(b"SEND") {
                let index = relay.sent.fetch_add(1, Ordering::SeqCst);
                let body_at = f
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map_or(f.len(), |i| i + 2);
                let body = f.get(body_at..).unwrap_or_default();
                let mut msg = format!(
                    "MESSAGE\ndestination:/queue/x\nmessage-id:{index}\nsubscription:0\ncontent-length:{}\n\n",
                    body.len()
                )
                .into_bytes();
                msg.extend_from_slice(body);
                msg.push(0);
                let copies = match fault {
                    Fault::Drop(i) if i == index => 0,
                    Fault::Duplicate(i) if i == index => 2,
                    _ => 1,
                };
                let subscriber = relay
                    .subscriber
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for _ in 0..copies {
                    if let Some(tx) = &subscriber {
                        let _ = tx.send(msg.clone());
                    }
                }
            } else if f.starts_with(b"DISCONNECT") {
                let r = header(&f, "receipt").unwrap_or("");
                out.extend_from_slice(format!("RECEIPT\nreceipt-id:{r}\n\n\0").as_bytes());
            }
        }
        if !out.is_empty() && write.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Runs the bench binary against a relay with `fault`; returns (exit success, JSON report).
fn run_bench(fault: Fault) -> (bool, serde_json::Value) {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("addr: {e}"));
    runtime.spawn(relay(listener, fault));
    let out = Command::new(env!("CARGO_BIN_EXE_gateway-bench"))
        .args([
            "stomp",
            "--port",
            &port.to_string(),
            "--count",
            "200",
            "--drain-timeout",
            "1",
        ])
        .output()
        .unwrap_or_else(|e| panic!("run gateway-bench: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no JSON line; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let report = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line}: {e}"));
    runtime.shutdown_timeout(Duration::from_millis(100));
    (out.status.success(), report)
}

#[test]
fn a_clean_run_passes() {
    let (ok, r) = run_bench(Fault::None);
    assert!(ok, "{r}");
    assert_eq!(r["published"], 200);
    assert_eq!(r["deliveries"], 200);
    assert_eq!(
        (r["lost"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(r["ok"], true);
    assert!(r["latency_ms"]["p99"].as_f64().is_some(), "{r}");
}

#[test]
fn a_lost_message_fails_the_run() {
    let (ok, r) = run_bench(Fault::Drop(17));
    assert!(!ok, "{r}");
    assert_eq!(r["lost"], 1);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["ok"], false);
}

#[test]
fn a_duplicated_message_fails_the_run() {
    let (ok, r) = run_bench(Fault::Duplicate(42));
    assert!(!ok, "{r}");
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 1);
    assert_eq!(r["deliveries"], 201);
    assert_eq!(r["ok"], false);
}
