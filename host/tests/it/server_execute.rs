//! `POST /v1/tools/execute` against a real upstream, through a real runtime.

use super::support;

use serde_json::json;
use support::*;

fn paths() -> serde_json::Value {
    json!({
        "/items/{owner}/{repo}": {
            "parameters": [
                { "name": "repo", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "owner", "in": "path", "required": true, "schema": { "type": "string" } }
            ],
            "get": { "operationId": "getItem", "security": [],
                     "parameters": [{ "name": "q", "in": "query", "schema": { "type": "string" } }] }
        },
        "/items": { "post": { "operationId": "createItem", "security": [],
            "requestBody": { "content": { "application/json": { "schema": { "type": "object" } } } } } },
        "/text": { "get": { "operationId": "getText", "security": [] } },
        "/empty": { "delete": { "operationId": "deleteThing", "security": [] } },
        "/status/{code}": { "get": { "operationId": "getStatus", "security": [],
            "parameters": [{ "name": "code", "in": "path", "required": true, "schema": { "type": "integer" } }] } },
        "/secure": { "get": { "operationId": "getSecure" } },
        "/either": { "get": { "operationId": "getEither", "security": [{ "oauth": [] }, { "key": [] }] } },
        "/cookie": { "get": { "operationId": "getCookie", "security": [{ "session": [], "tenant": [] }],
            "parameters": [
                { "name": "lang", "in": "cookie", "schema": { "type": "string" } },
                { "name": "session", "in": "cookie", "schema": { "type": "string" } }
            ] } }
    })
}

fn components() -> serde_json::Value {
    json!({ "securitySchemes": {
        "key": { "type": "apiKey", "in": "header", "name": "X-Api-Key" },
        "session": { "type": "apiKey", "in": "cookie", "name": "session" },
        "tenant": { "type": "apiKey", "in": "cookie", "name": "tenant" },
        "oauth": { "type": "oauth2", "flows": { "clientCredentials": { "tokenUrl": "https://idp.invalid/token", "scopes": {} } } }
    }})
}

async fn runtime_with(extra: serde_json::Value) -> (RecordingUpstream, TestRuntime) {
    let upstream = start_upstream().await;
    let mut document: serde_json::Value =
        serde_json::from_str(&openapi(&upstream.url, paths(), components())).unwrap();
    document["security"] = json!([{ "key": [] }]);
    let runtime = start_runtime(
        config_for("api.json", extra),
        &[("api.json", document.to_string())],
    )
    .await;
    (upstream, runtime)
}

#[tokio::test]
async fn path_args_follow_the_declared_path_params_and_are_encoded() {
    // `/items/{owner}/{repo}` declares `[repo, owner]`: the catalog lists them in that order and
    // positional arguments bind to them in that order, as in the reference runtime (issue #17).
    let (upstream, rt) = runtime_with(json!({})).await;
    let (_, catalog) = rt.get("/v1/catalog/effective").await;
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    let tool = catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "svc:getItem")
        .unwrap();
    let declared: Vec<_> = tool["pathParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["originalName"].as_str().unwrap())
        .collect();
    assert_eq!(declared, ["repo", "owner"]);
    let (status, body) = rt
        .execute_json(json!({ "toolId": "svc:getItem", "pathArgs": ["a/b?c", "octo"], "flags": { "q": "x y" } }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["statusCode"], 200);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path_and_query, "/items/octo/a%2Fb%3Fc?q=x%20y");
    // More positional arguments than parameters: refused (the reference ignores the extra
    // ones), naming the tool's parameters in binding order.
    let (status, body) = rt
        .execute_json(json!({ "toolId": "svc:getItem", "pathArgs": ["r", "o", "extra"] }))
        .await;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("[repo, owner]") && text.contains("got 3"),
        "{text}"
    );
    assert_eq!(upstream.requests().len(), 1, "nothing sent");
}

#[tokio::test]
async fn upstream_status_and_bodies_pass_through_in_a_200() {
    let (_upstream, rt) = runtime_with(json!({})).await;
    let (status, body) = rt
        .execute_json(json!({ "toolId": "svc:getStatus", "pathArgs": ["503"] }))
        .await;
    assert_eq!(
        (
            status,
            body["statusCode"].clone(),
            body["body"]["status"].clone()
        ),
        (200, json!(503), json!(503))
    );
    let (_, text) = rt.execute_json(json!({ "toolId": "svc:getText" })).await;
    assert_eq!(text["text"], "plain words");
    assert_eq!(text["contentType"], "text/plain");
    let (_, empty) = rt
        .execute_json(json!({ "toolId": "svc:deleteThing" }))
        .await;
    assert_eq!(empty, json!({ "statusCode": 204 }));
}

#[tokio::test]
async fn body_is_accepted_as_base64_and_as_plain_json() {
    let (upstream, rt) = runtime_with(json!({})).await;
    // {"title":"Printer jam"} in base64, as the open-cli client sends it.
    let (s1, _) = rt
        .execute(json!({ "toolId": "svc:createItem", "body": "eyJ0aXRsZSI6IlByaW50ZXIgamFtIn0=" }))
        .await;
    let (s2, _) = rt
        .execute(json!({ "toolId": "svc:createItem", "body": { "title": "Printer jam" } }))
        .await;
    assert_eq!((s1, s2), (200, 200));
    let seen = upstream.requests();
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(&seen[0].body[..], br#"{"title":"Printer jam"}"#);
    assert_eq!(seen[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn credentials_come_from_secrets_and_the_callers_token_is_never_forwarded() {
    let (upstream, rt) =
        runtime_with(json!({ "secrets": { "svc.key": { "type": "literal", "value": "k-123" } } }))
            .await;
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("Authorization", "Bearer caller-token")
        .json(&json!({ "toolId": "svc:getSecure" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.requests();
    assert_eq!(seen[0].headers["x-api-key"], "k-123");
    assert!(
        seen[0].headers.get("authorization").is_none(),
        "caller token must not reach the upstream"
    );
}

#[tokio::test]
async fn cookie_api_keys_arrive_in_one_cookie_header_merged_with_caller_cookies() {
    let (upstream, rt) = runtime_with(json!({ "secrets": {
        "session": { "type": "literal", "value": "s3cr3t" },
        "tenant": { "type": "literal", "value": "acme" }
    } }))
    .await;
    // The caller's own cookie flags come first (flag order), the credentials last (scheme
    // order); a caller cookie with a credential's name is replaced, never sent twice.
    for _ in 0..2 {
        let (status, body) = rt
            .execute(json!({ "toolId": "svc:getCookie", "flags": { "session": "forged", "lang": "en" } }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = upstream.requests();
    for request in &seen {
        let cookies: Vec<_> = request.headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["lang=en; session=s3cr3t; tenant=acme"]);
    }
}

#[tokio::test]
async fn later_alternative_is_used_when_the_first_cannot_be_satisfied() {
    let (upstream, rt) =
        runtime_with(json!({ "secrets": { "key": { "type": "literal", "value": "k" } } })).await;
    let (status, _) = rt.execute(json!({ "toolId": "svc:getEither" })).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.requests()[0].headers["x-api-key"], "k");
}

#[tokio::test]
async fn missing_credentials_fail_closed_naming_each_alternative_and_nothing_is_sent() {
    let (upstream, rt) = runtime_with(
        json!({ "secrets": { "key": { "type": "env", "value": "PORTCULLIS_TEST_UNSET_VAR" } } }),
    )
    .await;
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("Accept", "application/json")
        .json(&json!({ "toolId": "svc:getEither" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "credential_unavailable");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("oauth:")
            && detail.contains("key: environment variable PORTCULLIS_TEST_UNSET_VAR is not set"),
        "{detail}"
    );
    assert!(
        upstream.requests().is_empty(),
        "no request may be sent with a partial or empty credential"
    );
    let audit = rt.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(
        (&last["reasonCode"], &last["errorCode"]),
        (&json!("execution_error"), &json!("credential_unavailable"))
    );
}

#[tokio::test]
async fn policy_deny_is_enforced_without_runtime_auth_and_audited_without_upstream_traffic() {
    let (upstream, rt) = runtime_with(json!({ "policy": { "deny": ["svc:getT*"] } })).await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:getText" })).await;
    assert_eq!((status, body.trim()), (403, "policy_deny"));
    assert!(upstream.requests().is_empty());
    let audit = rt.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["eventType"], "authz_denial");
    assert_eq!(audit[0]["decision"], "denied");
}

#[tokio::test]
async fn approval_is_required_until_the_request_carries_it() {
    let (upstream, rt) =
        runtime_with(json!({ "policy": { "approvalRequired": ["svc:deleteThing"] } })).await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:deleteThing" })).await;
    assert_eq!((status, body.trim()), (403, "approval_required"));
    let (status, _) = rt
        .execute(json!({ "toolId": "svc:deleteThing", "approval": true }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn unknown_tool_is_404_in_plain_text_and_problem_json() {
    let (_upstream, rt) = runtime_with(json!({})).await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:nope" })).await;
    assert_eq!((status, body.as_str()), (404, "tool not found\n"));
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("Accept", "application/json")
        .header("X-Request-ID", "req-42")
        .json(&json!({ "toolId": "svc:nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "tool_not_found");
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["requestId"], "req-42");
}

#[tokio::test]
async fn malformed_requests_are_400_and_bad_path_args_never_reach_upstream() {
    let (upstream, rt) = runtime_with(json!({})).await;
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, _) = rt
        .execute(json!({ "toolId": "svc:getItem", "pathArgs": ["only-one"] }))
        .await;
    assert_eq!(status, 400);
    let (status, _) = rt
        .execute(json!({ "toolId": "svc:createItem", "body": "%%%" }))
        .await;
    assert_eq!(status, 400);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn unreachable_upstream_is_502_with_a_classified_reason() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let document = openapi(
        &dead,
        json!({ "/x": { "get": { "operationId": "getX" } } }),
        json!({}),
    );
    let rt = start_runtime(config_for("api.json", json!({})), &[("api.json", document)]).await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:getX" })).await;
    assert_eq!((status, body.trim()), (502, "upstream_connect_failed"));
    let audit = rt.audit().await;
    assert_eq!(audit[0]["eventType"], "execution_error");
    assert_eq!(audit[0]["decision"], "error");
}

#[tokio::test]
async fn every_execution_is_audited_with_the_contract_fields() {
    let (_upstream, rt) = runtime_with(json!({})).await;
    rt.execute(json!({ "toolId": "svc:getText" })).await;
    rt.execute(json!({ "toolId": "svc:getStatus", "pathArgs": ["404"] }))
        .await;
    let audit = rt.audit().await;
    assert_eq!(audit.len(), 2);
    let last = &audit[1];
    for field in [
        "timestamp",
        "eventType",
        "toolId",
        "decision",
        "reasonCode",
        "serviceId",
        "targetBaseUrl",
        "method",
        "path",
        "requestId",
    ] {
        assert!(last.get(field).is_some(), "missing {field} in {last}");
    }
    assert_eq!(
        (last["decision"].as_str(), last["statusCode"].as_u64()),
        (Some("allowed"), Some(404))
    );
    let (_, filtered) = rt.get("/v1/audit/events?toolId=svc:getText&limit=5").await;
    let filtered: Vec<serde_json::Value> = serde_json::from_str(&filtered).unwrap();
    assert_eq!(filtered.len(), 1);
    let (status, _) = rt.get("/v1/audit/events?limit=0").await;
    assert_eq!(status, 400);
}

/// Security case A01: each decision type gives exactly one decision record naming the request,
/// tool, outcome and (for policy) the rule; an allowed call adds its write-ahead intent.
#[tokio::test]
async fn every_decision_type_gives_exactly_one_record_per_request() {
    let (_upstream, rt) = runtime_with(json!({ "policy": {
        "deny": ["svc:createItem"], "approvalRequired": ["svc:deleteThing"] } }))
    .await;
    let cases = [
        ("a01-allow", json!({ "toolId": "svc:getText" }), 200),
        (
            "a01-upstream-404",
            json!({ "toolId": "svc:getStatus", "pathArgs": ["404"] }),
            200,
        ),
        ("a01-policy", json!({ "toolId": "svc:createItem" }), 403),
        ("a01-approval", json!({ "toolId": "svc:deleteThing" }), 403),
        ("a01-credential", json!({ "toolId": "svc:getSecure" }), 502),
        ("a01-bad-args", json!({ "toolId": "svc:getStatus" }), 400),
    ];
    for (id, body, status) in &cases {
        let response = rt
            .client
            .post(format!("{}/v1/tools/execute", rt.url))
            .header("X-Request-ID", *id)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), *status, "{id}");
    }
    rt.runtime.audit.sync().await.unwrap();
    let raw = std::fs::read_to_string(rt.dir.path().join("state/audit.log")).unwrap();
    let records: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |id: &str| -> Vec<&serde_json::Value> {
        records.iter().filter(|r| r["requestId"] == id).collect()
    };
    let expect = |id: &str, event: &str, decision: &str, reason: &str| {
        let mine = of(id);
        let decisions: Vec<_> = mine
            .iter()
            .filter(|r| r["eventType"] != "tool_execution_intent")
            .collect();
        assert_eq!(decisions.len(), 1, "{id}: {mine:?}");
        let record = decisions[0];
        assert_eq!(record["eventType"], event, "{id}");
        assert_eq!(record["decision"], decision, "{id}");
        // The reference runtime's shape: every execution error's reason is `execution_error`
        // (ours in `errorCode`), and a denial has no status.
        if event == "execution_error" {
            assert_eq!(record["reasonCode"], "execution_error", "{id}");
            assert_eq!(record["errorCode"], reason, "{id}");
        } else {
            assert_eq!(record["reasonCode"], reason, "{id}");
        }
        if decision == "denied" {
            assert!(record.get("statusCode").is_none(), "{id}: {record}");
        }
        assert!(
            record["toolId"].is_string() && record["timestamp"].is_string(),
            "{id}"
        );
        let intents = mine.len() - 1;
        assert_eq!(
            intents,
            usize::from(decision == "allowed"),
            "{id}: intent only when allowed"
        );
        (*record).clone()
    };
    let allowed = expect("a01-allow", "tool_execution", "allowed", "allowed");
    assert!(allowed["latencyMs"].is_u64() && allowed["statusCode"] == 200);
    let upstream_404 = expect("a01-upstream-404", "tool_execution", "allowed", "allowed");
    assert_eq!(upstream_404["statusCode"], 404);
    let policy = expect("a01-policy", "authz_denial", "denied", "policy_deny");
    assert_eq!(policy["detail"]["ruleId"], "svc:createItem");
    let approval = expect(
        "a01-approval",
        "authz_denial",
        "denied",
        "approval_required",
    );
    assert_eq!(approval["detail"]["ruleId"], "svc:deleteThing");
    expect(
        "a01-credential",
        "execution_error",
        "error",
        "credential_unavailable",
    );
    expect(
        "a01-bad-args",
        "execution_error",
        "error",
        "invalid_request",
    );
}
