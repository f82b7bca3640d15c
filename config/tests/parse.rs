//! Parsing, defaults and validation of `gateway.toml` documents.

use std::net::SocketAddr;
use std::path::PathBuf;

use config::{Config, ConfigError, ConfigErrors, DestinationPolicy, FlowControlPolicy, SyncMode};

const ORIGIN: &str = "gateway.toml";

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}"),
        Err(e) => e.errors,
    }
}

/// The only error of `text`, as (line, key, message).
fn one_error(text: &str) -> (Option<usize>, String, String) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!(e.origin, ORIGIN);
    (e.line, e.key.clone(), e.message.clone())
}

fn ok(text: &str) -> Config {
    match Config::from_toml_str(text, ORIGIN) {
        Ok(cfg) => cfg,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

#[test]
fn empty_document_is_the_default() {
    assert_eq!(ok(""), Config::default());
    assert_eq!(ok("# only a comment\n\n"), Config::default());
}

#[test]
fn defaults_are_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.server.data_dir, PathBuf::from("./data"));
    assert_eq!(c.server.shutdown_grace_ms, 5000);
    assert_eq!(c.server.log_level, "info");
    let s = &c.listeners.stomp;
    assert!(s.enabled);
    assert_eq!(s.bind, "127.0.0.1:61613".parse::<SocketAddr>().unwrap());
    assert!(s.bind.ip().is_loopback());
    assert_eq!(s.max_frame_bytes, 10_485_760);
    assert_eq!(s.max_headers, 1000);
    assert_eq!(s.max_header_bytes, 10240);
    assert_eq!(s.heartbeat_min_ms, 100);
    assert_eq!(s.connect_timeout_ms, 10_000);
    assert_eq!(c.store.sync, SyncMode::Always);
    assert_eq!(c.store.sync_interval_ms, 100);
    assert_eq!(c.store.ack_sync_ms, 10);
    assert_eq!(c.store.segment_bytes, 67_108_864);
    assert_eq!(c.store.compact_live_ratio, 0.3);
    assert!(!c.store.repair);
    let b = &c.broker;
    assert_eq!(b.dead_letter_queue, "ActiveMQ.DLQ");
    assert_eq!(b.max_redeliveries, 6);
    assert_eq!(b.default_prefetch, 1000);
    assert_eq!(b.memory_limit_bytes, 1_073_741_824);
    assert_eq!(b.disk_limit_bytes, 0);
    assert_eq!(b.flow_control, FlowControlPolicy::Block);
    assert_eq!(b.send_timeout_ms, 0);
    assert_eq!(b.expiry_check_interval_ms, 1000);
    assert!(b.destinations.is_empty());
}

#[test]
fn example_gateway_toml_passes_validation() {
    let cfg = ok(include_str!("../../gateway.toml"));
    // Everything but the example destinations is at its default.
    let mut expected = Config::default();
    expected.broker.destinations = cfg.broker.destinations.clone();
    assert_eq!(cfg, expected);
    let patterns: Vec<&str> = cfg
        .broker
        .destinations
        .iter()
        .map(|d| d.pattern.as_str())
        .collect();
    assert_eq!(patterns, ["orders.priority.>", "orders.>", "metrics.*.raw"]);
}

#[test]
fn every_key_can_be_set() {
    let cfg = ok(r#"
[server]
data_dir = "/var/lib/gateway"
shutdown_grace_ms = 0
log_level = "info,routes=debug"

[listeners.stomp]
enabled = false
bind = "[::1]:1234"
max_frame_bytes = 1024
max_headers = 1
max_header_bytes = 64
heartbeat_min_ms = 0
connect_timeout_ms = 1

[store]
sync = "interval"
sync_interval_ms = 1
ack_sync_ms = 0
segment_bytes = 1048576
compact_live_ratio = 1
repair = true

[broker]
dead_letter_queue = "DLQ"
max_redeliveries = -1
default_prefetch = 4294967295
memory_limit_bytes = 0
disk_limit_bytes = 9223372036854775807
flow_control = "drop-oldest"
send_timeout_ms = 30000
expiry_check_interval_ms = 1
"#);
    assert_eq!(cfg.server.data_dir, PathBuf::from("/var/lib/gateway"));
    assert_eq!(cfg.server.shutdown_grace_ms, 0);
    assert_eq!(cfg.server.log_level, "info,routes=debug");
    let s = &cfg.listeners.stomp;
    assert!(!s.enabled);
    assert_eq!(s.bind, "[::1]:1234".parse::<SocketAddr>().unwrap());
    assert_eq!(
        (s.max_frame_bytes, s.max_headers, s.max_header_bytes),
        (1024, 1, 64)
    );
    assert_eq!((s.heartbeat_min_ms, s.connect_timeout_ms), (0, 1));
    assert_eq!(cfg.store.sync, SyncMode::Interval);
    assert_eq!(cfg.store.sync_interval_ms, 1);
    assert_eq!(cfg.store.ack_sync_ms, 0);
    assert_eq!(cfg.store.segment_bytes, 1 << 20);
    assert_eq!(cfg.store.compact_live_ratio, 1.0);
    assert!(cfg.store.repair);
    let b = &cfg.broker;
    assert_eq!(b.dead_letter_queue, "DLQ");
    assert_eq!(b.max_redeliveries, -1);
    assert_eq!(b.default_prefetch, u32::MAX);
    assert_eq!(b.memory_limit_bytes, 0);
    assert_eq!(b.disk_limit_bytes, i64::MAX as u64);
    assert_eq!(b.flow_control, FlowControlPolicy::DropOldest);
    assert_eq!(b.send_timeout_ms, 30000);
    assert_eq!(b.expiry_check_interval_ms, 1);
}

#[test]
fn partial_sections_keep_other_defaults() {
    let cfg = ok("[listeners.stomp]\nbind = \"0.0.0.0:61614\"\n");
    let mut expected = Config::default();
    expected.listeners.stomp.bind = "0.0.0.0:61614".parse().unwrap();
    assert_eq!(cfg, expected);
}

#[test]
fn dotted_keys_and_inline_tables_are_equivalent_to_sections() {
    let a = ok("[store]\nsync = \"never\"\n");
    let b = ok("store.sync = \"never\"\n");
    let c = ok("store = { sync = \"never\" }\n");
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.store.sync, SyncMode::Never);
}

#[test]
fn destinations_array_of_tables() {
    let cfg = ok(r#"
[[broker.destinations]]
pattern = "orders.>"
max_messages = 10
max_bytes = 20
flow_control = "fail"
max_redeliveries = -1
dead_letter_queue = "DLQ.orders"

[[broker.destinations]]
pattern = "*.prices"
"#);
    assert_eq!(
        cfg.broker.destinations,
        vec![
            DestinationPolicy {
                pattern: "orders.>".into(),
                max_messages: 10,
                max_bytes: 20,
                flow_control: Some(FlowControlPolicy::Fail),
                max_redeliveries: Some(-1),
                dead_letter_queue: Some("DLQ.orders".into()),
                prioritized_messages: None,
            },
            DestinationPolicy::new("*.prices"),
        ]
    );
}

#[test]
fn destinations_inline_array() {
    let cfg = ok(r#"
[broker]
destinations = [
  { pattern = "a.>", flow_control = "drop-oldest" },
  { pattern = "b" },
]
"#);
    let mut first = DestinationPolicy::new("a.>");
    first.flow_control = Some(FlowControlPolicy::DropOldest);
    assert_eq!(
        cfg.broker.destinations,
        vec![first, DestinationPolicy::new("b")]
    );
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    assert_eq!(
        one_error("[server]\nport = 1\n"),
        (
            Some(2),
            "server.port".into(),
            "unknown key \"port\" (expected one of: data_dir, shutdown_grace_ms, log_level, log_format)".into()
        )
    );
    let (line, key, msg) = one_error("\n[serverr]\n");
    assert_eq!((line, key.as_str()), (Some(2), "serverr"));
    assert!(msg.starts_with("unknown key \"serverr\""), "{msg}");
    let (line, key, _) = one_error("[listeners.amqpp]\nenabled = true\n");
    assert_eq!((line, key.as_str()), (Some(1), "listeners.amqpp"));
    let (line, key, _) = one_error("[[broker.destinations]]\npattern = \"a\"\nmax_msgs = 1\n");
    assert_eq!(
        (line, key.as_str()),
        (Some(3), "broker.destinations[0].max_msgs")
    );
    let (line, key, _) = one_error("store.sink = 1\n");
    assert_eq!((line, key.as_str()), (Some(1), "store.sink"));
}

#[test]
fn wrong_types_name_expected_and_found() {
    assert_eq!(
        one_error("[listeners.stomp]\nmax_frame_bytes = \"10MB\"\n"),
        (
            Some(2),
            "listeners.stomp.max_frame_bytes".into(),
            "expected an integer, found a string".into()
        )
    );
    assert_eq!(
        one_error("[listeners.stomp]\nenabled = \"yes\"\n").2,
        "expected a boolean (true or false), found a string"
    );
    assert_eq!(
        one_error("[store]\ncompact_live_ratio = \"half\"\n").2,
        "expected a number between 0.0 and 1.0, found a string"
    );
    assert_eq!(
        one_error("[server]\ndata_dir = 5\n").2,
        "expected a string, found an integer"
    );
    assert_eq!(
        one_error("server = 5\n"),
        (
            Some(1),
            "server".into(),
            "expected a table, found an integer".into()
        )
    );
    assert_eq!(
        one_error("[broker]\nflow_control = 1.5\n").2,
        "expected one of \"block\", \"fail\", \"drop-oldest\", found a float"
    );
    assert_eq!(
        one_error("[broker]\ndestinations = \"orders.>\"\n").2,
        "expected an array of tables ([[broker.destinations]]), found a string"
    );
    assert_eq!(
        one_error("[broker]\ndestinations = [1]\n"),
        (
            Some(2),
            "broker.destinations[0]".into(),
            "expected a table, found an integer".into()
        )
    );
}

#[test]
fn out_of_range_values() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[listeners.stomp]\nmax_frame_bytes = 1023",
            "listeners.stomp.max_frame_bytes",
            "must be at least 1024, found 1023",
        ),
        (
            "[listeners.stomp]\nmax_headers = 0",
            "listeners.stomp.max_headers",
            "must be at least 1, found 0",
        ),
        (
            "[listeners.stomp]\nmax_header_bytes = 63",
            "listeners.stomp.max_header_bytes",
            "must be at least 64, found 63",
        ),
        (
            "[listeners.stomp]\nheartbeat_min_ms = -1",
            "listeners.stomp.heartbeat_min_ms",
            "must be at least 0, found -1",
        ),
        (
            "[listeners.stomp]\nconnect_timeout_ms = 0",
            "listeners.stomp.connect_timeout_ms",
            "must be at least 1, found 0",
        ),
        (
            "[server]\nshutdown_grace_ms = -5",
            "server.shutdown_grace_ms",
            "must be at least 0, found -5",
        ),
        (
            "[store]\nsync_interval_ms = 0",
            "store.sync_interval_ms",
            "must be at least 1, found 0",
        ),
        (
            "[store]\nack_sync_ms = 60001",
            "store.ack_sync_ms",
            "must be between 0 and 60000, found 60001",
        ),
        (
            "[store]\nsegment_bytes = 1048575",
            "store.segment_bytes",
            "must be at least 1048576, found 1048575",
        ),
        (
            "[store]\ncompact_live_ratio = 1.5",
            "store.compact_live_ratio",
            "must be between 0.0 and 1.0, found 1.5",
        ),
        (
            "[store]\ncompact_live_ratio = -0.1",
            "store.compact_live_ratio",
            "must be between 0.0 and 1.0, found -0.1",
        ),
        (
            "[store]\ncompact_live_ratio = nan",
            "store.compact_live_ratio",
            "must be between 0.0 and 1.0, found NaN",
        ),
        (
            "[broker]\nmax_redeliveries = -2",
            "broker.max_redeliveries",
            "must be between -1 and 2147483647, found -2",
        ),
        (
            "[broker]\nmax_redeliveries = 2147483648",
            "broker.max_redeliveries",
            "must be between -1 and 2147483647, found 2147483648",
        ),
        (
            "[broker]\ndefault_prefetch = 4294967296",
            "broker.default_prefetch",
            "must be between 0 and 4294967295, found 4294967296",
        ),
        (
            "[broker]\nmemory_limit_bytes = -1",
            "broker.memory_limit_bytes",
            "must be at least 0, found -1",
        ),
        (
            "[broker]\ndisk_limit_bytes = -1",
            "broker.disk_limit_bytes",
            "must be at least 0, found -1",
        ),
        (
            "[broker]\nsend_timeout_ms = -1",
            "broker.send_timeout_ms",
            "must be at least 0, found -1",
        ),
        (
            "[broker]\nexpiry_check_interval_ms = 0",
            "broker.expiry_check_interval_ms",
            "must be at least 1, found 0",
        ),
        (
            "[[broker.destinations]]\npattern = \"a\"\nmax_messages = -1",
            "broker.destinations[0].max_messages",
            "must be at least 0, found -1",
        ),
        (
            "[[broker.destinations]]\npattern = \"a\"\nmax_bytes = -1",
            "broker.destinations[0].max_bytes",
            "must be at least 0, found -1",
        ),
        (
            "[[broker.destinations]]\npattern = \"a\"\nmax_redeliveries = -7",
            "broker.destinations[0].max_redeliveries",
            "must be between -1 and 2147483647, found -7",
        ),
    ];
    for (text, key, message) in cases {
        let (line, k, m) = one_error(text);
        assert_eq!(line, Some(text.lines().count()), "{text}");
        assert_eq!((k.as_str(), m.as_str()), (*key, *message), "{text}");
    }
}

#[test]
fn invalid_strings() {
    assert_eq!(
        one_error("[listeners.stomp]\nbind = \"x\"\n"),
        (
            Some(2),
            "listeners.stomp.bind".into(),
            "invalid socket address \"x\"".into()
        )
    );
    // A host name is not a socket address: listeners bind to IP addresses.
    assert_eq!(
        one_error("[listeners.stomp]\nbind = \"localhost:61613\"\n").2,
        "invalid socket address \"localhost:61613\""
    );
    assert_eq!(
        one_error("[store]\nsync = \"sometimes\"\n").2,
        "expected one of \"always\", \"interval\", \"never\", found \"sometimes\""
    );
    assert_eq!(
        one_error("[broker]\nflow_control = \"drop_oldest\"\n").2,
        "expected one of \"block\", \"fail\", \"drop-oldest\", found \"drop_oldest\""
    );
    let (_, key, msg) = one_error("[server]\nlog_level = \"  \"\n");
    assert_eq!(key, "server.log_level");
    assert!(msg.starts_with("must not be empty"), "{msg}");
    assert_eq!(
        one_error("[server]\ndata_dir = \"\"\n").2,
        "must not be empty"
    );
    let (_, key, msg) = one_error("[broker]\ndead_letter_queue = \"DLQ.>\"\n");
    assert_eq!(key, "broker.dead_letter_queue");
    assert!(msg.contains("without wildcards"), "{msg}");
    let (_, key, _) =
        one_error("[[broker.destinations]]\npattern = \"a\"\ndead_letter_queue = \"\"\n");
    assert_eq!(key, "broker.destinations[0].dead_letter_queue");
    let (_, key, _) =
        one_error("[[broker.destinations]]\npattern = \"a\"\nflow_control = \"wait\"\n");
    assert_eq!(key, "broker.destinations[0].flow_control");
}

#[test]
fn pattern_validation() {
    let (line, key, msg) = one_error("[[broker.destinations]]\npattern = \"orders.>.eu\"\n");
    assert_eq!(
        (line, key.as_str()),
        (Some(2), "broker.destinations[0].pattern")
    );
    assert_eq!(
        msg,
        "invalid pattern \"orders.>.eu\": '>' must be the last level, found at level 2 of 3"
    );
    for bad in ["", "a..b", ".a", "a.", "ord*.x", "a.b>"] {
        let text = format!("[[broker.destinations]]\npattern = {bad:?}\n");
        let (line, key, msg) = one_error(&text);
        assert_eq!(line, Some(2), "{bad}");
        assert_eq!(key, "broker.destinations[0].pattern", "{bad}");
        assert!(
            msg.starts_with(&format!("invalid pattern {bad:?}: ")),
            "{msg}"
        );
    }
    for good in ["a", ">", "*", "a.*.c", "a.*.>"] {
        let text = format!("[[broker.destinations]]\npattern = {good:?}\n");
        assert_eq!(ok(&text).broker.destinations[0].pattern, good);
    }
}

#[test]
fn destination_without_pattern_is_an_error_at_its_header() {
    assert_eq!(
        one_error("[broker]\n\n[[broker.destinations]]\nmax_messages = 1\n"),
        (
            Some(3),
            "broker.destinations[0].pattern".into(),
            "missing required key (the address pattern this policy applies to)".into()
        )
    );
}

#[test]
fn duplicate_patterns_are_errors() {
    let (line, key, msg) = one_error(
        "[[broker.destinations]]\npattern = \"a.>\"\n\n[[broker.destinations]]\npattern = \"a.>\"\n",
    );
    assert_eq!(
        (line, key.as_str()),
        (Some(5), "broker.destinations[1].pattern")
    );
    assert!(msg.contains("first defined at line 2"), "{msg}");
}

#[test]
fn every_error_is_reported_with_its_own_line() {
    let text = r#"# line 1
[server]
colour = "blue"
shutdown_grace_ms = "soon"

[listeners.stomp]
bind = "nowhere"
max_headers = 0

[store]
sync = "sometimes"

[broker]
max_redeliveries = -3

[[broker.destinations]]
pattern = "a.>.b"

[[broker.destinations]]
max_bytes = true
"#;
    let errs = errors(text);
    let got: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Some(3), "server.colour"),
            (Some(4), "server.shutdown_grace_ms"),
            (Some(7), "listeners.stomp.bind"),
            (Some(8), "listeners.stomp.max_headers"),
            (Some(11), "store.sync"),
            (Some(14), "broker.max_redeliveries"),
            (Some(17), "broker.destinations[0].pattern"),
            (Some(19), "broker.destinations[1].pattern"),
            (Some(20), "broker.destinations[1].max_bytes"),
        ]
    );
}

#[test]
fn three_kinds_of_error_in_one_file() {
    let text =
        "[server]\nfoo = 1\n\n[listeners.stomp]\nmax_frame_bytes = \"big\"\nmax_headers = 0\n";
    let err = Config::from_toml_str(text, ORIGIN).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gateway.toml:2: server.foo: unknown key \"foo\" (expected one of: data_dir, shutdown_grace_ms, log_level, log_format)\n\
         gateway.toml:5: listeners.stomp.max_frame_bytes: expected an integer, found a string\n\
         gateway.toml:6: listeners.stomp.max_headers: must be at least 1, found 0"
    );
}

#[test]
fn syntax_errors_carry_their_line() {
    let (line, key, msg) = one_error("[server]\nlog_level = \"info\"\n\ndata_dir = \n");
    assert_eq!(line, Some(4));
    assert_eq!(key, "");
    assert!(msg.starts_with("TOML syntax error"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // Duplicate keys are a syntax error too.
    let (line, _, msg) = one_error("[store]\nrepair = true\nrepair = false\n");
    assert_eq!(line, Some(3), "{msg}");
    // Lines are counted correctly after multi-byte characters.
    let (line, _, _) = one_error("# héllo wörld ✓\n[server]\nlog_level = 'x' 'y'\n");
    assert_eq!(line, Some(3));
    // An unexpected end of input points at the last line, not the empty one after it.
    let (line, _, _) = one_error("[store]\nrepair = true\nsync = [1,\n 2,\n");
    assert_eq!(line, Some(4));
}

#[test]
fn display_formats() {
    let e = ConfigError {
        origin: "gateway.toml".into(),
        line: Some(12),
        key: "listeners.stomp.bind".into(),
        message: "invalid socket address \"x\"".into(),
    };
    assert_eq!(
        e.to_string(),
        "gateway.toml:12: listeners.stomp.bind: invalid socket address \"x\""
    );
    let no_line = ConfigError {
        line: None,
        key: String::new(),
        message: "cannot read".into(),
        ..e.clone()
    };
    assert_eq!(no_line.to_string(), "gateway.toml: cannot read");
    let all = ConfigErrors {
        errors: vec![e, no_line],
    };
    assert_eq!(all.to_string().lines().count(), 2);
}

#[test]
fn from_file_reads_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.toml");
    std::fs::write(&path, "[store]\nrepair = 1\n").unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].origin, path.display().to_string());
    assert_eq!(err.errors[0].line, Some(2));

    std::fs::write(&path, "[store]\nrepair = true\n").unwrap();
    assert!(Config::from_file(&path).unwrap().store.repair);

    let missing = dir.path().join("missing.toml");
    let err = Config::from_file(&missing).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].line, None);
    assert!(err.errors[0]
        .message
        .starts_with("cannot read configuration file"));
}

#[test]
fn to_toml_string_round_trips() {
    let mut cfg = ok(include_str!("../../gateway.toml"));
    cfg.store.compact_live_ratio = 0.75;
    cfg.broker.flow_control = FlowControlPolicy::DropOldest;
    let text = cfg.to_toml_string().unwrap();
    assert_eq!(ok(&text), cfg, "{text}");
    assert_eq!(
        ok(&Config::default().to_toml_string().unwrap()),
        Config::default()
    );
}

#[test]
fn admin_table_defaults_and_keys() {
    let default = Config::default();
    assert!(default.admin.enabled);
    assert_eq!(
        default.admin.bind,
        "127.0.0.1:8161".parse::<SocketAddr>().unwrap()
    );
    let cfg = ok("[admin]\nenabled = false\nbind = \"127.0.0.1:9000\"\n");
    assert!(!cfg.admin.enabled);
    assert_eq!(cfg.admin.bind.port(), 9000);
    let (line, key, _) = one_error("[admin]\nport = 1\n");
    assert_eq!((line, key.as_str()), (Some(2), "admin.port"));
    let (line, key, _) = one_error("[admin]\nbind = \"nowhere\"\n");
    assert_eq!((line, key.as_str()), (Some(2), "admin.bind"));
}

#[test]
fn log_format_is_text_or_json() {
    assert_eq!(Config::default().server.log_format, config::LogFormat::Text);
    let cfg = ok("[server]\nlog_format = \"json\"\n");
    assert_eq!(cfg.server.log_format, config::LogFormat::Json);
    let (line, key, message) = one_error("[server]\nlog_format = \"xml\"\n");
    assert_eq!((line, key.as_str()), (Some(2), "server.log_format"));
    assert!(message.contains("\"json\""), "{message}");
}

#[test]
fn kafka_listener_log_and_streams_parse() {
    let cfg = ok(r#"
[listeners.kafka]
bind = "0.0.0.0:19092"
advertised_host = "gw.example"
advertised_port = 29092

[log]
auto_create_streams = false
default_partitions = 3

[[streams]]
name = "orders"
partitions = 6
retention_ms = 604800000

[[streams]]
name = "payments"
retention_bytes = 1073741824
"#);
    let k = &cfg.listeners.kafka;
    assert_eq!(k.bind.port(), 19092);
    assert_eq!(k.advertised_host.as_deref(), Some("gw.example"));
    assert_eq!(k.advertised_port, Some(29092));
    assert!(!cfg.log.auto_create_streams);
    assert_eq!(cfg.streams.len(), 2);
    assert_eq!(cfg.streams[0].partitions, 6);
    assert_eq!(cfg.streams[0].retention_ms, Some(604_800_000));
    assert_eq!(
        cfg.streams[1].partitions, 3,
        "log.default_partitions applies"
    );
    assert_eq!(cfg.streams[1].retention_bytes, Some(1 << 30));
    assert_eq!(ok(&cfg.to_toml_string().unwrap()), cfg);
    let d = Config::default();
    assert_eq!(d.listeners.kafka.bind.port(), 9092);
    assert!(d.log.auto_create_streams);
    assert_eq!(d.log.default_partitions, 1);
}

#[test]
fn bad_streams_are_reported_with_key_and_line() {
    let errs = errors(
        "[[streams]]\nname = \"a b\"\n[[streams]]\npartitions = 0\n[[streams]]\nname = \"x\"\n[[streams]]\nname = \"x\"\n",
    );
    let keys: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert!(keys.contains(&(Some(2), "streams[0].name")), "{keys:?}");
    assert!(
        keys.contains(&(Some(4), "streams[1].partitions")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|(_, k)| *k == "streams[1].name"),
        "{keys:?}"
    );
    assert!(keys.contains(&(Some(8), "streams[3].name")), "{keys:?}");
}

#[test]
fn routes_parse_in_both_directions_and_unsupported_modes_are_refused() {
    let cfg = ok(r#"
[[routes]]
name = "payments"
from = "stream:payments"
to = "queue:legacy.payments"

[[routes]]
name = "audit"
from = "stream:audit"
to = "topic:audit.events"
group = "auditors"
"#);
    assert_eq!(cfg.routes.len(), 2);
    assert_eq!(
        cfg.routes[0].from,
        config::RouteEndpoint::Stream("payments".into())
    );
    assert_eq!(
        cfg.routes[0].to,
        config::RouteEndpoint::Queue("legacy.payments".into())
    );
    assert_eq!(cfg.routes[0].group, "route.payments");
    assert_eq!(
        cfg.routes[1].to,
        config::RouteEndpoint::Topic("audit.events".into())
    );
    assert_eq!(cfg.routes[1].group, "auditors");
    assert_eq!(cfg.routes[0].mode, None);
    assert_eq!(ok(&cfg.to_toml_string().unwrap()), cfg);

    let cfg = ok(r#"
[[routes]]
name = "orders-in"
from = "topic:orders.*"
to = "stream:orders"
key = "customerId"
selector = "region = 'eu'"

[[routes]]
name = "jobs-in"
from = "queue:jobs"
to = "stream:jobs"

[[routes]]
name = "orders-queues-in"
from = "queue:orders.*"
to = "stream:orders"
mode = "copy"
key = "customerId"
selector = "region = 'us'"
"#);
    assert_eq!(cfg.routes[2].mode, Some(config::RouteMode::Copy));
    // A selector is accepted when copying from queues too (the engine filters the mirror).
    assert_eq!(cfg.routes[2].selector.as_deref(), Some("region = 'us'"));
    assert_eq!(cfg.routes[0].mode, Some(config::RouteMode::Copy));
    assert_eq!(cfg.routes[0].key.as_deref(), Some("customerId"));
    assert_eq!(cfg.routes[1].mode, Some(config::RouteMode::Move));
    assert_eq!(ok(&cfg.to_toml_string().unwrap()), cfg);

    // Out of a stream: a selector filters the records' messages; a key means nothing there.
    let cfg = ok("[[routes]]\nname = \"p\"\nfrom = \"stream:p\"\nto = \"queue:q\"\nselector = \"tenant = 'acme'\"\n");
    assert_eq!(cfg.routes[0].selector.as_deref(), Some("tenant = 'acme'"));
    let errs =
        errors("[[routes]]\nname = \"p\"\nfrom = \"stream:p\"\nto = \"queue:q\"\nkey = \"k\"\n");
    assert!(errs.iter().any(|e| e.key == "routes[0].key"), "{errs:?}");

    let errs = errors(
        "[[routes]]\nname = \"a\"\nfrom = \"queue:orders.*\"\nto = \"queue:orders.all\"\nmode = \"move\"\n[[routes]]\nfrom = \"stream:x\"\nto = \"queue:a.*\"\n",
    );
    let keys: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert!(keys.contains(&(Some(4), "routes[0].to")), "{keys:?}");
    assert!(
        !keys.iter().any(|(_, k)| *k == "routes[0].mode"),
        "moving from a queue pattern is allowed: {keys:?}"
    );
    assert!(keys.iter().any(|(_, k)| *k == "routes[1].name"), "{keys:?}");
    assert!(keys.contains(&(Some(8), "routes[1].to")), "{keys:?}");

    // Moving from a queue pattern or a topic redirects the matching sends; a queue pattern
    // needs its mode given (a move away from every matching queue is not a default).
    let cfg = ok(r#"
[[routes]]
name = "orders-move"
from = "queue:orders.*"
to = "stream:orders"
mode = "move"
key = "customerId"

[[routes]]
name = "prices-move"
from = "topic:prices.>"
to = "queue:prices.archive"
mode = "move"
selector = "level = 'severe'"
"#);
    assert_eq!(cfg.routes[0].mode, Some(config::RouteMode::Move));
    assert_eq!(cfg.routes[1].mode, Some(config::RouteMode::Move));
    assert_eq!(ok(&cfg.to_toml_string().unwrap()), cfg);
    let errs = errors("[[routes]]\nname = \"a\"\nfrom = \"queue:orders.*\"\nto = \"stream:o\"\n");
    assert!(errs.iter().any(|e| e.key == "routes[0].from"), "{errs:?}");
}

#[test]
fn routes_between_queues_and_topics_parse_and_loops_are_refused() {
    let cfg = ok(r#"
[[routes]]
name = "archive"
from = "queue:orders.*"
to = "queue:archive.orders"
mode = "copy"
selector = "region = 'eu'"

[[routes]]
name = "inbox"
from = "queue:inbox"
to = "queue:work"

[[routes]]
name = "audit"
from = "topic:events.>"
to = "queue:audit.events"

[[routes]]
name = "alerts"
from = "queue:alerts.*"
to = "topic:legacy.alerts"
mode = "copy"

[[routes]]
name = "fanout"
from = "topic:legacy.alerts"
to = "topic:all.alerts"
"#);
    assert_eq!(cfg.routes.len(), 5);
    assert_eq!(cfg.routes[0].mode, Some(config::RouteMode::Copy));
    assert_eq!(
        cfg.routes[0].to,
        config::RouteEndpoint::Queue("archive.orders".into())
    );
    assert_eq!(cfg.routes[1].mode, Some(config::RouteMode::Move));
    assert_eq!(cfg.routes[2].mode, Some(config::RouteMode::Copy));
    assert_eq!(
        cfg.routes[3].to,
        config::RouteEndpoint::Topic("legacy.alerts".into())
    );
    assert_eq!(ok(&cfg.to_toml_string().unwrap()), cfg);

    // A key means nothing without a record; a target with wildcards cannot be sent to.
    let errs = errors(
        "[[routes]]\nname = \"a\"\nfrom = \"queue:q\"\nto = \"queue:r\"\nkey = \"k\"\n[[routes]]\nname = \"b\"\nfrom = \"topic:t\"\nto = \"topic:u.*\"\n",
    );
    let keys: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert!(keys.contains(&(Some(5), "routes[0].key")), "{keys:?}");
    assert!(keys.contains(&(Some(9), "routes[1].to")), "{keys:?}");

    // A target the route's own source matches would forward its own copies.
    let (line, key, message) = one_error(
        "[[routes]]\nname = \"a\"\nfrom = \"topic:orders.>\"\nto = \"topic:orders.all\"\n",
    );
    assert_eq!((line, key.as_str()), (Some(4), "routes[0].to"));
    assert!(message.contains("loop"), "{message}");
    let (_, key, _) =
        one_error("[[routes]]\nname = \"a\"\nfrom = \"queue:jobs\"\nto = \"queue:jobs\"\n");
    assert_eq!(key, "routes[0].to");
    // A queue target is no topic source and the other way round: no loop.
    ok("[[routes]]\nname = \"a\"\nfrom = \"topic:jobs\"\nto = \"queue:jobs\"\n");

    // Routes feeding each other in a circle.
    let (line, key, message) = one_error(
        r#"
[[routes]]
name = "there"
from = "queue:a.*"
to = "queue:b.x"
mode = "copy"

[[routes]]
name = "back"
from = "queue:b.*"
to = "queue:a.y"
mode = "copy"
"#,
    );
    assert_eq!((line, key.as_str()), (Some(5), "routes[0].to"));
    assert!(
        message.contains("\"there\" -> \"back\" -> \"there\""),
        "{message}"
    );
    // Through a stream too.
    let (_, key, message) = one_error(
        "[[routes]]\nname = \"in\"\nfrom = \"queue:jobs\"\nto = \"stream:jobs\"\n[[routes]]\nname = \"out\"\nfrom = \"stream:jobs\"\nto = \"queue:jobs\"\n",
    );
    assert_eq!(key, "routes[0].to");
    assert!(message.contains("\"in\" -> \"out\" -> \"in\""), "{message}");
    // A chain without a circle is fine.
    ok(r#"
[[routes]]
name = "one"
from = "queue:a.*"
to = "queue:b.x"
mode = "copy"

[[routes]]
name = "two"
from = "queue:b.*"
to = "topic:c"
mode = "copy"
"#);
}

#[test]
fn example_migration_toml_passes_validation() {
    let cfg = ok(include_str!("../../examples/migration.toml"));
    assert_eq!(cfg.streams.len(), 2);
    assert_eq!(cfg.routes.len(), 2);
    assert_eq!(cfg.routes[0].key.as_deref(), Some("customerId"));
}

#[test]
fn amqp_listener_keys_parse_and_check_ranges() {
    let config = Config::from_toml_str(
        "[listeners.amqp]\nbind = \"127.0.0.1:5673\"\nframe_max = 8192\nchannel_max = 16\nheartbeat_s = 0\nconnect_timeout_ms = 500\n",
        ORIGIN,
    )
    .expect("valid");
    let amqp = &config.listeners.amqp;
    assert_eq!(amqp.bind.port(), 5673);
    assert_eq!(
        (
            amqp.frame_max,
            amqp.channel_max,
            amqp.heartbeat_s,
            amqp.connect_timeout_ms
        ),
        (8192, 16, 0, 500)
    );
    let (line, key, _) = one_error("[listeners.amqp]\nframe_max = 100\n");
    assert_eq!((line, key.as_str()), (Some(2), "listeners.amqp.frame_max"));
    let (_, key, _) = one_error("[listeners.amqp]\nchannel_max = 0\n");
    assert_eq!(key, "listeners.amqp.channel_max");
}

#[test]
fn openwire_listener_keys_defaults_and_ranges() {
    let d = Config::default().listeners.openwire;
    assert!(d.enabled);
    assert_eq!(d.bind.to_string(), "127.0.0.1:61616");
    assert_eq!(d.max_frame_bytes, 104_857_600);
    assert_eq!(d.max_inactivity_ms, 30_000);
    assert_eq!(d.connect_timeout_ms, 10_000);
    let cfg = ok("[listeners.openwire]\n\
         enabled = false\n\
         bind = \"0.0.0.0:61617\"\n\
         max_frame_bytes = 2048\n\
         max_inactivity_ms = 0\n\
         connect_timeout_ms = 5\n");
    let o = cfg.listeners.openwire;
    assert!(!o.enabled);
    assert_eq!(o.bind.to_string(), "0.0.0.0:61617");
    assert_eq!(
        (o.max_frame_bytes, o.max_inactivity_ms, o.connect_timeout_ms),
        (2048, 0, 5)
    );
    let (line, key, _) = one_error("[listeners.openwire]\nmax_frame_bytes = 10\n");
    assert_eq!(
        (line, key.as_str()),
        (Some(2), "listeners.openwire.max_frame_bytes")
    );
    let (_, key, _) = one_error("[listeners.openwire]\nconnect_timeout_ms = 0\n");
    assert_eq!(key, "listeners.openwire.connect_timeout_ms");
    let (_, key, _) = one_error("[listeners.openwire]\nport = 1\n");
    assert_eq!(key, "listeners.openwire.port");
}

#[test]
fn virtual_topic_keys_parse_and_bad_names_are_errors() {
    let cfg = ok(r#"
[broker]
virtual_topics = false
virtual_topic_selector_aware = true
virtual_topic_name = "events.>"
virtual_topic_consumer_prefix = "VirtualTopicConsumers.*."
"#);
    let b = &cfg.broker;
    assert!(!b.virtual_topics && b.virtual_topic_selector_aware);
    assert_eq!(b.virtual_topic_name, "events.>");
    assert_eq!(b.virtual_topic_consumer_prefix, "VirtualTopicConsumers.*.");
    let d = Config::default().broker;
    assert!(d.virtual_topics && !d.virtual_topic_selector_aware);
    assert_eq!(
        (
            d.virtual_topic_name.as_str(),
            d.virtual_topic_consumer_prefix.as_str()
        ),
        ("VirtualTopic.>", "Consumer.*.")
    );
    for bad in ["Consumer.*", "Consumer.>.", ""] {
        let (_, key, message) = one_error(&format!(
            "[broker]\nvirtual_topic_consumer_prefix = \"{bad}\"\n"
        ));
        assert_eq!(key, "broker.virtual_topic_consumer_prefix", "{bad}");
        assert!(message.contains("invalid prefix"), "{message}");
    }
    let (_, key, _) = one_error("[broker]\nvirtual_topic_name = \"a..>.b\"\n");
    assert_eq!(key, "broker.virtual_topic_name");
}
