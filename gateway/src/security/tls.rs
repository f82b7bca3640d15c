//! TLS for any listener: a rustls acceptor built from PEM files (TLS 1.2 minimum, optional or
//! required client certificates), and the self-signed development certificate of
//! `gateway gen-cert`.

use config::{ClientCertificates, TlsConfig};
use rustls::crypto::ring;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Why the TLS settings cannot be used. Names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds no usable item.
    #[error("{what} {}: {message}", path.display())]
    Pem {
        /// Which file this is (`certificate file`, `private key file`, `client CA file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the certificate, key or CA set.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The development certificate could not be generated.
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Wraps accepted TCP streams in TLS. Cheap to clone; one per gateway serves every TLS
/// listener, and [`TlsAcceptor::reload`] on any clone changes the certificate for all of them.
///
/// ### Invariants
/// - `current` always holds a complete, valid server configuration: a reload that fails leaves
///   the previous one in place.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<TlsConfig>,
    current: Arc<RwLock<tokio_rustls::TlsAcceptor>>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

fn pem_error(what: &'static str, path: &Path, message: impl ToString) -> TlsSetupError {
    TlsSetupError::Pem {
        what,
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn load_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

impl TlsAcceptor {
    /// Builds the acceptor from `[tls]`: reads the certificate chain, the key and (when client
    /// certificates are asked for) the client CA file. TLS 1.2 and 1.3 only.
    pub fn from_config(config: &TlsConfig) -> Result<Self, TlsSetupError> {
        Ok(TlsAcceptor {
            current: Arc::new(RwLock::new(build(config)?)),
            config: Arc::new(config.clone()),
        })
    }

    /// Reads the files again and, when they make a valid configuration, serves new handshakes
    /// with it (connections already open keep theirs). On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsSetupError> {
        let fresh = build(&self.config)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Runs the server handshake on `stream` (failing after `timeout`: a slow-loris guard).
    /// Returns the TLS stream and the common name (CN) of the client certificate, when the
    /// client presented one that chains to the client CA.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> io::Result<(TlsStream<TcpStream>, Option<String>)> {
        let acceptor = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let user = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| common_name(leaf.as_ref()));
        Ok((tls, user))
    }
}

/// A rustls acceptor for `config`.
fn build(config: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    // ring, not aws-lc-rs: no cmake / large C build for CI. rustls 0.23.48 deprecates it
    // for lacking post-quantum key exchange (X25519MLKEM768); classic groups remain.
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let certs = load_certificates("certificate file", &config.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| pem_error("private key file", &config.key_file, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match (config.client_certificates, &config.client_ca_file) {
        (ClientCertificates::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for ca in load_certificates("client CA file", ca_file)? {
                roots
                    .add(ca)
                    .map_err(|e| pem_error("client CA file", ca_file, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientCertificates::Optional {
                verifier.allow_unauthenticated().build()?
            } else {
                verifier.build()?
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The first common name of a DER certificate's subject.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// A self-signed development certificate and its key, both PEM, valid for `names` (DNS names
/// or IP addresses; the first is also the subject's common name).
pub fn generate_self_signed(names: &[String]) -> Result<(String, String), TlsSetupError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.clone());
    }
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_loads_and_names_its_subject() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = generate_self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&cert_file, &cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        let config = TlsConfig {
            cert_file: cert_file.clone(),
            key_file,
            client_ca_file: Some(cert_file.clone()),
            client_certificates: ClientCertificates::Optional,
        };
        assert!(TlsAcceptor::from_config(&config).is_ok());
        let der = load_certificates("certificate file", &cert_file).unwrap();
        assert_eq!(common_name(der[0].as_ref()).as_deref(), Some("localhost"));
    }

    #[test]
    fn missing_files_are_named() {
        let config = TlsConfig {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            client_ca_file: None,
            client_certificates: ClientCertificates::None,
        };
        let err = TlsAcceptor::from_config(&config)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("/nonexistent/cert.pem")));
    }
}
