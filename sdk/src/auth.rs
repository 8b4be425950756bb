//! Auth profiles: validate the bearer token a caller presents to the runtime
//! (`runtime.server.auth.validationProfile: "plugin"`).
//!
//! [`AuthError::Rejected`] is a 401 (`invalid_token`); [`AuthError::Unavailable`] is a 503 with
//! `Retry-After`; a trap or timeout is treated as unavailable. The token is wrapped in [`Token`],
//! whose `Debug` never prints it.

use std::fmt;
use std::marker::PhantomData;

use crate::bindings::auth_profile::exports::portcullis::plugin::auth_profile as wit;
use crate::plugin::{self, Plugin};

/// An auth profile plugin.
pub trait AuthProfile: Plugin {
    /// Validate one token.
    fn validate(&self, request: &AuthRequest) -> Result<Identity, AuthError>;
}

/// A bearer token. `Debug` redacts it so a stray `{:?}` cannot leak it into a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wrap a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself. Compare it in constant time; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The request facts a profile may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequest {
    /// The bearer token, without the `Bearer ` prefix.
    pub token: Token,
    /// The runtime's request id.
    pub request_id: String,
    /// HTTP method of the runtime request (`POST`).
    pub method: String,
    /// Path of the runtime request (`/v1/tools/execute`).
    pub path: String,
    /// The configured `audience`, which the token must be meant for.
    pub audience: String,
}

impl AuthRequest {
    /// A request carrying `token` with empty request facts; handy in tests.
    pub fn for_token(token: &str) -> Self {
        Self {
            token: Token::new(token),
            ..Self::default()
        }
    }
}

/// A valid token's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Principal id, as audited and shown in `runtime/info`.
    pub principal: String,
    /// Granted scopes. The host keeps only scopes with a configured prefix (`bundle:`, `profile:`,
    /// `tool:` by default).
    pub scopes: Vec<String>,
    /// Delegation chain for audit, outermost actor first (empty when nobody acts on behalf).
    pub lineage: Vec<String>,
    /// When the identity stops being valid, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// Why there is no identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The token is not acceptable (401 `invalid_token`); the message is audited, not returned.
    Rejected(String),
    /// The profile cannot decide now (its backend is down): 503 with `Retry-After`.
    Unavailable(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(message) => write!(f, "rejected: {message}"),
            Self::Unavailable(message) => write!(f, "unavailable: {message}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<wit::AuthRequest> for AuthRequest {
    fn from(request: wit::AuthRequest) -> Self {
        Self {
            token: Token(request.token),
            request_id: request.request_id,
            method: request.method,
            path: request.path,
            audience: request.audience,
        }
    }
}

impl From<Identity> for wit::Identity {
    fn from(identity: Identity) -> Self {
        Self {
            principal: identity.principal,
            scopes: identity.scopes,
            lineage: identity.lineage,
            expires_at: identity.expires_at,
        }
    }
}

impl From<AuthError> for wit::AuthError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Rejected(message) => Self::Rejected(message),
            AuthError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

/// The adapter the export macro hands to wit-bindgen. Not public API.
#[doc(hidden)]
pub struct AuthProfileExport<P>(PhantomData<P>);

impl<P: AuthProfile> crate::lifecycle::Lifecycle for AuthProfileExport<P> {
    type Plugin = P;
    const KIND: crate::lifecycle::Kind = crate::lifecycle::Kind::AuthProfile;
}

impl<P: AuthProfile> wit::Guest for AuthProfileExport<P> {
    fn validate(request: wit::AuthRequest) -> Result<wit::Identity, wit::AuthError> {
        let request = AuthRequest::from(request);
        plugin::with_instance(|plugin: &P| plugin.validate(&request))
            .unwrap_or_else(|| Err(AuthError::Unavailable(plugin::NOT_INITIALISED.to_owned())))
            .map(Into::into)
            .map_err(Into::into)
    }
}

/// Export an [`AuthProfile`] as this crate's component. Call it once, at the crate root:
///
/// ```ignore
/// portcullis_sdk::export_auth_profile!(MyProfile);
/// ```
#[macro_export]
macro_rules! export_auth_profile {
    ($plugin:ty) => {
        $crate::__export_plugin!(
            $crate::auth::AuthProfileExport<$plugin>,
            auth_profile,
            export_auth_profile_kind
        );
    };
}
