//! JMS message selectors: the SQL-92 subset of JMS 1.1 §3.8.1, evaluated the way ActiveMQ 5.x
//! evaluates it.
//!
//! [`Selector::parse`] turns selector text into an expression tree once; [`Selector::matches`]
//! evaluates it against a [`Message`] with no allocation in the common case. Parsing is a
//! hand-written recursive-descent parser; nothing here does I/O or keeps global state.
//!
//! # Language
//!
//! - Literals: strings in single quotes (`'it''s'`), integers (`42`, `42L`, hex `0x2A`, octal
//!   `052`), floats (`1.5`, `1.`, `.5`, `5E3`, `1.5e-3`), `TRUE`, `FALSE`, `NULL`.
//! - Identifiers: case-sensitive; keywords are case-insensitive. The JMS header names
//!   `JMSMessageID`, `JMSCorrelationID`, `JMSType`, `JMSPriority`, `JMSTimestamp`,
//!   `JMSExpiration`, `JMSDeliveryMode` (`'PERSISTENT'` / `'NON_PERSISTENT'`), `JMSDestination`,
//!   `JMSReplyTo`, `JMSRedelivered`, `JMSXDeliveryCount`, `JMSXGroupID`, `JMSXGroupSeq` and
//!   `JMSXUserID` read the message's fields (they shadow application properties of the same
//!   name, as in ActiveMQ); every other identifier reads an application property.
//! - Operators, loosest first: `OR`; `AND`; `NOT`; `=`, `<>`, `IS [NOT] NULL`; `>`, `>=`, `<`,
//!   `<=`, `[NOT] LIKE 'pattern' [ESCAPE 'c']`, `[NOT] BETWEEN a AND b`, `[NOT] IN ('a', ...)`;
//!   binary `+`, `-`; `*`, `/`, `%`; unary `+`, `-`; parentheses.
//! - Comments `-- to end of line` and `/* ... */` are skipped, as ActiveMQ does.
//!
//! # Semantics
//!
//! Three-valued logic: a missing property is NULL, any comparison or arithmetic with NULL is
//! *unknown*, `NOT unknown` is unknown, and `AND`/`OR` follow the SQL truth tables. A message
//! matches only when the whole selector is TRUE, so `a > 1` and `NOT (a > 1)` both reject a
//! message without `a`.
//!
//! Following ActiveMQ (and JMS 1.1 "comparison of non-like type values ... is false"):
//! comparing values of different types (a string with a number, say) is FALSE, not unknown, so
//! `<>` between them is TRUE. Integers compare with floats by widening to `f64`. `LIKE` on a
//! non-string is FALSE; `IN` on a non-string is unknown. A bare identifier used as a condition is
//! TRUE only when it holds the boolean `true`. `+` with a string on the left concatenates
//! (ActiveMQ's `name + '!' = 'James!'`). `/` always yields a float, as in ActiveMQ
//! (`7 / 2 = 3.5`); `+ - *` on two integers stay integers (64-bit, wrapping on overflow).
//! Division or `%` by zero is unknown. Bytes properties compare unequal to everything.
//!
//! Deliberate departures from ActiveMQ 5.x, where the JMS specification is clearer:
//! - `NOT` binds looser than comparisons (`NOT a = 1` is `NOT (a = 1)`); ActiveMQ's grammar
//!   parses it as `(NOT a) = 1`.
//! - Comparing with NULL is unknown whichever side the NULL is on; ActiveMQ gives FALSE for
//!   `'x' = missing` and TRUE for `missing1 = missing2`.
//! - Strings and booleans support only `=` and `<>`; `<`, `>` etc. between two string
//!   properties are FALSE (ActiveMQ compares them lexicographically).
//! - Integer arithmetic is 64-bit throughout (ActiveMQ wraps `int + int` at 32 bits) and the
//!   mixed integer-type comparisons ActiveMQ gets wrong (`123 = byteProp`) work both ways.
//! - Integer literals beyond the 64-bit range are rejected (ActiveMQ silently makes a
//!   `BigDecimal` that compares unequal to everything); `-9223372036854775808` is accepted.
//! - `XPATH` / `XQUERY` selectors are rejected as unsupported.
//!
//! # Strings compared with numbers
//!
//! STOMP headers arrive as strings, so `price > 10` with `price:12` compares a string with a
//! number. ActiveMQ's parser has a `convert_string_expressions` switch that is **off by
//! default**: with it off the comparison is a type mismatch and FALSE. Its STOMP transport turns
//! it on for every STOMP `SUBSCRIBE` by prefixing the selector with
//! `convert_string_expressions:`. We implement the same default and the same switch: plain
//! selectors never convert, and a selector whose text starts with
//! [`CONVERT_STRING_EXPRESSIONS_PREFIX`] converts, in a comparison between a string and a
//! number or boolean, the string to the other side's type (`"12"` as an integer when compared
//! with `10`, as a float when compared with `10.0`, `"true"` case-insensitively as a boolean);
//! a string that does not convert makes the comparison FALSE, as ActiveMQ's
//! `NumberFormatException` does (so `'12.5' > 10` is FALSE but `'12.5' > 10.0` is TRUE).
//! Protocol front ends that want ActiveMQ's STOMP behaviour prepend the prefix; because the
//! prefix is part of [`Selector::text`], a durable subscription stored by its text keeps it.
//!
//! # Limits
//!
//! Nesting (parentheses, `NOT`, unary signs, and the depth of the expression tree, which long
//! chains of arithmetic also build) is limited to [`MAX_DEPTH`], so a hostile selector cannot
//! overflow the stack while parsing or evaluating. `LIKE` matching is a two-pointer wildcard
//! match, `O(pattern × text)` in the worst case and linear in practice, never exponential.

mod ast;
mod eval;
mod lexer;
mod like;
mod parser;

use crate::message::Message;

/// Deepest nesting a selector may have: parentheses, `NOT`, unary signs and the height of the
/// expression tree each count. Deeper selectors are rejected by [`Selector::parse`].
pub const MAX_DEPTH: usize = 256;

/// Selector-text prefix that turns on ActiveMQ's `convert_string_expressions` behaviour (see the
/// module documentation). ActiveMQ's STOMP transport prepends exactly this to STOMP selectors.
pub const CONVERT_STRING_EXPRESSIONS_PREFIX: &str = "convert_string_expressions:";

/// A parsed JMS message selector.
///
/// Parse once with [`Selector::parse`], then call [`Selector::matches`] for each candidate
/// message. Cloning copies the expression tree; share it behind an `Arc` if it is large.
#[derive(Debug, Clone)]
pub struct Selector {
    text: String,
    expr: ast::Expr,
    convert_strings: bool,
}

impl Selector {
    /// Parses selector text.
    ///
    /// Empty or whitespace-only text is an error: "no selector" means "match everything", which
    /// is the caller's decision, not a selector. Text starting with
    /// [`CONVERT_STRING_EXPRESSIONS_PREFIX`] enables string-to-number conversion in comparisons.
    ///
    /// # Errors
    ///
    /// [`SelectorError`] with the 1-based column of the offending character or token, for any
    /// syntax error, any comparison ActiveMQ rejects when parsing (a string literal with `<`, a
    /// `NULL` literal with `=`, a non-boolean selector such as `3 + 5`, ...), or nesting deeper
    /// than [`MAX_DEPTH`].
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let (body, convert_strings, offset) =
            match text.strip_prefix(CONVERT_STRING_EXPRESSIONS_PREFIX) {
                Some(rest) => (
                    rest,
                    true,
                    CONVERT_STRING_EXPRESSIONS_PREFIX.chars().count(),
                ),
                None => (text, false, 0),
            };
        let expr = parser::parse(body).map_err(|e| SelectorError {
            position: e.position + offset,
            message: e.message,
        })?;
        Ok(Selector {
            text: text.to_string(),
            expr,
            convert_strings,
        })
    }

    /// Whether `msg` is selected: true only when the selector evaluates to TRUE (unknown and
    /// FALSE both reject). `delivery_count` is the number of this delivery attempt (1 for the
    /// first); it feeds `JMSXDeliveryCount` and `JMSRedelivered` (`delivery_count > 1`).
    pub fn matches(&self, msg: &Message, delivery_count: u32) -> bool {
        let cx = eval::Context {
            msg,
            delivery_count,
            convert_strings: self.convert_strings,
        };
        eval::matches(&self.expr, &cx)
    }

    /// The selector text exactly as given to [`Selector::parse`], including any
    /// [`CONVERT_STRING_EXPRESSIONS_PREFIX`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether comparisons convert strings to numbers or booleans (the text started with
    /// [`CONVERT_STRING_EXPRESSIONS_PREFIX`]).
    pub fn converts_string_expressions(&self) -> bool {
        self.convert_strings
    }
}

/// Why selector text does not parse. The message is meant for people: it fits in a JMS
/// `InvalidSelectorException` or a STOMP `ERROR` frame as is.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid selector at column {position}: {message}")]
pub struct SelectorError {
    /// 1-based column, counted in characters from the start of the text given to
    /// [`Selector::parse`], where the problem was found (one past the end for a selector that
    /// ends too early).
    pub position: usize,
    /// What is wrong, without the position.
    pub message: String,
}
