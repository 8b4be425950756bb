//! The records of one call: the write-ahead intent, the refusal, the outcome.
//!
//! | record | when | written how | if it cannot be written |
//! |---|---|---|---|
//! | `tool_execution_intent` | allowed, before anything leaves for the upstream | durable | refused, `audit_unavailable`; nothing is sent |
//! | `authz_denial` / `execution_error` | a refusal [`Refusal::audit`] names | durable | `audit_unavailable` instead of the refusal |
//! | `tool_execution` | the upstream answered | queued (HTTP) or durable (MCP) | `audit_unavailable`, the result is withheld |
//! | `approval_granted` | a grant was issued | durable | the grant is revoked, `audit_unavailable` |
//!
//! The decision of a refusal record comes from the refusal's variant, never from its text. As in
//! the reference runtime, an `execution_error` record's `reasonCode` is `execution_error` (the
//! precise code in `errorCode`) and a denial carries no `statusCode`.
//! The allowing policy decision (`detail`) is in the intent record and in the record of any
//! later failure, so the record that answers the call's decision always names it.

use super::{Admitted, Refusal};
use crate::audit::{AuditDecision, AuditError, AuditEvent, Detail};
use crate::catalog::Tool;

/// The audit records of one admitted call.
pub(super) struct AuditTrail<'c, 'a> {
    admitted: &'c Admitted<'a>,
    /// The allowing policy decision, once there is one.
    policy: Option<Detail>,
}

impl<'c, 'a> AuditTrail<'c, 'a> {
    pub(super) fn new(admitted: &'c Admitted<'a>) -> Self {
        Self {
            admitted,
            policy: None,
        }
    }

    /// The call this trail records.
    pub(super) fn admitted(&self) -> &'c Admitted<'a> {
        self.admitted
    }

    /// Remember the allowing policy decision for the records that follow.
    pub(super) fn allowed(&mut self, detail: Detail) {
        self.policy = Some(detail);
    }

    /// A record about `tool` naming the caller, the request and the tool's target.
    pub(super) fn event(
        &self,
        tool: &Tool,
        event_type: &str,
        decision: AuditDecision,
        reason: &str,
    ) -> AuditEvent {
        let admitted = self.admitted;
        let mut event = AuditEvent::new(event_type, &tool.id, decision, reason);
        event.principal = admitted.caller.principal.clone();
        event.lineage = admitted.caller.lineage.clone();
        event.agent_profile = admitted.agent_profile.map(str::to_owned);
        event.service_id = Some(tool.service_id.clone());
        event.target_base_url = tool.servers.first().cloned();
        event.method = Some(tool.method.clone());
        event.path = Some(tool.path.clone());
        event.request_id = Some(admitted.request_id.to_owned());
        event.token_hash = admitted.token_hash.clone();
        event.workflow = admitted.workflow.clone();
        event.mcp = admitted.mcp.clone();
        event
    }

    /// Write-ahead: make the intent record of an allowed call durable before anything leaves
    /// for the upstream (HTTP or MCP).
    pub(super) async fn intent(
        &self,
        tool: &Tool,
        request_size: Option<u64>,
        arguments: serde_json::Value,
    ) -> Result<(), Refusal> {
        let mut intent = self.event(
            tool,
            "tool_execution_intent",
            AuditDecision::Allowed,
            "allowed",
        );
        intent.request_size = request_size;
        intent.arguments = Some(arguments);
        intent.detail = self.policy.clone();
        self.durable(intent).await
    }

    /// Record a refusal as [`Refusal::audit`] says; if even that cannot be recorded, the
    /// caller learns that instead.
    pub(super) async fn refuse(&self, tool: &Tool, refusal: Refusal) -> Refusal {
        self.refuse_with(tool, refusal, None, |_| {}).await
    }

    /// [`Self::refuse`] with event-specific facts: `detail` (e.g. the policy rule; otherwise
    /// the allowing decision) and fields set by `facts`.
    pub(super) async fn refuse_with(
        &self,
        tool: &Tool,
        refusal: Refusal,
        detail: Option<Detail>,
        facts: impl FnOnce(&mut AuditEvent),
    ) -> Refusal {
        let Some((event_type, decision)) = refusal.audit() else {
            return refusal;
        };
        // The reference runtime's shape: `execution_error` as the reason of every execution
        // error (the precise one in `errorCode`), and no status on a denial.
        let mut event = match decision {
            AuditDecision::Error => {
                let mut event = self.event(tool, event_type, decision, "execution_error");
                event.error_code = Some(refusal.reason().to_owned());
                event.status_code = Some((self.admitted.status_of)(&refusal));
                event
            }
            _ => self.event(tool, event_type, decision, refusal.reason()),
        };
        // A tool's own error is the outcome of a call that ran; its record has always carried
        // the call's facts (latency, size), not the policy decision of the intent.
        if !matches!(refusal, Refusal::ToolError { .. }) {
            event.detail = detail.or_else(|| self.policy.clone());
        }
        facts(&mut event);
        match self.admitted.stages.audit.record(event).await {
            Ok(_) => refusal,
            Err(error) => unavailable(error),
        }
    }

    /// Make `event` durable (an MCP outcome, an approval).
    pub(super) async fn durable(&self, event: AuditEvent) -> Result<(), Refusal> {
        self.admitted
            .stages
            .audit
            .record(event)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Queue the outcome of an executed HTTP call: the decision (intent) is durable; the
    /// outcome is written before the next batch is acknowledged (`AuditLog::record_outcome`).
    pub(super) async fn outcome(&self, tool: &Tool, event: AuditEvent) -> Result<(), Refusal> {
        self.admitted
            .stages
            .audit
            .record_outcome(event)
            .await
            .map_err(|error| {
                // The call ran (its intent record is durable) but the outcome cannot be
                // queued: the log has failed, so the caller gets no result.
                tracing::error!(tool = %tool.id, "executed call's outcome could not be audited: {error}");
                Refusal::AuditUnavailable(error)
            })
    }
}

/// The refusal of a request whose record cannot be written.
pub(super) fn unavailable(error: AuditError) -> Refusal {
    // The writer logs the failure once; per-request refusals stay at debug.
    tracing::debug!("refusing request: {error}");
    Refusal::AuditUnavailable(error)
}
