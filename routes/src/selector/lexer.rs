//! Splits selector text into tokens, following ActiveMQ's `SelectorParser.jj` token rules.

use super::SelectorError;
use std::fmt;

/// Reserved words; matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
    Not,
    And,
    Or,
    Between,
    Like,
    Escape,
    In,
    Is,
    True,
    False,
    Null,
    Xpath,
    Xquery,
}

impl Kw {
    fn from_word(word: &str) -> Option<Kw> {
        const WORDS: [(&str, Kw); 13] = [
            ("NOT", Kw::Not),
            ("AND", Kw::And),
            ("OR", Kw::Or),
            ("BETWEEN", Kw::Between),
            ("LIKE", Kw::Like),
            ("ESCAPE", Kw::Escape),
            ("IN", Kw::In),
            ("IS", Kw::Is),
            ("TRUE", Kw::True),
            ("FALSE", Kw::False),
            ("NULL", Kw::Null),
            ("XPATH", Kw::Xpath),
            ("XQUERY", Kw::Xquery),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, kw)| *kw)
    }

    fn name(self) -> &'static str {
        match self {
            Kw::Not => "NOT",
            Kw::And => "AND",
            Kw::Or => "OR",
            Kw::Between => "BETWEEN",
            Kw::Like => "LIKE",
            Kw::Escape => "ESCAPE",
            Kw::In => "IN",
            Kw::Is => "IS",
            Kw::True => "TRUE",
            Kw::False => "FALSE",
            Kw::Null => "NULL",
            Kw::Xpath => "XPATH",
            Kw::Xquery => "XQUERY",
        }
    }
}

/// Punctuation and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Punct {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    LParen,
    RParen,
    Comma,
}

impl Punct {
    fn symbol(self) -> &'static str {
        match self {
            Punct::Eq => "=",
            Punct::Ne => "<>",
            Punct::Lt => "<",
            Punct::Le => "<=",
            Punct::Gt => ">",
            Punct::Ge => ">=",
            Punct::Plus => "+",
            Punct::Minus => "-",
            Punct::Star => "*",
            Punct::Slash => "/",
            Punct::Percent => "%",
            Punct::LParen => "(",
            Punct::RParen => ")",
            Punct::Comma => ",",
        }
    }
}

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Kw(Kw),
    /// A string literal, with `''` already decoded to `'`.
    Str(String),
    /// An integer literal's magnitude; `decimal` is false for hex and octal. Range checks are the
    /// parser's, since `-9223372036854775808` is only valid after a minus sign.
    Int {
        value: u64,
        decimal: bool,
    },
    Float(f64),
    Punct(Punct),
    Eof,
}

impl fmt::Display for Tok {
    /// How a token is named in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(name) => write!(f, "identifier '{name}'"),
            Tok::Kw(kw) => write!(f, "keyword {}", kw.name()),
            Tok::Str(s) => {
                let shown: String = s.chars().take(40).collect();
                let more = if shown.len() < s.len() { "..." } else { "" };
                write!(f, "string '{}{more}'", shown.replace('\'', "''"))
            }
            Tok::Int { value, .. } => write!(f, "number {value}"),
            Tok::Float(v) => write!(f, "number {v}"),
            Tok::Punct(p) => write!(f, "'{}'", p.symbol()),
            Tok::Eof => f.write_str("end of selector"),
        }
    }
}

/// A token and the 1-based character column it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) col: usize,
}

/// Tokenizes `text`; the result always ends with [`Tok::Eof`].
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, SelectorError> {
    Lexer {
        chars: text.chars().collect(),
        i: 0,
    }
    .run()
}

fn err(col: usize, message: impl Into<String>) -> SelectorError {
    SelectorError {
        position: col,
        message: message.into(),
    }
}

struct Lexer {
    chars: Vec<char>,
    /// Index into `chars` of the next character.
    i: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn col(&self) -> usize {
        self.i + 1
    }

    fn run(mut self) -> Result<Vec<Token>, SelectorError> {
        let mut out = Vec::new();
        loop {
            self.skip_blanks()?;
            let col = self.col();
            let Some(c) = self.peek() else {
                out.push(Token { tok: Tok::Eof, col });
                return Ok(out);
            };
            let tok = if c == '\'' {
                self.string()?
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number()?
            } else if is_ident_start(c) {
                self.word()
            } else {
                self.punct(c)?
            };
            out.push(Token { tok, col });
        }
    }

    /// Skips whitespace and comments.
    fn skip_blanks(&mut self) -> Result<(), SelectorError> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(' ' | '\t' | '\n' | '\r' | '\x0c'), _) => self.i += 1,
                (Some('-'), Some('-')) => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.i += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    let col = self.col();
                    self.i += 2;
                    loop {
                        match (self.peek(), self.peek_at(1)) {
                            (Some('*'), Some('/')) => {
                                self.i += 2;
                                break;
                            }
                            (Some(_), _) => self.i += 1,
                            (None, _) => {
                                return Err(err(col, "unterminated comment: missing '*/'"))
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// A string literal; the current character is the opening quote.
    fn string(&mut self) -> Result<Tok, SelectorError> {
        let col = self.col();
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                Some('\'') if self.peek_at(1) == Some('\'') => {
                    s.push('\'');
                    self.i += 2;
                }
                Some('\'') => {
                    self.i += 1;
                    return Ok(Tok::Str(s));
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
                None => {
                    return Err(err(
                        col,
                        "unterminated string literal: missing closing quote",
                    ))
                }
            }
        }
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| pred(*c)) {
            s.push(c);
            self.i += 1;
        }
        s
    }

    /// A numeric literal: hex `0x1F`, octal `017`, decimal `17` / `17L`, or a float `1.5`, `1.`,
    /// `.5`, `1e3`, `1.5E-3`.
    fn number(&mut self) -> Result<Tok, SelectorError> {
        let col = self.col();
        if self.peek() == Some('0')
            && matches!(self.peek_at(1), Some('x' | 'X'))
            && self.peek_at(2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            self.i += 2;
            let digits = self.take_while(|c| c.is_ascii_hexdigit());
            return match u64::from_str_radix(&digits, 16) {
                Ok(value) if i64::try_from(value).is_ok() => Ok(Tok::Int {
                    value,
                    decimal: false,
                }),
                _ => Err(out_of_range(col)),
            };
        }
        let mut text = self.take_while(|c| c.is_ascii_digit());
        let mut float = false;
        if self.peek() == Some('.') {
            float = true;
            self.i += 1;
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if self.peek_at(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                for _ in 0..digit_at {
                    if let Some(c) = self.peek() {
                        text.push(c);
                    }
                    self.i += 1;
                }
                text.push_str(&self.take_while(|c| c.is_ascii_digit()));
            }
        }
        if float {
            return text
                .parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| err(col, format!("invalid number '{text}'")));
        }
        if text.starts_with('0') {
            if text.chars().any(|c| !('0'..='7').contains(&c)) {
                return Err(err(
                    col,
                    format!("invalid octal literal '{text}' (a leading 0 means octal)"),
                ));
            }
            return match u64::from_str_radix(&text, 8) {
                Ok(value) if i64::try_from(value).is_ok() => Ok(Tok::Int {
                    value,
                    decimal: false,
                }),
                _ => Err(out_of_range(col)),
            };
        }
        if matches!(self.peek(), Some('l' | 'L')) {
            self.i += 1;
        }
        text.parse::<u64>()
            .map(|value| Tok::Int {
                value,
                decimal: true,
            })
            .map_err(|_| out_of_range(col))
    }

    /// An identifier or keyword.
    fn word(&mut self) -> Tok {
        let word = self.take_while(is_ident_part);
        match Kw::from_word(&word) {
            Some(kw) => Tok::Kw(kw),
            None => Tok::Ident(word),
        }
    }

    fn punct(&mut self, c: char) -> Result<Tok, SelectorError> {
        let col = self.col();
        let next = self.peek_at(1);
        let (p, len) = match (c, next) {
            ('=', _) => (Punct::Eq, 1),
            ('<', Some('>')) => (Punct::Ne, 2),
            ('<', Some('=')) => (Punct::Le, 2),
            ('<', _) => (Punct::Lt, 1),
            ('>', Some('=')) => (Punct::Ge, 2),
            ('>', _) => (Punct::Gt, 1),
            ('+', _) => (Punct::Plus, 1),
            ('-', _) => (Punct::Minus, 1),
            ('*', _) => (Punct::Star, 1),
            ('/', _) => (Punct::Slash, 1),
            ('%', _) => (Punct::Percent, 1),
            ('(', _) => (Punct::LParen, 1),
            (')', _) => (Punct::RParen, 1),
            (',', _) => (Punct::Comma, 1),
            ('!', Some('=')) => return Err(err(col, "unexpected '!='; use '<>' for not-equal")),
            ('"', _) => {
                return Err(err(
                    col,
                    "unexpected '\"'; string literals use single quotes ('like this')",
                ))
            }
            _ => {
                return Err(err(
                    col,
                    format!("unexpected character '{}'", c.escape_debug()),
                ))
            }
        };
        self.i += len;
        Ok(Tok::Punct(p))
    }
}

fn out_of_range(col: usize) -> SelectorError {
    err(
        col,
        "integer literal out of range (the largest is 9223372036854775807)",
    )
}

/// Identifier start: a letter (Unicode letters are accepted, as Java identifiers allow), `_` or
/// `$`.
fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn one(text: &str) -> Tok {
        let mut t = toks(text);
        assert_eq!(t.len(), 2, "{text:?} gave {t:?}");
        t.remove(0)
    }

    fn int(value: u64, decimal: bool) -> Tok {
        Tok::Int { value, decimal }
    }

    #[test]
    fn integers() {
        assert_eq!(one("0"), int(0, false));
        assert_eq!(one("42"), int(42, true));
        assert_eq!(one("42L"), int(42, true));
        assert_eq!(one("42l"), int(42, true));
        assert_eq!(one("0x1F"), int(31, false));
        assert_eq!(one("0XfF"), int(255, false));
        assert_eq!(one("017"), int(15, false));
        assert_eq!(one("9223372036854775807"), int(i64::MAX as u64, true));
        assert_eq!(one("9223372036854775808"), int(1 << 63, true));
        assert!(tokenize("18446744073709551616").is_err());
        assert!(tokenize("0x8000000000000000").is_err());
        assert_eq!(tokenize("089").unwrap_err().position, 1);
    }

    #[test]
    fn floats() {
        for (text, v) in [
            ("1.5", 1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("5E3", 5000.0),
            ("5e+3", 5000.0),
            ("1.5E-3", 0.0015),
            ("1.E1", 10.0),
            (".1E1", 1.0),
            ("007.5", 7.5),
        ] {
            assert_eq!(one(text), Tok::Float(v), "{text}");
        }
        // An `e` that does not start an exponent is an identifier.
        assert_eq!(
            toks("5e"),
            vec![int(5, true), Tok::Ident("e".into()), Tok::Eof]
        );
    }

    #[test]
    fn strings() {
        assert_eq!(one("'abc'"), Tok::Str("abc".into()));
        assert_eq!(one("''"), Tok::Str(String::new()));
        assert_eq!(one("'it''s'"), Tok::Str("it's".into()));
        assert_eq!(one("'''quoted'''"), Tok::Str("'quoted'".into()));
        assert_eq!(one("'héllo'"), Tok::Str("héllo".into()));
        let e = tokenize("a = 'abc").unwrap_err();
        assert_eq!(e.position, 5);
        assert!(e.message.contains("unterminated string"));
    }

    #[test]
    fn keywords_are_case_insensitive_identifiers_are_not() {
        assert_eq!(one("and"), Tok::Kw(Kw::And));
        assert_eq!(one("AnD"), Tok::Kw(Kw::And));
        assert_eq!(one("between"), Tok::Kw(Kw::Between));
        assert_eq!(one("Foo_$1"), Tok::Ident("Foo_$1".into()));
        assert_eq!(one("_x"), Tok::Ident("_x".into()));
        assert_eq!(one("$x"), Tok::Ident("$x".into()));
        assert_eq!(one("andy"), Tok::Ident("andy".into()));
    }

    #[test]
    fn operators_and_columns() {
        let t = tokenize("a<>b <= c>=d<e>f").unwrap();
        let puncts: Vec<(Tok, usize)> = t
            .into_iter()
            .filter(|t| matches!(t.tok, Tok::Punct(_)))
            .map(|t| (t.tok, t.col))
            .collect();
        assert_eq!(
            puncts,
            vec![
                (Tok::Punct(Punct::Ne), 2),
                (Tok::Punct(Punct::Le), 6),
                (Tok::Punct(Punct::Ge), 10),
                (Tok::Punct(Punct::Lt), 13),
                (Tok::Punct(Punct::Gt), 15),
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let t = tokenize("'ééé' = x").unwrap();
        assert_eq!(t.get(1).map(|t| t.col), Some(7));
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            toks("a /* c */ = -- note\n 1"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct(Punct::Eq),
                int(1, true),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("a -- trailing"),
            vec![Tok::Ident("a".into()), Tok::Eof]
        );
        assert_eq!(tokenize("a /* open").unwrap_err().position, 3);
    }

    #[test]
    fn bad_characters() {
        let e = tokenize("a != 1").unwrap_err();
        assert_eq!(e.position, 3);
        assert!(e.message.contains("<>"));
        assert!(tokenize("a = \"x\"")
            .unwrap_err()
            .message
            .contains("single quotes"));
        assert_eq!(tokenize("a # 1").unwrap_err().position, 3);
    }
}
