//! Authorization code + PKCE (S256) for a hosted server (RFC 6749 4.1, RFC 7636, RFC 9207).
//!
//! The runtime never opens a browser. A call that needs a person's token and has none is
//! answered `interactive_required` with an authorization URL; the person opens it, the
//! authorization server redirects to the runtime's callback (`GET /v1/oauth/callback`), and the
//! runtime exchanges the code with the PKCE verifier and stores the token under the key of the
//! secret *and the principal who made the call*.
//!
//! `state` is 256 random bits, single use (removed on first sight, valid or not) and expires
//! after [`STATE_TTL`]. It is the only thing binding the callback to the call that started it,
//! so nothing else from the callback is trusted: the token endpoint, client and principal all
//! come from the pending record. When discovery says the server sends `iss` (RFC 9207), the
//! callback must carry it and it must equal the issuer; an `iss` that is present is always
//! checked. Servers that do not offer `S256` are refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;
use url::Url;

use super::client::ClientSpec;

/// How long a `state` is accepted.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Most pending authorizations kept; the oldest are dropped beyond it.
const MAX_PENDING: usize = 10_000;

/// One authorization waiting for its callback.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The client.
    pub spec: ClientSpec,
    /// The principal the token will belong to.
    pub principal: Option<String>,
    /// PKCE verifier.
    pub verifier: String,
    /// Redirect URI sent in the authorization request (sent again at the exchange).
    pub redirect_uri: String,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// Issuer expected in `iss`, and whether the server promised to send it.
    pub issuer: Option<(String, bool)>,
    created: Instant,
}

impl std::fmt::Debug for PendingFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingFlows").finish_non_exhaustive()
    }
}

/// Why a callback is refused (400 at the edge).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CallbackError {
    /// Unknown, reused or expired `state`.
    #[error("unknown, reused or expired state")]
    State,
    /// `iss` missing where required, or naming another server.
    #[error("the authorization response's iss does not match the issuer")]
    Issuer,
    /// The server answered with an error instead of a code.
    #[error("the authorization server answered {0}")]
    Denied(String),
    /// No `code`.
    #[error("the callback has no code")]
    NoCode,
}

/// What starting a flow needs from discovery or config.
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// Issuer and whether it sends `iss`.
    pub issuer: Option<(String, bool)>,
}

/// Pending authorizations of the instance, by `state`.
#[derive(Default)]
pub struct PendingFlows {
    by_state: Mutex<HashMap<String, Pending>>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    // getrandom fails only without an OS RNG; then no state is safe to issue.
    getrandom::fill(&mut bytes).expect("OS random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 4.2).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

impl PendingFlows {
    /// Record a new authorization and return the URL the person must open.
    pub fn start(
        &self,
        spec: &ClientSpec,
        client_id: &str,
        principal: Option<&str>,
        endpoints: Endpoints,
        redirect_uri: String,
    ) -> Url {
        let state = random();
        let verifier = random();
        let mut url = endpoints.authorization;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if !spec.scopes.is_empty() {
                query.append_pair("scope", &spec.scopes.join(" "));
            }
            if let Some(audience) = &spec.audience {
                query.append_pair("resource", audience);
            }
        }
        let pending = Pending {
            spec: spec.clone(),
            principal: principal.map(str::to_owned),
            verifier,
            redirect_uri,
            token_endpoint: endpoints.token,
            issuer: endpoints.issuer,
            created: Instant::now(),
        };
        let mut map = self.by_state.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < STATE_TTL);
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(s, _)| s.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(state, pending);
        url
    }

    /// Consume `state` and check the callback; the caller then exchanges `code`.
    pub fn complete(
        &self,
        state: &str,
        iss: Option<&str>,
        error: Option<&str>,
    ) -> Result<Pending, CallbackError> {
        let pending = self
            .by_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.created.elapsed() < STATE_TTL)
            .ok_or(CallbackError::State)?;
        if let Some((issuer, required)) = &pending.issuer {
            match iss {
                Some(iss) if iss.trim_end_matches('/') == issuer.trim_end_matches('/') => {}
                None if !required => {}
                _ => return Err(CallbackError::Issuer),
            }
        }
        if let Some(error) = error {
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(CallbackError::Denied(code));
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::{AuthMethod, Mode};
    use crate::oauth::store::Storage;

    fn spec() -> ClientSpec {
        ClientSpec {
            mode: Mode::AuthorizationCode,
            token_url: None,
            authorization_url: None,
            issuer: None,
            client_id: Default::default(),
            client_secret: None,
            scopes: vec!["a".into()],
            audience: None,
            auth_method: AuthMethod::Basic,
            storage: Storage::Memory,
            redirect_uri: None,
        }
    }

    fn start(flows: &PendingFlows, issuer: Option<(String, bool)>) -> String {
        let url = flows.start(
            &spec(),
            "client",
            Some("alice"),
            Endpoints {
                authorization: Url::parse("https://as.test/auth").unwrap(),
                token: Url::parse("https://as.test/token").unwrap(),
                issuer,
            },
            "https://rt.test/v1/oauth/callback".into(),
        );
        let pairs: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["code_challenge_method"], "S256");
        pairs["state"].clone()
    }

    #[test]
    fn rfc7636_appendix_b_challenge() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_is_single_use_and_bound_to_the_principal() {
        let flows = PendingFlows::default();
        let state = start(&flows, None);
        let pending = flows.complete(&state, None, None).unwrap();
        assert_eq!(pending.principal.as_deref(), Some("alice"));
        assert_eq!(
            flows.complete(&state, None, None).unwrap_err(),
            CallbackError::State
        );
        assert_eq!(
            flows.complete("forged", None, None).unwrap_err(),
            CallbackError::State
        );
    }

    #[test]
    fn iss_is_required_when_advertised_and_checked_when_present() {
        let flows = PendingFlows::default();
        let issuer = Some(("https://as.test".to_owned(), true));
        let state = start(&flows, issuer.clone());
        assert_eq!(
            flows.complete(&state, None, None).unwrap_err(),
            CallbackError::Issuer
        );
        let state = start(&flows, issuer.clone());
        assert_eq!(
            flows
                .complete(&state, Some("https://evil.test"), None)
                .unwrap_err(),
            CallbackError::Issuer
        );
        let state = start(&flows, issuer);
        assert!(flows
            .complete(&state, Some("https://as.test"), None)
            .is_ok());
        let state = start(&flows, Some(("https://as.test".to_owned(), false)));
        assert!(flows.complete(&state, None, None).is_ok());
    }
}
