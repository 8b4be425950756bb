//! The managed scope is final: a later scope (user, project, `.cli.local.json`) may only make
//! what the managed scope says stricter. Each attempt to loosen or replace a managed setting is
//! a config error naming the JSON path in the later scope's file, so `portcullis check` lists
//! every attempt and `serve` refuses to start.
//!
//! | managed sets | a later scope may |
//! |---|---|
//! | `plugins.X`, `secrets.X` | restate it unchanged; nothing else |
//! | `services.X` | restate its fields unchanged (no overlays, skills or workflows added) |
//! | `sources.X` | set `enabled: false`, add `disabledTools`; restate the rest unchanged |
//! | `runtime.server.auth` | restate keys unchanged (no key added or changed) |
//! | any other `runtime.server` key but `upstream` | restate it unchanged |
//! | `runtime.server.upstream.*` | lower a limit |
//! | `policy.allowExecSecrets: false` | not turn it on |
//! | `policy.pluginBudgetMs` | lower it |
//! | `mode.default: curated` | not widen it to `discover` |
//! | `agents.defaultProfile`, `agents.profiles.X` | restate them unchanged |
//! | `curation.toolSets.X.allow` | add nothing (adding `deny` entries is stricter, and fine) |
//!
//! What the managed scope leaves unset stays open to later scopes. `policy.deny` and
//! `policy.plugins` are unions and `policy.approvals` only gets stricter in [`super::merge`],
//! so nothing a later scope writes there can loosen them.

use serde::Serialize;
use serde_json::Value;

use super::model::{Config, Mode};
use super::path::JsonPath;

/// Every place where `later` tries to change what `managed` settled, with why.
pub fn overrides(managed: &Config, later: &Config) -> Vec<(JsonPath, String)> {
    let mut found = Overrides(Vec::new());
    found.entries(&["plugins"], &managed.plugins, &later.plugins, Same::Exact);
    found.entries(&["secrets"], &managed.secrets, &later.secrets, Same::Exact);
    found.entries(
        &["services"],
        &managed.services,
        &later.services,
        Same::Restated,
    );
    found.sources(managed, later);
    found.server(managed, later);
    found.policy(managed, later);
    found.mode(managed, later);
    found.agents(managed, later);
    found.tool_sets(managed, later);
    found.0
}

const FINAL: &str =
    "is set by the managed scope, which is final: a later scope may only make it stricter";

/// How a later scope's value must relate to the managed one.
#[derive(Clone, Copy)]
enum Same {
    /// Equal as a whole (entries replaced whole by the merge).
    Exact,
    /// Every key the later scope writes exists in the managed value with the same value.
    Restated,
}

struct Overrides(Vec<(JsonPath, String)>);

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Whether `later` only repeats what `managed` says (objects: key by key, recursively).
fn restates(managed: &Value, later: &Value) -> bool {
    match (managed, later) {
        (Value::Object(m), Value::Object(l)) => l
            .iter()
            .all(|(k, v)| m.get(k).is_some_and(|mv| restates(mv, v))),
        (m, l) => m == l,
    }
}

impl Overrides {
    fn push(&mut self, path: JsonPath, message: impl Into<String>) {
        self.0.push((path, message.into()));
    }

    fn entries<T: Serialize>(
        &mut self,
        at: &[&str],
        managed: &Option<std::collections::BTreeMap<String, T>>,
        later: &Option<std::collections::BTreeMap<String, T>>,
        same: Same,
    ) {
        let (Some(managed), Some(later)) = (managed, later) else {
            return;
        };
        for (id, value) in later {
            let Some(settled) = managed.get(id) else {
                continue;
            };
            let (settled, value) = (json(settled), json(value));
            let kept = match same {
                Same::Exact => settled == value,
                Same::Restated => restates(&settled, &value),
            };
            if !kept {
                let mut path = JsonPath::of(at).key(id);
                if let (Same::Restated, Value::Object(fields)) = (same, &value) {
                    // Name the first field that differs, so the message points at it.
                    if let Some((field, _)) = fields
                        .iter()
                        .find(|(k, v)| !settled.get(*k).is_some_and(|m| restates(m, v)))
                    {
                        path = path.key(field);
                    }
                }
                self.push(path, FINAL);
            }
        }
    }

    fn sources(&mut self, managed: &Config, later: &Config) {
        let (Some(managed), Some(later)) = (&managed.sources, &later.sources) else {
            return;
        };
        for (id, source) in later {
            let Some(settled) = managed.get(id) else {
                continue;
            };
            let at = JsonPath::of(&["sources", id]);
            if source.enabled == Some(true) && settled.enabled == Some(false) {
                self.push(at.key("enabled"), FINAL);
            }
            if let Some(disabled) = &source.disabled_tools {
                let settled_disabled = settled.disabled_tools.as_deref().unwrap_or_default();
                if settled_disabled.iter().any(|t| !disabled.contains(t)) {
                    self.push(
                        at.key("disabledTools"),
                        format!("{FINAL} (it may add tools, not drop the managed ones)"),
                    );
                }
            }
            let (mut settled, mut value) = (json(settled), json(source));
            for loose in ["enabled", "disabledTools"] {
                for v in [&mut settled, &mut value] {
                    if let Some(map) = v.as_object_mut() {
                        map.remove(loose);
                    }
                }
            }
            if let Value::Object(fields) = &value {
                for (field, v) in fields {
                    if !settled.get(field).is_some_and(|m| restates(m, v)) {
                        self.push(at.key(field), FINAL);
                    }
                }
            }
        }
    }

    fn server(&mut self, managed: &Config, later: &Config) {
        let server = |c: &Config| c.runtime.as_ref().and_then(|r| r.server.as_ref()).map(json);
        let (Some(settled), Some(value)) = (server(managed), server(later)) else {
            return;
        };
        let at = JsonPath::of(&["runtime", "server"]);
        let Value::Object(fields) = &value else {
            return;
        };
        for (field, v) in fields {
            let Some(m) = settled.get(field) else {
                continue;
            };
            if field == "upstream" {
                self.lower_only(&at.key(field), m, v);
            } else if !restates(m, v) {
                self.push(at.key(field), FINAL);
            }
        }
    }

    /// Numeric limits may go down, never up.
    fn lower_only(&mut self, at: &JsonPath, managed: &Value, later: &Value) {
        let (Value::Object(m), Value::Object(l)) = (managed, later) else {
            return;
        };
        for (key, v) in l {
            let (Some(limit), Some(wanted)) = (m.get(key).and_then(Value::as_u64), v.as_u64())
            else {
                continue;
            };
            if wanted > limit {
                self.push(
                    at.key(key),
                    format!("{FINAL}: it may lower the managed {limit}, not raise it to {wanted}"),
                );
            }
        }
    }

    fn policy(&mut self, managed: &Config, later: &Config) {
        let (Some(settled), Some(policy)) = (&managed.policy, &later.policy) else {
            return;
        };
        if settled.allow_exec_secrets == Some(false) && policy.allow_exec_secrets == Some(true) {
            self.push(JsonPath::of(&["policy", "allowExecSecrets"]), FINAL);
        }
        if let (Some(limit), Some(wanted)) = (settled.plugin_budget_ms, policy.plugin_budget_ms) {
            if wanted > limit {
                self.push(
                    JsonPath::of(&["policy", "pluginBudgetMs"]),
                    format!("{FINAL}: it may lower the managed {limit}, not raise it to {wanted}"),
                );
            }
        }
    }

    fn mode(&mut self, managed: &Config, later: &Config) {
        let default = |c: &Config| c.mode.as_ref().and_then(|m| m.default);
        if default(managed) == Some(Mode::Curated) && default(later) == Some(Mode::Discover) {
            self.push(
                JsonPath::of(&["mode", "default"]),
                format!("{FINAL} (curated cannot be widened to discover)"),
            );
        }
    }

    fn agents(&mut self, managed: &Config, later: &Config) {
        let (Some(settled), Some(agents)) = (&managed.agents, &later.agents) else {
            return;
        };
        if let (Some(m), Some(l)) = (&settled.default_profile, &agents.default_profile) {
            if m != l {
                self.push(JsonPath::of(&["agents", "defaultProfile"]), FINAL);
            }
        }
        self.entries(
            &["agents", "profiles"],
            &settled.profiles,
            &agents.profiles,
            Same::Restated,
        );
    }

    fn tool_sets(&mut self, managed: &Config, later: &Config) {
        let sets = |c: &Config| c.curation.as_ref().and_then(|c| c.tool_sets.clone());
        let (Some(settled), Some(sets)) = (sets(managed), sets(later)) else {
            return;
        };
        for (name, set) in sets {
            let Some(managed_set) = settled.get(&name) else {
                continue;
            };
            let allowed = managed_set.allow.as_deref().unwrap_or_default();
            if set.allow.iter().flatten().any(|p| !allowed.contains(p)) {
                self.push(
                    JsonPath::of(&["curation", "toolSets", &name, "allow"]),
                    format!("{FINAL} (a later scope may add deny entries, not allow entries)"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        serde_json::from_value(value).expect("test config decodes")
    }

    fn paths(managed: Value, later: Value) -> Vec<String> {
        overrides(&config(managed), &config(later))
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect()
    }

    #[test]
    fn a_later_scope_cannot_replace_a_managed_plugin_or_secret() {
        let managed = serde_json::json!({
            "plugins": {"opa": {"path": "opa.wasm", "sha256": "ab"}},
            "secrets": {"gh.token": {"type": "env", "value": "GH"}}
        });
        let later = serde_json::json!({
            "plugins": {"opa": {"path": "evil.wasm"}, "mine": {"path": "mine.wasm"}},
            "secrets": {"gh.token": {"type": "literal", "value": "x"}, "other": {"type": "env", "value": "O"}}
        });
        assert_eq!(
            paths(managed.clone(), later),
            ["plugins.opa", "secrets[\"gh.token\"]"]
        );
        assert!(
            paths(managed.clone(), managed).is_empty(),
            "restating is fine"
        );
    }

    #[test]
    fn managed_auth_and_server_keys_cannot_change_and_limits_only_go_down() {
        let managed = serde_json::json!({"runtime": {"server": {
            "auth": {"validationProfile": "oidc_jwks", "issuer": "https://idp", "audience": "a"},
            "upstream": {"timeoutMs": 1000, "maxResponseBytes": 100}
        }}});
        let later = serde_json::json!({"runtime": {"server": {
            "auth": {"audience": "b"},
            "upstream": {"timeoutMs": 500, "maxResponseBytes": 1000}
        }}});
        assert_eq!(
            paths(managed.clone(), later),
            [
                "runtime.server.auth",
                "runtime.server.upstream.maxResponseBytes"
            ]
        );
        let added = serde_json::json!({"runtime": {"server": {"auth": {"jwksURL": "https://x"}}}});
        assert_eq!(paths(managed, added), ["runtime.server.auth"]);
    }

    #[test]
    fn exec_secrets_mode_and_tool_sets_cannot_be_widened() {
        let managed = serde_json::json!({
            "mode": {"default": "curated"},
            "policy": {"allowExecSecrets": false, "pluginBudgetMs": 20},
            "curation": {"toolSets": {"safe": {"allow": ["t:read*"]}}},
            "agents": {"defaultProfile": "safe", "profiles": {"safe": {"mode": "curated", "toolSet": "safe"}}}
        });
        let later = serde_json::json!({
            "mode": {"default": "discover"},
            "policy": {"allowExecSecrets": true, "pluginBudgetMs": 500},
            "curation": {"toolSets": {"safe": {"allow": ["*"], "deny": ["t:x"]}}},
            "agents": {"defaultProfile": "open", "profiles": {"safe": {"mode": "discover"}}}
        });
        assert_eq!(
            paths(managed.clone(), later),
            [
                "policy.allowExecSecrets",
                "policy.pluginBudgetMs",
                "mode.default",
                "agents.defaultProfile",
                "agents.profiles.safe.mode",
                "curation.toolSets.safe.allow"
            ]
        );
        let stricter = serde_json::json!({
            "policy": {"allowExecSecrets": false, "pluginBudgetMs": 10},
            "curation": {"toolSets": {"safe": {"deny": ["t:readSecret"]}}}
        });
        assert!(paths(managed, stricter).is_empty());
    }

    #[test]
    fn a_managed_source_may_be_disabled_but_not_redirected() {
        let managed = serde_json::json!({
            "sources": {"api": {"type": "openapi", "uri": "https://api/openapi.json", "disabledTools": ["a"]}},
            "services": {"api": {"source": "api", "overlays": ["hide.yaml"]}}
        });
        let later = serde_json::json!({
            "sources": {"api": {"uri": "https://evil/openapi.json", "disabledTools": ["b"]}},
            "services": {"api": {"overlays": []}}
        });
        assert_eq!(
            paths(managed.clone(), later),
            [
                "services.api.overlays",
                "sources.api.disabledTools",
                "sources.api.uri"
            ]
        );
        let stricter = serde_json::json!({
            "sources": {"api": {"enabled": false, "disabledTools": ["a", "b"]}}
        });
        assert!(paths(managed, stricter).is_empty());
    }
}
