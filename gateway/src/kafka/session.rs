//! One Kafka connection: requests are read, answered in order (as Kafka brokers do, one at a
//! time per connection), and a request that cannot be parsed, an unknown API key or an
//! unsupported version (other than ApiVersions) closes the connection, and only it.
//!
//! # Authentication (SASL)
//!
//! As a Kafka `SASL_PLAINTEXT` listener: ApiVersions is always answered; SaslHandshake (v0 or
//! v1) picks a mechanism of `[listeners.kafka] sasl_mechanisms` (`PLAIN`, `SCRAM-SHA-256`);
//! the tokens then come in SaslAuthenticate requests (after v1) or as bare size-prefixed
//! frames (after v0). Credentials are checked by the shared [`Authenticator`] (users,
//! loopback defaults, back-off). A failed authentication is answered with
//! `SASL_AUTHENTICATION_FAILED` (v1; nothing after v0) and the connection closes.
//!
//! Any other request before authentication is served as the anonymous principal where the
//! authenticator admits anonymous clients (a loopback listener without `[[users]]`), or as the
//! user named by a verified client certificate (a TLS listener), unless `require_sasl` is on;
//! otherwise it closes the connection, as a Kafka SASL listener does. Refusals are counted in
//! `gateway_connections_rejected_total`.
//! A connection that must authenticate and has not within [`AUTH_TIMEOUT`] is closed, and
//! until it has, frames above [`MAX_FRAME_BEFORE_AUTH`] close it (as Kafka's
//! `sasl.server.max.receive.size`).

use super::{AdvertisedListener, KafkaBroker};
use crate::security::scram::{self, ScramServer};
use crate::security::{AuthError, Authenticator, PeerInfo, Principal};
use bytes::Bytes;
use codecs::kafka::{
    decode_request, decode_request_header, error_code, KafkaCodec, KafkaLimits, KafkaRequest,
    KafkaRequestBody, KafkaResponse, KafkaResponseBody, SaslAuthenticateResponse,
    SaslHandshakeResponse, SaslToken,
};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// How long a connection that must authenticate may take to do so (against slow-loris).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame accepted before a connection that must authenticate has done so (Kafka's
/// `sasl.server.max.receive.size` default, 512 KiB).
pub const MAX_FRAME_BEFORE_AUTH: usize = 512 * 1024;

/// A SASL mechanism the session implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    ScramSha256,
}

impl Mechanism {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            scram::MECHANISM => Some(Mechanism::ScramSha256),
            _ => None,
        }
    }
}

/// Where the connection's authentication is.
enum SaslState {
    /// No handshake yet.
    Start,
    /// Handshake done; the next token starts the mechanism. `bare`: tokens are bare frames
    /// (SaslHandshake v0).
    Handshaken { mechanism: Mechanism, bare: bool },
    /// SCRAM: the server-first message is sent; the client-final one is due.
    ScramFinal {
        server: ScramServer,
        user: String,
        known: bool,
        bare: bool,
    },
    /// Authenticated.
    Done(Principal),
}

/// A failed authentication step: the message for the client (never a secret).
struct SaslFailure(String);

/// Serves one connection until the client closes it, it misbehaves, or shutdown.
/// `advertised`: where this listener's clients are told to connect, when not the broker-wide
/// advertised address (the TLS listener).
pub async fn serve<S>(
    stream: S,
    peer: PeerInfo,
    broker: Arc<KafkaBroker>,
    advertised: Option<AdvertisedListener>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let addr = peer.addr;
    let settings = &broker.settings;
    let authenticator = settings.authenticator.clone();
    let mut framed = crate::framing::framed(stream, KafkaCodec::new(settings.limits));
    // Who a client that skips SASL is (anonymous, or the user of a verified client
    // certificate); None: SASL is required here.
    let without_sasl = if settings.require_sasl {
        None
    } else {
        authenticator.verify(None, None, &peer).ok()
    };
    let auth_deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
    let mut state = SaslState::Start;
    let mut limited = without_sasl.is_none();
    // Reported to the connection registry once who the client is is known.
    let mut established = false;
    if limited {
        framed.codec_mut().set_limits(KafkaLimits {
            max_frame_bytes: settings.limits.max_frame_bytes.min(MAX_FRAME_BEFORE_AUTH),
        });
    }
    loop {
        let must_authenticate = without_sasl.is_none() && !matches!(state, SaslState::Done(_));
        if limited && !must_authenticate {
            framed.codec_mut().set_limits(settings.limits);
            limited = false;
        }
        let frame = tokio::select! {
            next = framed.next() => next,
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep_until(auth_deadline), if must_authenticate => {
                tracing::info!(peer = %addr, "Kafka connection closed: not authenticated in time");
                crate::connections::reject("SASL authentication timed out");
                break;
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                crate::metrics::kafka_codec_error(&e);
                tracing::warn!(peer = %addr, error = %e, "Kafka connection closed: bad frame");
                break;
            }
        };
        // After a SaslHandshake v0, tokens are bare frames without a request header.
        if let SaslState::Handshaken { bare: true, .. } | SaslState::ScramFinal { bare: true, .. } =
            state
        {
            match sasl_step(&mut state, &frame, &authenticator, &peer).await {
                Ok(reply) => {
                    if framed.send(SaslToken(Bytes::from(reply))).await.is_err() {
                        break;
                    }
                    continue;
                }
                Err(SaslFailure(message)) => {
                    tracing::info!(peer = %addr, reason = %message, "Kafka SASL authentication failed");
                    crate::connections::reject("SASL authentication failed");
                    break;
                }
            }
        }
        let request = match decode_request(frame.clone()) {
            Ok(r) => r,
            Err(e) => {
                // Unknown API keys and versions included: a broker cannot read such a request.
                crate::metrics::decode_error("kafka");
                let header = decode_request_header(&frame).ok();
                tracing::warn!(
                    peer = %addr,
                    error = %e,
                    api_key = header.as_ref().map(|h| h.api_key),
                    api_version = header.as_ref().map(|h| h.api_version),
                    "Kafka connection closed: malformed or unsupported request"
                );
                break;
            }
        };
        tracing::trace!(peer = %addr, ?request.header, "Kafka request");
        if !established {
            let principal = match (&state, &without_sasl) {
                (SaslState::Done(p), _) => Some(p),
                (SaslState::Start, Some(p)) => Some(p),
                _ => None,
            };
            if let Some(p) = principal {
                // Kafka clients read and write the log directly: no engine session.
                crate::connections::established_without_session(
                    (!p.is_anonymous()).then(|| p.name()),
                    request
                        .header
                        .client_id
                        .as_deref()
                        .filter(|c| !c.is_empty()),
                );
                established = true;
            }
        }
        let (response, close) = match &request.body {
            KafkaRequestBody::SaslHandshake(_) | KafkaRequestBody::SaslAuthenticate(_) => {
                let (response, close) =
                    sasl_request(&mut state, request, settings, &authenticator, &peer).await;
                (Some(response), close)
            }
            KafkaRequestBody::ApiVersions(_) => (broker.handle(request, addr, None).await, false),
            _ => {
                let principal = match (&state, &without_sasl) {
                    (SaslState::Done(p), _) => p.clone(),
                    (SaslState::Start, Some(p)) => p.clone(),
                    _ => {
                        tracing::info!(
                            peer = %addr,
                            api_key = request.header.api_key,
                            "Kafka connection closed: request before SASL authentication"
                        );
                        crate::connections::reject("request before SASL authentication");
                        break;
                    }
                };
                let response = tokio::select! {
                    r = broker.handle(request, addr, Some(&principal)) => r,
                    _ = shutdown.changed() => break,
                };
                (response, false)
            }
        };
        if let Some(mut response) = response {
            if let Some(listener) = &advertised {
                listener.apply(&mut response);
            }
            if let Err(e) = framed.send(response).await {
                tracing::debug!(peer = %addr, error = %e, "Kafka connection write failed");
                break;
            }
        }
        if close {
            break;
        }
    }
    // Inside the connection's span: the line names the user once the client authenticated.
    tracing::debug!(peer = %addr, "Kafka connection closed");
}

/// Answers SaslHandshake and SaslAuthenticate; the flag says whether to close after the
/// response.
async fn sasl_request(
    state: &mut SaslState,
    request: KafkaRequest,
    settings: &super::KafkaSettings,
    authenticator: &Arc<Authenticator>,
    peer: &PeerInfo,
) -> (KafkaResponse, bool) {
    let version = request.header.api_version;
    let reply = |body| KafkaResponse {
        correlation_id: request.header.correlation_id,
        api_version: version,
        body,
    };
    match request.body {
        KafkaRequestBody::SaslHandshake(h) => {
            let enabled = settings.sasl_mechanisms.clone();
            let mechanism = enabled
                .contains(&h.mechanism)
                .then(|| Mechanism::from_name(&h.mechanism))
                .flatten();
            let (error, close) = match (&*state, mechanism) {
                (SaslState::Start, Some(mechanism)) => {
                    *state = SaslState::Handshaken {
                        mechanism,
                        bare: version == 0,
                    };
                    (error_code::NONE, false)
                }
                (SaslState::Start, None) => {
                    tracing::info!(peer = %peer.addr, mechanism = %h.mechanism,
                        "Kafka SASL mechanism not enabled");
                    crate::connections::reject("SASL mechanism not enabled");
                    (error_code::UNSUPPORTED_SASL_MECHANISM, true)
                }
                // Re-authentication is not offered (session lifetime 0).
                _ => (error_code::ILLEGAL_SASL_STATE, true),
            };
            (
                reply(KafkaResponseBody::SaslHandshake(SaslHandshakeResponse {
                    error_code: error,
                    mechanisms: enabled,
                })),
                close,
            )
        }
        KafkaRequestBody::SaslAuthenticate(a) => {
            if !matches!(
                state,
                SaslState::Handshaken { bare: false, .. }
                    | SaslState::ScramFinal { bare: false, .. }
            ) {
                crate::connections::reject("SaslAuthenticate without SaslHandshake");
                return (
                    reply(KafkaResponseBody::SaslAuthenticate(
                        SaslAuthenticateResponse {
                            error_code: error_code::ILLEGAL_SASL_STATE,
                            error_message: Some(
                                "SaslAuthenticate without a SaslHandshake v1 first".to_string(),
                            ),
                            ..Default::default()
                        },
                    )),
                    true,
                );
            }
            match sasl_step(state, &a.auth_bytes, authenticator, peer).await {
                Ok(token) => (
                    reply(KafkaResponseBody::SaslAuthenticate(
                        SaslAuthenticateResponse {
                            error_code: error_code::NONE,
                            error_message: None,
                            auth_bytes: Bytes::from(token),
                            session_lifetime_ms: 0,
                        },
                    )),
                    false,
                ),
                Err(SaslFailure(message)) => {
                    tracing::info!(peer = %peer.addr, reason = %message,
                        "Kafka SASL authentication failed");
                    crate::connections::reject("SASL authentication failed");
                    (
                        reply(KafkaResponseBody::SaslAuthenticate(
                            SaslAuthenticateResponse {
                                error_code: error_code::SASL_AUTHENTICATION_FAILED,
                                error_message: Some(message),
                                ..Default::default()
                            },
                        )),
                        true,
                    )
                }
            }
        }
        _ => (
            reply(KafkaResponseBody::SaslAuthenticate(
                SaslAuthenticateResponse::default(),
            )),
            true,
        ),
    }
}

/// Runs one SASL step on a client token; returns the server's token. On success of the last
/// step the state becomes [`SaslState::Done`].
async fn sasl_step(
    state: &mut SaslState,
    token: &[u8],
    authenticator: &Arc<Authenticator>,
    peer: &PeerInfo,
) -> Result<Vec<u8>, SaslFailure> {
    let refused = |e: AuthError| SaslFailure(format!("Authentication failed: {e}"));
    match std::mem::replace(state, SaslState::Start) {
        SaslState::Handshaken {
            mechanism: Mechanism::Plain,
            ..
        } => {
            let (user, password) = parse_plain(token)?;
            let principal = authenticator
                .authenticate(Some(&user), Some(&password), peer)
                .await
                .map_err(refused)?;
            tracing::info!(peer = %peer.addr, user = %principal, mechanism = "PLAIN",
                "Kafka client authenticated");
            *state = SaslState::Done(principal);
            Ok(Vec::new())
        }
        SaslState::Handshaken {
            mechanism: Mechanism::ScramSha256,
            bare,
        } => {
            let mut server = ScramServer::new();
            let user = server
                .client_first(token)
                .map_err(|e| SaslFailure(format!("Authentication failed: {e}")))?;
            let lookup = match authenticator.scram_credential(&user, peer) {
                Ok(l) => l,
                Err(e) => {
                    authenticator.failed(peer, &e).await;
                    return Err(refused(e));
                }
            };
            let first = server
                .server_first(lookup.credential)
                .map_err(|e| SaslFailure(format!("Authentication failed: {e}")))?;
            *state = SaslState::ScramFinal {
                server,
                user,
                known: lookup.known,
                bare,
            };
            Ok(first)
        }
        SaslState::ScramFinal {
            mut server,
            user,
            known,
            ..
        } => {
            let bad = AuthError::BadCredentials { user: user.clone() };
            let outcome = match server.client_final(token) {
                Ok(v) if known => authenticator.admit_scram(&user, peer).map(|p| (v, p)),
                Ok(_) | Err(scram::ScramError::InvalidProof) => Err(bad),
                Err(e) => return Err(SaslFailure(format!("Authentication failed: {e}"))),
            };
            match outcome {
                Ok((server_final, principal)) => {
                    tracing::info!(peer = %peer.addr, user = %principal,
                        mechanism = scram::MECHANISM, "Kafka client authenticated");
                    *state = SaslState::Done(principal);
                    Ok(server_final)
                }
                // The proof was right but the user has no place left: say so, as PLAIN does.
                Err(e @ AuthError::TooManyConnections { .. }) => {
                    authenticator.failed(peer, &e).await;
                    Err(refused(e))
                }
                Err(e) => {
                    authenticator.failed(peer, &e).await;
                    Err(SaslFailure(format!(
                        "Authentication failed during authentication due to invalid \
                         credentials with SASL mechanism {}",
                        scram::MECHANISM
                    )))
                }
            }
        }
        SaslState::Start | SaslState::Done(_) => {
            Err(SaslFailure("unexpected SASL token".to_string()))
        }
    }
}

/// Reads a PLAIN message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
fn parse_plain(token: &[u8]) -> Result<(String, Vec<u8>), SaslFailure> {
    let malformed = || SaslFailure("Authentication failed: invalid SASL/PLAIN message".into());
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let user = std::str::from_utf8(user).map_err(|_| malformed())?;
    if user.is_empty() || password.is_empty() {
        return Err(malformed());
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(SaslFailure(
            "Authentication failed: Client requested an authorization id that is different \
             from username"
                .into(),
        ));
    }
    Ok((user.to_owned(), password.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages() {
        assert!(matches!(parse_plain(b"\0alice\0pw"), Ok((u, p)) if u == "alice" && p == b"pw"));
        assert!(matches!(parse_plain(b"alice\0alice\0pw"), Ok((u, _)) if u == "alice"));
        for bad in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0\0pw",
            b"\0alice\0",
            b"bob\0alice\0pw",
            b"\0a\0b\0c",
        ] {
            assert!(parse_plain(bad).is_err(), "{bad:?}");
        }
    }
}
