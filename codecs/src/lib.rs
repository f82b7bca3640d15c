//! Sans-IO protocol codecs. No runtime, no store, no knowledge of brokers.
//!
//! # Contract
//!
//! Every codec in this crate is deterministic and does no I/O: bytes go in
//! through a `decode(&mut BytesMut, ..)` function that either returns one
//! item and consumes exactly its bytes, returns `Ok(None)` ("need more bytes",
//! nothing consumed), or returns a typed error. Frames come out as bytes
//! through `encode(&self, &mut BytesMut)`.
//!
//! No input can make a decoder panic, and every size the peer announces is
//! checked against caller-supplied limits *before* anything is buffered or
//! allocated for it. The `tokio_util::codec` adapters are thin wrappers over
//! the pure functions.
//!
//! # Modules
//!
//! - [`stomp`]: STOMP 1.0 / 1.1 / 1.2 frames.
//! - [`mqtt`]: MQTT 3.1 / 3.1.1 / 5.0 control packets.
//! - [`amqp091`]: AMQP 0-9-1 frames, methods, content headers and field tables, as RabbitMQ
//!   speaks them.
//! - [`kafka`]: the Kafka wire protocol (requests, responses, record batches v2).
//! - [`openwire`]: OpenWire (the ActiveMQ 5.x JMS client's protocol), loose encoding, versions 1
//!   to 12: every command, message types, primitive maps, Java throwables.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod amqp091;
pub mod kafka;
pub mod mqtt;
pub mod openwire;
pub mod stomp;
