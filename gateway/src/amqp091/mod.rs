//! The AMQP 0-9-1 listener: RabbitMQ's dialect of AMQP 0-9-1 on the shared engine.

pub mod broker;
pub mod convert;
pub mod session;
pub mod topology;

pub use broker::Amqp091Broker;
pub use session::Amqp091Settings;
