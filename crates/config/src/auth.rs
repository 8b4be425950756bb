//! The shape of `runtime.server.auth` as written, for the schema and for decoding.
//!
//! Rule: the open-cli contract's fields keep their exact spellings (`jwksURL`,
//! `introspectionURL`, `authorizationURL`, `tokenURL`, `browserClientId`, `clientId`,
//! `clientSecret`); Portcullis' additions are camelCase. Unknown fields are refused. The merged
//! document keeps this block as JSON ([`super::ServerConfig::auth`], so scopes merge key by
//! key); what the fields mean — defaults, which profile needs what — is the authentication
//! capability's (`authn::settings`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::Secret;

/// `runtime.server.auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
// Named as before the shape moved here, so the published schema keeps its `$defs` key.
#[schemars(rename = "ServerAuth")]
pub struct ServerAuthConfig {
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
