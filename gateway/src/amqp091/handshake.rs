//! The AMQP 0-9-1 connection handshake: `connection.start` / `start-ok` (PLAIN, AMQPLAIN,
//! EXTERNAL with a TLS client certificate),
//! `tune` / `tune-ok`, `open` / `open-ok`, and the one function that authenticates clients.

use super::session::{close_connection, write, Amqp091Settings, Framer, VHOST};
use crate::security::{ConnectionRefused, PeerInfo, Principal};
use bytes::{Bytes, BytesMut};
use codecs::amqp091::{
    decode_frame, reply_code, Amqp091CodecError, Amqp091Item, Amqp091Limits, ConnectionOpenOk,
    ConnectionStart, ConnectionTune, FieldTable, FieldValue, Frame, FramePayload, Method,
    FRAME_MIN_SIZE,
};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

/// What the handshake agreed.
pub(super) struct Tuned {
    /// The authenticated user.
    pub(super) user: String,
    /// Who the user is for the security rules; held for the connection's lifetime (it holds
    /// the user's place under `security.max_connections_per_user`).
    pub(super) principal: Principal,
    /// The client announced the `connection.blocked` capability.
    pub(super) blocked_capable: bool,
    /// Negotiated frame_max.
    pub(super) frame_max: u32,
    /// Negotiated channel_max.
    pub(super) channel_max: u16,
    /// Negotiated heartbeat, seconds.
    pub(super) heartbeat: u16,
    /// The name the client gave its connection (`connection_name` client property, shown by
    /// RabbitMQ as "client_provided_name"): the connection's client id in the admin API.
    pub(super) connection_name: Option<String>,
}

/// Reads the next frame of the handshake, skipping heartbeats. `None`: the peer went away or
/// sent something undecodable (already answered).
async fn next_handshake_frame<S>(framed: &mut Framer<S>) -> Option<Frame>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    loop {
        match framed.next().await? {
            Ok(Amqp091Item::Frame(Frame {
                payload: FramePayload::Heartbeat,
                ..
            })) => continue,
            Ok(Amqp091Item::Frame(f)) => return Some(f),
            Ok(Amqp091Item::ProtocolHeader(_)) => return None,
            Err(Amqp091CodecError::Decode(e)) => {
                crate::metrics::amqp091_decode_error(&e);
                refuse(framed, e.reply_code(), &e.to_string(), e.method_ids()).await;
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// Refuses the handshake: answers `connection.close` and counts the connection in
/// `gateway_connections_rejected_total` (as STOMP and MQTT count their refused CONNECTs).
async fn refuse<S>(framed: &mut Framer<S>, code: u16, text: &str, ids: (u16, u16))
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    crate::connections::reject(text);
    close_connection(framed, code, text, ids).await;
}

/// What `connection.start` tells a client about the server, capabilities included.
fn server_properties() -> FieldTable {
    let capabilities = FieldTable::new()
        .with("publisher_confirms", true)
        .with("exchange_exchange_bindings", true)
        .with("basic.nack", true)
        .with("consumer_cancel_notify", true)
        .with("connection.blocked", true)
        .with("consumer_priorities", false)
        .with("authentication_failure_close", true)
        .with("per_consumer_qos", true)
        .with("direct_reply_to", true);
    FieldTable::new()
        .with("product", "gateway")
        .with("version", env!("CARGO_PKG_VERSION"))
        .with("platform", "Rust")
        .with("information", "multi-protocol message gateway")
        .with("capabilities", FieldValue::Table(capabilities))
}

/// Why a SASL response gives no login to check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResponseError {
    /// It cannot be read: RabbitMQ's mechanisms call it a `protocol_error` (SYNTAX_ERROR);
    /// the gateway says 502 before closing, where RabbitMQ closes the socket without a word.
    Malformed(String),
    /// It reads, but names no login that could succeed (an AMQPLAIN value that is not a
    /// string beside one that is): refused like a wrong password, 403, as RabbitMQ does.
    Unusable(String),
}

/// A login and password as the client sent them (the password as bytes: AMQPLAIN may carry
/// it as a byte array).
type Credentials = (String, Bytes);

/// Decodes an AMQPLAIN response: field-table entries without the table's length prefix. It is
/// wrapped into a `connection.start-ok` frame so that the codec's own decoder reads it.
///
/// RabbitMQ 3.10 (`rabbit_auth_mechanism_amqplain`) takes LOGIN and PASSWORD when at least
/// one of them is a long string (`S`) and passes both values on to the login check, so a
/// byte array (`x`) works beside a long string and any other value fails the check (403);
/// two values neither of which is a long string, or a missing field, are a syntax error. Its
/// table parser has no short-string type (`s` is a short integer there, as here). Checked
/// against RabbitMQ 3.10.8.
fn amqplain_credentials(response: &Bytes) -> Result<Credentials, ResponseError> {
    let malformed = |why: &str| ResponseError::Malformed(format!("AMQPLAIN auth info {why}"));
    let table_len = u32::try_from(response.len()).map_err(|_| malformed("too long"))?;
    let mut payload = BytesMut::new();
    payload.extend_from_slice(&10u16.to_be_bytes());
    payload.extend_from_slice(&11u16.to_be_bytes());
    payload.extend_from_slice(&table_len.to_be_bytes());
    payload.extend_from_slice(response);
    payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // mechanism "", response "", locale ""
    let size = u32::try_from(payload.len()).map_err(|_| malformed("too long"))?;
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[1, 0, 0]);
    frame.extend_from_slice(&size.to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(&[codecs::amqp091::FRAME_END]);
    let limits = Amqp091Limits {
        frame_max: 0,
        ..Amqp091Limits::default()
    };
    let table = match decode_frame(&mut frame, &limits) {
        Ok(Some(Frame {
            payload: FramePayload::Method(Method::ConnectionStartOk(m)),
            ..
        })) => m.client_properties,
        _ => return Err(malformed("is not a field table")),
    };
    let (Some(login), Some(password)) = (table.get("LOGIN"), table.get("PASSWORD")) else {
        return Err(malformed("is missing LOGIN or PASSWORD field"));
    };
    let is_long_string = |v: &FieldValue| matches!(v, FieldValue::LongString(_));
    let binary = |v: &FieldValue| match v {
        FieldValue::LongString(b) | FieldValue::ByteArray(b) => Some(b.clone()),
        _ => None,
    };
    if !is_long_string(login) && !is_long_string(password) {
        return Err(malformed(
            "uses unsupported type for LOGIN or PASSWORD field",
        ));
    }
    match (binary(login), binary(password)) {
        (Some(user), Some(pass)) => Ok((String::from_utf8_lossy(&user).into_owned(), pass)),
        _ => Err(ResponseError::Unusable(
            "AMQPLAIN LOGIN or PASSWORD is not a string".into(),
        )),
    }
}

/// Decodes a PLAIN response: `authzid NUL user NUL password`.
fn plain_credentials(response: &Bytes) -> Result<Credentials, ResponseError> {
    let mut parts = response.split(|b| *b == 0);
    let (Some(_authzid), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ResponseError::Malformed("PLAIN response invalid".into()));
    };
    Ok((
        String::from_utf8_lossy(user).into_owned(),
        Bytes::copy_from_slice(pass),
    ))
}

/// The SASL mechanisms `connection.start` offers: PLAIN and AMQPLAIN, and EXTERNAL when the
/// client presented a verified TLS certificate (as RabbitMQ's rabbitmq_auth_mechanism_ssl).
fn offered_mechanisms(peer: &PeerInfo) -> Bytes {
    if peer.certificate_user.is_some() {
        Bytes::from_static(b"PLAIN AMQPLAIN EXTERNAL")
    } else {
        Bytes::from_static(b"PLAIN AMQPLAIN")
    }
}

/// Runs the handshake up to `connection.open-ok`: start / start-ok (PLAIN, AMQPLAIN), tune /
/// tune-ok, open (vhost `/`). Errors are answered with `connection.close`.
pub(super) async fn handshake<S>(
    framed: &mut Framer<S>,
    settings: &Amqp091Settings,
    peer: &PeerInfo,
) -> Result<Tuned, ()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match framed.next().await {
        Some(Ok(Amqp091Item::ProtocolHeader(h))) if h.is_amqp091() => {}
        _ => return Err(()),
    }
    let start = ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(),
        mechanisms: offered_mechanisms(peer),
        locales: Bytes::from_static(b"en_US"),
    };
    if !write(framed, vec![Frame::method(0, start)]).await {
        return Err(());
    }
    let start_ok = match next_handshake_frame(framed).await {
        Some(Frame {
            channel: 0,
            payload: FramePayload::Method(Method::ConnectionStartOk(m)),
        }) => m,
        Some(_) => {
            refuse(
                framed,
                reply_code::COMMAND_INVALID,
                "expected connection.start-ok",
                (10, 11),
            )
            .await;
            return Err(());
        }
        None => return Err(()),
    };
    let mechanism = start_ok.mechanism.to_string_lossy().into_owned();
    let credentials = match mechanism.as_str() {
        "PLAIN" => plain_credentials(&start_ok.response).map(Some),
        "AMQPLAIN" => amqplain_credentials(&start_ok.response).map(Some),
        "EXTERNAL" => Ok(None),
        other => {
            refuse(
                framed,
                reply_code::COMMAND_INVALID,
                &format!("unknown authentication mechanism '{other}'"),
                (10, 11),
            )
            .await;
            return Err(());
        }
    };
    let credentials = match credentials {
        Ok(c) => Ok(c),
        Err(ResponseError::Malformed(why)) => {
            close_connection(framed, reply_code::SYNTAX_ERROR, &why, (10, 11)).await;
            return Err(());
        }
        Err(ResponseError::Unusable(why)) => Err(why),
    };
    // Past the gateway's connection limits: refused at connection.open with 530 NOT_ALLOWED,
    // as RabbitMQ refuses a connection past its limits (not a login failure: no password
    // check, no back-off).
    if let Some(refused) = peer.refused {
        let user = credentials
            .as_ref()
            .ok()
            .and_then(|c| c.as_ref())
            .map(|(u, _)| u.as_str())
            .or(peer.certificate_user.as_deref());
        refuse_at_open(framed, settings, &refused, user).await;
        return Err(());
    }
    // The same rules as every protocol (docs/security.md): users, loopback defaults, back-off.
    let outcome = match credentials {
        Err(why) => Err(why),
        // EXTERNAL (as RabbitMQ's rabbitmq_auth_mechanism_ssl): the verified client
        // certificate's common name is the user; no password.
        Ok(None) if mechanism == "EXTERNAL" => match &peer.certificate_user {
            Some(user) => settings
                .authenticator
                .authenticate(Some(user), None, peer)
                .await
                .map_err(|e| e.to_string()),
            None => Err("no verified client certificate".to_string()),
        },
        Ok(Some((user, password))) => settings
            .authenticator
            .authenticate(Some(&user), Some(&password), peer)
            .await
            .map_err(|e| e.to_string()),
        Ok(None) => Err("no credentials".to_string()),
    };
    let principal = match outcome {
        Ok(principal) => principal,
        Err(why) => {
            refuse(
                framed,
                reply_code::ACCESS_REFUSED,
                &format!("Login was refused using authentication mechanism {mechanism}: {why}"),
                (10, 11),
            )
            .await;
            return Err(());
        }
    };
    let tune = ConnectionTune {
        channel_max: settings.channel_max,
        frame_max: settings.frame_max,
        heartbeat: settings.heartbeat_s,
    };
    if !write(framed, vec![Frame::method(0, tune)]).await {
        return Err(());
    }
    let tune_ok = match next_handshake_frame(framed).await {
        Some(Frame {
            channel: 0,
            payload: FramePayload::Method(Method::ConnectionTuneOk(m)),
        }) => m,
        Some(_) => {
            refuse(
                framed,
                reply_code::COMMAND_INVALID,
                "expected connection.tune-ok",
                (10, 31),
            )
            .await;
            return Err(());
        }
        None => return Err(()),
    };
    let frame_max = if tune_ok.frame_max == 0 {
        settings.frame_max
    } else {
        tune_ok.frame_max
    };
    if frame_max < FRAME_MIN_SIZE || frame_max > settings.frame_max {
        refuse(
            framed,
            reply_code::NOT_ALLOWED,
            &format!(
                "frame_max={frame_max} is outside {FRAME_MIN_SIZE}..={}",
                settings.frame_max
            ),
            (10, 31),
        )
        .await;
        return Err(());
    }
    let channel_max = match tune_ok.channel_max {
        0 => settings.channel_max,
        n if n > settings.channel_max => {
            refuse(
                framed,
                reply_code::NOT_ALLOWED,
                &format!(
                    "channel_max={n} is greater than the server's {}",
                    settings.channel_max
                ),
                (10, 31),
            )
            .await;
            return Err(());
        }
        n => n,
    };
    framed.codec_mut().set_frame_max(frame_max);
    let open = match next_handshake_frame(framed).await {
        Some(Frame {
            channel: 0,
            payload: FramePayload::Method(Method::ConnectionOpen(m)),
        }) => m,
        Some(_) => {
            refuse(
                framed,
                reply_code::COMMAND_INVALID,
                "expected connection.open",
                (10, 40),
            )
            .await;
            return Err(());
        }
        None => return Err(()),
    };
    let vhost = open.virtual_host.to_string_lossy().into_owned();
    if vhost != VHOST {
        refuse(
            framed,
            reply_code::NOT_ALLOWED,
            &format!("vhost {vhost} not found"),
            (10, 40),
        )
        .await;
        return Err(());
    }
    if !write(framed, vec![Frame::method(0, ConnectionOpenOk::default())]).await {
        return Err(());
    }
    let blocked_capable = start_ok
        .client_properties
        .get("capabilities")
        .and_then(FieldValue::as_table)
        .and_then(|c| c.get("connection.blocked"))
        .and_then(FieldValue::as_bool)
        .unwrap_or(false);
    let connection_name = start_ok
        .client_properties
        .get("connection_name")
        .and_then(FieldValue::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let user = principal.name().to_string();
    Ok(Tuned {
        connection_name,
        principal,
        user,
        blocked_capable,
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
    })
}

/// Tunes, waits for `connection.open` and answers it with `connection.close` 530 NOT_ALLOWED
/// naming the connection limit, in RabbitMQ's words for its own connection limits. Any other
/// frame ends the connection without a word.
async fn refuse_at_open<S>(
    framed: &mut Framer<S>,
    settings: &Amqp091Settings,
    refused: &ConnectionRefused,
    user: Option<&str>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    tracing::info!(reason = %refused, "connection refused");
    let tune = ConnectionTune {
        channel_max: settings.channel_max,
        frame_max: settings.frame_max,
        heartbeat: 0,
    };
    if !write(framed, vec![Frame::method(0, tune)]).await {
        return;
    }
    let Some(Frame {
        channel: 0,
        payload: FramePayload::Method(Method::ConnectionTuneOk(_)),
    }) = next_handshake_frame(framed).await
    else {
        return;
    };
    let Some(Frame {
        channel: 0,
        payload: FramePayload::Method(Method::ConnectionOpen(open)),
    }) = next_handshake_frame(framed).await
    else {
        return;
    };
    let vhost = open.virtual_host.to_string_lossy().into_owned();
    let who = user.map_or_else(String::new, |u| format!(" for user '{u}'"));
    close_connection(
        framed,
        reply_code::NOT_ALLOWED,
        &format!("access to vhost '{vhost}' refused{who}: {refused}"),
        (10, 40),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_is_offered_only_with_a_client_certificate() {
        let mut peer = PeerInfo {
            addr: ([127, 0, 0, 1], 5671).into(),
            listener_is_loopback: true,
            certificate_user: None,
            refused: None,
        };
        assert_eq!(offered_mechanisms(&peer).as_ref(), b"PLAIN AMQPLAIN");
        peer.certificate_user = Some("alice".into());
        assert_eq!(
            offered_mechanisms(&peer).as_ref(),
            b"PLAIN AMQPLAIN EXTERNAL"
        );
    }

    #[test]
    fn plain_response_is_authzid_user_password() {
        let r = Bytes::from_static(b"\0guest\0secret");
        assert_eq!(
            plain_credentials(&r),
            Ok(("guest".to_string(), Bytes::from_static(b"secret")))
        );
        assert!(plain_credentials(&Bytes::from_static(b"guest")).is_err());
    }

    /// AMQPLAIN entries `name type value` with 4-byte lengths for `S` / `x` values.
    fn amqplain(entries: &[(&str, u8, &[u8])]) -> Bytes {
        let mut r = Vec::new();
        for (k, tag, v) in entries {
            r.push(k.len() as u8);
            r.extend_from_slice(k.as_bytes());
            r.push(*tag);
            if matches!(tag, b'S' | b'x') {
                r.extend_from_slice(&(v.len() as u32).to_be_bytes());
            }
            r.extend_from_slice(v);
        }
        Bytes::from(r)
    }

    #[test]
    fn amqplain_response_is_table_entries_without_length() {
        let r = amqplain(&[("LOGIN", b'S', b"alice"), ("PASSWORD", b'S', b"pw")]);
        assert_eq!(
            amqplain_credentials(&r),
            Ok(("alice".to_string(), Bytes::from_static(b"pw")))
        );
        assert!(amqplain_credentials(&Bytes::from_static(b"\x05LOG")).is_err());
    }

    #[test]
    fn amqplain_takes_the_types_rabbitmq_takes() {
        // A byte array beside a long string is used as it is.
        let r = amqplain(&[("PASSWORD", b'x', b"pw"), ("LOGIN", b'S', b"alice")]);
        assert_eq!(
            amqplain_credentials(&r),
            Ok(("alice".to_string(), Bytes::from_static(b"pw")))
        );
        // Beside a long string, a number reads but cannot log in.
        let r = amqplain(&[("LOGIN", b'S', b"alice"), ("PASSWORD", b'I', &[0, 0, 0, 7])]);
        assert!(matches!(
            amqplain_credentials(&r),
            Err(ResponseError::Unusable(_))
        ));
        // No long string at all, or a missing field, is a syntax error.
        for bad in [
            amqplain(&[("LOGIN", b'x', b"alice"), ("PASSWORD", b'x', b"pw")]),
            amqplain(&[("LOGIN", b'S', b"alice")]),
        ] {
            match amqplain_credentials(&bad) {
                Err(ResponseError::Malformed(why)) => {
                    assert!(why.starts_with("AMQPLAIN auth info"), "{why}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
