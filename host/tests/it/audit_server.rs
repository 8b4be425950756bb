//! Durable audit through the real server: write-ahead intents, fail closed on a full disk,
//! and nothing acknowledged is lost to `kill -9`.

use super::support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portcullis::audit::chain::AuditKey;
use portcullis::audit::verify::verify_files;
use portcullis::audit::{AuditLog, AuditOptions};
use serde_json::json;
use support::*;

fn paths() -> serde_json::Value {
    json!({ "/text": { "get": { "operationId": "getText", "security": [] } } })
}

fn write_project(dir: &Path, upstream: &RecordingUpstream) {
    let document = openapi(&upstream.url, paths(), json!({}));
    std::fs::write(dir.join("api.json"), document).unwrap();
    std::fs::write(
        dir.join(".cli.json"),
        serde_json::to_vec_pretty(&config_for("api.json", json!({}))).unwrap(),
    )
    .unwrap();
}

fn file_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn allowed_call_writes_its_intent_before_the_outcome_and_both_chain() {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &upstream);
    let rt = start_runtime_in(dir).await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:getText" })).await;
    assert_eq!(status, 200, "{body}");
    // The outcome is answered once queued; wait until it is durable before reading the file.
    rt.runtime.audit.sync().await.unwrap();
    let audit_path = rt.dir.path().join("state/audit.log");
    let records = file_records(&audit_path);
    let kinds: Vec<_> = records.iter().map(|r| r["eventType"].clone()).collect();
    assert_eq!(
        kinds,
        vec![json!("tool_execution_intent"), json!("tool_execution")]
    );
    assert_eq!(records[0]["requestId"], records[1]["requestId"]);
    assert_eq!(
        (records[0]["seq"].as_u64(), records[1]["seq"].as_u64()),
        (Some(1), Some(2))
    );
    // The query view keeps one record per decision unless intents are asked for.
    assert_eq!(rt.audit().await.len(), 1);
    let (_, intents) = rt
        .get("/v1/audit/events?eventType=tool_execution_intent")
        .await;
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&intents)
            .unwrap()
            .len(),
        1
    );
    let key = AuditKey::load(&rt.dir.path().join("audit.key")).unwrap();
    let checkpoints = rt.dir.path().join("state/audit.log.checkpoints");
    assert_eq!(
        verify_files(&key, &audit_path, &checkpoints)
            .unwrap()
            .unwrap()
            .last_seq,
        2
    );
}

fn mount_tmpfs(at: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn full_disk_refuses_calls_with_503_and_resumes_with_an_audit_gap_record() {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &upstream);
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    if !mount_tmpfs(&state, "256k") {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); disk-full path not exercised");
        return;
    }
    let _unmount = Unmount(state.clone());
    let rt = start_runtime_in(dir).await;
    let (status, _) = rt.execute(json!({ "toolId": "svc:getText" })).await;
    assert_eq!(status, 200);
    // Fill the file system.
    let filler = state.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    // The audit file's last page may still have room: call until the log runs out of space.
    let mut refused = false;
    for _ in 0..200 {
        if rt.execute(json!({ "toolId": "svc:getText" })).await.0 == 503 {
            refused = true;
            break;
        }
    }
    assert!(refused, "a full disk never refused a call");
    // Now failed: the next call is refused before any upstream traffic.
    let calls_before = upstream.requests().len();
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .json(&json!({ "toolId": "svc:getText" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem = response.text().await.unwrap();
    assert!(problem.contains("audit"), "{problem}");
    assert_eq!(
        upstream.requests().len(),
        calls_before,
        "no upstream call may run without a durable intent record"
    );
    std::fs::remove_file(&filler).unwrap();
    let resumed = eventually(Duration::from_secs(10), || async {
        rt.execute(json!({ "toolId": "svc:getText" })).await.0 == 200
    })
    .await;
    assert!(resumed, "service did not resume after the disk was freed");
    rt.runtime.audit.sync().await.unwrap();
    let records = file_records(&state.join("audit.log"));
    let gap = records
        .iter()
        .find(|r| r["eventType"] == "audit_gap")
        .expect("an audit_gap record");
    assert!(
        gap["detail"]["from"].is_string() && gap["detail"]["to"].is_string(),
        "{gap}"
    );
    let key = AuditKey::load(&rt.dir.path().join("audit.key")).unwrap();
    let report = verify_files(
        &key,
        &state.join("audit.log"),
        &state.join("audit.log.checkpoints"),
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_burst_loses_no_acknowledged_call_and_the_chain_verifies() {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &upstream);
    let state_root = dir.path().join("root");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join(".cli.json"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--instance-id",
                "burst",
                "--state-dir",
            ])
            .arg(&state_root)
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let instance = state_root.join("instances/burst");
    let runtime_file = instance.join("runtime.json");
    let mut child = spawn();
    let started = eventually(Duration::from_secs(30), || async { runtime_file.exists() }).await;
    assert!(started, "server did not start");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&runtime_file).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Each connection sends its next call only after the previous answer: per connection, the
    // acknowledged request ids in order.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(vec![Vec::<String>::new(); 32]));
    let mut tasks = Vec::new();
    for connection in 0..32 {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let sent = client
                    .post(format!("{url}/v1/tools/execute"))
                    .json(&json!({ "toolId": "svc:getText" }))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status() == 200 {
                    let id = response.headers()["x-request-id"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    if response.bytes().await.is_ok() {
                        acked.lock().unwrap()[connection].push(id);
                    }
                }
            }
        }));
    }
    let busy = eventually(Duration::from_secs(30), || async {
        acked.lock().unwrap().iter().map(Vec::len).sum::<usize>() >= 200
    })
    .await;
    assert!(busy, "burst did not get going");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    // Reopen as a restart would: repairs a torn tail, then the whole log must verify.
    let mut options = AuditOptions::new(instance.join("audit.log"), state_root.join("audit.key"));
    options.checkpoint_path = instance.join("audit.log.checkpoints");
    AuditLog::open_with(options.clone()).unwrap().close();
    let key = AuditKey::load(&options.key_file).unwrap();
    let report = verify_files(&key, &options.path, &options.checkpoint_path).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let records = file_records(&options.path);
    let ids = |kind: &str| -> HashSet<String> {
        records
            .iter()
            .filter(|r| r["eventType"] == kind)
            .filter_map(|r| r["requestId"].as_str().map(str::to_owned))
            .collect()
    };
    let (intents, outcomes) = (ids("tool_execution_intent"), ids("tool_execution"));
    // Decisions are never lost: every acknowledged call's intent is durable.
    let all: Vec<&String> = acked.iter().flatten().collect();
    let no_intent: Vec<_> = all.iter().filter(|id| !intents.contains(**id)).collect();
    assert!(
        no_intent.is_empty(),
        "{} acknowledged calls have no intent record: {no_intent:?}",
        no_intent.len()
    );
    // Outcomes are answered once queued: one can be lost only if no later record became
    // durable, so on each connection only the last acknowledged call may lack its outcome.
    for calls in &acked {
        let settled = &calls[..calls.len().saturating_sub(1)];
        let missing: Vec<_> = settled
            .iter()
            .filter(|id| !outcomes.contains(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged calls followed by another call have no outcome record: {missing:?}"
        );
    }
    println!(
        "{} acknowledged calls, {} without an outcome after kill -9",
        all.len(),
        all.iter().filter(|id| !outcomes.contains(**id)).count()
    );
}

/// A10 through HTTP: 1,000 concurrent execute calls against the real server and a real
/// upstream give 2,000 contiguous records (intent + outcome each), a valid chain, and the
/// query pages them with a cursor, each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_execute_calls_give_contiguous_intent_and_outcome_records() {
    const CALLS: usize = 1000;
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &upstream);
    // One client with a thousand calls in flight: above the default per-address cap (256).
    let caps = json!({ "runtime": { "server": { "connections": {
        "maxConnections": 2048, "maxConnectionsPerIp": 2048
    } } } });
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config_for("api.json", caps)).unwrap(),
    )
    .unwrap();
    let rt = std::sync::Arc::new(start_runtime_in(dir).await);
    let tasks: Vec<_> = (0..CALLS)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { rt.execute(json!({ "toolId": "svc:getText" })).await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(upstream.requests().len(), CALLS);
    rt.runtime.audit.sync().await.unwrap();
    let audit_path = rt.dir.path().join("state/audit.log");
    let raw = std::fs::read(&audit_path).unwrap();
    assert!(raw.ends_with(b"\n"));
    let records = file_records(&audit_path);
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=2 * CALLS as u64).collect::<Vec<_>>(),
        "contiguous"
    );
    let mut by_request: std::collections::HashMap<String, Vec<(String, u64)>> =
        std::collections::HashMap::new();
    for record in &records {
        by_request
            .entry(record["requestId"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                record["eventType"].as_str().unwrap().to_owned(),
                record["seq"].as_u64().unwrap(),
            ));
    }
    assert_eq!(by_request.len(), CALLS);
    for (id, kinds) in &by_request {
        assert_eq!(kinds.len(), 2, "{id}: {kinds:?}");
        assert_eq!(kinds[0].0, "tool_execution_intent", "{id}");
        assert_eq!(kinds[1].0, "tool_execution", "{id}");
    }
    let key = AuditKey::load(&rt.dir.path().join("audit.key")).unwrap();
    let checkpoints = rt.dir.path().join("state/audit.log.checkpoints");
    let report = verify_files(&key, &audit_path, &checkpoints)
        .unwrap()
        .unwrap();
    assert_eq!(report.last_seq, 2 * CALLS as u64);

    // Page through the outcomes with a cursor: each once, in order.
    let mut cursor = String::new();
    let mut paged = Vec::new();
    loop {
        let (status, body) = rt
            .get(&format!("/v1/audit/events?limit=128&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        for event in page["events"].as_array().unwrap() {
            assert_eq!(event["eventType"], "tool_execution");
            paged.push(event["seq"].as_u64().unwrap());
        }
        cursor = page["nextCursor"].as_str().unwrap().to_owned();
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(paged.len(), CALLS);
    assert!(paged.windows(2).all(|w| w[0] < w[1]));
    let (status, _) = rt.get("/v1/audit/events?cursor=not-a-cursor").await;
    assert_eq!(status, 400);
    // The array form names a cursor after the newest record in X-Next-Cursor.
    let response = rt
        .client
        .get(format!("{}/v1/audit/events?limit=1", rt.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-next-cursor"].to_str().unwrap(),
        portcullis::audit::encode_cursor(2 * CALLS as u64)
    );
    assert_eq!(
        response
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A02 (arguments): secret canaries in path arguments, flags (query and header parameters) and
/// the JSON body never reach the audit file; harmless values are kept; a caller's
/// `Authorization` header is never recorded.
#[tokio::test]
async fn secret_canaries_in_arguments_never_reach_the_audit_file() {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let paths = json!({ "/vaults/{vaultId}/items/{itemToken}": { "post": {
        "operationId": "putItem", "security": [],
        "parameters": [
            { "name": "vaultId", "in": "path", "required": true, "schema": { "type": "string" } },
            { "name": "itemToken", "in": "path", "required": true, "schema": { "type": "string" } },
            { "name": "api_key", "in": "query", "schema": { "type": "string" } },
            { "name": "q", "in": "query", "schema": { "type": "string" } },
            { "name": "X-Session-Id", "in": "header", "schema": { "type": "string" } }
        ],
        "requestBody": { "content": { "application/json": { "schema": { "type": "object" } } } }
    } } });
    std::fs::write(
        dir.path().join("api.json"),
        openapi(&upstream.url, paths, json!({})),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config_for("api.json", json!({}))).unwrap(),
    )
    .unwrap();
    let rt = start_runtime_in(dir).await;
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("authorization", "Bearer CANARY-HEADER-7f3a")
        .json(&json!({
            "toolId": "svc:putItem",
            "pathArgs": ["vault-1", "CANARY-PATH-91c2"],
            "flags": { "api_key": "CANARY-FLAG-5d1e", "q": "visible-query", "X-Session-Id": "CANARY-SESSION-0b7c" },
            "body": { "title": "visible-title", "password": "CANARY-BODY-a8e4",
                      "nested": [{ "clientSecret": "CANARY-NESTED-33f0" }],
                      "note": "Bearer CANARY-BEARER-c4d9",
                      "control": "line\nbreak\u{1b}[31m" }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // The upstream did get the real values: redaction is for the record only.
    let sent = upstream.requests();
    assert!(format!("{:?}", sent[0]).contains("CANARY-FLAG-5d1e"));
    rt.runtime.audit.sync().await.unwrap();
    let raw = std::fs::read_to_string(rt.dir.path().join("state/audit.log")).unwrap();
    for canary in [
        "CANARY-HEADER",
        "CANARY-PATH",
        "CANARY-FLAG",
        "CANARY-SESSION",
        "CANARY-BODY",
        "CANARY-NESTED",
        "CANARY-BEARER",
    ] {
        assert!(
            !raw.contains(canary),
            "{canary} reached the audit file: {raw}"
        );
    }
    assert_eq!(
        raw.lines().count(),
        2,
        "control characters never split a record"
    );
    let records = file_records(&rt.dir.path().join("state/audit.log"));
    let arguments = &records[0]["arguments"];
    assert_eq!(arguments["pathArgs"], json!(["vault-1", "[REDACTED]"]));
    assert_eq!(arguments["flags"]["q"], "visible-query");
    assert_eq!(arguments["flags"]["api_key"], "[REDACTED]");
    assert_eq!(arguments["body"]["title"], "visible-title");
    assert_eq!(arguments["body"]["control"], "line\nbreak\u{1b}[31m");
    assert!(
        records[1].get("arguments").is_none(),
        "arguments go on the intent only"
    );
}
