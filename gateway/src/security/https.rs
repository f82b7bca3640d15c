//! HTTPS for the admin server: an [`axum::serve::Listener`] that hands axum TLS streams.
//!
//! A task accepts TCP connections and runs each TLS handshake in a task of its own (bounded by
//! the handshake timeout), so a client that stalls its handshake holds up nobody; finished
//! streams are handed to axum through a channel.

use super::TlsAcceptor;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// Most TLS handshakes in progress at once on one HTTPS listener; connections past it are
/// closed at once.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// A listener whose accepted connections have finished their TLS handshake.
///
/// ### Invariants
/// - The accept task lives exactly as long as the listener (aborted on drop).
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS on `listener` with `tls`; handshakes taking longer than `handshake_timeout`
    /// are dropped. Must be called within a tokio runtime.
    pub fn new(
        listener: TcpListener,
        tls: TlsAcceptor,
        handshake_timeout: Duration,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (done, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(accept_loop(listener, tls, handshake_timeout, done));
        Ok(TlsListener {
            local,
            ready,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    handshake_timeout: Duration,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = pending.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many HTTPS handshakes in progress; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls.accept(stream, handshake_timeout).await {
                Ok((stream, _)) => {
                    let _ = done.send((stream, peer)).await;
                }
                Err(e) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task ended (it never does while the listener lives): accept nothing.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::serve::Listener;
    use config::{ClientCertificates, TlsConfig};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client that never sends its ClientHello does not hold up the next one.
    #[tokio::test]
    async fn a_stalled_handshake_does_not_hold_up_other_clients() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) =
            super::super::generate_self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&cert_file, &cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        let tls = TlsAcceptor::from_config(&TlsConfig {
            cert_file,
            key_file,
            client_ca_file: None,
            client_certificates: ClientCertificates::None,
        })
        .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = TlsListener::new(tcp, tls, Duration::from_secs(60)).unwrap();
        let addr = listener.local_addr().unwrap();

        let _stalled = TcpStream::connect(addr).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert.as_bytes()).unwrap())
            .unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(b"ping").await.unwrap();
            tls.flush().await.unwrap();
            let mut reply = [0u8; 4];
            tls.read_exact(&mut reply).await.unwrap();
            reply
        });
        let (mut served, peer) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .unwrap();
        assert!(peer.ip().is_loopback());
        let mut got = [0u8; 4];
        served.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        served.write_all(b"pong").await.unwrap();
        served.flush().await.unwrap();
        assert_eq!(&client.await.unwrap(), b"pong");
    }
}
