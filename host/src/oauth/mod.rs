//! The OAuth 2.0 client the runtime uses for upstream credentials (`secrets` entries of type
//! `oauth2`) and MCP transport OAuth.
//!
//! | module | job |
//! |---|---|
//! | [`client`] | one client's settings, its cache key and token-endpoint requests |
//! | [`discovery`] | OIDC discovery, cached per issuer with a TTL |
//! | [`store`] | token storage: files under the state dir (0600, atomic) or memory |
//! | [`flow`] | authorization code + PKCE for a hosted server: `interactive_required`, callback |
//! | this file | the instance-wide cache with single flight per key |
//!
//! Rules:
//! - A token is cached under a digest of everything it depends on ([`ClientSpec::key`]: mode,
//!   token URL / issuer, client id, scopes, audience, auth method, and for authorization code
//!   the principal) and reused until [`refresh_margin`] before it expires.
//! - Single flight: each key has one async lock around read → refresh/grant → store, so N
//!   concurrent callers that find the token stale cause exactly one token request.
//! - A refresh token, when present, is used before any new grant. A rotated refresh token is
//!   saved to the store before the new access token is returned. A refused refresh
//!   (`invalid_grant`, a revoked token) is terminal for that key: the stored token is deleted
//!   and every call fails with [`OAuthError::ReauthorizationRequired`] until a person
//!   authorizes again (authorization code) or the runtime restarts (client credentials) — no
//!   retry storm and no silent fallback to another grant.
//! - Without a refresh token an expired client-credentials token is replaced by a new grant; an
//!   authorization-code token needs the person again ([`OAuthError::InteractiveRequired`]).
//! - Tokens, refresh tokens and client secrets never appear in errors, logs or `Debug`.

pub mod client;
pub mod discovery;
pub mod flow;
pub mod settings;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

pub use client::{AuthMethod, ClientSpec, Mode};
pub use flow::{CallbackError, ConfirmError};
pub use store::Storage;

use self::client::{GrantError, TokenResponse};
use self::discovery::Discovery;
use self::flow::{Endpoints, PendingFlows};
use self::store::{StoredToken, TokenStore};
use crate::net::{self, NetError, Purpose};
use crate::redact::SecretValue;

/// Why no access token is available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The refresh token was refused (revoked, expired, reused): a person must authorize again.
    #[error("oauth token expired and its refresh was refused; reauthorization required")]
    ReauthorizationRequired,
    /// A person must authorize this client first, at `authorization_url`.
    #[error("interactive authorization required")]
    InteractiveRequired {
        /// Where to send the person (carries a fresh single-use `state`).
        authorization_url: String,
    },
    /// The token endpoint could not be found or did not issue a token.
    #[error("oauth token unavailable: {0}")]
    Unavailable(String),
}

/// How long before expiry a token is replaced: 30 s, or half its lifetime when shorter.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(30))
}

/// Lifetime assumed when the server sends no `expires_in` (the token is replaced sooner when
/// the upstream rejects it).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The cached state of one key.
#[derive(Default)]
struct Cell {
    loaded: bool,
    token: Option<StoredToken>,
    failed: bool,
}

/// The instance's OAuth clients: token cache, stores, discovery and pending authorizations.
pub struct OAuthClients {
    http: reqwest::Client,
    discovery: Discovery,
    store: TokenStore,
    cells: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cell>>>>,
    flows: PendingFlows,
    callback_url: Option<String>,
}

impl std::fmt::Debug for OAuthClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClients")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl OAuthClients {
    /// Clients storing `instance` tokens under `state_dir/oauth` (memory only when `None`);
    /// `runtime_url` is where this server is reached, for the default redirect URI.
    /// Fails only when the HTTP client cannot be built (never a default client: that one
    /// would follow redirects with client secrets).
    pub fn new(state_dir: Option<PathBuf>, runtime_url: Option<&str>) -> Result<Self, NetError> {
        // Client secrets go to the token endpoint only: this client follows no redirect.
        let http = net::client(Purpose::OAuth)?;
        Ok(Self {
            discovery: Discovery::new(http.clone()),
            http,
            store: TokenStore::new(state_dir.map(|d| d.join("oauth"))),
            cells: Mutex::default(),
            flows: PendingFlows::default(),
            callback_url: runtime_url
                .map(|u| format!("{}/v1/oauth/callback", u.trim_end_matches('/'))),
        })
    }

    /// Clients keeping every token in memory, with no runtime URL.
    pub fn in_memory() -> Result<Self, NetError> {
        Self::new(None, None)
    }

    fn cell(&self, key: &str) -> Arc<tokio::sync::Mutex<Cell>> {
        self.cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// A valid access token for `spec` (and `principal`, for authorization code), fetching or
    /// refreshing it first when needed.
    pub async fn bearer(
        &self,
        spec: &ClientSpec,
        principal: Option<&str>,
    ) -> Result<SecretValue, OAuthError> {
        let client_id = spec.client_id().await.map_err(OAuthError::Unavailable)?;
        let key = spec.key(client_id.expose(), principal);
        let cell = self.cell(&key);
        let mut cell = cell.lock().await;
        if cell.failed {
            return Err(OAuthError::ReauthorizationRequired);
        }
        if !cell.loaded {
            cell.token = self.store.load(spec.storage, &key);
            cell.loaded = true;
        }
        if let Some(token) = cell.token.as_ref().filter(|t| now_ms() < t.refresh_at_ms) {
            return Ok(SecretValue::new(token.access_token.clone()));
        }
        let refresh = cell.token.as_ref().and_then(|t| t.refresh_token.clone());
        if let Some(refresh) = refresh {
            let (endpoint, method) = self.token_endpoint(spec).await?;
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ];
            return match client::request(&self.http, &endpoint, method, spec, &form).await {
                Ok(response) => self.keep(&mut cell, spec, &key, response, Some(refresh)),
                Err(GrantError::Refused { status, code }) if status < 500 => {
                    tracing::warn!(
                        "oauth refresh refused ({status} {code}); reauthorization required"
                    );
                    cell.failed = true;
                    cell.token = None;
                    self.store.remove(spec.storage, &key);
                    Err(OAuthError::ReauthorizationRequired)
                }
                // A server error or network failure is not a verdict on the refresh token:
                // keep it for the next call.
                Err(error) => Err(OAuthError::Unavailable(error.to_string())),
            };
        }
        match spec.mode {
            Mode::ClientCredentials => {
                let (endpoint, method) = self.token_endpoint(spec).await?;
                let response = client::request(
                    &self.http,
                    &endpoint,
                    method,
                    spec,
                    &[("grant_type", "client_credentials")],
                )
                .await
                .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
                self.keep(&mut cell, spec, &key, response, None)
            }
            Mode::AuthorizationCode => Err(self.interactive(spec, client_id, principal).await?),
        }
    }

    /// Forget the access token of `spec` (the server answered 401): the next call refreshes or
    /// grants again.
    pub async fn invalidate(&self, spec: &ClientSpec, principal: Option<&str>) {
        let Ok(client_id) = spec.client_id().await else {
            return;
        };
        let cell = self.cell(&spec.key(client_id.expose(), principal));
        let mut cell = cell.lock().await;
        if let Some(token) = cell.token.as_mut() {
            token.refresh_at_ms = 0;
        }
    }

    /// Store a response: the refresh token (rotated or kept) is durable before the access
    /// token is handed out.
    fn keep(
        &self,
        cell: &mut Cell,
        spec: &ClientSpec,
        key: &str,
        response: TokenResponse,
        old_refresh: Option<String>,
    ) -> Result<SecretValue, OAuthError> {
        let lifetime = response
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let now = now_ms();
        let token = StoredToken {
            expires_at_ms: now + lifetime.as_millis() as u64,
            refresh_at_ms: now + (lifetime - refresh_margin(lifetime)).as_millis() as u64,
            refresh_token: response.refresh_token.or(old_refresh),
            access_token: response.access_token,
        };
        let access = SecretValue::new(token.access_token.clone());
        let saved = self.store.save(spec.storage, key, &token);
        cell.token = Some(token);
        saved.map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        Ok(access)
    }

    /// The token endpoint and the client authentication to use there ([`AuthMethod::choose`]:
    /// the discovered metadata counts only when the endpoint itself was discovered).
    async fn token_endpoint(&self, spec: &ClientSpec) -> Result<(Url, AuthMethod), OAuthError> {
        if let Some(url) = &spec.token_url {
            return Ok((url.clone(), AuthMethod::choose(spec.auth_method, None)));
        }
        let issuer = spec
            .issuer
            .as_ref()
            .ok_or_else(|| OAuthError::Unavailable("no tokenURL or issuer".into()))?;
        let metadata = self
            .discovery
            .metadata(issuer)
            .await
            .map_err(OAuthError::Unavailable)?;
        let method = AuthMethod::choose(
            spec.auth_method,
            metadata.token_endpoint_auth_methods_supported.as_deref(),
        );
        Ok((metadata.token_endpoint.clone(), method))
    }

    /// Start an authorization for `principal` and describe it as the error to return.
    async fn interactive(
        &self,
        spec: &ClientSpec,
        client_id: SecretValue,
        principal: Option<&str>,
    ) -> Result<OAuthError, OAuthError> {
        let unavailable = |m: &str| OAuthError::Unavailable(m.to_owned());
        let metadata = match &spec.issuer {
            Some(issuer) => Some(
                self.discovery
                    .metadata(issuer)
                    .await
                    .map_err(OAuthError::Unavailable)?,
            ),
            None => None,
        };
        if let Some(m) = &metadata {
            if !m
                .code_challenge_methods_supported
                .iter()
                .any(|c| c == "S256")
            {
                return Err(unavailable(
                    "the authorization server does not offer PKCE S256",
                ));
            }
        }
        let authorization = spec
            .authorization_url
            .clone()
            .or_else(|| {
                metadata
                    .as_ref()
                    .and_then(|m| m.authorization_endpoint.clone())
            })
            .ok_or_else(|| unavailable("no authorizationURL or issuer"))?;
        let (token, token_auth) = match (&spec.token_url, &metadata) {
            (Some(url), _) => (url.clone(), AuthMethod::choose(spec.auth_method, None)),
            (None, Some(m)) => (
                m.token_endpoint.clone(),
                AuthMethod::choose(
                    spec.auth_method,
                    m.token_endpoint_auth_methods_supported.as_deref(),
                ),
            ),
            (None, None) => return Err(unavailable("no tokenURL or issuer")),
        };
        let redirect_uri = spec
            .redirect_uri
            .clone()
            .or_else(|| self.callback_url.clone())
            .ok_or_else(|| unavailable("no redirectURI"))?;
        let issuer = metadata.map(|m| {
            (
                m.issuer.clone(),
                m.authorization_response_iss_parameter_supported,
            )
        });
        let key = spec.key(client_id.expose(), principal);
        let url = self
            .flows
            .start(
                spec,
                client_id.expose(),
                key,
                principal,
                Endpoints {
                    authorization,
                    token,
                    token_auth,
                    issuer,
                },
                redirect_uri,
            )
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        Ok(OAuthError::InteractiveRequired {
            authorization_url: url.into(),
        })
    }

    /// The callback: check `state` and `iss` and keep the code for the principal who started
    /// the flow. Returns the one-time confirmation code and that principal ([`flow`] header).
    pub fn receive(
        &self,
        state: &str,
        code: Option<&str>,
        iss: Option<&str>,
        error: Option<&str>,
    ) -> Result<(String, Option<String>), CallbackError> {
        self.flows.receive(state, code, iss, error)
    }

    /// Finish an authorization: `principal` (the confirming caller) must be the one who started
    /// it; then exchange the code with the PKCE verifier and store the token for them.
    pub async fn confirm(
        &self,
        confirmation: &str,
        principal: Option<&str>,
    ) -> Result<(), CallbackFailure> {
        let received = self.flows.confirm(confirmation, principal)?;
        let pending = &received.pending;
        let spec = &pending.spec;
        let client_id = spec
            .client_id()
            .await
            .map_err(|e| CallbackFailure::Exchange(e.to_string()))?;
        let key = spec.key(client_id.expose(), pending.principal.as_deref());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", received.code.as_str()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let response = client::request(
            &self.http,
            &pending.token_endpoint,
            pending.token_auth,
            spec,
            &form,
        )
        .await
        .map_err(|e| CallbackFailure::Exchange(e.to_string()))?;
        let cell = self.cell(&key);
        let mut cell = cell.lock().await;
        cell.failed = false;
        cell.loaded = true;
        self.keep(&mut cell, spec, &key, response, None)
            .map_err(|e| CallbackFailure::Exchange(e.to_string()))?;
        Ok(())
    }
}

/// Why a confirmation did not produce a token.
#[derive(Debug, thiserror::Error)]
pub enum CallbackFailure {
    /// The confirmation is refused (400 unknown, 403 another principal).
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    /// The code exchange failed (502).
    #[error("code exchange failed: {0}")]
    Exchange(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SecretType};

    /// An authorization server whose discovery document offers only `plain` PKCE.
    async fn plain_only_issuer() -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let doc = serde_json::json!({
            "issuer": base,
            "token_endpoint": format!("{base}/token"),
            "authorization_endpoint": format!("{base}/auth"),
            "code_challenge_methods_supported": ["plain"],
        });
        let app = axum::Router::new().route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(doc) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Url::parse(&base).unwrap()
    }

    #[tokio::test]
    async fn authorization_code_refuses_a_server_without_pkce_s256() {
        let spec = ClientSpec {
            mode: Mode::AuthorizationCode,
            token_url: None,
            authorization_url: None,
            issuer: Some(plain_only_issuer().await),
            client_id: Secret {
                kind: Some(SecretType::Literal),
                value: Some("client".into()),
                ..Secret::default()
            },
            client_secret: None,
            scopes: vec![],
            audience: None,
            auth_method: None,
            storage: Storage::Memory,
            redirect_uri: Some("https://rt.test/v1/oauth/callback".into()),
        };
        let error = OAuthClients::in_memory()
            .unwrap()
            .bearer(&spec, Some("alice"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, OAuthError::Unavailable(why) if why.contains("PKCE S256")),
            "{error:?}"
        );
    }
}
