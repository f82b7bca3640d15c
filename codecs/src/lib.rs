//! Sans-IO protocol codecs. No runtime, no store, no knowledge of brokers.
pub mod stomp;
