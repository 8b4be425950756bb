//! `POST /v1/policy/explain` and `POST /v1/approvals`.
//!
//! Explain runs the same admission (binding, authentication, tool lookup, scope envelope) and
//! the same policy pipeline as execute, and answers `{decision, reason, rule, steps}` without
//! executing anything or taking a grant. Explaining is not a decision and is not audited (a
//! refusal at the envelope is, as for execute); a failing evaluator's message is not shown. Approvals issues a grant in `policy.approvals.mode:
//! grant`; the caller must hold the approver scope.
//!
//! | approvals refusal | status, code | audited as |
//! |---|---|---|
//! | grant mode is off | 400 `approvals_not_enabled` | - |
//! | no `principal` in the body | 400 `invalid_request` | - |
//! | caller lacks the approver scope | 403 `insufficient_scope` | `authz_denial` |
//! | approver = principal while forbidden | 403 `self_approval_forbidden` | `authz_denial` |
//! | too many outstanding grants | 503 `approval_store_full` | `authz_denial` |

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;

use super::execute::{check_envelope, decide, lookup, CallContext};
use super::request::ExecuteRequest;
use super::{admit, parse_mode};
use crate::audit::AuditDecision;
use crate::policy::approvals::{arguments_digest, GrantError, GrantKey};
use crate::policy::Outcome;
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;
use crate::server::runtime::Runtime;

/// `POST /v1/policy/explain`.
pub async fn explain(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "explain")?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let mode = parse_mode(request.mode.as_deref())?;
    let tool = lookup(&snapshot, &request.tool_id)?;
    let args = request.take_args(&headers);
    let context = CallContext::new(
        &runtime,
        &caller,
        request.agent_profile.as_deref(),
        &request_id,
        &headers,
    );
    check_envelope(&context, &snapshot, tool).await?;
    let mut explanation = decide(&context, &snapshot, tool, &request, mode, &args, false).await;
    // As for execute: a failing evaluator's message stays in the server log.
    for step in &mut explanation.steps {
        if step.outcome == Outcome::Error {
            step.detail = "the evaluator failed; the reason is in the server log".into();
        }
    }
    let mut body = explanation.to_json();
    body["toolId"] = tool.id.clone().into();
    Ok(Json(body).into_response())
}

/// `POST /v1/approvals`: body as execute's plus `principal`; 201 with the grant.
pub async fn approve(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "approval")?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let settings = snapshot.policy.approvals().clone();
    if !settings.grants() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "approvals_not_enabled",
            "approval grants are off (policy.approvals.mode is not \"grant\")",
        ));
    }
    let principal = request
        .principal
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("principal (who may execute) is required"))?;
    let tool = lookup(&snapshot, &request.tool_id)?;
    let args = request.take_args(&headers);
    let context = CallContext::new(
        &runtime,
        &caller,
        request.agent_profile.as_deref(),
        &request_id,
        &headers,
    );
    let scope = settings.approver_scope.as_str();
    let approver = caller
        .principal
        .as_deref()
        .filter(|_| caller.scopes.iter().any(|s| s == scope));
    let Some(approver) = approver else {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("issuing approval grants needs the {scope} scope"),
        )
        .with_challenge(format!(
            "{}, scope=\"{scope}\"",
            super::challenge(&runtime, Some("insufficient_scope"))
        ));
        return Err(context
            .refuse(tool, "authz_denial", "insufficient_scope", error)
            .await);
    };
    // An approver approves only tools inside their own scope envelope.
    check_envelope(&context, &snapshot, tool).await?;
    let key = GrantKey {
        principal,
        tool_id: tool.id.clone(),
        arguments_sha256: arguments_digest(&args.canonical),
    };
    let grant = match runtime.approvals.issue(&settings, approver, key.clone()) {
        Ok(grant) => grant,
        Err(e) => {
            let (status, code) = match e {
                GrantError::SelfApproval => (StatusCode::FORBIDDEN, "self_approval_forbidden"),
                GrantError::Full => (StatusCode::SERVICE_UNAVAILABLE, "approval_store_full"),
            };
            let mut error = ApiError::new(status, code, e.to_string());
            if e == GrantError::Full {
                error = error.with_retry_after(5);
            }
            let detail = serde_json::json!({ "for": key.principal });
            return Err(context
                .refuse_with(tool, "authz_denial", code, error, Some(detail))
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
    let mut event = context.event(
        tool,
        "approval_granted",
        AuditDecision::Allowed,
        "approval_granted",
    );
    event.status_code = Some(201);
    event.detail = Some(body.clone());
    if let Err(audit_error) = runtime.record(event).await {
        // An approval nobody can trace must not be usable.
        runtime.approvals.revoke(&key, &grant.id);
        return Err(super::execute::audit_unavailable(&audit_error));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
