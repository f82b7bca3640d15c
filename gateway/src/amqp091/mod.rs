//! The AMQP 0-9-1 listener: RabbitMQ's dialect of AMQP 0-9-1 on the shared engine.

mod arguments;
pub mod broker;
pub mod convert;
mod handshake;
pub mod session;
pub mod stream;
pub mod topology;

pub use broker::Amqp091Broker;
pub use session::Amqp091Settings;
