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
//! | `plugin` | [`wasm`] | an auth-profile component (through [`crate::plugins`]); the adapter re-checks expiry and keeps only prefixed scopes |
//!
//! Each profile is an [`AuthProfile`] ([`profile`]); the [`Authenticator`] holds the configured
//! one as a trait object and does not care which it asks (tests give it fakes).
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
pub mod profile;
pub mod settings;
pub mod wasm;

use std::sync::Arc;

pub use header::{credentials, BearerToken, Credentials};
pub use profile::AuthProfile;
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

/// Runtime auth when it is on.
pub struct Enabled {
    settings: ServerAuth,
    profile: Profile,
    prefixes: [String; 3],
    validator: Arc<dyn AuthProfile>,
    /// The same validator when it is `oidc_jwks` (for its JWKS cache).
    jwks: Option<Arc<profile::JwksProfile>>,
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

    /// Auth as `config` sets it up, for a door that reads the caller's scopes from its operator
    /// instead of a token (`portcullis policy explain`): the same envelope (whether auth is on,
    /// the scope prefixes), but no identity provider is contacted and no token is accepted.
    pub fn offline(config: &Config) -> Result<Self, AuthnSetupError> {
        let auth = config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.auth.as_ref());
        let Some(value) = auth else {
            return Ok(Self::Disabled);
        };
        let settings = ServerAuth::from_value(value)?;
        let profile = settings.profile()?;
        let prefixes = settings.prefixes()?;
        Ok(Self::with_profile(
            settings,
            profile,
            prefixes,
            Arc::new(profile::NoTokens),
            None,
        ))
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
        // Each profile's own setup fails before a misplaced `revocation` does.
        let (validator, jwks): (Arc<dyn AuthProfile>, _) = match profile {
            Profile::OidcJwks => {
                let oidc = oidc::OidcValidator::new(&settings, client.clone()).await?;
                let revocation = revocation(&settings, profile, client)?;
                let jwks = Arc::new(profile::JwksProfile { oidc, revocation });
                (jwks.clone(), Some(jwks))
            }
            Profile::Introspection => {
                let introspector =
                    introspection::Introspector::new(&settings, client.clone(), false)?;
                revocation(&settings, profile, client)?;
                (Arc::new(introspector), None)
            }
            Profile::Plugin => {
                let name = settings.plugin.as_deref().unwrap_or_default();
                let plugin = plugins.get(name).ok_or_else(|| SettingsError::Field {
                    field: "plugin",
                    message: format!("names plugin {name:?}, which is not loaded"),
                })?;
                revocation(&settings, profile, client)?;
                let audience = settings.audience.clone().unwrap_or_default();
                let adapter =
                    wasm::WasmAuthProfile::new(plugin.clone(), audience, prefixes.clone());
                (Arc::new(adapter), None)
            }
        };
        Ok(Self::with_profile(
            settings, profile, prefixes, validator, jwks,
        ))
    }

    fn with_profile(
        settings: ServerAuth,
        profile: Profile,
        prefixes: [String; 3],
        validator: Arc<dyn AuthProfile>,
        jwks: Option<Arc<profile::JwksProfile>>,
    ) -> Self {
        Self::Enabled(Arc::new(Enabled {
            settings,
            profile,
            prefixes,
            validator,
            jwks,
        }))
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
            Self::Enabled(e) => e.jwks.as_ref().map(|p| &p.oidc.jwks),
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
        enabled
            .validator
            .validate(token)
            .await
            .map_err(|rejection| match rejection {
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

/// The revocation check of `oidc_jwks`, when enabled; refused for the other profiles.
fn revocation(
    settings: &ServerAuth,
    profile: Profile,
    client: reqwest::Client,
) -> Result<Option<introspection::Introspector>, SettingsError> {
    match (&settings.revocation, profile) {
        (Some(r), Profile::OidcJwks) if r.enabled => Ok(Some(introspection::Introspector::new(
            settings, client, true,
        )?)),
        (Some(r), Profile::Introspection | Profile::Plugin) if r.enabled => {
            Err(SettingsError::Field {
                field: "revocation",
                message: "applies to oidc_jwks only".into(),
            })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An auth profile that answers without any identity provider or plugin, and counts calls.
    struct FakeProfile {
        answer: Result<Caller, Rejection>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl AuthProfile for FakeProfile {
        fn validate<'a>(
            &'a self,
            token: &'a BearerToken,
        ) -> futures_util::future::BoxFuture<'a, Result<Caller, Rejection>> {
            assert_eq!(
                token.expose(),
                TOKEN,
                "the profile sees the token as presented"
            );
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = self.answer.clone();
            Box::pin(async move { answer })
        }
    }

    const TOKEN: &str = "canary-token-4f1d";

    fn authenticator(answer: Result<Caller, Rejection>) -> (Authenticator, Arc<FakeProfile>) {
        let fake = Arc::new(FakeProfile {
            answer,
            calls: Default::default(),
        });
        let settings = ServerAuth::default();
        let prefixes = settings.prefixes().unwrap();
        let auth =
            Authenticator::with_profile(settings, Profile::Plugin, prefixes, fake.clone(), None);
        (auth, fake)
    }

    fn bearer() -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {TOKEN}").parse().unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn the_profiles_caller_is_the_requests_caller() {
        let caller = Caller {
            principal: Some("alice".into()),
            scopes: vec!["bundle:tickets".into()],
            lineage: None,
        };
        let (auth, _) = authenticator(Ok(caller.clone()));
        assert_eq!(auth.authenticate(&bearer()).await.unwrap(), caller);
    }

    #[tokio::test]
    async fn a_rejected_token_is_invalid_token_with_a_fingerprint_never_the_token() {
        let (auth, fake) = authenticator(Err(Rejection::Invalid("signature mismatch")));
        let failure = auth.authenticate(&bearer()).await.unwrap_err();
        let fingerprint = BearerToken::new(TOKEN).fingerprint();
        assert_eq!(
            failure,
            AuthnFailure::InvalidToken {
                reason: "signature mismatch",
                fingerprint: Some(fingerprint),
            }
        );
        assert!(!format!("{failure:?}").contains(TOKEN), "{failure:?}");
        assert_eq!(failure.reason(), "signature mismatch");
        assert_eq!(fake.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_profile_that_cannot_decide_is_unavailable_not_a_bad_token() {
        let (auth, _) = authenticator(Err(Rejection::Unavailable));
        let failure = auth.authenticate(&bearer()).await.unwrap_err();
        assert!(
            matches!(&failure, AuthnFailure::Unavailable { fingerprint } if !fingerprint.contains(TOKEN)),
            "{failure:?}"
        );
        assert_eq!(failure.reason(), "identity provider unavailable");
    }

    #[tokio::test]
    async fn without_a_bearer_token_the_profile_is_never_asked() {
        let (auth, fake) = authenticator(Ok(Caller::default()));
        let failure = auth
            .authenticate(&http::HeaderMap::new())
            .await
            .unwrap_err();
        assert_eq!(failure, AuthnFailure::NoCredentials);
        let mut basic = http::HeaderMap::new();
        basic.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        let failure = auth.authenticate(&basic).await.unwrap_err();
        assert_eq!(failure.reason(), "not a bearer credential");
        assert_eq!(fake.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
