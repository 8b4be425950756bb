//! The MCP leg of `POST /v1/tools/execute`: after the same binding, authn, scope envelope and
//! policy as every tool, the call goes to the source's pooled MCP session instead of HTTP.
//!
//! | outcome | response | audit |
//! |---|---|---|
//! | result | 200 `{"statusCode":200,"contentType":"application/json","body":<MCP result>}` | `tool_execution` allowed |
//! | result with `isError: true` | 502 `tool_error` (the tool's own message in the detail) | `execution_error` `tool_error` |
//! | transport OAuth spent its refresh | 502 `reauthorization_required` | `execution_error` |
//! | server down, protocol error, timeout | 502 with the reason | `execution_error` |
//!
//! Arguments are the request `body` (a JSON object; empty = `{}`). For a tool whose input
//! schema was wrapped, the body is `{"input": ...}` and `input` is what the server receives.
//! `pathArgs` and `flags` do not apply to MCP tools and are ignored.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::execute::{audit_unavailable, CallContext};
use super::json_response;
use crate::audit::AuditDecision;
use crate::catalog::Tool;
use crate::server::error::ApiError;
use crate::server::snapshot::Snapshot;

/// Longest tool error text echoed back to the caller.
const MAX_ERROR_TEXT: usize = 1000;

/// The MCP backend of a tool, when it has one: (source id, tool name, input wrapped).
pub(super) fn backend(tool: &Tool) -> Option<(&str, &str, bool)> {
    let backend = tool.backend.as_ref()?;
    if backend.get("kind")?.as_str()? != "mcp" {
        return None;
    }
    Some((
        backend.get("sourceId")?.as_str()?,
        backend.get("toolName")?.as_str()?,
        backend.get("inputWrapped").and_then(Value::as_bool) == Some(true),
    ))
}

/// The MCP `arguments` object for a request body.
fn arguments(body: Option<&Bytes>, wrapped: bool) -> Result<Map<String, Value>, String> {
    let value: Value = match body.filter(|b| !b.is_empty()) {
        None => Value::Object(Map::new()),
        Some(bytes) => {
            serde_json::from_slice(bytes).map_err(|e| format!("body is not JSON: {e}"))?
        }
    };
    let value = if wrapped {
        match value {
            Value::Object(mut outer) => outer
                .remove("input")
                .ok_or("wrapped MCP input must include input")?,
            _ => return Err("wrapped MCP input must be an object containing input".into()),
        }
    } else {
        value
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("MCP tool arguments must be a JSON object".into()),
    }
}

/// The text an `isError` result carries, bounded.
fn error_text(result: &rmcp::model::CallToolResult) -> String {
    let mut text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Run an admitted call on the MCP session of its source.
pub(super) async fn execute(
    context: &CallContext<'_>,
    snapshot: &Snapshot,
    tool: &Tool,
    body: Option<Bytes>,
) -> Result<Response, ApiError> {
    let Some((source_id, tool_name, wrapped)) = backend(tool) else {
        return Err(ApiError::bad_request("tool has no MCP backend"));
    };
    let request_size = body.as_ref().map(|b| b.len() as u64);
    let arguments = match arguments(body.as_ref(), wrapped) {
        Ok(a) => a,
        Err(message) => {
            let error = ApiError::bad_request(message);
            return Err(context
                .refuse(tool, "execution_error", "invalid_request", error)
                .await);
        }
    };
    let session = match snapshot.mcp.session(source_id) {
        Ok(s) => s,
        Err(e) => {
            let error = ApiError::new(StatusCode::BAD_GATEWAY, e.reason(), e.to_string());
            return Err(context
                .refuse(tool, "execution_error", e.reason(), error)
                .await);
        }
    };
    // Recorded under the same redaction rule as HTTP tool arguments.
    let recorded = crate::audit::redact::arguments("", &[], &Default::default(), body.as_deref());
    context.record_intent(tool, request_size, recorded).await?;
    let started = Instant::now();
    let result = match session.call_tool(tool_name, arguments).await {
        Ok(result) => result,
        Err(e) => {
            let error = ApiError::new(StatusCode::BAD_GATEWAY, e.reason(), e.to_string());
            return Err(context
                .refuse(tool, "execution_error", e.reason(), error)
                .await);
        }
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    // The same never-echo rule as HTTP results: credentials the transport carries are scrubbed
    // from what the server answers, error text included.
    let carried = session.carried_credentials().await;
    if result.is_error == Some(true) {
        let text = crate::secrets::scrub::scrub(Bytes::from(error_text(&result)), &carried);
        let error = ApiError::new(
            StatusCode::BAD_GATEWAY,
            "tool_error",
            format!(
                "MCP tool {tool_name:?} reported an error: {}",
                String::from_utf8_lossy(&text)
            ),
        );
        let mut event = context.event(tool, "execution_error", AuditDecision::Error, "tool_error");
        event.status_code = Some(error.status().as_u16());
        event.latency_ms = Some(latency_ms);
        event.request_size = request_size;
        return Err(match context.runtime.record(event).await {
            Ok(_) => error,
            Err(audit_error) => audit_unavailable(&audit_error),
        });
    }
    let mut event = context.event(tool, "tool_execution", AuditDecision::Allowed, "allowed");
    event.status_code = Some(200);
    event.latency_ms = Some(latency_ms);
    event.request_size = request_size;
    if let Err(audit_error) = context.runtime.record(event).await {
        tracing::error!(tool = %tool.id, "executed MCP call's outcome could not be audited: {audit_error}");
        return Err(audit_unavailable(&audit_error));
    }
    let body = serde_json::json!({
        "statusCode": 200,
        "contentType": "application/json",
        "body": result,
    });
    let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    Ok(json_response(crate::secrets::scrub::scrub(body, &carried)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_input_is_unwrapped_and_malformed_wrappers_are_refused() {
        let body = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert_eq!(arguments(None, false).unwrap(), Map::new());
        assert_eq!(
            arguments(Some(&body(r#"{"input":{"a":1}}"#)), true).unwrap()["a"],
            1
        );
        assert!(arguments(Some(&body(r#"{"a":1}"#)), true)
            .unwrap_err()
            .contains("must include input"));
        assert!(arguments(Some(&body("[1]")), true)
            .unwrap_err()
            .contains("must be an object containing input"));
        assert!(arguments(Some(&body("3")), false).is_err());
    }
}
