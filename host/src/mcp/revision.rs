//! What the stateless MCP revision (2026-07-28) changes on the streamable HTTP wire, and how a
//! server that does not know it is recognised.
//!
//! rmcp runs the lifecycle (`ClientLifecycleMode::Auto` in `session`): `server/discover` first,
//! then every request carries `params._meta["io.modelcontextprotocol/protocolVersion"]`; a
//! server that answers `server/discover` with a correlated JSON-RPC error is an older one, and
//! rmcp falls back to the `initialize` handshake. The HTTP transport (`remote`) applies:
//!
//! | rule | where |
//! |---|---|
//! | a request whose `_meta` names 2026-07-28 or later is sent with `MCP-Protocol-Version`, `Mcp-Method` and, for `tools/call` and `prompts/get` (`params.name`) or `resources/read`/`subscribe`/`unsubscribe` (`params.uri`), `Mcp-Name` (SEP-2243; a value that is not plain visible ASCII goes as `=?base64?…?=`) | [`routing`] |
//! | such a request carries no `Mcp-Session-Id` and opens no `GET` stream: the revision has no session | `remote` |
//! | an HTTP 4xx whose body is a JSON-RPC error for the request is delivered as that error (the revision answers protocol errors that way) | [`correlated_error`] |
//! | an HTTP 4xx to `server/discover` without one (an older server: "not initialized", unknown method, unsupported version header) is delivered as a correlated `-32601` error, so rmcp falls back | [`discover_unsupported`] |
//!
//! A 401 is never turned into a fallback: it stays the transport's OAuth signal.

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

/// The first revision without a session (and with the routing headers).
pub(crate) const STATELESS: &str = "2026-07-28";

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// What the transport needs to know about one outgoing message.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outgoing {
    /// The JSON-RPC method (requests and notifications).
    pub(crate) method: Option<String>,
    /// The request id (requests only).
    pub(crate) id: Option<Value>,
    /// The routing headers, for a message of the stateless revision.
    pub(crate) routing: Option<Vec<(&'static str, HeaderValue)>>,
    /// The relay token of a relayed call (`_meta["dev.portcullis/relay"]`, see `relay`).
    pub(crate) relayed_call: Option<String>,
}

impl Outgoing {
    /// Read a serialized message.
    pub(crate) fn of(message: &Value) -> Self {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = message.get("id").filter(|id| !id.is_null()).cloned();
        let relayed_call = message
            .pointer("/params/_meta/dev.portcullis~1relay")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self {
            relayed_call,
            routing: method
                .as_deref()
                .and_then(|m| routing(m, message.get("params"))),
            method,
            id,
        }
    }

    /// Whether this is the `server/discover` probe.
    pub(crate) fn is_discover(&self) -> bool {
        self.method.as_deref() == Some("server/discover")
    }
}

/// The SEP-2243 headers of a request whose `_meta` names the stateless revision or later.
pub(crate) fn routing(
    method: &str,
    params: Option<&Value>,
) -> Option<Vec<(&'static str, HeaderValue)>> {
    let version = params?.get("_meta")?.get(META_PROTOCOL_VERSION)?.as_str()?;
    // Revisions are dated YYYY-MM-DD, so they order as strings.
    if version < STATELESS {
        return None;
    }
    let mut headers = vec![
        ("mcp-protocol-version", HeaderValue::from_str(version).ok()?),
        ("mcp-method", header_value(method)),
    ];
    let key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    };
    if let Some(name) = key.and_then(|k| params?.get(k)?.as_str()) {
        headers.push(("mcp-name", header_value(name)));
    }
    Some(headers)
}

/// A header value as SEP-2243 carries it: as is when it is plain visible ASCII (inner spaces
/// allowed), else `=?base64?<standard base64 of the UTF-8>?=`.
fn header_value(text: &str) -> HeaderValue {
    let padded = text.starts_with([' ', '\t']) || text.ends_with([' ', '\t']);
    let sentinel = text.starts_with("=?base64?") && text.ends_with("?=");
    let visible = text.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    let plain = visible && !padded && !sentinel;
    let text = if plain {
        text.to_owned()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        format!("=?base64?{encoded}?=")
    };
    // Only visible ASCII remains, which is always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether `body` is a JSON-RPC error answering the request `id`.
pub(crate) fn correlated_error(body: &[u8], id: &Value) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("error").is_some() && v.get("id") == Some(id))
}

/// The JSON-RPC error delivered for a `server/discover` an older server refused with `status`.
pub(crate) fn discover_unsupported(id: &Value, status: u16) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32601,
            "message": format!("server/discover is not supported (HTTP {status}): the server predates protocol {STATELESS}"),
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(headers: &[(&str, HeaderValue)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn stateless_requests_carry_the_routing_headers_and_older_ones_none() {
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "read_file", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        let out = Outgoing::of(&call);
        assert_eq!(out.id, Some(json!(7)));
        assert_eq!(
            names(&out.routing.unwrap()),
            [
                ("mcp-protocol-version".into(), "2026-07-28".into()),
                ("mcp-method".into(), "tools/call".into()),
                ("mcp-name".into(), "read_file".into()),
            ]
        );
        let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        assert_eq!(names(&Outgoing::of(&list).routing.unwrap()).len(), 2);
        let legacy = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "x", "_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}}});
        assert_eq!(Outgoing::of(&legacy).routing, None);
        let bare = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
        assert_eq!(Outgoing::of(&bare).routing, None);
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {
            "uri": "file:///a b", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        assert_eq!(
            names(&Outgoing::of(&read).routing.unwrap())[2].1,
            "file:///a b"
        );
    }

    #[test]
    fn a_name_that_is_not_plain_ascii_is_base64_wrapped() {
        for (name, wrapped) in [
            ("café", true),
            (" lead", true),
            ("trail\t", true),
            ("line\nbreak", true),
            ("=?base64?eA==?=", true),
            ("plain name", false),
        ] {
            let value = header_value(name);
            let text = value.to_str().unwrap();
            assert_eq!(text.starts_with("=?base64?"), wrapped, "{name:?} -> {text}");
            if wrapped {
                let inner = &text["=?base64?".len()..text.len() - 2];
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap();
                assert_eq!(decoded, name.as_bytes());
            }
        }
    }

    #[test]
    fn only_an_error_for_the_same_request_is_correlated() {
        let id = json!(3);
        assert!(correlated_error(
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32020,"message":"m"}}"#,
            &id
        ));
        assert!(!correlated_error(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Server not initialized"}}"#,
            &id
        ));
        assert!(!correlated_error(
            br#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
            &id
        ));
        assert!(!correlated_error(b"Bad Request", &id));
        let synthesized: Value = serde_json::from_str(&discover_unsupported(&id, 400)).unwrap();
        assert_eq!(synthesized["id"], 3);
        assert_eq!(synthesized["error"]["code"], -32601);
    }
}
