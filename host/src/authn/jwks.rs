//! The issuer's signing keys: parsing a JWKS strictly and caching it.
//!
//! Rule: only asymmetric signature keys are trusted — RSA of at least 2048 bits, EC P-256 and
//! P-384, OKP Ed25519. `kty: oct` keys, weak RSA keys, `use` other than `sig` and unknown
//! curves are dropped at load (RFC 7518 section 3.3, RFC 8725 section 3.5). A key is used only
//! for algorithms of its own type, and only for its JWK `alg` when it declares one.
//!
//! Cache: keys are refetched after `jwksCacheSeconds` (default 300). A token whose `kid` is
//! unknown triggers at most one refetch per [`MISS_REFETCH_INTERVAL`], single-flight (OIDC Core
//! section 10.1.1: rotation is picked up by the first request that needs the new key). When
//! the endpoint fails, the last good keys keep serving for `jwksStaleSeconds` (default 3600)
//! after their last successful fetch; after that every token fails closed (503).
//! Fetches have a 3 s connect / 5 s total timeout, follow no redirects and read at most 1 MiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::net::{self, NetError, Purpose};

/// Smallest accepted RSA modulus.
pub const MIN_RSA_BITS: usize = 2048;
/// At most one unknown-`kid` refetch per this interval.
pub const MISS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// After a failed fetch, stale keys are served without retrying for this long.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Largest JWKS or discovery document read.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Key type, with the curve where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::P256 => alg == ES256,
            Self::P384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }
}

/// One usable verification key.
pub struct VerifyKey {
    kid: Option<String>,
    kind: KeyKind,
    alg: Option<Algorithm>,
    /// The key material for `jsonwebtoken`.
    pub key: DecodingKey,
}

impl VerifyKey {
    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// A parsed key set.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// The key for a token header: an exact `kid` match, or the only fitting key when the token
    /// names none. The key must fit `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .filter(|k| k.fits(alg)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                let only = fitting.next();
                if fitting.next().is_some() {
                    None
                } else {
                    only
                }
            }
        }
    }

    /// Whether any key carries this `kid` (whatever its type).
    fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none() || self.keys.iter().any(|k| k.kid.as_deref() == kid)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn b64(value: &Value, name: &str) -> Option<Vec<u8>> {
    let text = value.get(name)?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

fn parse_key(jwk: &Value) -> Result<VerifyKey, &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return Err("use is not sig");
        }
    }
    let alg = match text("alg") {
        None => None,
        Some(a) => Some(a.parse::<Algorithm>().map_err(|_| "unsupported alg")?),
    };
    let (kind, key) = match text("kty") {
        Some("RSA") => {
            let n = b64(jwk, "n").ok_or("RSA key without n")?;
            let e = b64(jwk, "e").ok_or("RSA key without e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            let bits = significant * 8
                - n.iter()
                    .find(|b| **b != 0)
                    .map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err("RSA key shorter than 2048 bits");
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        Some("EC") => {
            let kind = match text("crv") {
                Some("P-256") => KeyKind::P256,
                Some("P-384") => KeyKind::P384,
                _ => return Err("unsupported curve"),
            };
            let (x, y) = (
                text("x").ok_or("EC key without x")?,
                text("y").ok_or("EC key without y")?,
            );
            let key = DecodingKey::from_ec_components(x, y).map_err(|_| "bad EC key")?;
            (kind, key)
        }
        Some("OKP") => {
            if text("crv") != Some("Ed25519") {
                return Err("unsupported curve");
            }
            let x = text("x").ok_or("OKP key without x")?;
            let key = DecodingKey::from_ed_components(x).map_err(|_| "bad Ed25519 key")?;
            (KeyKind::Ed25519, key)
        }
        Some("oct") => return Err("symmetric keys are never trusted from a JWKS"),
        _ => return Err("unsupported kty"),
    };
    if alg.is_some_and(|a| !kind.fits(a)) {
        return Err("alg does not match the key type");
    }
    Ok(VerifyKey {
        kid: text("kid").map(str::to_owned),
        kind,
        alg,
        key,
    })
}

/// Parse a JWKS document, keeping only keys that pass the rules above.
pub fn parse_key_set(bytes: &[u8]) -> Result<KeySet, JwksError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::Unavailable)?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::Unavailable)?;
    let mut set = KeySet::default();
    for jwk in keys {
        match parse_key(jwk) {
            Ok(key) => set.keys.push(key),
            Err(why) => {
                let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
                tracing::warn!(kid, "ignoring JWKS key: {why}");
            }
        }
    }
    Ok(set)
}

/// Why no key could be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The token names a key the issuer does not (or no longer) publish(es).
    #[error("no trusted key matches the token")]
    UnknownKey,
    /// No usable key set: the endpoint failed and the last good keys are too old, or none.
    #[error("the issuer's keys are unavailable")]
    Unavailable,
}

/// An HTTP client for the identity provider ([`Purpose::IdentityProvider`]: bounded, no
/// redirects). A build failure is an error, never a default client (that one would follow
/// redirects).
pub fn idp_client() -> Result<reqwest::Client, NetError> {
    net::client(Purpose::IdentityProvider)
}

/// GET a JSON document with a size cap; any failure is `None`.
pub async fn fetch_capped(client: &reqwest::Client, url: &url::Url) -> Option<Vec<u8>> {
    let mut response = client.get(url.clone()).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_miss_refetch: Option<Instant>,
    failed_at: Option<Instant>,
    generation: u64,
}

/// A cached, self-refreshing JWKS.
pub struct JwksCache {
    url: url::Url,
    client: reqwest::Client,
    ttl: Duration,
    stale: Duration,
    state: std::sync::Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

impl JwksCache {
    /// A cache for `url` that has fetched nothing yet.
    pub fn new(url: url::Url, client: reqwest::Client, ttl: Duration, stale: Duration) -> Self {
        Self {
            url,
            client,
            ttl,
            stale,
            state: std::sync::Mutex::new(State {
                keys: None,
                fetched_at: None,
                last_miss_refetch: None,
                failed_at: None,
                generation: 0,
            }),
            fetching: tokio::sync::Mutex::new(()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many fetches were attempted (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Usable keys, whether they are fresh (or recently failed to refresh), and the generation.
    fn current(&self, now: Instant) -> (Option<Arc<KeySet>>, bool, u64) {
        let s = self.state();
        let backing_off = s
            .failed_at
            .is_some_and(|t| now.duration_since(t) < FAILURE_BACKOFF);
        let fresh = backing_off
            || s.fetched_at
                .is_some_and(|t| now.duration_since(t) < self.ttl);
        let usable = s
            .fetched_at
            .is_some_and(|t| now.duration_since(t) < self.stale.max(self.ttl));
        let keys = if usable { s.keys.clone() } else { None };
        (keys, fresh, s.generation)
    }

    /// Fetch once unless another task fetched since `seen_generation`.
    async fn refresh(&self, seen_generation: u64) {
        let _guard = self.fetching.lock().await;
        if self.state().generation != seen_generation {
            return;
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fetched = fetch_capped(&self.client, &self.url).await;
        let parsed = fetched.as_deref().map(parse_key_set);
        let mut s = self.state();
        s.generation += 1;
        match parsed {
            Some(Ok(set)) => {
                s.keys = Some(Arc::new(set));
                s.fetched_at = Some(Instant::now());
                s.failed_at = None;
            }
            _ => {
                s.failed_at = Some(Instant::now());
                tracing::warn!(url = %self.url, "JWKS fetch failed; keeping the last good keys while they last");
            }
        }
    }

    /// Fetch now (startup warm-up); failure is only logged.
    pub async fn prefetch(&self) {
        let generation = self.state().generation;
        self.refresh(generation).await;
    }

    /// The key set to verify a token with `kid`, refreshing as the rules above allow.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, JwksError> {
        let (keys, fresh, generation) = self.current(Instant::now());
        let keys = match (keys, fresh) {
            (Some(keys), true) => keys,
            (stale, _) => {
                self.refresh(generation).await;
                match self.current(Instant::now()) {
                    (Some(keys), _, _) => keys,
                    _ => return stale.ok_or(JwksError::Unavailable),
                }
            }
        };
        if keys.knows(kid) {
            return Ok(keys);
        }
        let may_refetch = {
            let mut s = self.state();
            let now = Instant::now();
            let allowed = s
                .last_miss_refetch
                .is_none_or(|t| now.duration_since(t) >= MISS_REFETCH_INTERVAL);
            if allowed {
                s.last_miss_refetch = Some(now);
            }
            allowed
        };
        if !may_refetch {
            return Err(JwksError::UnknownKey);
        }
        let generation = self.state().generation;
        self.refresh(generation).await;
        match self.current(Instant::now()) {
            (Some(keys), _, _) if keys.knows(kid) => Ok(keys),
            _ => Err(JwksError::UnknownKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n_of_bits(bits: usize) -> String {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0x80;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn symmetric_weak_and_encryption_keys_are_dropped() {
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "RSA", "kid": "weak", "n": n_of_bits(1024), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n_of_bits(2048), "e": "AQAB"},
            {"kty": "RSA", "kid": "ok", "n": n_of_bits(2048), "e": "AQAB"},
        ]});
        let set = parse_key_set(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("h"), Algorithm::HS256).is_none());
        assert!(set.find(Some("weak"), Algorithm::RS256).is_none());
        assert!(set.find(Some("ok"), Algorithm::RS256).is_some());
    }

    #[test]
    fn a_key_is_used_only_for_algorithms_of_its_type_and_declared_alg() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "r", "alg": "RS256", "n": n_of_bits(2048), "e": "AQAB"},
        ]});
        let set = parse_key_set(doc.to_string().as_bytes()).unwrap();
        assert!(set.find(Some("r"), Algorithm::RS256).is_some());
        assert!(set.find(Some("r"), Algorithm::PS256).is_none());
        assert!(set.find(Some("r"), Algorithm::ES256).is_none());
        assert!(set.find(Some("r"), Algorithm::HS256).is_none());
    }
}
