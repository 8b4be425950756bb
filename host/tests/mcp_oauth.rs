//! Transport OAuth for MCP: a streamable-HTTP MCP server built with the official SDK
//! (tests/peers/mcp/bearer-server.mjs) that accepts only JWT access tokens issued by the real
//! npm `oidc-provider` (tests/peers/idp/issuer.mjs). The runtime obtains the token by client
//! credentials, found through the issuer's OIDC discovery.

mod auth_support;
mod common;
mod mcp_support;

use std::time::Duration;

use auth_support::{Idp, API};
use common::*;
use mcp_support::NodeServer;
use serde_json::{json, Value};

fn config(idp: &Idp, server: &NodeServer, client_secret: &str) -> Value {
    json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "secured": {
            "type": "mcp",
            "transport": { "type": "streamable-http", "url": server.url("/mcp") },
            "oauth": {
                "mode": "clientCredentials",
                "issuer": idp.issuer,
                "clientId": { "type": "literal", "value": "runtime-client" },
                "clientSecret": { "type": "literal", "value": client_secret },
                "scopes": ["tools:read"],
                "audience": API,
            },
        } },
    })
}

fn tool_ids(rt: &TestRuntime) -> Vec<String> {
    rt.runtime
        .snapshot()
        .catalog
        .tools
        .iter()
        .map(|t| t.id.clone())
        .collect()
}

#[tokio::test]
async fn a_token_from_the_idp_lets_the_runtime_list_and_call_a_bearer_protected_server() {
    let idp = Idp::start("tools:read", "a").await;
    let server = NodeServer::bearer(&idp.issuer);
    let rt = start_runtime(config(&idp, &server, "runtime-secret"), &[]).await;
    assert!(
        tool_ids(&rt).contains(&"secured:whoami".to_owned()),
        "{:?}",
        rt.runtime.snapshot().source_errors
    );
    let (status, result) = rt
        .execute_json(json!({"toolId": "secured:whoami", "body": {}}))
        .await;
    assert_eq!(status, 200, "{result}");
    let text = result["body"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("runtime-client"),
        "the server saw the token's client: {text}"
    );
    let audit = serde_json::to_string(&rt.audit().await).unwrap();
    assert!(!audit.contains("eyJ"), "no token in the audit log");
    // The transport token lives in the instance's shared OAuth store: one 0600 file.
    let files: Vec<_> = std::fs::read_dir(rt.dir.path().join("state/oauth"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_wrong_client_secret_fails_the_source_closed_without_echoing_it() {
    let idp = Idp::start("tools:read", "a").await;
    let server = NodeServer::bearer(&idp.issuer);
    let rt = start_runtime(config(&idp, &server, "CANARY-wrong-secret"), &[]).await;
    assert!(tool_ids(&rt).is_empty());
    let errors = rt.runtime.snapshot().source_errors.clone();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("token endpoint answered 401"),
        "{errors:?}"
    );
    assert!(!format!("{errors:?}").contains("CANARY"));
}

#[tokio::test]
async fn tools_list_changed_on_the_server_stream_rebuilds_the_catalog() {
    let idp = Idp::start("tools:read", "a").await;
    let server = NodeServer::bearer(&idp.issuer);
    let rt = start_runtime(config(&idp, &server, "runtime-secret"), &[]).await;
    assert!(!tool_ids(&rt).contains(&"secured:added".to_owned()));
    let (status, result) = rt
        .execute_json(json!({"toolId": "secured:add-tool", "body": {}}))
        .await;
    assert_eq!(status, 200, "{result}");
    let rebuilt = eventually(Duration::from_secs(10), || async {
        tool_ids(&rt).contains(&"secured:added".to_owned())
    })
    .await;
    assert!(
        rebuilt,
        "the announced tool is catalogued without a manual refresh"
    );
    let (status, _) = rt
        .execute_json(json!({"toolId": "secured:added", "body": {}}))
        .await;
    assert_eq!(status, 200);
}
