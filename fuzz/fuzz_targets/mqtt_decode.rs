//! Fuzz target for `codecs::mqtt::decode` and `decode_connect`.
//!
//! Decodes arbitrary bytes under every MQTT version (3.1, 3.1.1, 5.0), with a
//! small and the default packet-size limit, and as the first packet of a
//! connection (`decode_connect`). `Ok(None)` must consume nothing and a packet
//! must consume bytes. Every decoded packet is re-encoded and decoded again,
//! and must come back equal. `MqttCodec` fed the same bytes in chunks must
//! agree with the one-shot decoder.
#![no_main]

use bytes::BytesMut;
use codecs::mqtt::{decode, decode_connect, MqttCodec, MqttLimits, MqttPacket, MqttVersion};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const SMALL: MqttLimits = MqttLimits {
    max_packet_size: 64,
};

fn one_shot(data: &[u8], version: MqttVersion, limits: &MqttLimits) -> (Vec<MqttPacket>, bool) {
    let mut buf = BytesMut::from(data);
    let mut packets = Vec::new();
    loop {
        let before = buf.len();
        match decode(&mut buf, version, limits) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "a packet must consume bytes");
                packets.push(packet);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                return (packets, false);
            }
            Err(_) => return (packets, true),
        }
    }
}

fn chunked(
    data: &[u8],
    version: MqttVersion,
    limits: &MqttLimits,
    chunk: usize,
) -> (Vec<MqttPacket>, bool) {
    let mut codec = MqttCodec::with_version(*limits, version);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(_) => return (packets, true),
            }
        }
    }
    (packets, false)
}

fn re_encodes(packet: &MqttPacket, version: MqttVersion) {
    let mut wire = BytesMut::new();
    packet
        .encode(version, &mut wire)
        .unwrap_or_else(|e| panic!("decoded packet does not encode: {e}: {packet:?}"));
    let again = decode(&mut wire, version, &MqttLimits::default());
    assert_eq!(again, Ok(Some(packet.clone())));
    assert!(wire.is_empty(), "re-encoded packet left bytes behind");
}

fuzz_target!(|data: &[u8]| {
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 17) + 1;
    for version in MqttVersion::ALL {
        for limits in [SMALL, MqttLimits::default()] {
            let (packets, failed) = one_shot(data, version, &limits);
            for packet in &packets {
                re_encodes(packet, version);
            }
            let (chunked_packets, chunked_failed) = chunked(data, version, &limits, chunk);
            assert_eq!(failed, chunked_failed);
            assert_eq!(packets, chunked_packets);
        }
    }
    let mut buf = BytesMut::from(data);
    if let Ok(Some(connect)) = decode_connect(&mut buf, &MqttLimits::default()) {
        let packet = MqttPacket::from(connect.clone());
        re_encodes(&packet, connect.protocol);
        let mut wire = BytesMut::new();
        packet
            .encode(connect.protocol, &mut wire)
            .unwrap_or_default();
        assert_eq!(
            decode_connect(&mut wire, &MqttLimits::default()),
            Ok(Some(connect))
        );
    }
});
