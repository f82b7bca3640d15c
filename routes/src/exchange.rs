//! AMQP 0-9-1 style exchanges and bindings, as routing rules over the engine's queues.
//!
//! An exchange is a named router: a message published to it with a routing key (and headers)
//! goes to every queue (or further exchange) whose binding matches. The kinds are RabbitMQ's:
//! `direct` (key equals binding key), `fanout` (every binding), `topic` (`.` separated words,
//! `*` one word, `#` zero or more words, anywhere in the pattern) and `headers` (`x-match` `all`
//! or `any` over the binding's arguments).
//!
//! Two exchanges tie AMQP into the engine's address model:
//! - the default exchange `""` routes a key to the anycast queue of that name;
//! - `amq.topic` *is* the multicast address space: a key that reaches it is an address that
//!   topic subscriptions of every protocol (STOMP `/topic/a.b`, MQTT `a/b`) match, and a topic
//!   send from any protocol is routed through `amq.topic`'s bindings too.
//!
//! ### Invariants
//! - The predeclared exchanges (`""`, `amq.direct`, `amq.fanout`, `amq.topic`, `amq.headers`,
//!   `amq.match`) always exist; the default exchange has no explicit bindings.
//! - Routing follows exchange-to-exchange bindings at most once per exchange (cycles end).

use crate::message::PropertyValue;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The default (nameless) exchange.
pub const DEFAULT_EXCHANGE: &str = "";
/// The topic exchange that is the engine's multicast address space.
pub const TOPIC_EXCHANGE: &str = "amq.topic";

/// How an exchange matches bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// The routing key equals the binding key.
    Direct,
    /// Every binding matches.
    Fanout,
    /// The binding key is a pattern over `.` separated words (`*` one, `#` zero or more).
    Topic,
    /// The binding's arguments are compared with the message headers (`x-match` all / any).
    Headers,
}

impl ExchangeKind {
    /// The kind named `name` as AMQP writes it (`direct`, `fanout`, `topic`, `headers`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    /// The AMQP name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// How an exchange was declared; a redeclaration must agree (RabbitMQ's equivalence rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeSpec {
    /// Matching rule.
    pub kind: ExchangeKind,
    /// Declared durable.
    pub durable: bool,
    /// Deleted when its last binding (as a source) goes.
    pub auto_delete: bool,
    /// Clients may not publish to it directly, only through exchange-to-exchange bindings.
    pub internal: bool,
}

impl ExchangeSpec {
    /// A durable, non-internal exchange of `kind`.
    pub fn new(kind: ExchangeKind) -> Self {
        ExchangeSpec {
            kind,
            durable: true,
            auto_delete: false,
            internal: false,
        }
    }
}

/// Where a binding leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingTarget {
    /// An anycast queue, by name.
    Queue(String),
    /// Another exchange, by name (exchange-to-exchange binding).
    Exchange(String),
}

/// `x-match` of a headers binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersMatch {
    /// Every listed header must match (`all`, the default); `x-` arguments are ignored.
    All,
    /// At least one listed header must match (`any`).
    Any,
}

/// A headers-exchange binding's arguments: the match mode and the header values to compare
/// (`None` means the header only has to be present, as a `void` argument in RabbitMQ).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadersArgs {
    /// `all` or `any`.
    pub mode: HeadersMatch,
    /// Header names and expected values; names starting with `x-` are not listed.
    pub values: Vec<(String, Option<PropertyValue>)>,
}

/// One binding from a source exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Where matching messages go.
    pub target: BindingTarget,
    /// Binding key (a pattern for topic exchanges).
    pub key: String,
    /// Headers-exchange arguments, if the binding has any.
    pub headers: Option<HeadersArgs>,
}

/// Errors of exchange and binding operations, each mapping onto an AMQP reply code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// No exchange of that name (AMQP 404).
    #[error("no exchange '{0}'")]
    NotFound(String),
    /// Redeclared with other settings, or not deletable now (AMQP 406).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Reserved names and the default exchange (AMQP 403).
    #[error("{0}")]
    AccessRefused(String),
    /// An unknown exchange kind (AMQP 503 command invalid).
    #[error("invalid exchange type '{0}'")]
    InvalidKind(String),
}

/// What a publish reaches: queues by name and addresses of the multicast space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Anycast queues (they must exist to count as routed).
    pub queues: BTreeSet<String>,
    /// Keys that reached `amq.topic`: addresses that topic subscriptions match.
    pub topic_addresses: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<Binding>,
}

/// Every exchange and its bindings.
#[derive(Debug, Clone)]
pub struct Exchanges {
    exchanges: HashMap<String, Exchange>,
    /// Alternate exchanges (RabbitMQ's `alternate-exchange` argument): where a message that
    /// matches no binding of the exchange goes instead.
    alternates: HashMap<String, String>,
}

impl Default for Exchanges {
    fn default() -> Self {
        let mut exchanges = HashMap::new();
        for (name, kind) in [
            (DEFAULT_EXCHANGE, ExchangeKind::Direct),
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            (TOPIC_EXCHANGE, ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            exchanges.insert(
                name.to_string(),
                Exchange {
                    spec: ExchangeSpec::new(kind),
                    bindings: Vec::new(),
                },
            );
        }
        Exchanges {
            exchanges,
            alternates: HashMap::new(),
        }
    }
}

/// True for names only the broker may declare or delete (`amq.` prefix, the default exchange).
pub fn is_reserved(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

impl Exchanges {
    /// The spec of exchange `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<ExchangeSpec> {
        self.exchanges.get(name).map(|e| e.spec)
    }

    /// Declares an exchange: creates it, or checks that an existing one is equivalent.
    pub fn declare(&mut self, name: &str, spec: ExchangeSpec) -> Result<(), ExchangeError> {
        if let Some(existing) = self.exchanges.get(name) {
            let e = existing.spec;
            if e.kind != spec.kind {
                return Err(ExchangeError::PreconditionFailed(format!(
                    "inequivalent arg 'type' for exchange '{name}': received '{}' but current is '{}'",
                    spec.kind.as_str(),
                    e.kind.as_str()
                )));
            }
            if e.durable != spec.durable {
                return Err(ExchangeError::PreconditionFailed(format!(
                    "inequivalent arg 'durable' for exchange '{name}': received '{}' but current is '{}'",
                    spec.durable, e.durable
                )));
            }
            return Ok(());
        }
        if is_reserved(name) {
            return Err(ExchangeError::AccessRefused(format!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        self.exchanges.insert(
            name.to_string(),
            Exchange {
                spec,
                bindings: Vec::new(),
            },
        );
        Ok(())
    }

    /// Deletes an exchange (with `if_unused`, only one that is the source of no binding) and
    /// every binding that leads to it.
    pub fn delete(&mut self, name: &str, if_unused: bool) -> Result<(), ExchangeError> {
        if is_reserved(name) {
            return Err(ExchangeError::AccessRefused(format!(
                "cannot delete the predeclared exchange '{name}'"
            )));
        }
        let Some(exchange) = self.exchanges.get(name) else {
            return Err(ExchangeError::NotFound(name.to_string()));
        };
        if if_unused && !exchange.bindings.is_empty() {
            return Err(ExchangeError::PreconditionFailed(format!(
                "exchange '{name}' in use"
            )));
        }
        self.exchanges.remove(name);
        self.alternates.remove(name);
        let target = BindingTarget::Exchange(name.to_string());
        self.remove_target(&target);
        Ok(())
    }

    /// Adds a binding from exchange `source` (a no-op if the same binding exists).
    pub fn bind(&mut self, source: &str, binding: Binding) -> Result<(), ExchangeError> {
        if source.is_empty() {
            return Err(ExchangeError::AccessRefused(
                "operation not permitted on the default exchange".into(),
            ));
        }
        if let BindingTarget::Exchange(dest) = &binding.target {
            if dest.is_empty() {
                return Err(ExchangeError::AccessRefused(
                    "operation not permitted on the default exchange".into(),
                ));
            }
            if !self.exchanges.contains_key(dest) {
                return Err(ExchangeError::NotFound(dest.clone()));
            }
        }
        let Some(exchange) = self.exchanges.get_mut(source) else {
            return Err(ExchangeError::NotFound(source.to_string()));
        };
        if !exchange.bindings.contains(&binding) {
            exchange.bindings.push(binding);
        }
        Ok(())
    }

    /// Removes a binding (a no-op if it does not exist); an auto-delete source left with no
    /// binding goes too.
    pub fn unbind(&mut self, source: &str, binding: &Binding) -> Result<(), ExchangeError> {
        if source.is_empty() {
            return Err(ExchangeError::AccessRefused(
                "operation not permitted on the default exchange".into(),
            ));
        }
        let Some(exchange) = self.exchanges.get_mut(source) else {
            return Err(ExchangeError::NotFound(source.to_string()));
        };
        exchange.bindings.retain(|b| b != binding);
        if exchange.bindings.is_empty() && exchange.spec.auto_delete {
            self.exchanges.remove(source);
        }
        Ok(())
    }

    /// Removes every binding that leads to `target` (its queue or exchange was deleted).
    pub fn remove_target(&mut self, target: &BindingTarget) {
        let mut emptied = Vec::new();
        for (name, exchange) in self.exchanges.iter_mut() {
            let before = exchange.bindings.len();
            exchange.bindings.retain(|b| &b.target != target);
            if before != exchange.bindings.len()
                && exchange.bindings.is_empty()
                && exchange.spec.auto_delete
            {
                emptied.push(name.clone());
            }
        }
        for name in emptied {
            self.exchanges.remove(&name);
        }
    }

    /// Sets (or with `None` clears) the alternate exchange of `name`.
    pub fn set_alternate(&mut self, name: &str, alternate: Option<String>) {
        match alternate {
            Some(a) => {
                self.alternates.insert(name.to_string(), a);
            }
            None => {
                self.alternates.remove(name);
            }
        }
    }

    /// The alternate exchange of `name`, if it has one.
    pub fn alternate(&self, name: &str) -> Option<&str> {
        self.alternates.get(name).map(String::as_str)
    }

    /// Every exchange with its spec and bindings, by name.
    pub fn list(&self) -> Vec<(String, ExchangeSpec, Vec<Binding>)> {
        let mut out: Vec<_> = self
            .exchanges
            .iter()
            .map(|(name, e)| (name.clone(), e.spec, e.bindings.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Routes a message published to `exchange` with `key` and `headers`.
    pub fn route(
        &self,
        exchange: &str,
        key: &str,
        headers: &BTreeMap<String, PropertyValue>,
    ) -> Result<Routed, ExchangeError> {
        if !self.exchanges.contains_key(exchange) {
            return Err(ExchangeError::NotFound(exchange.to_string()));
        }
        let mut routed = Routed::default();
        let mut visited = BTreeSet::new();
        self.route_into(exchange, key, headers, &mut visited, &mut routed);
        Ok(routed)
    }

    fn route_into(
        &self,
        name: &str,
        key: &str,
        headers: &BTreeMap<String, PropertyValue>,
        visited: &mut BTreeSet<String>,
        routed: &mut Routed,
    ) {
        if !visited.insert(name.to_string()) {
            return;
        }
        if name == DEFAULT_EXCHANGE {
            routed.queues.insert(key.to_string());
            return;
        }
        if name == TOPIC_EXCHANGE {
            routed.topic_addresses.insert(key.to_string());
        }
        let Some(exchange) = self.exchanges.get(name) else {
            return;
        };
        let mut matched_any = false;
        for binding in &exchange.bindings {
            let matched = match exchange.spec.kind {
                ExchangeKind::Direct => binding.key == key,
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => topic_matches(&binding.key, key),
                ExchangeKind::Headers => binding
                    .headers
                    .as_ref()
                    .is_none_or(|args| headers_match(args, headers)),
            };
            if !matched {
                continue;
            }
            matched_any = true;
            match &binding.target {
                BindingTarget::Queue(q) => {
                    routed.queues.insert(q.clone());
                }
                BindingTarget::Exchange(e) => self.route_into(e, key, headers, visited, routed),
            }
        }
        if !matched_any {
            if let Some(alternate) = self.alternates.get(name) {
                self.route_into(alternate, key, headers, visited, routed);
            }
        }
    }
}

/// AMQP topic matching: `.` separated words, `*` matches exactly one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    // Dynamic programming over (pattern position, key position): no recursion blow-up.
    let mut reach = vec![false; key.len() + 1];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for word in &pattern {
        let mut next = vec![false; key.len() + 1];
        for (i, reached) in reach.iter().enumerate() {
            if !reached {
                continue;
            }
            match *word {
                "#" => {
                    for slot in next.iter_mut().skip(i) {
                        *slot = true;
                    }
                }
                "*" => {
                    if let Some(slot) = next.get_mut(i + 1) {
                        *slot = true;
                    }
                }
                w => {
                    if key.get(i) == Some(&w) {
                        if let Some(slot) = next.get_mut(i + 1) {
                            *slot = true;
                        }
                    }
                }
            }
        }
        reach = next;
    }
    reach.last().copied().unwrap_or(false)
}

fn value_matches(expected: &PropertyValue, actual: &PropertyValue) -> bool {
    expected == actual || expected.to_text() == actual.to_text()
}

/// Headers-exchange matching.
pub fn headers_match(args: &HeadersArgs, headers: &BTreeMap<String, PropertyValue>) -> bool {
    let mut results =
        args.values
            .iter()
            .map(|(name, expected)| match (expected, headers.get(name)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(e), Some(a)) => value_matches(e, a),
            });
    match args.mode {
        HeadersMatch::All => results.all(|m| m),
        HeadersMatch::Any => results.any(|m| m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_words_match_like_rabbitmq() {
        assert!(topic_matches("a.b", "a.b"));
        assert!(topic_matches("a.*", "a.b"));
        assert!(!topic_matches("a.*", "a.b.c"));
        assert!(!topic_matches("a.*", "a"));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("#.c", "a.b.c"));
        assert!(topic_matches("#.c", "c"));
        assert!(topic_matches("a.#.c", "a.c"));
        assert!(topic_matches("a.#.c", "a.x.y.c"));
        assert!(!topic_matches("a.#.c", "a.x.y.d"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("*.*", "x.y"));
        assert!(topic_matches("", ""));
    }

    fn queue(name: &str, key: &str) -> Binding {
        Binding {
            target: BindingTarget::Queue(name.into()),
            key: key.into(),
            headers: None,
        }
    }

    #[test]
    fn routing_follows_exchange_bindings_once() {
        let mut x = Exchanges::default();
        x.declare("a", ExchangeSpec::new(ExchangeKind::Fanout))
            .unwrap();
        x.declare("b", ExchangeSpec::new(ExchangeKind::Fanout))
            .unwrap();
        x.bind(
            "a",
            Binding {
                target: BindingTarget::Exchange("b".into()),
                key: String::new(),
                headers: None,
            },
        )
        .unwrap();
        x.bind(
            "b",
            Binding {
                target: BindingTarget::Exchange("a".into()),
                key: String::new(),
                headers: None,
            },
        )
        .unwrap();
        x.bind("b", queue("q", "")).unwrap();
        let r = x.route("a", "k", &BTreeMap::new()).unwrap();
        assert_eq!(r.queues.into_iter().collect::<Vec<_>>(), vec!["q"]);
    }

    #[test]
    fn default_and_topic_exchanges_reach_the_address_model() {
        let x = Exchanges::default();
        let r = x.route("", "orders", &BTreeMap::new()).unwrap();
        assert!(r.queues.contains("orders"));
        let r = x.route("amq.topic", "a.b", &BTreeMap::new()).unwrap();
        assert!(r.topic_addresses.contains("a.b"));
        assert!(x.route("nope", "k", &BTreeMap::new()).is_err());
    }

    #[test]
    fn headers_all_and_any() {
        let args = HeadersArgs {
            mode: HeadersMatch::All,
            values: vec![
                ("a".into(), Some(PropertyValue::String("1".into()))),
                ("b".into(), None),
            ],
        };
        let mut h = BTreeMap::new();
        h.insert("a".to_string(), PropertyValue::String("1".into()));
        assert!(!headers_match(&args, &h));
        h.insert("b".to_string(), PropertyValue::Int(7));
        assert!(headers_match(&args, &h));
        let any = HeadersArgs {
            mode: HeadersMatch::Any,
            values: vec![
                ("z".into(), None),
                ("a".into(), Some(PropertyValue::Int(1))),
            ],
        };
        assert!(headers_match(&any, &h));
    }

    #[test]
    fn unmatched_messages_go_to_the_alternate_exchange() {
        let mut x = Exchanges::default();
        x.declare("main", ExchangeSpec::new(ExchangeKind::Direct))
            .unwrap();
        x.declare("ae", ExchangeSpec::new(ExchangeKind::Fanout))
            .unwrap();
        x.set_alternate("main", Some("ae".into()));
        x.bind("main", queue("routed", "k")).unwrap();
        x.bind("ae", queue("unrouted", "")).unwrap();
        let none = BTreeMap::new();
        let r = x.route("main", "k", &none).unwrap();
        assert_eq!(r.queues.into_iter().collect::<Vec<_>>(), vec!["routed"]);
        let r = x.route("main", "other", &none).unwrap();
        assert_eq!(r.queues.into_iter().collect::<Vec<_>>(), vec!["unrouted"]);
        assert_eq!(x.alternate("main"), Some("ae"));
    }

    #[test]
    fn reserved_names_and_equivalence() {
        let mut x = Exchanges::default();
        assert!(matches!(
            x.declare("amq.custom", ExchangeSpec::new(ExchangeKind::Direct)),
            Err(ExchangeError::AccessRefused(_))
        ));
        x.declare("e", ExchangeSpec::new(ExchangeKind::Direct))
            .unwrap();
        assert!(matches!(
            x.declare("e", ExchangeSpec::new(ExchangeKind::Topic)),
            Err(ExchangeError::PreconditionFailed(_))
        ));
        assert!(x
            .declare("amq.topic", ExchangeSpec::new(ExchangeKind::Topic))
            .is_ok());
        assert!(matches!(
            x.delete("amq.topic", false),
            Err(ExchangeError::AccessRefused(_))
        ));
        x.bind("e", queue("q", "k")).unwrap();
        assert!(matches!(
            x.delete("e", true),
            Err(ExchangeError::PreconditionFailed(_))
        ));
        x.delete("e", false).unwrap();
        assert!(x.get("e").is_none());
    }
}
