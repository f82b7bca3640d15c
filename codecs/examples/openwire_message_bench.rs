//! CPU cost of the OpenWire codec for the messages of the JMS benchmark (`bench/java/JmsBench`):
//! decoding a 1 KiB `BytesMessage` as the ActiveMQ client sends it, encoding the
//! `MessageDispatch` the gateway answers with, and decoding the client's `MessageAck`.
//!
//! ```text
//! cargo run --release -p codecs --example openwire_message_bench [-- ROUNDS]
//! ```
//!
//! Prints nanoseconds per operation, the median of 7 rounds of ROUNDS (200000) each.

use bytes::{Bytes, BytesMut};
use codecs::openwire::{
    decode_frame, Command, CommandHeader, ConsumerId, Destination, Message, MessageAck,
    MessageDispatch, MessageId, MessageKind, ProducerId, WireFormat,
};
use std::time::Instant;

fn producer() -> ProducerId {
    ProducerId {
        connection_id: Some("ID:bench-host-41234-1796651608273-1:1".to_string()),
        session_id: 1,
        value: 1,
    }
}

fn message(seq: i64) -> Message {
    Message {
        header: CommandHeader {
            command_id: 7,
            response_required: false,
        },
        kind: MessageKind::Bytes,
        producer_id: Some(producer()),
        destination: Some(Destination::queue("bench-41234-1796651608273")),
        message_id: Some(MessageId {
            text_view: None,
            producer_id: Some(producer()),
            producer_sequence_id: seq,
            broker_sequence_id: 0,
        }),
        persistent: false,
        priority: 4,
        timestamp: 1_796_651_608_273,
        content: Some(Bytes::from(vec![b'x'; 1024])),
        ..Message::default()
    }
}

fn consumer() -> ConsumerId {
    ConsumerId {
        connection_id: Some("ID:bench-host-41234-1796651608273-2:1".to_string()),
        session_id: 1,
        value: 1,
    }
}

fn dispatch(seq: i64) -> Command {
    let mut m = message(seq);
    if let Some(id) = m.message_id.as_mut() {
        id.text_view = Some(format!("ID:bench-host-41234-1796651608273-1:1:1:1:{seq}"));
        id.broker_sequence_id = seq;
    }
    Command::MessageDispatch(MessageDispatch {
        header: CommandHeader::default(),
        consumer_id: Some(consumer()),
        destination: m.destination.clone(),
        message: Some(Box::new(m)),
        redelivery_counter: 0,
    })
}

fn ack(seq: i64) -> Command {
    let Command::MessageDispatch(d) = dispatch(seq) else {
        unreachable!("dispatch() builds a MessageDispatch")
    };
    let id = d.message.and_then(|m| m.message_id);
    Command::MessageAck(MessageAck {
        header: CommandHeader::default(),
        destination: d.destination,
        transaction_id: None,
        consumer_id: d.consumer_id,
        ack_type: 2,
        first_message_id: id.clone(),
        last_message_id: id,
        message_count: 1,
        poison_cause: None,
    })
}

fn frame(command: &Command, format: &WireFormat) -> BytesMut {
    let mut b = BytesMut::new();
    must(command.encode(&mut b, format));
    b
}

/// The value, or the end of the bench: its own commands always encode and decode.
fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench command failed: {e:?}");
            std::process::exit(1)
        }
    }
}

/// Median nanoseconds per call of `f` over 7 rounds of `rounds` calls.
fn time(rounds: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut per: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for i in 0..rounds {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / rounds as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per.get(3).copied().unwrap_or(f64::NAN)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let format = WireFormat::default();
    let sent = frame(&Command::Message(Box::new(message(42))), &format);
    let acked = frame(&ack(42), &format);
    let out = dispatch(42);
    let mut sink = BytesMut::with_capacity(8192);

    let decode_message = time(rounds, |_| {
        let mut b = sent.clone();
        let c = must(decode_frame(&mut b, &format));
        std::hint::black_box(c);
    });
    let encode_dispatch = time(rounds, |_| {
        sink.clear();
        must(out.encode(&mut sink, &format));
        std::hint::black_box(&sink);
    });
    let decode_ack = time(rounds, |_| {
        let mut b = acked.clone();
        let c = must(decode_frame(&mut b, &format));
        std::hint::black_box(c);
    });
    println!(
        "frames: message {} B, dispatch {} B, ack {} B",
        sent.len(),
        frame(&out, &format).len(),
        acked.len()
    );
    println!(
        "ns per op (median of 7 x {rounds}): decode message {decode_message:.0}, \
         encode dispatch {encode_dispatch:.0}, decode ack {decode_ack:.0}"
    );
}
