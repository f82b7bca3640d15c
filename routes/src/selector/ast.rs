//! The parsed form of a selector.

use super::like::LikePattern;

/// A selector expression. Boolean-valued nodes evaluate to TRUE, FALSE or unknown (NULL).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// A literal value.
    Lit(Literal),
    /// A JMS header or application property.
    Field(Field),
    /// A bare identifier used as a condition: TRUE only for the boolean `true`.
    BoolCast(Box<Expr>),
    /// Logical negation.
    Not(Box<Expr>),
    /// Conjunction of two or more conditions (flattened, so long chains stay shallow).
    And(Vec<Expr>),
    /// Disjunction of two or more conditions (flattened).
    Or(Vec<Expr>),
    /// A comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `value [NOT] BETWEEN low AND high`.
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// `value [NOT] LIKE pattern [ESCAPE c]`.
    Like {
        value: Box<Expr>,
        pattern: LikePattern,
        negated: bool,
    },
    /// `field [NOT] IN ('a', ...)`; `list` is sorted and deduplicated.
    In {
        field: Field,
        list: Vec<String>,
        negated: bool,
    },
    /// `value IS [NOT] NULL`.
    IsNull { value: Box<Expr>, negated: bool },
    /// Binary arithmetic.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator as written in a selector.
    pub(super) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// What an identifier reads, resolved once at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
    MessageId,
    CorrelationId,
    Type,
    Priority,
    Timestamp,
    Expiration,
    DeliveryMode,
    Destination,
    ReplyTo,
    Redelivered,
    DeliveryCount,
    GroupId,
    GroupSeq,
    UserId,
    /// An application property, by its case-sensitive name.
    Property(String),
}

impl Field {
    /// Resolves an identifier: the JMS header names ActiveMQ maps to message fields, otherwise
    /// an application property.
    pub(super) fn resolve(name: String) -> Field {
        match name.as_str() {
            "JMSMessageID" => Field::MessageId,
            "JMSCorrelationID" => Field::CorrelationId,
            "JMSType" => Field::Type,
            "JMSPriority" => Field::Priority,
            "JMSTimestamp" => Field::Timestamp,
            "JMSExpiration" => Field::Expiration,
            "JMSDeliveryMode" => Field::DeliveryMode,
            "JMSDestination" => Field::Destination,
            "JMSReplyTo" => Field::ReplyTo,
            "JMSRedelivered" => Field::Redelivered,
            "JMSXDeliveryCount" => Field::DeliveryCount,
            "JMSXGroupID" => Field::GroupId,
            "JMSXGroupSeq" => Field::GroupSeq,
            "JMSXUserID" => Field::UserId,
            _ => Field::Property(name),
        }
    }
}
