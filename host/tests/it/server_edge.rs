//! The HTTP edge before any work (issue 14, items 1, 8, 12): browsers (cross-site requests,
//! DNS rebinding, CORS), connection limits (slowloris, caps), and what the handshake and
//! refresh disclose or require.

use super::support;
use super::support::auth;

use std::time::{Duration, Instant};

use auth::*;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read off a raw socket.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

fn addr(rt: &TestRuntime) -> String {
    rt.url.trim_start_matches("http://").to_owned()
}

/// Send exactly `headers` (plus `Connection: close` and the body length) and read the answer.
async fn send(
    rt: &TestRuntime,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let mut stream = TcpStream::connect(addr(rt)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("the runtime answers")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Raw {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn no_auth_runtime(server: Value) -> (RecordingUpstream, TestRuntime) {
    let upstream = start_upstream().await;
    let document = openapi(
        &upstream.url,
        json!({ "/items": { "post": { "operationId": "createItem" }, "get": { "operationId": "listItems" } } }),
        json!({}),
    );
    let rt = start_runtime(
        config_for("a.json", json!({ "runtime": { "server": server } })),
        &[("a.json", document)],
    )
    .await;
    (upstream, rt)
}

#[tokio::test]
async fn cross_site_text_plain_post_is_refused_before_any_work() {
    let (upstream, rt) = no_auth_runtime(json!({})).await;
    let host = addr(&rt);
    let body = r#"{"toolId":"svc:createItem","body":{"name":"x"}}"#;
    // What an HTML form or a no-cors fetch on another site can send without a preflight.
    for (case, headers) in [
        (
            "foreign origin",
            vec![
                ("host", host.as_str()),
                ("content-type", "text/plain"),
                ("origin", "https://evil.example"),
            ],
        ),
        (
            "null origin",
            vec![
                ("host", host.as_str()),
                ("content-type", "text/plain"),
                ("origin", "null"),
            ],
        ),
        (
            "cross-site fetch",
            vec![
                ("host", host.as_str()),
                ("content-type", "text/plain"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "another localhost port",
            vec![
                ("host", host.as_str()),
                ("content-type", "application/json"),
                ("origin", "http://127.0.0.1:1"),
                ("sec-fetch-site", "same-site"),
            ],
        ),
    ] {
        let reply = send(&rt, "POST", "/v1/tools/execute", &headers, body).await;
        assert_eq!(reply.status, 403, "{case}: {}", reply.body);
        assert_eq!(reply.body.trim(), "cross_origin_refused", "{case}");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{case}"
        );
    }
    // Without an origin, a body that is not declared JSON is still refused.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut headers = vec![("host", host.as_str())];
        headers.extend(content_type.map(|c| ("content-type", c)));
        let reply = send(&rt, "POST", "/v1/tools/execute", &headers, body).await;
        assert_eq!(reply.status, 415, "{content_type:?}: {}", reply.body);
    }
    assert!(upstream.requests().is_empty(), "no upstream call");
    let records = rt.audit_file().await;
    assert!(
        !records.iter().any(|r| r["toolId"] == "svc:createItem"),
        "nothing run, nothing audited: {records:?}"
    );
    // The same call as JSON from no browser runs.
    let reply = send(
        &rt,
        "POST",
        "/v1/tools/execute",
        &[
            ("host", &host),
            ("content-type", "application/json; charset=utf-8"),
        ],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_foreign_host_is_misdirected_on_every_route() {
    let (_upstream, rt) = no_auth_runtime(json!({})).await;
    let port = addr(&rt).rsplit_once(':').unwrap().1.to_owned();
    let rebound = format!("attacker.example:{port}");
    let routes = [
        ("GET", "/v1/runtime/info"),
        ("GET", "/v1/catalog/effective"),
        ("GET", "/v1/audit/events"),
        ("POST", "/v1/refresh"),
        ("POST", "/v1/tools/execute"),
        ("GET", "/.well-known/oauth-protected-resource"),
        ("POST", "/v1/runtime/heartbeat"),
        ("POST", "/v1/runtime/session-close"),
        ("POST", "/v1/runtime/stop"),
    ];
    for (method, path) in routes {
        let headers = [
            ("host", rebound.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ];
        let reply = send(&rt, method, path, &headers, "{}").await;
        assert_eq!(reply.status, 421, "{method} {path}: {}", reply.body);
        let problem: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(problem["code"], "misdirected_request");
        assert!(problem["detail"]
            .as_str()
            .unwrap()
            .contains("runtime.server.publicUrls"));
    }
    for host in [
        "attacker.example".to_owned(),
        format!("127.0.0.1:{}", port.parse::<u16>().unwrap() + 1),
        format!("localhost.:{port}"),
        format!("user@127.0.0.1:{port}"),
    ] {
        let reply = send(&rt, "GET", "/v1/runtime/info", &[("host", &host)], "").await;
        assert!(
            matches!(reply.status, 400 | 421),
            "{host}: {}",
            reply.status
        );
    }
    let reply = send(&rt, "GET", "/v1/runtime/info", &[], "").await;
    assert_eq!(reply.status, 400, "no Host");
    let both = format!("127.0.0.1:{port}");
    let reply = send(
        &rt,
        "GET",
        "/v1/runtime/info",
        &[("host", &both), ("host", &rebound)],
        "",
    )
    .await;
    assert_eq!(reply.status, 400, "two Hosts");
    let absolute = format!("http://{rebound}/v1/runtime/info");
    let reply = send(&rt, "GET", &absolute, &[("host", &both)], "").await;
    assert_eq!(
        reply.status, 421,
        "absolute-form target naming another host"
    );
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        let reply = send(&rt, "GET", "/v1/runtime/info", &[("host", &host)], "").await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
}

#[tokio::test]
async fn configured_public_urls_and_cors_origins_are_the_only_additions() {
    let (_upstream, rt) = no_auth_runtime(json!({
        "publicUrls": ["https://portcullis.example.com"],
        "cors": { "allowedOrigins": ["https://app.example.com"] }
    }))
    .await;
    let host = addr(&rt);
    for public in [
        "portcullis.example.com",
        "portcullis.example.com:443",
        "PORTCULLIS.example.com",
    ] {
        let reply = send(&rt, "GET", "/v1/runtime/info", &[("host", public)], "").await;
        assert_eq!(reply.status, 200, "{public}");
    }
    let reply = send(
        &rt,
        "GET",
        "/v1/runtime/info",
        &[("host", "portcullis.example.com:8443")],
        "",
    )
    .await;
    assert_eq!(reply.status, 421);

    let app = [
        ("host", host.as_str()),
        ("origin", "https://app.example.com"),
        ("sec-fetch-site", "cross-site"),
    ];
    let reply = send(&rt, "GET", "/v1/catalog/effective", &app, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert!(reply
        .header("vary")
        .unwrap()
        .to_ascii_lowercase()
        .contains("origin"));
    assert!(reply.header("access-control-allow-credentials").is_none());

    let preflight = [
        ("host", host.as_str()),
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type",
        ),
    ];
    let reply = send(&rt, "OPTIONS", "/v1/tools/execute", &preflight, "").await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert!(reply
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));

    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "null",
    ] {
        let mut headers = preflight;
        headers[1] = ("origin", origin);
        let reply = send(&rt, "OPTIONS", "/v1/tools/execute", &headers, "").await;
        assert_eq!(reply.status, 403, "{origin}");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        let reply = send(
            &rt,
            "GET",
            "/v1/catalog/effective",
            &[("host", &host), ("origin", origin)],
            "",
        )
        .await;
        assert_eq!(reply.status, 403, "{origin}");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // The runtime's own origin is not foreign.
    let own = format!("http://{host}");
    let reply = send(
        &rt,
        "GET",
        "/v1/catalog/effective",
        &[
            ("host", &host),
            ("origin", &own),
            ("sec-fetch-site", "same-origin"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn refresh_is_a_json_post() {
    let (_upstream, rt) = no_auth_runtime(json!({})).await;
    let host = addr(&rt);
    let reply = send(&rt, "GET", "/v1/refresh", &[("host", &host)], "").await;
    assert_eq!(reply.status, 405, "{}", reply.body);
    let reply = send(&rt, "POST", "/v1/refresh", &[("host", &host)], "").await;
    assert_eq!(reply.status, 415, "{}", reply.body);
    let reply = send(
        &rt,
        "POST",
        "/v1/refresh",
        &[("host", &host), ("content-type", "application/json")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = send(
        &rt,
        "POST",
        "/v1/refresh",
        &[("host", &host), ("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

const ISS: &str = "https://issuer.test";

struct AuthFixture {
    keys: Keys,
    _jwks: JwksServer,
    rt: TestRuntime,
}

impl AuthFixture {
    /// A runtime with auth on and `server` merged into `runtime.server`.
    async fn start(server: Value) -> Self {
        let keys = keys();
        let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
        let mut server = server;
        server["auth"] = json!({ "validationProfile": "oidc_jwks", "issuer": ISS, "jwksURL": jwks.url, "audience": API });
        let (_upstream, rt) = no_auth_runtime(server).await;
        Self {
            keys,
            _jwks: jwks,
            rt,
        }
    }

    fn bearer(&self, scope: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("r1".into());
        let now = now();
        let claims = json!({ "iss": ISS, "aud": API, "sub": "agent-1", "exp": now + 600, "iat": now, "scope": scope });
        format!("Bearer {}", sign(&h, &claims, &self.keys.rsa))
    }
}

#[tokio::test]
async fn refresh_needs_the_runtime_refresh_scope_when_auth_is_on() {
    let f = AuthFixture::start(json!({})).await;
    let host = addr(&f.rt);
    let json_post = |authorization: String| {
        let host = host.clone();
        let rt = &f.rt;
        async move {
            send(
                rt,
                "POST",
                "/v1/refresh",
                &[
                    ("host", &host),
                    ("content-type", "application/json"),
                    ("authorization", &authorization),
                ],
                "",
            )
            .await
        }
    };
    let reply = json_post(f.bearer("bundle:svc audit:read")).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body.trim(), "insufficient_scope");
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"runtime:refresh\""));
    let reply = json_post(f.bearer("runtime:refresh")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let denials: Vec<Value> =
        f.rt.audit_file()
            .await
            .into_iter()
            .filter(|r| r["eventType"] == "authz_denial")
            .collect();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0]["toolId"], "runtime.refresh");
}

#[tokio::test]
async fn runtime_info_without_a_token_discloses_no_paths_when_auth_is_on() {
    let f = AuthFixture::start(json!({})).await;
    let host = addr(&f.rt);
    let state = f.rt.dir.path().to_str().unwrap().to_owned();
    let reply = send(&f.rt, "GET", "/v1/runtime/info", &[("host", &host)], "").await;
    assert_eq!(reply.status, 200);
    assert!(!reply.body.contains(&state), "{}", reply.body);
    let info: Value = serde_json::from_str(&reply.body).unwrap();
    for field in ["auditPath", "stateDir", "cacheDir"] {
        assert!(info.get(field).is_none(), "{field}");
    }
    assert_eq!(info["auth"]["required"], true);
    let bad = send(
        &f.rt,
        "GET",
        "/v1/runtime/info",
        &[("host", &host), ("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(bad.status, 401);
    assert!(!bad.body.contains(&state));
    let token = f.bearer("bundle:svc");
    let reply = send(
        &f.rt,
        "GET",
        "/v1/runtime/info",
        &[("host", &host), ("authorization", &token)],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let info: Value = serde_json::from_str(&reply.body).unwrap();
    assert!(info["auditPath"].as_str().unwrap().starts_with(&state));
}

#[tokio::test]
async fn a_preflight_never_stands_in_for_authentication() {
    let f =
        AuthFixture::start(json!({ "cors": { "allowedOrigins": ["https://app.example.com"] } }))
            .await;
    let host = addr(&f.rt);
    let preflight = [
        ("host", host.as_str()),
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "authorization"),
    ];
    let reply = send(&f.rt, "OPTIONS", "/v1/catalog/effective", &preflight, "").await;
    assert_eq!(reply.status, 204);
    let real = [
        ("host", host.as_str()),
        ("origin", "https://app.example.com"),
        ("sec-fetch-site", "cross-site"),
    ];
    let reply = send(&f.rt, "GET", "/v1/catalog/effective", &real, "").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
}

#[tokio::test]
async fn a_runtime_without_auth_refuses_a_network_address_unless_told_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        openapi("http://127.0.0.1:1", json!({}), json!({})),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".cli.json"),
        config_for("a.json", json!({})).to_string(),
    )
    .unwrap();
    let state = dir.path().join("state");
    let options = portcullis::app::RuntimeOptions {
        scopes: portcullis::config::ScopePaths {
            project: dir.path().join(".cli.json"),
            ..Default::default()
        },
        instance_id: "edge".into(),
        audit_path: state.join("audit.log"),
        cache_dir: state.join("cache"),
        state_dir: state,
        url: "http://0.0.0.0:0".into(),
        settings: std::sync::Arc::new(portcullis::app::Settings),
    };
    let runtime = portcullis::app::Runtime::start(options).await.unwrap();
    // Any non-loopback address; the listener is never served.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        portcullis::server::serve(listener, runtime),
    )
    .await;
    let error = outcome.expect("refused at once, not served").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("--allow-unauthenticated-network"),
        "{message}"
    );
    assert!(message.contains("runtime.server.auth"), "{message}");
}

#[tokio::test]
async fn a_slowloris_client_is_disconnected_after_the_header_timeout() {
    let (_upstream, rt) =
        no_auth_runtime(json!({ "connections": { "headerReadTimeoutMs": 500 } })).await;
    let mut stream = TcpStream::connect(addr(&rt)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(
            format!(
                "GET /v1/runtime/info HTTP/1.1\r\nhost: {}\r\nx-slow: a",
                addr(&rt)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a 408 is fine; the close is what counts
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the half-sent request was held open");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "cut before the timeout"
    );
    // An idle keep-alive connection that never sends anything is closed too.
    let mut idle = TcpStream::connect(addr(&rt)).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle connection held open");
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_after_the_idle_timeout() {
    let (upstream, rt) = no_auth_runtime(json!({ "connections": { "idleTimeoutMs": 500 } })).await;
    let mut stream = TcpStream::connect(addr(&rt)).await.unwrap();
    let started = Instant::now();
    let head = format!(
        "POST /v1/tools/execute HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"toolId\"",
        addr(&rt)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let ended =
        tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "the stalled body was waited on forever");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "cut before the timeout"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn the_per_ip_connection_cap_refuses_extras_and_frees_slots_on_close() {
    let (_upstream, rt) = no_auth_runtime(json!({
        "connections": { "maxConnectionsPerIp": 3, "headerReadTimeoutMs": 60000 }
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr(&rt)).await.unwrap();
        // A partial head: the server has accepted the connection and is waiting for the rest.
        stream
            .write_all(b"GET /v1/runtime/info HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    // The accept loop registers each connection as it accepts it; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(addr(&rt)).await.unwrap();
    let mut answer = Vec::new();
    let refused =
        tokio::time::timeout(Duration::from_secs(10), extra.read_to_end(&mut answer)).await;
    assert!(
        refused.is_ok(),
        "the extra connection was neither answered nor closed"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    drop(held);
    let served = eventually(Duration::from_secs(10), || async {
        rt.client
            .get(format!("{}/v1/runtime/info", rt.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        served,
        "a real request succeeds once the held connections closed"
    );
}

#[test]
fn edge_settings_that_cannot_be_matched_exactly_are_config_errors() {
    let text = config_load_error(&config_for(
        "a.json",
        json!({ "runtime": { "server": {
            "publicUrls": ["portcullis.example.com", "https://ok.example.com"],
            "cors": { "allowedOrigins": ["*", "null", "https://*.example.com", "https://app.example.com/path", "https://app.example.com"] },
            "connections": { "headerReadTimeoutMs": 0, "maxConnectionsPerIp": 0 }
        } } }),
    ));
    for path in [
        "runtime.server.publicUrls[0]",
        "runtime.server.cors.allowedOrigins[0]",
        "runtime.server.cors.allowedOrigins[1]",
        "runtime.server.cors.allowedOrigins[2]",
        "runtime.server.cors.allowedOrigins[3]",
        "runtime.server.connections.headerReadTimeoutMs",
        "runtime.server.connections.maxConnectionsPerIp",
    ] {
        assert!(text.contains(path), "{path} missing in:\n{text}");
    }
    for fine in ["publicUrls[1]", "allowedOrigins[4]"] {
        assert!(!text.contains(fine), "{fine} refused:\n{text}");
    }
}
