//! `runtime.server.auth`, typed.
//!
//! Rule: the open-cli contract's fields keep their exact spellings (`jwksURL`,
//! `introspectionURL`, `authorizationURL`, `tokenURL`, `browserClientId`, `clientId`,
//! `clientSecret`); Portcullis' additions are camelCase. Unknown fields are refused.
//! Defaults: `leewaySeconds` 60, `scopeClaim` `scope`, `scopePrefixes` `bundle:`/`profile:`/
//! `tool:`, JWKS cache 300 s, JWKS outage grace 3600 s, introspection cache 30 s, negative cache
//! 5 s, revocation window 30 s. Failure mode: a missing or contradictory field is a startup error
//! naming the field (`runtime.server.auth.<field>`), never a silently weaker check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::net::https_or_loopback;

/// Algorithms accepted when `allowedAlgorithms` is not set: every asymmetric algorithm supported.
pub const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Default scope prefixes of the authorization envelope.
pub const DEFAULT_SCOPE_PREFIXES: [&str; 3] = ["bundle:", "profile:", "tool:"];

/// `runtime.server.auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerAuth {
    /// `oidc_jwks`, `oauth2_introspection` or `plugin` (checked by config validation and at
    /// startup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_profile: Option<String>,
    /// `plugin` profile: the auth-profile plugin (a key of `plugins`) that validates tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Legacy spelling: `oauth2Introspection` means `validationProfile: oauth2_introspection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Token issuer; compared byte for byte with `iss` and with the discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// JWKS location; when absent it is discovered from `issuer`.
    #[serde(default, rename = "jwksURL", skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// This runtime's resource identifier; tokens must carry it in `aud`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// RFC 7662 endpoint (`oauth2_introspection`, and `revocation` for `oidc_jwks`).
    #[serde(
        default,
        rename = "introspectionURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub introspection_url: Option<String>,
    /// Client id this runtime authenticates to the introspection endpoint with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Secret>,
    /// Client secret for the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["client_secret_basic", "client_secret_post"]))]
    pub client_auth_method: Option<String>,
    /// Browser login: authorization endpoint.
    #[serde(
        default,
        rename = "authorizationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_url: Option<String>,
    /// Browser login: token endpoint.
    #[serde(default, rename = "tokenURL", skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Browser login: public client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_client_id: Option<String>,
    /// JWS algorithms accepted (subset of RS/PS 256/384/512, ES256, ES384, EdDSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_algorithms: Option<Vec<String>>,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_seconds: Option<u64>,
    /// Required JWT `typ` header, e.g. `at+jwt` (compared case-insensitively, `application/`
    /// prefix allowed, RFC 9068 section 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_token_type: Option<String>,
    /// `scope` (space-separated string, default) or `scp` (array of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["scope", "scp"]))]
    pub scope_claim: Option<String>,
    /// Scope prefixes of the envelope, in the order `bundle`, `profile`, `tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_prefixes: Option<Vec<String>>,
    /// Longest accepted token lifetime (`exp - now`), in seconds; unset = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_lifetime_seconds: Option<u64>,
    /// How long a fetched JWKS is used before it is refetched, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_cache_seconds: Option<u64>,
    /// How long the last good JWKS keeps serving while the IdP is unreachable (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_stale_seconds: Option<u64>,
    /// Introspection: longest time an active result is reused (default 30; never past `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_cache_seconds: Option<u64>,
    /// Introspection: how long an inactive result is remembered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_cache_seconds: Option<u64>,
    /// `oidc_jwks` only: also ask `introspectionURL` whether the token was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<RevocationConfig>,
    /// Failed authentications (401) allowed per client IP address per minute before further
    /// requests from that address get 429 with `Retry-After` until the minute ends, without
    /// validating anything (default 120; 0 turns the limit off). Slows token scanning and keeps
    /// it from reaching the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_auth_per_minute: Option<u32>,
}

/// `runtime.server.auth.revocation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RevocationConfig {
    /// Turn the check on.
    #[serde(default)]
    pub enabled: bool,
    /// Revocation latency: a revoked token stops working within this many seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_seconds: Option<u64>,
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
