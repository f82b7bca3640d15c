//! Destination address patterns (`orders.>`, `prices.*.eur`).

/// Why a destination pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern is the empty string.
    #[error("pattern is empty")]
    Empty,
    /// A level between dots is empty (`a..b`, `.a`, `a.`).
    #[error("level {level} is empty (no leading, trailing or doubled '.')")]
    EmptyLevel {
        /// 1-based level number.
        level: usize,
    },
    /// `>` appears before the last level.
    #[error("'>' must be the last level, found at level {level} of {levels}")]
    GreedyNotLast {
        /// 1-based level number of the `>`.
        level: usize,
        /// How many levels the pattern has.
        levels: usize,
    },
    /// `*` or `>` is mixed with other characters inside a level (`ord*`).
    #[error("wildcard must be a whole level, found {text:?} at level {level}")]
    PartialWildcard {
        /// 1-based level number.
        level: usize,
        /// The offending level.
        text: String,
    },
}

/// Checks a canonical address pattern: `.`-separated non-empty levels, where a level of `*`
/// matches exactly one level and a last level of `>` matches one or more remaining levels.
pub fn validate_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    let levels: Vec<&str> = pattern.split('.').collect();
    let count = levels.len();
    for (i, text) in levels.iter().enumerate() {
        let level = i + 1;
        match *text {
            "" => return Err(PatternError::EmptyLevel { level }),
            ">" if level != count => {
                return Err(PatternError::GreedyNotLast {
                    level,
                    levels: count,
                })
            }
            ">" | "*" => {}
            t if t.contains(['*', '>']) => {
                return Err(PatternError::PartialWildcard {
                    level,
                    text: t.to_owned(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a plain address (no wildcards), such as a dead-letter queue name.
pub(crate) fn validate_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("address is empty".to_owned());
    }
    for (i, level) in address.split('.').enumerate() {
        if level.is_empty() {
            return Err(format!(
                "level {} is empty (no leading, trailing or doubled '.')",
                i + 1
            ));
        }
        if level.contains(['*', '>']) {
            return Err(format!(
                "must be a plain address without wildcards, found {level:?} at level {}",
                i + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_wildcard_patterns() {
        for p in [
            "orders",
            "orders.>",
            ">",
            "*",
            "a.*.c",
            "a.*.>",
            "ActiveMQ.DLQ",
        ] {
            assert_eq!(validate_pattern(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_greedy_wildcard_before_last_level() {
        assert_eq!(
            validate_pattern("a.>.b"),
            Err(PatternError::GreedyNotLast {
                level: 2,
                levels: 3
            })
        );
        assert_eq!(
            validate_pattern(">.a"),
            Err(PatternError::GreedyNotLast {
                level: 1,
                levels: 2
            })
        );
    }

    #[test]
    fn rejects_empty_levels() {
        assert_eq!(validate_pattern(""), Err(PatternError::Empty));
        assert_eq!(
            validate_pattern("a..b"),
            Err(PatternError::EmptyLevel { level: 2 })
        );
        assert_eq!(
            validate_pattern(".a"),
            Err(PatternError::EmptyLevel { level: 1 })
        );
        assert_eq!(
            validate_pattern("a."),
            Err(PatternError::EmptyLevel { level: 2 })
        );
    }

    #[test]
    fn rejects_partial_wildcards() {
        assert_eq!(
            validate_pattern("ord*.x"),
            Err(PatternError::PartialWildcard {
                level: 1,
                text: "ord*".to_owned()
            })
        );
        assert_eq!(
            validate_pattern("a.b>"),
            Err(PatternError::PartialWildcard {
                level: 2,
                text: "b>".to_owned()
            })
        );
    }

    #[test]
    fn plain_address_rejects_wildcards_and_empty_levels() {
        assert!(validate_address("ActiveMQ.DLQ").is_ok());
        assert!(validate_address("").is_err());
        assert!(validate_address("a..b").is_err());
        assert!(validate_address("DLQ.>").is_err());
        assert!(validate_address("DLQ.*").is_err());
    }
}
