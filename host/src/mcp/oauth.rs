//! Transport OAuth for MCP servers: a client-credentials client of the shared [`crate::oauth`]
//! cache, so MCP transports get the same single flight, refresh rules and token store
//! (`tokenStorage`, default files under `<stateDir>/oauth`) as `oauth2` secrets.
//!
//! Rules (contract 6.3, with the reference's gaps closed):
//! - A token is reused until shortly before it expires ([`refresh_margin`]: 30 s, or half the
//!   token's lifetime when that is shorter), then replaced before any request goes out with it.
//! - Single flight: concurrent callers that find the token stale wait for the one request that
//!   replaces it (exactly one token request).
//! - When the provider issued a `refresh_token`, it is used first. If the provider refuses it,
//!   the source fails closed with [`OAuthError::ReauthorizationRequired`]; it never silently
//!   falls back to another grant.
//! - When no refresh token was issued, a fresh client-credentials grant is made (the reference
//!   failed forever after the first expiry instead).
//! - Tokens, refresh tokens and client secrets never appear in errors, logs or `Debug`.

use std::sync::Arc;

use super::settings::OAuth;
use crate::oauth::OAuthClients;
pub use crate::oauth::{refresh_margin, OAuthError};
use crate::secrets::SecretValue;

/// The token source of one MCP source: its client settings and the instance's cache.
pub struct TokenSource {
    settings: OAuth,
    clients: Arc<OAuthClients>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.settings.token_url)
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source for `settings`, cached in `clients`.
    pub fn new(settings: OAuth, clients: Arc<OAuthClients>) -> Self {
        Self { settings, clients }
    }

    /// A valid access token, fetching or refreshing it first when needed.
    pub async fn bearer(&self) -> Result<SecretValue, OAuthError> {
        self.clients.bearer(&self.settings, None).await
    }

    /// Forget the access token (the server answered 401): the next call refreshes or re-grants.
    pub async fn invalidate(&self) {
        self.clients.invalidate(&self.settings, None).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

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
            mode: crate::oauth::Mode::ClientCredentials,
            token_url: Some(url::Url::parse(&url).unwrap()),
            authorization_url: None,
            issuer: None,
            client_id: literal("client"),
            client_secret: Some(literal("secret")),
            scopes: vec![],
            audience: None,
            auth_method: Some(crate::oauth::AuthMethod::Basic),
            storage: crate::oauth::Storage::Memory,
            redirect_uri: None,
        };
        (
            Arc::new(TokenSource::new(
                settings,
                Arc::new(OAuthClients::in_memory().unwrap()),
            )),
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
