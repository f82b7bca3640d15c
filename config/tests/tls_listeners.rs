//! The TLS twins of every listener (`tls_enabled`, `tls_bind` in each listener table and in
//! `[admin]`, `tls_advertised_port` for Kafka): defaults on the Amazon MQ ports, parsing, errors.

use config::{Config, ConfigError};

const ORIGIN: &str = "gateway.toml";

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
fn every_listener_has_a_tls_twin_on_the_amazon_mq_port() {
    let c = Config::default();
    let twins = [
        (c.listeners.amqp.tls_enabled, c.listeners.amqp.tls_bind),
        (
            c.listeners.openwire.tls_enabled,
            c.listeners.openwire.tls_bind,
        ),
        (c.listeners.kafka.tls_enabled, c.listeners.kafka.tls_bind),
        (c.admin.tls_enabled, c.admin.tls_bind),
    ];
    let ports: Vec<u16> = twins.iter().map(|(_, b)| b.port()).collect();
    assert_eq!(ports, [5671, 61617, 9093, 8162]);
    assert!(twins
        .iter()
        .all(|(enabled, b)| *enabled && b.ip().is_loopback()));
    assert_eq!(c.listeners.kafka.tls_advertised_port, None);
    let c = ok(r#"
[listeners.amqp]
tls_bind = "0.0.0.0:15671"
[listeners.openwire]
tls_enabled = false
[listeners.kafka]
tls_bind = "127.0.0.1:19093"
tls_advertised_port = 29093
[admin]
tls_bind = "127.0.0.1:18162"
"#);
    assert_eq!(c.listeners.amqp.tls_bind.to_string(), "0.0.0.0:15671");
    assert!(!c.listeners.openwire.tls_enabled);
    assert_eq!(c.listeners.kafka.tls_bind.port(), 19093);
    assert_eq!(c.listeners.kafka.tls_advertised_port, Some(29093));
    assert_eq!(c.admin.tls_bind.port(), 18162);
    let text = c.to_toml_string().unwrap();
    assert_eq!(ok(&text), c, "{text}");
    let errs: Vec<String> =
        errors("[listeners.kafka]\ntls_advertised_port = 0\n[admin]\ntls_bind = \"nowhere\"\n")
            .iter()
            .map(ToString::to_string)
            .collect();
    let errs = errs.join("\n");
    assert!(errs.contains("tls_advertised_port"), "{errs}");
    assert!(errs.contains("tls_bind"), "{errs}");
}
