//! `plugin`: the WebAssembly adapter of the auth slot, an auth-profile component as an
//! [`AuthProfile`].
//!
//! | step | rule |
//! |---|---|
//! | token → WIT `auth-request` | the token and the configured audience; the record is built at the call and never logged |
//! | WIT `identity` → [`Caller`] | principal non-empty and at most 256 bytes, at most 256 scopes and 16 lineage entries, each checked; an `expires-at` in the past is a rejection; scopes without a configured prefix are dropped |
//! | `rejected` | 401 ([`Rejection::Invalid`]); the plugin's reason goes to the log only |
//! | `unavailable`, trap, timeout, busy, invalid identity | 503 ([`Rejection::Unavailable`]): the caller is not told their token is bad when nobody could check it |

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::header::BearerToken;
use super::profile::AuthProfile;
use super::{Caller, Rejection};
use crate::plugins::validate;
use crate::plugins::wit::{AuthError, AuthRequest, Identity};
use crate::plugins::{CallErrorKind, LoadedPlugin};

/// An auth-profile plugin in the authenticator's slot.
pub struct WasmAuthProfile {
    plugin: Arc<LoadedPlugin>,
    audience: String,
    /// Envelope prefixes `[bundle, profile, tool]`: scopes without one are dropped.
    prefixes: [String; 3],
}

impl WasmAuthProfile {
    /// Ask `plugin`, telling it `audience`; keep only scopes with one of `prefixes`.
    pub fn new(plugin: Arc<LoadedPlugin>, audience: String, prefixes: [String; 3]) -> Self {
        Self {
            plugin,
            audience,
            prefixes,
        }
    }
}

impl AuthProfile for WasmAuthProfile {
    fn validate<'a>(&'a self, token: &'a BearerToken) -> BoxFuture<'a, Result<Caller, Rejection>> {
        Box::pin(async move {
            let request = AuthRequest {
                token: token.expose().to_owned(),
                request_id: String::new(),
                method: String::new(),
                path: String::new(),
                audience: self.audience.clone(),
            };
            let name = self.plugin.name();
            let identity = match self.plugin.validate_token_async(request).await {
                Ok(Ok(identity)) => identity,
                Ok(Err(AuthError::Rejected(reason))) => {
                    tracing::info!(plugin = name, "auth plugin rejected a token: {reason}");
                    return Err(Rejection::Invalid("rejected by the auth plugin"));
                }
                Ok(Err(AuthError::Unavailable(reason))) => {
                    tracing::warn!(plugin = name, "auth plugin unavailable: {reason}");
                    return Err(Rejection::Unavailable);
                }
                Err(error) => {
                    tracing::warn!("{error}");
                    return Err(Rejection::Unavailable);
                }
            };
            match check_identity(name, identity, &self.prefixes) {
                Ok(Checked::Caller(caller)) => Ok(caller),
                Ok(Checked::Expired) => {
                    tracing::info!(
                        plugin = name,
                        "auth plugin rejected a token: the identity has expired"
                    );
                    Err(Rejection::Invalid("rejected by the auth plugin"))
                }
                Err(kind) => {
                    tracing::warn!("{}", self.plugin.call_error(kind));
                    Err(Rejection::Unavailable)
                }
            }
        })
    }
}

/// A well-formed identity: the caller, or expired.
#[derive(Debug, PartialEq)]
enum Checked {
    Caller(Caller),
    Expired,
}

/// Hold the identity to the WIT's contract, then to the configured prefixes.
fn check_identity(
    plugin: &str,
    identity: Identity,
    prefixes: &[String],
) -> Result<Checked, CallErrorKind> {
    if identity.principal.is_empty() {
        return Err(CallErrorKind::InvalidReturn(
            "the principal is empty".into(),
        ));
    }
    validate::text("principal", &identity.principal, validate::PRINCIPAL_MAX)?;
    if identity.scopes.len() > validate::SCOPES_MAX {
        return Err(CallErrorKind::InvalidReturn(format!(
            "{} scopes, more than {}",
            identity.scopes.len(),
            validate::SCOPES_MAX
        )));
    }
    if identity.lineage.len() > validate::LINEAGE_MAX {
        return Err(CallErrorKind::InvalidReturn("lineage is too long".into()));
    }
    for actor in &identity.lineage {
        validate::text("lineage entry", actor, validate::PRINCIPAL_MAX)?;
    }
    if let Some(expires_at) = identity.expires_at {
        if expires_at <= unix_now() {
            return Ok(Checked::Expired);
        }
    }
    let mut scopes = Vec::with_capacity(identity.scopes.len());
    for scope in identity.scopes {
        validate::text("scope", &scope, validate::PRINCIPAL_MAX)?;
        if prefixes.iter().any(|p| scope.starts_with(p.as_str())) {
            scopes.push(scope);
        } else {
            tracing::info!(
                plugin,
                "auth plugin scope without a configured prefix dropped"
            );
        }
    }
    Ok(Checked::Caller(Caller {
        principal: Some(identity.principal),
        scopes,
        lineage: (!identity.lineage.is_empty()).then(|| serde_json::Value::from(identity.lineage)),
    }))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(principal: &str, scopes: &[&str], expires_at: Option<u64>) -> Identity {
        Identity {
            principal: principal.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            lineage: vec![],
            expires_at,
        }
    }

    #[test]
    fn scopes_without_a_configured_prefix_are_dropped() {
        let checked = check_identity(
            "p",
            identity("alice", &["bundle:a", "admin", "tool:x"], None),
            &["bundle:".into(), "profile:".into(), "tool:".into()],
        )
        .unwrap();
        let Checked::Caller(caller) = checked else {
            panic!("{checked:?}")
        };
        assert_eq!(caller.principal.as_deref(), Some("alice"));
        assert_eq!(caller.scopes, ["bundle:a", "tool:x"]);
        assert_eq!(caller.lineage, None);
    }

    #[test]
    fn an_expired_identity_is_a_rejection_and_an_empty_principal_an_invalid_return() {
        assert_eq!(
            check_identity("p", identity("alice", &[], Some(1)), &[]).unwrap(),
            Checked::Expired
        );
        let error = check_identity("p", identity("", &[], None), &[]).unwrap_err();
        assert_eq!(error.code(), "plugin_invalid_return", "{error}");
    }
}
