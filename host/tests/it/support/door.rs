//! The MCP door's fixture for `mcp_door*.rs`: a runtime behind `oidc_jwks` auth with an OpenAPI
//! catalog on a recording upstream, tokens for it, the official SDK client
//! (`tests/peers/mcp/door-client.mjs`) and raw JSON-RPC requests.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use crate::support;
use crate::support::auth::{jwks_server, keys, now, sign, with_kid, JwksServer, Keys, API};

pub const ISS: &str = "https://issuer.test";

/// A runtime behind `oidc_jwks` auth: service `svc` (getItem, getStatus, createItem,
/// deleteItem) and service `other` (getOther) on a recording upstream. `svc:createItem` needs
/// an approval grant, `svc:deleteItem` is denied by policy. `getItem` and `getStatus` declare
/// a JSON 200 response (so the door gives them an `outputSchema`).
pub struct Door {
    keys: Keys,
    _jwks: JwksServer,
    pub upstream: support::RecordingUpstream,
    pub rt: support::TestRuntime,
}

pub async fn door() -> Door {
    let keys = keys();
    let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
    let upstream = support::start_upstream().await;
    let rt = runtime(
        &upstream,
        json!({ "validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": jwks.url, "audience": API }),
    )
    .await;
    Door {
        keys,
        _jwks: jwks,
        upstream,
        rt,
    }
}

pub async fn runtime(upstream: &support::RecordingUpstream, auth: Value) -> support::TestRuntime {
    let id =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let svc = json!({
        "/items/{id}": {
            "get": { "operationId": "getItem", "summary": "Read an item", "security": [], "parameters": id,
                "responses": { "200": { "description": "the item", "content": { "application/json": { "schema": {
                    "type": "object", "required": ["method", "path"], "additionalProperties": false,
                    "properties": { "method": { "type": "string" }, "path": { "type": "string" } } } } } } } },
            "delete": { "operationId": "deleteItem", "security": [], "parameters": id }
        },
        "/status/{code}": { "get": { "operationId": "getStatus", "security": [],
            "parameters": [{ "name": "code", "in": "path", "required": true, "schema": { "type": "integer" } }],
            "responses": { "200": { "description": "fine", "content": { "application/json": { "schema": {
                "type": "object", "required": ["healthy"] } } } } } } },
        "/items": { "post": { "operationId": "createItem", "security": [],
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "properties": { "title": { "type": "string" } } } } } } } }
    });
    let other = json!({ "/other": { "get": { "operationId": "getOther", "security": [] } } });
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "a": { "type": "openapi", "uri": "a.json" }, "b": { "type": "openapi", "uri": "b.json" } },
        "services": { "svc": { "source": "a" }, "other": { "source": "b" } },
        "policy": { "deny": ["svc:deleteItem"], "approvalRequired": ["svc:createItem"],
            "approvals": { "mode": "grant" } },
        "runtime": { "server": { "auth": auth } }
    });
    support::start_runtime(
        config,
        &[
            ("a.json", support::openapi(&upstream.url, svc, json!({}))),
            ("b.json", support::openapi(&upstream.url, other, json!({}))),
        ],
    )
    .await
}

impl Door {
    pub fn token(&self, sub: &str, scope: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("r1".into());
        let now = now();
        let claims = json!({ "iss": ISS, "aud": API, "sub": sub, "exp": now + 600, "iat": now, "scope": scope });
        sign(&header, &claims, &self.keys.rsa)
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.rt.url)
    }
}

/// Run tests/peers/mcp/door-client.mjs (the official SDK client) and read its one JSON line.
pub async fn sdk(mode: &str, target: &str, env: &[(&str, &str)]) -> Value {
    let script = support::peer_scripts_dir().join("mcp/door-client.mjs");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .args([mode, target])
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the SDK client finished within 60 s")
        .expect("node is required (tests/peers installs the MCP SDK)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "the SDK client printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// One raw POST to `/mcp`.
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn post(
    rt: &support::TestRuntime,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let mut request = rt
        .client
        .post(format!("{}/mcp", rt.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Raw {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// `initialize` over raw HTTP; the session id.
pub async fn initialize(rt: &support::TestRuntime, token: &str) -> String {
    let raw = post(
        rt,
        Some(token),
        &[],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.body["result"]["protocolVersion"], "2025-06-18");
    raw.headers["mcp-session-id"].to_str().unwrap().to_owned()
}

pub fn names(tools: &Value) -> Vec<String> {
    let mut names: Vec<String> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

pub fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
