//! One OAuth client's settings and its token-endpoint requests (RFC 6749 sections 4.1.3, 4.4, 6).
//!
//! Client authentication ([`AuthMethod::choose`]) is the configured `clientAuthMethod`; else,
//! when the token endpoint came from discovery, what its metadata lists in
//! `token_endpoint_auth_methods_supported` (`client_secret_post` when listed, as the reference
//! runtime sends; else `client_secret_basic` when listed); else `client_secret_post`, the
//! reference runtime's only method. Basic form-urlencodes id and secret before Basic encoding
//! (RFC 6749 2.3.1). A client with no secret sends `client_id` in the body (public client). Scopes are space-joined; `audience` is sent both as `audience` and
//! as the RFC 8707 `resource` indicator. Only the `error` code of a failed response is
//! reported: the rest of the body may echo what was sent.

use serde::Deserialize;
use sha2::Digest as _;
use url::Url;

use super::store::Storage;
use crate::config::Secret;
use crate::redact::SecretValue;
use crate::secret_sources::resolve as resolve_secret;

/// The grant a client uses when it has no usable token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `client_credentials`: the runtime acts as itself.
    ClientCredentials,
    /// `authorization_code` + PKCE: a person authorizes once through `interactive_required`.
    AuthorizationCode,
}

/// How the client authenticates at the token endpoint (`clientAuthMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// HTTP Basic.
    Basic,
    /// `client_id` and `client_secret` in the form body (the reference runtime's method).
    Post,
}

impl AuthMethod {
    /// Parse the config value; `None` (not configured) means [`AuthMethod::choose`] decides.
    pub fn parse(value: Option<&str>) -> Result<Option<Self>, String> {
        match value {
            None => Ok(None),
            Some("client_secret_basic") => Ok(Some(Self::Basic)),
            Some("client_secret_post") => Ok(Some(Self::Post)),
            Some(other) => Err(format!(
                "clientAuthMethod {other:?} must be client_secret_basic or client_secret_post"
            )),
        }
    }

    /// The method to use: the configured one, else from the discovered
    /// `token_endpoint_auth_methods_supported` (`supported`), else `client_secret_post`.
    pub fn choose(configured: Option<Self>, supported: Option<&[String]>) -> Self {
        let listed = |m: Self| supported.is_some_and(|s| s.iter().any(|n| n == m.name()));
        match configured {
            Some(method) => method,
            None if !listed(Self::Post) && listed(Self::Basic) => Self::Basic,
            None => Self::Post,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }
}

/// Everything a token depends on, plus where to keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    /// Grant used without a token.
    pub mode: Mode,
    /// Token endpoint; discovered from `issuer` when absent.
    pub token_url: Option<Url>,
    /// Authorization endpoint; discovered from `issuer` when absent.
    pub authorization_url: Option<Url>,
    /// OIDC issuer for discovery.
    pub issuer: Option<Url>,
    /// Client id reference.
    pub client_id: Secret,
    /// Client secret reference (absent for a public client).
    pub client_secret: Option<Secret>,
    /// Scopes, sorted and unique.
    pub scopes: Vec<String>,
    /// Audience / resource indicator.
    pub audience: Option<String>,
    /// Client authentication as configured (`None`: chosen per [`AuthMethod::choose`]).
    pub auth_method: Option<AuthMethod>,
    /// Token storage.
    pub storage: Storage,
    /// Redirect URI of the authorization-code flow (else the runtime's callback route).
    pub redirect_uri: Option<String>,
}

impl ClientSpec {
    /// The cache key: a digest of everything the token depends on. `principal` separates the
    /// tokens people authorized (authorization code); client-credentials tokens are shared.
    pub fn key(&self, client_id: &str, principal: Option<&str>) -> String {
        let principal = match self.mode {
            Mode::ClientCredentials => "",
            Mode::AuthorizationCode => principal.unwrap_or("anonymous"),
        };
        let text = [
            format!("{:?}", self.mode),
            self.token_url
                .as_ref()
                .map(Url::to_string)
                .unwrap_or_default(),
            self.authorization_url
                .as_ref()
                .map(Url::to_string)
                .unwrap_or_default(),
            self.issuer.as_ref().map(Url::to_string).unwrap_or_default(),
            client_id.to_owned(),
            self.scopes.join(" "),
            self.audience.clone().unwrap_or_default(),
            self.auth_method.map_or("auto", AuthMethod::name).to_owned(),
            self.redirect_uri.clone().unwrap_or_default(),
            principal.to_owned(),
        ]
        .join("\n");
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }

    /// Resolve the client id (the secret is resolved per request).
    pub async fn client_id(&self) -> Result<SecretValue, String> {
        resolve_secret(&self.client_id)
            .await
            .map_err(|e| format!("clientId: {e}"))
    }
}

/// A successful token response.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// A (possibly rotated) refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Why the token endpoint did not issue a token.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The server refused the grant with an OAuth error code (`invalid_grant`, ...).
    #[error("token endpoint answered {status} {code}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The `error` member (empty when absent).
        code: String,
    },
    /// The request could not be made or the answer is not a token.
    #[error("{0}")]
    Failed(String),
}

/// Make one token request with `grant` (the `grant_type` and its parameters), authenticating
/// the client with `method`.
pub async fn request(
    http: &reqwest::Client,
    endpoint: &Url,
    method: AuthMethod,
    spec: &ClientSpec,
    grant: &[(&str, &str)],
) -> Result<TokenResponse, GrantError> {
    let failed = |e: String| GrantError::Failed(e);
    let id = spec.client_id().await.map_err(failed)?;
    let secret = match &spec.client_secret {
        Some(s) => Some(
            resolve_secret(s)
                .await
                .map_err(|e| failed(format!("clientSecret: {e}")))?,
        ),
        None => None,
    };
    let scope = spec.scopes.join(" ");
    let mut form: Vec<(&str, &str)> = grant.to_vec();
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    if let Some(audience) = &spec.audience {
        form.push(("audience", audience));
        form.push(("resource", audience));
    }
    let mut builder = http
        .post(endpoint.clone())
        .header("accept", "application/json");
    match (&secret, method) {
        (Some(secret), AuthMethod::Basic) => {
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            builder = builder.basic_auth(encode(id.expose()), Some(encode(secret.expose())));
        }
        (Some(secret), AuthMethod::Post) => {
            form.push(("client_id", id.expose()));
            form.push(("client_secret", secret.expose()));
        }
        (None, _) => form.push(("client_id", id.expose())),
    }
    let response = builder
        .form(&form)
        .send()
        .await
        .map_err(|e| failed(format!("token request: {}", e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        #[derive(Deserialize)]
        struct Failure {
            error: Option<String>,
        }
        let code = response
            .json::<Failure>()
            .await
            .ok()
            .and_then(|f| f.error)
            .filter(|c| c.bytes().all(|b| b.is_ascii_graphic()) && c.len() <= 64)
            .unwrap_or_default();
        return Err(GrantError::Refused {
            status: status.as_u16(),
            code,
        });
    }
    let body: TokenResponse = response
        .json()
        .await
        .map_err(|_| failed("token response is not a JSON token".to_owned()))?;
    if body.access_token.is_empty() {
        return Err(failed("token response has no access_token".to_owned()));
    }
    Ok(body)
}

impl ClientSpec {
    /// The client of an `oauth2` secret for one requirement: endpoints from the secret's
    /// `tokenURL`/`authorizationURL`, else discovery at its `issuer`, else the requirement's
    /// flow of the same mode, else discovery at the scheme's `openIdConnectUrl`; scopes are the
    /// union of the secret's and the requirement's.
    pub fn from_secret(
        secret: &Secret,
        requirement: &crate::catalog::AuthRequirement,
    ) -> Result<Self, String> {
        let (mode, flow_name) = match secret.mode.as_deref() {
            Some("clientCredentials") => (Mode::ClientCredentials, "clientCredentials"),
            Some("authorizationCode") => (Mode::AuthorizationCode, "authorizationCode"),
            Some(other) => return Err(format!("oauth2 mode {other:?} is not supported")),
            None => return Err("oauth2 secret has no mode".to_owned()),
        };
        // An issuer the operator configured wins over the document's flow URLs: client secrets
        // go where the config says, not where an API description points.
        let flow = requirement
            .oauth_flows
            .iter()
            .find(|f| f.mode == flow_name)
            .filter(|_| secret.issuer.is_none());
        // Client secrets and codes go to these: https, or http to loopback only, whether the
        // URL came from the config or from an API description.
        let url = |field: &str, raw: Option<&str>| -> Result<Option<Url>, String> {
            raw.filter(|r| !r.is_empty())
                .map(|r| {
                    crate::net::https_or_loopback(r).map_err(|why| format!("oauth2 {field} {why}"))
                })
                .transpose()
        };
        let token_url = url(
            "tokenURL",
            secret
                .token_url
                .as_deref()
                .or(flow.map(|f| f.token_url.as_str())),
        )?;
        let authorization_url = url(
            "authorizationURL",
            secret
                .authorization_url
                .as_deref()
                .or(flow.map(|f| f.authorization_url.as_str())),
        )?;
        let issuer = url(
            "issuer",
            secret
                .issuer
                .as_deref()
                .or(Some(requirement.open_id_connect_url.as_str())),
        )?;
        let mut scopes: Vec<String> = secret.scopes.clone().unwrap_or_default();
        scopes.extend(requirement.scopes.iter().cloned());
        scopes.sort();
        scopes.dedup();
        Ok(Self {
            mode,
            token_url,
            authorization_url,
            issuer,
            client_id: secret
                .client_id
                .as_deref()
                .cloned()
                .ok_or("oauth2 secret has no clientId")?,
            client_secret: secret.client_secret.as_deref().cloned(),
            scopes,
            audience: secret.audience.clone(),
            auth_method: AuthMethod::parse(secret.client_auth_method.as_deref())?,
            storage: match secret.token_storage.as_deref() {
                Some("memory") => Storage::Memory,
                _ => Storage::Instance,
            },
            redirect_uri: secret.redirect_uri.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: Mode) -> ClientSpec {
        ClientSpec {
            mode,
            token_url: Some(Url::parse("https://as.test/token").unwrap()),
            authorization_url: None,
            issuer: None,
            client_id: Secret::default(),
            client_secret: None,
            scopes: vec!["read".into()],
            audience: Some("https://api.test".into()),
            auth_method: None,
            storage: Storage::Memory,
            redirect_uri: None,
        }
    }

    #[test]
    fn the_auth_method_is_configured_else_discovered_else_post() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let both = list(&["client_secret_basic", "client_secret_post"]);
        let basic = list(&["client_secret_basic", "private_key_jwt"]);
        let neither = list(&["private_key_jwt"]);
        let cases = [
            (Some(AuthMethod::Basic), Some(&both[..]), AuthMethod::Basic),
            (Some(AuthMethod::Post), Some(&basic[..]), AuthMethod::Post),
            (None, Some(&both[..]), AuthMethod::Post),
            (None, Some(&basic[..]), AuthMethod::Basic),
            (None, Some(&neither[..]), AuthMethod::Post),
            (None, None, AuthMethod::Post),
        ];
        for (configured, supported, expected) in cases {
            assert_eq!(
                AuthMethod::choose(configured, supported),
                expected,
                "{configured:?} {supported:?}"
            );
        }
        assert_eq!(AuthMethod::parse(None), Ok(None));
        assert!(AuthMethod::parse(Some("private_key_jwt")).is_err());
    }

    /// O11: a token for one audience, scope set, client or person is never reused for another.
    #[test]
    fn the_cache_key_separates_audiences_scopes_clients_and_people() {
        let base = spec(Mode::ClientCredentials);
        let key = base.key("app", None);
        let mut other_audience = base.clone();
        other_audience.audience = Some("https://other.test".into());
        let mut more_scopes = base.clone();
        more_scopes.scopes.push("write".into());
        let mut other_endpoint = base.clone();
        other_endpoint.token_url = Some(Url::parse("https://evil.test/token").unwrap());
        for (why, other) in [
            ("audience", other_audience.key("app", None)),
            ("scopes", more_scopes.key("app", None)),
            ("token endpoint", other_endpoint.key("app", None)),
            ("client id", base.key("other-app", None)),
        ] {
            assert_ne!(key, other, "{why}");
        }
        assert_eq!(
            key,
            base.key("app", Some("alice")),
            "client credentials are shared"
        );
        let code = spec(Mode::AuthorizationCode);
        assert_ne!(code.key("app", Some("alice")), code.key("app", Some("bob")));
        assert_ne!(
            code.key("app", Some("alice")),
            code.key("app", Some("client:alice"))
        );
    }
}
