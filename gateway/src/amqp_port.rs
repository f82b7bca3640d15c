//! The AMQP port (5672): reads the protocol header a client opens with and hands the connection
//! to the protocol it names.
//!
//! - `AMQP 0 0 9 1`: the AMQP 0-9-1 session ([`crate::amqp091`]).
//! - `AMQP 0 1 0 0` (AMQP 1.0) and `AMQP 3 1 0 0` (AMQP 1.0 SASL layer): [`serve_amqp10`], the
//!   hook where the AMQP 1.0 session will plug in.
//! - anything else: answered with the supported header, `AMQP 0 0 9 1`, and closed, as the 0-9-1
//!   specification says a server must.

use crate::amqp091::{self, Amqp091Broker, Amqp091Settings};
use crate::security::PeerInfo;
use bytes::BytesMut;
use codecs::amqp091::ProtocolHeader;
use routes::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// What the AMQP port serves with.
pub struct AmqpPort {
    /// The engine.
    pub engine: Arc<Engine>,
    /// AMQP 0-9-1 connection settings.
    pub amqp091: Arc<Amqp091Settings>,
    /// State shared by the AMQP 0-9-1 connections.
    pub amqp091_broker: Arc<Amqp091Broker>,
}

/// The protocol a client asked for with its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmqpProtocol {
    /// AMQP 0-9-1.
    Amqp091,
    /// AMQP 1.0, plain (`protocol_id` 0) or its SASL layer (`protocol_id` 3).
    Amqp10,
    /// Anything else.
    Unsupported,
}

/// Classifies a protocol header.
pub fn classify(header: &ProtocolHeader) -> AmqpProtocol {
    match header {
        h if h.is_amqp091() => AmqpProtocol::Amqp091,
        ProtocolHeader::Amqp {
            protocol_id: 0 | 3,
            major: 1,
            minor: 0,
            revision: 0,
        } => AmqpProtocol::Amqp10,
        _ => AmqpProtocol::Unsupported,
    }
}

/// Serves one connection of the AMQP port.
pub async fn serve<S>(
    mut stream: S,
    peer_info: PeerInfo,
    port: Arc<AmqpPort>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let mut buf = BytesMut::with_capacity(64);
    let sniff = async {
        loop {
            // Peek without consuming: the session's codec reads the header again.
            let mut probe = buf.clone();
            if let Some(header) = ProtocolHeader::decode(&mut probe) {
                return Some(header);
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    };
    let header = tokio::select! {
        r = tokio::time::timeout(port.amqp091.connect_timeout, sniff) => match r {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(_) => {
                crate::connections::reject("no protocol header in time");
                return crate::metrics::limit_refused("amqp", "handshake_timeout");
            }
        },
        _ = shutdown.changed() => return,
    };
    match classify(&header) {
        AmqpProtocol::Amqp091 => {
            amqp091::session::serve(
                stream,
                buf,
                peer_info,
                port.engine.clone(),
                port.amqp091.clone(),
                port.amqp091_broker.clone(),
                shutdown,
            )
            .await
        }
        AmqpProtocol::Amqp10 => serve_amqp10(stream, peer, header).await,
        AmqpProtocol::Unsupported => {
            tracing::debug!(%peer, ?header, "unsupported protocol header on the AMQP port");
            // Bytes that are no AMQP header at all are undecodable; another AMQP version is
            // a well-formed request this port declines.
            if matches!(header, ProtocolHeader::NotAmqp(_)) {
                crate::metrics::decode_error("amqp");
            }
            crate::connections::reject("unsupported protocol header");
            reject(stream).await
        }
    }
}

/// The AMQP 1.0 hook. There is no AMQP 1.0 session yet: the client is told the version this
/// port speaks (the 0-9-1 header) and the connection is closed. The AMQP 1.0 session plugs in
/// here, taking the stream after its 8-octet header.
pub async fn serve_amqp10<S>(stream: S, peer: SocketAddr, header: ProtocolHeader)
where
    S: AsyncWrite + Unpin,
{
    tracing::debug!(%peer, ?header, "AMQP 1.0 is not served yet on this port");
    crate::connections::reject("AMQP 1.0 is not served");
    reject(stream).await
}

/// Writes the supported protocol header and closes.
async fn reject<S: AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.write_all(&ProtocolHeader::AMQP_0_9_1_BYTES).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn amqp(protocol_id: u8, major: u8, minor: u8, revision: u8) -> ProtocolHeader {
        ProtocolHeader::Amqp {
            protocol_id,
            major,
            minor,
            revision,
        }
    }

    #[test]
    fn classify_tells_0_9_1_from_1_0_and_the_rest() {
        assert_eq!(classify(&ProtocolHeader::AMQP_0_9_1), AmqpProtocol::Amqp091);
        assert_eq!(classify(&amqp(0, 1, 0, 0)), AmqpProtocol::Amqp10);
        assert_eq!(classify(&amqp(3, 1, 0, 0)), AmqpProtocol::Amqp10); // SASL layer
        for other in [
            amqp(1, 1, 0, 9), // the original 0-9
            amqp(1, 1, 8, 0), // RabbitMQ's 0-8
            amqp(2, 1, 0, 0), // 1.0 TLS layer: TLS is terminated before the sniff
            amqp(0, 1, 0, 1), // an unknown 1.0 revision
            ProtocolHeader::NotAmqp(Bytes::from_static(b"GET / HT")),
        ] {
            assert_eq!(classify(&other), AmqpProtocol::Unsupported, "{other:?}");
        }
    }
}
