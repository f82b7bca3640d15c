//! Property tests for JMS selectors: the parser never panics, evaluation never panics and is
//! consistent under `NOT`, and `LIKE` agrees with a simple reference matcher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use routes::selector::Selector;
use routes::{Message, PropertyValue};

const TOKENS: &[&str] = &[
    "a",
    "b",
    "s",
    "f",
    "JMSPriority",
    "JMSType",
    "JMSXDeliveryCount",
    "JMSRedelivered",
    "1",
    "0",
    "2.5",
    "0x1F",
    "017",
    "9223372036854775808",
    "1e3",
    "'x'",
    "'%a_'",
    "''",
    "'",
    "(",
    ")",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    ",",
    "AND",
    "OR",
    "NOT",
    "LIKE",
    "ESCAPE",
    "'!'",
    "BETWEEN",
    "IN",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "--",
    "/*",
    "*/",
    "\n",
    "é",
    "!",
];

fn message() -> impl Strategy<Value = Message> {
    (
        any::<i32>(),
        any::<bool>(),
        "[a-c%_]{0,4}",
        prop::option::of(any::<f64>()),
        0u8..10,
    )
        .prop_map(|(a, b, s, f, priority)| {
            let mut m = Message {
                priority,
                message_type: Some("x".into()),
                ..Message::default()
            };
            m.properties.insert("a".into(), PropertyValue::Int(a));
            m.properties.insert("b".into(), PropertyValue::Bool(b));
            m.properties.insert("s".into(), PropertyValue::String(s));
            if let Some(f) = f {
                m.properties.insert("f".into(), PropertyValue::Double(f));
            }
            m
        })
}

/// Reference `LIKE` with ActiveMQ's escape rules: escape + (`%` | `_` | escape) is literal,
/// the escape character anywhere else is ordinary. Dynamic programming over (pattern, text).
fn reference_like(pattern: &str, escape: char, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Lit(char),
        One,
        Many,
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if c == escape
            && p.get(i + 1)
                .is_some_and(|&n| matches!(n, '%' | '_') || n == escape)
        {
            toks.push(T::Lit(p[i + 1]));
            i += 2;
            continue;
        }
        toks.push(match c {
            '%' => T::Many,
            '_' => T::One,
            c => T::Lit(c),
        });
        i += 1;
    }
    let t: Vec<char> = text.chars().collect();
    // ok[j] = pattern prefix so far matches t[..j]
    let mut ok = vec![false; t.len() + 1];
    ok[0] = true;
    for tok in toks {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match tok {
                T::Many => ok[j] || (j > 0 && next[j - 1]),
                T::One => j > 0 && ok[j - 1],
                T::Lit(c) => j > 0 && ok[j - 1] && t[j - 1] == c,
            };
        }
        ok = next;
    }
    ok[t.len()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = Selector::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_printable_text(text in "[ -~]{0,64}") {
        let _ = Selector::parse(&text);
    }

    #[test]
    fn token_soup_parses_or_fails_cleanly_and_not_is_consistent(
        toks in prop::collection::vec(prop::sample::select(TOKENS), 0..24),
        msg in message(),
        delivery in 1u32..4,
    ) {
        let text = toks.join(" ");
        match Selector::parse(&text) {
            Ok(sel) => {
                prop_assert_eq!(sel.text(), text.as_str());
                let yes = sel.matches(&msg, delivery);
                // The negation of a valid selector may still be invalid (e.g. a comment
                // swallowing the closing parenthesis); when it parses, both cannot be TRUE.
                if let Ok(not) = Selector::parse(&format!("NOT ({text}\n)")) {
                    prop_assert!(!(yes && not.matches(&msg, delivery)), "{text:?}");
                }
            }
            Err(e) => {
                prop_assert!(e.position >= 1 && e.position <= text.chars().count() + 1, "{text:?}: {e}");
                prop_assert!(e.to_string().starts_with("invalid selector at column "));
            }
        }
    }

    #[test]
    fn like_agrees_with_reference(pattern in "[ab%_!é]{0,8}", text in "[ab%_!é]{0,10}") {
        let sel = Selector::parse(&format!("s LIKE '{pattern}' ESCAPE '!'")).unwrap();
        let mut m = Message::default();
        m.properties.insert("s".into(), PropertyValue::String(text.clone()));
        prop_assert_eq!(sel.matches(&m, 1), reference_like(&pattern, '!', &text), "{:?} LIKE {:?}", text, pattern);
    }

    #[test]
    fn integer_comparisons_agree_with_rust(a in any::<i64>(), b in any::<i64>()) {
        let mut m = Message::default();
        m.properties.insert("x".into(), PropertyValue::Long(a));
        let checks = [
            ("=", a == b), ("<>", a != b), ("<", a < b), ("<=", a <= b), (">", a > b), (">=", a >= b),
        ];
        for (op, want) in checks {
            let sel = Selector::parse(&format!("x {op} {b}")).unwrap();
            prop_assert_eq!(sel.matches(&m, 1), want, "{} {} {}", a, op, b);
            let not = Selector::parse(&format!("NOT x {op} {b}")).unwrap();
            prop_assert_eq!(not.matches(&m, 1), !want, "NOT {} {} {}", a, op, b);
        }
    }

    #[test]
    fn comparisons_with_a_missing_property_never_match(
        op in prop::sample::select(&["=", "<>", "<", "<=", ">", ">="][..]),
        k in any::<i32>(),
    ) {
        let m = Message::default();
        for text in [format!("missing {op} {k}"), format!("NOT (missing {op} {k})")] {
            prop_assert!(!Selector::parse(&text).unwrap().matches(&m, 1), "{}", text);
        }
    }
}
