//! The MCP door (`/mcp`) with real clients: the official TypeScript SDK client over streamable
//! HTTP (with a token, and with its OAuth discovery and client-credentials flow against the real
//! identity provider) and through `portcullis mcp stdio` (the real binary), the official Python
//! client at the stateless 2026-07-28 revision; a real loopback upstream and a real MCP server
//! behind it. Raw protocol checks are in `mcp_door_protocol.rs`.

use std::time::Duration;

use serde_json::{json, Value};

use super::support;
use super::support::auth::{self, Idp, API};
use super::support::door::*;

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
    assert_eq!(get_item["_meta"]["dev.portcullis/toolId"], "svc:getItem");
    assert_eq!(get_item["annotations"]["readOnlyHint"], true);
    assert_eq!(get_item["annotations"]["destructiveHint"], false);
    assert_eq!(get_item["inputSchema"]["required"], json!(["id"]));
    // The declared 200 schema is the outputSchema's body; the SDK client validates every
    // structuredContent against it (the 404 below included), so the calls prove conformance.
    assert_eq!(get_item["outputSchema"]["type"], "object");
    assert_eq!(
        get_item["outputSchema"]["allOf"][0]["then"]["properties"]["body"]["required"],
        json!(["method", "path"])
    );

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
    assert_eq!(
        found["metadata"]["scopes_supported"],
        json!(["bundle:other", "bundle:svc"])
    );

    let calls = json!([
        { "name": "other.getOther", "arguments": {} },
        { "name": "svc.getItem", "arguments": { "id": "ts-oauth" } },
    ]);
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
    // The token the SDK got calls what its scopes open.
    let called = &out["results"][1]["result"];
    assert_eq!(called["isError"], false, "{}", out["results"]);
    assert_eq!(
        called["structuredContent"]["body"]["path"],
        "/items/ts-oauth"
    );
    let seen: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    assert_eq!(seen, ["/items/ts-oauth"]);

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
    let calls = json!([
        { "name": "everything.echo", "arguments": { "message": "through the door" } },
        { "name": "everything.get-structured-content", "arguments": { "location": "Chicago" } },
    ]);
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
    // The server's own outputSchema is served, and its structuredContent (validated by the SDK
    // client against it) passed through.
    let structured = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything.get-structured-content")
        .unwrap();
    assert_eq!(
        structured["outputSchema"]["properties"]["temperature"]["type"],
        "number"
    );
    assert!(echo.get("outputSchema").is_none(), "{echo}");
    let weather = &out["results"][1]["result"];
    assert_eq!(weather["structuredContent"]["temperature"], 36, "{weather}");
    let audit = rt.audit().await;
    let record = audit
        .iter()
        .find(|r| r["toolId"] == "everything:echo" && r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["clientName"], "door-test");
}

/// Run tests/peers/mcp/door-client.py (the official Python client) and read its JSON line.
async fn python(url: &str, env: &[(&str, &str)]) -> Value {
    let python_peers = support::mcp::python_mcp();
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(support::peer_scripts_dir().join("mcp/door-client.py"))
        .arg(url)
        .env("PYTHONPATH", &python_peers)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the Python client finished within 60 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

/// The official Python client (PyPI `mcp` 2.3) probes `server/discover`, settles on the
/// stateless 2026-07-28 revision, and lists and calls through the door with a bearer token; a
/// call that needs approval is a tool error naming the approval to ask for, and once an
/// approver grants it the same call runs.
#[tokio::test]
async fn the_python_sdk_client_speaks_the_stateless_revision_with_the_door() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let calls = json!([
        { "name": "svc.getItem", "arguments": { "id": "py" } },
        { "name": "svc.createItem", "arguments": { "body": { "title": "py" } } },
    ]);
    let out = python(
        &d.mcp(),
        &[("TOKEN", &alice), ("CALLS", &calls.to_string())],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(out["protocolVersion"], "2026-07-28");
    assert_eq!(out["serverInfo"]["name"], "portcullis");
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    let result = &out["results"][0];
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["body"]["path"], "/items/py");
    let approval = &out["results"][1];
    assert_eq!(approval["isError"], true, "{approval}");
    let help = text(approval);
    assert!(
        help.contains("needs approval") && help.contains("\"toolId\":\"svc:createItem\""),
        "{help}"
    );
    let audit = d.rt.audit_file().await;
    let record = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["protocolVersion"], "2026-07-28");

    let bob = d.token("bob", "bundle:svc approve");
    let grant = d
        .rt
        .client
        .post(format!("{}/v1/approvals", d.rt.url))
        .bearer_auth(&bob)
        .json(
            &json!({ "toolId": "svc:createItem", "principal": "alice", "body": { "title": "py" } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 201);
    let calls = json!([{ "name": "svc.createItem", "arguments": { "body": { "title": "py" } } }]);
    let out = python(
        &d.mcp(),
        &[("TOKEN", &alice), ("CALLS", &calls.to_string())],
    )
    .await;
    let approved = &out["results"][0];
    assert_eq!(approved["isError"], false, "{out}");
    assert_eq!(approved["structuredContent"]["body"]["method"], "POST");
}

/// The Python client's OAuth client-credentials provider: 401 -> the door's RFC 9728 metadata
/// -> the real identity provider's token for the `/mcp` resource -> list and call; a tool
/// outside the token's scopes is refused with 403 `insufficient_scope` and never runs.
#[tokio::test]
async fn the_python_sdk_oauth_client_gets_a_token_for_mcp_and_is_refused_out_of_scope() {
    let idp = Idp::start_with("bundle:svc", "p", &[("MCP_RESOURCE_AUDIENCE", API)]).await;
    let upstream = support::start_upstream().await;
    let rt = runtime(
        &upstream,
        json!({ "validationProfile": "oidc_jwks", "issuer": idp.issuer,
            "jwksURL": format!("{}/jwks", idp.issuer), "audience": API }),
    )
    .await;
    let calls = json!([
        { "name": "svc.getItem", "arguments": { "id": "oauth" } },
        { "name": "other.getOther", "arguments": {} },
    ]);
    let out = python(
        &format!("{}/mcp", rt.url),
        &[
            ("CLIENT_ID", "runtime-client"),
            ("CLIENT_SECRET", "runtime-secret"),
            ("SCOPE", "bundle:svc"),
            ("ISSUER", &idp.issuer),
            ("CALLS", &calls.to_string()),
        ],
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(
        names(&out["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );
    let called = &out["results"][0];
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(called["structuredContent"]["body"]["path"], "/items/oauth");
    // The SDK raises on the 403 (its message does not carry the status; the audit below does).
    assert!(
        out["results"][1]["error"].as_str().is_some(),
        "{}",
        out["results"]
    );
    let seen: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    assert_eq!(seen, ["/items/oauth"]);
    let audit = rt.audit_file().await;
    let denial = audit
        .iter()
        .find(|r| r["toolId"] == "other:getOther")
        .expect("the refusal is audited");
    assert_eq!(denial["decision"], "denied", "{denial}");
    assert_eq!(denial["reasonCode"], "authz_denied", "{denial}");
}
