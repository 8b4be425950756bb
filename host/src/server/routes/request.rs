//! The body shared by `POST /v1/tools/execute`, `POST /v1/policy/explain` and
//! `POST /v1/approvals`, and the canonical arguments policy and approval grants see.
//!
//! `body` is accepted both as the contract's base64 string and as a plain JSON value (object,
//! array, number, boolean), which is sent as its JSON text. A JSON string is always base64.
//!
//! The request, and a base64 body that is JSON, must be strict JSON
//! ([`crate::policy::strict_json`]): no duplicate keys, no number the runtime cannot hold
//! exactly. Otherwise what policy, approval grants and the audit see could differ from what
//! the upstream reads, so such a request is refused with 400 before anything else.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::call::{CallArgs, CallRequest, Refusal};
use crate::config::Mode;
use crate::policy::strict_json::{self, StrictJsonError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExecuteRequest {
    #[serde(default)]
    pub(super) config_path: Option<String>,
    #[serde(default)]
    pub(super) mode: Option<String>,
    #[serde(default)]
    pub(super) agent_profile: Option<String>,
    pub(super) tool_id: String,
    #[serde(default)]
    path_args: Vec<Scalar>,
    #[serde(default)]
    flags: BTreeMap<String, Scalar>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) approval: bool,
    /// `POST /v1/approvals` only: the principal the grant is for.
    #[serde(default)]
    pub(super) principal: Option<String>,
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

impl ExecuteRequest {
    /// Parse a request of the `what` route, strict JSON first (module header).
    pub(super) fn parse(raw: &[u8], what: &str) -> Result<Self, Refusal> {
        match strict_json::check(raw) {
            // serde_json names the syntax problem better, below.
            Ok(()) | Err(StrictJsonError::Syntax(_)) => {}
            Err(e) => {
                return Err(Refusal::InvalidRequest(format!(
                    "invalid {what} request: {e}"
                )))
            }
        }
        let request: Self = serde_json::from_slice(raw)
            .map_err(|e| Refusal::InvalidRequest(format!("invalid {what} request: {e}")))?;
        // A base64 body that is JSON is held to the same rule now, before policy sees the call
        // (text that is not base64 is reported after policy, like any other body problem).
        if let Some(serde_json::Value::String(encoded)) = &request.body {
            if let Some(bytes) = base64_decode(encoded) {
                if let Err(
                    e @ (StrictJsonError::DuplicateKey { .. }
                    | StrictJsonError::InexactNumber { .. }
                    | StrictJsonError::TooDeep { .. }),
                ) = strict_json::check(&bytes)
                {
                    return Err(Refusal::InvalidRequest(format!("body: {e}")));
                }
            }
        }
        Ok(request)
    }
}

fn base64_decode(encoded: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(encoded.as_bytes()))
        .ok()
}

fn decode_body(body: Option<serde_json::Value>) -> Result<Option<Bytes>, String> {
    match body {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(encoded)) => {
            let bytes = base64_decode(&encoded)
                .ok_or_else(|| "body must be base64 text or a JSON object/array".to_owned())?;
            // A body that is not JSON at all is opaque bytes, bound as they are.
            match strict_json::check(&bytes) {
                Ok(()) | Err(StrictJsonError::Syntax(_)) => Ok(Some(Bytes::from(bytes))),
                Err(e) => Err(format!("body: {e}")),
            }
        }
        Some(value) => Ok(Some(Bytes::from(
            serde_json::to_vec(&value).unwrap_or_default(),
        ))),
    }
}

impl ExecuteRequest {
    /// The request as the call sees it, with `mode` already parsed by the route (approvals
    /// take none).
    pub(super) fn into_call(mut self, mode: Option<Mode>, headers: &HeaderMap) -> CallRequest {
        let args = self.take_args(headers);
        CallRequest {
            tool_id: self.tool_id,
            mode,
            approval: self.approval,
            principal: self.principal,
            args,
        }
    }

    /// Take the arguments out of the request.
    fn take_args(&mut self, headers: &HeaderMap) -> CallArgs {
        let path_args: Vec<String> = std::mem::take(&mut self.path_args)
            .into_iter()
            .map(Scalar::into_string)
            .collect();
        let flags: BTreeMap<String, String> = std::mem::take(&mut self.flags)
            .into_iter()
            .map(|(k, v)| (k, v.into_string()))
            .collect();
        call_args(path_args, flags, decode_body(self.body.take()), headers)
    }
}

/// The arguments as the call sees them: canonical for policy and grants, approval-looking
/// fields named.
fn call_args(
    path_args: Vec<String>,
    flags: BTreeMap<String, String>,
    body: Result<Option<Bytes>, String>,
    headers: &HeaderMap,
) -> CallArgs {
    let body_bytes = body.as_ref().ok().and_then(|b| b.as_deref());
    let canonical = crate::policy::approvals::canonical_arguments(&path_args, &flags, body_bytes);
    let approval_claims = approval_claims(headers, &flags, &canonical);
    CallArgs {
        path_args,
        flags,
        body,
        canonical,
        approval_claims,
    }
}

/// A call another door decoded itself (the MCP door's `tools/call`), held to the same argument
/// rules as an execute request: the same canonical arguments, the same approval-looking fields
/// named in the audit. `body` is strict JSON already (the door checked the whole message), or
/// why the arguments could not be decoded (reported after policy, as a bad execute body is).
pub(in crate::server) fn decoded_call(
    tool_id: String,
    path_args: Vec<String>,
    flags: BTreeMap<String, String>,
    body: Result<Option<Bytes>, String>,
    headers: &HeaderMap,
) -> CallRequest {
    CallRequest {
        tool_id,
        mode: None,
        approval: false,
        principal: None,
        args: call_args(path_args, flags, body, headers),
    }
}

fn looks_like_approval(name: &str) -> bool {
    name.to_ascii_lowercase().contains("approv")
}

/// The request's headers that look like approval, as `header:<name>` (see [`approval_claims`]).
pub(super) fn header_approval_claims(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .filter(|name| looks_like_approval(name.as_str()))
        .map(|name| format!("header:{name}"))
        .collect()
}

/// A workflow run's approval-looking fields: its headers and the names of its `inputs`
/// (`input:<name>`); the steps' own arguments come from the workflow document, not the caller.
pub(super) fn run_approval_claims(
    headers: &HeaderMap,
    inputs: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut claims = header_approval_claims(headers);
    claims.extend(
        inputs
            .keys()
            .filter(|k| looks_like_approval(k))
            .map(|k| format!("input:{k}")),
    );
    claims
}

/// Names of caller-supplied fields that look like approval (security case P06): headers, flags,
/// top-level body keys and `_meta` keys containing "approv". Approval only ever comes from the
/// request's contract flag (flag mode) or the runtime's grants (grant mode); these are listed
/// in the audit record so an attempt is visible.
fn approval_claims(
    headers: &HeaderMap,
    flags: &BTreeMap<String, String>,
    canonical: &serde_json::Value,
) -> Vec<String> {
    let mut claims = header_approval_claims(headers);
    claims.extend(
        flags
            .keys()
            .filter(|k| looks_like_approval(k))
            .map(|k| format!("flag:{k}")),
    );
    if let Some(body) = canonical.get("body").and_then(|b| b.as_object()) {
        claims.extend(
            body.keys()
                .filter(|k| looks_like_approval(k))
                .map(|k| format!("body:{k}")),
        );
        if let Some(meta) = body.get("_meta").and_then(|m| m.as_object()) {
            claims.extend(
                meta.keys()
                    .filter(|k| looks_like_approval(k))
                    .map(|k| format!("body:_meta.{k}")),
            );
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn approval_looking_fields_are_named_wherever_they_are() {
        let mut request: ExecuteRequest = serde_json::from_value(serde_json::json!({
            "toolId": "t:x", "flags": {"approved": "true", "q": "1"},
            "body": {"approval": true, "_meta": {"approval": "granted"}, "x": 1}
        }))
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-approval", "granted".parse().unwrap());
        let args = request.take_args(&headers);
        assert_eq!(
            args.approval_claims,
            [
                "header:x-approval",
                "flag:approved",
                "body:approval",
                "body:_meta.approval"
            ]
        );
    }
}
