//! Upstream credentials: which credentials a tool call carries.
//!
//! Rule: a tool's security is an ordered list of OR-alternatives, each an AND of requirements.
//! For each requirement the secret is looked up as `secrets["<serviceId>.<scheme>"]`, then
//! `secrets["<scheme>"]`. The first alternative whose every requirement resolves wins; an
//! alternative with no requirements (OpenAPI `{}`) means "no credentials". Requirements of an
//! alternative are applied in scheme-name order (the catalog sorts them), and two requirements
//! writing the same header, query parameter or cookie with different values fail that
//! alternative. When none can be satisfied the call fails (502 `credential_unavailable`) with
//! one reason per alternative — never a request with a partial or empty credential.
//!
//! | step | module |
//! |---|---|
//! | the slot: [`SecretSource`] | `secret_sources`; the resolver holds sources as trait objects and does not care which it asks |
//! | built-in sources (`literal`, `env`, `file`, `osKeychain`, `exec`) | `secret_sources`, one file and one `SecretSource` each, one dispatch (`secret_sources::builtin`) |
//! | `plugin` | `secret_sources::wasm` asks the secret-source WebAssembly component in a fresh isolated instance; any failure (its own error, a trap, a timeout, a memory-limit hit, an invalid value) fails that alternative |
//! | `oauth2` | an access token from [`crate::oauth`] (client credentials or authorization code); `oauth2`/`openIdConnect` requirements accept only it |
//! | applying a value per scheme | [`apply`] |
//! | load-time checks for `portcullis check` | [`preflight`] |
//! | scrubbing upstream bodies that echo a credential | [`scrub`] |
//!
//! Values containing CR, LF or NUL are refused without being echoed.

mod apply;
pub mod preflight;
pub mod scrub;
pub mod settings;
pub(crate) use crate::secret_sources as sources;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{AuthRequirement, Tool};
use crate::config::{Secret, SecretType};
use crate::oauth::{OAuthClients, OAuthError};
use crate::plugins::{PluginKind, PluginSet};

pub use crate::redact::SecretValue;
pub use apply::{AppliedCredentials, Applier};
pub(crate) use apply::{COMPONENT, COOKIE_VALUE};
pub use sources::{CallInfo, SecretRequest, SecretSource, SourceError};

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

/// Resolves `secrets` entries for tool calls.
#[derive(Debug, Clone)]
pub struct SecretResolver {
    secrets: BTreeMap<String, Secret>,
    /// `type: "plugin"` sources by plugin name.
    plugin_sources: BTreeMap<String, Arc<dyn SecretSource>>,
    oauth: Arc<OAuthClients>,
}

impl SecretResolver {
    /// Build with the instance's OAuth clients (token cache and store shared across reloads).
    pub fn with_oauth(
        secrets: Option<&BTreeMap<String, Secret>>,
        oauth: Arc<OAuthClients>,
    ) -> Self {
        Self {
            secrets: secrets.cloned().unwrap_or_default(),
            plugin_sources: BTreeMap::new(),
            oauth,
        }
    }

    /// Use the secret-source plugins of `plugins` for `type: "plugin"` secrets.
    pub fn with_plugins(self, plugins: PluginSet) -> Self {
        plugins
            .iter()
            .filter(|p| p.kind() == PluginKind::SecretSource)
            .fold(self, |resolver, plugin| {
                resolver.with_source(
                    plugin.name(),
                    Arc::new(sources::wasm::WasmSecretSource(plugin.clone())),
                )
            })
    }

    /// Use `source` for `type: "plugin"` secrets naming `plugin`.
    pub fn with_source(mut self, plugin: &str, source: Arc<dyn SecretSource>) -> Self {
        self.plugin_sources.insert(plugin.to_owned(), source);
        self
    }

    /// Credentials for one call of `tool` by `call.principal` (whose authorization-code tokens
    /// are used). An alternative needing a person's authorization does not stop the search: a
    /// later alternative that resolves without one wins.
    pub async fn credentials_for(
        &self,
        tool: &Tool,
        call: &CallInfo,
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
                .satisfy(tool, &alternative.requirements, call, &mut oauth)
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
        tool: &Tool,
        requirements: &[AuthRequirement],
        call: &CallInfo,
        oauth: &mut Option<OAuthError>,
    ) -> Result<AppliedCredentials, String> {
        let service = tool.service_id.as_str();
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
                    self.oauth
                        .bearer(&spec, call.principal.as_deref())
                        .await
                        .map_err(|e| {
                            let why = e.to_string();
                            if oauth.is_none()
                                || matches!(e, OAuthError::InteractiveRequired { .. })
                            {
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
                _ => self
                    .value(secret, tool, &requirement.name, call)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            applier.apply(requirement, &value)?;
        }
        Ok(applier.finish())
    }

    /// The one place where a secret entry becomes a value: `type: "plugin"` goes to the named
    /// plugin's source, every other type to its built-in source ([`sources::builtin`]). `oauth2`
    /// never gets here: `satisfy` asks the OAuth client, which needs the requirement's scopes.
    async fn value(
        &self,
        secret: &Secret,
        tool: &Tool,
        scheme: &str,
        call: &CallInfo,
    ) -> Result<SecretValue, SourceError> {
        let request = SecretRequest {
            secret,
            service: &tool.service_id,
            scheme,
            tool_id: &tool.id,
            call,
        };
        if secret.kind == Some(SecretType::Plugin) {
            let name = secret.plugin.as_deref().unwrap_or_default();
            let source = self
                .plugin_sources
                .get(name)
                .ok_or_else(|| SourceError::PluginNotLoaded(name.to_owned()))?;
            return source.resolve(request).await;
        }
        sources::builtin(secret.kind)?.resolve(request).await
    }

    fn lookup(&self, service: &str, scheme: &str) -> Option<&Secret> {
        self.secrets
            .get(&format!("{service}.{scheme}"))
            .or_else(|| self.secrets.get(scheme))
    }
}

/// Resolve a static secret reference (also used for MCP `headerSecrets` and OAuth clients).
/// The error names the reference, never a value.
pub async fn resolve_secret(secret: &Secret) -> Result<SecretValue, SourceError> {
    sources::resolve(secret).await
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
        SecretResolver::with_oauth(
            Some(&serde_json::from_value(json).unwrap()),
            Arc::new(OAuthClients::in_memory().unwrap()),
        )
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
                &CallInfo::default(),
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
        let err = r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap_err();
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
        let err = r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap_err();
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
        assert!(r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap()
            .is_empty());
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
                &CallInfo::default(),
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
                &CallInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(creds.headers[0].1, "Bearer tok");
    }

    #[tokio::test]
    async fn and_requirements_apply_in_scheme_name_order() {
        let r = resolver(serde_json::json!({
            "a_key": {"type": "literal", "value": "1"},
            "b_key": {"type": "literal", "value": "2"},
            "c_key": {"type": "literal", "value": "3"}
        }));
        // The catalog sorts requirements by scheme name; the resolver keeps that order.
        let t = tool(vec![vec![
            requirement("a_key", "apiKey", "", "query", "a"),
            requirement("b_key", "apiKey", "", "query", "b"),
            requirement("c_key", "apiKey", "", "cookie", "c"),
        ]]);
        let creds = r.credentials_for(&t, &CallInfo::default()).await.unwrap();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(creds.query, [pair("a", "1"), pair("b", "2")]);
        assert_eq!(creds.cookies, [pair("c", "3")]);
    }

    #[tokio::test]
    async fn two_requirements_writing_one_target_with_different_values_fail_that_alternative() {
        let r = resolver(serde_json::json!({
            "one": {"type": "literal", "value": "v1"},
            "two": {"type": "literal", "value": "v2"},
            "same": {"type": "literal", "value": "v1"},
            "fallback": {"type": "literal", "value": "fb"}
        }));
        let conflicting = |a: &str, b: &str, location: &str| {
            vec![
                requirement(a, "apiKey", "", location, "X-Key"),
                requirement(b, "apiKey", "", location, "X-Key"),
            ]
        };
        for location in ["header", "query", "cookie"] {
            let t = tool(vec![
                conflicting("one", "two", location),
                vec![requirement("fallback", "http", "bearer", "", "")],
            ]);
            let creds = r.credentials_for(&t, &CallInfo::default()).await.unwrap();
            assert_eq!(
                creds.headers.len(),
                1,
                "{location}: the fallback alternative wins"
            );
            assert_eq!(creds.headers[0].1, "Bearer fb");
            assert!(
                creds.query.is_empty() && creds.cookies.is_empty(),
                "nothing of the failed alternative leaks in"
            );
            // Equal values for the same target are not a conflict.
            let same = tool(vec![conflicting("one", "same", location)]);
            assert!(
                r.credentials_for(&same, &CallInfo::default()).await.is_ok(),
                "{location}"
            );
            let err = r
                .credentials_for(
                    &tool(vec![conflicting("one", "two", location)]),
                    &CallInfo::default(),
                )
                .await
                .unwrap_err();
            assert!(err.reasons[0].starts_with("one+two: conflicting"), "{err}");
            assert!(
                !err.to_string().contains("v1") && !err.to_string().contains("v2"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn the_error_names_every_alternative_and_why() {
        let r = resolver(serde_json::json!({
            "empty": {"type": "env", "value": "PORTCULLIS_TEST_SURELY_UNSET_2"},
            "file": {"type": "file", "value": "/nonexistent/portcullis/secret"},
            "ok": {"type": "literal", "value": "v"}
        }));
        let t = tool(vec![
            vec![
                requirement("ok", "apiKey", "", "header", "X-A"),
                requirement("empty", "apiKey", "", "header", "X-B"),
            ],
            vec![requirement("file", "http", "bearer", "", "")],
            vec![requirement("missing", "http", "basic", "", "")],
            vec![requirement("plug", "oauth2", "", "", "")],
        ]);
        let err = r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.reasons,
            [
                "ok+empty: environment variable PORTCULLIS_TEST_SURELY_UNSET_2 is not set",
                "file: secret file /nonexistent/portcullis/secret: entity not found",
                "missing: no secret configured (secrets[\"svc.missing\"] or secrets[\"missing\"])",
                "plug: no secret configured (secrets[\"svc.plug\"] or secrets[\"plug\"])",
            ]
        );
    }

    #[tokio::test]
    async fn unusable_oauth2_and_unloaded_plugin_secrets_fail_closed() {
        let r = resolver(serde_json::json!({
            "o": {"type": "oauth2", "mode": "clientCredentials", "clientId": {"type": "literal", "value": "c"}},
            "p": {"type": "plugin", "plugin": "vault", "value": "kv/x"}
        }));
        let t = tool(vec![
            vec![requirement("o", "oauth2", "", "", "")],
            vec![requirement("p", "http", "bearer", "", "")],
        ]);
        let err = r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap_err();
        assert!(err.reasons[0].starts_with("o: "), "{err}");
        assert!(
            err.reasons[1].contains("plugin \"vault\" is not loaded"),
            "{err}"
        );
    }

    /// A secret source that answers without any plugin or network, and remembers what it was
    /// asked.
    struct FakeSource {
        answer: Result<&'static str, &'static str>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl FakeSource {
        fn new(answer: Result<&'static str, &'static str>) -> Arc<Self> {
            Arc::new(Self {
                answer,
                asked: std::sync::Mutex::new(Vec::new()),
            })
        }
    }

    impl SecretSource for FakeSource {
        fn resolve<'a>(
            &'a self,
            request: SecretRequest<'a>,
        ) -> futures_util::future::BoxFuture<'a, Result<SecretValue, SourceError>> {
            self.asked.lock().unwrap().push(format!(
                "{} {} {} {} {} {:?}",
                request.secret.value.as_deref().unwrap_or_default(),
                request.service,
                request.scheme,
                request.tool_id,
                request.call.request_id,
                request.call.principal,
            ));
            Box::pin(async move {
                match self.answer {
                    Ok(value) => Ok(SecretValue::new(value.into())),
                    Err(plugin) => Err(SourceError::PluginRefused(plugin.into())),
                }
            })
        }
    }

    fn with_fake(json: serde_json::Value, fake: &Arc<FakeSource>) -> SecretResolver {
        resolver(json).with_source("vault", fake.clone())
    }

    #[tokio::test]
    async fn a_plugin_secret_is_asked_of_its_source_with_the_calls_context() {
        let fake = FakeSource::new(Ok("from-vault"));
        let r = with_fake(
            serde_json::json!({"key": {"type": "plugin", "plugin": "vault", "value": "kv/key"}}),
            &fake,
        );
        let call = CallInfo {
            request_id: "req-1".into(),
            principal: Some("alice".into()),
        };
        let creds = r
            .credentials_for(
                &tool(vec![vec![requirement(
                    "key", "apiKey", "", "header", "X-Key",
                )]]),
                &call,
            )
            .await
            .unwrap();
        assert_eq!(creds.headers[0].1, "from-vault");
        assert_eq!(
            *fake.asked.lock().unwrap(),
            ["kv/key svc key svc:op req-1 Some(\"alice\")"]
        );
    }

    #[tokio::test]
    async fn a_failed_source_fails_its_alternative_without_partial_credentials() {
        let fake = FakeSource::new(Err("vault"));
        let r = with_fake(
            serde_json::json!({
                "a": {"type": "literal", "value": "canary-literal-value"},
                "b": {"type": "plugin", "plugin": "vault", "value": "kv/b"}
            }),
            &fake,
        );
        let t = tool(vec![vec![
            requirement("a", "apiKey", "", "header", "X-A"),
            requirement("b", "apiKey", "", "header", "X-B"),
        ]]);
        let err = r
            .credentials_for(&t, &CallInfo::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.reasons,
            ["a+b: plugin \"vault\" could not resolve the secret"]
        );
        assert!(!err.to_string().contains("canary-literal-value"), "{err}");
        assert!(err.oauth.is_none());
    }

    #[tokio::test]
    async fn a_later_alternative_wins_when_a_plugin_source_fails() {
        let fake = FakeSource::new(Err("vault"));
        let r = with_fake(
            serde_json::json!({
                "b": {"type": "plugin", "plugin": "vault", "value": "kv/b"},
                "c": {"type": "literal", "value": "fallback"}
            }),
            &fake,
        );
        let t = tool(vec![
            vec![requirement("b", "apiKey", "", "header", "X-B")],
            vec![requirement("c", "apiKey", "", "header", "X-C")],
        ]);
        let creds = r.credentials_for(&t, &CallInfo::default()).await.unwrap();
        assert_eq!(creds.headers.len(), 1);
        assert_eq!(creds.headers[0].1, "fallback");
        assert_eq!(fake.asked.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_plugin_secret_naming_no_loaded_source_fails_closed() {
        let r = resolver(
            serde_json::json!({"key": {"type": "plugin", "plugin": "absent", "value": "x"}}),
        );
        let err = r
            .credentials_for(
                &tool(vec![vec![requirement(
                    "key", "apiKey", "", "header", "X-Key",
                )]]),
                &CallInfo::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reasons, ["key: plugin \"absent\" is not loaded"]);
    }
}
