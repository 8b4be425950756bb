//! The MCP door (`/mcp`) with real clients: the official TypeScript SDK client over streamable
//! HTTP and through `portcullis mcp stdio` (the real binary), the SDK's RFC 9728 discovery and
//! OAuth client-credentials flow against the real identity provider, raw HTTP for the
//! stateless 2026-07-28 revision and for malformed JSON-RPC; a real loopback upstream behind
//! it all.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use super::support;
use super::support::auth::{
    self, jwks_server, keys, now, sign, with_kid, Idp, JwksServer, Keys, API,
};

const ISS: &str = "https://issuer.test";

/// A runtime behind `oidc_jwks` auth: service `svc` (getItem, getStatus, createItem,
/// deleteItem) and service `other` (getOther) on a recording upstream. `svc:createItem` needs
/// an approval grant, `svc:deleteItem` is denied by policy.
struct Door {
    keys: Keys,
    _jwks: JwksServer,
    upstream: support::RecordingUpstream,
    rt: support::TestRuntime,
}

async fn door() -> Door {
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

async fn runtime(upstream: &support::RecordingUpstream, auth: Value) -> support::TestRuntime {
    let id =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let svc = json!({
        "/items/{id}": {
            "get": { "operationId": "getItem", "summary": "Read an item", "security": [], "parameters": id },
            "delete": { "operationId": "deleteItem", "security": [], "parameters": id }
        },
        "/status/{code}": { "get": { "operationId": "getStatus", "security": [],
            "parameters": [{ "name": "code", "in": "path", "required": true, "schema": { "type": "integer" } }] } },
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
    fn token(&self, sub: &str, scope: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("r1".into());
        let now = now();
        let claims = json!({ "iss": ISS, "aud": API, "sub": sub, "exp": now + 600, "iat": now, "scope": scope });
        sign(&header, &claims, &self.keys.rsa)
    }

    fn mcp(&self) -> String {
        format!("{}/mcp", self.rt.url)
    }
}

/// Run tests/peers/mcp/door-client.mjs (the official SDK client) and read its one JSON line.
async fn sdk(mode: &str, target: &str, env: &[(&str, &str)]) -> Value {
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
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(
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
async fn initialize(rt: &support::TestRuntime, token: &str) -> String {
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

fn names(tools: &Value) -> Vec<String> {
    let mut names: Vec<String> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The SDK client lists the caller's filtered catalog and calls through the whole pipeline:
/// a real upstream answer, an upstream 404 as a tool error, an approval-required call that says
/// how to get approved (and runs once an approver grants it), a policy denial, a tool outside
/// the envelope (403), bad arguments; the caller's token never reaches the upstream and every
/// record names the MCP session and client.
#[tokio::test]
async fn sdk_client_lists_the_filtered_catalog_and_calls_through_the_pipeline() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let calls = json!([
        { "name": "svc.getItem", "arguments": { "id": "42" } },
        { "name": "svc.getStatus", "arguments": { "code": 404 } },
        { "name": "svc.createItem", "arguments": { "body": { "title": "x" } } },
        { "name": "svc.deleteItem", "arguments": { "id": "1" } },
        { "name": "other.getOther", "arguments": {} },
        { "name": "svc.getItem", "arguments": {} },
    ]);
    let out = sdk(
        "http",
        &d.mcp(),
        &[("TOKEN", alice.as_str()), ("CALLS", &calls.to_string())],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(out["protocolVersion"], "2025-11-25");
    assert_eq!(out["serverInfo"]["name"], "portcullis");
    // The envelope (bundle:svc) and policy.deny filter the list, as the catalog route does.
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    let get_item = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "svc.getItem")
        .unwrap();
    assert_eq!(get_item["title"], "Read an item");
    assert_eq!(get_item["annotations"]["readOnlyHint"], true);
    assert_eq!(get_item["annotations"]["destructiveHint"], false);
    assert_eq!(get_item["inputSchema"]["required"], json!(["id"]));

    let results = out["results"].as_array().unwrap();
    let ok = &results[0]["result"];
    assert_eq!(ok["isError"], false, "{ok}");
    assert_eq!(ok["structuredContent"]["statusCode"], 200);
    assert_eq!(ok["structuredContent"]["body"]["path"], "/items/42");
    assert!(text(ok).contains("/items/42"));
    let unavailable = &results[1]["result"];
    assert_eq!(unavailable["isError"], true);
    assert_eq!(unavailable["structuredContent"]["statusCode"], 404);
    let approval = &results[2]["result"];
    assert_eq!(approval["isError"], true);
    let help = text(approval);
    assert!(
        help.contains("needs approval")
            && help.contains(&format!("{}/v1/approvals", d.rt.url))
            && help.contains("\"toolId\":\"svc:createItem\"")
            && help.contains("\"principal\":\"alice\"")
            && help.contains("the approve scope"),
        "{help}"
    );
    let denied = &results[3]["result"];
    assert_eq!(denied["isError"], true);
    assert!(text(denied).contains("denied by policy"), "{denied}");
    assert!(
        results[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{}",
        results[4]
    );
    let missing = &results[5]["result"];
    assert_eq!(missing["isError"], true);
    assert!(
        text(missing).contains("missing required argument \"id\""),
        "{missing}"
    );
    assert_eq!(out["terminated"], true);

    // Only the two allowed calls reached the upstream, and never with the caller's token.
    let seen: Vec<String> = d
        .upstream
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert_eq!(seen, ["GET /items/42", "GET /status/404"]);
    assert!(d
        .upstream
        .requests()
        .iter()
        .all(|r| !r.headers.contains_key("authorization")));

    // Every record of the call names the MCP session and client.
    let audit = d.rt.audit_file().await;
    let session = out["sessionId"].as_str().unwrap();
    let records: Vec<&Value> = audit
        .iter()
        .filter(|r| r["toolId"] == "svc:getItem")
        .collect();
    assert!(
        records.iter().any(|r| r["eventType"] == "tool_execution"),
        "{records:?}"
    );
    for record in &records {
        assert_eq!(record["mcp"]["sessionId"], session, "{record}");
        assert_eq!(record["mcp"]["clientName"], "door-test");
        assert_eq!(record["mcp"]["clientVersion"], "1.2.3");
        assert_eq!(record["mcp"]["protocolVersion"], "2025-11-25");
    }
    let connect = audit
        .iter()
        .find(|r| r["toolId"] == "mcp.initialize")
        .expect("the session's opening is recorded");
    assert_eq!(connect["eventType"], "authenticated_connect");
    assert_eq!(connect["principal"], "alice");
    assert_eq!(connect["mcp"]["sessionId"], session);
    let denial = audit
        .iter()
        .find(|r| r["toolId"] == "svc:createItem")
        .unwrap();
    assert_eq!(denial["reasonCode"], "approval_required");

    // An approver grants the exact call the error described; the same MCP call then runs.
    let bob = d.token("bob", "bundle:svc approve");
    let grant = d
        .rt
        .client
        .post(format!("{}/v1/approvals", d.rt.url))
        .bearer_auth(&bob)
        .json(
            &json!({ "toolId": "svc:createItem", "principal": "alice", "body": { "title": "x" } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 201);
    let calls = json!([{ "name": "svc.createItem", "arguments": { "body": { "title": "x" } } }]);
    let out = sdk(
        "http",
        &d.mcp(),
        &[("TOKEN", alice.as_str()), ("CALLS", &calls.to_string())],
    )
    .await;
    let approved = &out["results"][0]["result"];
    assert_eq!(approved["isError"], false, "{out}");
    assert_eq!(approved["structuredContent"]["body"]["method"], "POST");
    let created = d
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(&created.body[..], br#"{"title":"x"}"#);
}

/// A tool outside the caller's envelope is refused with 403 `insufficient_scope` naming the
/// scope that grants it and this resource's metadata (the SDK's step-up trigger).
#[tokio::test]
async fn a_tool_outside_the_envelope_is_403_insufficient_scope_naming_the_scope() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let session = initialize(&d.rt, &alice).await;
    let raw = post(
        &d.rt,
        Some(&alice),
        &[("mcp-session-id", &session), ("mcp-protocol-version", "2025-06-18")],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"other.getOther","arguments":{}}}"#,
    )
    .await;
    assert_eq!(raw.status, 403, "{}", raw.body);
    let challenge = raw.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"tool:other:getOther\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            d.rt.url
        )),
        "{challenge}"
    );
    assert!(d.upstream.requests().is_empty());
}

/// 401 -> `resource_metadata` -> RFC 9728 metadata for `/mcp`, read by the SDK's own discovery
/// code; then the SDK's OAuth client-credentials flow gets a token from the real identity
/// provider for the `/mcp` resource and lists tools; a call outside its scopes gets the 403
/// challenge the SDK steps up on. A token for another audience is refused.
#[tokio::test]
async fn sdk_oauth_discovers_the_resource_metadata_and_gets_a_token_for_mcp() {
    let idp = Idp::start_with("bundle:svc", "m", &[("MCP_RESOURCE_AUDIENCE", API)]).await;
    let upstream = support::start_upstream().await;
    let rt = runtime(
        &upstream,
        json!({ "validationProfile": "oidc_jwks", "issuer": idp.issuer,
            "jwksURL": format!("{}/jwks", idp.issuer), "audience": API }),
    )
    .await;
    let mcp = format!("{}/mcp", rt.url);
    let found = sdk("discover", &mcp, &[]).await;
    assert_eq!(found["status"], 401);
    assert_eq!(
        found["resourceMetadataUrl"],
        format!("{}/.well-known/oauth-protected-resource/mcp", rt.url)
    );
    assert_eq!(found["metadata"]["resource"], mcp);
    assert_eq!(
        found["metadata"]["authorization_servers"],
        json!([idp.issuer])
    );

    let calls = json!([{ "name": "other.getOther", "arguments": {} }]);
    let out = sdk(
        "http",
        &mcp,
        &[
            ("CLIENT_ID", "runtime-client"),
            ("CLIENT_SECRET", "runtime-secret"),
            ("SCOPE", "bundle:svc"),
            ("CALLS", &calls.to_string()),
        ],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    // other.getOther is not listed; its 403 names `insufficient_scope`, which the SDK reads as
    // a step-up challenge: it fetches a token again and retries once. (SDK 1.32's
    // client-credentials provider always asks for its configured scope, so the retry is
    // refused again and nothing runs; an authorization-code client asks for the named scope.)
    let refused = out["results"][0]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        refused.contains("after trying upscoping"),
        "{}",
        out["results"]
    );
    assert!(upstream.requests().is_empty());

    // A token the same provider issued for another API is not for this resource.
    let other = idp.token("bundle:svc", auth::OTHER).await;
    let raw = post(
        &rt,
        Some(&other),
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!(raw.status, 401);
    let challenge = raw.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"invalid_token\"")
            && challenge.contains("oauth-protected-resource/mcp"),
        "{challenge}"
    );
}

/// The stateless 2026-07-28 revision: no initialize and no session; `server/discover`; the
/// routing headers must repeat the body (400 otherwise); results carry `resultType` and
/// caching hints.
#[tokio::test]
async fn stateless_2026_07_28_requests_stand_alone_and_headers_must_match_the_body() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "stateless-probe", "version": "9" }
    });
    let message = |method: &str, mut params: Value| {
        params["_meta"] = meta.clone();
        json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string()
    };
    let send = |method: &'static str, name: Option<&'static str>, body: String| {
        let d = &d;
        let alice = alice.clone();
        async move {
            let mut headers = vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", method),
            ];
            if let Some(name) = name {
                headers.push(("mcp-name", name));
            }
            post(&d.rt, Some(&alice), &headers, &body).await
        }
    };

    let discover = send(
        "server/discover",
        None,
        message("server/discover", json!({})),
    )
    .await;
    assert_eq!(discover.status, 200, "{}", discover.body);
    let result = &discover.body["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
    assert_eq!(result["resultType"], "complete");
    assert!(result["capabilities"]["tools"].is_object());
    assert!(discover.headers.get("mcp-session-id").is_none());

    let list = send("tools/list", None, message("tools/list", json!({}))).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        names(&list.body["result"]["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    assert_eq!(list.body["result"]["cacheScope"], "private");
    assert!(list.body["result"]["ttlMs"].as_u64().is_some());

    let call = message(
        "tools/call",
        json!({ "name": "svc.getItem", "arguments": { "id": "7" } }),
    );
    let ok = send("tools/call", Some("svc.getItem"), call.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.body["result"]["structuredContent"]["body"]["path"],
        "/items/7"
    );
    assert_eq!(ok.body["result"]["resultType"], "complete");
    let audit = d.rt.audit_file().await;
    let record = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["protocolVersion"], "2026-07-28");
    assert_eq!(record["mcp"]["clientName"], "stateless-probe");
    assert!(record["mcp"].get("sessionId").is_none());

    // Mismatches: the name, the method, a missing name header; an unknown revision.
    for (method, name, body) in [
        ("tools/call", Some("svc.getStatus"), call.clone()),
        ("tools/list", Some("svc.getItem"), call.clone()),
        ("tools/call", None, call.clone()),
    ] {
        let raw = send(method, name, body).await;
        assert_eq!(raw.status, 400, "{method} {name:?}: {}", raw.body);
        assert_eq!(raw.body["error"]["code"], -32020);
        assert_eq!(raw.body["id"], 7);
    }
    let no_meta =
        json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {} }).to_string();
    assert_eq!(
        send("tools/list", None, no_meta).await.body["error"]["code"],
        -32602
    );
    let future = post(
        &d.rt,
        Some(&alice),
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "ping"),
        ],
        &message("ping", json!({})).replace("2026-07-28", "2099-01-01"),
    )
    .await;
    assert_eq!(future.status, 400);
    assert_eq!(future.body["error"]["code"], -32022);
    assert_eq!(future.body["error"]["data"]["requested"], "2099-01-01");
    let unknown = send("resources/list", None, message("resources/list", json!({}))).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], -32601);
    // Only the one matching call ran.
    assert_eq!(d.upstream.requests().len(), 1);
}

/// Every malformed message gets its JSON-RPC error (and the runtime keeps serving); sessions are
/// required, the caller's own, and end on DELETE; the edge applies as for the HTTP API.
#[tokio::test]
async fn malformed_messages_and_session_misuse_get_precise_errors() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let mallory = d.token("mallory", "bundle:svc");
    let session = initialize(&d.rt, &alice).await;
    let with_session = [("mcp-session-id", session.as_str())];
    let deep = "[".repeat(200) + &"]".repeat(200);
    let huge_id = format!(
        r#"{{"jsonrpc":"2.0","id":"{}","method":"ping"}}"#,
        "x".repeat(300)
    );
    let table: Vec<(&str, &str, u16, i64)> = vec![
        ("not JSON", "{\"jsonrpc\":", 400, -32700),
        ("empty body", "", 400, -32700),
        ("too deep", &deep, 400, -32700),
        (
            "batch",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            400,
            -32600,
        ),
        ("empty batch", "[]", 400, -32600),
        ("a number", "1", 400, -32600),
        ("no jsonrpc", r#"{"id":1,"method":"ping"}"#, 400, -32600),
        (
            "jsonrpc 1.0",
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            400,
            -32600,
        ),
        (
            "method not a string",
            r#"{"jsonrpc":"2.0","id":1,"method":["ping"]}"#,
            400,
            -32600,
        ),
        (
            "id null",
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            400,
            -32600,
        ),
        (
            "id an object",
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            400,
            -32600,
        ),
        ("id too long", &huge_id, 400, -32600),
        (
            "duplicate key",
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#,
            400,
            -32600,
        ),
        (
            "params an array",
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}"#,
            200,
            -32602,
        ),
        (
            "unknown method",
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#,
            200,
            -32601,
        ),
        (
            "discover before 2026-07-28",
            r#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
            200,
            -32601,
        ),
        (
            "call without a name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            200,
            -32602,
        ),
        (
            "arguments not an object",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"svc.getItem","arguments":[1]}}"#,
            200,
            -32602,
        ),
        (
            "unknown tool",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#,
            200,
            -32602,
        ),
        (
            "inexact number",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"svc.getStatus","arguments":{"code":1e400}}}"#,
            400,
            -32600,
        ),
    ];
    for (case, body, status, code) in table {
        let raw = post(&d.rt, Some(&alice), &with_session, body).await;
        assert_eq!(raw.status, status, "{case}: {}", raw.body);
        assert_eq!(raw.body["jsonrpc"], "2.0", "{case}");
        assert_eq!(raw.body["error"]["code"], code, "{case}: {}", raw.body);
    }
    // Notifications and responses are accepted with no body.
    let note = post(
        &d.rt,
        Some(&alice),
        &with_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(note.status, 202);
    let answer = post(
        &d.rt,
        Some(&alice),
        &with_session,
        r#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
    )
    .await;
    assert_eq!(answer.status, 202);
    let ping = r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#;
    let pong = post(&d.rt, Some(&alice), &with_session, ping).await;
    assert_eq!((pong.status, &pong.body["result"]), (200, &json!({})));

    // Sessions: required, the caller's own, a known revision, ended by DELETE.
    let missing = post(&d.rt, Some(&alice), &[], ping).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_i64()),
        (400, Some(-32600))
    );
    let unknown = post(&d.rt, Some(&alice), &[("mcp-session-id", "0123")], ping).await;
    assert_eq!(unknown.status, 404);
    let stolen = post(&d.rt, Some(&mallory), &with_session, ping).await;
    assert_eq!(
        stolen.status, 404,
        "another principal cannot use alice's session"
    );
    let version = |v: &'static str| {
        let (rt, alice, session) = (&d.rt, alice.clone(), session.clone());
        async move {
            let headers = [
                ("mcp-session-id", session.as_str()),
                ("mcp-protocol-version", v),
            ];
            post(rt, Some(&alice), &headers, ping).await
        }
    };
    // Older SDKs name their own handshake revision in a session; an unknown revision is refused.
    assert_eq!(version("2025-03-26").await.status, 200);
    let unknown_version = version("1999-01-01").await;
    assert_eq!(unknown_version.status, 400);
    assert_eq!(unknown_version.body["error"]["code"], -32022);
    assert_eq!(
        unknown_version.body["error"]["data"]["requested"],
        "1999-01-01"
    );
    let delete = |token: String| {
        let (rt, session) = (&d.rt, session.clone());
        async move {
            rt.client
                .delete(format!("{}/mcp", rt.url))
                .bearer_auth(token)
                .header("mcp-session-id", session)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(delete(mallory.clone()).await, 404);
    assert_eq!(delete(alice.clone()).await, 200);
    assert_eq!(
        post(&d.rt, Some(&alice), &with_session, ping).await.status,
        404
    );
    assert_eq!(delete(alice.clone()).await, 404);

    // Transport rules and the edge.
    let no_token = post(&d.rt, None, &[], ping).await;
    assert_eq!(no_token.status, 401);
    assert!(no_token.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("/.well-known/oauth-protected-resource/mcp"));
    let html =
        d.rt.client
            .post(d.mcp())
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .header("accept", "text/html")
            .body(ping)
            .send()
            .await
            .unwrap();
    assert_eq!(html.status(), 406);
    let form =
        d.rt.client
            .post(d.mcp())
            .bearer_auth(&alice)
            .header("content-type", "text/plain")
            .body(ping)
            .send()
            .await
            .unwrap();
    assert_eq!(form.status(), 415);
    let cross = post(
        &d.rt,
        Some(&alice),
        &[("origin", "https://evil.example")],
        ping,
    )
    .await;
    assert_eq!(cross.status, 403);
    // DNS rebinding: a Host that does not name this runtime never reaches the door.
    let rebound = post(&d.rt, Some(&alice), &[("host", "evil.example")], ping).await;
    assert_eq!(rebound.status, 421);
    let get =
        d.rt.client
            .get(d.mcp())
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST, DELETE");
    // Still serving after all of it; nothing reached the upstream.
    assert_eq!(initialize(&d.rt, &alice).await.len(), 32);
    assert!(d.upstream.requests().is_empty());
}

/// `portcullis mcp stdio` (the real binary) relays the SDK's stdio client to the runtime: the
/// same filtered list and the same pipeline, the token read from a file.
#[tokio::test]
async fn the_stdio_relay_serves_the_sdk_stdio_client_the_same_filtered_door() {
    let d = door().await;
    let token_file = d.rt.dir.path().join("mcp-token");
    std::fs::write(&token_file, d.token("alice", "bundle:svc")).unwrap();
    let calls = json!([{ "name": "svc.getItem", "arguments": { "id": "9" } }, { "name": "other.getOther" }]);
    let out = sdk(
        "stdio",
        env!("CARGO_BIN_EXE_portcullis"),
        &[
            ("PORTCULLIS_MCP_URL", d.rt.url.as_str()),
            ("PORTCULLIS_MCP_TOKEN_FILE", token_file.to_str().unwrap()),
            ("CALLS", &calls.to_string()),
        ],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    assert_eq!(
        out["results"][0]["result"]["structuredContent"]["body"]["path"],
        "/items/9"
    );
    // The runtime's 403 comes back as a JSON-RPC error naming the status and the challenge.
    let refused = out["results"][1]["error"]["message"].as_str().unwrap();
    assert!(
        refused.contains("403") && refused.contains("insufficient_scope"),
        "{refused}"
    );
    assert_eq!(d.upstream.requests().len(), 1);
}

/// An MCP source's tools are served alike (runtime auth off, loopback): listed with their own
/// input schema, called on the source's pooled session, the server's result passed through.
#[tokio::test]
async fn an_mcp_sources_tools_are_served_and_called_through_the_door() {
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "mcpServers": { "everything": {
            "type": "stdio", "command": support::mcp::everything_bin().to_str().unwrap() } }
    });
    let rt = support::start_runtime(config, &[]).await;
    let calls =
        json!([{ "name": "everything.echo", "arguments": { "message": "through the door" } }]);
    let out = sdk(
        "http",
        &format!("{}/mcp", rt.url),
        &[("CALLS", &calls.to_string())],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    let echo = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything.echo")
        .unwrap_or_else(|| panic!("no everything.echo in {}", out["tools"]));
    assert_eq!(
        echo["inputSchema"]["properties"]["message"]["type"],
        "string"
    );
    let result = &out["results"][0]["result"];
    assert!(!result["isError"].as_bool().unwrap_or(false), "{result}");
    assert!(text(result).contains("through the door"), "{result}");
    let audit = rt.audit().await;
    let record = audit
        .iter()
        .find(|r| r["toolId"] == "everything:echo" && r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["clientName"], "door-test");
}

/// The official Python client (PyPI `mcp` 2.3) probes `server/discover`, settles on the
/// stateless 2026-07-28 revision, and lists and calls through the door with a bearer token.
#[tokio::test]
async fn the_python_sdk_client_speaks_the_stateless_revision_with_the_door() {
    let python_peers = support::peer_scripts_dir().join("python");
    assert!(
        python_peers.join("mcp").exists(),
        "{} is missing: run `python3 -m pip install --target tests/peers/python -r tests/peers/requirements.txt` (tests/run does)",
        python_peers.display()
    );
    let d = door().await;
    let calls = json!([{ "name": "svc.getItem", "arguments": { "id": "py" } }]);
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(support::peer_scripts_dir().join("mcp/door-client.py"))
        .arg(d.mcp())
        .env("PYTHONPATH", &python_peers)
        .env("TOKEN", d.token("alice", "bundle:svc"))
        .env("CALLS", calls.to_string())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the Python client finished within 60 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let out: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(out["protocolVersion"], "2026-07-28");
    assert_eq!(out["serverInfo"]["name"], "portcullis");
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    let result = &out["results"][0];
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["body"]["path"], "/items/py");
    let audit = d.rt.audit_file().await;
    let record = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["protocolVersion"], "2026-07-28");
}

/// At 2026-07-28 an argument the tool's schema marks with `x-mcp-header` must be repeated in
/// its `Mcp-Param-*` header (verbatim or base64-wrapped); a missing, extra or different header
/// is 400 -32020 and the call never reaches the MCP server.
#[tokio::test]
async fn stateless_calls_must_mirror_marked_arguments_in_mcp_param_headers() {
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "mcpServers": { "hdr": {
            "type": "stdio", "command": "node",
            "args": [support::peer_scripts_dir().join("mcp/header-server.mjs").to_str().unwrap()] } }
    });
    let rt = support::start_runtime(config, &[]).await;
    let call = |region: Value| {
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "hdr.route", "arguments": { "region": region, "text": "hi" },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            } } })
        .to_string()
    };
    let send = |body: String, param: Option<&'static str>| {
        let rt = &rt;
        async move {
            let mut headers = vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "hdr.route"),
            ];
            if let Some(value) = param {
                headers.push(("mcp-param-region", value));
            }
            post(rt, None, &headers, &body).await
        }
    };
    let ok = send(call(json!("eu-west")), Some("eu-west")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        text(&ok.body["result"]).contains("\"region\":\"eu-west\""),
        "{}",
        ok.body
    );
    let wrapped = send(call(json!("eu-west")), Some("=?base64?ZXUtd2VzdA==?=")).await;
    assert_eq!(wrapped.status, 200, "{}", wrapped.body);
    for (body, param) in [
        (call(json!("eu-west")), Some("us-east")),
        (call(json!("eu-west")), None),
        (call(Value::Null), Some("eu-west")),
    ] {
        let refused = send(body, param).await;
        assert_eq!(refused.status, 400, "{param:?}: {}", refused.body);
        assert_eq!(refused.body["error"]["code"], -32020);
    }
    let audit = rt.audit().await;
    let ran = audit
        .iter()
        .filter(|r| r["toolId"] == "hdr:route" && r["eventType"] == "tool_execution")
        .count();
    assert_eq!(ran, 2, "only the two matching calls ran");
}
