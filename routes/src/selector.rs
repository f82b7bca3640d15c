//! JMS message selectors (placeholder until the parser lands).
