//! Durability: the queue journal and the partitioned log.
