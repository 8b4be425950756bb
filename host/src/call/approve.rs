//! Approve: issue an approval grant (`policy.approvals.mode: grant`) for one principal, tool
//! and argument set. The caller must hold the approver scope and have the tool inside their
//! own scope envelope.
//!
//! | refusal | audited as |
//! |---|---|
//! | [`Refusal::ApprovalsNotEnabled`] (grant mode is off) | - |
//! | [`Refusal::InvalidRequest`] (no `principal`) | - |
//! | [`Refusal::ApproverScopeMissing`] | `authz_denial` |
//! | [`Refusal::OutsideEnvelope`] | `authz_denial` |
//! | [`Refusal::Grant`] (self-approval forbidden, store full) | `authz_denial`, `detail.for` |
//!
//! An issued grant is recorded (`approval_granted`) before it is answered; a grant whose
//! record cannot be written is revoked.

use super::audit_trail::AuditTrail;
use super::execute::{check_envelope, lookup};
use super::{Admitted, CallRequest, Refusal};
use crate::audit::AuditDecision;
use crate::policy::approvals::{arguments_digest, GrantKey};

/// Issue a grant; the answer is the grant document (`grantId`, `principal`, `toolId`,
/// `argumentsSha256`, `expiresAt`, `approver`).
pub async fn approve(
    admitted: &Admitted<'_>,
    request: &CallRequest,
) -> Result<serde_json::Value, Refusal> {
    let stages = &admitted.stages;
    let settings = stages.policy.approvals();
    if !settings.grants() {
        return Err(Refusal::ApprovalsNotEnabled);
    }
    let principal = request
        .principal
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Refusal::InvalidRequest("principal (who may execute) is required".into()))?;
    let tool = lookup(admitted, &request.tool_id)?;
    let trail = AuditTrail::new(admitted);
    let caller = admitted.caller;
    let scope = settings.approver_scope.as_str();
    let approver = caller
        .principal
        .as_deref()
        .filter(|_| caller.scopes.iter().any(|s| s == scope));
    let Some(approver) = approver else {
        let refusal = Refusal::ApproverScopeMissing {
            scope: scope.to_owned(),
        };
        return Err(trail.refuse(tool, refusal).await);
    };
    // An approver approves only tools inside their own scope envelope.
    check_envelope(&trail, tool).await?;
    let key = GrantKey {
        principal,
        tool_id: tool.id.clone(),
        arguments_sha256: arguments_digest(&request.args.canonical),
    };
    let grant = match stages.approvals.issue(settings, approver, key.clone()) {
        Ok(grant) => grant,
        Err(e) => {
            let detail = serde_json::json!({ "for": key.principal }).into();
            return Err(trail
                .refuse_with(tool, Refusal::Grant(e), Some(detail), |_| {})
                .await);
        }
    };
    let expires_at = time::OffsetDateTime::from(grant.expires_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = serde_json::json!({
        "grantId": grant.id,
        "principal": key.principal,
        "toolId": key.tool_id,
        "argumentsSha256": key.arguments_sha256,
        "expiresAt": expires_at,
        "approver": approver,
    });
    let mut event = trail.event(
        tool,
        "approval_granted",
        AuditDecision::Allowed,
        "approval_granted",
    );
    event.status_code = Some(201);
    event.detail = Some(crate::audit::Detail::new(&body));
    if let Err(refusal) = trail.durable(event).await {
        // An approval nobody can trace must not be usable.
        stages.approvals.revoke(&key, &grant.id);
        return Err(refusal);
    }
    Ok(body)
}
