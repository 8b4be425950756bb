//! The upstream MCP client and protocol revisions: a real stateless server of the 2026-07-28
//! revision (the official Python SDK, `tests/peers/mcp/stateless_server.py`) is reached without
//! a session, with the routing headers it checks; older servers (server-everything, the SDK
//! servers of the other tests) still get the `initialize` handshake after `server/discover`.

use serde_json::{json, Value};

use crate::support::mcp::{self, NodeServer};
use crate::support::start_runtime;

fn text_of(result: &Value) -> String {
    result["body"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_stateless_server_is_called_without_a_session_and_with_the_routing_headers() {
    let server = NodeServer::python_stateless(60_000);
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "modern": { "type": "mcp",
            "transport": { "type": "streamable-http", "url": server.url("/mcp") } } },
    });
    let rt = start_runtime(config, &[]).await;
    let (_, catalog) = rt.get("/v1/catalog/effective").await;
    let catalog: Value = serde_json::from_str(&catalog).unwrap();
    let ids: Vec<&str> = catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["modern:add", "modern:headers"], "{catalog}");

    let (status, result) = rt
        .execute_json(json!({"toolId": "modern:add", "body": {"a": 2, "b": 3}}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["body"]["structuredContent"]["result"], 5, "{result}");

    // The server validates MCP-Protocol-Version, Mcp-Method and Mcp-Name against the body
    // (a mismatch is a -32020 error); this tool shows what it received.
    let (status, result) = rt
        .execute_json(json!({"toolId": "modern:headers", "body": {}}))
        .await;
    assert_eq!(status, 200, "{result}");
    let seen: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(seen["mcp-protocol-version"], "2026-07-28", "{seen}");
    assert_eq!(seen["mcp-method"], "tools/call", "{seen}");
    assert_eq!(seen["mcp-name"], "headers", "{seen}");
    assert!(seen.get("mcp-session-id").is_none(), "no session: {seen}");

    // A call the server refuses at the protocol level comes back as that error.
    let (status, error) = rt
        .execute_json(json!({"toolId": "modern:add", "body": {"a": "two"}}))
        .await;
    assert_eq!(status, 502, "{error}");
    rt.runtime.mcp.shutdown().await;
}

/// An older streamable-HTTP server answers `server/discover` with an HTTP 400 it does not tie
/// to the request; the client falls back to `initialize` on the same transport, keeps the
/// session and calls tools as before.
#[tokio::test]
async fn an_older_http_server_is_initialized_after_discover_is_refused() {
    let server = NodeServer::everything("streamableHttp");
    let config =
        mcp::everything_config(json!({"type": "streamable-http", "url": server.url("/mcp")}));
    let rt = start_runtime(config, &[]).await;
    let (status, result) = rt
        .execute_json(json!({"toolId": "everything:echo", "body": {"message": "hi"}}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert!(text_of(&result).contains("hi"), "{result}");
    rt.runtime.mcp.shutdown().await;
}

/// A stateless server has no stream to announce a changed tool list on; its `ttlMs` hint says
/// how long a list stays fresh, and the runtime lists it again when it expires.
#[tokio::test]
async fn a_tool_list_is_listed_again_when_its_ttl_expires() {
    let server = NodeServer::python_stateless(1_000);
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "modern": { "type": "mcp",
            "transport": { "type": "streamable-http", "url": server.url("/mcp") } } },
    });
    let rt = start_runtime(config, &[]).await;
    let first = rt.runtime.snapshot();
    let relisted = crate::support::eventually(std::time::Duration::from_secs(10), || {
        let first = first.clone();
        let runtime = rt.runtime.clone();
        async move { !std::sync::Arc::ptr_eq(&first, &runtime.snapshot()) }
    })
    .await;
    assert!(relisted, "the catalog was rebuilt after the list's ttlMs");
    rt.runtime.mcp.shutdown().await;
}
