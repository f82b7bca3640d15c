//! The registry of open client connections: who is connected, over which protocol and listener,
//! from where, as whom, since when, and how many bytes went each way. It feeds the connection
//! metrics, the admin API (`GET /api/connections`) and the per-connection tracing span.
//!
//! # How a protocol uses it
//!
//! A listener's accept loop ([`crate::server`]'s `accept`) does the registering: it calls
//! [`ListenerTracker::accepted`] for each TCP connection, wraps the stream in a
//! [`MeteredStream`] and runs the session future through [`Connection::run`], which enters the
//! connection's span (`connection{id, protocol, listener, peer, user}`) and makes the connection
//! the *current* one for the session task. The session itself only reports what it learns, with
//! the free functions of this module (no handle to pass around):
//!
//! - [`established`] once the protocol handshake succeeded (user, client id, engine session;
//!   [`established_without_session`] for Kafka, which has none);
//! - [`reject`] when it refuses the handshake (bad version, client id in use, bad credentials);
//! - [`crate::metrics::decode_error`] when the peer sent bytes its codec rejects.
//!
//! Outside a connection's task (tests, tools) these functions do nothing.
//!
//! ### Invariants
//! A connection is in the registry exactly while its [`Connection`] guard lives; the
//! `gateway_connections_open` gauge of its protocol and listener counts it for that time.

use crate::metrics as m;
use routes::SessionId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::Instrument;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

tokio::task_local! {
    static CURRENT: Arc<ConnectionInfo>;
}

/// Every open connection, by id.
#[derive(Default)]
pub struct ConnectionRegistry {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnectionInfo>>>,
}

impl ConnectionRegistry {
    /// A new, empty registry, shared by every listener.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The tracker a listener registers its connections with.
    pub fn listener(self: &Arc<Self>, protocol: &'static str, listener: &str) -> ListenerTracker {
        // Present from the start, so that dashboards show 0 rather than nothing.
        m::register_protocol(protocol);
        m::register_limits(protocol);
        m::connections_open(protocol, listener).set(0.0);
        m::connections_accepted(protocol, listener).absolute(0);
        m::connections_rejected(protocol, listener).absolute(0);
        m::network_received(protocol, listener).absolute(0);
        m::network_sent(protocol, listener).absolute(0);
        ListenerTracker {
            registry: self.clone(),
            protocol,
            listener: Arc::from(listener),
        }
    }

    /// The open connections, oldest first.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        lock(&self.open).values().cloned().collect()
    }
}

/// Registers the connections of one listener under its protocol and name.
#[derive(Clone)]
pub struct ListenerTracker {
    registry: Arc<ConnectionRegistry>,
    protocol: &'static str,
    listener: Arc<str>,
}

impl ListenerTracker {
    /// Counts a connection closed at accept, before any session (a connection limit).
    pub fn refused(&self) {
        m::connections_rejected(self.protocol, &self.listener).increment(1);
    }

    /// Counts a connection closed at accept by security limit `limit`.
    pub fn limit_refused(&self, limit: &'static str) {
        m::limit_refused(self.protocol, limit);
    }

    /// Registers a connection just accepted from `peer`; it leaves the registry when the
    /// returned guard drops.
    pub fn accepted(&self, peer: SocketAddr) -> Connection {
        let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = self.info(id, peer);
        m::connections_accepted(self.protocol, &self.listener).increment(1);
        m::connections_open(self.protocol, &self.listener).increment(1.0);
        lock(&self.registry.open).insert(id, info.clone());
        Connection {
            registry: self.registry.clone(),
            info,
        }
    }

    /// Details for a connection refused at accept but answered in its protocol: id 0, never
    /// registered nor counted as open (it was counted as refused), so nothing it does later
    /// counts again; only its bytes are metered.
    pub fn refused_info(&self, peer: SocketAddr) -> Arc<ConnectionInfo> {
        self.info(0, peer)
    }

    fn info(&self, id: u64, peer: SocketAddr) -> Arc<ConnectionInfo> {
        let span = tracing::info_span!(
            "connection",
            id,
            protocol = self.protocol,
            listener = %self.listener,
            %peer,
            user = tracing::field::Empty,
        );
        Arc::new(ConnectionInfo {
            id,
            protocol: self.protocol,
            listener: self.listener.clone(),
            peer,
            since: SystemTime::now(),
            user: Mutex::new(None),
            client_id: Mutex::new(None),
            sessions: Mutex::new(Vec::new()),
            established: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            received: m::network_received(self.protocol, &self.listener),
            sent: m::network_sent(self.protocol, &self.listener),
            span,
        })
    }
}

/// What is known about one open connection.
pub struct ConnectionInfo {
    /// Unique (per process) connection id, from 1.
    pub id: u64,
    /// Protocol name (`stomp`, `mqtt`, ...), as in metric labels.
    pub protocol: &'static str,
    /// The listener's name, as in metric labels.
    pub listener: Arc<str>,
    /// The client's address.
    pub peer: SocketAddr,
    /// When it was accepted.
    pub since: SystemTime,
    user: Mutex<Option<String>>,
    client_id: Mutex<Option<String>>,
    sessions: Mutex<Vec<SessionId>>,
    established: AtomicBool,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    received: metrics::Counter,
    sent: metrics::Counter,
    span: tracing::Span,
}

impl ConnectionInfo {
    /// The authenticated (or claimed, without authentication) user name.
    pub fn user(&self) -> Option<String> {
        lock(&self.user).clone()
    }

    /// The client id the connection registered with.
    pub fn client_id(&self) -> Option<String> {
        lock(&self.client_id).clone()
    }

    /// Engine sessions opened by this connection.
    pub fn sessions(&self) -> Vec<SessionId> {
        lock(&self.sessions).clone()
    }

    /// Whether the protocol handshake completed.
    pub fn is_established(&self) -> bool {
        self.established.load(Ordering::Relaxed)
    }

    /// Bytes read from the client so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to the client so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// An open connection's registration; dropping it removes the connection from the registry.
pub struct Connection {
    registry: Arc<ConnectionRegistry>,
    info: Arc<ConnectionInfo>,
}

impl Connection {
    /// The connection's details.
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }

    /// Runs a session future as this connection: inside its span, with this connection as the
    /// current one for [`established`] and [`reject`]; deregisters when the future ends.
    ///
    /// Not an `async fn`: one would hold `session` twice (once as its argument, once as the
    /// future it awaits), doubling every connection task.
    pub fn run<F: std::future::Future<Output = ()>>(
        self,
        session: F,
    ) -> impl std::future::Future<Output = ()> {
        let span = self.info.span.clone();
        let scoped = CURRENT.scope(self.info.clone(), session.instrument(span));
        // The registration ends with the session (or when the task is dropped).
        futures::FutureExt::map(scoped, move |()| drop(self))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        lock(&self.registry.open).remove(&self.info.id);
        m::connections_open(self.info.protocol, &self.info.listener).decrement(1.0);
    }
}

/// The connection the calling task serves, if any.
fn current() -> Option<Arc<ConnectionInfo>> {
    CURRENT.try_with(|c| c.clone()).ok()
}

/// Records that the current connection completed its protocol handshake: its user (recorded in
/// its span too), client id and engine session.
pub fn established(user: Option<&str>, client_id: Option<&str>, session: SessionId) {
    record_established(user, client_id, Some(session));
}

/// As [`established`], for a protocol that opens no engine session (Kafka: its clients read
/// and write the log directly).
pub fn established_without_session(user: Option<&str>, client_id: Option<&str>) {
    record_established(user, client_id, None);
}

fn record_established(user: Option<&str>, client_id: Option<&str>, session: Option<SessionId>) {
    let Some(conn) = current() else {
        return;
    };
    if let Some(user) = user {
        conn.span.record("user", user);
        *lock(&conn.user) = Some(user.to_string());
    }
    if let Some(client_id) = client_id {
        *lock(&conn.client_id) = Some(client_id.to_string());
    }
    if let Some(session) = session {
        lock(&conn.sessions).push(session);
    }
    conn.established.store(true, Ordering::Relaxed);
}

/// Counts a refusal of the current connection by security limit `limit`
/// (`gateway_limit_refusals_total{protocol, limit}`; see [`crate::metrics::LIMIT_REFUSALS_TOTAL`]).
pub fn limit_refused(limit: &'static str) {
    if let Some(conn) = current() {
        m::limit_refused(conn.protocol, limit);
    }
}

/// Records that the current connection's handshake was refused (bad version, client id in use,
/// bad credentials, ...): counted in `gateway_connections_rejected_total`.
pub fn reject(reason: &str) {
    let Some(conn) = current() else {
        return;
    };
    tracing::debug!(reason, "connection refused");
    m::connections_rejected(conn.protocol, &conn.listener).increment(1);
}

/// A stream that counts the bytes read and written into its connection's figures and the
/// `gateway_network_*_bytes_total` counters.
pub struct MeteredStream<S> {
    inner: S,
    info: Arc<ConnectionInfo>,
    /// Bytes still to be read before the stream reads as closed (`u64::MAX`: no bound).
    read_budget: u64,
}

impl<S> MeteredStream<S> {
    /// Wraps `inner`, counting into `info`.
    pub fn new(inner: S, info: Arc<ConnectionInfo>) -> Self {
        Self {
            inner,
            info,
            read_budget: u64::MAX,
        }
    }

    /// Reads at most `bytes` from the client, then end of stream: bounds what a connection
    /// served only to be refused may make the gateway buffer.
    pub fn with_read_budget(mut self, bytes: u64) -> Self {
        self.read_budget = bytes;
        self
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read_budget == 0 {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = if self.read_budget == u64::MAX {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        } else {
            let room = usize::try_from(self.read_budget)
                .unwrap_or(usize::MAX)
                .min(buf.remaining());
            let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
            let r = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
            let got = limited.filled().len();
            buf.advance(got);
            self.read_budget -= got as u64;
            r
        };
        let n = buf.filled().len().saturating_sub(before) as u64;
        if n > 0 {
            self.info.bytes_in.fetch_add(n, Ordering::Relaxed);
            self.info.received.increment(n);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.count_out(*n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.count_out(*n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> MeteredStream<S> {
    fn count_out(&self, n: usize) {
        if n > 0 {
            self.info.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            self.info.sent.increment(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_read_budget_ends_the_stream_after_that_many_bytes() {
        let tracker = ConnectionRegistry::new().listener("stomp", "stomp");
        let info = tracker.refused_info(([127, 0, 0, 1], 1).into());
        let (mut client, server) = tokio::io::duplex(1024);
        let mut stream = MeteredStream::new(server, info.clone()).with_read_budget(10);
        client.write_all(&[7u8; 64]).await.expect("write");
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, vec![7u8; 10]);
        assert_eq!(info.bytes_in(), 10);
        // Never registered: a refused connection is not an open one.
        assert_eq!(info.id, 0);
    }
}
