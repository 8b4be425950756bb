//! Explain: the same lookup, envelope and policy as execute, answering
//! `{decision, reason, rule, steps, toolId}` without executing anything or taking a grant.
//!
//! Explaining is not a decision and is not audited (a refusal at the envelope is, as for
//! execute); a failing evaluator's message is not shown. [`policy`] is the step the offline
//! `portcullis policy explain` shares.

use super::audit_trail::AuditTrail;
use super::execute::{check_envelope, decide, lookup};
use super::{Admitted, CallRequest, Refusal};
use crate::policy::{Approval, ApprovalStore, Call, Explanation, Outcome, PolicySet};

/// Explain one admitted call.
pub async fn explain(
    admitted: &Admitted<'_>,
    request: &CallRequest,
) -> Result<serde_json::Value, Refusal> {
    let tool = lookup(admitted, &request.tool_id)?;
    check_envelope(&AuditTrail::new(admitted), tool).await?;
    let mut explanation = decide(admitted, tool, request, false).await;
    // As for execute: a failing evaluator's message stays in the server log.
    for step in &mut explanation.steps {
        if step.outcome == Outcome::Error {
            step.detail = "the evaluator failed; the reason is in the server log".into();
        }
    }
    let mut body = explanation.to_json();
    body["toolId"] = tool.id.clone().into();
    Ok(body)
}

/// The policy decision of `call`. In grant mode the approval comes from `approvals` (taken
/// when `consume`); otherwise from the contract's `approval` flag.
pub async fn policy(
    policy: &PolicySet,
    approvals: &ApprovalStore,
    call: &Call<'_>,
    approval: bool,
    consume: bool,
) -> Explanation {
    let approval = if policy.approvals().grants() {
        Approval::Grant {
            store: approvals,
            consume,
        }
    } else {
        Approval::Flag(approval)
    };
    policy.evaluate(call, approval).await
}
