//! The OAuth 2.0 client for upstream credentials (`secrets` of type `oauth2`) against the real
//! npm `oidc-provider` (tests/peers/idp/issuer.mjs), with a real recording upstream that shows
//! which `Authorization` each call carried. Token counts come from the provider itself
//! (`GET /test/counts`), so single flight and caching are observed where they matter.

use super::support;
use super::support::auth;

use std::time::Duration;

use auth::Idp;
use base64::Engine as _;
use serde_json::{json, Value};
use support::*;

const SHORT_API: &str = "https://runtime.local/short-api";
const REDIRECT: &str = "https://portcullis.test/v1/oauth/callback";

/// Service `svc` with `GET /items` protected by the `oauth` scheme (scope `tools:read`).
async fn runtime(secret: Value) -> (RecordingUpstream, TestRuntime) {
    let upstream = start_upstream().await;
    let paths = json!({ "/items": { "get": { "operationId": "listItems",
        "security": [{ "oauth": ["tools:read"] }] } } });
    let components = json!({ "securitySchemes": { "oauth": { "type": "oauth2", "flows": {
        "clientCredentials": { "tokenUrl": "https://idp.invalid/token", "scopes": { "tools:read": "read" } },
        "authorizationCode": { "authorizationUrl": "https://idp.invalid/auth",
            "tokenUrl": "https://idp.invalid/token", "scopes": { "tools:read": "read" } } } } } });
    let config = config_for("api.json", json!({ "secrets": { "svc.oauth": secret } }));
    let rt = start_runtime(
        config,
        &[("api.json", openapi(&upstream.url, paths, components))],
    )
    .await;
    (upstream, rt)
}

fn client_credentials(idp: &Idp, client: &str, secret: &str, method: Option<&str>) -> Value {
    let mut value = json!({
        "type": "oauth2", "mode": "clientCredentials", "issuer": idp.issuer,
        "clientId": { "type": "literal", "value": client },
        "clientSecret": { "type": "literal", "value": secret },
        "audience": auth::API,
    });
    if let Some(method) = method {
        value["clientAuthMethod"] = json!(method);
    }
    value
}

fn authorization_code(idp: &Idp) -> Value {
    json!({
        "type": "oauth2", "mode": "authorizationCode", "issuer": idp.issuer,
        "clientId": { "type": "literal", "value": "code-client" },
        "clientSecret": { "type": "literal", "value": "code-secret" },
        "clientAuthMethod": "client_secret_basic",
        "audience": SHORT_API, "redirectURI": REDIRECT,
    })
}

/// The claims of a JWT access token (not verified: the upstream only reports what it got).
fn claims(bearer: &str) -> Value {
    let token = bearer.strip_prefix("Bearer ").expect("a bearer token");
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn authorizations(upstream: &RecordingUpstream) -> Vec<String> {
    upstream
        .requests()
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

async fn call(rt: &TestRuntime) -> (u16, Value) {
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("accept", "application/json")
        .json(&json!({ "toolId": "svc:listItems" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn token_files(rt: &TestRuntime) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(rt.dir.path().join("state/oauth"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// One client-credentials call through a runtime with `secret`: the status, the body, and the
/// claims of the token the upstream saw (if any).
async fn one_call(secret: Value) -> (u16, Value, Option<Value>) {
    let (upstream, rt) = runtime(secret).await;
    let (status, body) = call(&rt).await;
    let seen = authorizations(&upstream);
    (status, body, seen.first().map(|a| claims(a)))
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_auth_reach_the_upstream_as_bearer_tokens() {
    // The IdP offers both methods: unset means client_secret_post (the reference runtime's
    // method). oidc-provider 9 accepts post from a client registered for Basic too, so which
    // method was sent is shown by the IdPs that offer only one (the next test).
    let idp = Idp::start("tools:read", "a").await;
    for (client, secret, method) in [
        ("post-client", "post-secret", None),
        ("post-client", "post-secret", Some("client_secret_post")),
        (
            "runtime-client",
            "runtime-secret",
            Some("client_secret_basic"),
        ),
    ] {
        let (status, body, claims) =
            one_call(client_credentials(&idp, client, secret, method)).await;
        assert_eq!(status, 200, "{client} {method:?}: {body}");
        let claims = claims.unwrap();
        assert_eq!(claims["client_id"], client);
        assert_eq!(claims["aud"], auth::API);
        assert_eq!(
            claims["scope"], "tools:read",
            "the requirement's scope was requested"
        );
    }
}

#[tokio::test]
async fn client_auth_follows_the_token_endpoint_metadata_when_not_configured() {
    for (methods, client, secret) in [
        ("client_secret_basic", "runtime-client", "runtime-secret"),
        ("client_secret_post", "post-client", "post-secret"),
    ] {
        let idp = Idp::start_with("tools:read", "a", &[("AUTH_METHODS", methods)]).await;
        let (status, body, claims) = one_call(client_credentials(&idp, client, secret, None)).await;
        assert_eq!(status, 200, "{methods}: {body}");
        assert_eq!(claims.unwrap()["client_id"], client);
    }
}

/// A discovery document with nothing but `token_endpoint` (pointing at the real IdP), served
/// at `<returned issuer>/.well-known/openid-configuration`.
async fn minimal_discovery(idp: &Idp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({ "token_endpoint": format!("{}/token", idp.issuer) });
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test]
async fn a_discovery_document_with_only_a_token_endpoint_is_enough() {
    let idp = Idp::start("tools:read", "a").await;
    let issuer = minimal_discovery(&idp).await;
    for (client, secret, method) in [
        ("post-client", "post-secret", None),
        (
            "runtime-client",
            "runtime-secret",
            Some("client_secret_basic"),
        ),
    ] {
        let mut secret = client_credentials(&idp, client, secret, method);
        secret["issuer"] = json!(issuer);
        let (status, body, claims) = one_call(secret).await;
        assert_eq!(status, 200, "{client}: {body}");
        assert_eq!(claims.unwrap()["client_id"], client);
    }
}

#[tokio::test]
async fn discovery_is_fetched_once_and_concurrent_calls_share_one_token_request() {
    let idp = Idp::start("tools:read", "a").await;
    let (upstream, rt) = runtime(client_credentials(
        &idp,
        "runtime-client",
        "runtime-secret",
        Some("client_secret_basic"),
    ))
    .await;
    let rt = std::sync::Arc::new(rt);
    // The harness fetched discovery once to see the IdP ready.
    let discovery_before = idp.counts().await["discovery"].as_u64().unwrap();
    let calls = (0..24).map(|_| {
        let rt = rt.clone();
        tokio::spawn(async move { call(&rt).await.0 })
    });
    for status in futures_util::future::join_all(calls).await {
        assert_eq!(status.unwrap(), 200);
    }
    for _ in 0..5 {
        assert_eq!(call(&rt).await.0, 200);
    }
    let counts = idp.counts().await;
    assert_eq!(counts["client_credentials"], 1, "{counts}");
    assert_eq!(counts["discovery"], discovery_before + 1, "{counts}");
    let seen = authorizations(&upstream);
    assert_eq!(seen.len(), 29);
    assert!(
        seen.iter().all(|a| *a == seen[0]),
        "one token for every call"
    );
}

#[tokio::test]
async fn instance_tokens_are_stored_0600_under_the_state_dir_and_memory_tokens_are_not() {
    let idp = Idp::start("tools:read", "a").await;
    let (_upstream, rt) = runtime(client_credentials(
        &idp,
        "runtime-client",
        "runtime-secret",
        Some("client_secret_basic"),
    ))
    .await;
    assert_eq!(call(&rt).await.0, 200);
    let files = token_files(&rt);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_stem().unwrap().to_str().unwrap();
    assert!(
        name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "named by the sha256 of the cache key: {name}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut memory = client_credentials(
        &idp,
        "runtime-client",
        "runtime-secret",
        Some("client_secret_basic"),
    );
    memory["tokenStorage"] = json!("memory");
    let (_upstream, rt) = runtime(memory).await;
    assert_eq!(call(&rt).await.0, 200);
    assert!(token_files(&rt).is_empty());
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_502_that_never_echoes_it() {
    let idp = Idp::start("tools:read", "a").await;
    let (upstream, rt) = runtime(client_credentials(
        &idp,
        "runtime-client",
        "CANARY-client-secret",
        Some("client_secret_basic"),
    ))
    .await;
    let (status, body) = call(&rt).await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "credential_unavailable");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("token endpoint answered 401 invalid_client"),
        "{body}"
    );
    assert!(upstream.requests().is_empty());
    let audit = serde_json::to_string(&rt.audit().await).unwrap();
    assert!(!format!("{body}{audit}").contains("CANARY"));
}

/// Drive one authorization: the call answers 409 with the URL, the person authorizes at the
/// provider, the runtime's callback finishes it. Returns the callback URL used.
async fn authorize(idp: &Idp, rt: &TestRuntime) -> url::Url {
    let (status, body) = call(rt).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "interactive_required");
    let authorization_url = body["authorizationUrl"].as_str().unwrap();
    let query: std::collections::HashMap<_, _> = url::Url::parse(authorization_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], REDIRECT);
    let redirect = idp.authorize(authorization_url, "alice").await;
    assert!(redirect.as_str().starts_with(REDIRECT), "{redirect}");
    let (status, text) = rt
        .get(&format!("/v1/oauth/callback?{}", redirect.query().unwrap()))
        .await;
    assert_eq!(status, 200, "{text}");
    // The callback stores nothing: the call is still waiting for the person's confirmation.
    assert_eq!(
        call(rt).await.0,
        409,
        "nothing is bound before the confirmation"
    );
    let confirmation = text
        .split("\"confirmation\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no confirmation code in {text}"));
    let confirm = |code: &str| {
        rt.client
            .post(format!("{}/v1/oauth/confirm", rt.url))
            .json(&json!({ "confirmation": code }))
            .send()
    };
    let response = confirm(confirmation).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let again = confirm(confirmation).await.unwrap();
    assert_eq!(again.status(), 400, "a confirmation code is single use");
    let audit = rt.audit().await;
    for (event, reason) in [
        ("oauth_callback", "callback_received"),
        ("oauth_authorized", "authorized"),
        ("oauth_authorized", "invalid_confirmation"),
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e["eventType"] == event && e["reasonCode"] == reason),
            "no {event}/{reason} audit record"
        );
    }
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains(confirmation),
        "the confirmation code is never audited"
    );
    redirect
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_rotation_then_revocation_fails_closed() {
    let idp = Idp::start("tools:read", "a").await;
    let (upstream, rt) = runtime(authorization_code(&idp)).await;
    let callback = authorize(&idp, &rt).await;

    // The state is single use.
    let (status, text) = rt
        .get(&format!("/v1/oauth/callback?{}", callback.query().unwrap()))
        .await;
    assert_eq!(status, 400, "{text}");

    let (status, body) = call(&rt).await;
    assert_eq!(status, 200, "{body}");
    let first = authorizations(&upstream)[0].clone();
    assert_eq!(claims(&first)["sub"], "alice");
    let stored = |rt: &TestRuntime| -> Value {
        let files = token_files(rt);
        assert_eq!(files.len(), 1);
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
    };
    let first_refresh = stored(&rt)["refreshToken"].as_str().unwrap().to_owned();

    // The access token lives 2 s and is replaced 1 s before expiry: by refresh, rotated.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = call(&rt).await;
    assert_eq!(status, 200, "{body}");
    let second = authorizations(&upstream)[1].clone();
    assert_ne!(first, second, "a new access token");
    assert_eq!(idp.issued("refresh_token").await, 1);
    let rotated = stored(&rt)["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(
        rotated, first_refresh,
        "the rotated refresh token is stored"
    );

    // Revoke the grant's refresh token: the next refresh is refused, terminally.
    idp.revoke_as(&rotated, "code-client", "code-secret").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        let (status, body) = call(&rt).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["code"], "reauthorization_required");
    }
    assert_eq!(
        idp.counts().await["refresh_token"],
        1,
        "one refused refresh, then no more requests"
    );
    assert_eq!(upstream.requests().len(), 2);
    assert!(token_files(&rt).is_empty(), "the dead token is deleted");

    // No token or refresh token in the audit log or in any answer.
    let audit = serde_json::to_string(&rt.audit().await).unwrap()
        + &std::fs::read_to_string(rt.dir.path().join("state/audit.log")).unwrap_or_default();
    for secret in [
        &first[7..],
        &second[7..],
        first_refresh.as_str(),
        rotated.as_str(),
    ] {
        assert!(!audit.contains(secret), "a token leaked into the audit");
    }
}

#[tokio::test]
async fn a_callback_with_a_forged_state_or_another_issuer_is_refused() {
    let idp = Idp::start("tools:read", "a").await;
    let (_upstream, rt) = runtime(authorization_code(&idp)).await;
    let (status, _) = rt.get("/v1/oauth/callback?state=forged&code=x").await;
    assert_eq!(status, 400);

    let (_, body) = call(&rt).await;
    let redirect = idp
        .authorize(body["authorizationUrl"].as_str().unwrap(), "alice")
        .await;
    let mut forged = redirect.clone();
    let pairs: Vec<(String, String)> = redirect
        .query_pairs()
        .into_owned()
        .map(|(k, v)| match k.as_str() {
            "iss" => (k, "https://evil.test".to_owned()),
            _ => (k, v),
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, text) = rt
        .get(&format!("/v1/oauth/callback?{}", forged.query().unwrap()))
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("iss"), "{text}");
    // The state was consumed by the refused attempt: the genuine redirect is refused too.
    let (status, _) = rt
        .get(&format!("/v1/oauth/callback?{}", redirect.query().unwrap()))
        .await;
    assert_eq!(status, 400);
    assert_eq!(call(&rt).await.0, 409, "still no token");
}
