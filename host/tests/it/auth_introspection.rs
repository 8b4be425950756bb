//! `oauth2_introspection` against a fault-injecting endpoint (security cases I01-I10).
//!
//! The happy path, both client-authentication methods and revocation run against the real
//! `oidc-provider` in `auth_idp.rs`; this file drives the answers a real provider will not give
//! on demand: inactive, wrong audience, refresh tokens, 500s, hangs, garbage and huge bodies.

use super::support;
use super::support::auth;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::*;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const ISS: &str = "https://idp.test";

/// What the fake endpoint answers next.
#[derive(Clone)]
enum Answer {
    Json(Value),
    Status(u16),
    Raw(&'static str),
    Huge,
    Hang,
}

struct Endpoint {
    url: String,
    answer: Arc<Mutex<Answer>>,
    calls: Arc<AtomicU64>,
    last_form: Arc<Mutex<String>>,
    last_authorization: Arc<Mutex<String>>,
}

async fn endpoint() -> Endpoint {
    let answer = Arc::new(Mutex::new(Answer::Status(500)));
    let calls = Arc::new(AtomicU64::new(0));
    let last_form = Arc::new(Mutex::new(String::new()));
    let last_authorization = Arc::new(Mutex::new(String::new()));
    let (a, c, f, h) = (
        answer.clone(),
        calls.clone(),
        last_form.clone(),
        last_authorization.clone(),
    );
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let (a, c, f, h) = (a.clone(), c.clone(), f.clone(), h.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            *f.lock().unwrap() = body;
            *h.lock().unwrap() = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let answer = a.lock().unwrap().clone();
            let response: Response = match answer {
                Answer::Json(v) => axum::Json(v).into_response(),
                Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
                Answer::Raw(text) => text.into_response(),
                Answer::Huge => format!("{{\"active\":true,\"pad\":\"{}\"}}", "x".repeat(5 << 20))
                    .into_response(),
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StatusCode::OK.into_response()
                }
            };
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Endpoint {
        url,
        answer,
        calls,
        last_form,
        last_authorization,
    }
}

impl Endpoint {
    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

fn active(changes: Value) -> Value {
    let now = now();
    let mut answer = json!({
        "active": true, "iss": ISS, "aud": API, "sub": "agent-1",
        "exp": now + 600, "iat": now, "scope": "tool:svc:getItem", "token_type": "Bearer",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            answer.as_object_mut().unwrap().remove(k);
        } else {
            answer[k] = v.clone();
        }
    }
    answer
}

async fn fixture() -> (Endpoint, support::RecordingUpstream, support::TestRuntime) {
    let endpoint = endpoint().await;
    let (upstream, rt) = runtime_with_auth(json!({
        "validationProfile": "oauth2_introspection",
        "issuer": ISS,
        "audience": API,
        "introspectionURL": endpoint.url,
        "clientId": { "type": "literal", "value": "rs-client" },
        "clientSecret": { "type": "literal", "value": "rs-secret-canary-7f3a" },
        "negativeCacheSeconds": 1,
    }))
    .await;
    (endpoint, upstream, rt)
}

#[tokio::test]
async fn answers_that_are_not_a_valid_active_access_token_are_401() {
    let (ep, upstream, rt) = fixture().await;
    let cases = [
        ("I01 inactive", json!({"active": false})),
        ("I01 active as a string", active(json!({"active": "true"}))),
        ("I06 expired", active(json!({"exp": now() - 3600}))),
        (
            "I06 audience of another app",
            active(json!({"aud": "https://other.test"})),
        ),
        ("I06 no audience", active(json!({"aud": null}))),
        (
            "I06 foreign issuer",
            active(json!({"iss": "https://evil.test"})),
        ),
        (
            "I09 refresh token",
            active(json!({"token_type": "refresh_token"})),
        ),
        // Issue #14 item 12: without `exp` the start claims still count.
        (
            "I06 no exp, not yet valid",
            active(json!({"exp": null, "nbf": now() + 3600})),
        ),
        (
            "I06 no exp, issued in the future",
            active(json!({"exp": null, "iat": now() + 3600})),
        ),
        (
            "R13 sub with the reserved client prefix",
            active(json!({"sub": "client:agent-1"})),
        ),
    ];
    for (i, (case, answer)) in cases.into_iter().enumerate() {
        ep.answer(Answer::Json(answer));
        // A distinct token per case: answers are cached per token.
        assert_invalid_token(&catalog(&rt, &format!("opaque-{i}")).await, case);
    }
    // I09: the runtime says what it expects.
    let form = ep.last_form.lock().unwrap().clone();
    assert!(
        form.contains("token_type_hint=access_token"),
        "I09 hint: {form}"
    );
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_endpoint_that_fails_hangs_or_answers_garbage_fails_closed_with_503() {
    let (ep, upstream, rt) = fixture().await;
    let cases = [
        ("I03 500", Answer::Status(500)),
        ("I03 503", Answer::Status(503)),
        ("I05 not JSON", Answer::Raw("<html>oops</html>")),
        ("I05 JSON but not an object", Answer::Raw("[true]")),
        (
            "I05 deeply nested",
            Answer::Raw(Box::leak("[".repeat(100_000).into_boxed_str())),
        ),
        ("I05 5 MB body", Answer::Huge),
    ];
    for (i, (case, answer)) in cases.into_iter().enumerate() {
        ep.answer(answer);
        let reply = catalog(&rt, &format!("opaque-{i}")).await;
        assert_eq!(reply.status, 503, "{case}: {}", reply.body);
        assert!(reply.retry_after.is_some(), "{case}: Retry-After");
    }
    // I04: a hanging endpoint is cut off by the total timeout, never waited on forever.
    ep.answer(Answer::Hang);
    let started = Instant::now();
    let reply = catalog(&rt, "opaque-hang").await;
    assert_eq!(reply.status, 503, "I04: {}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "I04: bounded by the 5 s total timeout, took {:?}",
        started.elapsed()
    );
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn cached_answers_keep_scopes_per_request_and_credentials_stay_out_of_sight() {
    let (ep, upstream, rt) = fixture().await;
    ep.answer(Answer::Json(active(json!({}))));
    let token = "opaque-cached";
    assert_eq!(execute(&rt, token, "svc:getItem").await.status, 200);
    let calls = ep.calls.load(Ordering::SeqCst);
    // I08: the cached answer is not a decision; a tool outside its scopes is still refused.
    let denied = execute(&rt, token, "svc:createItem").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(
        ep.calls.load(Ordering::SeqCst),
        calls,
        "served from the cache"
    );
    // I10: client credentials travel only as Basic auth to the introspection origin ...
    let authorization = ep.last_authorization.lock().unwrap().clone();
    assert!(authorization.starts_with("Basic "), "{authorization}");
    assert!(!ep
        .last_form
        .lock()
        .unwrap()
        .contains("rs-secret-canary-7f3a"));
    // ... and never reach the upstream, the audit log or an API response.
    for request in upstream.requests() {
        let text = format!("{request:?}");
        assert!(!text.contains("rs-secret-canary-7f3a") && !text.contains(token));
    }
    let audit = std::fs::read_to_string(&rt.runtime.options.audit_path).unwrap();
    assert!(!audit.contains("rs-secret-canary-7f3a"));
    assert!(!audit.contains(token), "the audit log never holds a token");
}

async fn principal_of(rt: &support::TestRuntime, token: &str) -> String {
    let info = get(rt, "/v1/runtime/info", Some(&format!("Bearer {token}"))).await;
    info.json()["auth"]["principal"]
        .as_str()
        .unwrap_or_else(|| panic!("no principal: {}", info.body))
        .to_owned()
}

/// Issue #17: the reference runtime accepts an active answer with neither `sub` nor
/// `client_id`. Portcullis does too, under a documented placeholder that is distinct per token,
/// stable for one token, reveals nothing of it, and cannot be claimed by a real subject.
#[tokio::test]
async fn an_active_answer_without_sub_or_client_id_gets_a_per_token_placeholder_principal() {
    let (ep, upstream, rt) = fixture().await;
    ep.answer(Answer::Json(active(json!({ "sub": null }))));
    let first = principal_of(&rt, "opaque-anonymous-1").await;
    let hex = first
        .strip_prefix("introspected:")
        .unwrap_or_else(|| panic!("{first}"));
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{first}"
    );
    assert_eq!(principal_of(&rt, "opaque-anonymous-1").await, first);
    assert_ne!(principal_of(&rt, "opaque-anonymous-2").await, first);

    let call = execute(&rt, "opaque-anonymous-1", "svc:getItem").await;
    assert_eq!(call.status, 200, "{}", call.body);
    assert_eq!(upstream.requests().len(), 1);
    let audit = rt.audit_file().await;
    assert!(
        audit
            .iter()
            .any(|r| r["eventType"] == "tool_execution" && r["principal"] == first.as_str()),
        "the call is audited under the placeholder: {audit:?}"
    );

    // A real subject cannot take the placeholder's namespace.
    ep.answer(Answer::Json(active(json!({ "sub": first }))));
    assert_invalid_token(
        &catalog(&rt, "opaque-claims-placeholder").await,
        "sub with the reserved introspected prefix",
    );
}
