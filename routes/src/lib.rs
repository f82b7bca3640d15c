//! The protocol-neutral broker model and engine: messages, addresses, bindings, selectors and the
//! engine that enqueues, dispatches, acknowledges, redelivers, expires and dead-letters, calling
//! `store` for durability. No sockets.
pub mod address;
pub mod message;
pub mod persist;
pub mod selector;

pub use address::{Destination, DestinationKind};
pub use message::{BodyKind, Message, PropertyValue};
