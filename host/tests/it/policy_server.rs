//! The policy engine over HTTP: approval grants (security cases P06-P08), explain, and the
//! audit record of each decision, through a real runtime with JWT auth and a real upstream.

use super::support;
use super::support::auth;

use auth::*;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.test";

struct Fixture {
    keys: Keys,
    _jwks: JwksServer,
    upstream: support::RecordingUpstream,
    rt: support::TestRuntime,
}

/// A runtime behind `oidc_jwks` auth serving `svc:getItem` and `svc:createItem`, with `policy`.
async fn fixture(policy: Value) -> Fixture {
    fixture_with(json!({ "policy": policy })).await
}

/// [`fixture`] with other top-level config keys (`policy`, `mode`, `curation`, `agents`, ...).
async fn fixture_with(extra: Value) -> Fixture {
    let keys = keys();
    let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
    let upstream = support::start_upstream().await;
    let paths = json!({
        "/items/{id}": { "get": { "operationId": "getItem", "security": [],
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }] } },
        "/items": { "post": { "operationId": "createItem", "security": [],
            "requestBody": { "content": { "application/json": { "schema": { "type": "object" } } } } } }
    });
    let mut config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "a": { "type": "openapi", "uri": "a.json" } },
        "services": { "svc": { "source": "a" } },
        "runtime": { "server": { "auth": {
            "validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": jwks.url, "audience": API } } }
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let rt = support::start_runtime(
        config,
        &[("a.json", support::openapi(&upstream.url, paths, json!({})))],
    )
    .await;
    Fixture {
        keys,
        _jwks: jwks,
        upstream,
        rt,
    }
}

impl Fixture {
    fn token(&self, sub: &str, scope: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("r1".into());
        let now = now();
        let claims = json!({ "iss": ISS, "aud": API, "sub": sub, "exp": now + 600, "iat": now,
            "scope": scope });
        sign(&h, &claims, &self.keys.rsa)
    }

    async fn post(&self, route: &str, token: &str, body: Value) -> (u16, Value) {
        self.post_with(route, token, body, &[]).await
    }

    async fn post_with(
        &self,
        route: &str,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .rt
            .client
            .post(format!("{}{route}", self.rt.url))
            .bearer_auth(token)
            .header("accept", "application/json")
            .json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn execute(&self, token: &str, body: Value) -> (u16, Value) {
        self.post("/v1/tools/execute", token, body).await
    }

    /// Bob (an approver) approves `principal`'s `svc:createItem` with no arguments.
    async fn approve(&self, principal: &str) -> u16 {
        let request = json!({ "toolId": "svc:createItem", "principal": principal });
        let bob = self.token("bob", APPROVER);
        self.post("/v1/approvals", &bob, request).await.0
    }

    async fn audit(&self) -> Vec<Value> {
        self.rt.runtime.audit.sync().await.unwrap();
        let raw = std::fs::read_to_string(self.rt.dir.path().join("state/audit.log")).unwrap();
        raw.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn grant_policy() -> Value {
    json!({ "approvalRequired": ["svc:createItem"], "approvals": { "mode": "grant" } })
}

const ALICE: &str = "bundle:svc";
const APPROVER: &str = "bundle:svc approve";

fn create(body: Value) -> Value {
    json!({ "toolId": "svc:createItem", "body": body })
}

/// P06 and P07: approval comes only from a grant bound to (principal, tool, arguments), used once.
#[tokio::test]
async fn p06_p07_grants_are_bound_single_use_and_caller_approval_fields_are_ignored() {
    let f = fixture(grant_policy()).await;
    let alice = f.token("alice", ALICE);
    let carol = f.token("carol", ALICE);
    let bob = f.token("bob", APPROVER);

    // P06: the contract flag, an approval header and approval-looking arguments are not enough.
    let mut forged =
        create(json!({ "title": "x", "approved": true, "_meta": { "approval": "granted" } }));
    forged["approval"] = json!(true);
    let (status, body) = f
        .post_with(
            "/v1/tools/execute",
            &alice,
            forged,
            &[("x-approval", "granted")],
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval_required"))
    );
    let audit = f.audit().await;
    let refused = audit.last().unwrap();
    assert_eq!(refused["reasonCode"], "approval_required");
    assert_eq!(
        refused["detail"]["ignoredApprovalClaims"],
        json!([
            "request:approval",
            "header:x-approval",
            "body:approved",
            "body:_meta.approval"
        ])
    );

    let (status, grant) = f
        .post(
            "/v1/approvals",
            &bob,
            json!({ "toolId": "svc:createItem", "principal": "alice", "body": { "title": "x" } }),
        )
        .await;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(grant["principal"], "alice");
    assert_eq!(grant["approver"], "bob");
    assert_eq!(grant["argumentsSha256"].as_str().unwrap().len(), 64);

    // P07: other arguments, other principal, other tool: still refused, grant kept.
    for (token, request) in [
        (&alice, create(json!({ "title": "y" }))),
        (&carol, create(json!({ "title": "x" }))),
        (
            &alice,
            json!({ "toolId": "svc:getItem", "pathArgs": ["1"], "approval": true }),
        ),
    ] {
        let (status, body) = f.execute(token, request.clone()).await;
        if request["toolId"] == "svc:getItem" {
            assert_eq!(status, 200, "a tool without approval rules is not affected");
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("approval_required")),
                "{request}"
            );
        }
    }
    assert_eq!(f.upstream.requests().len(), 1);

    // The same arguments in the contract's base64 form are the same call: allowed, once.
    let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"title":"x"}"#);
    let (status, body) = f.execute(&alice, create(json!(encoded))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = f.execute(&alice, create(json!({ "title": "x" }))).await;
    assert_eq!(status, 403, "single use");
    assert_eq!(f.upstream.requests().len(), 2);

    let audit = f.audit().await;
    let issued = audit
        .iter()
        .find(|r| r["eventType"] == "approval_granted")
        .unwrap();
    assert_eq!(issued["principal"], "bob");
    assert_eq!(issued["detail"]["principal"], "alice");
    let intent = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution_intent" && r["toolId"] == "svc:createItem")
        .unwrap();
    assert_eq!(intent["detail"]["grantId"], grant["grantId"]);
    assert_eq!(
        intent["detail"]["ruleId"],
        format!("grant {}", grant["grantId"].as_str().unwrap())
    );
}

/// P07: a grant past its expiry is never used.
#[tokio::test]
async fn p07_expired_grant_is_refused() {
    let f = fixture(json!({ "approvalRequired": ["svc:createItem"],
        "approvals": { "mode": "grant", "ttlSeconds": 1 } }))
    .await;
    assert_eq!(f.approve("alice").await, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = f
        .execute(
            &f.token("alice", ALICE),
            json!({ "toolId": "svc:createItem" }),
        )
        .await;
    assert_eq!(status, 403);
    assert!(f.upstream.requests().is_empty());
}

/// P08: an approver cannot approve their own call; without the approver scope nobody can approve.
#[tokio::test]
async fn p08_self_approval_and_approval_without_the_scope_are_refused_and_audited() {
    let f = fixture(grant_policy()).await;
    let request = json!({ "toolId": "svc:createItem", "principal": "bob" });
    let (status, body) = f
        .post("/v1/approvals", &f.token("bob", APPROVER), request)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("self_approval_forbidden"))
    );
    let request = json!({ "toolId": "svc:createItem", "principal": "alice" });
    let (status, body) = f
        .post("/v1/approvals", &f.token("carol", ALICE), request)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let audit = f.audit().await;
    let reasons: Vec<_> = audit
        .iter()
        .map(|r| r["reasonCode"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["self_approval_forbidden", "insufficient_scope"]);
    let (status, _) = f
        .execute(
            &f.token("bob", APPROVER),
            json!({ "toolId": "svc:createItem" }),
        )
        .await;
    assert_eq!(status, 403, "no grant was issued");
}

#[tokio::test]
async fn self_approval_is_allowed_when_configured() {
    let f = fixture(json!({ "approvalRequired": ["svc:createItem"],
        "approvals": { "mode": "grant", "forbidSelfApproval": false } }))
    .await;
    let bob = f.token("bob", APPROVER);
    assert_eq!(f.approve("bob").await, 201);
    let (status, _) = f.execute(&bob, json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(status, 200);
}

/// Taking a grant is atomic: of many concurrent executions, exactly one runs.
#[tokio::test]
async fn concurrent_executions_use_a_grant_exactly_once() {
    let f = fixture(grant_policy()).await;
    assert_eq!(f.approve("alice").await, 201);
    let alice = f.token("alice", ALICE);
    let calls = (0..16).map(|_| f.execute(&alice, json!({ "toolId": "svc:createItem" })));
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|&&s| s == 403).count(), 15);
    assert_eq!(f.upstream.requests().len(), 1);
}

#[tokio::test]
async fn approvals_endpoint_is_refused_in_flag_mode() {
    let f = fixture(json!({ "approvalRequired": ["svc:createItem"] })).await;
    let (status, body) = f
        .post(
            "/v1/approvals",
            &f.token("bob", APPROVER),
            json!({ "toolId": "svc:createItem", "principal": "alice" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("approvals_not_enabled"))
    );
    // Flag mode keeps the contract: `approval: true` is the approval.
    let (status, _) = f
        .execute(
            &f.token("alice", ALICE),
            json!({ "toolId": "svc:createItem", "approval": true }),
        )
        .await;
    assert_eq!(status, 200);
}

/// Explain: same auth and envelope as execute; the decision and its steps; nothing executed
/// and no grant taken.
#[tokio::test]
async fn explain_shows_every_step_without_executing_or_taking_a_grant() {
    let f = fixture(
        json!({ "approvalRequired": ["svc:createItem"], "deny": ["svc:nothing*"],
        "approvals": { "mode": "grant" } }),
    )
    .await;
    let alice = f.token("alice", ALICE);
    let (status, body) = f
        .post(
            "/v1/policy/explain",
            &alice,
            json!({ "toolId": "svc:createItem" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reason"], "approval_required");
    assert_eq!(body["rule"], "svc:createItem");
    let rules: Vec<_> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["managed_deny", "policy_deny", "curated", "approval"]
    );
    assert_eq!(body["steps"][3]["outcome"], "deny");

    assert_eq!(f.approve("alice").await, 201);
    for _ in 0..2 {
        let (_, body) = f
            .post(
                "/v1/policy/explain",
                &alice,
                json!({ "toolId": "svc:createItem" }),
            )
            .await;
        assert_eq!(body["decision"], "allow", "{body}");
        assert_eq!(body["steps"][3]["outcome"], "approved");
    }
    assert!(f.upstream.requests().is_empty(), "explain executes nothing");
    let (status, _) = f
        .execute(&alice, json!({ "toolId": "svc:createItem" }))
        .await;
    assert_eq!(status, 200, "explain did not take the grant");

    // Same admission as execute: no token is 401, a tool outside the envelope is 403.
    let response =
        f.rt.client
            .post(format!("{}/v1/policy/explain", f.rt.url))
            .json(&json!({ "toolId": "svc:createItem" }))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 401);
    let (status, body) = f
        .post(
            "/v1/policy/explain",
            &f.token("dave", "bundle:other"),
            json!({ "toolId": "svc:createItem" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("authz_denied")));
}

/// Every decision is one audit record with its reason and deciding rule: a refusal in its
/// `authz_denial` record, an allow in the intent record written before the upstream call.
#[tokio::test]
async fn p12_every_decision_is_one_audit_record_with_rule_and_steps() {
    // (`policy.deny` would already take the tool out of the scope envelope: `authz_denied`.)
    let f = fixture(json!({ "approvalRequired": ["svc:getItem"] })).await;
    let alice = f.token("alice", ALICE);
    let (status, _) = f
        .execute(
            &alice,
            json!({ "toolId": "svc:getItem", "pathArgs": ["1"] }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = f
        .execute(&alice, json!({ "toolId": "svc:createItem" }))
        .await;
    assert_eq!(status, 200);
    let audit = f.audit().await;
    let denied = audit
        .iter()
        .find(|r| r["eventType"] == "authz_denial")
        .unwrap();
    assert_eq!(denied["reasonCode"], "approval_required");
    assert_eq!(denied["detail"]["ruleId"], "svc:getItem");
    assert_eq!(denied["detail"]["steps"][3]["outcome"], "deny");
    assert!(denied["requestId"].is_string());
    assert_eq!(
        f.upstream.requests().len(),
        1,
        "only the allowed call reached the upstream"
    );
    let intent = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution_intent")
        .unwrap();
    assert_eq!(intent["reasonCode"], "allowed");
    assert_eq!(intent["detail"]["ruleId"], Value::Null);
    assert_eq!(intent["detail"]["steps"].as_array().unwrap().len(), 4);
}

/// P09: a broken policy refuses to start, and a broken reload keeps the last good policy.
#[tokio::test]
async fn p09_broken_policy_refuses_to_start_and_a_broken_reload_keeps_the_last_good_one() {
    let upstream = support::start_upstream().await;
    let paths = json!({ "/items": { "post": { "operationId": "createItem", "security": [] } } });
    let document = support::openapi(&upstream.url, paths, json!({}));
    let broken = support::config_for("a.json", json!({ "policy": { "deny": ["svc:***"] } }));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), &document).unwrap();
    std::fs::write(dir.path().join(".cli.json"), broken.to_string()).unwrap();
    let options = portcullis::app::RuntimeOptions {
        scopes: portcullis::config::ScopePaths {
            project: dir.path().join(".cli.json"),
            ..Default::default()
        },
        instance_id: "p09".into(),
        state_dir: dir.path().join("state"),
        audit_path: dir.path().join("state/audit.log"),
        cache_dir: dir.path().join("state/cache"),
        url: "http://127.0.0.1:0".into(),
        settings: std::sync::Arc::new(portcullis::app::Settings),
    };
    assert!(portcullis::app::Runtime::start(options).await.is_err());

    let good = support::config_for("a.json", json!({ "policy": { "deny": ["svc:create*"] } }));
    let rt = support::start_runtime(good, &[("a.json", document)]).await;
    let (status, _) = rt.execute(json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(status, 403);
    std::fs::write(rt.config_path(), broken.to_string()).unwrap();
    let (status, _) = rt.refresh("").await;
    assert_eq!(status, 400);
    let (status, body) = rt.execute(json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(
        (status, body.trim()),
        (403, "policy_deny"),
        "the last good policy still denies"
    );
    assert!(upstream.requests().is_empty());
}

/// R07: a grant binds exactly what the upstream will read. A body whose keys repeat, or whose
/// numbers the runtime cannot hold exactly, is refused before policy, in any of its forms.
#[tokio::test]
async fn r07_a_grant_covers_exactly_the_bytes_it_approved() {
    let f = fixture(grant_policy()).await;
    let alice = f.token("alice", ALICE);
    let bob = f.token("bob", APPROVER);
    let (status, grant) = f
        .post(
            "/v1/approvals",
            &bob,
            json!({ "toolId": "svc:createItem", "principal": "alice",
                    "body": { "to": "alice-savings", "amount": 5 } }),
        )
        .await;
    assert_eq!(status, 201, "{grant}");

    let raw = |text: String| {
        let request =
            f.rt.client
                .post(format!("{}/v1/tools/execute", f.rt.url))
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .body(text);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let b64 = |body: &str| base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    for (attempt, expected) in [
        // Base64 body: the upstream may take the first "to", serde the last.
        (
            json!({ "toolId": "svc:createItem",
                    "body": b64(r#"{"to":"mallory","amount":5,"to":"alice-savings"}"#) })
            .to_string(),
            "duplicate key \"to\"",
        ),
        // The same inside a plain JSON body.
        (
            r#"{"toolId":"svc:createItem","body":{"to":"mallory","amount":5,"to":"alice-savings"}}"#
                .to_owned(),
            "duplicate key \"to\"",
        ),
        // Amounts past 64 bits would collapse onto one digest.
        (
            json!({ "toolId": "svc:createItem",
                    "body": b64(r#"{"to":"alice-savings","amount":18446744073709551621}"#) })
            .to_string(),
            "cannot be represented exactly",
        ),
        (
            r#"{"toolId":"svc:createItem","body":{"to":"alice-savings","amount":5.0000000000000000001}}"#
                .to_owned(),
            "cannot be represented exactly",
        ),
    ] {
        let (status, body) = raw(attempt.clone()).await;
        assert_eq!(status, 400, "{attempt}: {body}");
        assert!(body.contains(expected), "{attempt}: {body}");
    }
    assert!(
        f.upstream.requests().is_empty(),
        "nothing reached the upstream"
    );

    // The approved call itself still runs, once, with exactly the approved bytes.
    let (status, body) = f
        .execute(
            &alice,
            create(json!({ "to": "alice-savings", "amount": 5 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = f.upstream.requests();
    assert_eq!(sent.len(), 1);
    let sent: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(sent, json!({ "to": "alice-savings", "amount": 5 }));
    let audit = f.audit().await;
    let intent = audit
        .iter()
        .find(|r| r["eventType"] == "tool_execution_intent")
        .unwrap();
    assert_eq!(intent["detail"]["grantId"], grant["grantId"]);
}

/// R08: a request cannot widen the configured curated mode or profile, and an approver cannot
/// approve a tool outside their own scopes.
#[tokio::test]
async fn r08_a_caller_cannot_widen_its_own_policy_nor_approve_beyond_its_envelope() {
    let f = fixture_with(json!({
        "mode": { "default": "curated" },
        "curation": { "toolSets": { "readonly": { "allow": ["svc:getItem"] } } },
        "agents": { "profiles": {
            "readonly": { "mode": "curated", "toolSet": "readonly" },
            "admin": { "mode": "discover" } }, "defaultProfile": "readonly" },
        "policy": grant_policy()
    }))
    .await;
    let f = &f;
    let (upstream, token) = (&f.upstream, |sub: &str, scope: &str| f.token(sub, scope));
    let post = |route: &'static str, token: String, body: Value| async move {
        f.post(route, &token, body).await
    };
    let alice = || token("alice", "bundle:svc");
    let create = json!({ "toolId": "svc:createItem" });
    for widen in [
        json!({ "toolId": "svc:createItem", "mode": "discover" }),
        json!({ "toolId": "svc:createItem", "agentProfile": "admin" }),
    ] {
        let (status, body) = post("/v1/tools/execute", alice(), widen.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("curated_deny")),
            "{widen}: {body}"
        );
    }
    let (status, _) = post("/v1/tools/execute", alice(), create.clone()).await;
    assert_eq!(status, 403, "the configured profile denies it");
    assert!(upstream.requests().is_empty());
    // A scope that grants the wider selection lets it through (to the approval step here).
    let (status, body) = post(
        "/v1/tools/execute",
        token("alice", "bundle:svc mode:discover"),
        json!({ "toolId": "svc:createItem", "mode": "discover" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval_required")),
        "{body}"
    );

    // An approver whose scopes reach only svc:getItem cannot approve svc:createItem.
    let narrow_approver = token("bob", "tool:svc:getItem approve");
    let mut approval = create.clone();
    approval["principal"] = json!("alice");
    let (status, body) = post("/v1/approvals", narrow_approver, approval.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("authz_denied")),
        "{body}"
    );
    let (status, body) = post(
        "/v1/approvals",
        token("bob", "bundle:svc approve"),
        approval,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// One `call::explain` behind both doors: `portcullis policy explain` answers what
/// `POST /v1/policy/explain` answers for the same config and caller (decision, reason, rule,
/// every step, tool id) for an allowed and an approval-gated tool; a policy-denied tool (which
/// `policy.deny` takes out of the envelope) and a tool outside the caller's scopes are refused
/// by both (403 `authz_denied` over HTTP, a `deny` with reason `authz_denied` offline).
#[tokio::test]
async fn cli_policy_explain_answers_what_the_http_route_answers() {
    let gated = json!({ "approvalRequired": ["svc:createItem"] });
    let cases = [
        (gated.clone(), "svc:getItem", ALICE, "allowed"),
        (gated.clone(), "svc:createItem", ALICE, "approval-gated"),
        (
            json!({ "deny": ["svc:getItem"] }),
            "svc:getItem",
            ALICE,
            "denied",
        ),
        (gated, "svc:getItem", "bundle:other", "outside the envelope"),
    ];
    for (policy, tool, scope, case) in cases {
        let f = fixture(policy).await;
        let (status, http) = f
            .post(
                "/v1/policy/explain",
                &f.token("alice", scope),
                json!({ "toolId": tool }),
            )
            .await;
        let mut args = vec!["policy", "explain", "--tool", tool, "--principal", "alice"];
        for s in scope.split(' ') {
            args.extend(["--scope", s]);
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(&args)
            .arg("--config")
            .arg(f.rt.config_path())
            .env(
                "PORTCULLIS_MANAGED_CONFIG",
                f.rt.dir.path().join("managed.json"),
            )
            .env("PORTCULLIS_USER_CONFIG", f.rt.dir.path().join("user.json"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{case}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut cli: Value = serde_json::from_str(&stdout).unwrap();
        let envelope = cli.as_object_mut().unwrap().remove("envelope").unwrap();
        assert_eq!(
            envelope["detail"],
            format!("scopes {:?}", scope.split(' ').collect::<Vec<_>>())
        );
        if matches!(case, "denied" | "outside the envelope") {
            assert_eq!(status, 403, "{case}: {http}");
            assert_eq!(envelope["granted"], false, "{case}");
            assert_eq!(cli["decision"], "deny", "{case}");
            assert_eq!(cli["reason"], http["code"], "{case}: {http}");
            assert_eq!(cli["toolId"], tool, "{case}");
        } else {
            assert_eq!(status, 200, "{case}: {http}");
            assert_eq!(envelope["granted"], true, "{case}");
            assert_eq!(cli, http, "{case}: the CLI and the HTTP route disagree");
        }
    }
}
