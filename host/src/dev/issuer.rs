//! The development identity provider behind `serve --dev`.
//!
//! Dev mode runs with runtime auth on, so the first thing a new user sees is the real boundary:
//! a call without a token is refused, a call with one is filtered by its scopes. This module is
//! the smallest OpenID provider that makes that work with no external IdP:
//!
//! - a fresh ES256 key pair per process (nothing written to disk; tokens die with the server);
//! - `/.well-known/openid-configuration` and `/jwks`, so the runtime validates dev tokens through
//!   exactly the same `oidc_jwks` path (discovery, JWKS cache, signature, claims) as production;
//! - `POST /token` with `grant_type=client_credentials` for a random per-process client, so users
//!   can mint tokens with other scopes (`scope=tool:tickets:getTicket`).
//!
//! It binds only to loopback and is never part of a non-dev server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Value};

/// The audience dev tokens are issued for and the dev runtime requires.
pub const AUDIENCE: &str = "portcullis-dev";

/// Scopes of the token printed in the banner: the demo service and the audit log.
pub const DEFAULT_SCOPE: &str = "bundle:tickets audit:read";

/// The subject of the printed token.
pub const DEFAULT_SUBJECT: &str = "dev-user";

/// Lifetime of dev tokens, in seconds (8 hours: a working day).
const TOKEN_LIFETIME: u64 = 8 * 3600;

/// The client id of the token endpoint.
pub const CLIENT_ID: &str = "dev-client";

/// A running development issuer.
#[derive(Clone)]
pub struct DevIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwk: Value,
    client_secret: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.inner.issuer)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

/// Why the issuer could not start.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Binding the loopback listener failed.
    #[error("dev issuer: {0}")]
    Io(#[from] std::io::Error),
    /// Key generation failed (aws-lc).
    #[error("dev issuer: could not generate a signing key")]
    Key,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).unwrap_or_default();
    hex::encode(buf)
}

impl DevIssuer {
    /// Generate a key and serve the issuer on an ephemeral loopback port.
    pub async fn start() -> Result<Self, IssuerError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| IssuerError::Key)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| IssuerError::Key)?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(IssuerError::Key);
        }
        let kid = format!("dev-{}", &random_hex(4));
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        let this = Self {
            inner: Arc::new(Inner {
                issuer,
                kid,
                key: EncodingKey::from_ec_der(pkcs8.as_ref()),
                jwk,
                client_secret: random_hex(16),
            }),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(this.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("dev issuer stopped: {e}");
            }
        });
        Ok(this)
    }

    /// The issuer URL (`iss`).
    pub fn url(&self) -> &str {
        &self.inner.issuer
    }

    /// The token endpoint's client secret (the client id is [`CLIENT_ID`]).
    pub fn client_secret(&self) -> &str {
        &self.inner.client_secret
    }

    /// The `runtime.server.auth` block that trusts this issuer.
    pub fn auth_config(&self) -> Value {
        json!({
            "validationProfile": "oidc_jwks",
            "issuer": self.inner.issuer,
            "audience": AUDIENCE,
            "allowedAlgorithms": ["ES256"],
            "requireTokenType": "at+jwt",
        })
    }

    /// Sign an RFC 9068 access token for `subject` with space-separated `scope`.
    pub fn mint(&self, subject: &str, scope: &str) -> String {
        let iat = now();
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.inner.kid.clone());
        let claims = json!({
            "iss": self.inner.issuer, "sub": subject, "aud": AUDIENCE, "client_id": CLIENT_ID,
            "iat": iat, "exp": iat + TOKEN_LIFETIME, "jti": random_hex(8), "scope": scope,
        });
        // Encoding a JSON object with a key we generated cannot fail short of a bug in aws-lc.
        jsonwebtoken::encode(&header, &claims, &self.inner.key).unwrap_or_default()
    }
}

async fn discovery(State(issuer): State<DevIssuer>) -> Json<Value> {
    let base = &issuer.inner.issuer;
    Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/jwks"),
        "token_endpoint": format!("{base}/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(issuer): State<DevIssuer>) -> Json<Value> {
    Json(json!({ "keys": [issuer.inner.jwk] }))
}

/// `POST /token` form (RFC 6749 section 4.4).
#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// Client credentials from `Authorization: Basic` or the form.
fn client_of(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    basic.or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)))
}

async fn token(
    State(issuer): State<DevIssuer>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let authenticated = client_of(&headers, &form).is_some_and(|(id, secret)| {
        let secret_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            secret.as_bytes(),
            issuer.inner.client_secret.as_bytes(),
        )
        .is_ok();
        id == CLIENT_ID && secret_ok
    });
    if !authenticated {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let scope = form.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
    Json(json!({
        "access_token": issuer.mint(CLIENT_ID, scope),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "scope": scope,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::{Authenticator, BearerToken, ServerAuth};

    #[tokio::test]
    async fn tokens_from_the_endpoint_validate_through_the_oidc_jwks_profile() {
        let issuer = DevIssuer::start().await.unwrap();
        let http = reqwest::Client::new();
        let token_url = format!("{}/token", issuer.url());
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "tool:tickets:getTicket"),
        ];
        let wrong = http
            .post(&token_url)
            .basic_auth(CLIENT_ID, Some("not-the-secret"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let answer: Value = http
            .post(&token_url)
            .basic_auth(CLIENT_ID, Some(issuer.client_secret()))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["access_token"].as_str().unwrap();

        let settings: ServerAuth = serde_json::from_value(issuer.auth_config()).unwrap();
        let auth = Authenticator::from_settings(settings).await.unwrap();
        let caller = auth.validate(&BearerToken::new(token)).await.unwrap();
        assert_eq!(caller.principal.as_deref(), Some(CLIENT_ID));
        assert_eq!(caller.scopes, ["tool:tickets:getTicket"]);
        let printed = issuer.mint(DEFAULT_SUBJECT, DEFAULT_SCOPE);
        let caller = auth.validate(&BearerToken::new(printed)).await.unwrap();
        assert_eq!(caller.principal.as_deref(), Some(DEFAULT_SUBJECT));
    }
}
