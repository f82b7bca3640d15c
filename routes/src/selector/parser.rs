//! Recursive-descent parser from tokens to [`Expr`].
//!
//! Grammar, loosest first (the ActiveMQ grammar, except that `NOT` sits between `AND` and the
//! comparisons as JMS specifies):
//!
//! ```text
//! selector := or EOF
//! or       := and (OR and)*
//! and      := not (AND not)*
//! not      := NOT not | eq
//! eq       := cmp ( ('=' | '<>') cmp | IS [NOT] NULL )*
//! cmp      := add ( ('>' | '>=' | '<' | '<=') add
//!                 | [NOT] LIKE string [ESCAPE string]
//!                 | [NOT] BETWEEN add AND add
//!                 | [NOT] IN '(' string (',' string)* ')' )*
//! add      := mul (('+' | '-') mul)*
//! mul      := unary (('*' | '/' | '%') unary)*
//! unary    := '+' unary | '-' unary | primary
//! primary  := literal | identifier | '(' or ')'
//! ```
//!
//! Like ActiveMQ, some type errors are caught while parsing: operands of `AND`, `OR` and `NOT`
//! (and the whole selector) must be conditions or bare identifiers; `<`, `>`, `<=`, `>=` and
//! `BETWEEN` take no string, boolean or NULL literal and no condition; `=` and `<>` take no
//! `NULL` literal; `IN` needs an identifier on its left.

use super::ast::{ArithOp, CmpOp, Expr, Field, Literal};
use super::lexer::{tokenize, Kw, Punct, Tok, Token};
use super::like::LikePattern;
use super::{SelectorError, MAX_DEPTH};

/// Parses a whole selector (without any `convert_string_expressions:` prefix).
pub(super) fn parse(text: &str) -> Result<Expr, SelectorError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        nest: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(err(p.col(), "selector is empty"));
    }
    let top = p.expr(P_OR)?;
    if p.peek() != &Tok::Eof {
        return Err(err(
            p.col(),
            format!(
                "unexpected {} (expected an operator, AND, OR, ')' or the end of the selector)",
                p.peek()
            ),
        ));
    }
    Ok(*p.condition(top)?.expr)
}

fn err(col: usize, message: impl Into<String>) -> SelectorError {
    SelectorError {
        position: col,
        message: message.into(),
    }
}

/// Binding strengths, loosest first.
const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_NOT: u8 = 3;
const P_EQ: u8 = 4;
const P_CMP: u8 = 5;
const P_ADD: u8 = 6;
const P_MUL: u8 = 7;
const P_UNARY: u8 = 8;

/// What an expression is, statically, for ActiveMQ's parse-time checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A condition: comparison, logic, `TRUE`, `FALSE` or `NULL`.
    Condition,
    /// A bare identifier, which may be used as a condition.
    Identifier,
    /// Anything else: arithmetic, string and numeric literals.
    Value,
}

/// A parsed sub-expression with what the parser needs to know about it.
struct Node {
    /// Boxed so that the `Result<Node, _>` values on the recursion path stay small.
    expr: Box<Expr>,
    kind: Kind,
    /// Column where the sub-expression starts.
    col: usize,
    /// Height of `expr` as a tree.
    height: usize,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current recursion depth through `NOT`, unary signs and parentheses.
    nest: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek2(&self) -> &Tok {
        self.tokens.get(self.pos + 1).map_or(&Tok::Eof, |t| &t.tok)
    }

    /// Column of the next token.
    fn col(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.col)
    }

    /// Takes the next token (the final `Eof` is never consumed).
    fn next(&mut self) -> Token {
        match self.tokens.get_mut(self.pos) {
            Some(t) if t.tok != Tok::Eof => {
                self.pos += 1;
                let col = t.col;
                Token {
                    tok: std::mem::replace(&mut t.tok, Tok::Eof),
                    col,
                }
            }
            _ => Token {
                tok: Tok::Eof,
                col: self.col(),
            },
        }
    }

    fn at_kw(&self, kw: Kw) -> bool {
        self.peek() == &Tok::Kw(kw)
    }

    fn eat_kw(&mut self, kw: Kw) -> bool {
        let at = self.at_kw(kw);
        if at {
            self.pos += 1;
        }
        at
    }

    fn at_punct(&self, p: Punct) -> bool {
        self.peek() == &Tok::Punct(p)
    }

    fn expect_kw(&mut self, kw: Kw, what: &str) -> Result<(), SelectorError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(err(
                self.col(),
                format!("expected {what}, found {}", self.peek()),
            ))
        }
    }

    fn expect_punct(&mut self, p: Punct, what: &str) -> Result<(), SelectorError> {
        if self.at_punct(p) {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(
                self.col(),
                format!("expected {what}, found {}", self.peek()),
            ))
        }
    }

    /// A string literal operand of LIKE, ESCAPE or IN.
    fn expect_string(&mut self, what: &str) -> Result<(String, usize), SelectorError> {
        let col = self.col();
        match self.peek() {
            Tok::Str(_) => match self.next().tok {
                Tok::Str(s) => Ok((s, col)),
                _ => Err(err(col, format!("expected {what}"))),
            },
            other => Err(err(
                col,
                format!("{what} must be a string literal, found {other}"),
            )),
        }
    }

    /// Enters one level of `NOT`, sign or parenthesis nesting.
    fn enter(&mut self, col: usize) -> Result<(), SelectorError> {
        self.nest += 1;
        if self.nest > MAX_DEPTH {
            return Err(too_deep(col));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nest = self.nest.saturating_sub(1);
    }

    /// Builds a node whose deepest child has height `child_height`.
    fn node(
        expr: Expr,
        kind: Kind,
        col: usize,
        child_height: usize,
    ) -> Result<Node, SelectorError> {
        let height = child_height + 1;
        if height > MAX_DEPTH {
            return Err(too_deep(col));
        }
        Ok(Node {
            expr: Box::new(expr),
            kind,
            col,
            height,
        })
    }

    /// Checks that `n` can be used as a condition, wrapping a bare identifier in a boolean cast.
    fn condition(&self, n: Node) -> Result<Node, SelectorError> {
        match n.kind {
            Kind::Condition => Ok(n),
            Kind::Identifier => {
                Self::node(Expr::BoolCast(n.expr), Kind::Condition, n.col, n.height)
            }
            Kind::Value => Err(err(
                n.col,
                "expression is not a condition (expected a comparison, a boolean identifier, TRUE or FALSE)",
            )),
        }
    }

    /// Parses an expression whose infix operators all bind at least as tightly as `min`.
    ///
    /// Precedence climbing rather than one function per grammar level, so each parenthesis
    /// costs two or three stack frames and [`MAX_DEPTH`] levels fit comfortably on a small
    /// thread stack.
    fn expr(&mut self, min: u8) -> Result<Node, SelectorError> {
        let mut left = self.prefix(min)?;
        while let Some(prec) = self.infix_prec() {
            if prec < min {
                break;
            }
            left = self.infix(left, prec)?;
        }
        Ok(left)
    }

    /// Precedence of the infix operator at the cursor, if there is one.
    fn infix_prec(&self) -> Option<u8> {
        Some(match (self.peek(), self.peek2()) {
            (Tok::Kw(Kw::Or), _) => P_OR,
            (Tok::Kw(Kw::And), _) => P_AND,
            (Tok::Punct(Punct::Eq | Punct::Ne) | Tok::Kw(Kw::Is), _) => P_EQ,
            (Tok::Punct(Punct::Lt | Punct::Le | Punct::Gt | Punct::Ge), _)
            | (Tok::Kw(Kw::Like | Kw::Between | Kw::In), _)
            | (Tok::Kw(Kw::Not), Tok::Kw(Kw::Like | Kw::Between | Kw::In)) => P_CMP,
            (Tok::Punct(Punct::Plus | Punct::Minus), _) => P_ADD,
            (Tok::Punct(Punct::Star | Punct::Slash | Punct::Percent), _) => P_MUL,
            _ => return None,
        })
    }

    /// Parses the infix operator at the cursor (of precedence `prec`) and its right side.
    /// Kept small (details live in non-recursive helpers) because it is on the recursion path.
    fn infix(&mut self, left: Node, prec: u8) -> Result<Node, SelectorError> {
        let Token { tok, col } = self.next();
        match tok {
            Tok::Kw(kw @ (Kw::Or | Kw::And)) => {
                let right = self.expr(prec + 1)?;
                self.logic(kw, left, right)
            }
            Tok::Kw(Kw::Is) => self.is_null(left),
            Tok::Kw(Kw::Not) => match self.next().tok {
                Tok::Kw(kw) => self.postfix(left, kw, true),
                _ => Err(err(col, "expected LIKE, BETWEEN or IN after NOT")),
            },
            Tok::Kw(kw) => self.postfix(left, kw, false),
            Tok::Punct(p) => {
                let right = self.expr(prec + 1)?;
                binary(p, col, left, right)
            }
            other => Err(unexpected(col, &other)),
        }
    }

    /// After `IS`.
    fn is_null(&mut self, left: Node) -> Result<Node, SelectorError> {
        let negated = self.eat_kw(Kw::Not);
        let expected = if negated {
            "NULL after IS NOT"
        } else {
            "NULL or NOT NULL after IS"
        };
        self.expect_kw(Kw::Null, expected)?;
        Self::node(
            Expr::IsNull {
                value: left.expr,
                negated,
            },
            Kind::Condition,
            left.col,
            left.height,
        )
    }

    /// After `[NOT] LIKE`, `[NOT] BETWEEN` or `[NOT] IN`.
    fn postfix(&mut self, left: Node, kw: Kw, negated: bool) -> Result<Node, SelectorError> {
        match kw {
            Kw::Like => self.like(left, negated),
            Kw::Between => self.between(left, negated),
            _ => self.in_list(left, negated),
        }
    }

    /// `left AND right` or `left OR right`, flattened into an existing chain on the left.
    fn logic(&self, kw: Kw, left: Node, right: Node) -> Result<Node, SelectorError> {
        let left = self.condition(left)?;
        let right = self.condition(right)?;
        let (items, child_height) = match (kw, *left.expr) {
            (Kw::Or, Expr::Or(mut items)) | (Kw::And, Expr::And(mut items)) => {
                items.push(*right.expr);
                (items, left.height.saturating_sub(1).max(right.height))
            }
            (_, l) => (vec![l, *right.expr], left.height.max(right.height)),
        };
        let expr = if kw == Kw::Or {
            Expr::Or(items)
        } else {
            Expr::And(items)
        };
        Self::node(expr, Kind::Condition, left.col, child_height)
    }

    /// A prefix operator and its operand, or a primary expression. `NOT` is allowed only where
    /// a condition may start (`min` no tighter than `NOT`). A dispatcher only, so that its stack
    /// frame stays small.
    fn prefix(&mut self, min: u8) -> Result<Node, SelectorError> {
        match self.peek() {
            Tok::Kw(Kw::Not) if min <= P_NOT => self.not_prefix(),
            Tok::Punct(Punct::Plus) => self.plus(),
            Tok::Punct(Punct::Minus) => self.minus(),
            Tok::Punct(Punct::LParen) => self.parens(),
            _ => self.primary(),
        }
    }

    /// `NOT condition`.
    fn not_prefix(&mut self) -> Result<Node, SelectorError> {
        let col = self.col();
        self.pos += 1;
        self.enter(col)?;
        let inner = self.expr(P_NOT)?;
        self.leave();
        let inner = self.condition(inner)?;
        Self::node(Expr::Not(inner.expr), Kind::Condition, col, inner.height)
    }

    /// Unary plus changes nothing, not even whether an identifier can be a condition.
    fn plus(&mut self) -> Result<Node, SelectorError> {
        let col = self.col();
        self.pos += 1;
        self.enter(col)?;
        let mut inner = self.prefix(P_UNARY)?;
        self.leave();
        inner.col = col;
        Ok(inner)
    }

    /// Unary minus; negated numeric literals are folded into literals.
    fn minus(&mut self) -> Result<Node, SelectorError> {
        let col = self.col();
        self.pos += 1;
        // -9223372036854775808 is the one literal that only exists negated.
        if self.peek()
            == (&Tok::Int {
                value: 1 << 63,
                decimal: true,
            })
        {
            self.pos += 1;
            return Self::node(Expr::Lit(Literal::Int(i64::MIN)), Kind::Value, col, 0);
        }
        self.enter(col)?;
        let inner = self.prefix(P_UNARY)?;
        self.leave();
        let expr = match *inner.expr {
            Expr::Lit(Literal::Int(v)) => Expr::Lit(Literal::Int(v.wrapping_neg())),
            Expr::Lit(Literal::Float(v)) => Expr::Lit(Literal::Float(-v)),
            other => Expr::Neg(Box::new(other)),
        };
        Self::node(expr, Kind::Value, col, inner.height)
    }

    /// `( expression )`.
    fn parens(&mut self) -> Result<Node, SelectorError> {
        let col = self.col();
        self.pos += 1;
        self.enter(col)?;
        let mut inner = self.expr(P_OR)?;
        if !self.at_punct(Punct::RParen) {
            return Err(unclosed(self.col(), col, self.peek()));
        }
        self.pos += 1;
        self.leave();
        inner.col = col;
        Ok(inner)
    }

    /// After `[NOT] LIKE`.
    fn like(&mut self, value: Node, negated: bool) -> Result<Node, SelectorError> {
        let (pattern, _) = self.expect_string("LIKE pattern")?;
        let escape = if self.eat_kw(Kw::Escape) {
            let (e, col) = self.expect_string("ESCAPE character")?;
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => {
                    return Err(err(
                        col,
                        format!(
                            "ESCAPE must be exactly one character, found '{}'",
                            e.replace('\'', "''")
                        ),
                    ))
                }
            }
        } else {
            None
        };
        Self::node(
            Expr::Like {
                value: value.expr,
                pattern: LikePattern::compile(&pattern, escape),
                negated,
            },
            Kind::Condition,
            value.col,
            value.height,
        )
    }

    /// After `[NOT] BETWEEN`.
    fn between(&mut self, value: Node, negated: bool) -> Result<Node, SelectorError> {
        let symbol = if negated { "NOT BETWEEN" } else { "BETWEEN" };
        let low = self.expr(P_ADD)?;
        self.expect_kw(Kw::And, "AND between the bounds of BETWEEN")?;
        let high = self.expr(P_ADD)?;
        for n in [&value, &low, &high] {
            check_ordering_operand(n, symbol)?;
        }
        let height = value.height.max(low.height).max(high.height);
        Self::node(
            Expr::Between {
                value: value.expr,
                low: low.expr,
                high: high.expr,
                negated,
            },
            Kind::Condition,
            value.col,
            height,
        )
    }

    /// After `[NOT] IN`.
    fn in_list(&mut self, value: Node, negated: bool) -> Result<Node, SelectorError> {
        let field = match *value.expr {
            Expr::Field(f) if value.kind == Kind::Identifier => f,
            _ => return Err(err(value.col, "the left side of IN must be an identifier")),
        };
        self.expect_punct(Punct::LParen, "'(' after IN")?;
        let mut list = vec![self.expect_string("IN list item")?.0];
        while self.at_punct(Punct::Comma) {
            self.pos += 1;
            list.push(self.expect_string("IN list item")?.0);
        }
        self.expect_punct(Punct::RParen, "',' or ')' in the IN list")?;
        list.sort_unstable();
        list.dedup();
        Self::node(
            Expr::In {
                field,
                list,
                negated,
            },
            Kind::Condition,
            value.col,
            value.height,
        )
    }

    fn primary(&mut self) -> Result<Node, SelectorError> {
        let Token { tok, col } = self.next();
        let (expr, kind) = match tok {
            Tok::Str(s) => (Expr::Lit(Literal::Str(s)), Kind::Value),
            Tok::Int { value, .. } => match i64::try_from(value) {
                Ok(v) => (Expr::Lit(Literal::Int(v)), Kind::Value),
                Err(_) => {
                    return Err(err(
                        col,
                        "integer literal out of range (the largest is 9223372036854775807)",
                    ))
                }
            },
            Tok::Float(v) => (Expr::Lit(Literal::Float(v)), Kind::Value),
            Tok::Kw(Kw::True) => (Expr::Lit(Literal::Bool(true)), Kind::Condition),
            Tok::Kw(Kw::False) => (Expr::Lit(Literal::Bool(false)), Kind::Condition),
            Tok::Kw(Kw::Null) => (Expr::Lit(Literal::Null), Kind::Condition),
            Tok::Ident(name) => (Expr::Field(Field::resolve(name)), Kind::Identifier),
            Tok::Kw(Kw::Xpath | Kw::Xquery) => {
                return Err(err(col, "XPATH and XQUERY selectors are not supported"))
            }
            other => {
                return Err(err(
                    col,
                    format!("expected a value, identifier or '(', found {other}"),
                ))
            }
        };
        Self::node(expr, kind, col, 0)
    }
}

#[cold]
fn too_deep(col: usize) -> SelectorError {
    err(
        col,
        format!("selector is nested too deeply (the limit is {MAX_DEPTH} levels)"),
    )
}

#[cold]
fn unexpected(col: usize, tok: &Tok) -> SelectorError {
    err(col, format!("unexpected {tok}"))
}

#[cold]
fn unclosed(col: usize, open_col: usize, found: &Tok) -> SelectorError {
    err(
        col,
        format!("expected ')' to close '(' at column {open_col}, found {found}"),
    )
}

/// A binary operator whose operands are both parsed: comparisons get ActiveMQ's operand checks.
fn binary(p: Punct, col: usize, left: Node, right: Node) -> Result<Node, SelectorError> {
    let op = match p {
        Punct::Eq | Punct::Ne => {
            let op = if p == Punct::Eq { CmpOp::Eq } else { CmpOp::Ne };
            check_equality_operand(&left, op)?;
            check_equality_operand(&right, op)?;
            if let (Expr::Lit(l), Expr::Lit(r)) = (&*left.expr, &*right.expr) {
                if matches!(l, Literal::Bool(_)) != matches!(r, Literal::Bool(_)) {
                    return Err(err(
                        left.col,
                        format!(
                            "a boolean literal cannot be compared with a non-boolean literal using {}",
                            op.symbol()
                        ),
                    ));
                }
            }
            return binary_cmp(op, left, right);
        }
        Punct::Lt | Punct::Le | Punct::Gt | Punct::Ge => {
            let op = match p {
                Punct::Lt => CmpOp::Lt,
                Punct::Le => CmpOp::Le,
                Punct::Gt => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            check_ordering_operand(&left, op.symbol())?;
            check_ordering_operand(&right, op.symbol())?;
            return binary_cmp(op, left, right);
        }
        Punct::Plus => ArithOp::Add,
        Punct::Minus => ArithOp::Sub,
        Punct::Star => ArithOp::Mul,
        Punct::Slash => ArithOp::Div,
        Punct::Percent => ArithOp::Mod,
        other => return Err(unexpected(col, &Tok::Punct(other))),
    };
    let height = left.height.max(right.height);
    Parser::node(
        Expr::Arith(op, left.expr, right.expr),
        Kind::Value,
        left.col,
        height,
    )
}

fn binary_cmp(op: CmpOp, left: Node, right: Node) -> Result<Node, SelectorError> {
    let height = left.height.max(right.height);
    Parser::node(
        Expr::Cmp(op, left.expr, right.expr),
        Kind::Condition,
        left.col,
        height,
    )
}

/// `=` and `<>` do not take the NULL literal (ActiveMQ's `checkEqualOperand`).
fn check_equality_operand(n: &Node, op: CmpOp) -> Result<(), SelectorError> {
    if *n.expr == Expr::Lit(Literal::Null) {
        let instead = if op == CmpOp::Eq {
            "IS NULL"
        } else {
            "IS NOT NULL"
        };
        return Err(err(
            n.col,
            format!(
                "NULL cannot be compared with {}; use {instead}",
                op.symbol()
            ),
        ));
    }
    Ok(())
}

/// Only numbers can be ordered: no string, boolean or NULL literal and no condition
/// (ActiveMQ's `checkLessThanOperand`).
fn check_ordering_operand(n: &Node, symbol: &str) -> Result<(), SelectorError> {
    let what = match &*n.expr {
        Expr::Lit(Literal::Int(_) | Literal::Float(_)) => return Ok(()),
        Expr::Lit(Literal::Str(_)) => "a string literal (strings support only = and <>)",
        Expr::Lit(Literal::Bool(_)) => "a boolean literal (booleans support only = and <>)",
        Expr::Lit(Literal::Null) => "NULL (use IS NULL)",
        _ if n.kind == Kind::Condition => "a condition",
        _ => return Ok(()),
    };
    Err(err(n.col, format!("{what} cannot be used with {symbol}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Expr {
        match parse(text) {
            Ok(e) => e,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn field(name: &str) -> Box<Expr> {
        Box::new(Expr::Field(Field::resolve(name.to_string())))
    }

    fn int(v: i64) -> Box<Expr> {
        Box::new(Expr::Lit(Literal::Int(v)))
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = parse_ok("a = 1 OR b = 2 AND c = 3");
        let expected = Expr::Or(vec![
            Expr::Cmp(CmpOp::Eq, field("a"), int(1)),
            Expr::And(vec![
                Expr::Cmp(CmpOp::Eq, field("b"), int(2)),
                Expr::Cmp(CmpOp::Eq, field("c"), int(3)),
            ]),
        ]);
        assert_eq!(e, expected);
    }

    #[test]
    fn not_binds_looser_than_comparison() {
        let e = parse_ok("NOT a = 1");
        assert_eq!(
            e,
            Expr::Not(Box::new(Expr::Cmp(CmpOp::Eq, field("a"), int(1))))
        );
    }

    #[test]
    fn parentheses_around_terms_do_not_change_the_tree() {
        let plain = parse_ok("x = 1 and y = 2");
        assert_eq!(parse_ok("(x = 1) and (y = 2)"), plain);
        assert_eq!(parse_ok("((x = 1) and (y = 2))"), plain);
    }

    #[test]
    fn arithmetic_precedence_and_left_associativity() {
        let e = parse_ok("a - 2 - 3 * 4 = 0");
        let lhs = Expr::Arith(
            ArithOp::Sub,
            Box::new(Expr::Arith(ArithOp::Sub, field("a"), int(2))),
            Box::new(Expr::Arith(ArithOp::Mul, int(3), int(4))),
        );
        assert_eq!(e, Expr::Cmp(CmpOp::Eq, Box::new(lhs), int(0)));
    }

    #[test]
    fn negative_literals_fold() {
        assert_eq!(
            parse_ok("a = -5"),
            Expr::Cmp(CmpOp::Eq, field("a"), int(-5))
        );
        assert_eq!(
            parse_ok("a = -9223372036854775808"),
            Expr::Cmp(CmpOp::Eq, field("a"), int(i64::MIN))
        );
        assert!(parse("a = 9223372036854775808").is_err());
        assert_eq!(
            parse_ok("a = - -5"),
            Expr::Cmp(CmpOp::Eq, field("a"), int(5))
        );
    }

    #[test]
    fn bare_identifier_becomes_a_boolean_cast() {
        assert_eq!(parse_ok("flag"), Expr::BoolCast(field("flag")));
        assert_eq!(parse_ok("(flag)"), Expr::BoolCast(field("flag")));
        assert_eq!(parse_ok("+flag"), Expr::BoolCast(field("flag")));
    }

    #[test]
    fn headers_resolve_case_sensitively() {
        assert_eq!(
            parse_ok("JMSType = 'x'"),
            Expr::Cmp(
                CmpOp::Eq,
                Box::new(Expr::Field(Field::Type)),
                Box::new(Expr::Lit(Literal::Str("x".into())))
            )
        );
        assert_eq!(
            parse_ok("jmstype = 'x'"),
            Expr::Cmp(
                CmpOp::Eq,
                Box::new(Expr::Field(Field::Property("jmstype".into()))),
                Box::new(Expr::Lit(Literal::Str("x".into())))
            )
        );
    }

    #[test]
    fn long_flat_chains_are_fine() {
        let text = (0..5000)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let ok = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        let nots = format!("{}a", "NOT ".repeat(100_000));
        assert!(parse(&nots)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        let chain = format!("a = 1{}", " + 1".repeat(1000));
        assert!(parse(&chain)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
    }
}
