//! U01, U10, U11, U13: a canary planted in every built-in secret source (literal, env, file,
//! exec, a fake OS keychain tool) never appears in the server's stdout/stderr (tracing at
//! debug, ours at trace), its state directory (audit log, checkpoints, caches), any response
//! body or header — across calls that succeed, calls whose upstream echoes the credentials,
//! redirects, unreachable upstreams, and every way a source can fail.
//!
//! The server is the real binary, so its real stderr (logs and any panic output) is scanned.
//! The keychain is a fault-injection fake `secret-tool` placed first on `PATH`: there is no
//! Secret Service on a headless test host.

use super::support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const LIT: &str = "user:CANARYlit1";
const ENV: &str = "CANARYenv2";
const FILE: &str = "CANARYfile3";
const EXEC: &str = "CANARYexec4";
const KC: &str = "CANARYkc5";

/// Every form a canary could leak in: as is and base64 (HTTP basic).
fn needles() -> Vec<String> {
    let mut out = vec!["CANARY".to_owned()];
    for canary in [LIT, ENV, FILE, EXEC, KC] {
        out.push(base64::engine::general_purpose::STANDARD.encode(canary));
    }
    out
}

fn executable(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Request headers and query the upstream saw, by path.
type Seen = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A real upstream: `/ok` echoes every credential it got in a 200, `/echo` in a 401 text body
/// ("invalid key ..."), `/redirect` sends the client to another origin.
async fn start_upstream() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let log = log.clone();
        async move {
            let path = request.uri().path().to_owned();
            let mut got: BTreeMap<String, String> = request
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            got.insert(
                "?".into(),
                request.uri().query().unwrap_or_default().to_owned(),
            );
            log.lock().unwrap().push((path.clone(), got.clone()));
            match path.as_str() {
                "/ok" => axum::Json(json!(got)).into_response(),
                "/echo" => (
                    StatusCode::UNAUTHORIZED,
                    format!("invalid credentials: {got:?}"),
                )
                    .into_response(),
                "/redirect" => (
                    StatusCode::FOUND,
                    [("location", "http://127.0.0.1:9/steal")],
                    format!("moved; you sent {got:?}"),
                )
                    .into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn op(id: &str, schemes: &[&str]) -> serde_json::Value {
    let requirement: serde_json::Map<String, serde_json::Value> = schemes
        .iter()
        .map(|s| ((*s).to_owned(), json!([])))
        .collect();
    json!({ "get": { "operationId": id, "security": [requirement] } })
}

fn schemes() -> serde_json::Value {
    let header = |name: &str| json!({ "type": "apiKey", "in": "header", "name": name });
    json!({ "securitySchemes": {
        "lit": { "type": "http", "scheme": "basic" },
        "env": header("X-Env"),
        "file": { "type": "apiKey", "in": "query", "name": "file_key" },
        "exec": { "type": "apiKey", "in": "cookie", "name": "sess" },
        "kc": header("X-Kc"),
        "badEnv": header("X-1"), "badFile": header("X-2"), "execExit": header("X-3"),
        "execCrlf": header("X-4"), "execHang": header("X-5"), "kcMissing": header("X-6"),
        "kcBroken": header("X-7"), "clashA": header("X-Clash"), "clashB": header("X-Clash")
    }})
}

#[tokio::test]
async fn canaries_from_every_source_never_reach_logs_audit_or_responses() {
    let (upstream, seen) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let all = ["lit", "env", "file", "exec", "kc"];
    let mut paths = serde_json::Map::new();
    paths.insert("/ok".into(), op("ok", &all));
    paths.insert("/echo".into(), op("echo", &all));
    paths.insert("/redirect".into(), op("redirect", &all));
    for (i, scheme) in [
        "badEnv",
        "badFile",
        "execExit",
        "execCrlf",
        "execHang",
        "kcMissing",
        "kcBroken",
    ]
    .iter()
    .enumerate()
    {
        paths.insert(
            format!("/fail{i}"),
            op(&format!("fail_{scheme}"), &[scheme]),
        );
    }
    paths.insert("/clash".into(), op("clash", &["clashA", "clashB"]));
    let doc = support::openapi(&upstream, json!(paths), schemes());
    std::fs::write(root.join("api.json"), doc).unwrap();
    // The same schemes on an origin that refuses connections (with the query credential).
    let dead = support::openapi(
        "http://127.0.0.1:9",
        json!({ "/x": op("x", &all) }),
        schemes(),
    );
    std::fs::write(root.join("dead.json"), dead).unwrap();

    std::fs::write(root.join("token"), format!("{FILE}\n")).unwrap();
    let bin = root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    executable(
        &bin.join("secret-tool"),
        &format!(
            "echo CANARY-from-keychain-stderr >&2\n\
             case \"$*\" in\n\
             'lookup service leak account ci') printf '{KC}\\n' ;;\n\
             'lookup service broken') echo {KC}; exit 2 ;;\n\
             *) exit 1 ;;\n\
             esac"
        ),
    );
    let script = |name: &str, body: &str| {
        let path = root.join(name);
        std::fs::write(&path, format!("{body}\n")).unwrap();
        json!({ "type": "exec", "command": ["/bin/sh", path.display().to_string()], "timeoutMs": 1000 })
    };
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": {
            "api": { "type": "openapi", "uri": "api.json" },
            "dead": { "type": "openapi", "uri": "dead.json" }
        },
        "services": { "svc": { "source": "api" }, "dead": { "source": "dead" } },
        "policy": { "allowExecSecrets": true },
        "secrets": {
            "lit": { "type": "literal", "value": LIT },
            "env": { "type": "env", "value": "PORTCULLIS_LEAK_CANARY" },
            "file": { "type": "file", "value": root.join("token").display().to_string() },
            "exec": script("good.sh", &format!("echo CANARY-from-exec-stderr >&2; printf '{EXEC}\\n'")),
            "kc": { "type": "osKeychain", "value": "service=leak account=ci" },
            "badEnv": { "type": "env", "value": "PORTCULLIS_LEAK_UNSET" },
            "badFile": { "type": "file", "value": root.join("missing").display().to_string() },
            "execExit": script("exit.sh", &format!("echo {EXEC}; echo {EXEC} >&2; exit 3")),
            "execCrlf": script("crlf.sh", &format!("printf '{EXEC}\\r\\nX-Evil: {EXEC}'")),
            "execHang": script("hang.sh", &format!("echo {EXEC}; exec sleep 30")),
            "kcMissing": { "type": "osKeychain", "value": "service=absent account=ci" },
            "kcBroken": { "type": "osKeychain", "value": "service=broken" },
            "clashA": { "type": "literal", "value": "CANARYclashA" },
            "clashB": { "type": "env", "value": "PORTCULLIS_LEAK_CANARY" }
        }
    });
    std::fs::write(root.join(".cli.json"), config.to_string()).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path_env = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--config"])
        .arg(root.join(".cli.json"))
        .arg("--state-dir")
        .arg(root.join("state"))
        .current_dir(root)
        .env("PORTCULLIS_MANAGED_CONFIG", root.join("none"))
        .env("PORTCULLIS_USER_CONFIG", root.join("none"))
        .env("PORTCULLIS_LOG", "debug,portcullis=trace")
        .env("PORTCULLIS_LEAK_CANARY", ENV)
        .env_remove("PORTCULLIS_LEAK_UNSET")
        .env("PATH", path_env)
        .env("RUST_BACKTRACE", "1")
        .stdout(std::fs::File::create(root.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(root.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut child = support::Guard(child);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert!(
        support::wait_until_serving(&client, &url).await,
        "server did not start"
    );

    let mut responses: Vec<String> = Vec::new();
    let call = |tool: &'static str, accept: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client
                .post(format!("{url}/v1/tools/execute"))
                .header("accept", accept)
                .json(&json!({ "toolId": tool }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let headers = format!("{:?}", response.headers());
            (
                status,
                format!("{headers}\n{}", response.text().await.unwrap()),
            )
        }
    };
    let mut expect = Vec::new();
    for (tool, status) in [
        ("svc:ok", 200),
        ("svc:echo", 200),
        ("svc:redirect", 200),
        ("dead:x", 502),
        ("svc:fail_badEnv", 502),
        ("svc:fail_badFile", 502),
        ("svc:fail_execExit", 502),
        ("svc:fail_execCrlf", 502),
        ("svc:fail_execHang", 502),
        ("svc:fail_kcMissing", 502),
        ("svc:fail_kcBroken", 502),
        ("svc:clash", 502),
    ] {
        for accept in ["application/json", "text/plain"] {
            let (got, body) = call(tool, accept).await;
            expect.push((tool, status, got, body.clone()));
            responses.push(body);
        }
    }
    for path in [
        "/v1/audit/events",
        "/v1/catalog/effective",
        "/v1/runtime/info",
        "/v1/tools",
    ] {
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        responses.push(response.text().await.unwrap());
    }

    // Stop the server gracefully so every log line and audit record is flushed.
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..150 {
        if child.0.try_wait().ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for (tool, want, got, body) in &expect {
        assert_eq!(want, got, "{tool}: {body}");
    }
    // The calls really carried the canaries, and the upstream really echoed them.
    let ok = &seen.lock().unwrap()[0].1;
    let basic = base64::engine::general_purpose::STANDARD.encode(LIT);
    assert_eq!(ok["authorization"], format!("Basic {basic}"));
    assert_eq!(ok["x-kc"], KC);
    assert_eq!(ok["x-env"], ENV);
    assert_eq!(ok["cookie"], format!("sess={EXEC}"));
    assert_eq!(ok["?"], format!("file_key={FILE}"));
    assert!(responses[0].contains("[REDACTED]") && responses[2].contains("[REDACTED]"));
    // Every failing source is named with its reason.
    let reason = |tool: &str| &expect.iter().find(|e| e.0 == tool).unwrap().3;
    assert!(reason("svc:fail_badEnv").contains("PORTCULLIS_LEAK_UNSET is not set"));
    assert!(reason("svc:fail_execExit").contains("exit status 3"));
    assert!(reason("svc:fail_execCrlf").contains("CR, LF or NUL"));
    assert!(reason("svc:fail_execHang").contains("did not finish within 1000 ms"));
    assert!(
        reason("svc:fail_kcMissing").contains("no keychain item matches service=absent account=ci")
    );
    assert!(
        reason("svc:fail_kcBroken").contains("keychain tool `secret-tool` failed (exit status 2)")
    );
    assert!(reason("svc:clash").contains("conflicting header auth target x-clash"));
    assert!(reason("dead:x").contains("upstream_connect_failed"));

    let mut sinks: Vec<(String, String)> = responses
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("response {i}"), r))
        .collect();
    for log in ["stdout.log", "stderr.log"] {
        sinks.push((log.into(), std::fs::read_to_string(root.join(log)).unwrap()));
    }
    let stderr = &sinks.last().unwrap().1;
    assert!(
        stderr.contains("listening on"),
        "the log was captured:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for file in walk(&root.join("state")) {
        let bytes = std::fs::read(&file).unwrap();
        sinks.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (sink, text) in &sinks {
        for needle in needles() {
            assert!(
                !text.contains(&needle),
                "{needle} leaked into {sink}:\n{text}"
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// R10, R11 against an in-process runtime: an upstream that echoes the applied key
/// JSON-escaped or compressed (`/escaped`, `/gzip`, `/br`), and `/open`, which needs no key.
async fn start_echo_upstream() -> String {
    use std::io::Write as _;
    let app = axum::Router::new().fallback(|request: Request| async move {
        let key = request
            .headers()
            .get("x-key")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let json = |body: String| ([("content-type", "application/json")], body).into_response();
        match request.uri().path() {
            "/escaped" => {
                let slash = key.replace('/', "\\/");
                let unicode: String = key
                    .chars()
                    .map(|c| format!("\\u{:04x}", c as u32))
                    .collect();
                json(format!(
                    r#"{{"slash":"bad key {slash}","unicode":"{unicode}"}}"#
                ))
            }
            "/gzip" | "/br" => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(format!(r#"{{"echo":"{key}"}}"#).as_bytes())
                    .unwrap();
                let coding = if request.uri().path() == "/gzip" {
                    "gzip"
                } else {
                    "br"
                };
                (
                    [
                        ("content-type", "application/json"),
                        ("content-encoding", coding),
                    ],
                    gz.finish().unwrap(),
                )
                    .into_response()
            }
            path if path.starts_with("/hop/") => {
                let to = format!("http://127.0.0.1:{}/open", &path[5..]);
                (StatusCode::FOUND, [("location", to)]).into_response()
            }
            _ => json(r#"{"open":true}"#.into()),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

const ECHOED: &str = "CANARY/esc";

fn echo_config(upstream: &str, key: serde_json::Value) -> (serde_json::Value, String) {
    let keyed = |id: &str| json!({ "get": { "operationId": id, "security": [{ "key": [] }] } });
    let doc = support::openapi(
        upstream,
        json!({
            "/escaped": keyed("escaped"),
            "/gzip": keyed("gzip"),
            "/br": keyed("br"),
            "/open": { "get": { "operationId": "open" } }
        }),
        json!({ "securitySchemes": { "key": { "type": "apiKey", "in": "header", "name": "X-Key" } } }),
    );
    let config = support::config_for("api.json", json!({ "secrets": { "key": key } }));
    (config, doc)
}

#[tokio::test]
async fn json_escaped_and_gzip_compressed_echoes_are_scrubbed_and_other_encodings_refused() {
    let upstream = start_echo_upstream().await;
    let (config, doc) = echo_config(&upstream, json!({ "type": "literal", "value": ECHOED }));
    let rt = support::start_runtime(config, &[("api.json", doc)]).await;
    for tool in ["svc:escaped", "svc:gzip"] {
        let (status, text) = rt.execute(json!({ "toolId": tool })).await;
        assert_eq!(status, 200, "{tool}: {text}");
        let result: serde_json::Value = serde_json::from_str(&text).unwrap();
        let shown = result.to_string();
        assert!(!shown.contains("CANARY"), "{tool} leaked: {text}");
        assert!(shown.contains("[REDACTED]"), "{tool}: {text}");
        if let Some(b64) = result.get("bodyBase64").and_then(|b| b.as_str()) {
            panic!("{tool}: body still encoded: {b64}");
        }
    }
    let (status, text) = rt.execute(json!({ "toolId": "svc:br" })).await;
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("upstream_encoding_refused"), "{text}");
    let records = rt.audit_file().await;
    let outcome = records
        .iter()
        .find(|r| r["eventType"] == "tool_execution")
        .expect("outcome record");
    assert_eq!(outcome["finalOrigin"], upstream.as_str(), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_file_secret_fails_its_call_and_never_freezes_other_routes() {
    let upstream = start_echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (config, doc) = echo_config(
        &upstream,
        json!({ "type": "file", "value": fifo.display().to_string() }),
    );
    std::fs::write(dir.path().join("api.json"), doc).unwrap();
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let run = tokio::spawn(async move {
        let rt = support::start_runtime_in(dir).await;
        let keyed = rt.execute(json!({ "toolId": "svc:escaped" }));
        let open = rt.execute(json!({ "toolId": "svc:open" }));
        let (keyed, open) = tokio::join!(keyed, open);
        (keyed, open)
    });
    let outcome = tokio::time::timeout(Duration::from_secs(20), run).await;
    let Ok(Ok(((keyed_status, keyed), (open_status, open)))) = outcome else {
        // Unblock a reader stuck in open(2) so the test runtime can shut down.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("the runtime froze on a FIFO secret");
    };
    assert_eq!(open_status, 200, "{open}");
    assert_eq!(keyed_status, 502, "{keyed}");
    assert!(keyed.contains("credential_unavailable"), "{keyed}");
}

#[tokio::test]
async fn redirects_and_server_variables_never_reach_another_loopback_origin() {
    let target = start_echo_upstream().await;
    let upstream = start_echo_upstream().await;
    let port = target.rsplit(':').next().unwrap();
    let doc = serde_json::to_string(&json!({
        "openapi": "3.0.3",
        "info": { "title": "t", "version": "1" },
        "servers": [{ "url": upstream }],
        "paths": { "/hop/{port}": { "get": { "operationId": "hop", "parameters": [
            { "name": "port", "in": "path", "required": true, "schema": { "type": "string" } }
        ] } } }
    }))
    .unwrap();
    // A default ending in `\` would end the authority: `http://127.0.0.1:<port>\.internal.example/`.
    let moved = serde_json::to_string(&json!({
        "openapi": "3.0.3",
        "info": { "title": "t", "version": "1" },
        "servers": [{ "url": "http://{h}.internal.example/",
                      "variables": { "h": { "default": format!("127.0.0.1:{port}\\") } } }],
        "paths": { "/open": { "get": { "operationId": "open" } } }
    }))
    .unwrap();
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": {
            "src": { "type": "openapi", "uri": "api.json" },
            "moved": { "type": "openapi", "uri": "moved.json" }
        },
        "services": { "svc": { "source": "src" }, "moved": { "source": "moved" } }
    });
    let rt = support::start_runtime(config, &[("api.json", doc), ("moved.json", moved)]).await;
    let (status, text) = rt
        .execute(json!({ "toolId": "svc:hop", "pathArgs": [port] }))
        .await;
    assert_eq!(status, 200, "{text}");
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(result["statusCode"], 302, "redirect followed: {text}");
    let (status, text) = rt.execute(json!({ "toolId": "moved:open" })).await;
    assert_eq!(
        status, 404,
        "a `\\` default moved the call to another host: {text}"
    );
}
