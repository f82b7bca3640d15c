//! Security shared by every protocol: who may connect ([`Authenticator`]), what they may do
//! ([`Principal::may`]), TLS ([`TlsAcceptor`]) and connection limits ([`ConnectionLimiter`]).
//!
//! # How a session uses it
//!
//! 1. The listener wraps the accepted socket: [`TlsAcceptor::accept`] for a TLS listener (which
//!    also yields the user named by a verified client certificate), and takes a
//!    [`ConnectionPermit`] from the [`ConnectionLimiter`].
//! 2. The session builds a [`PeerInfo`] and calls [`Authenticator::authenticate`] with the
//!    credentials of its protocol (STOMP `login`/`passcode`, MQTT user name/password, AMQP
//!    PLAIN, ...). An [`AuthError`] is answered with that protocol's refusal; its `Display` is
//!    ActiveMQ's wording and never contains the password.
//! 3. Before each send, subscribe or create, the session asks
//!    [`Principal::check`] (or [`Principal::may`]) with the canonical destination, and answers
//!    an [`AccessDenied`] with its protocol's error (STOMP ERROR, MQTT 0x87, AMQP 403, ...).
//!
//! [`ListenerSecurity::admit`] does step 1 for a listener's accept loop (see
//! `server::accept_secured`), so a new protocol only writes a session generic over
//! `AsyncRead + AsyncWrite` and takes a [`PeerInfo`].
//!
//! The rules (see `docs/security.md`): a listener bound to loopback admits anonymous clients
//! and `guest`/`guest` while no user is configured; a listener bound to any other address admits
//! only configured users; `guest` is refused from non-loopback peers; once users are
//! configured, anonymous clients are refused everywhere. Without `[[authorization]]` entries an
//! admitted client may do everything; with entries, only what an entry grants to one of its
//! groups.

mod auth;
mod https;
mod limits;
pub mod scram;
mod stream;
mod tls;

pub(crate) use auth::{dummy_verify, verify_password};
pub use auth::{
    hash_password, AccessDenied, Action, AuthError, Authenticator, PeerInfo, Principal,
};
pub use https::TlsListener;
pub use limits::{ConnectionLimiter, ConnectionPermit, ConnectionRefused};
pub use stream::ClientStream;
pub use tls::{generate_self_signed, TlsAcceptor};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// What a listener's accept loop needs: the shared connection limiter, the TLS acceptor for a
/// TLS listener, and whether the listener is bound to loopback.
#[derive(Debug, Clone)]
pub struct ListenerSecurity {
    /// Shared by every listener.
    pub limiter: Arc<ConnectionLimiter>,
    /// `Some` for a TLS listener.
    pub tls: Option<TlsAcceptor>,
    /// Longest TLS handshake accepted.
    pub handshake_timeout: Duration,
    /// Whether the listener's bind address is a loopback address.
    pub listener_is_loopback: bool,
    /// Whether a connection refused by the limiter is answered in the listener's protocol
    /// (STOMP ERROR, MQTT CONNACK, AMQP close 530, OpenWire ExceptionResponse) before it is
    /// closed; `false` closes it at once (Kafka, which has no such error).
    pub answer_refusals: bool,
    /// Places for refusal answers in flight, shared by every listener: past them a refused
    /// connection is closed at once, so refused clients never hold more than this many tasks.
    pub refusal_answers: Arc<tokio::sync::Semaphore>,
}

/// How long a refused connection may take to be answered (TLS handshake, the client's first
/// command, the refusal) before it is closed regardless.
pub const REFUSAL_DEADLINE: Duration = Duration::from_secs(3);
/// The most bytes read from a refused connection: enough for a CONNECT / ConnectionInfo with
/// credentials, far less than a session's frame limit.
pub const REFUSAL_READ_BUDGET: u64 = 16 * 1024;
/// Refusal answers in flight at once, over every listener.
pub const MAX_REFUSAL_ANSWERS: usize = 64;

impl ListenerSecurity {
    /// Takes a connection place for `peer`, or says which limit refuses it (the caller answers
    /// the refusal in its protocol, or drops the socket: see
    /// [`ListenerSecurity::answer_refusals`]).
    pub fn permit(&self, peer: SocketAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        self.limiter.try_acquire(peer.ip())
    }

    /// Runs the TLS handshake when this is a TLS listener, and describes the peer.
    pub async fn admit(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> std::io::Result<(ClientStream, PeerInfo)> {
        let mut info = PeerInfo {
            addr: peer,
            listener_is_loopback: self.listener_is_loopback,
            certificate_user: None,
            refused: None,
        };
        let stream = match &self.tls {
            None => ClientStream::Plain(stream),
            Some(tls) => {
                let (stream, user) = tls.accept(stream, self.handshake_timeout).await?;
                info.certificate_user = user;
                ClientStream::Tls(Box::new(stream))
            }
        };
        Ok((stream, info))
    }
}
