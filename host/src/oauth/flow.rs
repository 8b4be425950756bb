//! Authorization code + PKCE (S256) for a hosted server (RFC 6749 4.1, RFC 7636, RFC 9207).
//!
//! The runtime never opens a browser. A call that needs a person's token and has none is
//! answered `interactive_required` with an authorization URL; the person opens it, the
//! authorization server redirects to the runtime's callback (`GET /v1/oauth/callback`), and the
//! runtime exchanges the code with the PKCE verifier and stores the token under the key of the
//! secret *and the principal who made the call*.
//!
//! | rule | default | failure |
//! |---|---|---|
//! | `state` is 256 random bits, single use (removed on first sight, valid or not) | expires after [`STATE_TTL`] | 400 `invalid_callback` |
//! | `iss` is checked when present, and required when discovery says the server sends it (RFC 9207) | | 400 `invalid_callback` |
//! | servers that do not offer `S256` are refused | | 502 |
//! | the callback does not bind anything: it shows the person a one-time confirmation code, and the token is fetched and stored only when the **principal who started the flow** posts that code (`POST /v1/oauth/confirm`, behind runtime auth) | code expires after [`STATE_TTL`] | 403 `oauth_principal_mismatch` for anyone else (the code is spent) |
//! | a principal's live flow for the same client is reused, not duplicated | at most [`MAX_PENDING_PER_PRINCIPAL`] live flows per principal, [`MAX_PENDING`] in all | refused (`credential_unavailable`), never evicting anyone else's |
//!
//! Why the confirmation: `state` only proves that the browser came back from the server the
//! flow was sent to, not who was at the browser. Without it, whoever completes a link that
//! someone else started binds *their* upstream account to the starter (or, phished the other
//! way, the starter's runtime identity gets the victim's account). Nothing from the callback
//! is trusted beyond `state`, `code` and `iss`: token endpoint, client and principal all come
//! from the pending record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;
use url::Url;

use super::client::{AuthMethod, ClientSpec};

/// How long a `state` is accepted.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Most pending authorizations kept in all; more are refused, never evicted.
pub const MAX_PENDING: usize = 10_000;

/// Most live authorizations one principal may have waiting at once.
pub const MAX_PENDING_PER_PRINCIPAL: usize = 8;

/// One authorization waiting for its callback. `Debug` leaves out the PKCE verifier and the
/// URL (which carries `state`).
#[derive(Clone)]
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
    /// Client authentication at the token endpoint (chosen when the flow started).
    pub token_auth: AuthMethod,
    /// Issuer expected in `iss`, and whether the server promised to send it.
    pub issuer: Option<(String, bool)>,
    /// The authorization URL handed out (handed out again while the flow is live).
    url: Url,
    /// The token cache key the flow fills (one live flow per key).
    key: String,
    created: Instant,
}

/// A callback that arrived and waits for its principal to confirm it. `Debug` leaves out the
/// authorization code.
pub struct Received {
    /// The flow it completes.
    pub pending: Pending,
    /// The authorization code to exchange.
    pub code: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("principal", &self.principal)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
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
    /// [`MAX_PENDING`] callbacks already wait for their confirmation.
    #[error("too many authorizations are waiting for confirmation; retry later")]
    Full,
}

/// Why a flow could not be started.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StartError {
    /// The principal already has its maximum of live flows.
    #[error("{MAX_PENDING_PER_PRINCIPAL} authorizations are already waiting for this principal; finish or let them expire ({} s)", STATE_TTL.as_secs())]
    PrincipalFull,
    /// The instance has its maximum of live flows.
    #[error("{MAX_PENDING} authorizations are already waiting; retry later")]
    Full,
}

/// Why a confirmation was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfirmError {
    /// Unknown, reused or expired confirmation code.
    #[error("unknown, reused or expired confirmation code")]
    Unknown,
    /// The caller is not the principal who started the flow.
    #[error("this authorization was started by another principal; nothing was stored")]
    PrincipalMismatch,
}

/// What starting a flow needs from discovery or config.
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// Client authentication at the token endpoint.
    pub token_auth: AuthMethod,
    /// Issuer and whether it sends `iss`.
    pub issuer: Option<(String, bool)>,
}

/// Pending authorizations of the instance, by `state`, and received callbacks by
/// confirmation code.
#[derive(Default)]
pub struct PendingFlows {
    by_state: Mutex<HashMap<String, Pending>>,
    received: Mutex<HashMap<String, (Received, Instant)>>,
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
    /// Record a new authorization (or find the live one for the same `key`) and return the URL
    /// the person must open. `key` is the token cache key the flow will fill.
    pub fn start(
        &self,
        spec: &ClientSpec,
        client_id: &str,
        key: String,
        principal: Option<&str>,
        endpoints: Endpoints,
        redirect_uri: String,
    ) -> Result<Url, StartError> {
        let mut map = self.by_state.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < STATE_TTL);
        if let Some(live) = map.values().find(|p| p.key == key) {
            return Ok(live.url.clone());
        }
        let principal = principal.map(str::to_owned);
        let mine = map.values().filter(|p| p.principal == principal).count();
        if mine >= MAX_PENDING_PER_PRINCIPAL {
            return Err(StartError::PrincipalFull);
        }
        if map.len() >= MAX_PENDING {
            return Err(StartError::Full);
        }
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
            principal,
            verifier,
            redirect_uri,
            token_endpoint: endpoints.token,
            token_auth: endpoints.token_auth,
            issuer: endpoints.issuer,
            url: url.clone(),
            key,
            created: Instant::now(),
        };
        map.insert(state, pending);
        Ok(url)
    }

    /// Consume `state`, check the callback and keep it for its principal's confirmation: the
    /// returned one-time code is what the person carries back to their client, with the
    /// principal the flow belongs to.
    pub fn receive(
        &self,
        state: &str,
        code: Option<&str>,
        iss: Option<&str>,
        error: Option<&str>,
    ) -> Result<(String, Option<String>), CallbackError> {
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
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(CallbackError::NoCode)?;
        let confirmation = random();
        let principal = pending.principal.clone();
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received.retain(|_, (_, at)| at.elapsed() < STATE_TTL);
        if received.len() >= MAX_PENDING {
            return Err(CallbackError::Full);
        }
        received.insert(
            confirmation.clone(),
            (
                Received {
                    pending,
                    code: code.to_owned(),
                },
                Instant::now(),
            ),
        );
        Ok((confirmation, principal))
    }

    /// Take the callback behind `confirmation` for `principal` (the confirming caller). Single
    /// use: a refused confirmation spends the code too.
    pub fn confirm(
        &self,
        confirmation: &str,
        principal: Option<&str>,
    ) -> Result<Received, ConfirmError> {
        let (received, at) = self
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(confirmation)
            .ok_or(ConfirmError::Unknown)?;
        if at.elapsed() >= STATE_TTL {
            return Err(ConfirmError::Unknown);
        }
        if received.pending.principal.as_deref() != principal {
            return Err(ConfirmError::PrincipalMismatch);
        }
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::Mode;
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
            auth_method: None,
            storage: Storage::Memory,
            redirect_uri: None,
        }
    }

    fn start_as(
        flows: &PendingFlows,
        principal: &str,
        key: &str,
        issuer: Option<(String, bool)>,
    ) -> Result<Url, StartError> {
        flows.start(
            &spec(),
            "client",
            key.into(),
            Some(principal),
            Endpoints {
                authorization: Url::parse("https://as.test/auth").unwrap(),
                token: Url::parse("https://as.test/token").unwrap(),
                token_auth: AuthMethod::Basic,
                issuer,
            },
            "https://rt.test/v1/oauth/callback".into(),
        )
    }

    fn state_of(url: &Url) -> String {
        let pairs: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["code_challenge_method"], "S256");
        pairs["state"].clone()
    }

    fn start(flows: &PendingFlows, issuer: Option<(String, bool)>) -> String {
        // A fresh key each time, so every call starts a new flow.
        state_of(&start_as(flows, "alice", &random(), issuer).unwrap())
    }

    #[test]
    fn debug_never_shows_the_verifier_state_or_code() {
        let flows = PendingFlows::default();
        let url = start_as(&flows, "alice", "k", None).unwrap();
        let state = state_of(&url);
        let (confirmation, _) = flows
            .receive(&state, Some("CODE-CANARY"), None, None)
            .unwrap();
        let received = flows.confirm(&confirmation, Some("alice")).unwrap();
        let text = format!("{received:?}");
        for secret in [
            state.as_str(),
            "CODE-CANARY",
            received.pending.verifier.as_str(),
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn rfc7636_appendix_b_challenge() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_is_single_use_and_only_its_principal_can_confirm() {
        let flows = PendingFlows::default();
        let state = start(&flows, None);
        let (confirmation, principal) = flows.receive(&state, Some("c0de"), None, None).unwrap();
        assert_eq!(principal.as_deref(), Some("alice"));
        assert_eq!(
            flows.receive(&state, Some("c0de"), None, None).unwrap_err(),
            CallbackError::State
        );
        assert_eq!(
            flows
                .receive("forged", Some("c0de"), None, None)
                .unwrap_err(),
            CallbackError::State
        );
        // R12: someone else cannot confirm, and the attempt spends the code.
        assert_eq!(
            flows.confirm(&confirmation, Some("mallory")).unwrap_err(),
            ConfirmError::PrincipalMismatch
        );
        assert_eq!(
            flows.confirm(&confirmation, Some("alice")).unwrap_err(),
            ConfirmError::Unknown
        );
        let state = start(&flows, None);
        let (confirmation, _) = flows.receive(&state, Some("c0de"), None, None).unwrap();
        let received = flows.confirm(&confirmation, Some("alice")).unwrap();
        assert_eq!(received.code, "c0de");
        assert_eq!(received.pending.principal.as_deref(), Some("alice"));
    }

    #[test]
    fn a_live_flow_is_reused_and_pending_flows_are_capped_per_principal_without_eviction() {
        let flows = PendingFlows::default();
        let first = start_as(&flows, "alice", "k1", None).unwrap();
        assert_eq!(
            start_as(&flows, "alice", "k1", None).unwrap(),
            first,
            "reused"
        );
        for i in 1..MAX_PENDING_PER_PRINCIPAL {
            start_as(&flows, "alice", &format!("k1-{i}"), None).unwrap();
        }
        assert_eq!(
            start_as(&flows, "alice", "one-more", None).unwrap_err(),
            StartError::PrincipalFull
        );
        // Nobody else's flow was evicted, and others can still start theirs.
        assert!(start_as(&flows, "bob", "kb", None).is_ok());
        let (confirmation, _) = flows
            .receive(&state_of(&first), Some("c"), None, None)
            .unwrap();
        assert!(flows.confirm(&confirmation, Some("alice")).is_ok());
    }

    #[test]
    fn callbacks_waiting_for_confirmation_are_bounded() {
        let flows = PendingFlows::default();
        let receive = |i: usize| {
            let url = start_as(&flows, &format!("p{i}"), &format!("k{i}"), None).unwrap();
            flows.receive(&state_of(&url), Some("c"), None, None)
        };
        for i in 0..MAX_PENDING {
            receive(i).unwrap();
        }
        assert_eq!(receive(MAX_PENDING).unwrap_err(), CallbackError::Full);
    }

    #[test]
    fn iss_is_required_when_advertised_and_checked_when_present() {
        let flows = PendingFlows::default();
        let issuer = Some(("https://as.test".to_owned(), true));
        let code = Some("c");
        let state = start(&flows, issuer.clone());
        assert_eq!(
            flows.receive(&state, code, None, None).unwrap_err(),
            CallbackError::Issuer
        );
        let state = start(&flows, issuer.clone());
        assert_eq!(
            flows
                .receive(&state, code, Some("https://evil.test"), None)
                .unwrap_err(),
            CallbackError::Issuer
        );
        let state = start(&flows, issuer);
        assert!(flows
            .receive(&state, code, Some("https://as.test"), None)
            .is_ok());
        let state = start(&flows, Some(("https://as.test".to_owned(), false)));
        assert!(flows.receive(&state, code, None, None).is_ok());
        let state = start(&flows, None);
        assert_eq!(
            flows.receive(&state, None, None, None).unwrap_err(),
            CallbackError::NoCode
        );
    }
}
