//! Why a tool call, an explanation or an approval was refused: one enum for every door.
//!
//! A variant carries the typed fact (the tool id, the layer's error, the policy explanation),
//! never a status or a pre-rendered response: the HTTP edge maps it in one place
//! (`server::refusal`), and [`Refusal::audit`] says how the refusal is recorded. The `reason`
//! is the contract code and the audit record's `reason` at once, so the two cannot differ.
//!
//! | variant | audited as | reason |
//! |---|---|---|
//! | `ToolNotFound`, `WorkflowNotFound`, `ApprovalsNotEnabled`, `AuditUnavailable` | not audited | fixed |
//! | `OutsideEnvelope`, `Policy`, `ApproverScopeMissing`, `Grant`, `DefinitionChanged` | `authz_denial`, denied | the deny reason |
//! | `InvalidRequest`, `Credentials`, `Upstream`, `Withheld`, `Mcp`, `ToolError` | `execution_error`, error | the layer's reason |
//! | `StepFailed` (a workflow step ran but did not succeed) | `workflow_step_failed`, error | fixed |

use crate::audit::{AuditDecision, AuditError};
use crate::mcp::McpError;
use crate::oauth::OAuthError;
use crate::policy::approvals::GrantError;
use crate::policy::{Decision, Explanation};
use crate::secrets::scrub::ScrubError;
use crate::secrets::CredentialError;
use crate::upstream::UpstreamError;

/// Why a call did not run (or an approval was not issued).
#[derive(Debug)]
pub enum Refusal {
    /// No tool with this id in the catalog.
    ToolNotFound {
        /// The id asked for.
        tool_id: String,
    },
    /// The MCP tool's definition changed since it was pinned; it is withheld until an operator
    /// accepts it (`mcp::pins`).
    DefinitionChanged {
        /// The tool id.
        tool_id: String,
        /// What changed and how to accept it.
        why: String,
    },
    /// The request cannot be understood (body, mode, arguments); the message says why.
    InvalidRequest(String),
    /// The caller's scopes do not grant the tool.
    OutsideEnvelope,
    /// Policy denied the call; the explanation holds the reason, rule and steps.
    Policy(Box<Explanation>),
    /// No credential alternative of the tool could be satisfied.
    Credentials(CredentialError),
    /// No upstream response was obtained.
    Upstream(UpstreamError),
    /// A credentialed upstream response was withheld (it could not be scrubbed).
    Withheld(ScrubError),
    /// The MCP session failed (down, protocol error, timeout, transport OAuth).
    Mcp(McpError),
    /// The MCP tool ran and reported an error (`isError: true`).
    ToolError {
        /// The tool's name on its MCP server.
        tool_name: String,
        /// The tool's own message, bounded and scrubbed of carried credentials.
        text: String,
    },
    /// Approval grants are off (`policy.approvals.mode` is not `grant`).
    ApprovalsNotEnabled,
    /// The caller lacks the approver scope.
    ApproverScopeMissing {
        /// The scope an approver must hold.
        scope: String,
    },
    /// The approval store refused the grant.
    Grant(GrantError),
    /// A record the call needs cannot be written: nothing is done without it.
    AuditUnavailable(AuditError),
    /// No workflow with this id in the catalog.
    WorkflowNotFound {
        /// The id asked for.
        workflow_id: String,
    },
    /// A workflow step ran but did not succeed (its success criteria, or a 2xx status, or a
    /// declared output); the run stops there.
    StepFailed {
        /// Which criterion or output, and the status the step answered.
        why: String,
    },
}

impl Refusal {
    /// The contract code, which is also the audit record's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ToolNotFound { .. } => "tool_not_found",
            Self::DefinitionChanged { .. } => "tool_definition_changed",
            Self::InvalidRequest(_) => "invalid_request",
            Self::OutsideEnvelope => "authz_denied",
            Self::Policy(explanation) => explanation.reason(),
            Self::Credentials(error) => match &error.oauth {
                Some(OAuthError::InteractiveRequired { .. }) => "interactive_required",
                Some(OAuthError::ReauthorizationRequired) => "reauthorization_required",
                _ => "credential_unavailable",
            },
            Self::Upstream(error) => error.reason(),
            Self::Withheld(error) => error.reason(),
            Self::Mcp(error) => error.reason(),
            Self::ToolError { .. } => "tool_error",
            Self::ApprovalsNotEnabled => "approvals_not_enabled",
            Self::ApproverScopeMissing { .. } => "insufficient_scope",
            Self::Grant(GrantError::SelfApproval) => "self_approval_forbidden",
            Self::Grant(GrantError::Full) => "approval_store_full",
            Self::AuditUnavailable(_) => "audit_unavailable",
            Self::WorkflowNotFound { .. } => "workflow_not_found",
            Self::StepFailed { .. } => "workflow_step_failed",
        }
    }

    /// How the refusal is recorded: `(event type, decision)`, or `None` when it is not (there
    /// is no tool to name, or nothing was decided).
    pub fn audit(&self) -> Option<(&'static str, AuditDecision)> {
        match self {
            Self::ToolNotFound { .. }
            | Self::WorkflowNotFound { .. }
            | Self::ApprovalsNotEnabled
            | Self::AuditUnavailable(_) => None,
            Self::StepFailed { .. } => Some(("workflow_step_failed", AuditDecision::Error)),
            Self::OutsideEnvelope
            | Self::Policy(_)
            | Self::ApproverScopeMissing { .. }
            | Self::Grant(_)
            | Self::DefinitionChanged { .. } => Some(("authz_denial", AuditDecision::Denied)),
            Self::InvalidRequest(_)
            | Self::Credentials(_)
            | Self::Upstream(_)
            | Self::Withheld(_)
            | Self::Mcp(_)
            | Self::ToolError { .. } => Some(("execution_error", AuditDecision::Error)),
        }
    }

    /// The caller-facing message of a policy refusal. A failing evaluator's message stays in
    /// the log and the audit record; the caller learns only which evaluator refused.
    pub fn policy_message(explanation: &Explanation) -> String {
        let Decision::Deny { reason, rule } = &explanation.decision else {
            return "allowed".into();
        };
        match *reason {
            "policy_error" => format!("denied: policy evaluator {rule:?} failed"),
            "plugin_deny" => {
                let why = explanation
                    .steps
                    .iter()
                    .find(|s| s.rule == rule.as_str())
                    .map(|s| s.detail.as_ref())
                    .unwrap_or_default();
                format!("denied by policy evaluator {rule:?}: {why}")
            }
            _ => format!("denied by policy ({reason}, rule {rule:?})"),
        }
    }
}
