//! Fuzz target for `codecs::openwire::decode_frame`.
//!
//! Decodes arbitrary bytes as a stream of size-prefixed OpenWire commands
//! with a version (1 to 12), stack-trace flag and limits taken from the first
//! byte. Every decoded command is re-encoded: the encoding must decode back
//! equal and be stable when encoded again (booleans other than 0/1 and
//! non-canonical modified UTF-8 may change bytes, not values). `Ok(None)`
//! must consume nothing. Message properties and bodies are decoded too. The
//! `OpenWireCodec` fed the same bytes in chunks must agree.
#![no_main]

use bytes::BytesMut;
use codecs::openwire::{
    decode_frame, decode_stream_body, decode_text_body, Command, OpenWireCodec, OpenWireLimits,
    PrimitiveMap, WireFormat,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fn check_message(m: &codecs::openwire::Message) {
    if let Some(p) = &m.marshalled_properties {
        if let Ok(Some(map)) = PrimitiveMap::decode(p, 8) {
            let again = map.to_bytes().expect("a decoded map encodes");
            assert_eq!(PrimitiveMap::decode(&again, 8).ok(), Some(Some(map)));
        }
    }
    if let Some(c) = &m.content {
        let _ = decode_text_body(c);
        let _ = decode_stream_body(c, 8);
        let _ = PrimitiveMap::decode(c, 8);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = WireFormat {
        version: u32::from(first % 12) + 1,
        stack_trace_enabled: first & 0x80 != 0,
        limits: OpenWireLimits {
            max_frame_size: if first & 0x40 != 0 { 256 } else { 1 << 20 },
            max_depth: 8,
        },
    };
    let mut buf = BytesMut::from(rest);
    let mut commands = Vec::new();
    let failed = loop {
        let before = buf.len();
        match decode_frame(&mut buf, &format) {
            Ok(Some(command)) => {
                assert!(buf.len() < before, "a command must consume bytes");
                let wire = command.to_bytes(&format).expect("a decoded command encodes");
                let mut again = BytesMut::from(&wire[..]);
                let back = decode_frame(&mut again, &WireFormat { limits: OpenWireLimits::default(), ..format });
                assert_eq!(back.as_ref().ok().and_then(|c| c.as_ref()), Some(&command));
                assert!(again.is_empty(), "re-encoded command left bytes behind");
                assert_eq!(command.to_bytes(&format).ok(), Some(wire), "encoding is stable");
                match &command {
                    Command::Message(m) => check_message(m),
                    Command::MessageDispatch(d) => {
                        if let Some(m) = &d.message {
                            check_message(m);
                        }
                    }
                    _ => {}
                }
                commands.push(command);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                break false;
            }
            Err(_) => break true,
        }
    };

    let chunk = usize::from(first % 23) + 1;
    let mut codec = OpenWireCodec::new(format);
    let mut cbuf = BytesMut::new();
    let mut chunked = Vec::new();
    let mut chunked_failed = false;
    'outer: for piece in rest.chunks(chunk) {
        cbuf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut cbuf) {
                Ok(Some(c)) => chunked.push(c),
                Ok(None) => break,
                Err(_) => {
                    chunked_failed = true;
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(failed, chunked_failed);
    assert_eq!(commands, chunked);
});
