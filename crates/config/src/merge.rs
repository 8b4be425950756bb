//! Scope merge rules: managed -> user -> project -> local, later wins (contract 2.5).
//!
//! | field | rule |
//! |---|---|
//! | `cli` | last non-empty wins |
//! | `mode` | replaced when a later scope sets `default` |
//! | `runtime.*` | field by field; `remote` and `server.auth` are merged key by key |
//! | `sources.X` | field by field; `type` clears the other kind's fields; `refresh` replaced whole |
//! | `services.X` | `source`/`alias` last wins; `overlays`/`skills`/`workflows` replaced |
//! | `curation.toolSets.X.allow/deny` | appended, duplicates dropped |
//! | `agents` | last wins per field |
//! | `policy.deny/approvalRequired` | appended, duplicates dropped; managed `deny` also kept in `managed_deny` |
//! | `policy.allowExecSecrets`, `policy.pluginBudgetMs` | last explicit value wins |
//! | `policy.approvals` | only stricter: `mode: grant` and `forbidSelfApproval: true` stick, the shortest `ttlSeconds` wins, the first `approverScope` stays |
//! | `secrets.X` | whole entry replaced |
//! | `plugins.X` | whole entry replaced |
//! | `policy.plugins` | appended, duplicates dropped |
//!
//! Departure from the reference: a legacy `runtime.server.auth.mode: oauth2Introspection` is
//! normalized to `validationProfile` within its own scope, so a later scope's
//! `validationProfile` always wins. The merge itself cannot fail; problems in the result are
//! found by [`super::validate`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{
    Agents, ApprovalMode, Approvals, Config, Curation, McpTransport, Policy, RuntimeConfig,
    Service, Source, SourceType,
};

/// Which scope a document came from (precedence order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Organisation-managed config.
    Managed,
    /// Per-user config.
    User,
    /// The project config.
    Project,
    /// `.cli.local.json` beside the project config.
    Local,
}

/// Merge `scope` (a later, higher-precedence document) into `into`.
pub fn merge(into: &mut Config, scope: Config, from: Scope) {
    // Last non-empty wins; an empty value is kept only when nothing else set one, so that
    // validation can say "must not be empty" rather than "is required".
    if let Some(cli) = scope.cli.filter(|c| !c.is_empty() || into.cli.is_none()) {
        into.cli = Some(cli);
    }
    if let Some(mode) = scope.mode.filter(|m| m.default.is_some()) {
        into.mode = Some(mode);
    }
    if scope.schema.is_some() {
        into.schema = scope.schema;
    }
    if let Some(runtime) = scope.runtime {
        merge_runtime(into.runtime.get_or_insert_with(Default::default), runtime);
    }
    if let Some(sources) = scope.sources {
        let target = into.sources.get_or_insert_with(BTreeMap::new);
        for (id, source) in sources {
            let slot = target.entry(id).or_insert_with(|| Source {
                enabled: Some(true),
                ..Source::default()
            });
            merge_source(slot, source);
        }
    }
    if let Some(servers) = scope.mcp_servers {
        // Normally normalized away before the merge; kept for callers merging raw documents.
        into.mcp_servers
            .get_or_insert_with(BTreeMap::new)
            .extend(servers);
    }
    if let Some(services) = scope.services {
        let target = into.services.get_or_insert_with(BTreeMap::new);
        for (id, service) in services {
            merge_service(target.entry(id).or_default(), service);
        }
    }
    if let Some(curation) = scope.curation {
        merge_curation(into.curation.get_or_insert_with(Default::default), curation);
    }
    if let Some(agents) = scope.agents {
        merge_agents(into.agents.get_or_insert_with(Default::default), agents);
    }
    if let Some(policy) = scope.policy {
        merge_policy(
            into.policy.get_or_insert_with(Default::default),
            policy,
            from,
        );
    }
    if let Some(secrets) = scope.secrets {
        into.secrets
            .get_or_insert_with(BTreeMap::new)
            .extend(secrets);
    }
    if let Some(plugins) = scope.plugins {
        into.plugins
            .get_or_insert_with(BTreeMap::new)
            .extend(plugins);
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Append `more` to `list`, skipping entries already present.
fn union(list: &mut Option<Vec<String>>, more: Option<Vec<String>>) {
    let Some(more) = more else { return };
    let target = list.get_or_insert_with(Vec::new);
    for item in more {
        if !target.contains(&item) {
            target.push(item);
        }
    }
}

/// Key-by-key merge of JSON objects; anything else is replaced.
fn merge_value(into: &mut Value, later: Value) {
    match (into, later) {
        (Value::Object(base), Value::Object(more)) => {
            for (k, v) in more {
                match base.get_mut(&k) {
                    Some(slot) => merge_value(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, later) => *slot = later,
    }
}

fn merge_opt_value(slot: &mut Option<Value>, later: Option<Value>) {
    match (slot.as_mut(), later) {
        (Some(base), Some(more)) => merge_value(base, more),
        (None, Some(more)) => *slot = Some(more),
        (_, None) => {}
    }
}

/// Rewrite the legacy `mode: "oauth2Introspection"` as `validationProfile` within one scope.
/// Any other legacy mode is left for validation to report.
pub fn normalize_auth(auth: &mut Value) {
    let Some(obj) = auth.as_object_mut() else {
        return;
    };
    if obj.get("mode").and_then(Value::as_str) == Some("oauth2Introspection") {
        obj.remove("mode");
        obj.entry("validationProfile")
            .or_insert_with(|| Value::String("oauth2_introspection".into()));
    }
}

fn merge_runtime(into: &mut RuntimeConfig, later: RuntimeConfig) {
    set(&mut into.mode, later.mode);
    merge_opt_value(&mut into.remote, later.remote);
    merge_opt_value(&mut into.local, later.local);
    let Some(server) = later.server else { return };
    let target = into.server.get_or_insert_with(Default::default);
    if let Some(mut auth) = server.auth {
        normalize_auth(&mut auth);
        merge_opt_value(&mut target.auth, Some(auth));
    }
    if let Some(up) = server.upstream {
        let t = target.upstream.get_or_insert_with(Default::default);
        set(&mut t.connect_timeout_ms, up.connect_timeout_ms);
        set(&mut t.timeout_ms, up.timeout_ms);
        set(&mut t.max_response_bytes, up.max_response_bytes);
        set(&mut t.max_attempts, up.max_attempts);
        set(&mut t.max_retry_after_ms, up.max_retry_after_ms);
    }
    set(&mut target.public_urls, server.public_urls);
    if let Some(cors) = server.cors {
        let t = target.cors.get_or_insert_with(Default::default);
        set(&mut t.allowed_origins, cors.allowed_origins);
    }
    if let Some(c) = server.connections {
        let t = target.connections.get_or_insert_with(Default::default);
        set(&mut t.header_read_timeout_ms, c.header_read_timeout_ms);
        set(&mut t.idle_timeout_ms, c.idle_timeout_ms);
        set(&mut t.max_connections, c.max_connections);
        set(&mut t.max_connections_per_ip, c.max_connections_per_ip);
    }
}

fn merge_source(into: &mut Source, later: Source) {
    if let Some(kind) = later.kind {
        if kind == SourceType::Mcp {
            into.uri = None;
            into.pin = None;
        } else {
            into.transport = None;
            into.disabled_tools = None;
            into.oauth = None;
            into.tool_pins = None;
            into.tool_name_prefix = None;
        }
        into.kind = Some(kind);
    }
    set(&mut into.uri, later.uri);
    set(&mut into.enabled, later.enabled);
    set(&mut into.refresh, later.refresh);
    set(&mut into.disabled_tools, later.disabled_tools);
    set(&mut into.redirects, later.redirects);
    set(&mut into.tool_pins, later.tool_pins);
    set(&mut into.tool_name_prefix, later.tool_name_prefix);
    set(&mut into.pin, later.pin);
    if let Some(transport) = later.transport {
        let changed = transport.kind.is_some()
            && into.transport.as_ref().and_then(|t| t.kind.as_ref()) != transport.kind.as_ref();
        let oauth_kept = transport.kind.as_deref() == Some("streamable-http");
        if changed && !oauth_kept && into.transport.is_some() {
            into.oauth = None;
        }
        merge_transport(
            into.transport.get_or_insert_with(Default::default),
            transport,
        );
    }
    if let Some(mut oauth) = later.oauth {
        let client_credentials =
            oauth.get("mode").and_then(Value::as_str) == Some("clientCredentials");
        if let (true, Some(Value::Object(base))) = (client_credentials, into.oauth.as_mut()) {
            for key in [
                "authorizationURL",
                "interactive",
                "callbackPort",
                "redirectURI",
            ] {
                base.remove(key);
            }
        }
        // Secret references inside oauth are replaced whole, like `secrets` entries.
        if let (Some(Value::Object(base)), Value::Object(more)) = (into.oauth.as_mut(), &mut oauth)
        {
            for (k, v) in std::mem::take(more) {
                base.insert(k, v);
            }
        } else {
            into.oauth = Some(oauth);
        }
    }
}

fn merge_transport(into: &mut McpTransport, later: McpTransport) {
    if let Some(kind) = &later.kind {
        if into.kind.as_ref() != Some(kind) {
            if kind == "stdio" {
                into.url = None;
                into.headers = None;
                into.header_secrets = None;
            } else {
                into.command = None;
                into.args = None;
                into.env = None;
                into.pass_env = None;
            }
        }
    }
    set(&mut into.kind, later.kind);
    set(&mut into.command, later.command);
    set(&mut into.args, later.args);
    set(&mut into.env, later.env);
    set(&mut into.pass_env, later.pass_env);
    set(&mut into.url, later.url);
    set(&mut into.headers, later.headers);
    set(&mut into.header_secrets, later.header_secrets);
}

fn merge_service(into: &mut Service, later: Service) {
    set(&mut into.source, later.source);
    set(&mut into.alias, later.alias);
    set(&mut into.overlays, later.overlays);
    set(&mut into.skills, later.skills);
    set(&mut into.workflows, later.workflows);
}

fn merge_curation(into: &mut Curation, later: Curation) {
    let Some(sets) = later.tool_sets else { return };
    let target = into.tool_sets.get_or_insert_with(BTreeMap::new);
    for (name, set) in sets {
        let slot = target.entry(name).or_default();
        union(&mut slot.allow, set.allow);
        union(&mut slot.deny, set.deny);
    }
}

fn merge_agents(into: &mut Agents, later: Agents) {
    set(&mut into.default_profile, later.default_profile);
    let Some(profiles) = later.profiles else {
        return;
    };
    let target = into.profiles.get_or_insert_with(BTreeMap::new);
    for (name, profile) in profiles {
        let slot = target.entry(name).or_default();
        set(&mut slot.mode, profile.mode);
        set(&mut slot.tool_set, profile.tool_set);
    }
}

fn merge_policy(into: &mut Policy, later: Policy, from: Scope) {
    if from == Scope::Managed {
        for pattern in later.deny.iter().flatten() {
            if !into.managed_deny.contains(pattern) {
                into.managed_deny.push(pattern.clone());
            }
        }
    }
    union(&mut into.deny, later.deny);
    union(&mut into.approval_required, later.approval_required);
    set(&mut into.allow_exec_secrets, later.allow_exec_secrets);
    union(&mut into.plugins, later.plugins);
    set(&mut into.plugin_budget_ms, later.plugin_budget_ms);
    if let Some(later) = later.approvals {
        merge_approvals(into.approvals.get_or_insert_with(Default::default), later);
    }
}

/// Approval settings only ever get stricter from scope to scope: `grant` mode and
/// `forbidSelfApproval: true` cannot be undone by a later scope, the shortest TTL wins and the
/// first scope to name `approverScope` keeps it.
fn merge_approvals(into: &mut Approvals, later: Approvals) {
    if into.mode != Some(ApprovalMode::Grant) {
        set(&mut into.mode, later.mode);
    }
    // The first scope that names the approver scope keeps it: a project cannot swap the
    // managed approver scope for one its own callers hold.
    if into.approver_scope.is_none() {
        into.approver_scope = later.approver_scope;
    }
    into.ttl_seconds = match (into.ttl_seconds, later.ttl_seconds) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if into.forbid_self_approval != Some(true) {
        set(&mut into.forbid_self_approval, later.forbid_self_approval);
    }
}
