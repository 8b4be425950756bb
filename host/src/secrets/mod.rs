//! Upstream credentials: which credentials a tool call carries.
//!
//! Rule: a tool's security is an ordered list of OR-alternatives, each an AND of requirements.
//! For each requirement the secret is looked up as `secrets["<serviceId>.<scheme>"]`, then
//! `secrets["<scheme>"]`. The first alternative whose every requirement resolves wins; an
//! alternative with no requirements (OpenAPI `{}`) means "no credentials". When none can be
//! satisfied the call fails (502 `credential_unavailable`) with one reason per alternative —
//! never a request with a partial or empty credential.
//!
//! Sources available in this build: `literal`, `env` (unset or empty is an error), `file`
//! (one trailing `\n` or `\r\n` is trimmed) and `oauth2` (an access token from
//! [`crate::oauth`]; `oauth2`/`openIdConnect` requirements accept only it). `osKeychain`, `exec`
//! and `plugin` fail closed with a clear reason until they land. Values containing CR, LF or
//! NUL are refused without being echoed.

mod apply;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{AuthRequirement, Tool};
use crate::config::{Secret, SecretType};
use crate::oauth::{OAuthClients, OAuthError};
use crate::upstream::AppliedCredentials;

pub use apply::Applier;

/// No alternative could be satisfied.
#[derive(Debug, thiserror::Error)]
#[error("no credentials for tool {tool_id}: {}", .reasons.join("; "))]
pub struct CredentialError {
    /// The tool.
    pub tool_id: String,
    /// One entry per alternative: `<scheme>[+<scheme>]: <why>` (never a secret value).
    pub reasons: Vec<String>,
    /// The OAuth outcome the caller can act on (`interactive_required` with an authorization
    /// URL, or `reauthorization_required`), when an `oauth2` secret was the obstacle.
    pub oauth: Option<OAuthError>,
}

/// A resolved secret value. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap a value obtained elsewhere (an OAuth token).
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for applying to a request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Resolves `secrets` entries for tool calls.
#[derive(Debug, Clone, Default)]
pub struct SecretResolver {
    secrets: BTreeMap<String, Secret>,
    oauth: Arc<OAuthClients>,
}

impl SecretResolver {
    /// Build from the config's `secrets` block; `oauth2` tokens are kept in memory only.
    pub fn new(secrets: Option<&BTreeMap<String, Secret>>) -> Self {
        Self::with_oauth(secrets, Arc::default())
    }

    /// Build with the instance's OAuth clients (token cache and store shared across reloads).
    pub fn with_oauth(
        secrets: Option<&BTreeMap<String, Secret>>,
        oauth: Arc<OAuthClients>,
    ) -> Self {
        Self {
            secrets: secrets.cloned().unwrap_or_default(),
            oauth,
        }
    }

    /// Credentials for one call of `tool` by `principal` (whose authorization-code tokens are
    /// used). An alternative needing a person's authorization does not stop the search: a
    /// later alternative that resolves without one wins.
    pub async fn credentials_for(
        &self,
        tool: &Tool,
        principal: Option<&str>,
    ) -> Result<AppliedCredentials, CredentialError> {
        // Contract 5.2: with no alternatives, a non-empty legacy `auth` list is one AND
        // alternative. The catalog uses this to fail closed on tools whose security names only
        // unknown schemes (an `auth` entry of type `unknown`, which nothing can satisfy).
        let from_auth;
        let alternatives = if tool.auth_alternatives.is_empty() {
            if tool.auth.is_empty() {
                return Ok(AppliedCredentials::default());
            }
            from_auth = [crate::catalog::AuthAlternative {
                requirements: tool.auth.clone(),
            }];
            &from_auth[..]
        } else {
            &tool.auth_alternatives[..]
        };
        let mut reasons = Vec::new();
        let mut oauth = None;
        for alternative in alternatives {
            match self
                .satisfy(
                    &tool.service_id,
                    &alternative.requirements,
                    principal,
                    &mut oauth,
                )
                .await
            {
                Ok(creds) => return Ok(creds),
                Err(why) => {
                    let names: Vec<&str> = alternative
                        .requirements
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect();
                    reasons.push(format!("{}: {why}", names.join("+")));
                }
            }
        }
        Err(CredentialError {
            tool_id: tool.id.clone(),
            reasons,
            oauth,
        })
    }

    async fn satisfy(
        &self,
        service: &str,
        requirements: &[AuthRequirement],
        principal: Option<&str>,
        oauth: &mut Option<OAuthError>,
    ) -> Result<AppliedCredentials, String> {
        let mut applier = Applier::default();
        for requirement in requirements {
            let secret = self.lookup(service, &requirement.name).ok_or_else(|| {
                format!(
                    "no secret configured (secrets[\"{service}.{0}\"] or secrets[\"{0}\"])",
                    requirement.name
                )
            })?;
            let value = match secret.kind {
                Some(SecretType::Oauth2) => {
                    let spec = crate::oauth::ClientSpec::from_secret(secret, requirement)?;
                    self.oauth.bearer(&spec, principal).await.map_err(|e| {
                        let why = e.to_string();
                        if oauth.is_none() || matches!(e, OAuthError::InteractiveRequired { .. }) {
                            *oauth = Some(e);
                        }
                        why
                    })?
                }
                _ if matches!(requirement.kind.as_str(), "oauth2" | "openIdConnect") => {
                    return Err(format!(
                        "{} credentials need a secret of type oauth2",
                        requirement.kind
                    ))
                }
                _ => resolve(secret)?,
            };
            applier.apply(requirement, &value)?;
        }
        Ok(applier.finish())
    }

    fn lookup(&self, service: &str, scheme: &str) -> Option<&Secret> {
        self.secrets
            .get(&format!("{service}.{scheme}"))
            .or_else(|| self.secrets.get(scheme))
    }
}

/// Resolve a static secret reference (also used for MCP `headerSecrets` and OAuth clients).
/// The error names the reference, never a value.
pub fn resolve_secret(secret: &Secret) -> Result<SecretValue, String> {
    resolve(secret)
}

fn resolve(secret: &Secret) -> Result<SecretValue, String> {
    let value = secret.value.as_deref().unwrap_or_default();
    let raw = match secret.kind {
        Some(SecretType::Literal) => value.to_owned(),
        Some(SecretType::Env) => match std::env::var(value) {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => return Err(format!("environment variable {value} is empty")),
            Err(_) => return Err(format!("environment variable {value} is not set")),
        },
        Some(SecretType::File) => {
            let text = std::fs::read_to_string(value)
                .map_err(|e| format!("secret file {value}: {}", e.kind()))?;
            let trimmed = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            if trimmed.is_empty() {
                return Err(format!("secret file {value} is empty"));
            }
            trimmed.to_owned()
        }
        Some(other) => {
            return Err(format!(
                "secret type {other:?} is not available in this build"
            ))
        }
        None => return Err("secret has no type".to_owned()),
    };
    if raw.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("secret value contains CR, LF or NUL".to_owned());
    }
    Ok(SecretValue(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::AuthAlternative;

    fn requirement(
        name: &str,
        kind: &str,
        scheme: &str,
        location: &str,
        param: &str,
    ) -> AuthRequirement {
        AuthRequirement {
            name: name.into(),
            kind: kind.into(),
            scheme: scheme.into(),
            location: location.into(),
            param_name: param.into(),
            ..Default::default()
        }
    }

    fn tool(alternatives: Vec<Vec<AuthRequirement>>) -> Tool {
        Tool {
            id: "svc:op".into(),
            service_id: "svc".into(),
            auth_alternatives: alternatives
                .into_iter()
                .map(|requirements| AuthAlternative { requirements })
                .collect(),
            ..Tool::default()
        }
    }

    fn resolver(json: serde_json::Value) -> SecretResolver {
        SecretResolver::new(Some(&serde_json::from_value(json).unwrap()))
    }

    #[tokio::test]
    async fn service_scoped_secret_wins_over_scheme_secret() {
        let r = resolver(serde_json::json!({
            "bearer": {"type": "literal", "value": "generic"},
            "svc.bearer": {"type": "literal", "value": "scoped"}
        }));
        let creds = r
            .credentials_for(
                &tool(vec![vec![requirement("bearer", "http", "bearer", "", "")]]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(creds.headers[0].1, "Bearer scoped");
    }

    #[tokio::test]
    async fn unresolvable_alternatives_fail_with_one_reason_each_and_no_value() {
        let r = resolver(
            serde_json::json!({"key": {"type": "env", "value": "PORTCULLIS_TEST_SURELY_UNSET"}}),
        );
        let t = tool(vec![
            vec![requirement("oauth", "oauth2", "", "", "")],
            vec![requirement("key", "apiKey", "", "header", "X-Key")],
        ]);
        let err = r.credentials_for(&t, None).await.unwrap_err();
        assert_eq!(err.reasons.len(), 2);
        assert!(err.reasons[0].starts_with("oauth: no secret configured"));
        assert!(err.reasons[1].contains("PORTCULLIS_TEST_SURELY_UNSET is not set"));
    }

    #[tokio::test]
    async fn security_naming_only_unknown_schemes_fails_closed() {
        let r = resolver(serde_json::json!({ "mystery": { "type": "literal", "value": "v" } }));
        let t = Tool {
            id: "svc:op".into(),
            service_id: "svc".into(),
            auth: vec![requirement("mystery", "unknown", "", "", "")],
            ..Tool::default()
        };
        let err = r.credentials_for(&t, None).await.unwrap_err();
        assert!(
            err.reasons[0].contains("unsupported security scheme"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn optional_alternative_means_no_credentials() {
        let r = resolver(serde_json::json!({}));
        let t = tool(vec![
            vec![requirement("key", "apiKey", "", "header", "X-Key")],
            vec![],
        ]);
        assert!(r.credentials_for(&t, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn header_injection_in_a_secret_is_refused_without_echo() {
        let r =
            resolver(serde_json::json!({"key": {"type": "literal", "value": "abc\r\nX-Evil: 1"}}));
        let err = r
            .credentials_for(
                &tool(vec![vec![requirement(
                    "key", "apiKey", "", "header", "X-Key",
                )]]),
                None,
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CR, LF or NUL") && !text.contains("X-Evil"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn file_secret_trims_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "tok\n").unwrap();
        let r = resolver(serde_json::json!({"b": {"type": "file", "value": path}}));
        let creds = r
            .credentials_for(
                &tool(vec![vec![requirement("b", "http", "bearer", "", "")]]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(creds.headers[0].1, "Bearer tok");
    }

    #[test]
    fn secret_value_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", SecretValue("canary".into())),
            "SecretValue(<redacted>)"
        );
    }
}
