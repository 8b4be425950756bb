//! HTTP hardening cases of the security checklist that need a raw socket or a real server:
//! oversized bodies (H01), request-smuggling shapes (H07) and client-supplied identity headers
//! (H11). Each is refused (or, for `Content-Length` with `Transfer-Encoding`, read by the
//! latter with the connection closed after the answer, as RFC 9112 requires), and the server
//! keeps serving.

use super::support;
use super::support::auth;

use std::time::Duration;

use auth::*;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Send `request` as raw bytes and return what the server answered before closing or going
/// quiet (bounded: 5 s, 64 KiB).
async fn raw(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while answer.len() < 64 << 10 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn runtime() -> (support::RecordingUpstream, support::TestRuntime) {
    let upstream = support::start_upstream().await;
    let paths = json!({ "/items": { "post": { "operationId": "createItem", "security": [] } } });
    let rt = support::start_runtime(
        support::config_for("a.json", json!({})),
        &[("a.json", support::openapi(&upstream.url, paths, json!({})))],
    )
    .await;
    (upstream, rt)
}

#[tokio::test]
async fn h01_a_body_over_10_mib_is_refused_with_413_declared_or_chunked() {
    let (upstream, rt) = runtime().await;
    let big = format!(
        "{{\"toolId\":\"svc:createItem\",\"body\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(11 << 20)
    );
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // The same without a Content-Length: chunks are counted as they arrive.
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(1 << 20)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    // The server may answer 413 and close before reading the rest of the stream.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    assert!(upstream.requests().is_empty());
    let (status, _) = rt.execute(json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(status, 200, "the server keeps serving");
}

#[tokio::test]
async fn h07_request_smuggling_shapes_are_refused() {
    let (upstream, rt) = runtime().await;
    let host = rt.url.trim_start_matches("http://").to_owned();
    let body = r#"{"toolId":"svc:createItem"}"#;
    let cases = [
        (
            "Content-Length and Transfer-Encoding",
            format!(
                "POST /v1/tools/execute HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len(),
                body.len()
            ),
        ),
        (
            "two different Content-Length headers",
            format!(
                "POST /v1/tools/execute HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nContent-Length: 3\r\n\r\n{body}",
                body.len()
            ),
        ),
        (
            "an obfuscated Transfer-Encoding",
            format!(
                "POST /v1/tools/execute HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: xchunked\r\n\r\n{body}"
            ),
        ),
    ];
    for (i, (case, request)) in cases.into_iter().enumerate() {
        let answer = raw(&rt.url, request.as_bytes()).await;
        let status = status_of(&answer);
        let refused = status.is_none_or(|s| (400..500).contains(&s));
        // RFC 9112 6.3: with both headers, Transfer-Encoding governs and the server must close
        // the connection after answering, so nothing can be smuggled behind the body.
        let framed_by_te_then_closed = i == 0
            && answer
                .to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n");
        assert!(
            refused || framed_by_te_then_closed,
            "{case}: refused, or read by Transfer-Encoding and closed; got {answer:?}"
        );
    }
    assert!(
        upstream.requests().len() <= 1,
        "at most the one chunked request, read by its Transfer-Encoding, reached the upstream"
    );
    let (status, _) = rt.execute(json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(status, 200, "the server keeps serving");
}

#[tokio::test]
async fn h11_client_supplied_identity_headers_grant_nothing() {
    let keys = keys();
    let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
    let (upstream, rt) = runtime_with_auth(json!({
        "validationProfile": "oidc_jwks", "issuer": "https://issuer.test",
        "jwksURL": jwks.url, "audience": API
    }))
    .await;
    let response = rt
        .client
        .get(format!("{}/v1/catalog/effective", rt.url))
        .header("x-forwarded-user", "admin")
        .header("x-auth-request-user", "admin")
        .header("x-auth-scopes", "bundle:svc audit:read")
        .header("x-original-path", "/v1/runtime/info")
        .header("x-forwarded-for", "127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn h02_a_compressed_request_body_is_never_inflated() {
    let (upstream, rt) = runtime().await;
    // A small gzip member that would inflate to a large JSON document: the runtime reads the
    // bytes as sent (not JSON), so the request is refused without decompressing anything.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, "[".repeat(1 << 20).as_bytes()).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 16 << 10, "{}", bomb.len());
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn h06_http2_is_not_served() {
    let (_upstream, rt) = runtime().await;
    // HTTP/2 with prior knowledge (h2c): the server speaks HTTP/1.1 only, so no stream floods.
    let answer = raw(&rt.url, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "no HTTP/2 frames, got {answer:?}"
    );
    let (status, _) = rt.execute(json!({ "toolId": "svc:createItem" })).await;
    assert_eq!(status, 200);
}
