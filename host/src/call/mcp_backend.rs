//! The MCP backend: an admitted, allowed call goes to the source's pooled MCP session
//! instead of HTTP.
//!
//! | outcome | answer | audit |
//! |---|---|---|
//! | result | `{"statusCode":200,"contentType":"application/json","body":<MCP result>}` | `tool_execution` allowed |
//! | result with `isError: true` | [`Refusal::ToolError`] (the tool's own message) | `execution_error` `tool_error` |
//! | transport OAuth spent its refresh, server down, protocol error, timeout | [`Refusal::Mcp`] | `execution_error` |
//! | the tool's definition changed at a listing after this snapshot was built | [`Refusal::DefinitionChanged`] | `authz_denial` |
//!
//! Arguments are the request `body` (a JSON object; empty = `{}`). For a tool whose input
//! schema was wrapped, the body is `{"input": ...}` and `input` is what the server receives.
//! `pathArgs` and `flags` do not apply to MCP tools and are ignored; HTTP credentials neither.

use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::audit_trail::AuditTrail;
use super::Refusal;
use crate::audit::AuditDecision;
use crate::catalog::{McpBinding, Tool};

/// Longest tool error text echoed back to the caller.
const MAX_ERROR_TEXT: usize = 1000;

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

/// Run an admitted, allowed call on the MCP session of its source.
pub(super) async fn execute(
    trail: &AuditTrail<'_, '_>,
    tool: &Tool,
    binding: &McpBinding,
    body: Option<Bytes>,
) -> Result<Bytes, Refusal> {
    let request_size = body.as_ref().map(|b| b.len() as u64);
    let arguments = match arguments(body.as_ref(), binding.input_wrapped) {
        Ok(a) => a,
        Err(message) => return Err(trail.refuse(tool, Refusal::InvalidRequest(message)).await),
    };
    let mcp = trail.admitted().stages.mcp;
    // The snapshot may predate the listing that found the change: the pins are live.
    if let Some(why) = mcp.pins().withheld(&binding.source_id, &binding.tool_name) {
        let tool_id = tool.id.clone();
        return Err(trail
            .refuse(tool, Refusal::DefinitionChanged { tool_id, why })
            .await);
    }
    let session = match mcp.session(&binding.source_id) {
        Ok(s) => s,
        Err(e) => return Err(trail.refuse(tool, Refusal::Mcp(e)).await),
    };
    // Recorded under the same redaction rule as HTTP tool arguments.
    let recorded = crate::audit::redact::arguments(&[], &[], &Default::default(), body.as_deref());
    trail.intent(tool, request_size, recorded).await?;
    let started = Instant::now();
    let relay = trail.admitted().relay.clone();
    let result = match session
        .call_tool(&binding.tool_name, arguments, relay)
        .await
    {
        Ok(result) => result,
        Err(e) => return Err(trail.refuse(tool, Refusal::Mcp(e)).await),
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    // The same never-echo rule as HTTP results: credentials the transport carries are scrubbed
    // from what the server answers, error text included.
    let carried = session.carried_credentials().await;
    if result.is_error == Some(true) {
        let text = crate::secrets::scrub::scrub(Bytes::from(error_text(&result)), &carried);
        let refusal = Refusal::ToolError {
            tool_name: binding.tool_name.clone(),
            text: String::from_utf8_lossy(&text).into_owned(),
        };
        return Err(trail
            .refuse_with(tool, refusal, None, |event| {
                event.latency_ms = Some(latency_ms);
                event.request_size = request_size;
            })
            .await);
    }
    let mut event = trail.event(tool, "tool_execution", AuditDecision::Allowed, "allowed");
    event.status_code = Some(200);
    event.latency_ms = Some(latency_ms);
    event.request_size = request_size;
    if let Err(refusal) = trail.durable(event).await {
        tracing::error!(tool = %tool.id, "executed MCP call's outcome could not be audited: {refusal:?}");
        return Err(refusal);
    }
    let body = serde_json::json!({
        "statusCode": 200,
        "contentType": "application/json",
        "body": result,
    });
    let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    Ok(crate::secrets::scrub::scrub(body, &carried))
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
