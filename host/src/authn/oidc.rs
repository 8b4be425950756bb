//! Profile `oidc_jwks`: signed JWT access tokens verified with the issuer's published keys.
//!
//! Order of checks, first failure wins, all before any claim is trusted:
//! 1. header parses; `alg` is in the allow-list (`none` and HMAC never are); `crit` is refused
//!    (we implement no extensions, RFC 7515 section 4.1.11); `typ` matches `requireTokenType`;
//!    `jku`, `x5u`, `jwk` and `x5c` are ignored — keys come only from the configured JWKS.
//! 2. a trusted key with the token's `kid` that fits `alg` ([`super::jwks`]).
//! 3. signature (jsonwebtoken with aws-lc-rs), then `exp`/`nbf`/`iat` with leeway, `iss`
//!    exact, `aud` containing the audience ([`super::claims`]).
//!
//! Startup: the JWKS URL is `jwksURL`, else discovered from `<issuer>/.well-known/
//! openid-configuration`, whose `issuer` must equal the configured one exactly (OIDC Discovery
//! section 4.3); otherwise the config is refused.
//!
//! Warm path: a token that verified is remembered by its SHA-256 digest (never the token itself)
//! together with the exact key set it verified against ([`VerifiedCache`]). A later request with
//! the same token skips parsing and the signature check only while that key set is still the
//! current one and `exp` (plus leeway) has not passed; any JWKS refetch, rotation or key removal
//! makes it verify in full again. Scopes are re-derived by the caller per request, so only
//! verified claims are cached, never an authorization decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::claims::{self, ScopeClaim};
use super::jwks::{self, JwksCache, JwksError, KeySet};
use super::settings::{check_url, ServerAuth, SettingsError, DEFAULT_ALGORITHMS};
use super::{Caller, Rejection};

/// Verified claims plus what was derived from them.
#[derive(Clone)]
pub struct Verified {
    /// The caller.
    pub caller: Caller,
    /// `exp`, for caches.
    pub exp: u64,
}

/// A configured `oidc_jwks` validator.
pub struct OidcValidator {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    token_type: Option<String>,
    scope_claim: ScopeClaim,
    max_lifetime: Option<u64>,
    /// The issuer's keys.
    pub jwks: JwksCache,
    verified: VerifiedCache,
}

/// Most tokens remembered at once; beyond it expired entries are dropped, then everything.
const VERIFIED_CACHE_CAPACITY: usize = 16_384;

/// One remembered verification.
struct VerifiedEntry {
    verified: Verified,
    kid: Option<String>,
    keys: Arc<KeySet>,
}

/// Tokens that verified, keyed by SHA-256 of the token (see the module docs for the rules).
#[derive(Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], VerifiedEntry>>,
}

impl VerifiedCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], VerifiedEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many tokens are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, digest: &[u8; 32]) -> Option<(Verified, Option<String>, Arc<KeySet>)> {
        self.lock()
            .get(digest)
            .map(|e| (e.verified.clone(), e.kid.clone(), e.keys.clone()))
    }

    fn insert(&self, digest: [u8; 32], entry: VerifiedEntry, now: u64, leeway: u64) {
        let mut entries = self.lock();
        if entries.len() >= VERIFIED_CACHE_CAPACITY {
            entries.retain(|_, e| e.verified.exp.saturating_add(leeway) >= now);
            if entries.len() >= VERIFIED_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, entry);
    }

    fn remove(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
    }
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    out
}

fn err(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Field {
        field,
        message: message.into(),
    }
}

/// Parse the allow-list, refusing anything outside the supported asymmetric set.
pub fn algorithms(settings: &ServerAuth) -> Result<Vec<Algorithm>, SettingsError> {
    let names: Vec<String> = match &settings.allowed_algorithms {
        Some(list) if list.is_empty() => return Err(err("allowedAlgorithms", "must not be empty")),
        Some(list) => list.clone(),
        None => DEFAULT_ALGORITHMS.iter().map(|s| (*s).to_owned()).collect(),
    };
    names
        .iter()
        .map(|name| {
            if !DEFAULT_ALGORITHMS.contains(&name.as_str()) {
                return Err(err(
                    "allowedAlgorithms",
                    format!("{name:?} is not allowed (RS/PS 256/384/512, ES256, ES384, EdDSA)"),
                ));
            }
            name.parse::<Algorithm>()
                .map_err(|_| err("allowedAlgorithms", format!("{name:?} is unknown")))
        })
        .collect()
}

/// The scope claim named by the settings.
pub fn scope_claim(settings: &ServerAuth) -> Result<ScopeClaim, SettingsError> {
    match settings.scope_claim.as_deref() {
        None | Some("scope") => Ok(ScopeClaim::Scope),
        Some("scp") => Ok(ScopeClaim::Scp),
        Some(other) => Err(err("scopeClaim", format!("{other:?} must be scope or scp"))),
    }
}

/// Discover the JWKS URL from the issuer, checking the discovery document's `issuer`.
async fn discover(client: &reqwest::Client, issuer: &str) -> Result<url::Url, SettingsError> {
    let base = check_url("issuer", issuer)?;
    let mut well_known = base.clone();
    let path = format!(
        "{}/.well-known/openid-configuration",
        base.path().trim_end_matches('/')
    );
    well_known.set_path(&path);
    let body = jwks::fetch_capped(client, &well_known)
        .await
        .ok_or_else(|| err("issuer", format!("OIDC discovery at {well_known} failed")))?;
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|_| err("issuer", "the discovery document is not JSON"))?;
    let found = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != issuer {
        return Err(err(
            "issuer",
            format!("discovery document names issuer {found:?}, not the configured {issuer:?}"),
        ));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| err("issuer", "the discovery document has no jwks_uri"))?;
    check_url("jwksURL", jwks_uri)
}

/// `at+jwt` and `application/at+jwt` are the same type (RFC 7515 section 4.1.9).
pub fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    lower
        .strip_prefix("application/")
        .map(str::to_owned)
        .unwrap_or(lower)
}

impl OidcValidator {
    /// Build from settings, running discovery when no `jwksURL` is set.
    pub async fn new(
        settings: &ServerAuth,
        client: reqwest::Client,
    ) -> Result<Self, SettingsError> {
        let issuer = settings
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| err("issuer", "is required for oidc_jwks"))?;
        let audience = settings.audience()?.to_owned();
        let algorithms = algorithms(settings)?;
        let scope_claim = scope_claim(settings)?;
        let jwks_url = match &settings.jwks_url {
            Some(url) => check_url("jwksURL", url)?,
            None => discover(&client, &issuer).await?,
        };
        let ttl = Duration::from_secs(settings.jwks_cache_seconds.unwrap_or(300).max(1));
        let stale = Duration::from_secs(settings.jwks_stale_seconds.unwrap_or(3600));
        let jwks = JwksCache::new(jwks_url, client, ttl, stale);
        jwks.prefetch().await;
        Ok(Self {
            issuer,
            audience,
            algorithms,
            leeway: settings.leeway(),
            token_type: settings.require_token_type.as_deref().map(normalize_typ),
            scope_claim,
            max_lifetime: settings.max_token_lifetime_seconds,
            jwks,
            verified: VerifiedCache::default(),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Tokens remembered after a full verification.
    pub fn verified_cache(&self) -> &VerifiedCache {
        &self.verified
    }

    /// Validate a token: from the verified-token cache when the rules allow, else completely.
    pub async fn verify(&self, token: &str) -> Result<Verified, Rejection> {
        let digest = digest(token);
        if let Some((verified, kid, keys)) = self.verified.get(&digest) {
            let now = jsonwebtoken::get_current_timestamp();
            let current = self.jwks.keys_for(kid.as_deref()).await;
            let same_keys = current.as_ref().is_ok_and(|c| Arc::ptr_eq(c, &keys));
            if same_keys && verified.exp.saturating_add(self.leeway) >= now {
                return Ok(verified);
            }
            self.verified.remove(&digest);
        }
        let (verified, kid, keys) = self.verify_fully(token).await?;
        let entry = VerifiedEntry {
            verified: verified.clone(),
            kid,
            keys,
        };
        self.verified.insert(
            digest,
            entry,
            jsonwebtoken::get_current_timestamp(),
            self.leeway,
        );
        Ok(verified)
    }

    /// Validate a token completely, returning the key set it verified against.
    async fn verify_fully(
        &self,
        token: &str,
    ) -> Result<(Verified, Option<String>, Arc<KeySet>), Rejection> {
        let invalid = Rejection::Invalid;
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed header"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid("algorithm not allowed"));
        }
        if header.crit.is_some() {
            return Err(invalid("crit header is not supported"));
        }
        if let Some(required) = &self.token_type {
            let typ = header.typ.as_deref().map(normalize_typ);
            if typ.as_deref() != Some(required.as_str()) {
                return Err(invalid("token type mismatch"));
            }
        }
        let keys = self
            .jwks
            .keys_for(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                JwksError::UnknownKey => invalid("unknown signing key"),
                JwksError::Unavailable => Rejection::Unavailable,
            })?;
        let key = keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or(invalid("no key fits the token's algorithm"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|_| invalid("signature or registered claims invalid"))?;
        let claims = data.claims;
        let now = jsonwebtoken::get_current_timestamp();
        claims::check_times(&claims, now, self.leeway, self.max_lifetime).map_err(invalid)?;
        claims::check_issuer(&claims, &self.issuer).map_err(invalid)?;
        claims::check_audience(&claims, &self.audience).map_err(invalid)?;
        let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0) as u64;
        let verified = Verified {
            caller: Caller {
                principal: Some(claims::principal(&claims).map_err(invalid)?),
                scopes: claims::scopes(&claims, self.scope_claim).map_err(invalid)?,
                lineage: claims::lineage(&claims),
            },
            exp,
        };
        Ok((verified, header.kid, keys))
    }
}
