//! The Kafka security keys: `[listeners.kafka] sasl_mechanisms` / `require_sasl`,
//! `[[users]] scram_sha256` and `[[authorization]] group`.

use config::{AuthorizationKind, Config, ConfigError};

const ORIGIN: &str = "gateway.toml";
/// A credential in the shape `gateway hash-password --scram` prints.
const SCRAM: &str = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$\
    cZ3fmb1Ibq5q/E1rIxmmpsDzP5Eplhjdj8HSpGjPSlE=:h1HDiVTuNoTP9KpZtIHjYeC0ZsQHuKWaivCU0d4nJFU=";

fn ok(text: &str) -> Config {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => cfg,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}"),
        Err(e) => e.errors,
    }
}

#[test]
fn sasl_settings_default_to_both_mechanisms_not_required() {
    let k = Config::default().listeners.kafka;
    assert_eq!(k.sasl_mechanisms, ["PLAIN", "SCRAM-SHA-256"]);
    assert!(!k.require_sasl);
    let c = ok("[listeners.kafka]\nsasl_mechanisms = [\"SCRAM-SHA-256\"]\nrequire_sasl = true\n");
    assert_eq!(c.listeners.kafka.sasl_mechanisms, ["SCRAM-SHA-256"]);
    assert!(c.listeners.kafka.require_sasl);
    let e = errors("[listeners.kafka]\nsasl_mechanisms = [\"GSSAPI\"]\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, "listeners.kafka.sasl_mechanisms");
    assert!(e[0].message.contains("GSSAPI"), "{}", e[0].message);
}

#[test]
fn scram_credentials_are_checked_and_never_echoed() {
    let c = ok(&format!(
        "[[users]]\nname = \"alice\"\nscram_sha256 = \"{SCRAM}\"\n"
    ));
    assert_eq!(c.users[0].scram_sha256.as_deref(), Some(SCRAM));
    assert!(c.users[0].password_hash.is_none());
    for bad in [
        "my plain password",
        "SCRAM-SHA-256$100:c2FsdA==$AAAA:AAAA",
        "SCRAM-SHA-256$4096:c2FsdA==$short:short",
        "SCRAM-SHA-1$4096:c2FsdA==$x:y",
    ] {
        let e = errors(&format!(
            "[[users]]\nname = \"alice\"\nscram_sha256 = \"{bad}\"\n"
        ));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert_eq!(e[0].key, "users[0].scram_sha256");
        assert_eq!(e[0].line, Some(3));
        assert!(
            !e[0].message.contains(bad),
            "{bad} echoed: {}",
            e[0].message
        );
    }
}

#[test]
fn group_entries_name_kafka_consumer_groups() {
    let c = ok("[[authorization]]\ngroup = \"billing.>\"\nread = [\"readers\"]\n");
    assert_eq!(c.authorization[0].kind, AuthorizationKind::Group);
    assert_eq!(c.authorization[0].pattern, "billing.>");
    let e = errors("[[authorization]]\nqueue = \"q\"\ngroup = \"g\"\nread = [\"r\"]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "authorization[0].group");
    // The effective configuration prints the entry back as written.
    let text = c.to_toml_string().unwrap_or_default();
    assert!(text.contains("group = \"billing.>\""), "{text}");
    assert_eq!(ok(&text), c);
}
