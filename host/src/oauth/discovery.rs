//! OIDC / RFC 8414 discovery, cached per issuer.
//!
//! Rule: the metadata of an issuer is fetched once and reused for [`DISCOVERY_TTL`]; concurrent
//! callers that find it missing or stale wait for the one fetch (single flight per issuer). A
//! failed fetch is not cached, so the next call tries again. `issuer` may name the document
//! itself (ending in `/.well-known/openid-configuration`) or the issuer, to which that path is
//! appended. The document's `issuer` must equal the configured issuer (OIDC Discovery 4.3),
//! which is also the value a callback's `iss` is checked against (RFC 9207).

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
}

/// The document as sent.
#[derive(Deserialize)]
struct Document {
    issuer: String,
    token_endpoint: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
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
        if doc.issuer.trim_end_matches('/') != expected {
            return Err(format!(
                "oidc discovery document names issuer {:?}, not {expected:?}",
                doc.issuer
            ));
        }
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
            issuer: doc.issuer,
            code_challenge_methods_supported: doc.code_challenge_methods_supported,
            authorization_response_iss_parameter_supported: doc
                .authorization_response_iss_parameter_supported,
        })
    }
}
