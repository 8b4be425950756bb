//! `oidc_jwks` against crafted tokens and a JWKS the test controls (security-cases 2.1, 2.3).
//! Each case names the checklist row it covers; each would pass (200) if its check were removed.

use super::support;
use super::support::auth;

use std::sync::atomic::Ordering;
use std::time::Duration;

use auth::*;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.test";

struct Fixture {
    keys: Keys,
    jwks: JwksServer,
    upstream: support::RecordingUpstream,
    rt: support::TestRuntime,
}

async fn fixture(extra: Value) -> Fixture {
    let keys = keys();
    let oct = json!({"kty": "oct", "kid": "h1", "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"0123456789abcdef0123456789abcdef")});
    let jwks = jwks_server(vec![
        with_kid(&keys.rsa, "r1", Some("RS256")),
        with_kid(&keys.rsa, "p1", None),
        with_kid(&keys.ec, "e1", None),
        with_kid(&keys.ed, "d1", None),
        with_kid(&keys.weak, "w1", None),
        oct,
    ])
    .await;
    let mut auth = json!({
        "validationProfile": "oidc_jwks",
        "issuer": ISS,
        "jwksURL": jwks.url,
        "audience": API,
        "requireTokenType": "at+jwt",
    });
    for (k, v) in extra.as_object().unwrap() {
        auth[k] = v.clone();
    }
    let (upstream, rt) = runtime_with_auth(auth).await;
    Fixture {
        keys,
        jwks,
        upstream,
        rt,
    }
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    h
}

fn claims() -> Value {
    let now = now();
    json!({ "iss": ISS, "aud": API, "sub": "agent-1", "exp": now + 600, "iat": now, "scope": "bundle:svc" })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn tokens_signed_with_each_allowed_algorithm_are_accepted() {
    let f = fixture(json!({})).await;
    let cases = [
        (Algorithm::RS256, "r1", &f.keys.rsa),
        (Algorithm::PS256, "p1", &f.keys.rsa),
        (Algorithm::RS512, "p1", &f.keys.rsa),
        (Algorithm::ES256, "e1", &f.keys.ec),
        (Algorithm::EdDSA, "d1", &f.keys.ed),
    ];
    for (alg, kid, key) in cases {
        let token = sign(&header(alg, kid), &claims(), key);
        let reply = catalog(&f.rt, &token).await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.body);
        assert_eq!(
            reply.tool_ids(),
            ["svc:createItem", "svc:getItem"],
            "{alg:?}"
        );
    }
    // Tokens signed by node verify too, so the node-signed weak-key case (J32) is meaningful.
    let node = node_sign_rs256(
        &f.keys.rsa,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "r1"}),
        &claims(),
    );
    assert_eq!(catalog(&f.rt, &node).await.status, 200);
    // `application/at+jwt` is the same type; lower-case scheme is accepted (J23); exp within leeway.
    let mut h = header(Algorithm::RS256, "r1");
    h.typ = Some("application/at+jwt".into());
    let token = sign(
        &h,
        &with(claims(), json!({"exp": now() - 30, "iat": now() - 100})),
        &f.keys.rsa,
    );
    let reply = get(
        &f.rt,
        "/v1/catalog/effective",
        Some(&format!("bearer {token}")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn forged_expired_and_mistyped_tokens_are_rejected_with_invalid_token() {
    let f = fixture(json!({})).await;
    let attacker = jwks_server(vec![with_kid(&f.keys.rsa2, "r1", None)]).await;
    let k = &f.keys;
    let rs = |changes: Value| {
        sign(
            &header(Algorithm::RS256, "r1"),
            &with(claims(), changes),
            &k.rsa,
        )
    };
    let now = now();
    let mut cases: Vec<(&str, String)> = vec![
        (
            "J01 alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "r1"})),
                b64(&claims())
            ),
        ),
        (
            "J01 alg nOnE",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "nOnE", "typ": "at+jwt"})),
                b64(&claims())
            ),
        ),
        (
            "J02 HS256 MAC'd with the RSA public key",
            sign(&header(Algorithm::HS256, "r1"), &claims(), &k.rsa),
        ),
        ("J31 HS256 with the JWKS oct key", {
            let key = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef")
                .unwrap();
            jsonwebtoken::encode(&header(Algorithm::HS256, "h1"), &claims(), &key).unwrap()
        }),
        (
            "J30 ES256 with the kid of an RSA key",
            sign(&header(Algorithm::ES256, "r1"), &claims(), &k.ec),
        ),
        (
            "J30 PS256 against JWK alg RS256",
            sign(&header(Algorithm::PS256, "r1"), &claims(), &k.rsa),
        ),
        (
            "J32 1024-bit RSA key",
            node_sign_rs256(
                &k.weak,
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": "w1"}),
                &claims(),
            ),
        ),
        (
            "J34 untrusted key carrying a trusted kid",
            sign(&header(Algorithm::RS256, "r1"), &claims(), &k.rsa2),
        ),
        ("J06 missing exp", rs(json!({"exp": null}))),
        ("J07 expired beyond leeway", rs(json!({"exp": now - 61}))),
        ("J08 exp as a string", rs(json!({"exp": "99999999999"}))),
        ("J08 exp as a bool", rs(json!({"exp": true}))),
        ("J08 nbf as a string", rs(json!({"nbf": "0"}))),
        ("J09 nbf in the future", rs(json!({"nbf": now + 120}))),
        ("J10 iat in the future", rs(json!({"iat": now + 120}))),
        (
            "J10 iat after exp",
            rs(json!({"iat": now + 30, "exp": now + 20})),
        ),
        ("J12 wrong iss", rs(json!({"iss": "https://evil.test"}))),
        (
            "J12 iss with a trailing slash",
            rs(json!({"iss": "https://issuer.test/"})),
        ),
        (
            "J12 iss in another case",
            rs(json!({"iss": "https://ISSUER.test"})),
        ),
        ("J14 missing iss", rs(json!({"iss": null}))),
        ("J15 sibling audience", rs(json!({"aud": OTHER}))),
        ("J16 missing aud", rs(json!({"aud": null}))),
        ("J16 empty aud", rs(json!({"aud": []}))),
        ("J16 numeric aud", rs(json!({"aud": 42}))),
        (
            "principal: neither sub nor client_id",
            rs(json!({"sub": null})),
        ),
        (
            "scope as an array under scopeClaim scope",
            rs(json!({"scope": ["bundle:svc"]})),
        ),
        (
            "S07 scope and scp disagree",
            rs(json!({"scp": ["bundle:other"]})),
        ),
    ];
    let mut typ_jwt = header(Algorithm::RS256, "r1");
    typ_jwt.typ = Some("JWT".into());
    cases.push((
        "J19 typ JWT where at+jwt is required",
        sign(&typ_jwt, &claims(), &k.rsa),
    ));
    let mut no_typ = header(Algorithm::RS256, "r1");
    no_typ.typ = None;
    cases.push(("J19 no typ", sign(&no_typ, &claims(), &k.rsa)));
    let mut crit = header(Algorithm::RS256, "r1");
    crit.crit = Some(vec!["exp".into()]);
    cases.push(("J18 crit header", sign(&crit, &claims(), &k.rsa)));
    let mut jku = header(Algorithm::RS256, "attacker");
    jku.jku = Some(attacker.url.clone());
    cases.push((
        "J04 jku to an attacker JWKS",
        sign(&jku, &claims(), &k.rsa2),
    ));
    let mut embedded = header(Algorithm::RS256, "attacker");
    embedded.jwk = serde_json::from_value(with_kid(&k.rsa2, "attacker", None)).ok();
    cases.push((
        "J05 embedded jwk header",
        sign(&embedded, &claims(), &k.rsa2),
    ));
    cases.push(("garbage", "not.a.jwt".into()));

    for (case, token) in &cases {
        assert_invalid_token(&catalog(&f.rt, token).await, case);
    }
    assert_eq!(
        attacker.hits.load(Ordering::SeqCst),
        0,
        "J04: jku must never be fetched"
    );
    assert!(f.upstream.requests().is_empty());
}

#[tokio::test]
async fn scp_elements_containing_spaces_make_the_token_invalid() {
    let f = fixture(json!({"scopeClaim": "scp"})).await;
    let token = |scp: Value| {
        sign(
            &header(Algorithm::RS256, "r1"),
            &with(claims(), json!({"scope": null, "scp": scp})),
            &f.keys.rsa,
        )
    };
    let ok = catalog(&f.rt, &token(json!(["tool:svc:getItem"]))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.tool_ids(), ["svc:getItem"]);
    // S01: one element smuggling a second scope.
    assert_invalid_token(
        &catalog(
            &f.rt,
            &token(json!(["tool:svc:getItem tool:svc:createItem"])),
        )
        .await,
        "S01",
    );
}

#[tokio::test]
async fn authorization_header_must_be_exactly_one_bearer_credential() {
    let f = fixture(json!({})).await;
    let token = sign(&header(Algorithm::RS256, "r1"), &claims(), &f.keys.rsa);
    // No credentials: challenge without an error attribute.
    let none = get(&f.rt, "/v1/catalog/effective", None).await;
    assert_eq!(none.status, 401);
    let challenge = none.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"portcullis\"") && !challenge.contains("error="),
        "{challenge}"
    );
    assert!(challenge.contains(&format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        f.rt.url
    )));
    // J25: a token in the query string is not a credential.
    let query = get(
        &f.rt,
        &format!("/v1/catalog/effective?access_token={token}"),
        None,
    )
    .await;
    assert_eq!(query.status, 401);
    // J24: not a bearer credential.
    for bad in [
        format!("Bearer  {token}"),
        format!("Bearer\t{token}"),
        format!("Bearer{token}"),
        format!("Token {token}"),
        "Basic YTpi".into(),
    ] {
        assert_invalid_token(
            &get(&f.rt, "/v1/catalog/effective", Some(&bad)).await,
            &bad[..8],
        );
    }
    // J25: two Authorization headers.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.append("authorization", format!("Bearer {token}").parse().unwrap());
    headers.append("authorization", format!("Bearer {token}").parse().unwrap());
    let response =
        f.rt.client
            .get(format!("{}/v1/catalog/effective", f.rt.url))
            .headers(headers)
            .send()
            .await
            .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn unknown_kid_flood_refetches_the_jwks_at_most_once_and_rotation_is_picked_up() {
    let f = fixture(json!({})).await;
    let before = f.jwks.hits.load(Ordering::SeqCst);
    // J27: a new key published after startup is used by the first token that needs it.
    f.jwks.keys.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(with_kid(&f.keys.rsa2, "r2", None));
    let rotated = sign(&header(Algorithm::RS256, "r2"), &claims(), &f.keys.rsa2);
    assert_eq!(catalog(&f.rt, &rotated).await.status, 200);
    assert_eq!(f.jwks.hits.load(Ordering::SeqCst), before + 1);
    // J26: a flood of unknown kids causes no further fetches within the window.
    for i in 0..50 {
        let token = sign(
            &header(Algorithm::RS256, &format!("random-{i}")),
            &claims(),
            &f.keys.rsa2,
        );
        assert_invalid_token(&catalog(&f.rt, &token).await, "J26");
    }
    assert_eq!(
        f.jwks.hits.load(Ordering::SeqCst),
        before + 1,
        "J26: at most one refetch per window"
    );
}

#[tokio::test]
async fn jwks_outage_serves_the_last_good_keys_for_a_bounded_time_then_fails_closed() {
    let f = fixture(json!({"jwksCacheSeconds": 1, "jwksStaleSeconds": 3})).await;
    let token = sign(&header(Algorithm::RS256, "r1"), &claims(), &f.keys.rsa);
    assert_eq!(catalog(&f.rt, &token).await.status, 200);
    f.jwks.fail.store(500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stale = catalog(&f.rt, &token).await;
    assert_eq!(
        stale.status, 200,
        "J28: last good keys serve during a short outage"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let closed = catalog(&f.rt, &token).await;
    assert_eq!(
        closed.status, 503,
        "J28: fail closed once the keys are too old: {}",
        closed.body
    );
    assert!(closed.retry_after.is_some());
}

#[tokio::test]
async fn revocation_check_rejects_a_revoked_jwt_within_the_staleness_window() {
    use axum::response::IntoResponse;
    let active = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let basic = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (a, b) = (active.clone(), basic.clone());
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            b.store(auth.starts_with("Basic "), Ordering::SeqCst);
            axum::Json(json!({ "active": a.load(Ordering::SeqCst) })).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let f = fixture(json!({
        "introspectionURL": url,
        "clientId": { "type": "literal", "value": "rs" },
        "clientSecret": { "type": "literal", "value": "rs-secret" },
        "revocation": { "enabled": true, "stalenessSeconds": 1 },
    }))
    .await;
    let token = sign(&header(Algorithm::RS256, "r1"), &claims(), &f.keys.rsa);
    assert_eq!(catalog(&f.rt, &token).await.status, 200);
    assert!(
        basic.load(Ordering::SeqCst),
        "client_secret_basic by default"
    );
    active.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_invalid_token(
        &catalog(&f.rt, &token).await,
        "revoked JWT after the window",
    );
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_is_withdrawn_or_it_expires() {
    let f = fixture(json!({"jwksCacheSeconds": 1, "leewaySeconds": 0})).await;
    let token = sign(&header(Algorithm::RS256, "r1"), &claims(), &f.keys.rsa);
    // Verified once, then served from the verified-token cache.
    for _ in 0..3 {
        assert_eq!(catalog(&f.rt, &token).await.status, 200);
    }
    // The IdP withdraws key r1 (say, it leaked). Once the JWKS is refetched the remembered
    // verification is void: the token is checked again and refused.
    f.jwks.keys.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "r1");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_invalid_token(&catalog(&f.rt, &token).await, "withdrawn key");

    // A remembered token stops working at `exp` like any other.
    let short = sign(
        &header(Algorithm::ES256, "e1"),
        &with(claims(), json!({"exp": now() + 2})),
        &f.keys.ec,
    );
    assert_eq!(catalog(&f.rt, &short).await.status, 200);
    assert_eq!(catalog(&f.rt, &short).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_invalid_token(&catalog(&f.rt, &short).await, "expired while remembered");
}

#[tokio::test]
async fn oversized_authorization_headers_are_refused_with_431_before_parsing() {
    let f = fixture(json!({})).await;
    // J20: a 100 KiB token.
    let huge = format!("Bearer {}", "a".repeat(100 << 10));
    let reply = get(&f.rt, "/v1/catalog/effective", Some(&huge)).await;
    assert_eq!(reply.status, 431, "{}", reply.body);
    // The limit leaves room for real tokens: a 12 KiB token is parsed (and refused as invalid).
    let big = format!("Bearer {}", "a".repeat(12 << 10));
    assert_invalid_token(
        &get(&f.rt, "/v1/catalog/effective", Some(&big)).await,
        "12 KiB",
    );
    assert!(f.upstream.requests().is_empty());
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_gets_429_before_any_validation() {
    let f = fixture(json!({"maxFailedAuthPerMinute": 5})).await;
    let valid = sign(&header(Algorithm::RS256, "r1"), &claims(), &f.keys.rsa);
    assert_eq!(
        catalog(&f.rt, &valid).await.status,
        200,
        "successes never count"
    );
    for i in 0..5 {
        assert_invalid_token(&catalog(&f.rt, &format!("scan-{i}")).await, "I11 budget");
    }
    let hits = f.jwks.hits.load(Ordering::SeqCst);
    // I11: over budget, the address is refused outright, even with a valid token, until the
    // one-minute window ends.
    for token in ["scan-5", valid.as_str()] {
        let refused = catalog(&f.rt, token).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        let retry: u64 = refused.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(
        f.jwks.hits.load(Ordering::SeqCst),
        hits,
        "nothing reached the IdP"
    );
}

#[tokio::test]
async fn a_token_living_longer_than_the_configured_maximum_is_refused() {
    // J11: `exp` years ahead is accepted only when no maximum lifetime is configured.
    let f = fixture(json!({"maxTokenLifetimeSeconds": 3600})).await;
    let token = |exp: u64| {
        sign(
            &header(Algorithm::RS256, "r1"),
            &with(claims(), json!({"exp": exp})),
            &f.keys.rsa,
        )
    };
    assert_eq!(catalog(&f.rt, &token(now() + 1800)).await.status, 200);
    assert_invalid_token(
        &catalog(&f.rt, &token(now() + 10 * 365 * 86400)).await,
        "J11 ten years",
    );
}
