//! `runtime.server.auth`, typed.
//!
//! Rule: the open-cli contract's fields keep their exact spellings (`jwksURL`,
//! `introspectionURL`, `authorizationURL`, `tokenURL`, `browserClientId`, `clientId`,
//! `clientSecret`); Portcullis' additions are camelCase. Unknown fields are refused.
//! Defaults: `leewaySeconds` 60, `scopeClaim` `scope`, `scopePrefixes` `bundle:`/`profile:`/
//! `tool:`, JWKS cache 300 s, JWKS outage grace 3600 s, introspection cache 30 s, negative cache
//! 5 s, revocation window 30 s. Failure mode: a missing or contradictory field is a startup error
//! naming the field (`runtime.server.auth.<field>`), never a silently weaker check.

mod check;

pub use check::check;

use serde::{Deserialize, Serialize};

pub use crate::config::{RevocationConfig, ServerAuthConfig};
use crate::net::https_or_loopback;

/// Algorithms accepted when `allowedAlgorithms` is not set: every asymmetric algorithm supported.
pub const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Default scope prefixes of the authorization envelope.
pub const DEFAULT_SCOPE_PREFIXES: [&str; 3] = ["bundle:", "profile:", "tool:"];

/// `runtime.server.auth`, typed: the document's shape ([`ServerAuthConfig`], owned by `config`)
/// with the meaning this capability gives it (profiles, defaults, required fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerAuth(pub ServerAuthConfig);

impl std::ops::Deref for ServerAuth {
    type Target = ServerAuthConfig;

    fn deref(&self) -> &ServerAuthConfig {
        &self.0
    }
}

/// `runtime.server.auth` is not usable as written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The JSON does not match the typed shape.
    #[error("runtime.server.auth.{path}: {message}")]
    Shape {
        /// Field path inside `auth`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A field is missing or has an unusable value.
    #[error("runtime.server.auth.{field}: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn field(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Field {
        field,
        message: message.into(),
    }
}

/// The validation profile selected by the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Signed JWTs checked against the issuer's JWKS.
    OidcJwks,
    /// Tokens checked at an RFC 7662 endpoint.
    Introspection,
    /// Tokens checked by an auth-profile plugin.
    Plugin,
}

impl Profile {
    /// The contract's name of the profile.
    pub fn name(self) -> &'static str {
        match self {
            Self::OidcJwks => "oidc_jwks",
            Self::Introspection => "oauth2_introspection",
            Self::Plugin => "plugin",
        }
    }
}

impl ServerAuth {
    /// Parse the raw config value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, SettingsError> {
        serde_path_to_error::deserialize(value).map_err(|e| SettingsError::Shape {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }

    /// The profile, refusing unknown or missing ones.
    pub fn profile(&self) -> Result<Profile, SettingsError> {
        match (self.validation_profile.as_deref(), self.mode.as_deref()) {
            (Some("oidc_jwks"), _) => Ok(Profile::OidcJwks),
            (Some("oauth2_introspection"), _) | (None, Some("oauth2Introspection")) => {
                Ok(Profile::Introspection)
            }
            (Some("plugin"), _) => Ok(Profile::Plugin),
            (Some(other), _) => Err(field(
                "validationProfile",
                format!("{other:?} is not supported (oidc_jwks, oauth2_introspection, plugin)"),
            )),
            (None, _) => Err(field("validationProfile", "is required")),
        }
    }

    /// The required audience.
    pub fn audience(&self) -> Result<&str, SettingsError> {
        match self.audience.as_deref() {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(field(
                "audience",
                "is required: tokens must be bound to this runtime",
            )),
        }
    }

    /// Leeway in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway_seconds.unwrap_or(60)
    }

    /// Failed authentications allowed per client address per minute (0 = unlimited).
    pub fn failed_auth_limit(&self) -> u32 {
        self.max_failed_auth_per_minute.unwrap_or(120)
    }

    /// The scope prefixes `[bundle, profile, tool]`.
    pub fn prefixes(&self) -> Result<[String; 3], SettingsError> {
        let Some(list) = &self.scope_prefixes else {
            return Ok(DEFAULT_SCOPE_PREFIXES.map(str::to_owned));
        };
        match list.as_slice() {
            [b, p, t] if !b.is_empty() && !p.is_empty() && !t.is_empty() => {
                Ok([b.clone(), p.clone(), t.clone()])
            }
            _ => Err(field(
                "scopePrefixes",
                "must list exactly three non-empty prefixes: bundle, profile, tool",
            )),
        }
    }

    /// Whether browser login is fully configured (contract 1.6).
    pub fn browser_login(&self) -> bool {
        self.authorization_url.is_some()
            && self.token_url.is_some()
            && self.browser_client_id.is_some()
    }
}

/// Require an `https` URL, or `http` on a loopback host (tests and development).
pub fn check_url(name: &'static str, raw: &str) -> Result<url::Url, SettingsError> {
    https_or_loopback(raw).map_err(|message| field(name, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_missing_audience_name_the_field() {
        let err = ServerAuth::from_value(
            &serde_json::json!({"validationProfile": "oidc_jwks", "jwksUrl": "x"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("jwksUrl"), "{err}");
        let s =
            ServerAuth::from_value(&serde_json::json!({"validationProfile": "oidc_jwks"})).unwrap();
        assert!(s
            .audience()
            .unwrap_err()
            .to_string()
            .contains("runtime.server.auth.audience"));
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(check_url("jwksURL", "http://idp.example/jwks").is_err());
        assert!(check_url("jwksURL", "http://127.0.0.1:9/jwks").is_ok());
        assert!(check_url("jwksURL", "https://idp.example/jwks").is_ok());
    }
}
