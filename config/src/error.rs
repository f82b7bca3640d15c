//! Configuration errors: each names its file, line, dotted key and what is wrong.

use std::fmt;

/// Every problem found in one configuration file, in line order.
///
/// Displays one [`ConfigError`] per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_lines(.errors))]
pub struct ConfigErrors {
    /// The individual errors; never empty when returned by this crate.
    pub errors: Vec<ConfigError>,
}

fn render_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem in a configuration file.
///
/// Displays as `origin:line: key: message`, e.g.
/// `gateway.toml:12: listeners.stomp.bind: invalid socket address "x"`. The line is left out
/// when unknown (e.g. an I/O error), and so is the key when empty (e.g. a syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name the error refers to.
    pub origin: String,
    /// 1-based line, when the error can be placed in the file.
    pub line: Option<usize>,
    /// Dotted key path (`listeners.stomp.bind`, `broker.destinations[0].pattern`), or empty
    /// when the error is not about one key.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}
