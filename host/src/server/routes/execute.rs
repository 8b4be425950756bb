//! `POST /v1/tools/execute`: the whole pipeline for one tool call.
//!
//! config binding (409) -> authenticate (401) -> tool lookup (404) -> scope envelope (403
//! `authz_denied`) -> policy (403 with its reason; [`crate::policy::PolicySet::evaluate`], a
//! grant is taken here in grant mode) -> credentials (502 `credential_unavailable`) -> request
//! building (400) -> upstream (200 carrying the upstream status, or 502 with a classified reason
//! when no upstream response exists) -> audit. MCP tools leave the pipeline after policy for
//! their pooled session ([`super::mcp_call`]); HTTP credentials do not apply.
//!
//! The policy decision (`detail`: deciding rule, steps, grant, ignored approval-looking fields)
//! is in the one record that answers the call's decision: the refusal when policy denies, the
//! write-ahead intent when it allows, or the `execution_error` of a failure between the two
//! (bad body, credentials).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::Engine as _;
use bytes::Bytes;

use super::request::{CallArgs, ExecuteRequest};
use super::{admit, json_response, mcp_call, parse_mode};
use crate::audit::{AuditDecision, AuditEvent};
use crate::authn::Caller;
use crate::catalog::Tool;
use crate::config::Mode;
use crate::policy::{Approval, Call, Decision, Explanation};
use crate::secrets::CallInfo;
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;
use crate::server::runtime::Runtime;
use crate::server::snapshot::Snapshot;
use crate::upstream::{build_request, ExecuteArgs, UpstreamResponse};

/// Everything an audit record of this call shares.
pub(super) struct CallContext<'a> {
    pub(super) runtime: &'a Runtime,
    pub(super) caller: &'a Caller,
    agent_profile: Option<&'a str>,
    pub(super) request_id: &'a str,
    token_hash: Option<String>,
    /// The allowing policy decision, recorded in the intent record.
    pub(super) policy: Option<serde_json::Value>,
}

impl<'a> CallContext<'a> {
    /// The context of one call by `caller`.
    pub(super) fn new(
        runtime: &'a Runtime,
        caller: &'a Caller,
        agent_profile: Option<&'a str>,
        request_id: &'a RequestId,
        headers: &HeaderMap,
    ) -> Self {
        Self {
            runtime,
            caller,
            agent_profile,
            request_id: request_id.as_str(),
            token_hash: super::token_hash(runtime, headers),
            policy: None,
        }
    }

    pub(super) fn event(
        &self,
        tool: &Tool,
        event_type: &str,
        decision: AuditDecision,
        reason: &str,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(event_type, &tool.id, decision, reason);
        event.principal = self.caller.principal.clone();
        event.lineage = self.caller.lineage.clone();
        event.agent_profile = self.agent_profile.map(str::to_owned);
        event.service_id = Some(tool.service_id.clone());
        event.target_base_url = tool.servers.first().cloned();
        event.method = Some(tool.method.clone());
        event.path = Some(tool.path.clone());
        event.request_id = Some(self.request_id.to_owned());
        event.token_hash = self.token_hash.clone();
        event
    }

    /// Write-ahead: make the intent record of an allowed call durable before anything leaves
    /// for the upstream (HTTP or MCP); 503 when it cannot be written.
    pub(super) async fn record_intent(
        &self,
        tool: &Tool,
        request_size: Option<u64>,
        arguments: serde_json::Value,
    ) -> Result<(), ApiError> {
        let mut intent = self.event(
            tool,
            "tool_execution_intent",
            AuditDecision::Allowed,
            "allowed",
        );
        intent.request_size = request_size;
        intent.arguments = Some(arguments);
        intent.detail = self.policy.clone();
        self.runtime
            .record(intent)
            .await
            .map(|_| ())
            .map_err(|e| audit_unavailable(&e))
    }

    /// Record a refusal; if even that cannot be recorded, say so instead (503).
    pub(super) async fn refuse(
        &self,
        tool: &Tool,
        event_type: &str,
        reason: &str,
        error: ApiError,
    ) -> ApiError {
        self.refuse_with(tool, event_type, reason, error, None)
            .await
    }

    /// [`Self::refuse`] with event-specific facts in `detail` (e.g. the policy rule).
    pub(super) async fn refuse_with(
        &self,
        tool: &Tool,
        event_type: &str,
        reason: &str,
        error: ApiError,
        detail: Option<serde_json::Value>,
    ) -> ApiError {
        let decision = if event_type == "execution_error" {
            AuditDecision::Error
        } else {
            AuditDecision::Denied
        };
        let mut event = self.event(tool, event_type, decision, reason);
        event.status_code = Some(error.status().as_u16());
        // After an allowing decision, a later failure's record still names it.
        event.detail = detail.or_else(|| self.policy.clone());
        match self.runtime.record(event).await {
            Ok(_) => error,
            Err(audit_error) => audit_unavailable(&audit_error),
        }
    }
}

pub(super) fn audit_unavailable(error: &crate::audit::AuditError) -> ApiError {
    // The writer logs the failure once; per-request refusals stay at debug.
    tracing::debug!("refusing request: {error}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        "the audit log cannot be written; request refused",
    )
    .with_retry_after(5)
}

/// Look a tool up in the snapshot (404 when absent; not audited: there is no tool to name).
pub(super) fn lookup<'s>(snapshot: &'s Snapshot, tool_id: &str) -> Result<&'s Tool, ApiError> {
    snapshot.tool(tool_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "tool_not_found",
            format!("no tool {tool_id:?} in the catalog"),
        )
        .with_plain("tool not found")
    })
}

/// The scope envelope: 403 `authz_denied` (audited) when the caller's scopes do not grant `tool`.
pub(super) async fn check_envelope(
    context: &CallContext<'_>,
    snapshot: &Snapshot,
    tool: &Tool,
) -> Result<(), ApiError> {
    if crate::authz::grants(
        context.caller,
        &snapshot.authenticator,
        tool,
        &snapshot.policy,
    ) {
        return Ok(());
    }
    let error = ApiError::new(
        StatusCode::FORBIDDEN,
        "authz_denied",
        "the caller's scopes do not grant this tool",
    )
    .with_challenge(super::challenge(
        context.runtime,
        Some("insufficient_scope"),
    ));
    Err(context
        .refuse(tool, "authz_denial", "authz_denied", error)
        .await)
}

/// Run the policy pipeline for one call. `consume` takes a grant that approves it (execution);
/// explain only looks.
pub(super) async fn decide(
    context: &CallContext<'_>,
    snapshot: &Snapshot,
    tool: &Tool,
    request: &ExecuteRequest,
    mode: Option<Mode>,
    args: &CallArgs,
    consume: bool,
) -> Explanation {
    let call = Call {
        tool,
        mode,
        agent_profile: request.agent_profile.as_deref(),
        principal: context.caller.principal.as_deref(),
        scopes: &context.caller.scopes,
        request_id: context.request_id,
        arguments: &args.canonical,
    };
    let approval = if snapshot.policy.approvals().grants() {
        Approval::Grant {
            store: &context.runtime.approvals,
            consume,
        }
    } else {
        Approval::Flag(request.approval)
    };
    snapshot.policy.evaluate(&call, approval).await
}

/// The audit `detail` of a policy decision.
fn policy_detail(
    explanation: &Explanation,
    request: &ExecuteRequest,
    args: &CallArgs,
    grant_mode: bool,
) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "ruleId": explanation.rule(),
        "steps": explanation.steps,
    });
    if let Some(grant) = &explanation.grant {
        detail["grantId"] = grant.id.clone().into();
    }
    let mut ignored = args.approval_claims.clone();
    if grant_mode && request.approval {
        ignored.insert(0, "request:approval".into());
    }
    if !ignored.is_empty() {
        detail["ignoredApprovalClaims"] = ignored.into();
    }
    detail
}

/// The caller-facing message of a policy refusal. A failing evaluator's message stays in the
/// log and the audit record; the caller learns only which evaluator refused.
fn deny_message(explanation: &Explanation, reason: &str, rule: &str) -> String {
    match reason {
        "policy_error" => format!("denied: policy evaluator {rule:?} failed"),
        "plugin_deny" => {
            let why = explanation
                .steps
                .iter()
                .find(|s| s.rule == rule)
                .map(|s| s.detail.as_str())
                .unwrap_or_default();
            format!("denied by policy evaluator {rule:?}: {why}")
        }
        _ => format!("denied by policy ({reason}, rule {rule:?})"),
    }
}

/// `POST /v1/tools/execute`.
pub async fn execute(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "execute")?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let mode = parse_mode(request.mode.as_deref())?;
    let tool = lookup(&snapshot, &request.tool_id)?;
    let args = request.take_args(&headers);
    let mut context = CallContext::new(
        &runtime,
        &caller,
        request.agent_profile.as_deref(),
        &request_id,
        &headers,
    );
    check_envelope(&context, &snapshot, tool).await?;
    let explanation = decide(&context, &snapshot, tool, &request, mode, &args, true).await;
    let grant_mode = snapshot.policy.approvals().grants();
    let detail = policy_detail(&explanation, &request, &args, grant_mode);
    if let Decision::Deny { reason, rule } = &explanation.decision {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            reason,
            deny_message(&explanation, reason, rule),
        );
        return Err(context
            .refuse_with(tool, "authz_denial", reason, error, Some(detail))
            .await);
    }
    context.policy = Some(detail);
    let CallArgs {
        path_args,
        flags,
        body,
        ..
    } = args;
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            return Err(context
                .refuse(tool, "execution_error", "invalid_request", error)
                .await)
        }
    };
    if mcp_call::backend(tool).is_some() {
        return mcp_call::execute(&context, &snapshot, tool, body).await;
    }
    let call = CallInfo {
        request_id: request_id.as_str().to_owned(),
        principal: caller.principal.clone(),
    };
    let credentials = match snapshot.secrets.credentials_for(tool, &call).await {
        Ok(credentials) => credentials,
        Err(e) => {
            let error = super::oauth_callback::credential_error(&e);
            let code = error.code();
            return Err(context.refuse(tool, "execution_error", code, error).await);
        }
    };
    let request_size = body.as_ref().map(|b| b.len() as u64);
    let arguments =
        crate::audit::redact::arguments(&tool.path, &path_args, &flags, body.as_deref());
    let args = ExecuteArgs {
        path_args,
        flags,
        body,
    };
    let upstream_request = match build_request(tool, &args, &credentials) {
        Ok(upstream_request) => upstream_request,
        Err(e) => {
            let error = ApiError::bad_request(e.to_string());
            return Err(context
                .refuse(tool, "execution_error", "invalid_request", error)
                .await);
        }
    };
    context.record_intent(tool, request_size, arguments).await?;

    let source = snapshot
        .catalog
        .services
        .iter()
        .find(|s| s.id == tool.service_id)
        .map(|s| s.source_id.as_str());
    match snapshot.upstream.send_for(upstream_request, source).await {
        Ok(mut response) => {
            // The caller never sees the upstream credential, even when the upstream echoes it
            // escaped or compressed; what cannot be scrubbed is withheld.
            let limit = snapshot.upstream.max_response_bytes();
            let body = std::mem::take(&mut response.body);
            let encoding = response.content_encoding.take();
            match crate::secrets::scrub::scrub_response(
                body,
                encoding.as_deref(),
                &credentials,
                limit,
            ) {
                Ok(body) => response.body = body,
                Err(e) => {
                    let reason = e.reason();
                    let error = ApiError::new(StatusCode::BAD_GATEWAY, reason, e.to_string());
                    return Err(context.refuse(tool, "execution_error", reason, error).await);
                }
            }
            response.content_type = response
                .content_type
                .take()
                .map(|t| crate::secrets::scrub::scrub_text(t, &credentials));
            let mut event =
                context.event(tool, "tool_execution", AuditDecision::Allowed, "allowed");
            event.final_origin = Some(response.final_origin.clone());
            event.status_code = Some(response.status);
            event.latency_ms = Some(response.latency.as_millis() as u64);
            event.retry_count = Some(response.attempts.saturating_sub(1)).filter(|&n| n > 0);
            event.request_size = request_size;
            // The decision (intent) is durable; the outcome is queued and written before the
            // next batch is acknowledged (see `AuditLog::record_outcome`).
            if let Err(audit_error) = runtime.record_outcome(event).await {
                // The call ran (its intent record is durable) but the outcome cannot be queued:
                // the log has failed, so the caller gets 503, not the result.
                tracing::error!(tool = %tool.id, "executed call's outcome could not be audited: {audit_error}");
                return Err(audit_unavailable(&audit_error));
            }
            Ok(json_response(render_result(&response)))
        }
        Err(upstream_error) => {
            let reason = upstream_error.reason();
            let error = ApiError::new(StatusCode::BAD_GATEWAY, reason, upstream_error.to_string());
            Err(context.refuse(tool, "execution_error", reason, error).await)
        }
    }
}

/// `{"statusCode":N,"body":<json>}` when the upstream body is JSON, `"text"` when it is other
/// UTF-8, `"bodyBase64"` for binary; `contentType` echoes the upstream header.
fn render_result(response: &UpstreamResponse) -> Bytes {
    let mut out = Vec::with_capacity(response.body.len() + 96);
    out.extend_from_slice(b"{\"statusCode\":");
    out.extend_from_slice(response.status.to_string().as_bytes());
    let body = &response.body;
    if !body.is_empty() {
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            out.extend_from_slice(b",\"body\":");
            out.extend_from_slice(body);
        } else if let Ok(text) = std::str::from_utf8(body) {
            out.extend_from_slice(b",\"text\":");
            out.extend_from_slice(&serde_json::to_vec(text).unwrap_or_default());
        } else {
            out.extend_from_slice(b",\"bodyBase64\":\"");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(body)
                    .as_bytes(),
            );
            out.push(b'"');
        }
    }
    if let Some(content_type) = &response.content_type {
        out.extend_from_slice(b",\"contentType\":");
        out.extend_from_slice(&serde_json::to_vec(content_type).unwrap_or_default());
    }
    out.push(b'}');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &[u8], content_type: Option<&str>) -> UpstreamResponse {
        UpstreamResponse {
            status: 200,
            content_type: content_type.map(str::to_owned),
            content_encoding: None,
            body: Bytes::copy_from_slice(body),
            attempts: 1,
            latency: std::time::Duration::ZERO,
            final_origin: "http://127.0.0.1".into(),
        }
    }

    fn rendered(body: &[u8], content_type: Option<&str>) -> serde_json::Value {
        serde_json::from_slice(&render_result(&response(body, content_type))).unwrap()
    }

    #[test]
    fn json_bodies_are_embedded_text_is_quoted_and_binary_is_base64() {
        assert_eq!(
            rendered(br#"{"a":1}"#, Some("application/json"))["body"]["a"],
            1
        );
        let text = rendered(b"plain \"quoted\"\n", Some("text/plain"));
        assert_eq!(text["text"], "plain \"quoted\"\n");
        assert_eq!(text["contentType"], "text/plain");
        assert_eq!(rendered(&[0xff, 0x00], None)["bodyBase64"], "/wA=");
        assert_eq!(rendered(b"", None), serde_json::json!({"statusCode": 200}));
    }
}
