//! OIDC / RFC 8414 discovery, cached per issuer.
//!
//! Rule: the metadata of an issuer is fetched once and reused for [`DISCOVERY_TTL`]; concurrent
//! callers that find it missing or stale wait for the one fetch (single flight per issuer). A
//! failed fetch is not cached, so the next call tries again. `issuer` may name the document
//! itself (ending in `/.well-known/openid-configuration`) or the issuer, to which that path is
//! appended. Only `token_endpoint` is required (the reference runtime reads nothing else for
//! client credentials). A document's `issuer`, when present, must equal the configured issuer
//! (OIDC Discovery 4.3); when absent, the configured issuer stands in. Either way that is the
//! value a callback's `iss` is checked against (RFC 9207), and the authorization-code flow
//! still refuses a server that does not list PKCE `S256`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

/// How long discovered metadata is reused.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The metadata fields the client uses.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The issuer identifier.
    pub issuer: String,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// Authorization endpoint (authorization-code flow).
    pub authorization_endpoint: Option<Url>,
    /// PKCE methods; the flow refuses a server that does not list `S256`.
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    pub authorization_response_iss_parameter_supported: bool,
    /// Client authentication methods the token endpoint accepts (absent: not said).
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The document as sent.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    issuer: Option<String>,
    token_endpoint: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Metadata>)>>>;

/// The per-issuer cache.
#[derive(Debug)]
pub struct Discovery {
    http: reqwest::Client,
    slots: Mutex<HashMap<String, Slot>>,
}

impl Discovery {
    /// A cache fetching with `http`.
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            slots: Mutex::default(),
        }
    }

    /// The metadata of `issuer`, fetched at most once per TTL.
    pub async fn metadata(&self, issuer: &Url) -> Result<Arc<Metadata>, String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(issuer.as_str().to_owned())
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some((at, metadata)) = cached.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(metadata.clone());
            }
        }
        let metadata = Arc::new(self.fetch(issuer).await?);
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn fetch(&self, issuer: &Url) -> Result<Metadata, String> {
        const SUFFIX: &str = "/.well-known/openid-configuration";
        let (document, expected) = match issuer.as_str().strip_suffix(SUFFIX) {
            Some(base) => (issuer.clone(), base.to_owned()),
            None => {
                let base = issuer.as_str().trim_end_matches('/');
                let url =
                    Url::parse(&format!("{base}{SUFFIX}")).map_err(|e| format!("issuer: {e}"))?;
                (url, base.to_owned())
            }
        };
        let doc: Document = self
            .http
            .get(document)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("oidc discovery: {}", e.without_url()))?
            .json()
            .await
            .map_err(|e| format!("oidc discovery document: {}", e.without_url()))?;
        let issuer = match doc.issuer {
            Some(named) if named.trim_end_matches('/') != expected => {
                return Err(format!(
                    "oidc discovery document names issuer {named:?}, not {expected:?}"
                ));
            }
            Some(named) => named,
            None => expected,
        };
        // Client secrets and codes go there: https, or http to loopback only.
        let url = |field: &str, raw: &str| {
            crate::net::https_or_loopback(raw)
                .map_err(|why| format!("oidc discovery {field} {why}"))
        };
        Ok(Metadata {
            token_endpoint: url("token_endpoint", &doc.token_endpoint)?,
            authorization_endpoint: doc
                .authorization_endpoint
                .as_deref()
                .map(|raw| url("authorization_endpoint", raw))
                .transpose()?,
            issuer,
            code_challenge_methods_supported: doc.code_challenge_methods_supported,
            authorization_response_iss_parameter_supported: doc
                .authorization_response_iss_parameter_supported,
            token_endpoint_auth_methods_supported: doc.token_endpoint_auth_methods_supported,
        })
    }
}
