//! The auth slot of the pipeline: the [`AuthProfile`] trait and its built-in implementations.
//!
//! | profile | implementation | where |
//! |---|---|---|
//! | `oidc_jwks` | [`JwksProfile`]: the JWKS validator, then revocation introspection when enabled | [`super::oidc`], [`super::introspection`] |
//! | `oauth2_introspection` | [`super::introspection::Introspector`] | [`super::introspection`] |
//! | `plugin` | [`super::wasm::WasmAuthProfile`], an auth-profile component through the plugin host | [`super::wasm`] |
//!
//! Rule: a profile answers a [`Caller`] or a [`Rejection`] (`Invalid` → 401, `Unavailable` →
//! 503); the [`super::Authenticator`] holds one as an `Arc<dyn AuthProfile>`, turns the
//! rejection into an [`super::AuthnFailure`] and logs a fingerprint, never the token. A
//! profile never puts the token in a rejection (its reasons are `&'static str`).

use futures_util::future::BoxFuture;

use super::header::BearerToken;
use super::introspection::Introspector;
use super::oidc::OidcValidator;
use super::{Caller, Rejection};

/// Validates a presented bearer token.
pub trait AuthProfile: Send + Sync {
    /// The caller the token stands for, or why it is not accepted.
    fn validate<'a>(&'a self, token: &'a BearerToken) -> BoxFuture<'a, Result<Caller, Rejection>>;
}

/// The profile of an offline authenticator (`Authenticator::offline`): a door that never
/// receives a token (`portcullis policy explain` takes the caller's scopes from its operator);
/// a token presented to it anyway is refused as if the identity provider were unreachable.
pub(crate) struct NoTokens;

impl AuthProfile for NoTokens {
    fn validate<'a>(&'a self, _token: &'a BearerToken) -> BoxFuture<'a, Result<Caller, Rejection>> {
        Box::pin(async { Err(Rejection::Unavailable) })
    }
}

/// `oidc_jwks`: signature and claims, then (when `revocation.enabled`) RFC 7662 introspection.
pub struct JwksProfile {
    /// The signature and claims validator (its JWKS cache is exposed for tests and metrics).
    pub oidc: OidcValidator,
    /// The revocation check, when enabled.
    pub revocation: Option<Introspector>,
}

impl AuthProfile for JwksProfile {
    fn validate<'a>(&'a self, token: &'a BearerToken) -> BoxFuture<'a, Result<Caller, Rejection>> {
        Box::pin(async move {
            let verified = self.oidc.verify(token.expose()).await?;
            match &self.revocation {
                Some(r) => r.check_active(token).await.map(|_| verified.caller),
                None => Ok(verified.caller),
            }
        })
    }
}

impl AuthProfile for Introspector {
    fn validate<'a>(&'a self, token: &'a BearerToken) -> BoxFuture<'a, Result<Caller, Rejection>> {
        Box::pin(self.introspect(token))
    }
}
