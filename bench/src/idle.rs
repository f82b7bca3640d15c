//! Idle connections for the memory scenario: opens many MQTT 3.1.1 connections (a raw CONNECT,
//! keep-alive 0 so that no PINGREQ is due), waits for every CONNACK, then reads the broker's
//! resident size from `/proc/PID/status`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Knobs of the idle-connection measurement.
#[derive(Debug, Clone, Args)]
pub struct IdleKnobs {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// MQTT port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: u32,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 100)]
    pub parallel: usize,
    /// Process whose resident size is read once every connection is up.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds to wait, connections up, before reading the resident size.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// Label copied into the JSON line.
    #[arg(long, default_value = "")]
    pub label: String,
}

/// An MQTT 3.1.1 CONNECT: clean session, keep-alive 0, the given client id.
fn connect_packet(client_id: &str) -> Result<Vec<u8>> {
    let id = client_id.as_bytes();
    let id_len = u16::try_from(id.len()).context("client id too long")?;
    let mut variable = Vec::with_capacity(12 + id.len());
    variable.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0b0000_0010, 0, 0]);
    variable.extend_from_slice(&id_len.to_be_bytes());
    variable.extend_from_slice(id);
    let remaining = u8::try_from(variable.len()).context("CONNECT too long")?;
    if remaining > 127 {
        bail!("CONNECT too long for a one-byte length");
    }
    let mut packet = vec![0x10, remaining];
    packet.extend_from_slice(&variable);
    Ok(packet)
}

async fn open(host: &str, port: u16, client_id: String) -> Result<TcpStream> {
    let mut s = TcpStream::connect((host, port)).await?;
    s.write_all(&connect_packet(&client_id)?).await?;
    let mut connack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut connack))
        .await
        .context("no CONNACK within 30 s")??;
    if connack[0] != 0x20 || connack[3] != 0 {
        bail!("CONNACK refused: {connack:?}");
    }
    Ok(s)
}

/// `VmRSS` of a process in bytes.
pub fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS line")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()?;
    Ok(kb * 1024)
}

/// Opens the connections, reports, closes them.
pub async fn run(k: IdleKnobs) -> Result<()> {
    let before = k.pid.map(resident_bytes).transpose()?;
    let started = std::time::Instant::now();
    let pid = std::process::id();
    let results: Vec<Result<TcpStream>> = stream::iter(0..k.connections)
        .map(|i| open(&k.host, k.port, format!("idle-{pid}-{i}")))
        .buffer_unordered(k.parallel.max(1))
        .collect()
        .await;
    let mut streams = Vec::with_capacity(results.len());
    let mut failed = 0u32;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => streams.push(s),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(k.settle)).await;
    let after = k.pid.map(resident_bytes).transpose()?;
    let report = serde_json::json!({
        "bench": "gateway-bench",
        "scenario": "idle-mqtt",
        "label": k.label,
        "connections": streams.len(),
        "failed": failed,
        "connect_secs": connect_secs,
        "rss_before_bytes": before,
        "rss_bytes": after,
        "ok": failed == 0,
        "error": first_error.as_ref().map(|e| format!("{e:#}")),
    });
    eprintln!(
        "idle-mqtt {}: {} connections up in {connect_secs:.1} s ({failed} failed), RSS {} -> {} MiB",
        k.label,
        streams.len(),
        before.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
        after.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
    );
    println!("{report}");
    drop(streams);
    if let Some(e) = first_error {
        return Err(e.context(format!("{failed} of {} connections failed", k.connections)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packet_is_mqtt_3_1_1() {
        let p = connect_packet("c1").unwrap_or_default();
        assert_eq!(
            p,
            [0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 2, b'c', b'1']
        );
    }
}
