//! Profile `oauth2_introspection` (RFC 7662), and the `revocation` check of `oidc_jwks`.
//!
//! Rule: the runtime authenticates to `introspectionURL` with `client_secret_basic` (default)
//! or `client_secret_post`, sends `token_type_hint=access_token`, and accepts only a boolean
//! `active: true`. Introspection does not absolve the token: `exp`, `nbf`, `iat`, `iss` (when an
//! issuer is configured) and `aud` are still checked, and refresh tokens are refused.
//!
//! Principal: `sub`, else `client:<client_id>` (as for JWTs). An active answer with neither
//! (which the reference runtime accepts with an empty principal) gets
//! `introspected:<16 hex digits>`, the first 8 bytes of `SHA-256(salt || SHA-256(token))` with a
//! salt drawn when the profile is built: stable for the token's life until the config reloads, distinct per token
//! (so two such tokens never share approvals or per-person OAuth tokens), not reversible to the
//! token, and unable to collide with a real subject (a `sub` with that prefix is refused).
//!
//! Cache (keyed by sha256 of the token): an active result is reused for at most
//! `min(exp - now, introspectionCacheSeconds)` (default 30 s), so a token revoked at the provider
//! stops working within that window; an inactive result for `negativeCacheSeconds` (default
//! 5 s). Claims are cached, never decisions: scopes are re-evaluated per request. With
//! `revocation` on an `oidc_jwks` profile, only `active` is asked and the window is
//! `revocation.stalenessSeconds` (default 30 s) — the documented revocation latency.
//!
//! Failure mode: timeouts (3 s connect, 5 s total), non-2xx answers, non-JSON or bodies over
//! 1 MiB fail closed as `Unavailable` (503 + `Retry-After`); never as active.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

use super::claims;
use super::header::BearerToken;
use super::jwks::MAX_DOCUMENT_BYTES;
use super::settings::{check_url, ServerAuth, SettingsError};
use super::{Caller, Rejection};
use crate::config::{Secret, SecretType};

/// Most cached results kept; the cache is cleared when full (bounded memory under scanning).
const MAX_CACHE_ENTRIES: usize = 10_000;

/// A client secret whose `Debug` redacts.
#[derive(Clone)]
struct ClientSecret(String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

fn err(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Field {
        field,
        message: message.into(),
    }
}

/// Resolve a `literal`, `env` or `file` secret reference at startup.
fn resolve(field: &'static str, secret: &Secret) -> Result<String, SettingsError> {
    let value = secret.value.as_deref().unwrap_or_default();
    let resolved = match secret.kind {
        Some(SecretType::Literal) => value.to_owned(),
        Some(SecretType::Env) => std::env::var(value)
            .map_err(|_| err(field, format!("environment variable {value:?} is not set")))?,
        Some(SecretType::File) => {
            let text = std::fs::read_to_string(value)
                .map_err(|e| err(field, format!("cannot read {value:?}: {e}")))?;
            text.strip_suffix('\n').unwrap_or(&text).to_owned()
        }
        _ => {
            return Err(err(
                field,
                "must be a literal, env or file secret reference",
            ))
        }
    };
    if resolved.is_empty() {
        return Err(err(field, "resolves to an empty value"));
    }
    Ok(resolved)
}

#[derive(Clone)]
enum Cached {
    Active(Caller, Instant),
    Inactive(Instant),
}

/// A configured introspection client with its cache.
pub struct Introspector {
    url: url::Url,
    client: reqwest::Client,
    client_id: String,
    client_secret: ClientSecret,
    post: bool,
    issuer: Option<String>,
    audience: String,
    leeway: u64,
    positive_ttl: Duration,
    negative_ttl: Duration,
    only_active: bool,
    /// Salt of the principal of a token without identity (see the module rule).
    anonymous_salt: [u8; 32],
    cache: std::sync::Mutex<HashMap<[u8; 32], Cached>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Introspector {
    /// Build from settings. `only_active` is the `oidc_jwks` revocation mode.
    pub fn new(
        settings: &ServerAuth,
        client: reqwest::Client,
        only_active: bool,
    ) -> Result<Self, SettingsError> {
        let url = settings
            .introspection_url
            .as_deref()
            .ok_or_else(|| err("introspectionURL", "is required for introspection"))?;
        let url = check_url("introspectionURL", url)?;
        let client_id = settings
            .client_id
            .as_ref()
            .ok_or_else(|| err("clientId", "is required for introspection"))?;
        let client_secret = settings
            .client_secret
            .as_ref()
            .ok_or_else(|| err("clientSecret", "is required for introspection"))?;
        let post = match settings.client_auth_method.as_deref() {
            None | Some("client_secret_basic") => false,
            Some("client_secret_post") => true,
            Some(other) => {
                return Err(err(
                    "clientAuthMethod",
                    format!("{other:?} must be client_secret_basic or client_secret_post"),
                ))
            }
        };
        let positive = if only_active {
            settings
                .revocation
                .as_ref()
                .and_then(|r| r.staleness_seconds)
                .unwrap_or(30)
        } else {
            settings.introspection_cache_seconds.unwrap_or(30)
        };
        Ok(Self {
            url,
            client,
            client_id: resolve("clientId", client_id)?,
            client_secret: ClientSecret(resolve("clientSecret", client_secret)?),
            post,
            issuer: settings.issuer.clone().filter(|i| !i.is_empty()),
            audience: settings.audience()?.to_owned(),
            leeway: settings.leeway(),
            positive_ttl: Duration::from_secs(positive),
            negative_ttl: Duration::from_secs(settings.negative_cache_seconds.unwrap_or(5)),
            only_active,
            anonymous_salt: {
                let mut salt = [0u8; 32];
                // Fails only without an OS RNG; then no placeholder is safe to hand out.
                getrandom::fill(&mut salt).expect("OS random number generator");
                salt
            },
            cache: std::sync::Mutex::new(HashMap::new()),
            calls: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many introspection requests were sent (tests, metrics).
    pub fn call_count(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match cache.get(key)? {
            Cached::Active(_, until) | Cached::Inactive(until) if *until <= now => None,
            hit => Some(hit.clone()),
        }
    }

    fn remember(&self, key: [u8; 32], value: Cached) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, value);
    }

    /// Ask the endpoint about a token; the raw response object.
    async fn ask(&self, token: &BearerToken) -> Result<Map<String, Value>, Rejection> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut form = vec![
            ("token", token.expose()),
            ("token_type_hint", "access_token"),
        ];
        let mut request = self.client.post(self.url.clone());
        if self.post {
            form.push(("client_id", self.client_id.as_str()));
            form.push(("client_secret", self.client_secret.0.as_str()));
        } else {
            // RFC 6749 section 2.3.1: form-urlencode both parts before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&self.client_id),
                enc(&self.client_secret.0)
            ));
            request = request.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut response = request
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|_| Rejection::Unavailable)?;
        if response.status() == http::StatusCode::BAD_REQUEST {
            // e.g. `unsupported_token_type`: the endpoint answered, about this token.
            return Err(Rejection::Invalid(
                "introspection endpoint refused the token",
            ));
        }
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "introspection endpoint refused the request");
            return Err(Rejection::Unavailable);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| Rejection::Unavailable)? {
            if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(Rejection::Unavailable);
            }
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Rejection::Unavailable),
        }
    }

    /// The principal of an active answer with neither `sub` nor `client_id` for the token whose
    /// SHA-256 is `key` (see the module rule).
    fn anonymous_principal(&self, key: &[u8; 32]) -> String {
        let mut digest = sha2::Sha256::new();
        digest.update(self.anonymous_salt);
        digest.update(key);
        let digest = digest.finalize();
        format!(
            "{}{}",
            claims::INTROSPECTED_PRINCIPAL_PREFIX,
            hex::encode(&digest[..8])
        )
    }

    fn interpret(
        &self,
        answer: &Map<String, Value>,
        key: &[u8; 32],
    ) -> Result<(Caller, Option<u64>), &'static str> {
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err("token is not active");
        }
        if self.only_active {
            return Ok((Caller::default(), None));
        }
        if let Some(kind) = answer.get("token_type").and_then(Value::as_str) {
            if kind.eq_ignore_ascii_case("refresh_token") {
                return Err("refresh tokens are not access tokens");
            }
        }
        let now = jsonwebtoken::get_current_timestamp();
        let exp = match answer.get("exp") {
            None => {
                claims::check_start(answer, now, self.leeway)?;
                None
            }
            Some(_) => {
                claims::check_times(answer, now, self.leeway, None)?;
                answer.get("exp").and_then(Value::as_f64).map(|e| e as u64)
            }
        };
        if let Some(issuer) = &self.issuer {
            claims::check_issuer(answer, issuer)?;
        }
        claims::check_audience(answer, &self.audience)?;
        let scopes = claims::scopes(answer, claims::ScopeClaim::Scope)?;
        let principal = if claims::has_identity(answer) {
            claims::principal(answer)?
        } else {
            self.anonymous_principal(key)
        };
        let caller = Caller {
            principal: Some(principal),
            scopes,
            lineage: claims::lineage(answer),
        };
        Ok((caller, exp))
    }

    /// `oauth2_introspection`: validate a token, using the cache.
    pub async fn introspect(&self, token: &BearerToken) -> Result<Caller, Rejection> {
        let key: [u8; 32] = sha2::Sha256::digest(token.expose().as_bytes()).into();
        match self.cached(&key) {
            Some(Cached::Active(caller, _)) => return Ok(caller),
            Some(Cached::Inactive(_)) => {
                return Err(Rejection::Invalid("token is not active (cached)"))
            }
            None => {}
        }
        let answer = self.ask(token).await?;
        match self.interpret(&answer, &key) {
            Ok((caller, exp)) => {
                let mut ttl = self.positive_ttl;
                if let Some(exp) = exp {
                    let left = exp.saturating_sub(jsonwebtoken::get_current_timestamp());
                    ttl = ttl.min(Duration::from_secs(left));
                }
                self.remember(key, Cached::Active(caller.clone(), Instant::now() + ttl));
                Ok(caller)
            }
            Err(reason) => {
                self.remember(key, Cached::Inactive(Instant::now() + self.negative_ttl));
                Err(Rejection::Invalid(reason))
            }
        }
    }

    /// `revocation` for `oidc_jwks`: is the (already verified) token still active?
    pub async fn check_active(&self, token: &BearerToken) -> Result<(), Rejection> {
        self.introspect(token).await.map(|_| ())
    }
}
