//! Config problems, reported all at once with the JSON path of each, and the semantic rules
//! the merged (effective) config must satisfy.
//!
//! Rule: [`validate`] checks the merged config after every scope passed the schema; it never
//! stops at the first problem. Required keys, cross references (`services.*.source`,
//! `agents.*.toolSet`, `agents.defaultProfile`), per-source-type rules, MCP transport rules
//! ([`super::mcp_rules`]), secret shapes ([`super::secret_rules`]), every tool-id pattern and
//! the runtime block are checked here; tool-id patterns are checked per scope file by
//! [`pattern_problems`], next to the schema. Default: nothing is assumed; a missing required value is
//! a problem, not a default. Failure mode: the whole config is refused with every problem.

use std::fmt;

use serde_json::Value;

use super::model::{Config, SourceType};
use super::path::JsonPath;
use crate::catalog::pattern::Pattern;

/// One problem found in a config, located by a JSON path such as `sources.tickets.uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Which file (scope) the problem is in, when known.
    pub file: Option<String>,
    /// JSON path of the offending value (`$` for the document root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A config that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// All problems, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration validation failed")?;
        for d in &self.diagnostics {
            write!(f, "; {}: {}", d.path, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Problems found by a rule set: where, and what.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<(JsonPath, String)>);

impl Problems {
    pub(crate) fn push(&mut self, path: JsonPath, message: impl Into<String>) {
        self.0.push((path, message.into()));
    }
}

/// Check every semantic rule on the merged config; an empty result means the config is usable.
pub(crate) fn validate(config: &Config) -> Problems {
    let mut p = Problems::default();
    match config.cli.as_deref() {
        None => p.push(JsonPath::of(&["cli"]), "is required"),
        Some(v) if v.trim().is_empty() => p.push(JsonPath::of(&["cli"]), "must not be empty"),
        Some(_) => {}
    }
    if config.mode.as_ref().and_then(|m| m.default).is_none() {
        p.push(JsonPath::of(&["mode", "default"]), "is required");
    }
    if config.sources.is_none() && config.mcp_servers.is_none() && config.runtime.is_none() {
        p.push(
            JsonPath::root(),
            "must configure at least one of sources, mcpServers or runtime",
        );
    }
    runtime_rules(config, &mut p);
    source_rules(config, &mut p);
    super::mcp_rules::check(config, &mut p);
    agent_rules(config, &mut p);
    super::secret_rules::check(config, &mut p);
    super::plugin_rules::check(config, &mut p);
    p
}

/// Problems that do not make the config unusable (reported by `portcullis check`): secret
/// references that cannot be resolved on this host ([`crate::secrets::preflight`]).
pub fn warnings(config: &Config) -> Vec<Diagnostic> {
    let mut out = crate::secrets::preflight::check(config);
    let grant_mode = config
        .policy
        .as_ref()
        .and_then(|p| p.approvals.as_ref())
        .and_then(|a| a.mode)
        == Some(super::model::ApprovalMode::Grant);
    let auth_on = config
        .runtime
        .as_ref()
        .and_then(|r| r.server.as_ref())
        .is_some_and(|s| s.auth.is_some());
    if grant_mode && !auth_on {
        out.push(Diagnostic {
            file: None,
            path: JsonPath::of(&["policy", "approvals", "mode"]).to_string(),
            message: "grants need runtime auth (an approver is an authenticated principal); \
                      without runtime.server.auth no approval-required tool can run"
                .into(),
        });
    }
    out
}

fn runtime_rules(config: &Config, p: &mut Problems) {
    let Some(runtime) = &config.runtime else {
        return;
    };
    let base = JsonPath::of(&["runtime"]);
    if let Some(mode) = &runtime.mode {
        if mode != "remote" {
            p.push(base.key("mode"), "must be remote");
        }
    }
    if runtime.local.is_some() {
        p.push(
            base.key("local"),
            "is no longer supported; configure a remote runtime instead",
        );
    }
    if let Some(remote) = &runtime.remote {
        remote_rules(remote, &base.key("remote"), p);
    }
    let Some(server) = &runtime.server else {
        return;
    };
    let server_path = base.key("server");
    if let Some(limits) = &server.upstream {
        let up = server_path.key("upstream");
        let fields = [
            ("connectTimeoutMs", limits.connect_timeout_ms),
            ("timeoutMs", limits.timeout_ms),
            ("maxResponseBytes", limits.max_response_bytes),
            ("maxAttempts", limits.max_attempts.map(u64::from)),
            ("maxRetryAfterMs", limits.max_retry_after_ms),
        ];
        for (name, value) in fields {
            if value == Some(0) {
                p.push(up.key(name), "must be greater than 0");
            }
        }
    }
    if let Some(auth) = &server.auth {
        auth_rules(auth, &server_path.key("auth"), p);
    }
    edge_rules(server, &server_path, p);
}

/// `publicUrls`, `cors.allowedOrigins` and `connections`: what the HTTP edge matches against
/// must be exact, so anything it could not match precisely is refused here.
fn edge_rules(server: &super::model::ServerConfig, path: &JsonPath, p: &mut Problems) {
    for (i, raw) in server.public_urls.iter().flatten().enumerate() {
        let ok = url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
        if !ok {
            p.push(
                path.key("publicUrls").index(i),
                "must be an http or https URL with a host (https://portcullis.example.com)",
            );
        }
    }
    let origins = server
        .cors
        .as_ref()
        .and_then(|c| c.allowed_origins.as_ref());
    for (i, raw) in origins.into_iter().flatten().enumerate() {
        if crate::server::edge::Origin::parse(raw).is_none() {
            p.push(
                path.key("cors").key("allowedOrigins").index(i),
                "must be an exact origin: scheme://host[:port] with http or https, no path, no wildcard, not null",
            );
        }
    }
    if let Some(c) = &server.connections {
        let at = path.key("connections");
        let fields = [
            ("headerReadTimeoutMs", c.header_read_timeout_ms),
            ("idleTimeoutMs", c.idle_timeout_ms),
            ("maxConnections", c.max_connections.map(u64::from)),
            (
                "maxConnectionsPerIp",
                c.max_connections_per_ip.map(u64::from),
            ),
        ];
        for (name, value) in fields {
            if value == Some(0) {
                p.push(at.key(name), "must be greater than 0");
            }
        }
    }
}

/// `runtime.server.auth`: typed later by the runtime-access work; its basic shape is checked here.
fn auth_rules(auth: &Value, path: &JsonPath, p: &mut Problems) {
    let Some(obj) = auth.as_object() else {
        p.push(path.clone(), "must be an object");
        return;
    };
    let profile = obj.get("validationProfile");
    let legacy = obj.get("mode");
    match (profile, legacy) {
        (Some(Value::String(s)), _)
            if matches!(s.as_str(), "oidc_jwks" | "oauth2_introspection" | "plugin") => {}
        (Some(_), _) => p.push(
            path.key("validationProfile"),
            "must be one of oidc_jwks, oauth2_introspection, plugin",
        ),
        (None, Some(Value::String(m))) if m == "oauth2Introspection" => {}
        (None, Some(_)) => p.push(
            path.key("mode"),
            "legacy mode must be oauth2Introspection; use validationProfile instead",
        ),
        (None, None) => p.push(
            path.key("validationProfile"),
            "is required when runtime.server.auth is configured (oidc_jwks or oauth2_introspection)",
        ),
    }
    let effective = match (
        profile.and_then(Value::as_str),
        legacy.and_then(Value::as_str),
    ) {
        (Some(s), _) => s,
        (None, Some("oauth2Introspection")) => "oauth2_introspection",
        _ => "",
    };
    let present = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !present("audience") {
        p.push(
            path.key("audience"),
            "runtime.server.auth.audience is required when runtime auth is configured",
        );
    }
    let needs: &[&str] = match effective {
        // jwksURL is optional: without it the keys are found by OIDC discovery from issuer.
        "oidc_jwks" => &["issuer"],
        "oauth2_introspection" => &["introspectionURL"],
        // The plugin's name; that it exists and is an auth profile is checked by plugin rules.
        "plugin" => &["plugin"],
        _ => &[],
    };
    for key in needs {
        if !present(key) {
            p.push(path.key(key), format!("is required for {effective}"));
        }
    }
}

/// `runtime.remote` is client-side; only the rules the client relies on are enforced.
fn remote_rules(remote: &Value, path: &JsonPath, p: &mut Problems) {
    let Some(oauth) = remote.get("oauth") else {
        return;
    };
    let path = path.key("oauth");
    let has = |v: &Value, k: &str| v.get(k).is_some_and(|x| !x.is_null());
    match oauth.get("mode").and_then(Value::as_str) {
        Some("providedToken") => {
            if !has(oauth, "tokenRef") {
                p.push(path.key("tokenRef"), "is required for providedToken");
            }
            let delegation = oauth.get("delegation");
            let enabled = delegation
                .and_then(|d| d.get("enabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if enabled && !delegation.is_some_and(|d| has(d, "tokenExchangeURL")) {
                p.push(
                    path.key("delegation").key("tokenExchangeURL"),
                    "is required when delegation is enabled",
                );
            }
        }
        Some("oauthClient") => match oauth.get("client") {
            None => p.push(path.key("client"), "is required for oauthClient"),
            Some(client) => {
                for key in ["tokenURL", "clientId", "clientSecret"] {
                    if !has(client, key) {
                        p.push(path.key("client").key(key), "is required for oauthClient");
                    }
                }
            }
        },
        Some("browserLogin") | None => {}
        Some(_) => p.push(
            path.key("mode"),
            "must be one of providedToken, oauthClient, browserLogin",
        ),
    }
}

fn source_rules(config: &Config, p: &mut Problems) {
    let sources = config.sources.as_ref();
    for (id, source) in sources.into_iter().flatten() {
        let base = JsonPath::of(&["sources", id]);
        match source.kind {
            None => p.push(base.key("type"), "is required"),
            Some(SourceType::Mcp) => {
                if source.uri.is_some() {
                    p.push(base.key("uri"), "is not allowed for mcp sources");
                }
                if source.transport.is_none() {
                    p.push(base.key("transport"), "is required for mcp sources");
                }
                if source.redirects.is_some() {
                    p.push(base.key("redirects"), "is not allowed for mcp sources");
                }
            }
            Some(_) => {
                if source.uri.as_deref().is_none_or(str::is_empty) {
                    p.push(base.key("uri"), "is required");
                }
                let exclusive = [
                    ("transport", source.transport.is_some()),
                    ("disabledTools", source.disabled_tools.is_some()),
                    ("oauth", source.oauth.is_some()),
                ];
                for (key, set) in exclusive {
                    if set {
                        p.push(base.key(key), "is only allowed for mcp sources");
                    }
                }
            }
        }
        let origins = source
            .redirects
            .as_ref()
            .and_then(|r| r.allow_origins.as_ref());
        for (i, origin) in origins.into_iter().flatten().enumerate() {
            if let Err(why) = crate::net::parse_origin(origin) {
                let at = base.key("redirects").key("allowOrigins").index(i);
                p.push(at, why);
            }
        }
    }
    // An MCP source belongs to exactly one service, the one with the same key.
    let is_mcp = |id: &str| {
        sources
            .and_then(|s| s.get(id))
            .is_some_and(|s| s.kind == Some(SourceType::Mcp))
    };
    for (id, service) in config.services.iter().flatten() {
        let path = JsonPath::of(&["services", id, "source"]);
        match service.source.as_deref() {
            None => p.push(path, "is required"),
            Some(source_id) if sources.is_none_or(|s| !s.contains_key(source_id)) => {
                p.push(path, format!("references unknown source {source_id:?}"))
            }
            Some(source_id) if is_mcp(source_id) && source_id != id => p.push(
                path,
                format!("is a second service pointing at mcp source {source_id}"),
            ),
            Some(source_id) if is_mcp(id) && source_id != id => {
                p.push(path, format!("must reference {id:?} for mcp source"))
            }
            Some(_) => {}
        }
    }
}

fn agent_rules(config: &Config, p: &mut Problems) {
    let Some(agents) = &config.agents else { return };
    let tool_sets = config.curation.as_ref().and_then(|c| c.tool_sets.as_ref());
    for (name, profile) in agents.profiles.iter().flatten() {
        if let Some(set) = &profile.tool_set {
            if !tool_sets.is_some_and(|t| t.contains_key(set)) {
                p.push(
                    JsonPath::of(&["agents", "profiles", name, "toolSet"]),
                    format!("references unknown tool set {set:?} (define it in curation.toolSets)"),
                );
            }
        }
    }
    if let Some(default) = &agents.default_profile {
        if !agents
            .profiles
            .as_ref()
            .is_some_and(|pr| pr.contains_key(default))
        {
            p.push(
                JsonPath::of(&["agents", "defaultProfile"]),
                format!("references unknown profile {default:?}"),
            );
        }
    }
}

/// Every tool-id pattern in one scope document, checked where it is written (so the index in a
/// diagnostic is the index in that file). Runs on the raw JSON, so pattern problems are reported
/// alongside schema problems; non-string entries are left to the schema.
pub(crate) fn pattern_problems(doc: &Value) -> Problems {
    let mut p = Problems::default();
    let mut check = |path: JsonPath| {
        let Some(Value::Array(items)) = path.lookup(doc) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(Err(e)) = item.as_str().map(Pattern::parse) {
                p.push(path.index(i), e.to_string());
            }
        }
    };
    check(JsonPath::of(&["policy", "deny"]));
    check(JsonPath::of(&["policy", "approvalRequired"]));
    let sets = JsonPath::of(&["curation", "toolSets"]);
    if let Some(Value::Object(map)) = sets.lookup(doc) {
        for name in map.keys() {
            check(sets.key(name).key("allow"));
            check(sets.key(name).key("deny"));
        }
    }
    p
}
