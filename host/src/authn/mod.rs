//! Authentication: who is calling the runtime.
//!
//! Rule: when `runtime.server.auth` is absent, runtime auth is off and every caller is
//! anonymous (the server binds to loopback by default). When it is present, every request but
//! the handshake (`runtime/info`, `auth/browser-config`) must carry a valid bearer token,
//! validated by the configured profile:
//!
//! | profile | module | checks |
//! |---|---|---|
//! | `oidc_jwks` | [`oidc`] | signature with the issuer's JWKS ([`jwks`]), `exp`/`nbf`/`iat` with leeway, `iss`, `aud`, `typ` |
//! | `oauth2_introspection` | [`introspection`] | RFC 7662 `active: true`, then `exp`/`iss`/`aud` |
//! | `plugin` | [`crate::plugins`] | an auth-profile component; the host re-checks expiry and keeps only prefixed scopes |
//!
//! Failure mode: a config that cannot be enforced is refused at startup, naming the field
//! ([`settings`]); at request time anything unverifiable is rejected (401), and an identity
//! provider that cannot be reached fails closed (503). Tokens never reach logs, errors or
//! audit records: [`header::BearerToken`] redacts itself; logs get a 12-hex-digit sha256 prefix and
//! audit records a keyed hash (`crate::audit::redact::token_hash`).

pub mod claims;
pub mod header;
pub mod introspection;
pub mod jwks;
pub mod oidc;
pub mod settings;

use std::sync::Arc;

pub use header::{credentials, BearerToken, Credentials};
pub use settings::{Profile, ServerAuth, SettingsError};

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
    /// `runtime.server.auth` is unusable as written.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Why a token was not accepted (internal; the detail goes to logs and audit, never the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The token is invalid for the stated reason.
    Invalid(&'static str),
    /// The identity provider could not be asked.
    Unavailable,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnFailure {
    /// No `Authorization` header (RFC 6750: challenge without an `error`).
    NoCredentials,
    /// More than one `Authorization` header (400 `invalid_request`).
    InvalidRequest,
    /// The token is not acceptable (401 `invalid_token`).
    InvalidToken {
        /// Short reason for logs and audit.
        reason: &'static str,
        /// sha256 prefix of the token, when there was one.
        fingerprint: Option<String>,
    },
    /// The identity provider is unreachable (503 + `Retry-After`).
    Unavailable {
        /// sha256 prefix of the token.
        fingerprint: String,
    },
}

impl AuthnFailure {
    /// Short reason for logs and audit.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoCredentials => "missing bearer token",
            Self::InvalidRequest => "more than one Authorization header",
            Self::InvalidToken { reason, .. } => reason,
            Self::Unavailable { .. } => "identity provider unavailable",
        }
    }
}

enum Validator {
    Jwks(oidc::OidcValidator),
    Introspection(introspection::Introspector),
    Plugin(Arc<crate::plugins::LoadedPlugin>),
}

/// Runtime auth when it is on.
pub struct Enabled {
    settings: ServerAuth,
    profile: Profile,
    prefixes: [String; 3],
    validator: Validator,
    revocation: Option<introspection::Introspector>,
}

/// Validates callers according to `runtime.server.auth`.
#[derive(Clone)]
pub enum Authenticator {
    /// Runtime auth is off: every caller is anonymous.
    Disabled,
    /// Bearer tokens are required.
    Enabled(Arc<Enabled>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disabled => f.write_str("Authenticator::Disabled"),
            Self::Enabled(e) => write!(f, "Authenticator::Enabled({})", e.profile.name()),
        }
    }
}

impl Authenticator {
    /// Build from config, refusing what cannot be enforced. May contact the identity provider
    /// (OIDC discovery, JWKS warm-up).
    pub async fn from_config(
        config: &Config,
        plugins: &crate::plugins::PluginSet,
    ) -> Result<Self, AuthnSetupError> {
        let auth = config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.auth.as_ref());
        match auth {
            None => Ok(Self::Disabled),
            Some(value) => {
                Ok(Self::from_settings_with(ServerAuth::from_value(value)?, plugins).await?)
            }
        }
    }

    /// Build from typed settings (no plugins).
    pub async fn from_settings(settings: ServerAuth) -> Result<Self, SettingsError> {
        Self::from_settings_with(settings, &crate::plugins::PluginSet::default()).await
    }

    /// Build from typed settings, with the loaded plugins for the `plugin` profile.
    pub async fn from_settings_with(
        settings: ServerAuth,
        plugins: &crate::plugins::PluginSet,
    ) -> Result<Self, SettingsError> {
        let profile = settings.profile()?;
        settings.audience()?;
        let prefixes = settings.prefixes()?;
        let client = jwks::idp_client().map_err(|e| SettingsError::Field {
            field: "validationProfile",
            message: format!("the HTTP client for the identity provider could not be built: {e}"),
        })?;
        let validator =
            match profile {
                Profile::OidcJwks => {
                    Validator::Jwks(oidc::OidcValidator::new(&settings, client.clone()).await?)
                }
                Profile::Introspection => Validator::Introspection(
                    introspection::Introspector::new(&settings, client.clone(), false)?,
                ),
                Profile::Plugin => {
                    let name = settings.plugin.as_deref().unwrap_or_default();
                    let plugin = plugins.get(name).ok_or_else(|| SettingsError::Field {
                        field: "plugin",
                        message: format!("names plugin {name:?}, which is not loaded"),
                    })?;
                    Validator::Plugin(plugin.clone())
                }
            };
        let revocation = match (&settings.revocation, profile) {
            (Some(r), Profile::OidcJwks) if r.enabled => {
                Some(introspection::Introspector::new(&settings, client, true)?)
            }
            (Some(r), Profile::Introspection | Profile::Plugin) if r.enabled => {
                return Err(SettingsError::Field {
                    field: "revocation",
                    message: "applies to oidc_jwks only".into(),
                })
            }
            _ => None,
        };
        Ok(Self::Enabled(Arc::new(Enabled {
            settings,
            profile,
            prefixes,
            validator,
            revocation,
        })))
    }

    /// Whether callers must present a token.
    pub fn required(&self) -> bool {
        !matches!(self, Self::Disabled)
    }

    /// The settings, when auth is on.
    pub fn settings(&self) -> Option<&ServerAuth> {
        match self {
            Self::Disabled => None,
            Self::Enabled(e) => Some(&e.settings),
        }
    }

    /// The profile name, when auth is on.
    pub fn profile_name(&self) -> Option<&'static str> {
        match self {
            Self::Disabled => None,
            Self::Enabled(e) => Some(e.profile.name()),
        }
    }

    /// Envelope prefixes `[bundle, profile, tool]`.
    pub fn prefixes(&self) -> [String; 3] {
        match self {
            Self::Disabled => settings::DEFAULT_SCOPE_PREFIXES.map(str::to_owned),
            Self::Enabled(e) => e.prefixes.clone(),
        }
    }

    /// The JWKS cache, for tests and metrics.
    pub fn jwks(&self) -> Option<&jwks::JwksCache> {
        match self {
            Self::Enabled(e) => match &e.validator {
                Validator::Jwks(v) => Some(&v.jwks),
                Validator::Introspection(_) | Validator::Plugin(_) => None,
            },
            Self::Disabled => None,
        }
    }

    /// Identify the caller of a request.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, AuthnFailure> {
        let Self::Enabled(_) = self else {
            return Ok(Caller::default());
        };
        match credentials(headers) {
            Credentials::None => Err(AuthnFailure::NoCredentials),
            Credentials::Ambiguous => Err(AuthnFailure::InvalidRequest),
            Credentials::Malformed => Err(AuthnFailure::InvalidToken {
                reason: "not a bearer credential",
                fingerprint: None,
            }),
            Credentials::Bearer(token) => self.validate(&token).await,
        }
    }

    /// Validate one token.
    pub async fn validate(&self, token: &BearerToken) -> Result<Caller, AuthnFailure> {
        let Self::Enabled(enabled) = self else {
            return Ok(Caller::default());
        };
        let result = match &enabled.validator {
            Validator::Jwks(v) => match v.verify(token.expose()).await {
                Ok(verified) => match &enabled.revocation {
                    Some(r) => r.check_active(token).await.map(|_| verified.caller),
                    None => Ok(verified.caller),
                },
                Err(e) => Err(e),
            },
            Validator::Introspection(i) => i.introspect(token).await,
            Validator::Plugin(plugin) => {
                validate_with_plugin(plugin, token, &enabled.settings, &enabled.prefixes).await
            }
        };
        result.map_err(|rejection| match rejection {
            Rejection::Invalid(reason) => {
                tracing::info!(token = %token.fingerprint(), "bearer token rejected: {reason}");
                AuthnFailure::InvalidToken {
                    reason,
                    fingerprint: Some(token.fingerprint()),
                }
            }
            Rejection::Unavailable => {
                tracing::warn!(token = %token.fingerprint(), "identity provider unavailable");
                AuthnFailure::Unavailable {
                    fingerprint: token.fingerprint(),
                }
            }
        })
    }
}

/// Ask an auth-profile plugin. A rejection is a 401; a plugin that cannot answer (its backend
/// is down, or it trapped, timed out, ran out of memory or returned an invalid identity) is a
/// 503: the caller is not told their token is bad when nobody could check it.
async fn validate_with_plugin(
    plugin: &Arc<crate::plugins::LoadedPlugin>,
    token: &BearerToken,
    settings: &ServerAuth,
    prefixes: &[String; 3],
) -> Result<Caller, Rejection> {
    use crate::plugins::{AuthQuery, AuthVerdict};
    let query = AuthQuery {
        token: token.expose().to_owned(),
        audience: settings.audience.clone().unwrap_or_default(),
        ..AuthQuery::default()
    };
    match plugin.validate_token_async(query, prefixes.to_vec()).await {
        Ok(AuthVerdict::Authenticated(identity)) => Ok(Caller {
            principal: Some(identity.principal),
            scopes: identity.scopes,
            lineage: (!identity.lineage.is_empty())
                .then(|| serde_json::Value::from(identity.lineage)),
        }),
        Ok(AuthVerdict::Rejected(reason)) => {
            tracing::info!(
                plugin = plugin.name(),
                "auth plugin rejected a token: {reason}"
            );
            Err(Rejection::Invalid("rejected by the auth plugin"))
        }
        Ok(AuthVerdict::Unavailable(reason)) => {
            tracing::warn!(plugin = plugin.name(), "auth plugin unavailable: {reason}");
            Err(Rejection::Unavailable)
        }
        Err(error) => {
            tracing::warn!("{error}");
            Err(Rejection::Unavailable)
        }
    }
}
