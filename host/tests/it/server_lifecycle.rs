//! Runtime lifecycle (issue 17, item 5), against the real binary: heartbeats and leases, the
//! stop and session-close routes, and a process that exits 0 with a closed, verifiable audit
//! log when its last lease ends or it is told to stop.

use super::support;
use super::support::auth::*;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use axum::routing::get;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A `portcullis serve` process on a project with one fast and one slow tool.
struct Serve {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real upstream whose `/slow` answers after two seconds.
async fn slow_upstream() -> String {
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                axum::Json(json!({ "slow": true }))
            }),
        )
        .route(
            "/fast",
            get(|| async { axum::Json(json!({ "fast": true })) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn serve(lifecycle: &[&str], runtime: Value) -> Serve {
    let upstream = slow_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let paths = json!({
        "/slow": { "get": { "operationId": "getSlow", "security": [] } },
        "/fast": { "get": { "operationId": "getFast", "security": [] } }
    });
    std::fs::write(
        dir.path().join("api.json"),
        openapi(&upstream, paths, json!({})),
    )
    .unwrap();
    let config = config_for("api.json", json!({ "runtime": runtime }));
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join(".cli.json"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--instance-id",
            "life",
            "--state-dir",
        ])
        .arg(dir.path().join("root"))
        .args(lifecycle)
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime_file = dir.path().join("root/instances/life/runtime.json");
    let started = eventually(Duration::from_secs(30), || async { runtime_file.exists() }).await;
    assert!(started, "the runtime did not start");
    let info: Value = serde_json::from_slice(&std::fs::read(&runtime_file).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Serve {
        child,
        url: info["url"].as_str().unwrap().to_owned(),
        dir,
        client,
    }
}

impl Serve {
    fn instance(&self) -> PathBuf {
        self.dir.path().join("root/instances/life")
    }

    async fn post(&self, path: &str, body: Value, authorization: Option<&str>) -> (u16, String) {
        let mut request = self.client.post(format!("{}{path}", self.url)).json(&body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn heartbeat(&self, session: &str) -> (u16, Value) {
        let (status, text) = self
            .post(
                "/v1/runtime/heartbeat",
                json!({ "sessionId": session }),
                None,
            )
            .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn info(&self) -> Value {
        let response = self
            .client
            .get(format!("{}/v1/runtime/info", self.url))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// The exit status once the process has exited, or `None` after `wait`.
    async fn exit_within(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.instance().join("audit.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The process is gone cleanly: exit 0, `runtime.json` removed, and the audit log
    /// verifies with a final checkpoint covering its last record.
    fn assert_closed_cleanly(&self, status: Option<ExitStatus>) {
        let status = status.expect("the runtime exited");
        assert!(status.success(), "exit status {status:?}");
        assert!(!self.instance().join("runtime.json").exists());
        let audit = self.instance().join("audit.log");
        let checkpoints = self.instance().join("audit.log.checkpoints");
        let verify = Command::new(BIN)
            .args(["audit", "verify", "--audit-path"])
            .arg(&audit)
            .arg("--key-file")
            .arg(self.dir.path().join("root/audit.key"))
            .arg("--checkpoints")
            .arg(&checkpoints)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        let last_seq = self.audit_records().last().unwrap()["seq"].clone();
        let last_checkpoint: Value = serde_json::from_str(
            std::fs::read_to_string(&checkpoints)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            last_checkpoint["seq"], last_seq,
            "the writer was closed: its final checkpoint covers the last record"
        );
    }
}

fn event_types(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["eventType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn missed_heartbeats_stop_a_when_owner_exits_runtime_with_exit_0_and_a_closed_log() {
    let mut rt = serve(
        &[
            "--heartbeat-seconds",
            "1",
            "--missed-heartbeat-limit",
            "2",
            "--shutdown",
            "when-owner-exits",
            "--config-fingerprint",
            "fp-1",
        ],
        json!({}),
    )
    .await;
    let info = rt.info().await;
    assert_eq!(
        info["lifecycle"],
        json!({ "capabilities": ["heartbeat", "session-close"], "heartbeatSeconds": 1,
                "missedHeartbeatLimit": 2, "shutdown": "when-owner-exits",
                "sessionScope": "terminal", "shareMode": "exclusive", "shareKeyPresent": false,
                "configFingerprint": "fp-1", "activeSessions": 0 })
    );
    let (status, body) = rt
        .post(
            "/v1/runtime/heartbeat",
            json!({ "sessionId": "s1", "configFingerprint": "other" }),
            None,
        )
        .await;
    assert_eq!((status, body.trim()), (409, "runtime_attach_mismatch"));
    let (status, body) = rt.heartbeat(" s1 ").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "renewed": true, "sessionId": "s1", "activeSessions": 1 })
    );
    assert_eq!(rt.info().await["lifecycle"]["activeSessions"], 1);
    // Renewed every second for longer than one lease (2 s): the runtime stays up.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(rt.heartbeat("s1").await.0, 200);
    }
    assert!(
        rt.child.try_wait().unwrap().is_none(),
        "renewed leases keep it running"
    );
    // Heartbeats stop: within one lease the runtime shuts down by itself.
    let stopped_at = Instant::now();
    let status = rt.exit_within(Duration::from_secs(15)).await;
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(1500),
        "not before the lease ran out"
    );
    rt.assert_closed_cleanly(status);
    let records = rt.audit_records();
    let kinds = event_types(&records);
    let expiry = records
        .iter()
        .find(|r| r["eventType"] == "session_expiry")
        .expect("the expiry is audited");
    assert_eq!(expiry["detail"]["sessionId"], "s1");
    assert_eq!(expiry["toolId"], "runtime.session");
    let last = records.last().unwrap();
    assert_eq!(last["eventType"], "lease_expiry_shutdown", "{kinds:?}");
    assert_eq!(last["reasonCode"], "lease_expiry_shutdown:expiry");
}

#[tokio::test]
async fn a_manual_runtime_outlives_its_leases_and_stop_lets_an_in_flight_call_finish() {
    let mut rt = serve(
        &[
            "--heartbeat-seconds",
            "1",
            "--missed-heartbeat-limit",
            "1",
            "--shutdown",
            "manual",
        ],
        json!({}),
    )
    .await;
    assert_eq!(rt.heartbeat("s1").await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        rt.child.try_wait().unwrap().is_none(),
        "manual never stops on a missed heartbeat"
    );
    assert_eq!(rt.info().await["lifecycle"]["activeSessions"], 0);
    // A call that takes two seconds upstream, then stop while it is running.
    let (client, url) = (rt.client.clone(), rt.url.clone());
    let in_flight = tokio::spawn(async move {
        let response = client
            .post(format!("{url}/v1/tools/execute"))
            .json(&json!({ "toolId": "svc:getSlow" }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = rt.post("/v1/runtime/stop", json!({}), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "stopped": true })
    );
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight call finished: {body}");
    assert!(body.contains("\"slow\":true"), "{body}");
    let status = rt.exit_within(Duration::from_secs(15)).await;
    rt.assert_closed_cleanly(status);
    let records = rt.audit_records();
    let kinds = event_types(&records);
    assert!(kinds.iter().any(|k| k == "runtime_stop"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "session_expiry"), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == "lease_expiry_shutdown"),
        "{kinds:?}"
    );
    // The slow call's outcome was written before the log closed.
    assert!(
        records
            .iter()
            .any(|r| r["toolId"] == "svc:getSlow" && r["eventType"] == "tool_execution"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_shared_runtime_lives_until_its_last_session_closes() {
    let mut rt = serve(
        &[
            "--heartbeat-seconds",
            "30",
            "--missed-heartbeat-limit",
            "2",
            "--shutdown",
            "when-owner-exits",
            "--share",
            "group",
            "--session-scope",
            "shared-group",
            "--share-key-present",
        ],
        json!({}),
    )
    .await;
    assert_eq!(rt.heartbeat("a").await.1["activeSessions"], 1);
    assert_eq!(rt.heartbeat("b").await.1["activeSessions"], 2);
    let lifecycle = rt.info().await["lifecycle"].clone();
    assert_eq!(lifecycle["shareMode"], "group");
    assert_eq!(lifecycle["sessionScope"], "shared-group");
    assert_eq!(lifecycle["shareKeyPresent"], true);
    let (status, body) = rt
        .post(
            "/v1/runtime/session-close",
            json!({ "sessionId": "a" }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "closed": true, "activeSessions": 1 })
    );
    assert_eq!(rt.exit_within(Duration::from_millis(1000)).await, None);
    assert_eq!(
        rt.post(
            "/v1/tools/execute",
            json!({ "toolId": "svc:getFast" }),
            None
        )
        .await
        .0,
        200
    );
    // Unknown fields are refused; an empty body closes nothing.
    let (status, _) = rt
        .post(
            "/v1/runtime/session-close",
            json!({ "sessionId": "b", "x": 1 }),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let empty = rt
        .client
        .post(format!("{}/v1/runtime/session-close", rt.url))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    assert_eq!(rt.info().await["lifecycle"]["activeSessions"], 1);
    let (status, body) = rt
        .post(
            "/v1/runtime/session-close",
            json!({ "sessionId": "b" }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let status = rt.exit_within(Duration::from_secs(15)).await;
    rt.assert_closed_cleanly(status);
    let records = rt.audit_records();
    let closes: Vec<_> = records
        .iter()
        .filter(|r| r["eventType"] == "session_close")
        .filter_map(|r| r["detail"]["sessionId"].as_str())
        .collect();
    assert_eq!(closes, ["a", "b"]);
    assert_eq!(
        records.last().unwrap()["reasonCode"],
        "lease_expiry_shutdown:close"
    );
}

#[tokio::test]
async fn an_exclusive_runtime_refuses_a_second_session() {
    let rt = serve(
        &["--heartbeat-seconds", "30", "--missed-heartbeat-limit", "2"],
        json!({}),
    )
    .await;
    assert_eq!(rt.heartbeat("a").await.0, 200);
    let (status, body) = rt.heartbeat("b").await;
    assert_eq!(
        (status, body),
        (409, Value::String("runtime_attach_conflict\n".into()))
    );
    for bad in [
        json!({}),
        json!({ "sessionId": "  " }),
        json!({ "sessionId": "a\u{1}" }),
    ] {
        let (status, body) = rt.post("/v1/runtime/heartbeat", bad.clone(), None).await;
        assert_eq!(
            (status, body.trim()),
            (400, "sessionId is required"),
            "{bad}"
        );
    }
    assert_eq!(rt.info().await["lifecycle"]["activeSessions"], 1);
}

#[tokio::test]
async fn half_set_lease_flags_refuse_to_start() {
    for flags in [
        vec!["--heartbeat-seconds", "15"],
        vec!["--shutdown", "when-owner-exits"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".cli.json"),
            serde_json::to_vec(&json!({ "cli": "1.0.0" })).unwrap(),
        )
        .unwrap();
        let output = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join(".cli.json"))
            .args(["--addr", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path())
            .args(&flags)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--missed-heartbeat-limit"),
            "{flags:?}: {stderr}"
        );
    }
}

fn token(keys: &Keys, sub: &str, scope: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    let now = now();
    let claims = json!({ "iss": "https://issuer.test", "aud": API, "sub": sub,
                         "exp": now + 600, "iat": now, "scope": scope });
    format!("Bearer {}", sign(&header, &claims, &keys.rsa))
}

#[tokio::test]
async fn lifecycle_routes_are_behind_auth_config_binding_and_the_stop_scope() {
    let keys = keys();
    let jwks = jwks_server(vec![with_kid(&keys.rsa, "r1", None)]).await;
    let auth = json!({ "validationProfile": "oidc_jwks", "issuer": "https://issuer.test",
                       "jwksURL": jwks.url, "audience": API });
    let mut rt = serve(
        &[
            "--heartbeat-seconds",
            "30",
            "--missed-heartbeat-limit",
            "2",
            "--share",
            "group",
            "--shutdown",
            "when-owner-exits",
        ],
        json!({ "server": { "auth": auth } }),
    )
    .await;
    let alice = token(&keys, "alice", "");
    let mallory = token(&keys, "mallory", "");
    let operator = token(&keys, "operator", "runtime:stop");
    let session = json!({ "sessionId": "s1" });
    for path in [
        "/v1/runtime/heartbeat",
        "/v1/runtime/session-close",
        "/v1/runtime/stop",
    ] {
        let (status, body) = rt.post(path, session.clone(), None).await;
        assert_eq!((status, body.trim()), (401, "authn_failed"), "{path}");
        let (status, body) = rt
            .post(path, session.clone(), Some("Bearer not-a-token"))
            .await;
        assert_eq!((status, body.trim()), (401, "authn_failed"), "{path}");
        let foreign = format!("{path}?config=/somewhere/else/.cli.json");
        let (status, body) = rt.post(&foreign, session.clone(), Some(&operator)).await;
        assert_eq!(
            (status, body.trim()),
            (409, "runtime_attach_mismatch"),
            "{path}"
        );
    }
    // The runtime's own config by name is fine.
    let own = format!(
        "/v1/runtime/heartbeat?config={}",
        rt.dir.path().join(".cli.json").display()
    );
    let (status, body) = rt.post(&own, session.clone(), Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    // Another principal can neither renew nor close alice's session.
    for path in ["/v1/runtime/heartbeat", "/v1/runtime/session-close"] {
        let (status, body) = rt.post(path, session.clone(), Some(&mallory)).await;
        assert_eq!(
            (status, body.trim()),
            (409, "runtime_attach_conflict"),
            "{path}"
        );
    }
    // A token without runtime:stop cannot stop it; the refusal is audited.
    let (status, body) = rt.post("/v1/runtime/stop", json!({}), Some(&alice)).await;
    assert_eq!((status, body.trim()), (403, "insufficient_scope"));
    assert!(rt.child.try_wait().unwrap().is_none());
    let (status, body) = rt
        .post("/v1/runtime/stop", json!({}), Some(&operator))
        .await;
    assert_eq!(status, 200, "{body}");
    let status = rt.exit_within(Duration::from_secs(15)).await;
    rt.assert_closed_cleanly(status);
    let records = rt.audit_records();
    let denial = records
        .iter()
        .find(|r| r["eventType"] == "authz_denial" && r["toolId"] == "runtime.stop")
        .expect("the refused stop is audited");
    assert_eq!(denial["principal"], "alice");
    let stop = records
        .iter()
        .find(|r| r["eventType"] == "runtime_stop")
        .expect("the stop is audited");
    assert_eq!(stop["principal"], "operator");
    assert!(
        !records.iter().any(|r| r["eventType"] == "session_close"),
        "mallory's refused close left no close record"
    );
}

#[tokio::test]
async fn a_web_page_cannot_stop_or_close_a_loopback_runtime() {
    let mut rt = serve(
        &[
            "--heartbeat-seconds",
            "30",
            "--missed-heartbeat-limit",
            "2",
            "--shutdown",
            "when-owner-exits",
        ],
        json!({}),
    )
    .await;
    assert_eq!(rt.heartbeat("s1").await.0, 200);
    for path in [
        "/v1/runtime/stop",
        "/v1/runtime/session-close",
        "/v1/runtime/heartbeat",
    ] {
        for (origin_header, content_type) in [
            (Some(("origin", "https://evil.example")), "application/json"),
            (Some(("sec-fetch-site", "cross-site")), "application/json"),
            (None, "text/plain"),
        ] {
            let mut request = rt
                .client
                .post(format!("{}{path}", rt.url))
                .header("content-type", content_type)
                .body(r#"{"sessionId":"s1"}"#);
            if let Some((name, value)) = origin_header {
                request = request.header(name, value);
            }
            let status = request.send().await.unwrap().status().as_u16();
            let expected = if origin_header.is_some() { 403 } else { 415 };
            assert_eq!(status, expected, "{path} {origin_header:?} {content_type}");
        }
    }
    assert_eq!(rt.exit_within(Duration::from_millis(500)).await, None);
    assert_eq!(rt.info().await["lifecycle"]["activeSessions"], 1);
    let kinds = event_types(&rt.audit_records());
    assert!(
        !kinds
            .iter()
            .any(|k| k == "runtime_stop" || k == "session_close"),
        "{kinds:?}"
    );
}
