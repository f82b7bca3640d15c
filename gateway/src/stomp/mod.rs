//! The STOMP listener: ActiveMQ-compatible STOMP 1.0 / 1.1 / 1.2 on the shared engine.

pub mod convert;
pub mod session;

pub use session::StompSettings;
