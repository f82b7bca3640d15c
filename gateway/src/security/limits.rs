//! Connection limits: in total and per source address, over every listener.

use config::SecurityConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was refused. `Display` is the message for the client: ActiveMQ's
/// `maximumConnections` words (`ExceededMaximumConnectionsException`), naming the gateway's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionRefused {
    /// `security.max_connections` connections are open.
    #[error(
        "Exceeded the maximum number of allowed client connections: maximum connections \
         reached (security.max_connections = {limit})"
    )]
    Total {
        /// The limit.
        limit: u64,
    },
    /// `security.max_connections_per_address` connections are open from this address.
    #[error(
        "Exceeded the maximum number of allowed client connections from this address: maximum \
         connections reached (security.max_connections_per_address = {limit})"
    )]
    PerAddress {
        /// The limit.
        limit: u64,
    },
}

impl ConnectionRefused {
    /// The limit's name in `gateway_limit_refusals_total{limit}`: its configuration key.
    pub fn limit_name(&self) -> &'static str {
        match self {
            ConnectionRefused::Total { .. } => "max_connections",
            ConnectionRefused::PerAddress { .. } => "max_connections_per_address",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    by_address: HashMap<IpAddr, u64>,
}

/// Counts open connections and refuses those past `security.max_connections` (in total) or
/// `security.max_connections_per_address` (from one IP address). Shared by every listener.
///
/// ### Invariants
/// - Every admitted connection holds one [`ConnectionPermit`]; dropping it gives the place
///   back, so the counts are exactly the permits alive.
/// - An address with no open connection has no entry.
#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    max_total: u64,
    max_per_address: u64,
    counts: Mutex<Counts>,
}

/// One admitted connection's place; given back when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// A limiter with the given maxima (0 = no limit).
    pub fn new(max_total: u64, max_per_address: u64) -> Self {
        ConnectionLimiter {
            max_total,
            max_per_address,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// The limiter `[security]` asks for.
    pub fn from_config(config: &SecurityConfig) -> Self {
        Self::new(config.max_connections, config.max_connections_per_address)
    }

    /// Admits one more connection from `ip`, or says which limit it would exceed.
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<ConnectionPermit, ConnectionRefused> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.max_total > 0 && counts.total >= self.max_total {
            return Err(ConnectionRefused::Total {
                limit: self.max_total,
            });
        }
        let from_ip = counts.by_address.get(&ip).copied().unwrap_or(0);
        if self.max_per_address > 0 && from_ip >= self.max_per_address {
            return Err(ConnectionRefused::PerAddress {
                limit: self.max_per_address,
            });
        }
        counts.total += 1;
        counts.by_address.insert(ip, from_ip + 1);
        Ok(ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    #[allow(dead_code)] // for /metrics (gateway_connections)
    pub fn open(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_address_and_gives_places_back() {
        let limiter = Arc::new(ConnectionLimiter::new(3, 2));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = limiter.try_acquire(a).unwrap();
        let _a2 = limiter.try_acquire(a).unwrap();
        assert_eq!(
            limiter.try_acquire(a).err(),
            Some(ConnectionRefused::PerAddress { limit: 2 })
        );
        let _b1 = limiter.try_acquire(b).unwrap();
        assert_eq!(
            limiter.try_acquire(b).err(),
            Some(ConnectionRefused::Total { limit: 3 })
        );
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.try_acquire(b).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = Arc::new(ConnectionLimiter::new(0, 0));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let permits: Vec<_> = (0..100).map(|_| limiter.try_acquire(ip)).collect();
        assert!(permits.iter().all(Result::is_ok));
    }
}
