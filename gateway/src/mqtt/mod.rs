//! The MQTT listener: MQTT 3.1, 3.1.1 and 5.0 on the shared engine.

pub mod convert;
pub mod session;

pub use session::{MqttSessions, MqttSettings};
