//! The scope envelope over HTTP (security-cases 2.3, contract 3.4) and which endpoints need a
//! token (issue 4, item 5).

use super::support;
use super::support::auth;

use auth::*;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.test";

struct Fixture {
    keys: Keys,
    _jwks: JwksServer,
    upstream: support::RecordingUpstream,
    rt: support::TestRuntime,
}

async fn fixture(extra: Value) -> Fixture {
    let keys = keys();
    let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
    let mut auth = json!({
        "validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": jwks.url, "audience": API,
    });
    for (k, v) in extra.as_object().unwrap() {
        auth[k] = v.clone();
    }
    let (upstream, rt) = runtime_with_auth(auth).await;
    Fixture {
        keys,
        _jwks: jwks,
        upstream,
        rt,
    }
}

impl Fixture {
    fn token(&self, scope: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("r1".into());
        let now = now();
        let claims = json!({ "iss": ISS, "aud": [API, "https://other.example"], "sub": "agent-1",
            "exp": now + 600, "iat": now, "scope": scope,
            "act": { "sub": "orchestrator", "act": { "sub": "human-7" } },
            "delegated_by": "github:user-123", "delegation_id": "delegation-9" });
        sign(&h, &claims, &self.keys.rsa)
    }
}

#[tokio::test]
async fn catalog_shows_only_what_the_scopes_grant() {
    let f = fixture(json!({})).await;
    let all = ["other:getOther", "svc:createItem", "svc:getItem"];
    let cases: &[(&str, &[&str])] = &[
        ("S11 no scopes", &[]),
        ("openid email (other prefixes ignored)", &[]),
        ("bundle:svc", &["svc:createItem", "svc:getItem"]),
        ("bundle:svc bundle:other", &all),
        ("tool:svc:getItem", &["svc:getItem"]),
        ("tool:svc:nope", &[]),
        (
            "explicit intersects the union: bundle:svc tool:svc:getItem tool:other:getOther",
            &["svc:getItem"],
        ),
        ("profile:reader", &["svc:getItem"]),
        ("profile:explorer", &all),
        ("profile:unknown", &[]),
        ("S06 TOOL:svc:getItem Bundle:svc", &[]),
        ("S03 tool:svc:getItem\u{200b} bundle:ｓvc", &[]),
        ("S05 tool:* bundle:* * tool:svc:* bundle:s*", &[]),
    ];
    // Twice: the second pass is served from the per-scope-set render cache.
    for (scope, expected) in cases.iter().chain(cases) {
        let scope = scope.split_once(": ").map_or(*scope, |(_, s)| s);
        let scope = if scope.starts_with("S11") { "" } else { scope };
        let reply = catalog(&f.rt, &f.token(scope)).await;
        assert_eq!(reply.status, 200, "{scope}: {}", reply.body);
        assert_eq!(reply.tool_ids(), *expected, "{scope}");
        let body = reply.json();
        let services: Vec<&str> = body["catalog"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        for service in &services {
            assert!(
                expected
                    .iter()
                    .any(|t| t.starts_with(&format!("{service}:"))),
                "{scope}: service {service} kept without tools"
            );
        }
        for view in reply.json()["catalog"]["effectiveViews"]
            .as_array()
            .unwrap()
        {
            for tool in view["tools"].as_array().unwrap() {
                assert!(
                    expected.contains(&tool["id"].as_str().unwrap()),
                    "{scope}: view leaks {tool}"
                );
            }
        }
    }
}

#[tokio::test]
async fn execution_outside_the_envelope_is_403_before_any_upstream_call() {
    let f = fixture(json!({})).await;
    let token = f.token("bundle:other");
    // S10: a tool absent from the filtered catalog cannot be called directly.
    let denied = execute(&f.rt, &token, "svc:getItem").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.body.trim(), "authz_denied");
    assert!(denied
        .challenge
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    assert!(
        f.upstream.requests().is_empty(),
        "no upstream call for a denied tool"
    );
    // Inside the envelope it runs, and the caller's token never reaches the upstream (J36).
    let allowed = execute(&f.rt, &token, "other:getOther").await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let seen = f.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].headers.get("authorization").is_none(),
        "J36: caller token forwarded upstream"
    );
    // No scopes: empty envelope, 403.
    assert_eq!(
        execute(&f.rt, &f.token(""), "other:getOther").await.status,
        403
    );
}

#[tokio::test]
async fn every_endpoint_but_the_handshake_requires_a_token() {
    let f = fixture(json!({
        "authorizationURL": "https://issuer.test/auth", "tokenURL": "https://issuer.test/token",
        "browserClientId": "portcullis-cli"
    }))
    .await;
    for path in ["/v1/catalog/effective", "/v1/audit/events"] {
        let reply = get(&f.rt, path, None).await;
        assert_eq!(reply.status, 401, "{path}: {}", reply.body);
        assert!(reply.challenge.is_some(), "{path}");
    }
    let (status, _) = f.rt.refresh("").await;
    assert_eq!(status, 401, "/v1/refresh");
    let execute_without =
        f.rt.client
            .post(format!("{}/v1/tools/execute", f.rt.url))
            .json(&json!({"toolId": "svc:getItem"}))
            .send()
            .await
            .unwrap();
    assert_eq!(execute_without.status().as_u16(), 401);
    assert!(f.upstream.requests().is_empty());

    // The handshake works without a token and shows a principal only for a valid one.
    let info = get(&f.rt, "/v1/runtime/info", None).await;
    assert_eq!(info.status, 200);
    let auth = &info.json()["auth"];
    assert_eq!(auth["required"], true);
    assert_eq!(auth["audience"], API);
    assert_eq!(auth["tokenValidationProfiles"], json!(["oidc_jwks"]));
    assert_eq!(auth["browserLogin"]["configured"], true);
    assert!(auth.get("principal").is_none());
    let token = f.token("bundle:svc");
    let info = get(&f.rt, "/v1/runtime/info", Some(&format!("Bearer {token}"))).await;
    assert_eq!(info.json()["auth"]["principal"], "agent-1");
    assert_invalid_token(
        &get(&f.rt, "/v1/runtime/info", Some("Bearer nope")).await,
        "info with a bad token",
    );

    let browser = get(&f.rt, "/v1/auth/browser-config", None).await;
    assert_eq!(browser.status, 200, "{}", browser.body);
    assert_eq!(browser.json()["clientId"], "portcullis-cli");
    assert_eq!(
        browser.json()["scopePrefixes"],
        json!(["bundle:", "profile:", "tool:"])
    );

    // H15: RFC 9728 metadata names this runtime and its issuer.
    let metadata = get(&f.rt, "/.well-known/oauth-protected-resource", None).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json()["resource"], f.rt.url.as_str());
    assert_eq!(metadata.json()["authorization_servers"], json!([ISS]));

    // Audit: failures on every endpoint, connects and filtering with principal and lineage.
    assert_eq!(catalog(&f.rt, &token).await.status, 200);
    // Reading the log needs `audit:read`; a token without it gets 403 insufficient_scope.
    let refused = get(&f.rt, "/v1/audit/events", Some(&format!("Bearer {token}"))).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("insufficient_scope"),
        "{}",
        refused.body
    );
    let challenge = refused.challenge.clone().unwrap_or_default();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"audit:read\""),
        "{challenge}"
    );
    let reader = f.token("bundle:svc audit:read");
    let events = get(&f.rt, "/v1/audit/events", Some(&format!("Bearer {reader}")))
        .await
        .json();
    let events = events.as_array().unwrap();
    let count = |t: &str| events.iter().filter(|e| e["eventType"] == t).count();
    assert!(count("authn_failure") >= 5, "{events:?}");
    assert!(
        events
            .iter()
            .filter(|e| e["eventType"] != "recovery" && e["eventType"] != "audit_gap")
            .all(|e| e["requestId"].as_str().is_some_and(|id| !id.is_empty())),
        "every record made while serving a request carries its request id: {events:?}"
    );
    assert_eq!(count("authenticated_connect"), 1);
    let filtered = events
        .iter()
        .find(|e| e["eventType"] == "catalog_filtered")
        .unwrap();
    assert_eq!(filtered["principal"], "agent-1");
    // The reference runtime's lineage names (issue #17): `actor`, `delegatedBy`, `delegationId`.
    assert_eq!(filtered["lineage"]["actor"]["act"]["sub"], "human-7");
    assert_eq!(filtered["lineage"]["delegatedBy"], "github:user-123");
    assert_eq!(filtered["lineage"]["delegationId"], "delegation-9");
    let text = serde_json::to_string(events).unwrap();
    assert!(!text.contains(&token), "the audit log never holds a token");
    // A02: tokens appear only as a short keyed hash, the same for the same token.
    let raw = std::fs::read_to_string(f.rt.dir.path().join("state/audit.log")).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!raw.contains(&token) && !raw.contains(signature) && !raw.contains("Bearer nope"));
    let hash = f.rt.runtime.audit.token_hash(&token);
    assert_eq!(hash.len(), 16);
    assert_eq!(filtered["tokenHash"], hash.as_str());
    let nope = f.rt.runtime.audit.token_hash("nope");
    assert!(events
        .iter()
        .any(|e| e["eventType"] == "authn_failure" && e["tokenHash"] == nope.as_str()));
    assert!(
        events.iter().any(|e| e["toolId"] == "runtime.audit"
            && e["reasonCode"] == "insufficient_scope"
            && e.get("statusCode").is_none()),
        "the refused read is audited, without a status (as the reference runtime's denials)"
    );
}

#[tokio::test]
async fn startup_refuses_auth_it_cannot_enforce() {
    let cases = [
        (
            json!({"validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": "https://x.test/jwks"}),
            "audience",
        ),
        (
            json!({"validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": "http://x.test/jwks", "audience": API}),
            "jwksURL",
        ),
        (
            json!({"validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": "https://x.test/jwks", "audience": API, "allowedAlgorithms": ["HS256"]}),
            "allowedAlgorithms",
        ),
        (
            json!({"validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": "https://x.test/jwks", "audience": API, "scopeClaim": "scopes"}),
            "scopeClaim",
        ),
        (
            json!({"validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": "https://x.test/jwks", "audience": API, "leewaySecs": 5}),
            "leewaySecs",
        ),
    ];
    for (auth, field) in cases {
        let settings = auth.clone();
        let result = match portcullis::authn::ServerAuth::from_value(&settings) {
            Ok(s) => portcullis::authn::Authenticator::from_settings(s)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let error = result.expect_err(field);
        assert!(error.contains(field), "{field}: {error}");
    }
}

#[tokio::test]
async fn a_bundle_grant_covers_tools_added_to_the_service_after_a_refresh() {
    // S08: `bundle:svc` is expanded against the current catalog on every request, never frozen
    // into a cached answer (the per-scope-set render cache belongs to one snapshot).
    let f = fixture(json!({})).await;
    let token = f.token("bundle:svc");
    assert_eq!(
        catalog(&f.rt, &token).await.tool_ids(),
        ["svc:createItem", "svc:getItem"]
    );
    let paths = json!({
        "/items/{id}": { "get": { "operationId": "getItem", "security": [],
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }] } },
        "/items": { "post": { "operationId": "createItem", "security": [] } },
        "/items/{id}/archive": { "post": { "operationId": "archiveItem", "security": [],
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }] } }
    });
    std::fs::write(
        f.rt.dir.path().join("a.json"),
        support::openapi(&f.upstream.url, paths, json!({})),
    )
    .unwrap();
    let refreshed =
        f.rt.client
            .post(format!("{}/v1/refresh", f.rt.url))
            .bearer_auth(f.token("runtime:refresh"))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
    assert_eq!(refreshed.status().as_u16(), 200);
    assert_eq!(
        catalog(&f.rt, &token).await.tool_ids(),
        ["svc:archiveItem", "svc:createItem", "svc:getItem"]
    );
    // The reference runtime's record of an authenticated refresh (issue #17).
    let records = f.rt.audit_file().await;
    let refresh = records
        .iter()
        .find(|e| e["eventType"] == "token_refresh")
        .unwrap_or_else(|| panic!("no token_refresh record: {records:?}"));
    assert_eq!(refresh["toolId"], "runtime.token_refresh");
    assert_eq!(refresh["reasonCode"], "token_refresh");
    assert_eq!(refresh["decision"], "allowed");
    assert_eq!(refresh["principal"], "agent-1");
    assert_eq!(refresh["statusCode"], 200);
}
