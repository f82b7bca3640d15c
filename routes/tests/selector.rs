//! JMS message selectors, black-box: cases from the JMS 1.1 specification (§3.8.1) and from
//! ActiveMQ's `SelectorTest` / `UnknownHandlingSelectorTest`, plus errors, limits and the
//! `convert_string_expressions` switch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use routes::selector::{Selector, SelectorError, CONVERT_STRING_EXPRESSIONS_PREFIX, MAX_DEPTH};
use routes::{Message, PropertyValue};

fn with_props(props: &[(&str, PropertyValue)]) -> Message {
    let mut m = Message::default();
    for (k, v) in props {
        m.properties.insert((*k).to_string(), v.clone());
    }
    m
}

fn s(v: &str) -> PropertyValue {
    PropertyValue::String(v.to_string())
}

/// The message of ActiveMQ's `SelectorTest.createMessage()`.
fn activemq_message() -> Message {
    let mut m = with_props(&[
        ("name", s("James")),
        ("location", s("London")),
        ("byteProp", PropertyValue::Byte(123)),
        ("byteProp2", PropertyValue::Byte(33)),
        ("shortProp", PropertyValue::Short(123)),
        ("intProp", PropertyValue::Int(123)),
        ("longProp", PropertyValue::Long(123)),
        ("floatProp", PropertyValue::Float(123.0)),
        ("doubleProp", PropertyValue::Double(123.0)),
        ("rank", PropertyValue::Int(123)),
        ("version", PropertyValue::Int(2)),
        ("quote", s("'In God We Trust'")),
        ("foo", s("_foo")),
        ("punctuation", s("!#$&()*+,-./:;<=>?@[\\]^`{|}~")),
        ("trueProp", PropertyValue::Bool(true)),
        ("falseProp", PropertyValue::Bool(false)),
    ]);
    m.address = "FOO.BAR".into();
    m.message_type = Some("selector-test".into());
    m.message_id = "connection:1:1:1:1".into();
    m
}

fn parse(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// Checks every case and reports all failures at once.
fn check_with(msg: &Message, delivery_count: u32, cases: &[(&str, bool)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = parse(text).matches(msg, delivery_count);
            (got != *expected).then(|| format!("{text:?}: expected {expected}, got {got}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check(msg: &Message, cases: &[(&str, bool)]) {
    check_with(msg, 1, cases);
}

/// Expected truth value of a condition; `None` is unknown. Checks both the condition and its
/// negation, as ActiveMQ's `UnknownHandlingSelectorTest` does.
fn check_truth(msg: &Message, cases: &[(&str, Option<bool>)]) {
    let mut failures = Vec::new();
    for (text, truth) in cases {
        let negated = format!("NOT ({text})");
        let expect = truth.unwrap_or(false);
        let expect_negated = truth.map(|t| !t).unwrap_or(false);
        if parse(text).matches(msg, 1) != expect {
            failures.push(format!("{text:?} should match: {expect} (truth {truth:?})"));
        }
        if parse(&negated).matches(msg, 1) != expect_negated {
            failures.push(format!(
                "{negated:?} should match: {expect_negated} (truth {truth:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn parse_err(text: &str) -> SelectorError {
    match Selector::parse(text) {
        Ok(sel) => panic!("{text:?} should not parse, got {sel:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// ActiveMQ SelectorTest

#[test]
fn activemq_boolean_and_basic_selectors() {
    check(
        &activemq_message(),
        &[
            ("(trueProp OR falseProp) AND trueProp", true),
            ("(trueProp OR falseProp) AND falseProp", false),
            ("trueProp", true),
            ("falseProp", false),
            ("name = 'James'", true),
            ("rank > 100", true),
            ("rank >= 123", true),
            ("rank >= 124", false),
        ],
    );
}

#[test]
fn activemq_jms_property_selectors() {
    let m = activemq_message();
    check(
        &m,
        &[
            ("JMSType = 'selector-test'", true),
            ("JMSType = 'crap'", false),
            ("JMSMessageID = 'connection:1:1:1:1'", true),
            ("JMSMessageID = 'id:not-test:1:1:1:1'", false),
        ],
    );
    let mut m = activemq_message();
    m.message_type = Some("1001".into());
    check(
        &m,
        &[
            ("JMSType='1001'", true),
            ("JMSType='1001' OR JMSType='1002'", true),
            ("JMSType = 'crap'", false),
        ],
    );
}

#[test]
fn activemq_property_types() {
    check(
        &activemq_message(),
        &[
            ("byteProp = 123", true),
            ("byteProp = 10", false),
            ("byteProp2 = 33", true),
            ("byteProp2 = 10", false),
            ("shortProp = 123", true),
            ("shortProp = 10", false),
            ("intProp = 123", true),
            ("intProp = 10", false),
            ("longProp = 123", true),
            ("longProp = 10", false),
            ("floatProp = 123", true),
            ("floatProp = 10", false),
            ("doubleProp = 123", true),
            ("doubleProp = 10", false),
            // Integer types compare with each other either way round (ActiveMQ gets `123 =
            // byteProp` wrong; we do not).
            ("123 = byteProp", true),
            ("byteProp = shortProp", true),
            ("intProp = longProp", true),
            ("longProp = floatProp", true),
            ("floatProp = doubleProp", true),
        ],
    );
}

#[test]
fn activemq_and_or() {
    check(
        &activemq_message(),
        &[
            ("name = 'James' and rank < 200", true),
            ("name = 'James' and rank > 200", false),
            ("name = 'Foo' and rank < 200", false),
            ("unknown = 'Foo' and anotherUnknown < 200", false),
            ("name = 'James' or rank < 200", true),
            ("name = 'James' or rank > 200", true),
            ("name = 'Foo' or rank < 200", true),
            ("name = 'Foo' or rank > 200", false),
            ("unknown = 'Foo' or anotherUnknown < 200", false),
        ],
    );
}

#[test]
fn activemq_arithmetic() {
    check(
        &activemq_message(),
        &[
            ("rank + 2 = 125", true),
            ("(rank + 2) = 125", true),
            ("125 = (rank + 2)", true),
            ("rank + version = 125", true),
            ("rank + 2 < 124", false),
            ("name + '!' = 'James!'", true),
            ("rank - 2 = 121", true),
            ("rank - version = 121", true),
            ("rank - 2 > 122", false),
            ("rank * 2 = 246", true),
            ("rank * version = 246", true),
            ("rank * 2 < 130", false),
            ("rank / version = 61.5", true),
            ("rank / 3 > 100.0", false),
            ("rank / 3 > 100", false),
            ("version / 2 = 1", true),
        ],
    );
}

#[test]
fn activemq_between_in_is_null() {
    check(
        &activemq_message(),
        &[
            ("rank between 100 and 150", true),
            ("rank between 10 and 120", false),
            ("name in ('James', 'Bob', 'Gromit')", true),
            ("name in ('Bob', 'James', 'Gromit')", true),
            ("name in ('Gromit', 'Bob', 'James')", true),
            ("name in ('Gromit', 'Bob', 'Cheddar')", false),
            ("name not in ('Gromit', 'Bob', 'Cheddar')", true),
            ("dummy is null", true),
            ("dummy is not null", false),
            ("name is not null", true),
            ("name is null", false),
        ],
    );
}

#[test]
fn activemq_like_with_is_null() {
    let sel = "modelClassId LIKE 'com.whatever.something.%' AND modelInstanceId = '170' \
               AND (modelRequestError IS NULL OR modelCorrelatedClientId = 'whatever')";
    let mut m = activemq_message();
    for (k, v) in [
        ("modelClassId", "com.whatever.something.foo.bar"),
        ("modelInstanceId", "170"),
        ("modelRequestError", "abc"),
        ("modelCorrelatedClientId", "whatever"),
    ] {
        m.properties.insert(k.into(), s(v));
    }
    check(&m, &[(sel, true)]);
    m.properties
        .insert("modelCorrelatedClientId".into(), s("shouldFailNow"));
    check(&m, &[(sel, false)]);
    m.properties.remove("modelRequestError");
    m.properties
        .insert("modelCorrelatedClientId".into(), s("shouldNotMatch"));
    check(&m, &[(sel, true)]);
}

#[test]
fn activemq_mats_henricson_use_cases() {
    let mut m = activemq_message();
    check(&m, &[("SessionserverId=1870414179", false)]);
    m.properties
        .insert("SessionserverId".into(), PropertyValue::Long(1870414179));
    check(&m, &[("SessionserverId=1870414179", true)]);
    m.properties
        .insert("SessionserverId".into(), PropertyValue::Long(1234));
    check(&m, &[("SessionserverId=1870414179", false)]);
    let not_in = "Command NOT IN ('MirrorLobbyRequest', 'MirrorLobbyReply')";
    check(&m, &[(not_in, false)]);
    for (command, expected) in [
        ("Cheese", true),
        ("MirrorLobbyRequest", false),
        ("MirrorLobbyReply", false),
    ] {
        m.properties.insert("Command".into(), s(command));
        check(&m, &[(not_in, expected)]);
    }
}

#[test]
fn activemq_float_comparisons() {
    let cases: Vec<(&str, bool)> = [
        "1.0 < 1.1",
        "-1.1 < 1.0",
        "1.0E1 < 1.1E1",
        "-1.1E1 < 1.0E1",
        "1. < 1.1",
        "-1.1 < 1.",
        "1.E1 < 1.1E1",
        "-1.1E1 < 1.E1",
        ".1 < .5",
        "-.5 < .1",
        ".1E1 < .5E1",
        "-.5E1 < .1E1",
        "4E10 < 5E10",
        "5E8 < 5E10",
        "-4E10 < 2E10",
        "-5E8 < 2E2",
        "4E+10 < 5E+10",
        "4E-10 < 5E-10",
    ]
    .into_iter()
    .map(|c| (c, true))
    .collect();
    check(&activemq_message(), &cases);
}

#[test]
fn activemq_string_quotes_and_like() {
    check(
        &activemq_message(),
        &[
            ("quote = '''In God We Trust'''", true),
            ("quote LIKE '''In G_d We Trust'''", true),
            ("quote LIKE '''In Gd_ We Trust'''", false),
            ("quote NOT LIKE '''In G_d We Trust'''", false),
            ("quote NOT LIKE '''In Gd_ We Trust'''", true),
            ("foo LIKE '%oo'", true),
            ("foo LIKE '%ar'", false),
            ("foo NOT LIKE '%oo'", false),
            ("foo NOT LIKE '%ar'", true),
            ("foo LIKE '!_%' ESCAPE '!'", true),
            ("quote LIKE '!_%' ESCAPE '!'", false),
            ("foo NOT LIKE '!_%' ESCAPE '!'", false),
            ("quote NOT LIKE '!_%' ESCAPE '!'", true),
            ("punctuation LIKE '!#$&()*+,-./:;<=>?@[\\]^`{|}~'", true),
        ],
    );
}

#[test]
fn activemq_invalid_selectors() {
    for text in ["3+5", "True AND 3+5", "=TEST 'test'"] {
        parse_err(text);
    }
}

// ---------------------------------------------------------------------------------------------
// Three-valued logic (ActiveMQ UnknownHandlingSelectorTest)

#[test]
fn not_and_or_truth_tables() {
    let m = activemq_message();
    let (t, f, u) = (Some(true), Some(false), None);
    check_truth(
        &m,
        &[
            ("trueProp", t),
            ("falseProp", f),
            ("unknownProp", u),
            ("trueProp AND trueProp", t),
            ("trueProp AND falseProp", f),
            ("falseProp AND trueProp", f),
            ("falseProp AND falseProp", f),
            ("falseProp AND unknownProp", f),
            ("unknownProp AND falseProp", f),
            ("trueProp AND unknownProp", u),
            ("unknownProp AND trueProp", u),
            ("unknownProp AND unknownProp", u),
            ("trueProp OR trueProp", t),
            ("trueProp OR falseProp", t),
            ("falseProp OR trueProp", t),
            ("trueProp OR unknownProp", t),
            ("unknownProp OR trueProp", t),
            ("falseProp OR falseProp", f),
            ("falseProp OR unknownProp", u),
            ("unknownProp OR falseProp", u),
            ("unknownProp OR unknownProp", u),
        ],
    );
}

#[test]
fn comparison_with_missing_property_is_unknown() {
    let cases: Vec<(&str, Option<bool>)> = [
        "unknownProp = 0",
        "unknownProp > 0",
        "unknownProp >= 0",
        "unknownProp < 0",
        "unknownProp <= 0",
        "unknownProp <> 0",
        "unknownProp LIKE 'zero'",
        "unknownProp NOT LIKE 'zero'",
        "unknownProp IN ('zero')",
        "unknownProp NOT IN ('zero')",
        "unknownProp BETWEEN 1 AND 2",
        "unknownProp NOT BETWEEN 1 AND 2",
        "-unknownProp = 0",
        "+unknownProp = 0",
        "unknownProp * 2 = 0",
        "unknownProp / 2 = 0",
        "unknownProp + 2 = 0",
        "unknownProp - 2 = 0",
        "2 - unknownProp = 0",
        "'x' = unknownProp",
        "unknownProp = otherUnknown",
        "rank BETWEEN unknownProp AND 200",
        "NULL",
    ]
    .into_iter()
    .map(|c| (c, None))
    .collect();
    check_truth(&activemq_message(), &cases);
}

#[test]
fn is_null_and_is_not_null() {
    check_truth(
        &activemq_message(),
        &[
            ("unknownProp IS NULL", Some(true)),
            ("trueProp IS NULL", Some(false)),
            ("unknownProp IS NOT NULL", Some(false)),
            ("trueProp IS NOT NULL", Some(true)),
            ("(unknownProp + 1) IS NULL", Some(true)),
            ("(rank > unknownProp) IS NULL", Some(true)),
        ],
    );
}

#[test]
fn missing_property_rejects_both_a_condition_and_its_negation() {
    let m = Message::default();
    check(
        &m,
        &[
            ("a > 1", false),
            ("NOT (a > 1)", false),
            ("NOT a > 1", false),
        ],
    );
    let m = with_props(&[("a", PropertyValue::Int(5))]);
    check(
        &m,
        &[
            ("a > 1", true),
            ("NOT (a > 1)", false),
            ("NOT a > 1", false),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// JMS 1.1 specification examples

#[test]
fn jms_spec_examples() {
    let m = {
        let mut m = with_props(&[
            ("color", s("blue")),
            ("weight", PropertyValue::Int(2600)),
            ("phone", s("12993")),
            ("word", s("lose")),
            ("underscored", s("_foo")),
            ("age", PropertyValue::Int(17)),
            ("Country", s("France")),
        ]);
        m.message_type = Some("car".into());
        m
    };
    check(
        &m,
        &[
            ("JMSType = 'car' AND color = 'blue' AND weight > 2500", true),
            ("JMSType = 'car' AND color = 'red' AND weight > 2500", false),
            ("phone LIKE '12%3'", true),
            ("phone NOT LIKE '12%3'", false),
            ("word LIKE 'l_se'", true),
            ("word NOT LIKE 'l_se'", false),
            ("underscored LIKE '\\_%' ESCAPE '\\'", true),
            ("word LIKE '\\_%' ESCAPE '\\'", false),
            ("age BETWEEN 15 AND 19", true),
            ("age NOT BETWEEN 15 AND 19", false),
            ("age BETWEEN 18 AND 19", false),
            ("age NOT BETWEEN 18 AND 19", true),
            ("age BETWEEN 17 AND 17", true),
            ("Country IN ('UK', 'US', 'France')", true),
            ("Country NOT IN ('UK', 'US', 'France')", false),
            ("Country IN ('UK', 'US')", false),
            ("Country IN ('france')", false),
            ("prop_name IS NULL", true),
            ("prop_name IS NOT NULL", false),
        ],
    );
    let spec_like = |text: &str, pattern: &str, escape: Option<&str>| {
        let m = with_props(&[("p", s(text))]);
        let esc = escape.map(|e| format!(" ESCAPE '{e}'")).unwrap_or_default();
        parse(&format!("p LIKE '{pattern}'{esc}")).matches(&m, 1)
    };
    // The spec's own LIKE examples.
    assert!(spec_like("123", "12%3", None));
    assert!(spec_like("12993", "12%3", None));
    assert!(!spec_like("1234", "12%3", None));
    assert!(spec_like("lose", "l_se", None));
    assert!(!spec_like("loose", "l_se", None));
    assert!(spec_like("_foo", "\\_%", Some("\\")));
    assert!(!spec_like("bar", "\\_%", Some("\\")));
}

#[test]
fn keywords_are_case_insensitive_and_identifiers_case_sensitive() {
    let m = with_props(&[("Name", s("x")), ("n", PropertyValue::Int(5))]);
    check(
        &m,
        &[
            ("Name = 'x'", true),
            ("name = 'x'", false),
            ("NAME IS NULL", true),
            ("Name iS nOt NuLl aNd n BeTwEeN 1 AnD 9", true),
            ("n In ('5') Or n nOt LiKe 'x'", true),
            ("tRuE", true),
            ("not FALSE", true),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Headers

#[test]
fn jms_headers() {
    let mut m = with_props(&[("JMSType", s("shadowed")), ("JMSXUserID", s("prop-user"))]);
    m.message_id = "ID:gw-1".into();
    m.address = "orders.eu".into();
    m.correlation_id = Some("corr-7".into());
    m.reply_to = Some("queue://replies".into());
    m.priority = 7;
    m.timestamp = 1_700_000_000_000;
    m.expiration = 1_700_000_060_000;
    m.persistent = true;
    m.message_type = Some("order".into());
    m.group_id = Some("g1".into());
    m.group_seq = 3;
    check(
        &m,
        &[
            ("JMSMessageID = 'ID:gw-1'", true),
            ("JMSDestination = 'orders.eu'", true),
            ("JMSDestination LIKE 'orders.%'", true),
            ("JMSCorrelationID = 'corr-7'", true),
            ("JMSReplyTo = 'queue://replies'", true),
            ("JMSPriority = 7", true),
            ("JMSPriority > 4", true),
            ("JMSPriority BETWEEN 0 AND 4", false),
            ("JMSTimestamp = 1700000000000", true),
            ("JMSTimestamp > 1700000000000", false),
            ("JMSExpiration - JMSTimestamp = 60000", true),
            ("JMSDeliveryMode = 'PERSISTENT'", true),
            ("JMSDeliveryMode = 'NON_PERSISTENT'", false),
            // Headers shadow properties of the same name, as in ActiveMQ.
            ("JMSType = 'order'", true),
            ("JMSType = 'shadowed'", false),
            ("JMSXGroupID = 'g1'", true),
            ("JMSXGroupSeq = 3", true),
            // No user on the message: ActiveMQ falls back to a JMSXUserID property.
            ("JMSXUserID = 'prop-user'", true),
            // Header names are case-sensitive; anything else is a property.
            ("jmspriority IS NULL", true),
            ("JMSXProducerTXID IS NULL", true),
        ],
    );
    m.user_id = Some("alice".into());
    m.persistent = false;
    m.correlation_id = None;
    m.group_id = None;
    check(
        &m,
        &[
            ("JMSXUserID = 'alice'", true),
            ("JMSDeliveryMode = 'NON_PERSISTENT'", true),
            ("JMSCorrelationID IS NULL", true),
            ("JMSCorrelationID = 'corr-7'", false),
            ("NOT (JMSCorrelationID = 'corr-7')", false),
            ("JMSXGroupID IS NULL", true),
        ],
    );
}

#[test]
fn delivery_count_and_redelivered() {
    let m = Message::default();
    check_with(
        &m,
        1,
        &[
            ("JMSRedelivered", false),
            ("JMSRedelivered = FALSE", true),
            ("NOT JMSRedelivered", true),
            ("JMSXDeliveryCount = 1", true),
        ],
    );
    check_with(
        &m,
        3,
        &[
            ("JMSRedelivered", true),
            ("JMSRedelivered = TRUE", true),
            ("JMSXDeliveryCount = 3", true),
            ("JMSXDeliveryCount > 2", true),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Types, arithmetic and literals

#[test]
fn unlike_types_compare_false_and_not_equal_true() {
    let m = with_props(&[
        ("str", s("5")),
        ("num", PropertyValue::Int(5)),
        ("flag", PropertyValue::Bool(true)),
        ("raw", PropertyValue::Bytes(Bytes::from_static(b"5"))),
    ]);
    check_truth(
        &m,
        &[
            ("str = 5", Some(false)),
            ("str <> 5", Some(true)),
            ("num = '5'", Some(false)),
            ("flag = 1", Some(false)),
            ("num > flag", Some(false)),
            ("str > num", Some(false)),
            ("raw = '5'", Some(false)),
            ("raw = raw", Some(false)),
            ("raw IS NULL", Some(false)),
            // ActiveMQ: LIKE on a non-string is FALSE, IN on a non-string is unknown.
            ("num LIKE '5'", Some(false)),
            ("num IN ('5')", None),
            ("raw LIKE '5'", Some(false)),
            // Strings and booleans support only = and <>.
            ("str > otherStr", None),
            ("str < str", Some(false)),
            ("flag = TRUE", Some(true)),
            ("flag <> FALSE", Some(true)),
            ("flag > flag", Some(false)),
            // Arithmetic on non-numbers is unknown.
            ("flag + 1 = 2", None),
            ("raw + 1 = 2", None),
            ("-str = -5", None),
        ],
    );
}

#[test]
fn integer_and_float_arithmetic() {
    let m = with_props(&[
        ("i", PropertyValue::Int(7)),
        ("l", PropertyValue::Long(i64::MAX)),
        ("f", PropertyValue::Float(1.5)),
        ("d", PropertyValue::Double(2.25)),
        ("zero", PropertyValue::Int(0)),
    ]);
    check_truth(
        &m,
        &[
            ("i + 1 = 8", Some(true)),
            ("i + 0.5 = 7.5", Some(true)),
            ("i * f = 10.5", Some(true)),
            ("f + d = 3.75", Some(true)),
            ("f = 1.5", Some(true)),
            ("i - 10 = -3", Some(true)),
            ("-i = -7", Some(true)),
            ("- -i = 7", Some(true)),
            ("i / 2 = 3.5", Some(true)),
            ("i % 4 = 3", Some(true)),
            ("2 + 3 * 4 = 14", Some(true)),
            ("(2 + 3) * 4 = 20", Some(true)),
            ("10 - 2 - 3 = 5", Some(true)),
            ("12 / 2 / 3 = 2", Some(true)),
            ("i > 6.9", Some(true)),
            ("i < 7.0001", Some(true)),
            ("i = 7.0", Some(true)),
            // 64-bit integer overflow wraps like Java's long instead of panicking.
            ("l + 1 < 0", Some(true)),
            ("l = 9223372036854775807", Some(true)),
            ("-9223372036854775808 < 0", Some(true)),
            // Division by zero is unknown.
            ("i / 0 > 0", None),
            ("i / zero = 0", None),
            ("d / 0.0 > 0", None),
            ("i % 0 = 0", None),
        ],
    );
}

#[test]
fn numeric_literals() {
    let m = with_props(&[
        ("n", PropertyValue::Int(123)),
        ("big", PropertyValue::Long(5_000_000_000)),
    ]);
    check(
        &m,
        &[
            ("n = 0x7B", true),
            ("n = 0X7b", true),
            ("n = 0173", true),
            ("n = 123L", true),
            ("n = 123l", true),
            ("n = 1.23E2", true),
            ("n = 1.23e+2", true),
            ("n = 12300E-2", true),
            ("big = 5000000000", true),
            ("big > 2147483647", true),
            ("0 = 0", true),
            ("n = 0", false),
        ],
    );
}

#[test]
fn string_concatenation_with_plus() {
    let m = with_props(&[("first", s("Ja")), ("n", PropertyValue::Int(5))]);
    check(
        &m,
        &[
            ("first + 'mes' = 'James'", true),
            ("first + n = 'Ja5'", true),
            ("first + TRUE = 'Jatrue'", true),
        ],
    );
}

#[test]
fn like_edge_cases() {
    let m = with_props(&[
        ("p", s("100%")),
        ("u", s("ünïcødé")),
        ("e", s("")),
        ("nl", s("a\nb")),
    ]);
    check(
        &m,
        &[
            ("p LIKE '100!%' ESCAPE '!'", true),
            ("p LIKE '100%'", true),
            ("p LIKE '1_0%'", true),
            ("u LIKE '_n_c_d_'", true),
            ("u LIKE 'ün%'", true),
            ("e LIKE ''", true),
            ("e LIKE '%'", true),
            ("e LIKE '_'", false),
            ("nl LIKE 'a_b'", true),
            ("nl LIKE 'a%'", true),
        ],
    );
}

#[test]
fn like_is_not_exponential() {
    let m = with_props(&[("p", s(&"a".repeat(5_000)))]);
    let pattern = format!("p LIKE '{}b'", "%a".repeat(60));
    let sel = parse(&pattern);
    let start = std::time::Instant::now();
    assert!(!sel.matches(&m, 1));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn comments_are_ignored() {
    check(
        &with_props(&[("a", PropertyValue::Int(1))]),
        &[
            ("a = 1 /* block */ AND -- line\n TRUE", true),
            ("/* a */ a = 2", false),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// convert_string_expressions

#[test]
fn strings_are_not_converted_by_default() {
    let m = with_props(&[("price", s("12")), ("flag", s("true"))]);
    check(
        &m,
        &[
            ("price > 10", false),
            ("price = 12", false),
            ("price <> 12", true),
            ("price = '12'", true),
            ("flag = TRUE", false),
        ],
    );
    assert!(!parse("price > 10").converts_string_expressions());
}

#[test]
fn convert_string_expressions_prefix_converts_like_activemq_stomp() {
    let m = with_props(&[
        ("price", s("12")),
        ("ratio", s("12.5")),
        ("flag", s("TRUE")),
        ("junk", s("12abc")),
        ("n", PropertyValue::Int(12)),
    ]);
    let p = CONVERT_STRING_EXPRESSIONS_PREFIX;
    let cases: Vec<(String, bool)> = [
        ("price > 10", true),
        ("price = 12", true),
        ("price <> 12", false),
        ("10 < price", true),
        ("price BETWEEN 10 AND 20", true),
        ("price NOT BETWEEN 10 AND 20", false),
        ("price = n", true),
        ("price > 10.5", true),
        // "12.5" is not an integer, so against an integer it does not convert (FALSE)...
        ("ratio > 10", false),
        ("ratio <> 10", true),
        // ...but against a float it does.
        ("ratio > 10.0", true),
        ("ratio = 12.5", true),
        ("flag = TRUE", true),
        ("flag = FALSE", false),
        ("junk = 12", false),
        ("price = '12'", true),
        ("missing > 10", false),
    ]
    .into_iter()
    .map(|(sel, want)| (format!("{p}{sel}"), want))
    .collect();
    let borrowed: Vec<(&str, bool)> = cases.iter().map(|(t, w)| (t.as_str(), *w)).collect();
    check(&m, &borrowed);

    let sel = parse(&format!("{p}price > 10"));
    assert!(sel.converts_string_expressions());
    assert_eq!(sel.text(), "convert_string_expressions:price > 10");
    // Positions count from the start of the text as given, prefix included.
    let e = parse_err(&format!("{p}price > "));
    assert_eq!(e.position, p.len() + 9);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn error_positions_and_messages() {
    let cases: &[(&str, usize, &str)] = &[
        ("a = ", 5, "found end of selector"),
        ("a LIKE 5", 8, "LIKE pattern must be a string literal"),
        ("(a = 1", 7, "expected ')' to close '(' at column 1"),
        (
            "((a = 1) AND (b = 2)",
            21,
            "expected ')' to close '(' at column 1",
        ),
        ("a = 1)", 6, "unexpected ')'"),
        ("a = 'abc", 5, "unterminated string literal"),
        ("", 1, "selector is empty"),
        ("   ", 4, "selector is empty"),
        ("a = 1 AND", 10, "found end of selector"),
        ("a = 1 b = 2", 7, "unexpected identifier 'b'"),
        ("a IN (1, 2)", 7, "IN list item must be a string literal"),
        ("a IN ()", 7, "IN list item must be a string literal"),
        ("a IN ('x' 'y')", 11, "expected ',' or ')'"),
        ("a + 1 IN ('a')", 1, "left side of IN must be an identifier"),
        (
            "a LIKE 'x' ESCAPE 'ab'",
            19,
            "ESCAPE must be exactly one character",
        ),
        (
            "a LIKE 'x' ESCAPE ''",
            19,
            "ESCAPE must be exactly one character",
        ),
        ("name > 'abc'", 8, "string literal"),
        ("'abc' < name", 1, "string literal"),
        ("a BETWEEN 'x' AND 'z'", 11, "string literal"),
        ("a > TRUE", 5, "boolean literal"),
        ("(a = 1) > 2", 1, "a condition cannot be used with >"),
        ("a = NULL", 5, "use IS NULL"),
        ("a <> NULL", 6, "use IS NOT NULL"),
        ("TRUE = 1", 1, "boolean literal cannot be compared"),
        ("a IS 5", 6, "expected NULL"),
        ("a IS NOT 5", 10, "expected NULL"),
        ("a BETWEEN 1 2", 13, "expected AND"),
        ("XPATH '//a'", 1, "not supported"),
        ("a != 1", 3, "use '<>'"),
        ("a = \"x\"", 5, "single quotes"),
        ("NOT 5", 5, "not a condition"),
        ("3 + 5", 1, "not a condition"),
        ("a = NOT b", 5, "found keyword NOT"),
        ("a = 9223372036854775808", 5, "out of range"),
        ("a = 089", 5, "invalid octal"),
        ("a = 0x", 6, "unexpected identifier 'x'"),
        ("a = 1.5f", 8, "unexpected identifier 'f'"),
        ("a # 1", 3, "unexpected character '#'"),
        ("a = 1 /* open", 7, "unterminated comment"),
        ("'ééé' = x = ", 13, "found end of selector"),
    ];
    let mut failures = Vec::new();
    for (text, position, fragment) in cases {
        let e = parse_err(text);
        if e.position != *position || !e.message.contains(fragment) {
            failures.push(format!(
                "{text:?}: expected column {position} with {fragment:?}, got column {} {:?}",
                e.position, e.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_is_ready_for_a_client() {
    let e = parse_err("a = (b");
    assert_eq!(
        e.to_string(),
        "invalid selector at column 7: expected ')' to close '(' at column 5, found end of selector"
    );
    assert_eq!(e, Selector::parse("a = (b").unwrap_err());
}

#[test]
fn text_is_kept_verbatim() {
    let sel = parse("  color = 'blue'  ");
    assert_eq!(sel.text(), "  color = 'blue'  ");
    let copy = sel.clone();
    assert_eq!(copy.text(), sel.text());
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = [
        format!("{}a = 1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}a", "NOT ".repeat(100_000)),
        format!("a = {}1", "- ".repeat(100_000)),
        format!("a = {}1", "+".repeat(100_000)),
        format!("a = 1{}", " + 1".repeat(100_000)),
        format!("{}1{}", "a = (".repeat(50_000), ")".repeat(50_000)),
        "(".repeat(1_000_000),
    ];
    for text in &deep {
        let e = parse_err(text);
        assert!(
            e.message.contains("nested too deeply"),
            "{}: {e}",
            &text[..20]
        );
    }
}

#[test]
fn long_flat_selectors_are_fine() {
    let or_chain = (0..10_000)
        .map(|i| format!("a = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let and_chain = (0..10_000)
        .map(|i| format!("a <> {i}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let in_list = format!(
        "s IN ({})",
        (0..10_000)
            .map(|i| format!("'v{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let m = with_props(&[("a", PropertyValue::Int(9_999)), ("s", s("v9999"))]);
    assert!(parse(&or_chain).matches(&m, 1));
    assert!(!parse(&and_chain).matches(&m, 1));
    assert!(parse(&in_list).matches(&m, 1));
}

/// Selectors at the nesting limit parse and evaluate on a thread with a 1 MiB stack, even in
/// an unoptimized build (tokio's worker threads have 2 MiB).
#[test]
fn maximum_nesting_fits_a_small_stack() {
    let d = MAX_DEPTH;
    let shapes = vec![
        format!("{}a = 1{}", "(".repeat(d - 1), ")".repeat(d - 1)),
        format!("{}a{} = 1", "-(".repeat(d / 2 - 1), ")".repeat(d / 2 - 1)),
        format!("{}a{}", "NOT (".repeat(d / 2 - 1), ")".repeat(d / 2 - 1)),
        format!("{}1{}", "a = (".repeat(d / 2 - 2), ")".repeat(d / 2 - 2)),
        format!("a = 1{}", " + 1".repeat(d - 3)),
        format!(
            "a = {}1{}",
            "1 + (".repeat(d / 2 - 2),
            ")".repeat(d / 2 - 2)
        ),
        format!("a = {}a", "- ".repeat(d - 2)),
        format!("{}a", "NOT ".repeat(d - 2)),
    ];
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let m = with_props(&[("a", PropertyValue::Int(1))]);
            for text in &shapes {
                let sel = parse(text);
                let _ = sel.matches(&m, 1);
                let copy = sel.clone();
                assert!(!format!("{copy:?}").is_empty());
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
