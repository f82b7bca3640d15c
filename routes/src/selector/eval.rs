//! Evaluates a selector [`Expr`] against a message with SQL three-valued logic.

use super::ast::{ArithOp, CmpOp, Expr, Field, Literal};
use crate::message::{Message, PropertyValue};
use std::borrow::Cow;
use std::cmp::Ordering;

/// What a selector is evaluated against.
pub(super) struct Context<'a> {
    pub(super) msg: &'a Message,
    pub(super) delivery_count: u32,
    pub(super) convert_strings: bool,
}

/// A runtime value. Boolean-valued expressions produce `Bool` or `Null` (unknown).
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// A bytes property: present, but equal to nothing and usable in no operation.
    Opaque,
}

impl Value<'_> {
    /// The truth value of a condition; `None` is unknown.
    fn truth(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

fn tri(t: Option<bool>) -> Value<'static> {
    t.map_or(Value::Null, Value::Bool)
}

/// Whether the selector evaluates to TRUE.
pub(super) fn matches(expr: &Expr, cx: &Context<'_>) -> bool {
    eval(expr, cx).truth() == Some(true)
}

fn eval<'a>(expr: &'a Expr, cx: &Context<'a>) -> Value<'a> {
    match expr {
        Expr::Lit(lit) => match lit {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::Int(*i),
            Literal::Float(f) => Value::Float(*f),
            Literal::Str(s) => Value::Str(Cow::Borrowed(s)),
        },
        Expr::Field(f) => field(f, cx),
        Expr::BoolCast(inner) => match eval(inner, cx) {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Bool(false),
        },
        Expr::Not(inner) => tri(eval(inner, cx).truth().map(|b| !b)),
        Expr::And(items) => {
            let mut unknown = false;
            for item in items {
                match eval(item, cx).truth() {
                    Some(false) => return Value::Bool(false),
                    Some(true) => {}
                    None => unknown = true,
                }
            }
            tri((!unknown).then_some(true))
        }
        Expr::Or(items) => {
            let mut unknown = false;
            for item in items {
                match eval(item, cx).truth() {
                    Some(true) => return Value::Bool(true),
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            tri((!unknown).then_some(false))
        }
        Expr::Cmp(op, l, r) => {
            let l = eval(l, cx);
            let r = eval(r, cx);
            tri(compare(*op, &l, &r, cx.convert_strings))
        }
        Expr::Between {
            value,
            low,
            high,
            negated,
        } => {
            let v = eval(value, cx);
            let low = eval(low, cx);
            let high = eval(high, cx);
            let c = cx.convert_strings;
            if *negated {
                or3(
                    compare(CmpOp::Lt, &v, &low, c),
                    compare(CmpOp::Gt, &v, &high, c),
                )
            } else {
                and3(
                    compare(CmpOp::Ge, &v, &low, c),
                    compare(CmpOp::Le, &v, &high, c),
                )
            }
        }
        Expr::Like {
            value,
            pattern,
            negated,
        } => match eval(value, cx) {
            Value::Null => Value::Null,
            Value::Str(s) => Value::Bool(pattern.matches(&s) != *negated),
            // ActiveMQ: LIKE on a non-string is FALSE (so NOT LIKE is TRUE).
            _ => Value::Bool(*negated),
        },
        Expr::In {
            field: f,
            list,
            negated,
        } => match field(f, cx) {
            Value::Str(s) => {
                Value::Bool(list.binary_search_by(|item| item.as_str().cmp(&s)).is_ok() != *negated)
            }
            // ActiveMQ: IN on NULL or a non-string is unknown.
            _ => Value::Null,
        },
        Expr::IsNull { value, negated } => {
            Value::Bool((eval(value, cx) == Value::Null) != *negated)
        }
        Expr::Arith(op, l, r) => {
            let l = eval(l, cx);
            if l == Value::Null {
                return Value::Null;
            }
            arith(*op, l, eval(r, cx))
        }
        Expr::Neg(inner) => match eval(inner, cx) {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Float(f) => Value::Float(-f),
            _ => Value::Null,
        },
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Value<'static> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Value::Bool(false),
        (Some(true), Some(true)) => Value::Bool(true),
        _ => Value::Null,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Value<'static> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Value::Bool(true),
        (Some(false), Some(false)) => Value::Bool(false),
        _ => Value::Null,
    }
}

fn opt_str(s: &Option<String>) -> Value<'_> {
    s.as_deref()
        .map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s)))
}

fn non_empty(s: &str) -> Value<'_> {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Str(Cow::Borrowed(s))
    }
}

fn millis(ms: u64) -> Value<'static> {
    Value::Int(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Reads a header or property, as ActiveMQ's `PropertyExpression` does.
fn field<'a>(f: &'a Field, cx: &Context<'a>) -> Value<'a> {
    let msg = cx.msg;
    match f {
        Field::MessageId => non_empty(&msg.message_id),
        Field::CorrelationId => opt_str(&msg.correlation_id),
        Field::Type => opt_str(&msg.message_type),
        Field::Priority => Value::Int(i64::from(msg.priority)),
        Field::Timestamp => millis(msg.timestamp),
        Field::Expiration => millis(msg.expiration),
        Field::DeliveryMode => Value::Str(Cow::Borrowed(if msg.persistent {
            "PERSISTENT"
        } else {
            "NON_PERSISTENT"
        })),
        Field::Destination => non_empty(&msg.address),
        Field::ReplyTo => opt_str(&msg.reply_to),
        Field::Redelivered => Value::Bool(cx.delivery_count > 1),
        Field::DeliveryCount => Value::Int(i64::from(cx.delivery_count)),
        Field::GroupId => opt_str(&msg.group_id),
        Field::GroupSeq => Value::Int(i64::from(msg.group_seq)),
        // ActiveMQ falls back to a JMSXUserID property when the message has no user.
        Field::UserId => match &msg.user_id {
            Some(u) => Value::Str(Cow::Borrowed(u)),
            None => property(msg, "JMSXUserID"),
        },
        Field::Property(name) => property(msg, name),
    }
}

fn property<'a>(msg: &'a Message, name: &str) -> Value<'a> {
    match msg.properties.get(name) {
        None => Value::Null,
        Some(PropertyValue::Bool(b)) => Value::Bool(*b),
        Some(PropertyValue::Byte(v)) => Value::Int(i64::from(*v)),
        Some(PropertyValue::Short(v)) => Value::Int(i64::from(*v)),
        Some(PropertyValue::Int(v)) => Value::Int(i64::from(*v)),
        Some(PropertyValue::Long(v)) => Value::Int(*v),
        Some(PropertyValue::Float(v)) => Value::Float(f64::from(*v)),
        Some(PropertyValue::Double(v)) => Value::Float(*v),
        Some(PropertyValue::String(s)) => Value::Str(Cow::Borrowed(s)),
        Some(PropertyValue::Bytes(_)) => Value::Opaque,
    }
}

/// Operands of a comparison after type promotion.
enum Pair<'v> {
    Int(i64, i64),
    Float(f64, f64),
    Str(&'v str, &'v str),
    Bool(bool, bool),
    /// Values of unlike types: every comparison is FALSE (so `<>` is TRUE).
    Unlike,
}

/// Promotes two non-NULL operands to a common type. Integers widen to floats. With
/// `convert_strings` (ActiveMQ's `convert_string_expressions`), a string compared with a number
/// or boolean is parsed as that type; if it does not parse the operands are unlike.
fn promote<'v>(l: &'v Value<'_>, r: &'v Value<'_>, convert_strings: bool) -> Pair<'v> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Pair::Int(*a, *b),
        (Value::Int(a), Value::Float(b)) => Pair::Float(*a as f64, *b),
        (Value::Float(a), Value::Int(b)) => Pair::Float(*a, *b as f64),
        (Value::Float(a), Value::Float(b)) => Pair::Float(*a, *b),
        (Value::Str(a), Value::Str(b)) => Pair::Str(a, b),
        (Value::Bool(a), Value::Bool(b)) => Pair::Bool(*a, *b),
        (Value::Str(s), other) | (other, Value::Str(s)) if convert_strings => {
            let string_on_left = matches!(l, Value::Str(_));
            let converted = match other {
                Value::Int(_) => java_long(s).map(Value::Int),
                Value::Float(_) => java_double(s).map(Value::Float),
                Value::Bool(_) => Some(Value::Bool(s.eq_ignore_ascii_case("true"))),
                _ => None,
            };
            match (converted, string_on_left) {
                (Some(c), true) => promote_owned(&c, other),
                (Some(c), false) => promote_owned(other, &c),
                (None, _) => Pair::Unlike,
            }
        }
        _ => Pair::Unlike,
    }
}

/// [`promote`] for converted scalars (never strings, so no borrow escapes).
fn promote_owned<'v>(l: &Value<'_>, r: &Value<'_>) -> Pair<'v> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Pair::Int(*a, *b),
        (Value::Int(a), Value::Float(b)) => Pair::Float(*a as f64, *b),
        (Value::Float(a), Value::Int(b)) => Pair::Float(*a, *b as f64),
        (Value::Float(a), Value::Float(b)) => Pair::Float(*a, *b),
        (Value::Bool(a), Value::Bool(b)) => Pair::Bool(*a, *b),
        _ => Pair::Unlike,
    }
}

/// Java's `Long.valueOf`: an optional sign and ASCII digits, nothing else.
fn java_long(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// Java's `Double.valueOf` for the forms people write: surrounding whitespace and control
/// characters ignored, optional sign, decimal digits with optional point and exponent, an
/// optional `f`/`d` suffix, `NaN` and `Infinity`.
fn java_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let magnitude = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let digits = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            let valid = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
            if !valid {
                return None;
            }
            digits.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn ordering_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// A comparison: unknown if either side is NULL, FALSE for unlike types (TRUE for `<>`).
/// Strings and booleans support only `=` and `<>`; ordering them is FALSE.
fn compare(op: CmpOp, l: &Value<'_>, r: &Value<'_>, convert_strings: bool) -> Option<bool> {
    if *l == Value::Null || *r == Value::Null {
        return None;
    }
    let equality = |eq: bool| match op {
        CmpOp::Eq => eq,
        CmpOp::Ne => !eq,
        _ => false,
    };
    Some(match promote(l, r, convert_strings) {
        Pair::Int(a, b) => ordering_holds(op, a.cmp(&b)),
        Pair::Float(a, b) => match a.partial_cmp(&b) {
            Some(o) => ordering_holds(op, o),
            None => op == CmpOp::Ne,
        },
        Pair::Str(a, b) => equality(a == b),
        Pair::Bool(a, b) => equality(a == b),
        Pair::Unlike => op == CmpOp::Ne,
    })
}

/// Arithmetic on a non-NULL left operand. Integers stay integers for `+ - *` (wrapping on
/// overflow, as Java's `long` does); `/` and `%` are float operations as in ActiveMQ, and unknown
/// for a zero divisor. `+` with a string on the left concatenates a string, integer or boolean.
fn arith<'a>(op: ArithOp, l: Value<'a>, r: Value<'a>) -> Value<'a> {
    if r == Value::Null {
        return Value::Null;
    }
    let float = |a: f64, b: f64| match op {
        ArithOp::Add => Value::Float(a + b),
        ArithOp::Sub => Value::Float(a - b),
        ArithOp::Mul => Value::Float(a * b),
        ArithOp::Div | ArithOp::Mod if b == 0.0 => Value::Null,
        ArithOp::Div => Value::Float(a / b),
        ArithOp::Mod => Value::Float(a % b),
    };
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => match op {
            ArithOp::Add => Value::Int(a.wrapping_add(b)),
            ArithOp::Sub => Value::Int(a.wrapping_sub(b)),
            ArithOp::Mul => Value::Int(a.wrapping_mul(b)),
            ArithOp::Div | ArithOp::Mod => float(a as f64, b as f64),
        },
        (Value::Int(a), Value::Float(b)) => float(a as f64, b),
        (Value::Float(a), Value::Int(b)) => float(a, b as f64),
        (Value::Float(a), Value::Float(b)) => float(a, b),
        (Value::Str(a), r) if op == ArithOp::Add => {
            let mut s = a.into_owned();
            match r {
                Value::Str(b) => s.push_str(&b),
                Value::Int(b) => s.push_str(&b.to_string()),
                Value::Bool(b) => s.push_str(if b { "true" } else { "false" }),
                _ => return Value::Null,
            }
            Value::Str(Cow::Owned(s))
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_forms() {
        assert_eq!(java_double("12.5"), Some(12.5));
        assert_eq!(java_double(" 12 "), Some(12.0));
        assert_eq!(java_double("-1e3"), Some(-1000.0));
        assert_eq!(java_double("+.5"), Some(0.5));
        assert_eq!(java_double("2f"), Some(2.0));
        assert_eq!(java_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(java_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(java_double("inf"), None);
        assert_eq!(java_double("12abc"), None);
        assert_eq!(java_double(""), None);
        assert_eq!(java_double("e5"), None);
    }

    #[test]
    fn java_long_forms() {
        assert_eq!(java_long("12"), Some(12));
        assert_eq!(java_long("+12"), Some(12));
        assert_eq!(java_long("-12"), Some(-12));
        assert_eq!(java_long(" 12"), None);
        assert_eq!(java_long("12.0"), None);
    }

    #[test]
    fn three_valued_connectives() {
        let (t, f, u) = (Some(true), Some(false), None);
        assert_eq!(and3(t, u), Value::Null);
        assert_eq!(and3(f, u), Value::Bool(false));
        assert_eq!(and3(u, f), Value::Bool(false));
        assert_eq!(or3(t, u), Value::Bool(true));
        assert_eq!(or3(u, f), Value::Null);
        assert_eq!(or3(f, f), Value::Bool(false));
    }

    #[test]
    fn integer_overflow_wraps_instead_of_panicking() {
        assert_eq!(
            arith(ArithOp::Add, Value::Int(i64::MAX), Value::Int(1)),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            arith(ArithOp::Mul, Value::Int(i64::MIN), Value::Int(-1)),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            arith(ArithOp::Div, Value::Int(7), Value::Int(2)),
            Value::Float(3.5)
        );
        assert_eq!(
            arith(ArithOp::Div, Value::Int(7), Value::Int(0)),
            Value::Null
        );
        assert_eq!(
            arith(ArithOp::Mod, Value::Int(7), Value::Int(0)),
            Value::Null
        );
        assert_eq!(
            arith(ArithOp::Mod, Value::Int(7), Value::Int(4)),
            Value::Float(3.0)
        );
    }
}
