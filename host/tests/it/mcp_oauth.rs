//! Transport OAuth for MCP: a streamable-HTTP MCP server built with the official SDK
//! (tests/peers/mcp/bearer-server.mjs) that accepts only JWT access tokens issued by the real
//! npm `oidc-provider` (tests/peers/idp/issuer.mjs). The runtime obtains the token by client
//! credentials, found through the issuer's OIDC discovery.

use super::support;
use super::support::auth;
use super::support::mcp;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth::{Idp, API};
use mcp::NodeServer;
use serde_json::{json, Value};
use support::*;

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
                "clientAuthMethod": "client_secret_basic",
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
    // `whoami` has no annotations: the reference runtime's POST safety defaults (issue #17).
    let snapshot = rt.runtime.snapshot();
    let whoami = snapshot
        .catalog
        .tools
        .iter()
        .find(|t| t.id == "secured:whoami");
    assert_eq!(
        whoami.unwrap().safety,
        portcullis::catalog::Safety::default()
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

/// A pass-through to the identity provider's token endpoint that counts the requests it sees.
async fn counting_token_endpoint(idp: &Idp) -> (String, Arc<AtomicUsize>) {
    use axum::http::{header, HeaderMap, StatusCode};
    let count = Arc::new(AtomicUsize::new(0));
    let target = format!("{}/token", idp.issuer);
    let client = reqwest::Client::new();
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (client, target, seen) = (client.clone(), target.clone(), seen.clone());
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut request = client.post(&target).body(body);
                for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
                    if let Some(value) = headers.get(&name) {
                        request = request.header(name, value.clone());
                    }
                }
                let response = request.send().await.unwrap();
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                let kind = response.headers().get(header::CONTENT_TYPE).cloned();
                let body = response.bytes().await.unwrap();
                let mut reply = axum::response::IntoResponse::into_response((status, body));
                if let Some(kind) = kind {
                    reply.headers_mut().insert(header::CONTENT_TYPE, kind);
                }
                reply
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

/// Have a freshly started bearer server fetch the issuer's JWKS now, with a token the test gets
/// directly from the IdP (not through the counted endpoint): under load, a first JWKS fetch that
/// times out answers 401, and the runtime then rightly gets a new token, which is not what this
/// test is about.
async fn warm_up(idp: &Idp, server: &NodeServer) {
    let token = idp.token("tools:read", API).await;
    let _ = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await;
}

#[tokio::test]
async fn the_transport_token_is_cached_per_source_two_executions_one_token_request() {
    let idp = Idp::start("tools:read", "a").await;
    let mut server = NodeServer::bearer(&idp.issuer);
    warm_up(&idp, &server).await;
    let (token_url, token_requests) = counting_token_endpoint(&idp).await;
    let mut config = config(&idp, &server, "runtime-secret");
    let oauth = &mut config["sources"]["secured"]["oauth"];
    oauth.as_object_mut().unwrap().remove("issuer");
    oauth["tokenURL"] = json!(token_url);
    let rt = start_runtime(config, &[]).await;
    assert!(
        tool_ids(&rt).contains(&"secured:whoami".to_owned()),
        "{:?}",
        rt.runtime.snapshot().source_errors
    );
    let whoami = json!({"toolId": "secured:whoami", "body": {}});
    assert_eq!(rt.execute_json(whoami.clone()).await.0, 200);
    // A restarted server forgets the session; the new session still uses the cached token.
    server.restart();
    warm_up(&idp, &server).await;
    assert_eq!(rt.execute_json(whoami).await.0, 200);
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "the catalog build and both executions share one token"
    );
}
