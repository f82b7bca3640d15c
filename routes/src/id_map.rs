//! Maps and sets keyed by ids the gateway hands out itself: sessions, consumers, queue ids,
//! delivery sequences and tags, channel numbers bounded by the negotiated maximum.
//!
//! They are on the path of every delivery and ack, where std's SipHash was a few per cent of the
//! gateway's CPU (`docs/benchmarks.md`). Clients do not choose these keys (or can make only a
//! bounded number of them), so a fast seeded hash (foldhash, hashbrown's default) is safe here.
//! Maps keyed by names clients choose (queues, exchanges, consumer tags) keep std's SipHash,
//! which resists hash flooding.

/// A map keyed by an id the gateway assigns; see the module documentation.
pub type IdMap<K, V> = foldhash::HashMap<K, V>;

/// A set of ids the gateway assigns; see the module documentation.
pub type IdSet<K> = foldhash::HashSet<K>;

pub use foldhash::{HashMapExt as IdMapExt, HashSetExt as IdSetExt};
