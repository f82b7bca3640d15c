//! The protocol-neutral broker model and engine: messages, addresses, bindings, selectors and the
//! engine that enqueues, dispatches, acknowledges, redelivers, expires and dead-letters, calling
//! `store` for durability. No sockets.
pub mod message;
pub mod selector;

pub use message::{BodyKind, Message, PropertyValue};
