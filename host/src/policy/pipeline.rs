//! The decision pipeline: one function, [`PolicySet::evaluate`], for execution (HTTP and MCP
//! tools), `POST /v1/policy/explain` and `portcullis policy explain`.
//!
//! It returns the decision and every step it evaluated, in order; the first step that refuses
//! ends the evaluation (later steps are not listed). Step 4 asks every evaluator under one
//! deadline (`policy.pluginBudgetMs` from the start of the step; concurrently, except that
//! plugin evaluators run in place one after another on a multi-threaded runtime, each told the
//! deadline through [`PolicyQuery::deadline`] and cut off there), and
//! combines their verdicts so that the outcome does not depend on their order: any failure or
//! overrun denies `policy_error`; else any deny denies `plugin_deny`; else any request for
//! approval makes step 5 require it. An evaluator can only make a decision stricter.

use std::borrow::Cow;

use futures_util::future::join_all;
use serde::Serialize;

use super::approvals::{Grant, GrantKey};
use super::evaluator::{PolicyQuery, PolicyVerdict};
use super::{ApprovalStore, PolicySet};
use crate::catalog::pattern::Pattern;
use crate::catalog::Tool;
use crate::config::Mode;

/// What policy knows about one call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The tool.
    pub tool: &'a Tool,
    /// Requested mode (`None` = the config default).
    pub mode: Option<Mode>,
    /// Requested agent profile.
    pub agent_profile: Option<&'a str>,
    /// Caller principal (`None` when runtime auth is off).
    pub principal: Option<&'a str>,
    /// Caller scopes.
    pub scopes: &'a [String],
    /// Request id.
    pub request_id: &'a str,
    /// Canonical arguments ([`super::approvals::canonical_arguments`]).
    pub arguments: &'a serde_json::Value,
}

/// Where approval can come from for this evaluation.
#[derive(Debug, Clone, Copy)]
pub enum Approval<'a> {
    /// Flag mode: the request's `approval` flag.
    Flag(bool),
    /// Grant mode: a grant for (principal, tool, arguments) in `store`. `consume` takes it
    /// (execution); otherwise it is only looked at (explain).
    Grant {
        /// The runtime's grants.
        store: &'a ApprovalStore,
        /// Take the grant when it is used.
        consume: bool,
    },
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call is refused.
    Deny {
        /// `managed_deny`, `policy_deny`, `curated_deny`, `policy_error`, `plugin_deny` or
        /// `approval_required`.
        reason: &'static str,
        /// What decided: a pattern, a tool-set name, `plugin:<name>` or an approval source.
        rule: String,
    },
}

/// What one step concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No objection.
    Pass,
    /// Refused.
    Deny,
    /// An evaluator failed or overran the budget.
    Error,
    /// Approval is needed (an evaluator asked for it).
    ApprovalRequired,
    /// Approval was needed and given.
    Approved,
}

/// One evaluated step. The fixed texts of the built-in steps are borrowed, not allocated:
/// every allowed call builds several steps (issue #16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `managed_deny`, `policy_deny`, `curated`, `plugin:<name>` or `approval`.
    pub rule: Cow<'static, str>,
    /// What it concluded.
    pub outcome: Outcome,
    /// Why, for people: the matching pattern, the tool set, the evaluator's reason.
    pub detail: Cow<'static, str>,
}

/// A decision and every step that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// Every evaluated step, in order.
    pub steps: Vec<Step>,
    /// The grant that approved the call (grant mode).
    pub grant: Option<Grant>,
}

impl Explanation {
    /// The reason code: `allowed` or the deny reason.
    pub fn reason(&self) -> &'static str {
        match &self.decision {
            Decision::Allow => "allowed",
            Decision::Deny { reason, .. } => reason,
        }
    }

    /// The deciding rule: the deny's rule, or for an allow the approval that unlocked it.
    pub fn rule(&self) -> Option<String> {
        match &self.decision {
            Decision::Deny { rule, .. } => Some(rule.clone()),
            Decision::Allow => self
                .steps
                .iter()
                .find(|s| s.outcome == Outcome::Approved)
                .map(|s| s.detail.clone().into_owned()),
        }
    }

    /// The contract's JSON form: `{decision, reason, rule, steps}`.
    pub fn to_json(&self) -> serde_json::Value {
        let decision = match self.decision {
            Decision::Allow => "allow",
            Decision::Deny { .. } => "deny",
        };
        serde_json::json!({
            "decision": decision,
            "reason": self.reason(),
            "rule": self.rule(),
            "steps": self.steps,
        })
    }
}

fn first_match<'p>(patterns: &'p [Pattern], id: &str) -> Option<&'p Pattern> {
    patterns.iter().find(|p| p.matches(id))
}

/// A step's result: continue, or stop with this decision.
type Flow = Result<(), Decision>;

impl PolicySet {
    /// Decide whether `call` may run: every step in order, first failure wins.
    pub async fn evaluate(&self, call: &Call<'_>, approval: Approval<'_>) -> Explanation {
        let mut steps = Vec::with_capacity(4 + self.evaluators.len());
        let mut grant = None;
        let flow = self.run(call, approval, &mut steps, &mut grant).await;
        Explanation {
            decision: flow.err().unwrap_or(Decision::Allow),
            steps,
            grant,
        }
    }

    async fn run(
        &self,
        call: &Call<'_>,
        approval: Approval<'_>,
        steps: &mut Vec<Step>,
        grant: &mut Option<Grant>,
    ) -> Flow {
        let id = call.tool.id.as_str();
        deny_step(steps, "managed_deny", &self.managed_deny, id)?;
        deny_step(steps, "policy_deny", &self.deny, id)?;
        let mode = self.curated_step(steps, call)?;
        let plugin_approval = self.plugin_step(steps, call, mode).await?;
        self.approval_step(steps, call, approval, plugin_approval, grant)
    }

    /// Step 3; returns the effective mode.
    fn curated_step(&self, steps: &mut Vec<Step>, call: &Call<'_>) -> Result<Mode, Decision> {
        if let Some((rule, detail)) = self.widening(call) {
            steps.push(step("curated", Outcome::Deny, detail));
            return Err(Decision::Deny {
                reason: "curated_deny",
                rule,
            });
        }
        let (mode, tool_set) = self.active_tool_set(call.mode, call.agent_profile);
        if mode != Mode::Curated {
            steps.push(step("curated", Outcome::Pass, "discover mode"));
            return Ok(mode);
        }
        let name = tool_set.unwrap_or_default();
        let set = tool_set.and_then(|n| self.tool_sets.get(n));
        if set.is_none_or(|s| s.allows(&call.tool.id)) {
            let detail = match set {
                Some(_) => format!("tool set {name:?} allows the tool"),
                None => "curated mode without a tool set allows every tool".into(),
            };
            steps.push(step("curated", Outcome::Pass, detail));
            return Ok(mode);
        }
        steps.push(step(
            "curated",
            Outcome::Deny,
            format!("tool set {name:?} does not allow the tool"),
        ));
        Err(Decision::Deny {
            reason: "curated_deny",
            rule: name.to_owned(),
        })
    }

    /// Step 4: every evaluator, one deadline. Returns the evaluator that asked for approval, if
    /// any.
    async fn plugin_step(
        &self,
        steps: &mut Vec<Step>,
        call: &Call<'_>,
        mode: Mode,
    ) -> Result<Option<String>, Decision> {
        if self.evaluators.is_empty() {
            return Ok(None);
        }
        let now = std::time::Instant::now();
        let query = query(call, mode, now + self.plugin_budget);
        let deadline = tokio::time::Instant::from_std(now) + self.plugin_budget;
        let budget_ms = self.plugin_budget.as_millis();
        let verdicts = join_all(self.evaluators.iter().map(|e| {
            let query = &query;
            async move {
                match tokio::time::timeout_at(deadline, e.evaluate(query)).await {
                    Ok(verdict) => verdict,
                    Err(_) => Err(format!("exceeded the policy budget of {budget_ms} ms")),
                }
            }
        }))
        .await;
        let mut error = None;
        let mut deny = None;
        let mut needs_approval = None;
        for (evaluator, verdict) in self.evaluators.iter().zip(verdicts) {
            let rule = format!("plugin:{}", evaluator.name());
            let (outcome, detail) = match verdict {
                Ok(PolicyVerdict::Allow) => (Outcome::Pass, String::new()),
                Ok(PolicyVerdict::Deny(reason)) => {
                    deny.get_or_insert(rule.clone());
                    (Outcome::Deny, reason)
                }
                Ok(PolicyVerdict::RequireApproval(reason)) => {
                    needs_approval.get_or_insert(rule.clone());
                    (Outcome::ApprovalRequired, reason)
                }
                Err(message) => {
                    tracing::warn!(plugin = evaluator.name(), tool = %call.tool.id, "policy evaluator failed: {message}");
                    error.get_or_insert(rule.clone());
                    (Outcome::Error, message)
                }
            };
            steps.push(Step {
                rule: rule.into(),
                outcome,
                detail: detail.into(),
            });
        }
        if let Some(rule) = error {
            return Err(Decision::Deny {
                reason: "policy_error",
                rule,
            });
        }
        if let Some(rule) = deny {
            return Err(Decision::Deny {
                reason: "plugin_deny",
                rule,
            });
        }
        Ok(needs_approval)
    }

    /// Step 5.
    fn approval_step(
        &self,
        steps: &mut Vec<Step>,
        call: &Call<'_>,
        approval: Approval<'_>,
        plugin: Option<String>,
        grant: &mut Option<Grant>,
    ) -> Flow {
        let required = if call.tool.safety.requires_approval {
            Some("x-cli-safety.requiresApproval".to_owned())
        } else if let Some(p) = first_match(&self.approval, &call.tool.id) {
            Some(p.as_str().to_owned())
        } else {
            plugin
        };
        let Some(rule) = required else {
            steps.push(step("approval", Outcome::Pass, "not required"));
            return Ok(());
        };
        let given = match approval {
            Approval::Flag(true) => Some("request flag approval: true".to_owned()),
            Approval::Flag(false) => None,
            Approval::Grant { store, consume } => {
                let found = call.principal.and_then(|principal| {
                    let key = GrantKey {
                        principal: principal.to_owned(),
                        tool_id: call.tool.id.clone(),
                        arguments_sha256: super::approvals::arguments_digest(call.arguments),
                    };
                    if consume {
                        store.take(&key)
                    } else {
                        store.peek(&key)
                    }
                });
                let given = found.as_ref().map(|g| format!("grant {}", g.id));
                *grant = found;
                given
            }
        };
        match given {
            Some(source) => {
                steps.push(step("approval", Outcome::Approved, source));
                Ok(())
            }
            None => {
                let detail = match approval {
                    Approval::Grant { .. } => format!(
                        "required by {rule:?}; no unexpired grant for this principal, tool and arguments"
                    ),
                    Approval::Flag(_) => format!("required by {rule:?}; request has no approval"),
                };
                steps.push(step("approval", Outcome::Deny, detail));
                Err(Decision::Deny {
                    reason: "approval_required",
                    rule,
                })
            }
        }
    }
}

fn step(rule: &'static str, outcome: Outcome, detail: impl Into<Cow<'static, str>>) -> Step {
    Step {
        rule: Cow::Borrowed(rule),
        outcome,
        detail: detail.into(),
    }
}

/// Steps 1 and 2: the first matching deny pattern refuses.
fn deny_step(
    steps: &mut Vec<Step>,
    reason: &'static str,
    patterns: &[Pattern],
    tool_id: &str,
) -> Flow {
    match first_match(patterns, tool_id) {
        None => {
            steps.push(step(reason, Outcome::Pass, ""));
            Ok(())
        }
        Some(pattern) => {
            let rule = pattern.as_str().to_owned();
            steps.push(step(reason, Outcome::Deny, format!("matches {rule:?}")));
            Err(Decision::Deny { reason, rule })
        }
    }
}

/// What an evaluator is told about `call`, to be answered by `deadline`.
fn query(call: &Call<'_>, mode: Mode, deadline: std::time::Instant) -> PolicyQuery {
    let tool = call.tool;
    PolicyQuery {
        request_id: call.request_id.to_owned(),
        principal: call.principal.map(str::to_owned),
        scopes: call.scopes.to_vec(),
        tool_id: tool.id.clone(),
        service: tool.service_id.clone(),
        method: (!tool.method.is_empty()).then(|| tool.method.clone()),
        path: (!tool.path.is_empty()).then(|| tool.path.clone()),
        read_only: tool.safety.read_only,
        destructive: tool.safety.destructive,
        idempotent: tool.safety.idempotent,
        requires_approval: tool.safety.requires_approval,
        mode: match mode {
            Mode::Curated => "curated",
            Mode::Discover => "discover",
        }
        .to_owned(),
        profile: call.agent_profile.map(str::to_owned),
        arguments_json: super::approvals::canonical_json(call.arguments),
        deadline: Some(deadline),
    }
}
