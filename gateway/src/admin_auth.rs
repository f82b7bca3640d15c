//! Credentials on the admin HTTP API (issue 9): HTTP Basic authentication against the
//! `[[users]]` allowed by `[admin] users` / `[admin] groups` (default: the `admin` group).
//!
//! - Required when any configured user is allowed, and always when the admin listener is bound
//!   to a non-loopback address (with nobody allowed, every protected request is then refused:
//!   an exposed API with no way in is safer than one open to the network).
//! - `/healthz` and `/readyz` stay open (probes carry no credentials); `/metrics` too with
//!   `[admin] metrics_auth = false`.
//! - A refused request gets 401 with `WWW-Authenticate: Basic realm="gateway admin"`; one with
//!   wrong credentials only after `security.auth_failure_delay_ms`, and it is counted in
//!   `gateway_limit_refusals_total{protocol="admin", limit="auth_failure"}`.
//! - Passwords are only ever compared through argon2; they are never logged or echoed, and an
//!   unknown user costs a verification too.

use crate::admin::AdminState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use config::Config;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Paths served without credentials: liveness and readiness probes.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];
/// The `WWW-Authenticate` challenge of a 401.
const CHALLENGE: &str = "Basic realm=\"gateway admin\", charset=\"UTF-8\"";

/// Who may use the admin API, and which paths need credentials.
#[derive(Debug)]
pub struct AdminAuth {
    /// Whether credentials are required at all.
    required: bool,
    /// `/metrics` without credentials (`[admin] metrics_auth = false`).
    metrics_open: bool,
    /// Allowed users and their password hashes (`None`: certificate-only user, who cannot
    /// log in with a password).
    users: HashMap<String, Option<String>>,
    /// Bounds argon2 verifications at once (each takes 19 MiB and tens of milliseconds).
    verifications: tokio::sync::Semaphore,
    /// How long a refused login waits for its 401 (`security.auth_failure_delay_ms`).
    failure_delay: std::time::Duration,
}

impl AdminAuth {
    /// The access rules a configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        let admin = &config.admin;
        let users: HashMap<String, Option<String>> = config
            .users
            .iter()
            .filter(|u| {
                admin.users.contains(&u.name) || u.groups.iter().any(|g| admin.groups.contains(g))
            })
            .map(|u| (u.name.clone(), u.password_hash.clone()))
            .collect();
        // Either admin listener reachable from elsewhere (the HTTPS twin runs with `[tls]`).
        let https = config.tls.is_some() && admin.tls_enabled;
        let exposed =
            !admin.bind.ip().is_loopback() || (https && !admin.tls_bind.ip().is_loopback());
        let required = !users.is_empty() || exposed;
        if required && users.is_empty() {
            tracing::warn!(
                address = %admin.bind,
                https_address = %admin.tls_bind,
                "admin listener not bound to loopback and no admin user configured ([admin] users \
                 or a [[users]] entry in an [admin] groups group): the admin API refuses every \
                 request but /healthz and /readyz"
            );
        }
        AdminAuth {
            required,
            metrics_open: !admin.metrics_auth,
            users,
            verifications: tokio::sync::Semaphore::new(2),
            failure_delay: std::time::Duration::from_millis(config.security.auth_failure_delay_ms),
        }
    }

    /// Whether a request for `path` needs credentials.
    fn protects(&self, path: &str) -> bool {
        self.required && !OPEN_PATHS.contains(&path) && !(self.metrics_open && path == "/metrics")
    }

    /// The user an `Authorization: Basic ...` header value authenticates, if it does.
    /// CPU-heavy (argon2): run it on the blocking pool.
    fn verify(&self, authorization: &str) -> Result<String, &'static str> {
        let (scheme, token) = authorization
            .trim()
            .split_once(' ')
            .ok_or("malformed Authorization header")?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err("only Basic authentication is supported");
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| "malformed Basic credentials")?;
        let text = String::from_utf8(decoded).map_err(|_| "malformed Basic credentials")?;
        let (user, password) = text.split_once(':').ok_or("malformed Basic credentials")?;
        match self.users.get(user) {
            Some(Some(hash)) if crate::security::verify_password(hash, password.as_bytes()) => {
                Ok(user.to_owned())
            }
            Some(Some(_)) => Err("wrong user or password"),
            _ => {
                crate::security::dummy_verify(password.as_bytes());
                Err("wrong user or password")
            }
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": format!("authentication required: {message}") })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

/// Middleware: lets a request through when its path is open or its credentials are those of
/// an allowed user; answers 401 with a Basic challenge otherwise.
pub async fn require_credentials(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(auth) = state.auth() else {
        return next.run(request).await;
    };
    if !auth.protects(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return unauthorized("no credentials given");
    };
    let verdict = {
        let _slot = auth.verifications.acquire().await.ok();
        let auth = auth.clone();
        tokio::task::spawn_blocking(move || auth.verify(&value))
            .await
            .unwrap_or(Err("verification failed"))
    };
    match verdict {
        Ok(user) => {
            tracing::debug!(%user, path = %request.uri().path(), "admin request authenticated");
            next.run(request).await
        }
        Err(reason) => {
            tracing::info!(path = %request.uri().path(), reason, "admin request refused");
            crate::metrics::limit_refused("admin", "auth_failure");
            // Slows password guessing down (the verification slots are free meanwhile).
            tokio::time::sleep(auth.failure_delay).await;
            unauthorized(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml_str(toml, "test.toml").unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn admin_group_members_and_listed_users_are_allowed() {
        let ops = crate::security::hash_password(b"ops-secret").unwrap();
        let app = crate::security::hash_password(b"app-secret").unwrap();
        let auth = AdminAuth::from_config(&config(&format!(
            "[[users]]\nname = \"ops\"\npassword_hash = \"{ops}\"\ngroups = [\"admin\"]\n\
             [[users]]\nname = \"app\"\npassword_hash = \"{app}\"\ngroups = [\"apps\"]\n"
        )));
        assert!(auth.required);
        assert!(auth.protects("/api/queues") && auth.protects("/metrics"));
        assert!(!auth.protects("/healthz") && !auth.protects("/readyz"));
        assert_eq!(auth.verify(&basic("ops", "ops-secret")), Ok("ops".into()));
        assert!(auth.verify(&basic("ops", "wrong")).is_err());
        assert!(
            auth.verify(&basic("app", "app-secret")).is_err(),
            "not an admin"
        );
        assert!(auth.verify("Bearer x").is_err());
        assert!(auth.verify("Basic !!!").is_err());
    }

    #[test]
    fn loopback_without_admin_users_is_open_and_exposed_is_closed() {
        assert!(!AdminAuth::from_config(&Config::default()).required);
        let exposed = AdminAuth::from_config(&config(
            "[admin]\nbind = \"0.0.0.0:8161\"\nmetrics_auth = false\n",
        ));
        assert!(exposed.required && exposed.users.is_empty());
        assert!(exposed.protects("/api/overview") && !exposed.protects("/metrics"));
        // The HTTPS twin bound off loopback exposes the API as well.
        let https = AdminAuth::from_config(&config(
            "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n\
             [admin]\ntls_bind = \"0.0.0.0:8162\"\n",
        ));
        assert!(https.required);
    }
}
