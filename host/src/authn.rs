//! Authentication: who is calling the runtime.
//!
//! Rule: when `runtime.server.auth` is absent, runtime auth is off and every caller is
//! anonymous (the server binds to loopback by default). When it is present, a bearer token must
//! be validated. Token validation is not part of this build yet, so a config that asks for it is
//! refused at startup: serving such a config without checking tokens would fail open.

use crate::config::Config;

/// The authenticated (or anonymous) caller of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    /// Principal id (`sub`, else `client_id`); `None` when auth is off.
    pub principal: Option<String>,
    /// Scopes granted by the token.
    pub scopes: Vec<String>,
    /// Delegation lineage, for audit only.
    pub lineage: Option<serde_json::Value>,
}

/// Why runtime auth could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthnSetupError {
    /// The config asks for token validation this build cannot do.
    #[error(
        "runtime.server.auth is configured, but bearer-token validation is not available in this \
         build; refusing to serve the config without it"
    )]
    Unsupported,
}

/// Validates callers according to `runtime.server.auth`.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Runtime auth is off: every caller is anonymous.
    Disabled,
}

impl Authenticator {
    /// Build from config, refusing what cannot be enforced.
    pub fn from_config(config: &Config) -> Result<Self, AuthnSetupError> {
        let auth = config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.auth.as_ref());
        match auth {
            None => Ok(Self::Disabled),
            Some(_) => Err(AuthnSetupError::Unsupported),
        }
    }

    /// Whether callers must present a token.
    pub fn required(&self) -> bool {
        !matches!(self, Self::Disabled)
    }

    /// Identify the caller of a request.
    pub fn authenticate(&self, _headers: &http::HeaderMap) -> Caller {
        match self {
            Self::Disabled => Caller::default(),
        }
    }
}
