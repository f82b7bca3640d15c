//! `[tls]`, `[security]`, `[[users]]` and `[[authorization]]`: parsing and validation.

use config::{AuthorizationKind, ClientCertificates, Config, ConfigError};

const ORIGIN: &str = "gateway.toml";
/// `gateway hash-password` output for "s3cret".
const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Nq6AeXlMWbmUUbSQxGrvMaiSoaBkcMmVEW4BQMovg0Q";

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}"),
        Err(e) => e.errors,
    }
}

fn ok(text: &str) -> Config {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => cfg,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

#[test]
fn security_defaults() {
    let c = Config::default();
    assert!(c.users.is_empty());
    assert!(c.authorization.is_empty());
    assert!(c.tls.is_none());
    assert_eq!(c.security.max_connections, 0);
    assert_eq!(c.security.max_connections_per_address, 0);
    assert_eq!(c.security.auth_failure_delay_ms, 1000);
    assert_eq!(c.listeners.stomp.tls_bind.to_string(), "127.0.0.1:61614");
    assert_eq!(c.listeners.mqtt.tls_bind.to_string(), "127.0.0.1:8883");
    assert!(c.listeners.stomp.tls_enabled && c.listeners.mqtt.tls_enabled);
}

#[test]
fn users_authorization_and_tls_parse() {
    let c = ok(&format!(
        r#"
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
client_ca_file = "ca.pem"
client_certificates = "required"

[security]
max_connections = 100
max_connections_per_address = 10
auth_failure_delay_ms = 0

[listeners.stomp]
tls_bind = "0.0.0.0:61614"

[[users]]
name = "alice"
password_hash = "{HASH}"
groups = ["admins", "users"]

[[users]]
name = "device-7"

[[authorization]]
queue = "orders.>"
read = ["users"]
write = ["admins"]
admin = ["admins"]

[[authorization]]
topic = "prices.*"
read = ["*"]
"#
    ));
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.client_certificates, ClientCertificates::Required);
    assert_eq!(
        tls.client_ca_file.as_deref(),
        Some(std::path::Path::new("ca.pem"))
    );
    assert_eq!(c.security.max_connections, 100);
    assert_eq!(c.listeners.stomp.tls_bind.port(), 61614);
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[0].groups, ["admins", "users"]);
    assert_eq!(c.users[1].password_hash, None);
    assert_eq!(c.authorization[0].kind, AuthorizationKind::Queue);
    assert_eq!(c.authorization[0].pattern, "orders.>");
    assert_eq!(c.authorization[1].kind, AuthorizationKind::Topic);
    assert!(c.authorization[1].write.is_empty());
    // The effective configuration prints back to the same thing.
    let text = c.to_toml_string().unwrap();
    assert_eq!(ok(&text), c, "{text}");
}

#[test]
fn bad_entries_are_reported_with_key_and_line() {
    let errs = errors(
        r#"[[users]]
name = "alice"
password_hash = "hunter2"

[[users]]
name = "alice"
groups = ["a", 3]

[[authorization]]
queue = "a.>.b"
topic = "x"

[[authorization]]
read = ["g"]

[tls]
key_file = "k.pem"
client_certificates = "optional"
"#,
    );
    let got: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(3), "users[0].password_hash"),
            (Some(6), "users[1].name"),
            (Some(7), "users[1].groups[1]"),
            (Some(11), "authorization[0].topic"),
            (Some(13), "authorization[1].queue"),
            (Some(16), "tls.cert_file"),
            (Some(18), "tls.client_ca_file"),
        ],
        "{errs:#?}"
    );
    // A password pasted instead of its hash is never echoed.
    assert!(!errs[0].message.contains("hunter2"), "{}", errs[0].message);
    assert!(errs[0].message.contains("gateway hash-password"));
}

#[test]
fn bad_patterns_and_unknown_keys_are_errors() {
    let errs = errors("[[authorization]]\nqueue = \"a.>.b\"\nreed = [\"g\"]\n");
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["authorization[0].queue", "authorization[0].reed"]);
    let errs = errors("[[users]]\npassword_hash = \"x\"\n");
    assert_eq!(errs[0].key, "users[0].name");
    let errs = errors("[security]\nauth_failure_delay_ms = 70000\n");
    assert_eq!(errs[0].key, "security.auth_failure_delay_ms");
}

#[test]
fn temp_destination_authorization_parses_prints_back_and_rejects_unknown_keys() {
    assert!(Config::default().temp_destination_authorization.is_none());
    let c = ok("[temp_destination_authorization]\nread = [\"a\"]\nadmin = [\"b\", \"c\"]\n");
    let temp = c.temp_destination_authorization.as_ref().unwrap();
    assert_eq!(temp.read, ["a"]);
    assert!(temp.write.is_empty());
    assert_eq!(temp.admin, ["b", "c"]);
    let text = c.to_toml_string().unwrap();
    assert_eq!(ok(&text), c, "{text}");
    let e = errors("[temp_destination_authorization]\nqueue = \"x\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn admin_access_defaults_and_validation() {
    let c = Config::default();
    assert!(c.admin.users.is_empty());
    assert_eq!(c.admin.groups, vec!["admin".to_string()]);
    assert!(c.admin.metrics_auth);
    let c = ok(&format!(
        "[[users]]\nname = \"ops\"\npassword_hash = \"{HASH}\"\n\n\
         [admin]\nusers = [\"ops\"]\ngroups = [\"operators\"]\nmetrics_auth = false\n"
    ));
    assert_eq!(c.admin.users, vec!["ops".to_string()]);
    assert_eq!(c.admin.groups, vec!["operators".to_string()]);
    assert!(!c.admin.metrics_auth);
    let e = errors("[admin]\nusers = [\"ghost\"]\ngroups = \"admin\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].key, "admin.users");
    assert!(
        e[0].message.contains("no [[users]] entry named \"ghost\""),
        "{e:?}"
    );
    assert_eq!(e[1].key, "admin.groups");
}
