//! Transport OAuth for MCP servers: client credentials, one token cache per source.
//!
//! Rules (contract 6.3, with the reference's gaps closed):
//! - A token is reused until shortly before it expires ([`refresh_margin`]: 30 s, or half the
//!   token's lifetime when that is shorter), then replaced before any request goes out with it.
//! - Single flight: the cache is behind one async lock, so concurrent callers that find the
//!   token stale wait for the one request that replaces it (exactly one token request).
//! - When the provider issued a `refresh_token`, exactly one refresh is attempted per expiry. If
//!   that refresh fails, the source fails closed with [`OAuthError::ReauthorizationRequired`]
//!   until the config is reloaded; it never silently falls back to another grant.
//! - When no refresh token was issued, a fresh client-credentials grant is made (the reference
//!   failed forever after the first expiry instead).
//! - Token endpoint = `tokenURL`, else `token_endpoint` of the issuer's OIDC discovery document
//!   (fetched once per source). Client authentication is HTTP Basic (RFC 6749 2.3.1).
//! - Tokens, refresh tokens and client secrets never appear in errors, logs or `Debug`.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::settings::OAuth;
use crate::secrets::{resolve_secret, SecretValue};

/// Why no access token is available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The refresh allowed for this expiry failed: a person must re-authorize (or the config be
    /// reloaded) before the source is used again.
    #[error(
        "transport oauth token expired and its single refresh failed; reauthorization required"
    )]
    ReauthorizationRequired,
    /// The token endpoint could not be found or did not issue a token.
    #[error("transport oauth token unavailable: {0}")]
    Unavailable(String),
}

#[derive(Default)]
struct State {
    endpoint: Option<Url>,
    access: Option<SecretValue>,
    refresh_at: Option<Instant>,
    refresh_token: Option<SecretValue>,
    failed: bool,
}

/// The token cache of one MCP source.
pub struct TokenSource {
    settings: OAuth,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.settings.token_url)
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// How long before expiry a token is replaced.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(30))
}

impl TokenSource {
    /// A cache for `settings`, using `http` for discovery and token requests.
    pub fn new(settings: OAuth, http: reqwest::Client) -> Self {
        Self {
            settings,
            http,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// A valid access token, fetching or refreshing it first when needed.
    pub async fn bearer(&self) -> Result<SecretValue, OAuthError> {
        let mut state = self.state.lock().await;
        if state.failed {
            return Err(OAuthError::ReauthorizationRequired);
        }
        if let (Some(token), Some(at)) = (&state.access, state.refresh_at) {
            if Instant::now() < at {
                return Ok(token.clone());
            }
        }
        let endpoint = match &state.endpoint {
            Some(url) => url.clone(),
            None => {
                let url = self.endpoint().await?;
                state.endpoint = Some(url.clone());
                url
            }
        };
        state.access = None;
        if let Some(refresh) = state.refresh_token.take() {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ];
            return match self.grant(&endpoint, &form).await {
                Ok(response) => Ok(store(&mut state, response, Some(refresh))),
                Err(error) => {
                    tracing::warn!("mcp transport oauth refresh failed: {error}");
                    state.failed = true;
                    Err(OAuthError::ReauthorizationRequired)
                }
            };
        }
        let response = self
            .grant(&endpoint, &[("grant_type", "client_credentials")])
            .await
            .map_err(OAuthError::Unavailable)?;
        Ok(store(&mut state, response, None))
    }

    /// Forget the access token (the server answered 401): the next call refreshes or re-grants.
    pub async fn invalidate(&self) {
        let mut state = self.state.lock().await;
        state.refresh_at = Some(Instant::now());
    }

    async fn endpoint(&self) -> Result<Url, OAuthError> {
        if let Some(url) = &self.settings.token_url {
            return Ok(url.clone());
        }
        let issuer = self
            .settings
            .issuer
            .as_ref()
            .ok_or_else(|| OAuthError::Unavailable("no tokenURL or issuer".into()))?;
        let discovery = if issuer.path().ends_with("/.well-known/openid-configuration") {
            issuer.clone()
        } else {
            let base = issuer.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}/.well-known/openid-configuration"))
                .map_err(|e| OAuthError::Unavailable(format!("issuer: {e}")))?
        };
        #[derive(Deserialize)]
        struct Discovery {
            token_endpoint: String,
        }
        let unavailable = |what: &str| {
            let what = what.to_owned();
            move |e: reqwest::Error| OAuthError::Unavailable(format!("{what}: {}", e.without_url()))
        };
        let doc: Discovery = self
            .http
            .get(discovery)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable("oidc discovery"))?
            .json()
            .await
            .map_err(unavailable("oidc discovery document"))?;
        Url::parse(&doc.token_endpoint)
            .map_err(|e| OAuthError::Unavailable(format!("token_endpoint: {e}")))
    }

    async fn grant(&self, endpoint: &Url, grant: &[(&str, &str)]) -> Result<TokenResponse, String> {
        let id = resolve_secret(&self.settings.client_id)
            .await
            .map_err(|e| format!("clientId: {e}"))?;
        let secret = resolve_secret(&self.settings.client_secret)
            .await
            .map_err(|e| format!("clientSecret: {e}"))?;
        let scope = self.settings.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if let Some(audience) = &self.settings.audience {
            form.push(("audience", audience));
            form.push(("resource", audience));
        }
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(endpoint.clone())
            .basic_auth(encode(id.expose()), Some(encode(secret.expose())))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("token request: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            // The error code is safe to report; the body may echo request data, so only it.
            #[derive(Deserialize)]
            struct Failure {
                error: Option<String>,
            }
            let code = response
                .json::<Failure>()
                .await
                .ok()
                .and_then(|f| f.error)
                .unwrap_or_default();
            return Err(format!("token endpoint answered {status} {code}"));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|_| "token response is not a JSON token".to_owned())?;
        if body.access_token.as_deref().is_none_or(str::is_empty) {
            return Err("token response has no access_token".to_owned());
        }
        Ok(body)
    }
}

fn store(
    state: &mut State,
    response: TokenResponse,
    old_refresh: Option<SecretValue>,
) -> SecretValue {
    let token = SecretValue::new(response.access_token.unwrap_or_default());
    // Without `expires_in` the token is used until the server rejects it (then invalidated).
    let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600));
    state.refresh_at = Some(Instant::now() + lifetime - refresh_margin(lifetime));
    state.access = Some(token.clone());
    state.refresh_token = response.refresh_token.map(SecretValue::new).or(old_refresh);
    token
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::routing::post;
    use axum::{Form, Json, Router};

    use super::*;
    use crate::config::{Secret, SecretType};

    /// A token endpoint that counts grants by type; fault injection for the refresh path.
    #[derive(Default)]
    struct Endpoint {
        grants: Mutex<Vec<String>>,
        issue_refresh: bool,
        refresh_fails: bool,
        issued: AtomicUsize,
    }

    async fn token(
        State(endpoint): State<Arc<Endpoint>>,
        Form(form): Form<std::collections::HashMap<String, String>>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let grant = form.get("grant_type").cloned().unwrap_or_default();
        endpoint.grants.lock().unwrap().push(grant.clone());
        // Slow enough that concurrent callers overlap.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if grant == "refresh_token" && endpoint.refresh_fails {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
        let n = endpoint.issued.fetch_add(1, Ordering::SeqCst);
        let mut body = serde_json::json!({"access_token": format!("token-{n}"), "expires_in": 1});
        if endpoint.issue_refresh {
            body["refresh_token"] = serde_json::json!(format!("refresh-{n}"));
        }
        Json(body).into_response()
    }

    async fn source(endpoint: Endpoint) -> (Arc<TokenSource>, Arc<Endpoint>) {
        let endpoint = Arc::new(endpoint);
        let app = Router::new()
            .route("/token", post(token))
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let literal = |v: &str| Secret {
            kind: Some(SecretType::Literal),
            value: Some(v.into()),
            ..Secret::default()
        };
        let settings = OAuth {
            token_url: Some(Url::parse(&url).unwrap()),
            client_id: literal("client"),
            client_secret: literal("secret"),
            ..OAuth::default()
        };
        (
            Arc::new(TokenSource::new(settings, reqwest::Client::new())),
            endpoint,
        )
    }

    fn grants(endpoint: &Endpoint) -> Vec<String> {
        endpoint.grants.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn concurrent_callers_share_exactly_one_token_request() {
        let (tokens, endpoint) = source(Endpoint::default()).await;
        let calls = (0..16).map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.bearer().await.unwrap().expose().to_owned() })
        });
        let values: Vec<String> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(values.iter().all(|v| v == "token-0"), "{values:?}");
        assert_eq!(grants(&endpoint), ["client_credentials"]);
    }

    #[tokio::test]
    async fn without_a_refresh_token_an_expired_token_is_replaced_by_a_new_grant() {
        let (tokens, endpoint) = source(Endpoint::default()).await;
        assert_eq!(tokens.bearer().await.unwrap().expose(), "token-0");
        // expires_in 1 s: replaced half a second before expiry.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(tokens.bearer().await.unwrap().expose(), "token-1");
        assert_eq!(
            grants(&endpoint),
            ["client_credentials", "client_credentials"]
        );
    }

    #[tokio::test]
    async fn a_refresh_token_is_used_once_per_expiry() {
        let (tokens, endpoint) = source(Endpoint {
            issue_refresh: true,
            ..Endpoint::default()
        })
        .await;
        tokens.bearer().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(tokens.bearer().await.unwrap().expose(), "token-1");
        assert_eq!(grants(&endpoint), ["client_credentials", "refresh_token"]);
    }

    #[tokio::test]
    async fn a_failed_refresh_fails_closed_with_reauthorization_required() {
        let (tokens, endpoint) = source(Endpoint {
            issue_refresh: true,
            refresh_fails: true,
            ..Endpoint::default()
        })
        .await;
        tokens.bearer().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let concurrent = (0..8).map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.bearer().await })
        });
        for outcome in futures_util::future::join_all(concurrent).await {
            assert!(matches!(
                outcome.unwrap(),
                Err(OAuthError::ReauthorizationRequired)
            ));
        }
        assert!(matches!(
            tokens.bearer().await,
            Err(OAuthError::ReauthorizationRequired)
        ));
        assert_eq!(
            grants(&endpoint),
            ["client_credentials", "refresh_token"],
            "exactly one refresh attempt, then no more requests"
        );
        let message = OAuthError::ReauthorizationRequired.to_string();
        assert!(message.contains("reauthorization required"));
    }
}
