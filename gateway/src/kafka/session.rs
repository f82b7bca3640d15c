//! One Kafka connection: requests are read, answered in order (as Kafka brokers do, one at a
//! time per connection), and a request that cannot be parsed, an unknown API key or an
//! unsupported version (other than ApiVersions) closes the connection, and only it.

use super::{AdvertisedListener, KafkaBroker};
use crate::security::PeerInfo;
use codecs::kafka::{decode_request, decode_request_header, KafkaCodec};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_util::codec::Framed;

/// Serves one connection until the client closes it, it misbehaves, or shutdown.
/// `advertised`: where this listener's clients are told to connect, when not the broker-wide
/// advertised address (the TLS listener).
pub async fn serve<S>(
    stream: S,
    peer_info: PeerInfo,
    broker: Arc<KafkaBroker>,
    advertised: Option<AdvertisedListener>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = peer_info.addr;
    let mut framed = Framed::new(stream, KafkaCodec::new(broker.settings.limits));
    loop {
        let frame = tokio::select! {
            next = framed.next() => next,
            _ = shutdown.changed() => break,
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                crate::metrics::kafka_codec_error(&e);
                tracing::warn!(%peer, error = %e, "Kafka connection closed: bad frame");
                break;
            }
        };
        let request = match decode_request(frame.clone()) {
            Ok(r) => r,
            Err(e) => {
                let header = decode_request_header(&frame).ok();
                tracing::warn!(
                    %peer,
                    error = %e,
                    api_key = header.as_ref().map(|h| h.api_key),
                    api_version = header.as_ref().map(|h| h.api_version),
                    "Kafka connection closed: malformed or unsupported request"
                );
                break;
            }
        };
        tracing::trace!(%peer, ?request.header, "Kafka request");
        let response = tokio::select! {
            r = broker.handle(request, peer) => r,
            _ = shutdown.changed() => break,
        };
        if let Some(mut response) = response {
            if let Some(listener) = &advertised {
                listener.apply(&mut response);
            }
            if let Err(e) = framed.send(response).await {
                tracing::debug!(%peer, error = %e, "Kafka connection write failed");
                break;
            }
        }
    }
}
