//! A plugin never outlives its budget and never starves other plugins: guests that sleep in
//! WASI, ask the host for huge random buffers or flood it with pollables fail closed, by name,
//! within their budget, and the server keeps serving the others. Components come from
//! `tests/plugins/`, built by the `portcullis-test-artifacts` build script.

use super::support;

use std::path::Path;
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis::plugins::PluginSet;
use portcullis::policy::wasm::PolicyPlugin;
use portcullis::policy::PolicyQuery;
use serde_json::json;
use support::*;

/// `svc:get_<name>` for every secret (each an apiKey scheme of that name), plus `svc:getPlain`.
fn document(upstream: &str, schemes: &[&str]) -> String {
    let mut paths = serde_json::Map::new();
    let mut security = serde_json::Map::new();
    for s in schemes {
        paths.insert(
            format!("/{s}"),
            json!({ "get": { "operationId": format!("get_{s}"), "security": [{ *s: [] }] } }),
        );
        security.insert(
            (*s).to_owned(),
            json!({ "type": "apiKey", "in": "header", "name": "X-Api-Key" }),
        );
    }
    paths.insert(
        "/getPlain".into(),
        json!({ "get": { "operationId": "getPlain", "security": [] } }),
    );
    openapi(
        upstream,
        serde_json::Value::Object(paths),
        json!({ "securitySchemes": security }),
    )
}

/// A runtime with one secret per `(name, plugin, reference)` and the given plugins.
async fn runtime(
    secrets: &[(&str, &str, &str)],
    plugins: serde_json::Value,
) -> (RecordingUpstream, TestRuntime) {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<&str> = secrets.iter().map(|(n, _, _)| *n).collect();
    std::fs::write(dir.path().join("api.json"), document(&upstream.url, &names)).unwrap();
    let mut config = config_for("api.json", json!({}));
    config["secrets"] = secrets
        .iter()
        .map(|(name, plugin, reference)| {
            (
                name.to_string(),
                json!({ "type": "plugin", "plugin": plugin, "value": reference }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    config["plugins"] = plugins;
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    (upstream, start_runtime_in(dir).await)
}

fn plugin(limits: serde_json::Value) -> serde_json::Value {
    json!({ "path": plugin_component("test-secret"), "limits": limits, "prewarm": { "instances": 0 } })
}

/// Status and problem detail of one call.
async fn call(rt: &TestRuntime, tool: &str) -> (u16, String) {
    let response = rt
        .client
        .post(format!("{}/v1/tools/execute", rt.url))
        .header("Accept", "application/json")
        .json(&json!({ "toolId": tool }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    (status, detail)
}

async fn still_serves(rt: &TestRuntime) {
    let (status, detail) = call(rt, "svc:get_good").await;
    assert_eq!(status, 200, "after: {detail}");
    let (status, detail) = call(rt, "svc:getPlain").await;
    assert_eq!(status, 200, "after: {detail}");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sleeping_in_wasi_fails_closed_at_its_timeout_and_says_it_waited() {
    let (_upstream, rt) = runtime(
        &[
            ("sleepy", "sleeper", "sleep:60000"),
            ("good", "sleeper", "literal:ok"),
        ],
        json!({ "sleeper": plugin(json!({ "timeoutMs": 1000 })) }),
    )
    .await;
    let started = Instant::now();
    let (status, detail) = call(&rt, "svc:get_sleepy").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 502, "{detail}");
    assert!(
        detail.contains("plugin \"sleeper\" waited in wasi:io/poll past its budget of"),
        "{detail}"
    );
    assert!(!detail.contains("timed out"), "{detail}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(900), "took {elapsed:?}");
    still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_sleeping_calls_of_one_plugin_does_not_stall_another_plugin() {
    let (_upstream, rt) = runtime(
        &[
            ("sleepy", "sleeper", "sleep:60000"),
            ("good", "other", "literal:ok"),
        ],
        json!({
            "sleeper": plugin(json!({ "timeoutMs": 3000 })),
            "other": plugin(json!({ "timeoutMs": 1000 })),
        }),
    )
    .await;
    // More sleepers than the pool has slots (128): before per-plugin slots and bounded waits
    // they took every slot for 60 s.
    let storm: Vec<_> = (0..140)
        .map(|_| {
            let client = rt.client.clone();
            let url = format!("{}/v1/tools/execute", rt.url);
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("Accept", "application/json")
                    .json(&json!({ "toolId": "svc:get_sleepy" }))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, detail) = call(&rt, "svc:get_good").await;
        assert_eq!(status, 200, "the other plugin during the storm: {detail}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the other plugin took {:?} during the storm",
            started.elapsed()
        );
        let started = Instant::now();
        let (status, _) = call(&rt, "svc:getPlain").await;
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_millis(1500));
    }
    let started = Instant::now();
    for call in storm {
        assert_eq!(call.await.unwrap(), 502, "every sleeper fails closed");
    }
    // 16 run for their 3 s budget, the rest wait at most that long for a slot.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the storm took {:?}",
        started.elapsed()
    );
    still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_the_plugins_concurrency_waits_within_its_budget_then_fails_busy() {
    let config: Config = serde_json::from_value(json!({ "plugins": { "narrow": {
        "path": plugin_component("test-policy"),
        "limits": { "maxConcurrent": 1, "timeoutMs": 1500 },
        "prewarm": { "instances": 0 },
    } } }))
    .unwrap();
    let set = PluginSet::load(&config, Path::new("/")).unwrap();
    let plugin = PolicyPlugin(set.get("narrow").unwrap().clone());
    let holder = {
        let plugin = plugin.clone();
        let looping = PolicyQuery {
            tool_id: "svc:loop".into(),
            ..PolicyQuery::default()
        };
        tokio::spawn(async move { plugin.ask(&looping).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let waiter = plugin
        .ask(&PolicyQuery {
            tool_id: "svc:fine".into(),
            deadline: Some(Instant::now() + Duration::from_millis(300)),
            ..PolicyQuery::default()
        })
        .await;
    let waited = started.elapsed();
    let error = waiter.unwrap_err();
    assert_eq!(error.code(), "plugin_busy");
    let text = error.to_string();
    assert!(
        text.starts_with("plugin \"narrow\" was too busy: all 1 of its call slots (limits.maxConcurrent) stayed taken"),
        "{text}"
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1200),
        "waited {waited:?}"
    );
    let held = holder.await.unwrap().unwrap_err();
    assert_eq!(held.code(), "plugin_timeout", "{held}");
    // The slot is free again.
    let after = plugin
        .ask(&PolicyQuery {
            tool_id: "svc:fine".into(),
            ..PolicyQuery::default()
        })
        .await;
    assert!(after.is_ok(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_bytes_bomb_traps_by_name_without_growing_the_server() {
    let (_upstream, rt) = runtime(
        &[
            ("bomb", "small", "random:67108864:8"),
            ("fits", "small", "random:4096:8"),
            ("good", "small", "literal:ok"),
        ],
        json!({ "small": plugin(json!({ "memoryMiB": 4, "timeoutMs": 2000 })) }),
    )
    .await;
    let (status, detail) = call(&rt, "svc:get_fits").await;
    assert_eq!(status, 200, "{detail}");
    let before = rss_kib();
    let (status, detail) = call(&rt, "svc:get_bomb").await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert_eq!(status, 502, "{detail}");
    assert!(
        detail.contains("asked wasi:random for 67108864 bytes, more than its limit of 1048576"),
        "{detail}"
    );
    assert!(grown_mib < 64, "the server grew by {grown_mib} MiB");
    still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pollable_flood_is_refused_at_the_resource_limit() {
    let (_upstream, rt) = runtime(
        &[
            ("flood", "small", "pollables:2000000"),
            ("list", "small", "poll-list:200000"),
            ("some", "small", "pollables:500"),
            ("good", "small", "literal:ok"),
        ],
        json!({ "small": plugin(json!({ "memoryMiB": 4, "timeoutMs": 5000 })) }),
    )
    .await;
    let (status, detail) = call(&rt, "svc:get_some").await;
    assert_eq!(status, 200, "{detail}");
    let started = Instant::now();
    let (status, detail) = call(&rt, "svc:get_flood").await;
    assert_eq!(status, 502, "{detail}");
    assert!(
        detail.contains("hit a host limit: held more than 1024 WASI resources at once"),
        "{detail}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let (status, detail) = call(&rt, "svc:get_list").await;
    assert_eq!(status, 502, "{detail}");
    assert!(detail.contains("plugin \"small\""), "{detail}");
    still_serves(&rt).await;
}
