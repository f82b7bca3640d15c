//! The OpenWire listener: ActiveMQ 5.x / 6.x JMS clients (OpenWire 1 to 12, loose encoding) on
//! the shared engine.

pub mod advisory;
pub mod convert;
pub mod session;

pub use advisory::OpenWireShared;
pub use session::OpenWireSettings;
