//! The HTTP backend: credentials → request → intent → upstream → scrub → outcome.
//!
//! | step | refusal | audit |
//! |---|---|---|
//! | credentials ([`crate::secrets`]) | [`Refusal::Credentials`] | `execution_error` |
//! | request building ([`crate::upstream::build_request`]) | [`Refusal::InvalidRequest`] | `execution_error` |
//! | intent | [`Refusal::AuditUnavailable`]; nothing is sent | - |
//! | upstream (no response) | [`Refusal::Upstream`] | `execution_error` |
//! | a credentialed response that cannot be scrubbed | [`Refusal::Withheld`] | `execution_error` |
//! | response | `{"statusCode":N,"body"|"text"|"bodyBase64"?,"contentType"?}` | `tool_execution` (queued) |

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;

use super::audit_trail::AuditTrail;
use super::Refusal;
use crate::audit::AuditDecision;
use crate::catalog::Tool;
use crate::secrets::CallInfo;
use crate::upstream::{build_request, ExecuteArgs, UpstreamResponse};

/// Run an admitted, allowed call against the tool's HTTP upstream.
pub(super) async fn execute(
    trail: &AuditTrail<'_, '_>,
    tool: &Tool,
    path_args: Vec<String>,
    flags: BTreeMap<String, String>,
    body: Option<Bytes>,
) -> Result<Bytes, Refusal> {
    let admitted = trail.admitted();
    let stages = &admitted.stages;
    let call = CallInfo {
        request_id: admitted.request_id.to_owned(),
        principal: admitted.caller.principal.clone(),
    };
    let credentials = match stages.secrets.credentials_for(tool, &call).await {
        Ok(credentials) => credentials,
        Err(e) => return Err(trail.refuse(tool, Refusal::Credentials(e)).await),
    };
    let request_size = body.as_ref().map(|b| b.len() as u64);
    // Named in the order the arguments bind, so a sensitive one is redacted whatever its place.
    let names = crate::upstream::path_arg_names(tool);
    let arguments = crate::audit::redact::arguments(&names, &path_args, &flags, body.as_deref());
    let args = ExecuteArgs {
        path_args,
        flags,
        body,
    };
    let upstream_request = match build_request(tool, &args, &credentials) {
        Ok(upstream_request) => upstream_request,
        Err(e) => {
            let refusal = Refusal::InvalidRequest(e.to_string());
            return Err(trail.refuse(tool, refusal).await);
        }
    };
    trail.intent(tool, request_size, arguments).await?;

    let source = stages
        .catalog
        .services
        .iter()
        .find(|s| s.id == tool.service_id)
        .map(|s| s.source_id.as_str());
    let mut response = match stages.upstream.send_for(upstream_request, source).await {
        Ok(response) => response,
        Err(e) => return Err(trail.refuse(tool, Refusal::Upstream(e)).await),
    };
    // The caller never sees the upstream credential, even when the upstream echoes it escaped
    // or compressed; what cannot be scrubbed is withheld.
    let limit = stages.upstream.max_response_bytes();
    let body = std::mem::take(&mut response.body);
    let encoding = response.content_encoding.take();
    match crate::secrets::scrub::scrub_response(body, encoding.as_deref(), &credentials, limit) {
        Ok(body) => response.body = body,
        Err(e) => return Err(trail.refuse(tool, Refusal::Withheld(e)).await),
    }
    response.content_type = response
        .content_type
        .take()
        .map(|t| crate::secrets::scrub::scrub_text(t, &credentials));
    let mut event = trail.event(tool, "tool_execution", AuditDecision::Allowed, "allowed");
    event.final_origin = Some(response.final_origin.clone());
    event.status_code = Some(response.status);
    event.latency_ms = Some(response.latency.as_millis() as u64);
    event.retry_count = Some(response.attempts.saturating_sub(1)).filter(|&n| n > 0);
    event.request_size = request_size;
    trail.outcome(tool, event).await?;
    Ok(render_result(&response))
}

/// `{"statusCode":N,"body":<json>}` when the upstream body is JSON, `"text"` when it is other
/// UTF-8, `"bodyBase64"` for binary; `contentType` echoes the upstream header.
fn render_result(response: &UpstreamResponse) -> Bytes {
    let mut out = Vec::with_capacity(response.body.len() + 96);
    out.extend_from_slice(b"{\"statusCode\":");
    // Written in place (a `Vec` cannot fail to take it).
    let _ = std::io::Write::write_fmt(&mut out, format_args!("{}", response.status));
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
