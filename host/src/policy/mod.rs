//! Policy: the decision every execution passes after the scope envelope.
//!
//! One function decides ([`PolicySet::evaluate`], in [`pipeline`]) and returns the decision with
//! every step it evaluated. Order, first failure wins (each with its reason code):
//!
//! | # | step | refuses with |
//! |---|---|---|
//! | 1 | managed-scope `policy.deny` | `managed_deny` |
//! | 2 | `policy.deny` from any scope (enforced whether or not runtime auth is on; the reference runtime only applied it through the auth envelope) | `policy_deny` |
//! | 3 | a request that would widen the configured mode or profile without a scope granting it ([`PolicySet::widening`]); then curated mode and the active profile's tool set | `curated_deny` |
//! | 4 | policy evaluators ([`evaluator`]), all asked, within `policy.pluginBudgetMs` (default 50 ms) | `policy_error` (failure or overrun), else `plugin_deny` |
//! | 5 | approval: `x-cli-safety.requiresApproval`, `policy.approvalRequired` or an evaluator asks for it; given by the request flag or, in grant mode, a single-use grant ([`approvals`]) | `approval_required` |
//!
//! Patterns ([`crate::catalog::pattern`]) are compiled once per config ([`PolicySet::compile`]); an invalid
//! pattern refuses the whole config rather than matching nothing.

pub mod approvals;
pub mod evaluator;
mod pipeline;
pub mod settings;
pub mod strict_json;
pub mod unmatched;
pub mod wasm;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::authz::ToolRules;
use crate::catalog::pattern::{any_matches, Pattern, PatternError};

pub use approvals::{ApprovalSettings, ApprovalStore};
pub use evaluator::{PolicyEvaluator, PolicyQuery, PolicyVerdict};
pub use pipeline::{Approval, Call, Decision, Explanation, Outcome, Step};

use crate::config::{Config, Mode};

/// Default time budget for all policy evaluators of one request.
pub const DEFAULT_PLUGIN_BUDGET: Duration = Duration::from_millis(50);

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

/// The scope that lets a request ask for discover mode under a curated config.
pub const DISCOVER_SCOPE: &str = "mode:discover";

/// Policy compiled from a config.
#[derive(Debug, Clone)]
pub struct PolicySet {
    managed_deny: Vec<Pattern>,
    deny: Vec<Pattern>,
    approval: Vec<Pattern>,
    tool_sets: BTreeMap<String, CompiledToolSet>,
    profiles: BTreeMap<String, (Option<Mode>, Option<String>)>,
    default_mode: Option<Mode>,
    default_profile: Option<String>,
    evaluators: Vec<Arc<dyn PolicyEvaluator>>,
    plugin_budget: Duration,
    approvals: ApprovalSettings,
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
            evaluators: Vec::new(),
            plugin_budget: policy
                .plugin_budget_ms
                .map_or(DEFAULT_PLUGIN_BUDGET, Duration::from_millis),
            approvals: ApprovalSettings::from_config(config),
        })
    }

    /// Attach the policy evaluators (in `policy.plugins` order) the pipeline asks at step 4.
    pub fn with_evaluators(mut self, evaluators: Vec<Arc<dyn PolicyEvaluator>>) -> Self {
        self.evaluators = evaluators;
        self
    }

    /// The policy evaluators, in order.
    pub fn evaluators(&self) -> &[Arc<dyn PolicyEvaluator>] {
        &self.evaluators
    }

    /// The approval settings (`policy.approvals`).
    pub fn approvals(&self) -> &ApprovalSettings {
        &self.approvals
    }

    /// The effective mode of a request and the tool set it runs under. An explicit profile
    /// beats an explicit mode; an unknown profile falls back to the requested or default mode.
    fn active_tool_set(
        &self,
        mode: Option<Mode>,
        agent_profile: Option<&str>,
    ) -> (Mode, Option<&str>) {
        let mut mode = mode.or(self.default_mode).unwrap_or(Mode::Discover);
        if let Some((profile_mode, tool_set)) = agent_profile.and_then(|p| self.profiles.get(p)) {
            mode = profile_mode.unwrap_or(mode);
            let tool_set = tool_set.as_deref().filter(|_| mode == Mode::Curated);
            return (mode, tool_set);
        }
        if mode == Mode::Curated {
            let tool_set = self
                .default_profile
                .as_ref()
                .and_then(|p| self.profiles.get(p))
                .and_then(|p| p.1.as_deref());
            return (mode, tool_set);
        }
        (mode, None)
    }

    /// Whether the request's `mode` or `agentProfile` would widen what the config selects, and
    /// no scope of the caller grants that: `(rule, detail)` of the refusal.
    ///
    /// A request may always narrow (ask for `curated`, or a profile under a discover config).
    /// Under a curated config it may select another known profile only with the scope
    /// `profile:<name>`, and ask for `discover` only with the scope [`DISCOVER_SCOPE`]. With
    /// runtime auth off there are no scopes, so it can only narrow.
    pub(crate) fn widening(&self, call: &pipeline::Call<'_>) -> Option<(String, String)> {
        if self.default_mode != Some(Mode::Curated) {
            return None;
        }
        let granted = |scope: &str| call.scopes.iter().any(|s| s == scope);
        let configured = self.default_profile.as_deref().unwrap_or("(none)");
        if let Some(profile) = call
            .agent_profile
            .filter(|p| self.profiles.contains_key(*p))
        {
            let scope = format!("profile:{profile}");
            if Some(profile) == self.default_profile.as_deref() || granted(&scope) {
                return None;
            }
            return Some((
                format!("request:agentProfile={profile}"),
                format!(
                    "the request selects agent profile {profile:?} but the config selects curated \
                     mode with profile {configured:?}; only a caller holding the scope {scope} may \
                     select it"
                ),
            ));
        }
        if call.mode == Some(Mode::Discover) && !granted(DISCOVER_SCOPE) {
            return Some((
                "request:mode=discover".into(),
                format!(
                    "the request asks for discover mode but the config selects curated mode \
                     (profile {configured:?}); only a caller holding the scope {DISCOVER_SCOPE} \
                     may widen it"
                ),
            ));
        }
        None
    }
}

impl ToolRules for PolicySet {
    /// Authorization envelope, scope `profile:<name>`: `None` for an unknown profile; else
    /// whether the profile grants `tool_id` — every tool when its mode (or the default mode) is
    /// not curated, else what its tool set allows (no tool set: everything).
    fn profile_grants(&self, profile: &str, tool_id: &str) -> Option<bool> {
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
    fn denies(&self, tool_id: &str) -> bool {
        any_matches(&self.managed_deny, tool_id) || any_matches(&self.deny, tool_id)
    }
}

#[cfg(test)]
mod tests;
