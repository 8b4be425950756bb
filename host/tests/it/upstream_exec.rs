//! Upstream execution against a real loopback HTTP server that records every request it gets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis::catalog::{ContentType, ParamLocation, Parameter, RequestBody, Safety, Tool};
use portcullis::config::UpstreamLimits;
use portcullis::upstream::{
    build_request, AppliedCredentials, ExecuteArgs, RequestError, Upstream, UpstreamError,
};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Raw path and query, exactly as sent.
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A loopback upstream. Routes:
/// `/status/{code}`, `/flaky` (503 twice, then 200), `/retry-after/{v}` (503 + `Retry-After: v`
/// once, then 200), `/big/{n}` (n bytes with Content-Length), `/stream/{n}` (n bytes chunked),
/// `/slow` (answers after 2 s), `/redirect/{port}` (302 to `http://127.0.0.1:{port}/landed`),
/// `/goto/{code}?to={url}` (that redirect status to the percent-decoded `url`), anything else:
/// 200 `ok`.
struct Upstream_ {
    addr: SocketAddr,
    log: Log,
}

impl Upstream_ {
    async fn start() -> Self {
        let log: Log = Arc::default();
        let app = axum::Router::new().fallback(handle).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, log }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

async fn handle(State(log): State<Log>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let calls_here = {
        let mut log = log.lock().unwrap();
        log.push(Seen {
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
            body,
        });
        log.iter().filter(|s| s.target.starts_with(&path)).count()
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["status", code] => StatusCode::from_u16(code.parse().unwrap_or(500))
            .unwrap()
            .into_response(),
        ["flaky"] if calls_here < 3 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        ["retry-after", v] if calls_here == 1 => {
            let mut r = StatusCode::SERVICE_UNAVAILABLE.into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_str(v).unwrap());
            r
        }
        ["big", n] => vec![b'x'; n.parse().unwrap()].into_response(),
        ["stream", n] => {
            let n: usize = n.parse().unwrap();
            let chunks = (0..n.div_ceil(1024)).map(move |i| {
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024.min(n - i * 1024)]))
            });
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        ["slow"] => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "late".into_response()
        }
        ["redirect", port] => {
            let mut r = StatusCode::FOUND.into_response();
            let to = format!("http://127.0.0.1:{port}/landed");
            r.headers_mut()
                .insert("location", HeaderValue::from_str(&to).unwrap());
            r
        }
        ["goto", code] => {
            let to = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .map(|t| {
                    percent_encoding::percent_decode_str(t)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            let mut r = StatusCode::from_u16(code.parse().unwrap())
                .unwrap()
                .into_response();
            r.headers_mut()
                .insert("location", HeaderValue::from_str(&to).unwrap());
            r
        }
        _ => ([("content-type", "text/plain")], "ok").into_response(),
    }
}

fn param(name: &str, original: &str, location: ParamLocation, required: bool) -> Parameter {
    Parameter {
        name: name.into(),
        original_name: original.into(),
        location,
        required,
    }
}

fn tool(method: &str, base: &str, path: &str) -> Tool {
    let idempotent = matches!(method, "GET" | "PUT" | "DELETE");
    Tool {
        id: "svc:op".into(),
        method: method.into(),
        path: path.into(),
        servers: vec![format!("{base}/")],
        safety: Safety {
            idempotent,
            ..Safety::default()
        },
        ..Tool::default()
    }
}

fn limits() -> UpstreamLimits {
    UpstreamLimits {
        connect_timeout_ms: Some(500),
        timeout_ms: Some(1_000),
        max_response_bytes: Some(64 * 1024),
        max_attempts: Some(3),
        max_retry_after_ms: Some(2_000),
    }
}

fn no_args() -> ExecuteArgs {
    ExecuteArgs::default()
}

fn no_creds() -> AppliedCredentials {
    AppliedCredentials::default()
}

async fn call(
    t: &Tool,
    args: &ExecuteArgs,
    creds: &AppliedCredentials,
) -> Result<portcullis::upstream::UpstreamResponse, UpstreamError> {
    let upstream = Upstream::new(&limits()).expect("client");
    upstream
        .send(build_request(t, args, creds).expect("request builds"))
        .await
}

#[tokio::test]
async fn path_args_follow_declared_order_and_are_percent_encoded() {
    let up = Upstream_::start().await;
    let mut t = tool("GET", &up.base(), "/items/{outer}/x/{inner}");
    // Declared in the reverse of template order: positional arguments bind to the parameters in
    // the order the tool's `pathParams` lists them, as the reference runtime and its client do.
    t.path_params = vec![
        param("inner", "inner", ParamLocation::Path, true),
        param("outer", "outer", ParamLocation::Path, true),
    ];
    let args = ExecuteArgs {
        path_args: vec!["first".into(), "a/b?c#d/../..".into()],
        ..no_args()
    };
    let resp = call(&t, &args, &no_creds()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        up.seen()[0].target,
        "/items/a%2Fb%3Fc%23d%2F..%2F../x/first"
    );
}

#[tokio::test]
async fn unknown_flag_is_rejected_and_names_the_key() {
    let t = tool("GET", "http://127.0.0.1:9", "/x");
    let args = ExecuteArgs {
        flags: BTreeMap::from([("nope".into(), "1".into())]),
        ..no_args()
    };
    let err = build_request(&t, &args, &no_creds()).unwrap_err();
    assert!(matches!(err, RequestError::UnknownFlags { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn missing_required_flag_is_rejected_and_named() {
    let mut t = tool("GET", "http://127.0.0.1:9", "/x");
    t.flags = vec![param("state", "state", ParamLocation::Query, true)];
    let err = build_request(&t, &no_args(), &no_creds()).unwrap_err();
    assert!(matches!(err, RequestError::MissingFlag { .. }));
    assert!(err.to_string().contains("state"), "{err}");
}

#[tokio::test]
async fn query_header_and_cookie_flags_arrive() {
    let up = Upstream_::start().await;
    let mut t = tool("GET", &up.base(), "/search");
    t.flags = vec![
        param("q", "q", ParamLocation::Query, true),
        param("per-page", "per_page", ParamLocation::Query, false),
        param("trace-id", "X-Trace-Id", ParamLocation::Header, false),
        param("session", "session", ParamLocation::Cookie, false),
        param("lang", "lang", ParamLocation::Cookie, false),
    ];
    let flags = BTreeMap::from([
        ("q".to_string(), "a b&c=d".to_string()),
        ("per_page".to_string(), "5".to_string()), // by original name
        ("trace-id".to_string(), "t-1".to_string()),
        ("session".to_string(), "s1".to_string()),
        ("lang".to_string(), "en".to_string()),
    ]);
    let resp = call(&t, &ExecuteArgs { flags, ..no_args() }, &no_creds())
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let seen = &up.seen()[0];
    assert_eq!(seen.target, "/search?per_page=5&q=a%20b%26c%3Dd");
    assert_eq!(seen.headers["x-trace-id"], "t-1");
    assert_eq!(seen.headers["cookie"], "lang=en; session=s1");
}

#[tokio::test]
async fn body_and_declared_content_type_arrive() {
    let up = Upstream_::start().await;
    let mut t = tool("POST", &up.base(), "/tickets");
    t.request_body = Some(RequestBody {
        required: true,
        content_types: vec![ContentType {
            media_type: "application/merge-patch+json".into(),
            schema: None,
        }],
    });
    let args = ExecuteArgs {
        body: Some(Bytes::from_static(br#"{"title":"jam"}"#)),
        ..no_args()
    };
    let resp = call(&t, &args, &no_creds()).await.unwrap();
    assert_eq!(
        (resp.status, resp.content_type.as_deref(), &resp.body[..]),
        (200, Some("text/plain"), &b"ok"[..])
    );
    let seen = &up.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(&seen.body[..], br#"{"title":"jam"}"#);
    assert_eq!(seen.headers["content-type"], "application/merge-patch+json");
}

#[tokio::test]
async fn upstream_4xx_and_5xx_pass_through_as_ok_with_status() {
    let up = Upstream_::start().await;
    for code in [403u16, 404, 500] {
        let t = tool("GET", &up.base(), &format!("/status/{code}"));
        let resp = call(&t, &no_args(), &no_creds()).await.unwrap();
        assert_eq!((resp.status, resp.attempts), (code, 1));
    }
}

#[tokio::test]
async fn get_is_retried_on_503_until_200() {
    let up = Upstream_::start().await;
    let resp = call(&tool("GET", &up.base(), "/flaky"), &no_args(), &no_creds())
        .await
        .unwrap();
    assert_eq!((resp.status, resp.attempts), (200, 3));
    assert_eq!(up.seen().len(), 3);
}

#[tokio::test]
async fn post_is_not_retried_on_503() {
    let up = Upstream_::start().await;
    let resp = call(&tool("POST", &up.base(), "/flaky"), &no_args(), &no_creds())
        .await
        .unwrap();
    assert_eq!((resp.status, resp.attempts), (503, 1));
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_retry() {
    let up = Upstream_::start().await;
    let started = Instant::now();
    let resp = call(
        &tool("GET", &up.base(), "/retry-after/1"),
        &no_args(),
        &no_creds(),
    )
    .await
    .unwrap();
    assert_eq!((resp.status, resp.attempts), (200, 2));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
    assert!(resp.latency >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_longer_than_the_limit_is_not_retried() {
    let up = Upstream_::start().await;
    let started = Instant::now();
    let resp = call(
        &tool("GET", &up.base(), "/retry-after/60"),
        &no_args(),
        &no_creds(),
    )
    .await
    .unwrap();
    assert_eq!((resp.status, resp.attempts), (503, 1));
    assert_eq!(up.seen().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn response_larger_than_the_cap_is_upstream_response_too_large() {
    let up = Upstream_::start().await;
    for path in ["/big/70000", "/stream/70000"] {
        let err = call(&tool("GET", &up.base(), path), &no_args(), &no_creds())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "upstream_response_too_large", "{path}: {err}");
    }
    // At the cap exactly is fine, chunked or not.
    for path in ["/big/65536", "/stream/65536"] {
        let resp = call(&tool("GET", &up.base(), path), &no_args(), &no_creds())
            .await
            .unwrap();
        assert_eq!(resp.body.len(), 65536, "{path}");
    }
}

#[tokio::test]
async fn connect_refused_is_upstream_connect_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = tool("GET", &format!("http://{addr}"), "/x");
    let err = call(&t, &no_args(), &no_creds()).await.unwrap_err();
    assert_eq!(err.reason(), "upstream_connect_failed", "{err}");
}

#[tokio::test]
async fn slow_upstream_beyond_the_timeout_is_upstream_timeout() {
    let up = Upstream_::start().await;
    let started = Instant::now();
    let err = call(&tool("POST", &up.base(), "/slow"), &no_args(), &no_creds())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "upstream_timeout", "{err}");
    assert!(started.elapsed() < Duration::from_millis(1_900));
}

#[tokio::test]
async fn credentialed_request_does_not_follow_a_redirect_to_another_origin() {
    let other = Upstream_::start().await;
    let up = Upstream_::start().await;
    let t = tool(
        "GET",
        &up.base(),
        &format!("/redirect/{}", other.addr.port()),
    );
    let creds = AppliedCredentials {
        headers: vec![(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer CANARY"),
        )],
        ..no_creds()
    };
    let resp = call(&t, &no_args(), &creds).await.unwrap();
    assert_eq!(resp.status, 302);
    assert!(other.seen().is_empty(), "the other origin was contacted");
}

#[tokio::test]
async fn uncredentialed_redirect_to_another_loopback_port_is_not_followed() {
    let other = Upstream_::start().await;
    let up = Upstream_::start().await;
    let t = tool(
        "GET",
        &up.base(),
        &format!("/redirect/{}", other.addr.port()),
    );
    let resp = call(&t, &no_args(), &no_creds()).await.unwrap();
    assert_eq!(resp.status, 302, "the 3xx is passed through");
    assert!(other.seen().is_empty(), "the other origin was contacted");
    assert_eq!(resp.final_origin, up.base());
}

fn goto(code: u16, to: &str) -> String {
    let to: String =
        percent_encoding::utf8_percent_encode(to, percent_encoding::NON_ALPHANUMERIC).collect();
    format!("/goto/{code}?to={to}")
}

/// An `Upstream` whose source `api` may be redirected to `origins`.
fn allowing(origins: &[&str]) -> Upstream {
    let source: portcullis::config::Source = serde_json::from_value(serde_json::json!({
        "type": "openapi", "uri": "x.json", "redirects": { "allowOrigins": origins }
    }))
    .unwrap();
    let sources = BTreeMap::from([("api".to_string(), source)]);
    Upstream::new(&limits())
        .unwrap()
        .with_redirect_origins(&sources)
}

#[tokio::test]
async fn same_origin_redirect_is_followed() {
    let up = Upstream_::start().await;
    let t = tool("GET", &up.base(), &goto(302, "/landed"));
    let resp = call(&t, &no_args(), &no_creds()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(up.seen().last().unwrap().target, "/landed");
}

#[tokio::test]
async fn allowed_origin_redirect_is_followed_and_its_origin_reported() {
    let other = Upstream_::start().await;
    let up = Upstream_::start().await;
    let t = tool(
        "GET",
        &up.base(),
        &goto(302, &format!("{}/landed", other.base())),
    );
    let args = ExecuteArgs {
        flags: BTreeMap::new(),
        ..no_args()
    };
    let upstream = allowing(&[&other.base()]);
    let resp = upstream
        .send_for(build_request(&t, &args, &no_creds()).unwrap(), Some("api"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(other.seen()[0].target, "/landed");
    assert_eq!(resp.final_origin, other.base());
    // The allow-list is per source: another source's call is not redirected.
    let resp = upstream
        .send_for(
            build_request(&t, &args, &no_creds()).unwrap(),
            Some("other"),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(other.seen().len(), 1);
}

#[tokio::test]
async fn a_307_with_a_body_is_never_resent_to_another_origin() {
    let other = Upstream_::start().await;
    let up = Upstream_::start().await;
    let upstream = allowing(&[&other.base()]);
    for code in [307, 308] {
        let t = tool(
            "POST",
            &up.base(),
            &goto(code, &format!("{}/landed", other.base())),
        );
        let args = ExecuteArgs {
            body: Some(Bytes::from_static(b"{\"secret\":\"payload\"}")),
            ..no_args()
        };
        let resp = upstream
            .send_for(build_request(&t, &args, &no_creds()).unwrap(), Some("api"))
            .await
            .unwrap();
        assert_eq!(resp.status, code);
    }
    assert!(other.seen().is_empty(), "the body went to another origin");
    // Same origin, the body follows the 307.
    let t = tool("POST", &up.base(), &goto(307, "/landed"));
    let args = ExecuteArgs {
        body: Some(Bytes::from_static(b"same")),
        ..no_args()
    };
    let resp = call(&t, &args, &no_creds()).await.unwrap();
    assert_eq!(resp.status, 200);
    let last = up.seen().last().unwrap().clone();
    assert_eq!(
        (last.target.as_str(), &last.body[..]),
        ("/landed", &b"same"[..])
    );
}

#[tokio::test]
async fn redirect_to_a_metadata_or_unspecified_address_is_refused_even_when_allowed() {
    let up = Upstream_::start().await;
    let targets = [
        "http://169.254.169.254",
        "http://[::ffff:169.254.169.254]",
        "http://[fe80::1]",
        "http://10.0.0.1",
        "http://0.0.0.0",
        "http://[::]",
    ];
    let upstream = allowing(&targets);
    for target in targets {
        let t = tool(
            "GET",
            &up.base(),
            &goto(302, &format!("{target}/latest/meta-data")),
        );
        let err = upstream
            .send_for(
                build_request(&t, &no_args(), &no_creds()).unwrap(),
                Some("api"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "upstream_redirect_blocked", "{target}: {err}");
        assert!(
            err.to_string().contains("address refused"),
            "{target}: {err}"
        );
    }
}

#[tokio::test]
async fn redirect_to_a_non_http_scheme_is_blocked() {
    let up = Upstream_::start().await;
    let t = tool("GET", &up.base(), &goto(302, "file:///etc/passwd"));
    let err = call(&t, &no_args(), &no_creds()).await.unwrap_err();
    assert_eq!(err.reason(), "upstream_redirect_blocked", "{err}");
}

#[tokio::test]
async fn credentials_override_a_same_named_caller_header() {
    let up = Upstream_::start().await;
    let mut t = tool("GET", &up.base(), "/x");
    t.flags = vec![param("auth", "Authorization", ParamLocation::Header, false)];
    let args = ExecuteArgs {
        flags: BTreeMap::from([("auth".into(), "Bearer caller".into())]),
        ..no_args()
    };
    let creds = AppliedCredentials {
        headers: vec![(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer real"),
        )],
        ..no_creds()
    };
    call(&t, &args, &creds).await.unwrap();
    let seen = &up.seen()[0];
    let values: Vec<_> = seen.headers.get_all("authorization").iter().collect();
    assert_eq!(values, ["Bearer real"]);
}

#[tokio::test]
async fn error_display_never_contains_a_query_string_secret() {
    let creds = AppliedCredentials {
        query: vec![("api_key".into(), "CANARY".into())],
        ..no_creds()
    };
    // Connect failure.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = tool("GET", &format!("http://user:CANARY@{addr}"), "/x");
    let err = call(&t, &no_args(), &creds).await.unwrap_err();
    assert_eq!(err.reason(), "upstream_connect_failed");
    for text in [err.to_string(), format!("{err:?}"), error_chain(&err)] {
        assert!(!text.contains("CANARY"), "{text}");
    }
    // Timeout and size cap, where the URL reached the server.
    let up = Upstream_::start().await;
    for path in ["/slow", "/big/70000"] {
        let err = call(&tool("POST", &up.base(), path), &no_args(), &creds)
            .await
            .unwrap_err();
        for text in [err.to_string(), format!("{err:?}"), error_chain(&err)] {
            assert!(!text.contains("CANARY"), "{text}");
            assert!(text.contains(path) || !text.contains("127.0.0.1"), "{text}");
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[tokio::test]
async fn missing_base_url_is_reported_by_send() {
    let mut t = tool("GET", "http://127.0.0.1:9", "/x");
    t.servers.clear();
    let err = call(&t, &no_args(), &no_creds()).await.unwrap_err();
    assert_eq!(err.reason(), "missing_base_url");
}
