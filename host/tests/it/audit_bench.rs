//! Cost of durable audit, measured in one run (ignored by default; numbers go to
//! `docs/performance.md`, "Durable audit"):
//!
//! `cargo test --release -p portcullis --test audit_bench -- --ignored --nocapture`

use super::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::app::{Runtime, RuntimeOptions};
use portcullis::audit::{AuditDecision, AuditEvent, AuditLog, AuditOptions};
use portcullis::config::ScopePaths;
use portcullis::server;
use serde_json::json;
use support::*;

const CONCURRENCY: usize = 64;

async fn writer_rate(durable: bool, max_batch: usize, records: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut options = AuditOptions::new(
        dir.path().join("audit/audit.log"),
        dir.path().join("audit.key"),
    );
    options.durable = durable;
    options.max_batch = max_batch;
    let log = Arc::new(AuditLog::open_with(options).unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                for _ in 0..records / CONCURRENCY {
                    let event = AuditEvent::new(
                        "tool_execution",
                        "svc:op",
                        AuditDecision::Allowed,
                        "allowed",
                    );
                    log.record(event).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    records as f64 / started.elapsed().as_secs_f64()
}

async fn execute_rate(durable: bool, sync_outcomes: bool, window: Duration) -> f64 {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let paths = json!({ "/text": { "get": { "operationId": "getText", "security": [] } } });
    std::fs::write(
        dir.path().join("api.json"),
        openapi(&upstream.url, paths, json!({})),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec(&config_for("api.json", json!({}))).unwrap(),
    )
    .unwrap();
    let state_dir = dir.path().join("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let options = RuntimeOptions {
        scopes: ScopePaths {
            project: dir.path().join(".cli.json"),
            ..ScopePaths::default()
        },
        instance_id: "bench".into(),
        audit_path: state_dir.join("audit.log"),
        cache_dir: state_dir.join("cache"),
        state_dir: state_dir.clone(),
        url: url.clone(),
        settings: std::sync::Arc::new(portcullis::app::Settings),
    };
    let mut audit = AuditOptions::for_instance(options.audit_path.clone(), &state_dir);
    audit.durable = durable;
    audit.sync_outcomes = sync_outcomes;
    let runtime = Runtime::start_with_audit(options, audit).await.unwrap();
    tokio::spawn(server::serve(listener, runtime));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let response = client
                        .post(format!("{url}/v1/tools/execute"))
                        .json(&json!({ "toolId": "svc:getText" }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run explicitly"]
async fn durable_audit_cost_at_concurrency_64() {
    let records = 64 * 200;
    let no_sync = writer_rate(false, 1024, records).await;
    let per_record = writer_rate(true, 1, records).await;
    let group = writer_rate(true, 1024, records).await;
    println!("writer, {CONCURRENCY} concurrent callers, {records} records:");
    println!("  no fsync            {no_sync:>10.0} records/s");
    println!("  fsync per record    {per_record:>10.0} records/s");
    println!("  group commit        {group:>10.0} records/s");
    let window = Duration::from_secs(5);
    for round in 1..=2 {
        let off = execute_rate(false, false, window).await;
        let on = execute_rate(true, false, window).await;
        let strict = execute_rate(true, true, window).await;
        println!(
            "execute round {round}: durable off {off:.0} req/s, on {on:.0} req/s (cost {:.1}%), \
             on + --audit-sync-outcomes {strict:.0} req/s (cost {:.1}%)",
            (1.0 - on / off) * 100.0,
            (1.0 - strict / off) * 100.0
        );
    }
}
