//! The protocol-neutral broker model and engine: messages, addresses, bindings, selectors and the
//! engine that enqueues, dispatches, acknowledges, redelivers, expires and dead-letters, calling
//! `store` for durability. No sockets.
pub mod address;
pub mod death;
pub mod exchange;
pub mod id_map;
pub mod message;
pub mod paging;
pub mod persist;
pub mod selector;

pub use address::{Destination, DestinationKind};
pub use exchange::{
    Binding, BindingTarget, ExchangeError, ExchangeKind, ExchangeSpec, HeadersArgs, HeadersMatch,
};
pub use message::{BodyKind, Message, PropertyValue};
pub mod engine;

pub use engine::{
    open_transactions, BrowsedMessage, ConsumerInfo, DestinationProducers, EngineGauges,
    QueueCounters, QueueStats, QueueStatsKind, TopicStats, MAX_TOPICS_COUNTED,
};
pub use engine::{virtual_topic_of, VirtualTopics};
pub use engine::{
    ConsumerId, ConsumerSource, ConsumerSpec, Delivery, DestinationPolicy, Durability,
    DurableSubscriptionInfo, Engine, EngineConfig, EngineError, FlowControl, NackAction, Overflow,
    QueueInfo, QueueOptions, RecoverySummary, Session, SessionEvent, SessionId, Transaction,
    PAGE_AT_PERCENT, TEMP_PREFIX,
};
/// The store crate, for the journal options the engine opens with.
pub use store;
