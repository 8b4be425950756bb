//! Policy: the decision every execution passes after the scope envelope.
//!
//! Order, first failure wins (each with its reason code):
//!
//! 1. managed-scope `policy.deny` -> `managed_deny`
//! 2. `policy.deny` from any scope -> `policy_deny` (enforced whether or not runtime auth is on;
//!    the reference runtime only applied it through the auth envelope)
//! 3. curated mode and the active profile's tool set -> `curated_deny`
//! 4. `x-cli-safety.requiresApproval` or `policy.approvalRequired` without `approval: true`
//!    -> `approval_required`
//! 5. `policy.plugins`, each asked in an isolated instance ([`plugins`]) -> `plugin_deny`,
//!    `approval_required`, or `policy_error` when a plugin fails
//!
//! Patterns are compiled once per config ([`PolicySet::compile`]); an invalid pattern refuses
//! the whole config rather than matching nothing.

pub mod pattern;
pub mod plugins;

use std::collections::BTreeMap;

use pattern::{any_matches, Pattern, PatternError};

use crate::catalog::Tool;
use crate::config::{Config, Mode};

/// What a request asks for, as far as policy is concerned.
#[derive(Debug, Clone, Default)]
pub struct PolicyRequest<'a> {
    /// Requested mode (`None` = the config default).
    pub mode: Option<Mode>,
    /// Requested agent profile.
    pub agent_profile: Option<&'a str>,
    /// The contract's approval flag.
    pub approval: bool,
}

/// The outcome of a policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call is refused.
    Deny {
        /// `managed_deny`, `policy_deny`, `curated_deny` or `approval_required`.
        reason: &'static str,
        /// The rule that decided (a pattern or a tool-set name).
        rule: String,
    },
}

/// A compiled tool set.
#[derive(Debug, Clone, Default)]
pub struct CompiledToolSet {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

impl CompiledToolSet {
    /// Whether the tool set lets `tool_id` through. An empty set allows everything; a non-empty
    /// `allow` is an allow-list, and `deny: ["**"]` next to it only closes the list.
    pub fn allows(&self, tool_id: &str) -> bool {
        if !self.allow.is_empty() && !any_matches(&self.allow, tool_id) {
            return false;
        }
        !self
            .deny
            .iter()
            .filter(|p| self.allow.is_empty() || p.as_str() != "**")
            .any(|p| p.matches(tool_id))
    }
}

/// Policy compiled from a config.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    managed_deny: Vec<Pattern>,
    deny: Vec<Pattern>,
    approval: Vec<Pattern>,
    tool_sets: BTreeMap<String, CompiledToolSet>,
    profiles: BTreeMap<String, (Option<Mode>, Option<String>)>,
    default_mode: Option<Mode>,
    default_profile: Option<String>,
    plugins: Vec<std::sync::Arc<crate::plugins::LoadedPlugin>>,
}

fn compile(patterns: Option<&Vec<String>>) -> Result<Vec<Pattern>, PatternError> {
    patterns
        .into_iter()
        .flatten()
        .map(|p| Pattern::parse(p))
        .collect()
}

impl PolicySet {
    /// Compile every pattern in the config.
    pub fn compile(config: &Config) -> Result<Self, PatternError> {
        let policy = config.policy.clone().unwrap_or_default();
        let mut tool_sets = BTreeMap::new();
        for (name, set) in config
            .curation
            .iter()
            .flat_map(|c| c.tool_sets.iter().flatten())
        {
            let compiled = CompiledToolSet {
                allow: compile(set.allow.as_ref())?,
                deny: compile(set.deny.as_ref())?,
            };
            tool_sets.insert(name.clone(), compiled);
        }
        let agents = config.agents.clone().unwrap_or_default();
        let profiles = agents
            .profiles
            .unwrap_or_default()
            .into_iter()
            .map(|(name, p)| (name, (p.mode, p.tool_set)))
            .collect();
        Ok(Self {
            managed_deny: compile(Some(&policy.managed_deny))?,
            deny: compile(policy.deny.as_ref())?,
            approval: compile(policy.approval_required.as_ref())?,
            tool_sets,
            profiles,
            default_mode: config.mode.as_ref().and_then(|m| m.default),
            default_profile: agents.default_profile,
            plugins: Vec::new(),
        })
    }

    /// Attach the policy-evaluator plugins named in `policy.plugins`, in that order.
    pub fn with_plugins(mut self, config: &Config, loaded: &crate::plugins::PluginSet) -> Self {
        self.plugins = config
            .policy
            .iter()
            .flat_map(|p| p.plugins.iter().flatten())
            .filter_map(|name| loaded.get(name).cloned())
            .collect();
        self
    }

    /// The policy-evaluator plugins, in evaluation order.
    pub fn plugins(&self) -> &[std::sync::Arc<crate::plugins::LoadedPlugin>] {
        &self.plugins
    }

    /// The tool set a request runs under, and whether its mode is curated.
    fn active_tool_set(&self, request: &PolicyRequest<'_>) -> (bool, Option<&str>) {
        let mut mode = request.mode.or(self.default_mode).unwrap_or(Mode::Discover);
        if let Some((profile_mode, tool_set)) =
            request.agent_profile.and_then(|p| self.profiles.get(p))
        {
            mode = profile_mode.unwrap_or(mode);
            return (mode == Mode::Curated, tool_set.as_deref());
        }
        if mode == Mode::Curated {
            let tool_set = self
                .default_profile
                .as_ref()
                .and_then(|p| self.profiles.get(p))
                .and_then(|p| p.1.as_deref());
            return (true, tool_set);
        }
        (false, None)
    }

    /// Authorization envelope, scope `profile:<name>`: `None` for an unknown profile; else
    /// whether the profile grants `tool_id` — every tool when its mode (or the default mode) is
    /// not curated, else what its tool set allows (no tool set: everything).
    pub fn profile_grants(&self, profile: &str, tool_id: &str) -> Option<bool> {
        let (mode, tool_set) = self.profiles.get(profile)?;
        let mode = mode.or(self.default_mode).unwrap_or(Mode::Discover);
        if mode != Mode::Curated {
            return Some(true);
        }
        let set = tool_set
            .as_deref()
            .and_then(|name| self.tool_sets.get(name));
        Some(set.is_none_or(|s| s.allows(tool_id)))
    }

    /// Whether `managed_deny` or `policy.deny` removes `tool_id` (authorization envelope).
    pub fn denies(&self, tool_id: &str) -> bool {
        any_matches(&self.managed_deny, tool_id) || any_matches(&self.deny, tool_id)
    }

    /// Decide whether `tool` may run for `request`.
    pub fn decide(&self, tool: &Tool, request: &PolicyRequest<'_>) -> Decision {
        let first = |patterns: &[Pattern]| {
            patterns
                .iter()
                .find(|p| p.matches(&tool.id))
                .map(|p| p.as_str().to_owned())
        };
        if let Some(rule) = first(&self.managed_deny) {
            return Decision::Deny {
                reason: "managed_deny",
                rule,
            };
        }
        if let Some(rule) = first(&self.deny) {
            return Decision::Deny {
                reason: "policy_deny",
                rule,
            };
        }
        let (curated, tool_set) = self.active_tool_set(request);
        if curated {
            let set = tool_set.and_then(|name| self.tool_sets.get(name));
            if !set.is_none_or(|s| s.allows(&tool.id)) {
                return Decision::Deny {
                    reason: "curated_deny",
                    rule: tool_set.unwrap_or_default().to_owned(),
                };
            }
        }
        if !request.approval {
            if tool.safety.requires_approval {
                return Decision::Deny {
                    reason: "approval_required",
                    rule: "x-cli-safety.requiresApproval".into(),
                };
            }
            if let Some(rule) = first(&self.approval) {
                return Decision::Deny {
                    reason: "approval_required",
                    rule,
                };
            }
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Config {
        serde_json::from_value(json).unwrap()
    }

    fn tool(id: &str) -> Tool {
        Tool {
            id: id.into(),
            ..Tool::default()
        }
    }

    #[test]
    fn deny_beats_approval_and_managed_deny_comes_first() {
        let mut c = config(serde_json::json!({
            "policy": {"deny": ["t:*"], "approvalRequired": ["t:*"]}
        }));
        c.policy.as_mut().unwrap().managed_deny = vec!["t:x".into()];
        let p = PolicySet::compile(&c).unwrap();
        let req = PolicyRequest::default();
        assert_eq!(
            p.decide(&tool("t:x"), &req),
            Decision::Deny {
                reason: "managed_deny",
                rule: "t:x".into()
            }
        );
        assert_eq!(
            p.decide(&tool("t:y"), &req),
            Decision::Deny {
                reason: "policy_deny",
                rule: "t:*".into()
            }
        );
    }

    #[test]
    fn approval_flag_satisfies_approval_rules_but_never_deny() {
        let c =
            config(serde_json::json!({"policy": {"approvalRequired": ["t:a"], "deny": ["t:d"]}}));
        let p = PolicySet::compile(&c).unwrap();
        let approved = PolicyRequest {
            approval: true,
            ..Default::default()
        };
        assert!(matches!(
            p.decide(&tool("t:a"), &PolicyRequest::default()),
            Decision::Deny {
                reason: "approval_required",
                ..
            }
        ));
        assert_eq!(p.decide(&tool("t:a"), &approved), Decision::Allow);
        assert!(matches!(
            p.decide(&tool("t:d"), &approved),
            Decision::Deny {
                reason: "policy_deny",
                ..
            }
        ));
    }

    #[test]
    fn curated_profile_restricts_to_its_tool_set() {
        let c = config(serde_json::json!({
            "mode": {"default": "curated"},
            "curation": {"toolSets": {"support": {"allow": ["t:read*"], "deny": ["**"]}}},
            "agents": {"profiles": {"support": {"mode": "curated", "toolSet": "support"}}, "defaultProfile": "support"}
        }));
        let p = PolicySet::compile(&c).unwrap();
        let req = PolicyRequest::default();
        assert_eq!(p.decide(&tool("t:readOne"), &req), Decision::Allow);
        assert!(matches!(
            p.decide(&tool("t:write"), &req),
            Decision::Deny {
                reason: "curated_deny",
                ..
            }
        ));
        let discover = PolicyRequest {
            mode: Some(Mode::Discover),
            ..Default::default()
        };
        assert_eq!(p.decide(&tool("t:write"), &discover), Decision::Allow);
    }

    #[test]
    fn empty_allow_with_deny_all_denies_everything() {
        let set = CompiledToolSet {
            allow: vec![],
            deny: vec![Pattern::parse("**").unwrap()],
        };
        assert!(!set.allows("t:x"));
    }
}
