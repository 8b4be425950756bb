//! `POST /v1/tools/execute`: the whole pipeline for one tool call.
//!
//! config binding (409) -> authenticate (401) -> tool lookup (404) -> scope envelope (403
//! `authz_denied`) -> policy (403 with its reason) -> credentials (502 `credential_unavailable`)
//! -> request building (400) -> upstream (200 carrying the upstream status, or 502 with a
//! classified reason when no upstream response exists) -> audit. MCP tools leave the pipeline
//! after policy for their pooled session ([`super::mcp_call`]); HTTP credentials do not apply.
//!
//! `body` is accepted both as the contract's base64 string and as a plain JSON value (object,
//! array, number, boolean), which is sent as its JSON text. A JSON string is always base64.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use super::{admit, json_response, mcp_call, parse_mode};
use crate::audit::{AuditDecision, AuditEvent};
use crate::authn::Caller;
use crate::catalog::Tool;
use crate::policy::{Decision, PolicyRequest};
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;
use crate::server::runtime::Runtime;
use crate::upstream::{build_request, ExecuteArgs, UpstreamResponse};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteRequest {
    #[serde(default)]
    config_path: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    agent_profile: Option<String>,
    tool_id: String,
    #[serde(default)]
    path_args: Vec<Scalar>,
    #[serde(default)]
    flags: BTreeMap<String, Scalar>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    approval: bool,
}

/// Argument values may be sent as strings (the contract), numbers or booleans.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

fn decode_body(body: Option<serde_json::Value>) -> Result<Option<Bytes>, ApiError> {
    match body {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(encoded.as_bytes()))
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|_| ApiError::bad_request("body must be base64 text or a JSON object/array")),
        Some(value) => Ok(Some(Bytes::from(
            serde_json::to_vec(&value).unwrap_or_default(),
        ))),
    }
}

/// Everything an audit record of this call shares.
pub(super) struct CallContext<'a> {
    pub(super) runtime: &'a Runtime,
    caller: &'a Caller,
    agent_profile: Option<&'a str>,
    request_id: &'a str,
    token_hash: Option<String>,
}

impl CallContext<'_> {
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
    async fn refuse_with(
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
        event.detail = detail;
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

/// `POST /v1/tools/execute`.
pub async fn execute(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let request: ExecuteRequest = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid execute request: {e}")))?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let mode = parse_mode(request.mode.as_deref())?;
    let tool = snapshot.tool(&request.tool_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "tool_not_found",
            format!("no tool {:?} in the catalog", request.tool_id),
        )
        .with_plain("tool not found")
    })?;
    let context = CallContext {
        runtime: &runtime,
        caller: &caller,
        agent_profile: request.agent_profile.as_deref(),
        request_id: request_id.as_str(),
        token_hash: super::token_hash(&runtime, &headers),
    };

    if !crate::authz::grants(&caller, &snapshot.authenticator, tool, &snapshot.policy) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "authz_denied",
            "the caller's scopes do not grant this tool",
        )
        .with_challenge(super::challenge(&runtime, Some("insufficient_scope")));
        return Err(context
            .refuse(tool, "authz_denial", "authz_denied", error)
            .await);
    }
    let policy_request = PolicyRequest {
        mode,
        agent_profile: request.agent_profile.as_deref(),
        approval: request.approval,
    };
    if let Decision::Deny { reason, rule } = snapshot.policy.decide(tool, &policy_request) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            reason,
            format!("denied by policy ({reason}, rule {rule:?})"),
        );
        let detail = serde_json::json!({ "ruleId": rule });
        return Err(context
            .refuse_with(tool, "authz_denial", reason, error, Some(detail))
            .await);
    }
    let body = match decode_body(request.body) {
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
    let credentials = match snapshot
        .secrets
        .credentials_for(tool, caller.principal.as_deref())
        .await
    {
        Ok(credentials) => credentials,
        Err(e) => {
            let error = super::oauth_callback::credential_error(&e);
            let code = error.code();
            return Err(context.refuse(tool, "execution_error", code, error).await);
        }
    };
    let request_size = body.as_ref().map(|b| b.len() as u64);
    let path_args: Vec<String> = request
        .path_args
        .into_iter()
        .map(Scalar::into_string)
        .collect();
    let flags: BTreeMap<String, String> = request
        .flags
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
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

    match snapshot.upstream.send(upstream_request).await {
        Ok(response) => {
            let mut event =
                context.event(tool, "tool_execution", AuditDecision::Allowed, "allowed");
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
            body: Bytes::copy_from_slice(body),
            attempts: 1,
            latency: std::time::Duration::ZERO,
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

    #[test]
    fn body_accepts_base64_and_plain_json() {
        let b64 = decode_body(Some(serde_json::json!("eyJhIjoxfQ==")))
            .unwrap()
            .unwrap();
        assert_eq!(&b64[..], br#"{"a":1}"#);
        let plain = decode_body(Some(serde_json::json!({"a": 1})))
            .unwrap()
            .unwrap();
        assert_eq!(&plain[..], br#"{"a":1}"#);
        assert!(decode_body(Some(serde_json::json!("not base64!"))).is_err());
        assert!(decode_body(None).unwrap().is_none());
    }
}
