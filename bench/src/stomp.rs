//! A small STOMP 1.2 client for measuring (not the gateway's codec): frames are written in
//! batches and parsed from a read buffer; header values are kept escaped, as they arrived, so
//! that an `ack` id is echoed back byte for byte.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};

use crate::payload;
use crate::run::{AckMode, ConsumerResult, Driver, Knobs, Pacer, Shared};
use crate::verify::Tracker;

/// Largest frame this client accepts (headers and body).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Bytes of outgoing frames buffered before a write.
const WRITE_BATCH: usize = 64 * 1024;

/// One received frame.
#[derive(Debug)]
struct Frame {
    command: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one frame from the front of `buf`; `Ok(None)` when more bytes are needed.
fn parse(buf: &mut BytesMut) -> Result<Option<Frame>> {
    // Heart-beats (and the EOLs some servers put after the NUL) are bare line ends.
    while buf.first().is_some_and(|&b| b == b'\n' || b == b'\r') {
        buf.advance(1);
    }
    let Some(head_end) = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
        .or_else(|| {
            buf.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, i + 4))
        })
    else {
        if buf.len() > MAX_FRAME {
            bail!("STOMP frame headers longer than {MAX_FRAME} bytes");
        }
        return Ok(None);
    };
    let (text_end, body_start) = head_end;
    let head = std::str::from_utf8(buf.get(..text_end).unwrap_or_default())
        .context("STOMP headers are not UTF-8")?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let command = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        headers.push((name.to_string(), value.to_string()));
    }
    let content_length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .context("bad content-length")?;
    let body_end = match content_length {
        Some(len) => {
            if len > MAX_FRAME {
                bail!("STOMP body of {len} bytes is over {MAX_FRAME}");
            }
            if buf.len() < body_start + len + 1 {
                return Ok(None);
            }
            if buf.get(body_start + len) != Some(&0) {
                bail!("STOMP frame without NUL after its content-length body");
            }
            body_start + len
        }
        None => match buf
            .get(body_start..)
            .and_then(|b| b.iter().position(|&c| c == 0))
        {
            Some(i) => body_start + i,
            None => {
                if buf.len() > MAX_FRAME {
                    bail!("STOMP frame longer than {MAX_FRAME} bytes");
                }
                return Ok(None);
            }
        },
    };
    let mut frame = buf.split_to(body_end + 1);
    frame.advance(body_start);
    frame.truncate(body_end - body_start);
    Ok(Some(Frame {
        command,
        headers,
        body: frame.freeze(),
    }))
}

/// The reading half of a connection.
struct Reader {
    half: OwnedReadHalf,
    buf: BytesMut,
}

impl Reader {
    /// The next frame; `pending` (outgoing bytes) is written first whenever the reader would
    /// block, so that acks go out in batches.
    async fn next(&mut self, writer: &mut OwnedWriteHalf, pending: &mut BytesMut) -> Result<Frame> {
        loop {
            if let Some(frame) = parse(&mut self.buf)? {
                if frame.command == "ERROR" {
                    bail!(
                        "STOMP ERROR: {} {}",
                        frame.header("message").unwrap_or_default(),
                        String::from_utf8_lossy(&frame.body)
                    );
                }
                return Ok(frame);
            }
            if !pending.is_empty() {
                writer.write_all(pending).await?;
                pending.clear();
            }
            self.buf.reserve(64 * 1024);
            if self.half.read_buf(&mut self.buf).await? == 0 {
                bail!("STOMP connection closed by the broker");
            }
        }
    }
}

/// Appends a frame to `out`; `body` gets a content-length.
fn put_frame(out: &mut BytesMut, command: &str, headers: &[(&str, &str)], body: &[u8]) {
    out.extend_from_slice(command.as_bytes());
    out.extend_from_slice(b"\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b":");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\n");
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\0");
}

/// Connects and logs in (STOMP 1.2, no heart-beats).
async fn connect(knobs: &Knobs) -> Result<(Reader, OwnedWriteHalf)> {
    let port = knobs.port.unwrap_or(61613);
    let stream = TcpStream::connect((knobs.host.as_str(), port))
        .await
        .with_context(|| format!("connect to STOMP {}:{port}", knobs.host))?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut out = BytesMut::new();
    put_frame(
        &mut out,
        "CONNECT",
        &[
            ("accept-version", "1.2"),
            ("host", "/"),
            ("login", &knobs.user),
            ("passcode", &knobs.password),
            ("heart-beat", "0,0"),
        ],
        b"",
    );
    write.write_all(&out).await?;
    out.clear();
    let mut reader = Reader {
        half: read,
        buf: BytesMut::with_capacity(64 * 1024),
    };
    let frame = reader.next(&mut write, &mut out).await?;
    if frame.command != "CONNECTED" {
        bail!("expected CONNECTED, got {}", frame.command);
    }
    Ok((reader, write))
}

/// The STOMP driver.
#[derive(Debug, Default)]
pub struct Stomp;

fn destination(shared: &Shared) -> String {
    let kind = if shared.knobs.fanout {
        "topic"
    } else {
        "queue"
    };
    format!("/{kind}/{}", shared.destination)
}

impl Driver for Stomp {
    fn protocol(&self) -> &'static str {
        "stomp"
    }

    async fn consume(
        &self,
        shared: Arc<Shared>,
        _id: u32,
        ready: oneshot::Sender<()>,
    ) -> ConsumerResult {
        let knobs = &shared.knobs;
        let (mut reader, mut writer) = connect(knobs).await?;
        let mut out = BytesMut::new();
        let ack = match knobs.ack {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::Individual => "client-individual",
        };
        let prefetch = knobs.prefetch.to_string();
        put_frame(
            &mut out,
            "SUBSCRIBE",
            &[
                ("id", "0"),
                ("destination", &destination(&shared)),
                ("ack", ack),
                ("activemq.prefetchSize", &prefetch),
                ("prefetch-count", &prefetch),
                ("receipt", "subscribed"),
            ],
            b"",
        );
        writer.write_all(&out).await?;
        out.clear();
        loop {
            let frame = reader.next(&mut writer, &mut out).await?;
            if frame.command == "RECEIPT" && frame.header("receipt-id") == Some("subscribed") {
                break;
            }
        }
        let _ = ready.send(());
        let ack_every = knobs.cumulative_ack_every();
        let mut unacked = 0u32;
        let mut last_ack_id = None::<String>;
        let mut tracker = Tracker::default();
        let mut stop = shared.stop.clone();
        loop {
            let frame = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                f = reader.next(&mut writer, &mut out) => f?,
            };
            if frame.command != "MESSAGE" {
                continue;
            }
            shared.delivered(&mut tracker, &frame.body);
            match knobs.ack {
                AckMode::Auto => {}
                AckMode::Individual => {
                    let id = frame
                        .header("ack")
                        .context("MESSAGE without an ack header")?;
                    put_frame(&mut out, "ACK", &[("id", id)], b"");
                }
                AckMode::Client => {
                    let id = frame
                        .header("ack")
                        .context("MESSAGE without an ack header")?;
                    unacked += 1;
                    if unacked >= ack_every {
                        put_frame(&mut out, "ACK", &[("id", id)], b"");
                        unacked = 0;
                    } else {
                        last_ack_id = Some(id.to_string());
                    }
                }
            }
        }
        // The last cumulative ack, and every buffered one, before anyone disconnects.
        if let (true, Some(id)) = (unacked > 0, last_ack_id) {
            put_frame(&mut out, "ACK", &[("id", &id)], b"");
        }
        if !out.is_empty() {
            writer.write_all(&out).await?;
        }
        shared.all_acked().await;
        Ok(tracker)
    }

    async fn produce(&self, shared: Arc<Shared>, id: u32) -> Result<u64> {
        let knobs = &shared.knobs;
        let (mut reader, mut writer) = connect(knobs).await?;
        let window = usize::try_from(knobs.window).unwrap_or(usize::MAX);
        let permits = Arc::new(Semaphore::new(window));
        let (bye_tx, bye_rx) = oneshot::channel::<()>();
        // Receipts are read on their own task; each one gives back a window slot.
        let receipts = {
            let permits = permits.clone();
            tokio::spawn(async move {
                let mut bye = Some(bye_tx);
                loop {
                    let frame = match parse(&mut reader.buf)? {
                        Some(f) => f,
                        None => {
                            reader.buf.reserve(64 * 1024);
                            if reader.half.read_buf(&mut reader.buf).await? == 0 {
                                bail!("STOMP connection closed by the broker");
                            }
                            continue;
                        }
                    };
                    match frame.command.as_str() {
                        "RECEIPT" if frame.header("receipt-id") == Some("bye") => {
                            if let Some(tx) = bye.take() {
                                let _ = tx.send(());
                            }
                            return Ok(());
                        }
                        "RECEIPT" => permits.add_permits(1),
                        "ERROR" => bail!(
                            "STOMP ERROR: {} {}",
                            frame.header("message").unwrap_or_default(),
                            String::from_utf8_lossy(&frame.body)
                        ),
                        _ => {}
                    }
                }
            })
        };
        let dest = destination(&shared);
        let persistent = if knobs.persistent { "true" } else { "false" };
        let mut pacer = Pacer::new(knobs, id);
        let mut out = BytesMut::with_capacity(WRITE_BATCH + knobs.size + 512);
        let mut published = 0u64;
        let mut receipt = String::new();
        while let Some(seq) = pacer.next().await {
            if window > 0 {
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        if !out.is_empty() {
                            writer.write_all(&out).await?;
                            out.clear();
                        }
                        permits.clone().acquire_owned().await?
                    }
                };
                permit.forget();
            }
            let body = payload::encode(id, seq, knobs.size);
            receipt.clear();
            receipt.push_str(&seq.to_string());
            let mut headers = vec![("destination", dest.as_str()), ("persistent", persistent)];
            if window > 0 {
                headers.push(("receipt", receipt.as_str()));
            }
            put_frame(&mut out, "SEND", &headers, &body);
            published += 1;
            if out.len() >= WRITE_BATCH || pacer.paced() {
                writer.write_all(&out).await?;
                out.clear();
            }
        }
        // DISCONNECT's receipt comes after every frame before it was processed (and after
        // every earlier receipt).
        put_frame(&mut out, "DISCONNECT", &[("receipt", "bye")], b"");
        writer.write_all(&out).await?;
        let wait = std::time::Duration::from_secs_f64(knobs.drain_timeout.max(1.0) * 6.0);
        match tokio::time::timeout(wait, bye_rx).await {
            Ok(Ok(())) => {}
            _ => {
                receipts.abort();
                match receipts.await {
                    Ok(Err(e)) => return Err(e),
                    _ => bail!("no RECEIPT for DISCONNECT within {wait:?}"),
                }
            }
        }
        let _ = receipts.await;
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_with_and_without_content_length_and_heartbeats() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(
            b"\n\nRECEIPT\nreceipt-id:7\n\n\0\r\nMESSAGE\nack:a\\cb\ncontent-length:3\n\na\0b\0",
        );
        let f = parse(&mut buf)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("frame 1"));
        assert_eq!(
            (f.command.as_str(), f.header("receipt-id")),
            ("RECEIPT", Some("7"))
        );
        let f = parse(&mut buf)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("frame 2"));
        assert_eq!(f.command, "MESSAGE");
        assert_eq!(f.header("ack"), Some("a\\cb"), "kept escaped");
        assert_eq!(&f.body[..], b"a\0b");
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let mut frame = BytesMut::new();
        put_frame(
            &mut frame,
            "MESSAGE",
            &[("destination", "/queue/q")],
            b"hello",
        );
        for cut in 0..frame.len() {
            let mut part = BytesMut::from(frame.get(..cut).unwrap_or_default());
            assert!(parse(&mut part).ok().flatten().is_none(), "cut at {cut}");
        }
        let f = parse(&mut frame)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("whole frame"));
        assert_eq!(&f.body[..], b"hello");
    }
}
