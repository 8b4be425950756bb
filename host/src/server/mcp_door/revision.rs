//! MCP protocol revisions, negotiated per request, transport-free.
//!
//! | revision | how a client speaks it | session |
//! |---|---|---|
//! | 2025-06-18, 2025-11-25 | `initialize` (the answer names the revision: the client's when served here, else [`LATEST_HANDSHAKE`]), then `MCP-Protocol-Version` on every request (any handshake-era revision is accepted there: older SDKs send theirs, and the session's negotiated revision governs) | `Mcp-Session-Id` from `initialize` |
//! | 2026-07-28 ([`STATELESS`]) | every request stands alone: `MCP-Protocol-Version: 2026-07-28`, `Mcp-Method` (and `Mcp-Name` for `tools/call`) headers that repeat the body, and `params._meta` carrying the revision and the client's capabilities; `server/discover` instead of `initialize` | none |
//!
//! The stateless ladder ([`check_stateless`]), first failure wins (the order of the
//! reference SDK, so a client that disagrees with itself is told so before it is told its
//! version is unsupported):
//!
//! | rung | failure |
//! |---|---|
//! | a routing header (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) sent twice | [`HEADER_MISMATCH`] |
//! | `params._meta` is an object with the revision and `clientCapabilities` | [`INVALID_PARAMS`] |
//! | `MCP-Protocol-Version` equals the body's revision, `Mcp-Method` the method, `Mcp-Name` (`=?base64?…?=` decoded) the tool name | [`HEADER_MISMATCH`] (the door answers HTTP 400) |
//! | the revision is served | [`UNSUPPORTED_PROTOCOL_VERSION`] with `{supported, requested}` |

use base64::Engine as _;
use serde_json::{Map, Value};

use super::jsonrpc::{RpcError, HEADER_MISMATCH, INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION};

/// The revisions reached through `initialize`, oldest first.
pub(crate) const HANDSHAKE: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// The newest handshake revision: the counter-offer to a client asking for one not served.
pub(crate) const LATEST_HANDSHAKE: &str = "2025-11-25";
/// The stateless revision.
pub(crate) const STATELESS: &str = "2026-07-28";
/// Every handshake revision a client may name in `MCP-Protocol-Version` once a session is open
/// (older SDKs send the revision they were built for; the session's negotiated one governs).
const KNOWN_HANDSHAKE: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Every revision served, oldest first (`server/discover`'s `supportedVersions`).
pub(crate) const SUPPORTED: [&str; 3] = ["2025-06-18", "2025-11-25", STATELESS];

/// `_meta` keys of the stateless envelope.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key under which a stateless result names the server.
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The longest client name or version kept for the audit record.
const MAX_CLIENT_FIELD: usize = 128;

/// The revision answered to an `initialize` asking for `requested`.
pub(crate) fn negotiate(requested: Option<&str>) -> &'static str {
    HANDSHAKE
        .into_iter()
        .find(|v| Some(*v) == requested)
        .unwrap_or(LATEST_HANDSHAKE)
}

/// Whether `version` is a handshake-era revision (the request then needs a session).
pub(crate) fn is_handshake(version: &str) -> bool {
    KNOWN_HANDSHAKE.contains(&version)
}

/// What a client says it is (`clientInfo`), bounded, for the audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientInfo {
    /// `name`.
    pub(crate) name: Option<String>,
    /// `version`.
    pub(crate) version: Option<String>,
}

impl ClientInfo {
    /// Read `clientInfo`; anything else than strings is ignored, long strings are cut.
    pub(crate) fn from_value(value: Option<&Value>) -> Self {
        let field = |key: &str| {
            value
                .and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(|s| s.chars().take(MAX_CLIENT_FIELD).collect())
        };
        Self {
            name: field("name"),
            version: field("version"),
        }
    }
}

/// The routing headers of one request, as the door read them.
#[derive(Debug, Default)]
pub(crate) struct RoutingHeaders<'h> {
    /// `MCP-Protocol-Version`.
    pub(crate) protocol_version: Option<&'h str>,
    /// `Mcp-Method`.
    pub(crate) method: Option<&'h str>,
    /// `Mcp-Name`.
    pub(crate) name: Option<&'h str>,
    /// A routing header that appeared more than once (or was not visible ASCII).
    pub(crate) unreadable: Option<&'static str>,
}

/// Run the stateless ladder (module header) over one request.
pub(crate) fn check_stateless(
    id: &Value,
    method: &str,
    params: &Map<String, Value>,
    headers: &RoutingHeaders<'_>,
) -> Result<ClientInfo, RpcError> {
    let fail = |code, message: String| RpcError::new(id.clone(), code, message);
    if let Some(header) = headers.unreadable {
        return Err(fail(
            HEADER_MISMATCH,
            format!("{header} header appears more than once or is not readable"),
        ));
    }
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        return Err(fail(
            INVALID_PARAMS,
            format!("params._meta must be an object carrying {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"),
        ));
    };
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(fail(
            INVALID_PARAMS,
            format!(
                "params._meta is missing the required envelope key(s): {}",
                missing.join(", ")
            ),
        ));
    }
    let version = &meta[META_PROTOCOL_VERSION];
    if headers.protocol_version.is_none() || headers.protocol_version != version.as_str() {
        return Err(fail(
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match the request envelope's protocol version"
                .into(),
        ));
    }
    if headers.method != Some(method) {
        return Err(fail(
            HEADER_MISMATCH,
            "Mcp-Method header does not match the request body's method".into(),
        ));
    }
    if method == "tools/call" {
        if let Some(name) = params.get("name").filter(|n| !n.is_null()) {
            let header = headers.name.and_then(decode_header_value);
            if header.as_deref() != name.as_str() {
                return Err(fail(
                    HEADER_MISMATCH,
                    "Mcp-Name header does not match the request body's 'name' parameter".into(),
                ));
            }
        }
    }
    let version = version.as_str().unwrap_or_default();
    if version != STATELESS {
        return Err(fail(
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version".into(),
        )
        .with_data(unsupported(version)));
    }
    Ok(ClientInfo::from_value(meta.get(META_CLIENT_INFO)))
}

/// The `data` of an unsupported-version error.
pub(crate) fn unsupported(requested: &str) -> Value {
    serde_json::json!({ "supported": SUPPORTED, "requested": requested })
}

/// A header value as the client meant it: verbatim, or the payload of `=?base64?…?=`
/// (canonical base64 of UTF-8 only; anything else matches nothing).
pub(crate) fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(payload).ok()?;
    if engine.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(version: &str, name: Option<&str>) -> Map<String, Value> {
        let mut params = serde_json::json!({
            "_meta": {
                META_PROTOCOL_VERSION: version,
                META_CLIENT_CAPABILITIES: {},
                META_CLIENT_INFO: {"name": "probe", "version": "1"},
            }
        });
        if let Some(name) = name {
            params["name"] = name.into();
        }
        params.as_object().cloned().unwrap()
    }

    fn headers<'a>(version: &'a str, method: &'a str, name: Option<&'a str>) -> RoutingHeaders<'a> {
        RoutingHeaders {
            protocol_version: Some(version),
            method: Some(method),
            name,
            unreadable: None,
        }
    }

    #[test]
    fn handshake_negotiation_answers_the_clients_revision_or_the_latest() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2025-11-25")), "2025-11-25");
        assert_eq!(negotiate(Some("2024-11-05")), LATEST_HANDSHAKE);
        assert_eq!(negotiate(Some(STATELESS)), LATEST_HANDSHAKE);
        assert_eq!(negotiate(None), LATEST_HANDSHAKE);
    }

    #[test]
    fn the_stateless_ladder_checks_headers_against_the_body_in_order() {
        let id = Value::from(1);
        let ok = check_stateless(
            &id,
            "tools/call",
            &params(STATELESS, Some("a.b")),
            &headers(STATELESS, "tools/call", Some("a.b")),
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("probe"));
        let code = |method: &str, p: Map<String, Value>, h: RoutingHeaders<'_>| {
            check_stateless(&id, method, &p, &h).unwrap_err().code
        };
        // Wrong method header, wrong name header, wrong version header.
        assert_eq!(
            code(
                "tools/list",
                params(STATELESS, None),
                headers(STATELESS, "tools/call", None)
            ),
            HEADER_MISMATCH
        );
        assert_eq!(
            code(
                "tools/call",
                params(STATELESS, Some("a.b")),
                headers(STATELESS, "tools/call", Some("a.c"))
            ),
            HEADER_MISMATCH
        );
        assert_eq!(
            code(
                "tools/call",
                params(STATELESS, Some("a.b")),
                headers(STATELESS, "tools/call", None)
            ),
            HEADER_MISMATCH
        );
        assert_eq!(
            code(
                "ping",
                params(STATELESS, None),
                headers("2025-11-25", "ping", None)
            ),
            HEADER_MISMATCH
        );
        // The name header may be base64-wrapped; a non-canonical wrapper matches nothing.
        let wrapped = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode("a.b")
        );
        assert!(check_stateless(
            &id,
            "tools/call",
            &params(STATELESS, Some("a.b")),
            &headers(STATELESS, "tools/call", Some(&wrapped))
        )
        .is_ok());
        assert_eq!(
            code(
                "tools/call",
                params(STATELESS, Some("a.b")),
                headers(STATELESS, "tools/call", Some("=?base64?YS5i=?="))
            ),
            HEADER_MISMATCH
        );
        // No envelope, half an envelope.
        assert_eq!(
            code("ping", Map::new(), headers(STATELESS, "ping", None)),
            INVALID_PARAMS
        );
        let mut half = params(STATELESS, None);
        half["_meta"]
            .as_object_mut()
            .unwrap()
            .remove(META_CLIENT_CAPABILITIES);
        assert_eq!(
            code("ping", half, headers(STATELESS, "ping", None)),
            INVALID_PARAMS
        );
        // A revision both sides agree on but not served here.
        let error = check_stateless(
            &id,
            "ping",
            &params("2099-01-01", None),
            &headers("2099-01-01", "ping", None),
        )
        .unwrap_err();
        assert_eq!(error.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(error.data.unwrap()["supported"][2], STATELESS);
        // A duplicated routing header.
        let mut twice = headers(STATELESS, "ping", None);
        twice.unreadable = Some("mcp-method");
        assert_eq!(
            code("ping", params(STATELESS, None), twice),
            HEADER_MISMATCH
        );
    }
}
