//! The MCP door (`/mcp`) over raw HTTP: the 403 step-up challenge, the stateless 2026-07-28
//! revision (routing and `Mcp-Param-*` headers), malformed JSON-RPC and session misuse, the
//! edge. The real clients are in `mcp_door.rs`.

use serde_json::{json, Value};

use super::support;
use super::support::door::*;

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
