//! Runtime auth against a real identity provider: the npm `oidc-provider` started by the
//! harness (tests/peers/idp/issuer.mjs), tokens obtained over HTTP by client credentials with
//! RFC 8707 resource indicators.

use super::support::{auth, free_port};

use std::time::Duration;

use auth::*;
use portcullis::authn::{Authenticator, BearerToken, ServerAuth};
use serde_json::json;

const SCOPES: &str = "bundle:svc bundle:other tool:svc:getItem profile:reader";

fn jwks_auth(idp: &Idp, audience: &str) -> serde_json::Value {
    json!({
        "validationProfile": "oidc_jwks",
        "issuer": idp.issuer,
        "jwksURL": format!("{}/jwks", idp.issuer),
        "audience": audience,
        "requireTokenType": "at+jwt",
    })
}

#[tokio::test]
async fn rs256_and_es256_access_tokens_from_the_idp_are_accepted_and_scoped() {
    let idp = Idp::start(SCOPES, "a").await;
    let (_, rt) = runtime_with_auth(jwks_auth(&idp, API)).await;
    let token = idp.token("bundle:svc", API).await;
    let reply = catalog(&rt, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.tool_ids(), ["svc:createItem", "svc:getItem"]);
    let info = get(&rt, "/v1/runtime/info", Some(&format!("Bearer {token}"))).await;
    assert_eq!(info.json()["auth"]["principal"], "runtime-client");

    let (_, rt_es) = runtime_with_auth(jwks_auth(&idp, API_ES)).await;
    let es = idp.token("tool:svc:getItem", API_ES).await;
    let reply = catalog(&rt_es, &es).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.tool_ids(), ["svc:getItem"]);
    // The RS256 token is bound to another resource: wrong audience for this runtime (J15).
    assert_invalid_token(
        &catalog(&rt_es, &token).await,
        "J15 token for a sibling resource",
    );
}

#[tokio::test]
async fn token_for_a_sibling_app_of_the_same_idp_is_rejected() {
    let idp = Idp::start(SCOPES, "a").await;
    let (_, rt) = runtime_with_auth(jwks_auth(&idp, API)).await;
    let sibling = idp.token("bundle:svc", OTHER).await;
    assert_invalid_token(&catalog(&rt, &sibling).await, "J15");
}

#[tokio::test]
async fn key_rotation_at_the_idp_is_picked_up_without_restart() {
    let mut idp = Idp::start(SCOPES, "a").await;
    let (_, rt) = runtime_with_auth(jwks_auth(&idp, API)).await;
    assert_eq!(
        catalog(&rt, &idp.token("bundle:svc", API).await)
            .await
            .status,
        200
    );
    idp.rotate("b").await;
    let rotated = idp.token("bundle:svc", API).await;
    let reply = catalog(&rt, &rotated).await;
    assert_eq!(
        reply.status, 200,
        "J27: new kid fetched on first use: {}",
        reply.body
    );
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_an_issuer_mismatch_is_refused() {
    let idp = Idp::start(SCOPES, "a").await;
    let settings = |issuer: String| {
        ServerAuth::from_value(&json!({
            "validationProfile": "oidc_jwks", "issuer": issuer, "audience": API
        }))
        .unwrap()
    };
    let authenticator = Authenticator::from_settings(settings(idp.issuer.clone()))
        .await
        .unwrap();
    let token = BearerToken::new(idp.token("bundle:svc", API).await);
    let caller = authenticator.validate(&token).await.unwrap();
    assert_eq!(caller.principal.as_deref(), Some("runtime-client"));
    assert_eq!(caller.scopes, ["bundle:svc"]);
    // J29: the discovery document names `http://127.0.0.1:<port>`, not this spelling.
    let error = Authenticator::from_settings(settings(format!("{}/", idp.issuer)))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        error.to_string().contains("runtime.server.auth.issuer"),
        "{error}"
    );
}

fn introspection_auth(idp: &Idp, method: &str) -> serde_json::Value {
    json!({
        "validationProfile": "oauth2_introspection",
        "issuer": idp.issuer,
        "introspectionURL": format!("{}/token/introspection", idp.issuer),
        "audience": OPAQUE,
        "clientId": { "type": "literal", "value": "runtime-client" },
        "clientSecret": { "type": "literal", "value": "runtime-secret" },
        "clientAuthMethod": method,
        "introspectionCacheSeconds": 1,
    })
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_a_revoked_token_stops_within_the_window() {
    let idp = Idp::start(SCOPES, "a").await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let (_, rt) = runtime_with_auth(introspection_auth(&idp, method)).await;
        let token = idp.token("bundle:other", OPAQUE).await;
        let reply = catalog(&rt, &token).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(reply.tool_ids(), ["other:getOther"], "{method}");
        idp.revoke(&token).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_invalid_token(
            &catalog(&rt, &token).await,
            "I07 revoked token after the cache window",
        );
        // I06: an active token for another resource is still refused (audience).
        let jwt_resource = idp.token("bundle:svc", API).await;
        assert_invalid_token(&catalog(&rt, &jwt_resource).await, "I06/unsupported token");
    }
}

#[tokio::test]
async fn unreachable_introspection_endpoint_fails_closed_with_503() {
    let idp = Idp::start(SCOPES, "a").await;
    let mut auth = introspection_auth(&idp, "client_secret_basic");
    auth["introspectionURL"] = format!("http://127.0.0.1:{}/introspect", free_port()).into();
    let (upstream, rt) = runtime_with_auth(auth).await;
    let token = idp.token("bundle:other", OPAQUE).await;
    let reply = catalog(&rt, &token).await;
    assert_eq!(reply.status, 503, "I03: {}", reply.body);
    assert!(reply.retry_after.is_some());
    assert_eq!(execute(&rt, &token, "other:getOther").await.status, 503);
    assert!(upstream.requests().is_empty());
}
