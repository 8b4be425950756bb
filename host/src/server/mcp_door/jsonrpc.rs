//! JSON-RPC 2.0 as the MCP door reads it: one message per POST, transport-free.
//!
//! | input | answer | code |
//! |---|---|---|
//! | not JSON, or nested deeper than [`strict_json::MAX_DEPTH`] | error, `id: null` | [`PARSE_ERROR`] |
//! | a duplicate key or a number the runtime cannot hold exactly (what policy and grants see must be what the upstream reads) | error | [`INVALID_REQUEST`] |
//! | an array (a batch: removed from MCP in 2025-06-18, and no revision served here has it) | error | [`INVALID_REQUEST`] |
//! | not an object, `jsonrpc` not `"2.0"`, `method` not a string, an `id` that is not a string (at most [`MAX_ID_LEN`] bytes) or an integer | error (`id: null` unless the id was usable) | [`INVALID_REQUEST`] |
//! | `params` present but not an object (MCP params are named) | error | [`INVALID_PARAMS`] |
//! | a request (`id` and `method`) | [`Message::Request`] | - |
//! | a notification (`method`, no `id`) | [`Message::Notification`]; the door answers 202 | - |
//! | a response (`id` and `result` or `error`, no `method`) | [`Message::Response`]; the door answers 202 (it never asks, so there is nothing to match) | - |
//!
//! Nothing here panics on any input (a unit test feeds it the malformed table).

use serde_json::{Map, Value};

use crate::policy::strict_json::{self, StrictJsonError};

/// Invalid JSON was received.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not offered.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// The server failed (the audit log cannot be written, for one).
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// The session named by `Mcp-Session-Id` is unknown or ended (the SDKs' code).
pub(crate) const SESSION_NOT_FOUND: i64 = -32001;
/// A routing header disagrees with the body (2026-07-28).
pub(crate) const HEADER_MISMATCH: i64 = -32020;
/// The protocol revision is not served (2026-07-28).
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Longest string `id` accepted (it is echoed back).
pub(crate) const MAX_ID_LEN: usize = 256;

/// One message a client sent.
#[derive(Debug, PartialEq)]
pub(crate) enum Message {
    /// A request: it is owed a response with its `id`.
    Request {
        /// The request id (a string or an integer).
        id: Value,
        /// The method.
        method: String,
        /// The named params (empty when absent).
        params: Map<String, Value>,
    },
    /// A notification: no answer.
    Notification {
        /// The method.
        method: String,
    },
    /// A response to a server request (the door sends none, so it is dropped).
    Response,
}

/// A JSON-RPC error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub(crate) struct RpcError {
    /// The request's id, `null` when it could not be read.
    pub(crate) id: Value,
    /// The error code.
    pub(crate) code: i64,
    /// What is wrong, for the client.
    pub(crate) message: String,
    /// Structured facts (the supported versions of an unsupported-version error); boxed, as
    /// it is rare and the error travels in every `Result`.
    pub(crate) data: Option<Box<Value>>,
}

impl RpcError {
    /// An error about the request with `id`.
    pub(crate) fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data`.
    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// The error as a JSON-RPC response.
    pub(crate) fn to_json(&self) -> Value {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = (**data).clone();
        }
        serde_json::json!({ "jsonrpc": "2.0", "id": self.id, "error": error })
    }
}

/// A JSON-RPC success response.
pub(crate) fn success(id: &Value, result: Value) -> Value {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// Read one message (module header for every rule).
pub(crate) fn parse(raw: &[u8]) -> Result<Message, RpcError> {
    let invalid = |id: Value, message: &str| RpcError::new(id, INVALID_REQUEST, message);
    match strict_json::check(raw) {
        Ok(()) => {}
        Err(StrictJsonError::Syntax(_)) => {
            return Err(RpcError::new(
                Value::Null,
                PARSE_ERROR,
                "Parse error: not JSON",
            ))
        }
        Err(e @ StrictJsonError::TooDeep { .. }) => {
            return Err(RpcError::new(
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: {e}"),
            ))
        }
        Err(e) => return Err(invalid(Value::Null, &format!("Invalid request: {e}"))),
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|_| RpcError::new(Value::Null, PARSE_ERROR, "Parse error: not JSON"))?;
    let mut object =
        match value {
            Value::Object(object) => object,
            Value::Array(_) => return Err(invalid(
                Value::Null,
                "Invalid request: batches are not accepted (send one JSON-RPC message per POST)",
            )),
            _ => {
                return Err(invalid(
                    Value::Null,
                    "Invalid request: a message is a JSON object",
                ))
            }
        };
    let id = match object.remove("id") {
        None => None,
        Some(id @ Value::String(_)) if id.as_str().is_some_and(|s| s.len() <= MAX_ID_LEN) => {
            Some(id)
        }
        Some(id @ Value::Number(_)) if id.is_i64() || id.is_u64() => Some(id),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "Invalid request: id must be a string (at most 256 bytes) or an integer",
            ))
        }
    };
    let echo = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(echo, "Invalid request: jsonrpc must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(invalid(echo, "Invalid request: method must be a string")),
        None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => {
            return Ok(Message::Response)
        }
        None => return Err(invalid(echo, "Invalid request: method is missing")),
    };
    let params = match object.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Err(RpcError::new(
                echo,
                INVALID_PARAMS,
                "Invalid params: params must be an object",
            ))
        }
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_get_the_right_code_and_never_panic() {
        let deep = "[".repeat(strict_json::MAX_DEPTH + 2) + &"]".repeat(strict_json::MAX_DEPTH + 2);
        let cases: &[(&str, i64, Value)] = &[
            ("", PARSE_ERROR, Value::Null),
            ("{", PARSE_ERROR, Value::Null),
            ("nul", PARSE_ERROR, Value::Null),
            ("\u{feff}{}", PARSE_ERROR, Value::Null),
            (&deep, PARSE_ERROR, Value::Null),
            (
                r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e999}}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            ("[]", INVALID_REQUEST, Value::Null),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            ("42", INVALID_REQUEST, Value::Null),
            ("\"ping\"", INVALID_REQUEST, Value::Null),
            ("null", INVALID_REQUEST, Value::Null),
            (
                r#"{"id":1,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::from(1),
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::from(1),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                INVALID_REQUEST,
                Value::from(1),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"a"}"#,
                INVALID_REQUEST,
                Value::from("a"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
                INVALID_PARAMS,
                Value::from(1),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#,
                INVALID_PARAMS,
                Value::from(1),
            ),
        ];
        for (raw, code, id) in cases {
            let error = parse(raw.as_bytes()).expect_err(raw);
            assert_eq!(error.code, *code, "{raw}");
            assert_eq!(&error.id, id, "{raw}");
            assert_eq!(error.to_json()["jsonrpc"], "2.0");
        }
        let long_id = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","method":"ping"}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert_eq!(parse(long_id.as_bytes()).unwrap_err().code, INVALID_REQUEST);
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"r1","method":"tools/list"}"#).unwrap(),
            Message::Request {
                id: "r1".into(),
                method: "tools/list".into(),
                params: Map::new()
            }
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            Message::Notification {
                method: "notifications/initialized".into()
            }
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap(),
            Message::Response
        );
        let Message::Request { params, .. } =
            parse(br#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"a"}}"#)
                .unwrap()
        else {
            panic!("a request")
        };
        assert_eq!(params["name"], "a");
    }
}
