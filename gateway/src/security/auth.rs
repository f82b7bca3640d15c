//! Authentication (users, argon2 password hashes, the loopback rules, failure back-off) and
//! authorization (ActiveMQ-style entries per destination pattern).

use super::limits::ConnectionRefused;
use super::scram::{decoy_credential, ScramCredential};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use config::{
    AuthorizationEntry, AuthorizationKind, Config, TempDestinationAuthorization, UserConfig,
};
use routes::{Destination, DestinationKind, TEMP_PREFIX};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The built-in user admitted on loopback while no user is configured (as RabbitMQ's).
pub const GUEST_USER: &str = "guest";
/// The group of the built-in guest user.
pub const GUEST_GROUP: &str = "guests";
/// The name an unauthenticated (anonymous) principal goes by, as ActiveMQ's `anonymousUser`.
pub const ANONYMOUS_USER: &str = "anonymous";
/// The group of anonymous principals, as ActiveMQ's `anonymousGroup`.
pub const ANONYMOUS_GROUP: &str = "anonymous";
/// A group name that, in an `[[authorization]]` list, stands for every admitted principal.
pub const EVERYONE_GROUP: &str = "*";

/// Failures from one address further apart than this start the back-off over.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// The longest delay before a failed authentication is answered.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(30);
/// Addresses remembered for the back-off before old ones are forgotten.
const MAX_REMEMBERED_ADDRESSES: usize = 10_000;

/// Why a client was not admitted. `Display` is the message for the client, in ActiveMQ's
/// words; it names the user but never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user, wrong password, or a user without a password hash.
    #[error("User name [{user}] or password is invalid.")]
    BadCredentials {
        /// The user name the client gave.
        user: String,
    },
    /// No credentials, and anonymous clients are not admitted here (users are configured, or
    /// the listener is not bound to loopback).
    #[error("User name [null] or password is invalid.")]
    AnonymousRefused,
    /// `guest` from a peer that is not on loopback.
    #[error("User name [guest] is only allowed to connect from localhost.")]
    GuestNotFromLoopback,
    /// The user already has `security.max_connections_per_user` connections open.
    #[error("User {user} already has the maximum of {limit} connections.")]
    TooManyConnections {
        /// The user.
        user: String,
        /// The limit.
        limit: u64,
    },
    /// The connection is past `security.max_connections` or `max_connections_per_address`
    /// (counted when it was accepted).
    #[error("{0}")]
    ConnectionLimit(ConnectionRefused),
}

/// What a principal wants to do to a destination (ActiveMQ's read / write / admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Consume from a queue, subscribe to a topic, browse.
    Read,
    /// Send or publish.
    Write,
    /// Create (declare) a destination; delete it. Checked by protocols that create
    /// destinations explicitly (AMQP declare, OpenWire DestinationInfo, the admin API). STOMP
    /// and MQTT create destinations on first use and check only Read / Write: see
    /// `docs/security.md`.
    #[allow(dead_code)] // used by the protocols still to be wired (AMQP, OpenWire, admin API)
    Admin,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Read => "read from",
            Action::Write => "write to",
            Action::Admin => "create",
        }
    }
}

/// A refused operation. `Display` is ActiveMQ's wording:
/// `User alice is not authorized to write to: queue://orders`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("User {user} is not authorized to {}: {destination}", action.verb())]
pub struct AccessDenied {
    /// The principal's name.
    pub user: String,
    /// What was refused.
    pub action: Action,
    /// The destination, as `queue://name` or `topic://name`.
    pub destination: String,
}

/// Where a connection comes from: what authentication needs besides the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the listener that accepted the connection is bound to a loopback address.
    pub listener_is_loopback: bool,
    /// The common name of the client certificate verified by the TLS handshake, if any.
    pub certificate_user: Option<String>,
    /// Set when the connection is past a connection limit (`security.max_connections`,
    /// `max_connections_per_address`) and is served only to be told so in its protocol:
    /// [`Authenticator::authenticate`] then refuses it with [`AuthError::ConnectionLimit`].
    pub refused: Option<ConnectionRefused>,
}

/// An admitted client: its name, its groups and the authorization entries it is held to.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Principal {
    name: Arc<str>,
    anonymous: bool,
    groups: Arc<[String]>,
    acl: Arc<AuthorizationMap>,
    /// The user's connection place (`security.max_connections_per_user`), given back when the
    /// last clone of this principal is dropped.
    _place: Option<Arc<UserPlace>>,
}

/// One connection counted against a user's limit.
#[derive(Debug)]
struct UserPlace {
    counts: Arc<Mutex<HashMap<String, u64>>>,
    user: String,
}

impl Drop for UserPlace {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

impl Principal {
    /// The user name (`anonymous` for an anonymous client).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for a client admitted without credentials.
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// The user's groups.
    #[allow(dead_code)] // for the admin API (who is connected, with which groups)
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// May this principal do `action` on `destination`? The destination name may be a
    /// wildcard pattern (a subscription): it is allowed only when entries granting the action
    /// cover every address the pattern can match.
    pub fn may(&self, action: Action, destination: &Destination) -> bool {
        self.acl.allows(&self.groups, action, destination)
    }

    /// May this principal do `action` on the Kafka consumer group `group`? Checked against the
    /// `group = "pattern"` entries; without any such entry groups are not authorized (true).
    pub fn may_group(&self, action: Action, group: &str) -> bool {
        let acl = &self.acl;
        if !acl
            .entries
            .iter()
            .any(|e| e.kind == AuthorizationKind::Group)
        {
            return true;
        }
        acl.granted(AuthorizationKind::Group, &self.groups, action, group)
    }

    /// [`Principal::may`], as a `Result` whose error is the message for the client.
    pub fn check(&self, action: Action, destination: &Destination) -> Result<(), AccessDenied> {
        if self.may(action, destination) {
            Ok(())
        } else {
            Err(AccessDenied {
                user: self.name.to_string(),
                action,
                destination: destination.to_string(),
            })
        }
    }
}

/// The `[[authorization]]` entries, and `[temp_destination_authorization]`.
#[derive(Debug, Default)]
struct AuthorizationMap {
    entries: Vec<AuthorizationEntry>,
    /// ActiveMQ's `tempDestinationAuthorizationEntry`; `None`: temporary destinations are free.
    temp: Option<TempDestinationAuthorization>,
}

impl AuthorizationMap {
    fn allows(&self, groups: &[String], action: Action, destination: &Destination) -> bool {
        if destination.name.starts_with(TEMP_PREFIX) {
            // Temporary destinations belong to the connection that made them; with a
            // `[temp_destination_authorization]` its groups are checked, as ActiveMQ's
            // `tempDestinationAuthorizationEntry`.
            let Some(temp) = &self.temp else {
                return true;
            };
            let granted = match action {
                Action::Read => &temp.read,
                Action::Write => &temp.write,
                Action::Admin => &temp.admin,
            };
            return granted
                .iter()
                .any(|g| g == EVERYONE_GROUP || groups.contains(g));
        }
        // No entries: no authorization (as ActiveMQ without an authorization plugin); Kafka
        // group entries alone do not authorize destinations.
        let no_destination_entries = self
            .entries
            .iter()
            .all(|e| e.kind == AuthorizationKind::Group);
        if no_destination_entries {
            return true;
        }
        let kind = match destination.kind {
            DestinationKind::Queue => AuthorizationKind::Queue,
            DestinationKind::Topic => AuthorizationKind::Topic,
        };
        self.granted(kind, groups, action, &destination.name)
    }

    /// Whether a `[[authorization]]` entry of `kind` matching `name` grants `action` to one of
    /// `groups`.
    fn granted(
        &self,
        kind: AuthorizationKind,
        groups: &[String],
        action: Action,
        name: &str,
    ) -> bool {
        // As ActiveMQ, the groups of every matching entry are combined.
        self.entries
            .iter()
            .filter(|e| e.kind == kind && covers(&e.pattern, name))
            .any(|e| {
                let granted = match action {
                    Action::Read => &e.read,
                    Action::Write => &e.write,
                    Action::Admin => &e.admin,
                };
                granted
                    .iter()
                    .any(|g| g == EVERYONE_GROUP || groups.contains(g))
            })
    }
}

fn is_greedy(level: &str) -> bool {
    level == ">" || level == "#"
}

/// Does the entry `pattern` match every address that `name` (an address or a subscription
/// pattern) can match? For a plain address this is ordinary wildcard matching.
fn covers(pattern: &str, name: &str) -> bool {
    if !routes::address::is_pattern(name) {
        return routes::address::pattern_matches(pattern, name);
    }
    let mut pat = pattern.split('.');
    let mut levels = name.split('.');
    loop {
        match (pat.next(), levels.next()) {
            (Some(p), _) if is_greedy(p) => return true,
            (Some(_), Some(l)) if is_greedy(l) => return false,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(l)) if p == l && l != "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// One configured user.
#[derive(Debug)]
struct User {
    password_hash: Option<String>,
    groups: Arc<[String]>,
    /// `[[users]] scram_sha256`, for SCRAM-SHA-256 logins (Kafka SASL).
    scram_sha256: Option<ScramCredential>,
}

/// Admits clients: checks credentials against the configured users with the loopback rules,
/// delays answers after repeated failures from one address, and hands out [`Principal`]s that
/// carry the authorization entries.
///
/// ### Invariants
/// - A password is only ever compared through argon2 (or, for the built-in guest, compared
///   whole); it is never stored, logged or put in an error.
/// - Unknown users cost an argon2 verification too, so timing does not tell which users exist.
#[derive(Debug)]
pub struct Authenticator {
    users: HashMap<String, User>,
    acl: Arc<AuthorizationMap>,
    failure_delay: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// `security.max_connections_per_user` (0 = none) and the connections per user.
    max_per_user: u64,
    per_user: Arc<Mutex<HashMap<String, u64>>>,
    /// Bounds the argon2 verifications running at once (each takes 19 MiB and a core for tens
    /// of milliseconds): a login storm queues instead of exhausting memory.
    verifications: tokio::sync::Semaphore,
}

impl Authenticator {
    /// An authenticator for `users` and `authorization` entries; failed attempts are answered
    /// after `failure_delay`, doubled per further failure from the same address (up to 30 s).
    pub fn new(
        users: &[UserConfig],
        authorization: &[AuthorizationEntry],
        failure_delay: Duration,
    ) -> Self {
        Authenticator {
            users: users
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        User {
                            password_hash: u.password_hash.clone(),
                            groups: u.groups.clone().into(),
                            scram_sha256: u
                                .scram_sha256
                                .as_deref()
                                .and_then(|c| ScramCredential::parse(c).ok()),
                        },
                    )
                })
                .collect(),
            acl: Arc::new(AuthorizationMap {
                entries: authorization.to_vec(),
                temp: None,
            }),
            failure_delay,
            failures: Mutex::new(HashMap::new()),
            max_per_user: 0,
            per_user: Arc::new(Mutex::new(HashMap::new())),
            verifications: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            ),
        }
    }

    /// The authenticator a configuration asks for (`[[users]]`, `[[authorization]]`,
    /// `security.auth_failure_delay_ms`).
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            &config.users,
            &config.authorization,
            Duration::from_millis(config.security.auth_failure_delay_ms),
        )
        .with_max_connections_per_user(config.security.max_connections_per_user)
        .with_temp_destination_authorization(config.temp_destination_authorization.clone())
    }

    /// Holds temporary destinations to `temp` (ActiveMQ's `tempDestinationAuthorizationEntry`);
    /// `None` leaves them free to every admitted client.
    pub fn with_temp_destination_authorization(
        mut self,
        temp: Option<TempDestinationAuthorization>,
    ) -> Self {
        self.acl = Arc::new(AuthorizationMap {
            entries: self.acl.entries.clone(),
            temp,
        });
        self
    }

    /// Admits at most `limit` connections at once per authenticated user (0 = no limit); a
    /// connection counts for as long as a clone of its [`Principal`] lives.
    pub fn with_max_connections_per_user(mut self, limit: u64) -> Self {
        self.max_per_user = limit;
        self
    }

    /// Takes a connection place for `principal`'s user, or refuses past the per-user limit.
    fn take_place(&self, mut principal: Principal) -> Result<Principal, AuthError> {
        if self.max_per_user == 0 || principal.anonymous {
            return Ok(principal);
        }
        let mut counts = self
            .per_user
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = counts.entry(principal.name.to_string()).or_insert(0);
        if *open >= self.max_per_user {
            return Err(AuthError::TooManyConnections {
                user: principal.name.to_string(),
                limit: self.max_per_user,
            });
        }
        *open += 1;
        principal._place = Some(Arc::new(UserPlace {
            counts: self.per_user.clone(),
            user: principal.name.to_string(),
        }));
        Ok(principal)
    }

    /// Admits a client, or says why not.
    ///
    /// `user`/`password` are the credentials of the protocol (`None` or empty user: none
    /// given). A client without a password whose verified client certificate names a
    /// configured user (and that gave no other user name) is admitted as that user.
    /// Password checks run on the blocking pool (argon2 is deliberately slow), and a failure
    /// is answered only after the back-off delay for the peer's address.
    pub async fn authenticate(
        self: &Arc<Self>,
        user: Option<&str>,
        password: Option<&[u8]>,
        peer: &PeerInfo,
    ) -> Result<Principal, AuthError> {
        // Refused at accept (and counted there): no password check, no back-off.
        if let Some(refused) = peer.refused {
            tracing::info!(peer = %peer.addr, reason = %refused, "connection refused");
            return Err(AuthError::ConnectionLimit(refused));
        }
        let this = self.clone();
        let user = user.map(str::to_owned);
        let password = password.map(<[u8]>::to_vec);
        let peer_owned = peer.clone();
        let outcome = {
            // Never closed: the semaphore lives as long as the authenticator. Released before
            // the back-off below, so failing clients do not hold up the others.
            let _slot = self.verifications.acquire().await.ok();
            tokio::task::spawn_blocking(move || {
                this.verify(user.as_deref(), password.as_deref(), &peer_owned)
            })
            .await
            .unwrap_or_else(|_| {
                Err(AuthError::BadCredentials {
                    user: String::new(),
                })
            })
        };
        let outcome = outcome.and_then(|p| self.take_place(p));
        match &outcome {
            Ok(_) => self.forget_failures(peer.addr.ip()),
            // Not a failed login: no back-off.
            Err(e @ AuthError::TooManyConnections { .. }) => {
                tracing::info!(peer = %peer.addr, reason = %e, "connection refused");
                crate::connections::limit_refused("max_connections_per_user");
            }
            Err(e) => {
                crate::connections::limit_refused("auth_failure");
                let delay = self.record_failure(peer.addr.ip());
                tracing::info!(peer = %peer.addr, reason = %e, delay_ms = delay.as_millis() as u64,
                    "authentication failed");
                tokio::time::sleep(delay).await;
            }
        }
        outcome
    }

    /// The decision of [`Authenticator::authenticate`], synchronously and without back-off.
    /// CPU-heavy when a password is checked.
    pub fn verify(
        &self,
        user: Option<&str>,
        password: Option<&[u8]>,
        peer: &PeerInfo,
    ) -> Result<Principal, AuthError> {
        let user = user.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.is_empty());
        let peer_is_loopback = peer.addr.ip().is_loopback();
        if let Some(cert_user) = &peer.certificate_user {
            if password.is_none() && (user.is_none() || user == Some(cert_user.as_str())) {
                if let Some(u) = self.users.get(cert_user) {
                    if cert_user == GUEST_USER && !peer_is_loopback {
                        return Err(AuthError::GuestNotFromLoopback);
                    }
                    return Ok(self.principal(cert_user, false, u.groups.clone()));
                }
            }
        }
        let Some(name) = user else {
            if self.users.is_empty() && peer.listener_is_loopback {
                return Ok(self.anonymous());
            }
            return Err(AuthError::AnonymousRefused);
        };
        let bad = || AuthError::BadCredentials {
            user: name.to_owned(),
        };
        if name == GUEST_USER && !peer_is_loopback {
            return Err(AuthError::GuestNotFromLoopback);
        }
        if let Some(u) = self.users.get(name) {
            let Some(hash) = &u.password_hash else {
                // A user with only a SCRAM credential can still log in with its password.
                if let (Some(scram), Some(p)) = (&u.scram_sha256, password) {
                    if scram.verify_password(p) {
                        return Ok(self.principal(name, false, u.groups.clone()));
                    }
                    return Err(bad());
                }
                dummy_verify(password.unwrap_or_default());
                return Err(bad());
            };
            return match password {
                Some(p) if verify_password(hash, p) => {
                    Ok(self.principal(name, false, u.groups.clone()))
                }
                _ => Err(bad()),
            };
        }
        if !self.users.is_empty() || !peer.listener_is_loopback {
            // Only configured users here; spend the time a real check would.
            dummy_verify(password.unwrap_or_default());
            return Err(bad());
        }
        // Loopback listener, no users configured: the friendly default.
        if name == GUEST_USER {
            return if password == Some(GUEST_USER.as_bytes()) {
                Ok(self.principal(GUEST_USER, false, vec![GUEST_GROUP.to_owned()].into()))
            } else {
                Err(bad())
            };
        }
        // Any other name is not checked (as ActiveMQ without an authentication plugin and
        // mosquitto with allow_anonymous): the client is anonymous under the name it gave.
        Ok(self.principal(name, true, vec![ANONYMOUS_GROUP.to_owned()].into()))
    }

    fn anonymous(&self) -> Principal {
        self.principal(
            ANONYMOUS_USER,
            true,
            vec![ANONYMOUS_GROUP.to_owned()].into(),
        )
    }

    fn principal(&self, name: &str, anonymous: bool, groups: Arc<[String]>) -> Principal {
        Principal {
            name: name.into(),
            anonymous,
            groups,
            acl: self.acl.clone(),
            _place: None,
        }
    }

    fn record_failure(&self, ip: IpAddr) -> Duration {
        if self.failure_delay.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_REMEMBERED_ADDRESSES {
            failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        self.failure_delay
            .saturating_mul(1u32 << doublings)
            .min(MAX_FAILURE_DELAY)
    }

    fn forget_failures(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&ip);
        }
    }
}

/// The SCRAM-SHA-256 credential to run an exchange with ([`Authenticator::scram_credential`]).
#[derive(Debug, Clone)]
pub struct ScramLookup {
    /// The credential; a decoy no proof matches when the user cannot log in with SCRAM.
    pub credential: ScramCredential,
    /// Whether a successful exchange may admit the user (false: the exchange is run to the
    /// end with a decoy, then refused, so that it does not tell which users exist).
    pub known: bool,
}

impl Authenticator {
    /// The credential a SCRAM-SHA-256 exchange for `user` from `peer` runs with: the user's
    /// `scram_sha256`; for the built-in `guest` on a loopback listener without configured
    /// users, one derived from its password; otherwise a decoy. `guest` from a peer that is
    /// not on loopback is refused at once.
    pub fn scram_credential(&self, user: &str, peer: &PeerInfo) -> Result<ScramLookup, AuthError> {
        if user == GUEST_USER && !peer.addr.ip().is_loopback() {
            return Err(AuthError::GuestNotFromLoopback);
        }
        let found = match self.users.get(user) {
            Some(u) => u.scram_sha256.clone(),
            None if user == GUEST_USER && self.users.is_empty() && peer.listener_is_loopback => {
                static GUEST: OnceLock<Option<ScramCredential>> = OnceLock::new();
                GUEST
                    .get_or_init(|| ScramCredential::generate(GUEST_USER.as_bytes()).ok())
                    .clone()
            }
            None => None,
        };
        Ok(match found {
            Some(credential) => ScramLookup {
                credential,
                known: true,
            },
            None => ScramLookup {
                credential: decoy_credential(user),
                known: false,
            },
        })
    }

    /// Admits `user` after a SCRAM exchange whose proof was right for the credential
    /// [`Authenticator::scram_credential`] returned with `known`.
    pub fn admit_scram(&self, user: &str, peer: &PeerInfo) -> Result<Principal, AuthError> {
        if let Some(refused) = peer.refused {
            return Err(AuthError::ConnectionLimit(refused));
        }
        let principal = match self.users.get(user) {
            Some(u) if u.scram_sha256.is_some() => self.principal(user, false, u.groups.clone()),
            None if user == GUEST_USER
                && self.users.is_empty()
                && peer.listener_is_loopback
                && peer.addr.ip().is_loopback() =>
            {
                self.principal(GUEST_USER, false, vec![GUEST_GROUP.to_owned()].into())
            }
            _ => {
                return Err(AuthError::BadCredentials {
                    user: user.to_owned(),
                })
            }
        };
        let principal = self.take_place(principal)?;
        self.forget_failures(peer.addr.ip());
        Ok(principal)
    }

    /// Answers a failed authentication that did not go through
    /// [`Authenticator::authenticate`] (a SCRAM proof that did not match): logs it and waits
    /// out the back-off for the peer's address.
    ///
    /// Counted and logged as [`Authenticator::authenticate`] does: a refusal for the per-user
    /// limit is `max_connections_per_user` (not a failed login: no back-off), anything else is
    /// `auth_failure`, answered after the back-off.
    pub async fn failed(&self, peer: &PeerInfo, reason: &AuthError) {
        if let AuthError::TooManyConnections { .. } = reason {
            tracing::info!(peer = %peer.addr, reason = %reason, "connection refused");
            crate::connections::limit_refused("max_connections_per_user");
            return;
        }
        crate::connections::limit_refused("auth_failure");
        let delay = self.record_failure(peer.addr.ip());
        tracing::info!(peer = %peer.addr, reason = %reason, delay_ms = delay.as_millis() as u64,
            "authentication failed");
        tokio::time::sleep(delay).await;
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Whether `password` matches the argon2 PHC string `phc` (CPU-heavy on purpose).
pub(crate) fn verify_password(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
        Err(_) => false,
    }
}

/// Spends about the time of one verification, so that unknown users answer as slowly as
/// known ones.
pub(crate) fn dummy_verify(password: &[u8]) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) = DUMMY.get_or_init(|| hash_password(b"dummy password").ok()) {
        let _ = verify_password(hash, password);
    }
}

/// Hashes `password` with argon2id (default parameters) and a random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `[[users]] password_hash`.
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, listener_is_loopback: bool) -> PeerInfo {
        PeerInfo {
            addr: addr
                .parse()
                .unwrap_or_else(|_| panic!("bad test address {addr}")),
            listener_is_loopback,
            certificate_user: None,
            refused: None,
        }
    }

    fn user(name: &str, password: &str, groups: &[&str]) -> UserConfig {
        UserConfig {
            name: name.to_owned(),
            password_hash: Some(hash_password(password.as_bytes()).unwrap_or_default()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scram_sha256: None,
        }
    }

    fn entry(
        kind: AuthorizationKind,
        pattern: &str,
        read: &[&str],
        write: &[&str],
    ) -> AuthorizationEntry {
        AuthorizationEntry {
            kind,
            pattern: pattern.to_owned(),
            read: read.iter().map(|g| g.to_string()).collect(),
            write: write.iter().map(|g| g.to_string()).collect(),
            admin: Vec::new(),
        }
    }

    const LOCAL: &str = "127.0.0.1:5000";
    const REMOTE: &str = "192.0.2.7:5000";

    #[test]
    fn loopback_without_users_admits_anonymous_and_guest() {
        let auth = Authenticator::new(&[], &[], Duration::ZERO);
        let p = auth.verify(None, None, &peer(LOCAL, true));
        assert!(p.is_ok_and(|p| p.is_anonymous()));
        let g = auth.verify(Some("guest"), Some(b"guest"), &peer(LOCAL, true));
        assert!(g.is_ok_and(|g| g.name() == "guest" && !g.is_anonymous()));
        assert_eq!(
            auth.verify(Some("guest"), Some(b"nope"), &peer(LOCAL, true))
                .err(),
            Some(AuthError::BadCredentials {
                user: "guest".into()
            })
        );
    }

    #[test]
    fn other_interfaces_admit_only_configured_users() {
        let auth = Authenticator::new(&[], &[], Duration::ZERO);
        assert_eq!(
            auth.verify(None, None, &peer(REMOTE, false)).err(),
            Some(AuthError::AnonymousRefused)
        );
        assert_eq!(
            auth.verify(Some("guest"), Some(b"guest"), &peer(REMOTE, false))
                .err(),
            Some(AuthError::GuestNotFromLoopback)
        );
        assert!(auth
            .verify(Some("bob"), Some(b"x"), &peer(LOCAL, false))
            .is_err());
    }

    #[test]
    fn configured_users_are_checked_and_anonymous_refused() {
        let auth = Authenticator::new(&[user("alice", "s3cret", &["admins"])], &[], Duration::ZERO);
        let a = auth.verify(Some("alice"), Some(b"s3cret"), &peer(REMOTE, false));
        assert!(a.is_ok_and(|a| a.groups() == ["admins".to_owned()]));
        assert!(auth
            .verify(Some("alice"), Some(b"wrong"), &peer(LOCAL, true))
            .is_err());
        assert!(auth
            .verify(Some("mallory"), Some(b"s3cret"), &peer(LOCAL, true))
            .is_err());
        assert_eq!(
            auth.verify(None, None, &peer(LOCAL, true)).err(),
            Some(AuthError::AnonymousRefused)
        );
        assert!(auth
            .verify(Some("guest"), Some(b"guest"), &peer(LOCAL, true))
            .is_err());
    }

    #[test]
    fn certificate_user_needs_no_password() {
        let auth = Authenticator::new(&[user("alice", "s3cret", &[])], &[], Duration::ZERO);
        let mut p = peer(REMOTE, false);
        p.certificate_user = Some("alice".into());
        assert!(auth
            .verify(None, None, &p)
            .is_ok_and(|a| a.name() == "alice"));
        p.certificate_user = Some("carol".into());
        assert!(auth.verify(None, None, &p).is_err());
    }

    #[test]
    fn error_messages_never_contain_the_password() {
        let auth = Authenticator::new(&[user("alice", "s3cret", &[])], &[], Duration::ZERO);
        let e = auth
            .verify(Some("alice"), Some(b"hunter2"), &peer(LOCAL, true))
            .err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(text, "User name [alice] or password is invalid.");
    }

    #[test]
    fn authorization_combines_matching_entries() {
        let acl = [
            entry(
                AuthorizationKind::Queue,
                "orders.>",
                &["readers"],
                &["writers"],
            ),
            entry(AuthorizationKind::Queue, "orders.eu", &["eu"], &[]),
            entry(AuthorizationKind::Topic, "prices.*", &["*"], &["admins"]),
        ];
        let auth = Authenticator::new(
            &[user("r", "p", &["readers"]), user("eu", "p", &["eu"])],
            &acl,
            Duration::ZERO,
        );
        let r = auth.verify(Some("r"), Some(b"p"), &peer(LOCAL, true));
        let Ok(r) = r else { panic!("r refused") };
        assert!(r.may(Action::Read, &Destination::queue("orders.eu")));
        assert!(!r.may(Action::Write, &Destination::queue("orders.eu")));
        assert!(!r.may(Action::Read, &Destination::topic("orders.eu")));
        assert!(!r.may(Action::Read, &Destination::queue("invoices")));
        assert!(r.may(Action::Read, &Destination::topic("prices.eur")));
        assert!(!r.may(Action::Write, &Destination::topic("prices.eur")));
        assert!(r.may(Action::Read, &Destination::queue(format!("{TEMP_PREFIX}x"))));
        assert_eq!(
            r.check(Action::Write, &Destination::queue("orders.eu"))
                .err()
                .map(|e| e.to_string()),
            Some("User r is not authorized to write to: queue://orders.eu".to_owned())
        );
        let Ok(eu) = auth.verify(Some("eu"), Some(b"p"), &peer(LOCAL, true)) else {
            panic!("eu refused")
        };
        assert!(eu.may(Action::Read, &Destination::queue("orders.eu")));
        assert!(!eu.may(Action::Read, &Destination::queue("orders.us")));
    }

    #[test]
    fn kafka_group_entries_authorize_groups_only() {
        let group_entry = entry(AuthorizationKind::Group, "billing.>", &["readers"], &[]);
        let auth = Authenticator::new(
            &[user("r", "p", &["readers"]), user("x", "p", &["other"])],
            &[group_entry],
            Duration::ZERO,
        );
        let Ok(r) = auth.verify(Some("r"), Some(b"p"), &peer(LOCAL, true)) else {
            panic!("r refused")
        };
        let Ok(x) = auth.verify(Some("x"), Some(b"p"), &peer(LOCAL, true)) else {
            panic!("x refused")
        };
        assert!(r.may_group(Action::Read, "billing.eu"));
        assert!(!x.may_group(Action::Read, "billing.eu"));
        assert!(!r.may_group(Action::Read, "shipping"));
        // Group entries alone do not restrict queues and topics.
        assert!(x.may(Action::Write, &Destination::queue("anything")));
        // Without group entries, groups are not authorized.
        let open = Authenticator::new(
            &[user("x", "p", &["other"])],
            &[entry(AuthorizationKind::Queue, "q", &["readers"], &[])],
            Duration::ZERO,
        );
        let Ok(x) = open.verify(Some("x"), Some(b"p"), &peer(LOCAL, true)) else {
            panic!("x refused")
        };
        assert!(x.may_group(Action::Read, "any-group"));
        assert!(!x.may(Action::Read, &Destination::queue("q")));
    }

    #[test]
    fn wildcard_subscriptions_need_entries_covering_them() {
        assert!(covers("orders.>", "orders.>"));
        assert!(covers("orders.>", "orders.*.eu"));
        assert!(covers(">", "a.#"));
        assert!(covers("a.*", "a.*"));
        assert!(!covers("orders.eu.>", "orders.>"));
        assert!(!covers("a.b", "a.*"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("a.*.c", "a.*"));
    }

    #[test]
    fn no_entries_means_no_authorization() {
        let auth = Authenticator::new(&[], &[], Duration::ZERO);
        let Ok(p) = auth.verify(None, None, &peer(LOCAL, true)) else {
            panic!("anonymous refused")
        };
        assert!(p.may(Action::Write, &Destination::queue("anything")));
        assert!(p.may(Action::Admin, &Destination::topic("x.>")));
    }

    #[test]
    fn per_user_limit_counts_live_principals() {
        let auth = Authenticator::new(&[user("alice", "pw", &[])], &[], Duration::ZERO)
            .with_max_connections_per_user(1);
        let admit = || {
            auth.verify(Some("alice"), Some(b"pw"), &peer(LOCAL, true))
                .and_then(|p| auth.take_place(p))
        };
        let first = admit().unwrap();
        let clone = first.clone();
        assert_eq!(
            admit().err(),
            Some(AuthError::TooManyConnections {
                user: "alice".into(),
                limit: 1
            })
        );
        drop(first);
        assert!(admit().is_err(), "a clone still holds the place");
        drop(clone);
        assert!(admit().is_ok());
    }

    #[tokio::test]
    async fn a_connection_refused_at_accept_is_refused_without_a_password_check() {
        let auth = Arc::new(Authenticator::new(
            &[user("alice", "pw", &[])],
            &[],
            Duration::from_secs(30),
        ));
        let mut refused = peer(LOCAL, true);
        refused.refused = Some(ConnectionRefused::Total { limit: 3 });
        // Good credentials or not, the answer is the connection limit, at once (no back-off).
        for password in [&b"pw"[..], b"wrong"] {
            let started = std::time::Instant::now();
            let outcome = auth
                .authenticate(Some("alice"), Some(password), &refused)
                .await;
            assert_eq!(
                outcome.err(),
                Some(AuthError::ConnectionLimit(ConnectionRefused::Total {
                    limit: 3
                }))
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        let message =
            AuthError::ConnectionLimit(ConnectionRefused::PerAddress { limit: 2 }).to_string();
        assert!(message.contains("maximum connections reached"), "{message}");
        assert!(
            message.contains("max_connections_per_address = 2"),
            "{message}"
        );
        // The same peer within the limits logs in.
        assert!(auth
            .authenticate(Some("alice"), Some(b"pw"), &peer(LOCAL, true))
            .await
            .is_ok());
    }

    #[test]
    fn failures_back_off_exponentially_per_address() {
        let auth = Authenticator::new(&[], &[], Duration::from_millis(100));
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert_eq!(auth.record_failure(ip), Duration::from_millis(100));
        assert_eq!(auth.record_failure(ip), Duration::from_millis(200));
        assert_eq!(auth.record_failure(ip), Duration::from_millis(400));
        for _ in 0..20 {
            auth.record_failure(ip);
        }
        assert_eq!(auth.record_failure(ip), MAX_FAILURE_DELAY);
        auth.forget_failures(ip);
        assert_eq!(auth.record_failure(ip), Duration::from_millis(100));
    }
}
