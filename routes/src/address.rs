//! Destinations and canonical address patterns.
//!
//! Canonical names use `.` between levels; in patterns `*` matches exactly one level and `>`
//! matches zero or more remaining levels (it must be the last level), as ActiveMQ 5.17 does
//! (`a.>` matches `a`, checked against the real broker). `#` is the same wildcard, written as
//! MQTT writes it. As MQTT requires, a wildcard in the first level does
//! not match a name whose first level starts with `$` (`$SYS`-style topics). Empty levels are
//! allowed (MQTT's `/a` and `a//b`).

use std::fmt;

/// How an address routes: to one consumer (a queue) or to every bound subscription (a topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationKind {
    /// Anycast: each message goes to one consumer of the queue of that name.
    Queue,
    /// Multicast: each subscription bound to a matching pattern gets a copy.
    Topic,
}

/// A destination as clients name it: a kind and a canonical address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    /// Anycast or multicast.
    pub kind: DestinationKind,
    /// Canonical address (`.` separated levels; may be a pattern for subscriptions).
    pub name: String,
}

impl Destination {
    /// A queue destination.
    pub fn queue(name: impl Into<String>) -> Self {
        Destination {
            kind: DestinationKind::Queue,
            name: name.into(),
        }
    }

    /// A topic destination.
    pub fn topic(name: impl Into<String>) -> Self {
        Destination {
            kind: DestinationKind::Topic,
            name: name.into(),
        }
    }

    /// Parses the `queue://name` / `topic://name` form used in stored reply-to values.
    pub fn parse_uri(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix("queue://") {
            Some(Self::queue(rest))
        } else {
            text.strip_prefix("topic://").map(Self::topic)
        }
    }

    /// True when the name contains a wildcard level.
    pub fn is_wildcard(&self) -> bool {
        is_pattern(&self.name)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DestinationKind::Queue => write!(f, "queue://{}", self.name),
            DestinationKind::Topic => write!(f, "topic://{}", self.name),
        }
    }
}

/// True when `name` contains a `*`, `>` or `#` level.
pub fn is_pattern(name: &str) -> bool {
    name.split('.')
        .any(|level| level == "*" || level == ">" || level == "#")
}

/// Does the canonical address `name` match `pattern`?
///
/// `*` matches one level, `>` one or more trailing levels; any other level matches itself only.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut pat = pattern.split('.');
    let mut levels = name.split('.');
    let mut first = true;
    loop {
        let (p, l) = (pat.next(), levels.next());
        if first && l.is_some_and(|l| l.starts_with('$')) && matches!(p, Some("*" | ">" | "#")) {
            return false;
        }
        first = false;
        match (p, l) {
            // As ActiveMQ: `>` is zero or more levels too (`a.>` matches `a`).
            (Some("#" | ">"), _) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(l)) if p == l => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks that a destination name is usable: non-empty, `>` and `#` only as the last level.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty destination name".into());
    }
    let levels: Vec<&str> = name.split('.').collect();
    for (i, level) in levels.iter().enumerate() {
        if (*level == ">" || *level == "#") && i + 1 != levels.len() {
            return Err(format!(
                "destination `{name}`: `{level}` must be the last level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_activemq() {
        assert!(pattern_matches("a.b.c", "a.b.c"));
        assert!(!pattern_matches("a.b.c", "a.b"));
        assert!(pattern_matches("a.*.c", "a.x.c"));
        assert!(!pattern_matches("a.*.c", "a.x.y.c"));
        assert!(pattern_matches("a.>", "a.b"));
        assert!(pattern_matches("a.>", "a.b.c.d"));
        assert!(pattern_matches("a.>", "a"));
        assert!(pattern_matches(">", "x"));
        assert!(pattern_matches("*.*", "x.y"));
        assert!(!pattern_matches("*", "x.y"));
    }

    #[test]
    fn hash_matches_zero_or_more_levels_like_mqtt() {
        assert!(pattern_matches("a.#", "a"));
        assert!(pattern_matches("a.#", "a.b.c"));
        assert!(pattern_matches("#", "a"));
        assert!(!pattern_matches("a.#", "b"));
    }

    #[test]
    fn first_level_wildcards_skip_dollar_topics() {
        assert!(!pattern_matches("#", "$SYS.broker.uptime"));
        assert!(!pattern_matches(">", "$SYS.x"));
        assert!(!pattern_matches("*.broker", "$SYS.broker"));
        assert!(pattern_matches("$SYS.#", "$SYS.broker.uptime"));
        assert!(pattern_matches("$SYS.*", "$SYS.x"));
    }

    #[test]
    fn empty_levels_are_levels() {
        assert!(pattern_matches("*.a", ".a"));
        assert!(pattern_matches("a.*.b", "a..b"));
        assert!(validate_name(".a").is_ok());
    }

    #[test]
    fn names_validated() {
        assert!(validate_name("a.b").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a.>.b").is_err());
        assert!(validate_name("a.#.b").is_err());
    }
}
