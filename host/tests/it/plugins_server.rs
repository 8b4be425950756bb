//! WebAssembly plugins through a real runtime and a real upstream: secret sources, policy
//! evaluators and auth profiles, well-behaved and hostile. Components come from
//! `tests/plugins/`, built by the `portcullis-test-artifacts` build script.

use super::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// Hostile references of `test-secret` and what the caller must see about each.
const HOSTILE: [(&str, &str); 9] = [
    ("loop", "timed out after 100 ms"),
    ("bomb", "exceeded its memory limit of 16 MiB"),
    ("recurse", "trapped"),
    ("huge", "returned an invalid value"),
    (
        "crlf",
        "returned an invalid value: the secret contains CR, LF or NUL",
    ),
    ("trap", "trapped"),
    (
        "env:PORTCULLIS_PLUGIN_TEST_ENV",
        "could not resolve the secret",
    ),
    ("file", "could not resolve the secret"),
    ("http", "could not resolve the secret"),
];

fn scheme(case: &str) -> String {
    case.split(':').next().unwrap_or(case).replace('-', "_")
}

/// One GET operation per scheme (`svc:get_<scheme>`), each secured by an apiKey scheme of
/// that name, plus `svc:getPlain` without security.
fn document(upstream: &str, schemes: &[String]) -> String {
    let mut paths = serde_json::Map::new();
    let mut security = serde_json::Map::new();
    for s in schemes {
        paths.insert(
            format!("/{s}"),
            json!({ "get": { "operationId": format!("get_{s}"), "security": [{ s.clone(): [] }] } }),
        );
        security.insert(
            s.clone(),
            json!({ "type": "apiKey", "in": "header", "name": "X-Api-Key" }),
        );
    }
    for op in [
        "getPlain",
        "getDenyMe",
        "getApproveMe",
        "getTrapMe",
        "getLoopMe",
        "getLongreason",
    ] {
        paths.insert(
            format!("/{op}"),
            json!({ "get": { "operationId": op, "security": [] } }),
        );
    }
    openapi(
        upstream,
        serde_json::Value::Object(paths),
        json!({ "securitySchemes": security }),
    )
}

struct Setup {
    upstream: RecordingUpstream,
    rt: TestRuntime,
}

/// A runtime whose `svc` service has one operation per entry of `secrets` (scheme -> secret),
/// with `plugins` and any `extra` top-level config.
async fn setup(
    secrets: serde_json::Value,
    plugins: serde_json::Value,
    extra: serde_json::Value,
    prepare: impl FnOnce(&std::path::Path),
) -> Setup {
    let upstream = start_upstream().await;
    let schemes: Vec<String> = secrets
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    std::fs::write(
        dir.path().join("api.json"),
        document(&upstream.url, &schemes),
    )
    .unwrap();
    let mut config = config_for("api.json", extra);
    config["secrets"] = secrets;
    config["plugins"] = plugins;
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let rt = start_runtime_in(dir).await;
    Setup { upstream, rt }
}

fn probe(grants: serde_json::Value) -> serde_json::Value {
    json!({
        "path": plugin_component("test-secret"),
        "grants": grants,
        "config": { "prefix": "p-" }
    })
}

#[tokio::test]
async fn a_secret_plugin_supplies_the_credential_the_upstream_receives() {
    let s = setup(
        json!({ "good": { "type": "plugin", "plugin": "probe", "value": "literal:tok-1" } }),
        json!({ "probe": probe(json!({})) }),
        json!({}),
        |_| {},
    )
    .await;
    let (status, body) = s.rt.execute(json!({ "toolId": "svc:get_good" })).await;
    assert_eq!(status, 200, "{body}");
    let seen = s.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-api-key"], "p-tok-1");
}

// Multi-threaded, as the server runs: secret and auth calls then run in place
// (`block_in_place`); the current-thread tests here cover the `spawn_blocking` fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_plugins_fail_closed_within_limits_while_a_normal_call_succeeds() {
    std::env::set_var("PORTCULLIS_PLUGIN_TEST_ENV", "env-value-never-granted");
    let upstream_probe = start_upstream().await;
    let secret_dir = tempfile::tempdir().unwrap();
    std::fs::write(secret_dir.path().join("secret.txt"), "file-value\n").unwrap();
    let secret_file = secret_dir.path().join("secret.txt");
    let mut secrets = serde_json::Map::new();
    for (case, _) in HOSTILE {
        let reference = match case {
            "file" => format!("file:{}", secret_file.display()),
            "http" => format!("http:{}/leak", upstream_probe.url),
            other => other.to_owned(),
        };
        secrets.insert(
            scheme(case),
            json!({ "type": "plugin", "plugin": "probe", "value": reference }),
        );
    }
    // The same three reads succeed from a plugin that was granted them.
    for (name, reference) in [
        ("granted_env", "env:PORTCULLIS_PLUGIN_TEST_ENV".to_owned()),
        ("granted_file", format!("file:{}", secret_file.display())),
        (
            "granted_http",
            format!("http:{}/granted", upstream_probe.url),
        ),
        ("good", "literal:ok".to_owned()),
    ] {
        let plugin = if name == "good" { "probe" } else { "granted" };
        secrets.insert(
            name.into(),
            json!({ "type": "plugin", "plugin": plugin, "value": reference }),
        );
    }
    let s = setup(
        serde_json::Value::Object(secrets),
        json!({
            "probe": probe(json!({})),
            "granted": probe(json!({
                "env": ["PORTCULLIS_PLUGIN_TEST_ENV"],
                "files": [secret_dir.path()],
                "http": [upstream_probe.url],
            })),
        }),
        json!({}),
        |_| {},
    )
    .await;

    for (case, expected) in HOSTILE {
        let tool = format!("svc:get_{}", scheme(case));
        let started = Instant::now();
        let hostile = s.rt.execute_json(json!({ "toolId": tool }));
        let normal = s.rt.execute_json(json!({ "toolId": "svc:get_good" }));
        let ((status, body), (normal_status, normal_body)) = tokio::join!(hostile, normal);
        let elapsed = started.elapsed();
        assert_eq!(status, 502, "{case}: {body}");
        assert_eq!(body, json!("credential_unavailable\n"), "{case}");
        assert_eq!(
            normal_status, 200,
            "{case}: concurrent normal call: {normal_body}"
        );
        assert!(elapsed < Duration::from_secs(3), "{case} took {elapsed:?}");
        // The precise reason is in the problem detail and the audit record.
        let problem =
            s.rt.client
                .post(format!("{}/v1/tools/execute", s.rt.url))
                .header("Accept", "application/json")
                .json(&json!({ "toolId": tool }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap();
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("plugin \"probe\"") && detail.contains(expected),
            "{case}: {detail}"
        );
        assert!(
            !detail.contains("env-value") && !detail.contains("file-value"),
            "{case}: {detail}"
        );
    }
    let audit = s.rt.audit().await;
    for (case, _) in HOSTILE {
        let tool = format!("svc:get_{}", scheme(case));
        assert!(
            audit.iter().any(|e| e["toolId"] == tool.as_str()
                && e["errorCode"] == "credential_unavailable"
                && e["decision"] == "error"),
            "{case}: no audit record"
        );
    }
    // Nothing hostile reached the upstream; only the normal calls did.
    let seen = s.upstream.requests();
    assert!(seen
        .iter()
        .all(|r| r.path_and_query == "/get_good" || r.path_and_query == "/good"));
    assert!(
        upstream_probe.requests().is_empty(),
        "the ungranted plugin reached the network"
    );

    for (name, value) in [
        ("granted_env", "env-value-never-granted"),
        ("granted_file", "file-value"),
    ] {
        let (status, body) =
            s.rt.execute(json!({ "toolId": format!("svc:get_{name}") }))
                .await;
        assert_eq!(status, 200, "{name}: {body}");
        let last = s.upstream.requests().pop().unwrap();
        assert_eq!(last.headers["x-api-key"], value, "{name}");
    }
    let (status, body) =
        s.rt.execute(json!({ "toolId": "svc:get_granted_http" }))
            .await;
    assert_eq!(status, 200, "granted http: {body}");
    assert_eq!(upstream_probe.requests().len(), 1);
    assert_eq!(upstream_probe.requests()[0].path_and_query, "/granted");
}

// Multi-threaded: policy calls run in place, cut off at the pipeline's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_plugins_deny_require_approval_and_fail_closed() {
    let s = setup(
        json!({}),
        json!({ "policy": { "path": plugin_component("test-policy") } }),
        json!({ "policy": { "plugins": ["policy"] } }),
        |_| {},
    )
    .await;
    let cases = [
        (json!({ "toolId": "svc:getPlain" }), 200, "plain allowed"),
        (json!({ "toolId": "svc:getDenyMe" }), 403, "plugin_deny"),
        (
            json!({ "toolId": "svc:getApproveMe" }),
            403,
            "approval_required",
        ),
        (
            json!({ "toolId": "svc:getApproveMe", "approval": true }),
            200,
            "approved",
        ),
        (json!({ "toolId": "svc:getTrapMe" }), 403, "policy_error"),
        (json!({ "toolId": "svc:getLoopMe" }), 403, "policy_error"),
        (
            json!({ "toolId": "svc:getLongreason" }),
            403,
            "policy_error",
        ),
    ];
    for (request, status, code) in cases {
        let started = Instant::now();
        let (got, body) = s.rt.execute(request.clone()).await;
        assert_eq!(got, status, "{request}: {body}");
        if status == 403 {
            assert_eq!(body.trim(), code, "{request}");
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{request}");
    }
    let paths: Vec<String> = s
        .upstream
        .requests()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    assert_eq!(paths, ["/getPlain", "/getApproveMe"]);
    let audit = s.rt.audit().await;
    assert!(audit
        .iter()
        .any(|e| e["toolId"] == "svc:getLoopMe" && e["reasonCode"] == "policy_error"));
}

// A policy plugin runs in place (no future to time out), so the pipeline's budget must reach it
// as its epoch deadline: a loop is cut at `pluginBudgetMs`, not at the plugin's own 5 s limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_policy_plugin_is_cut_off_at_the_pipeline_budget_not_its_own_timeout() {
    let s = setup(
        json!({}),
        json!({ "policy": {
            "path": plugin_component("test-policy"),
            "limits": { "timeoutMs": 5000 }
        } }),
        json!({ "policy": { "plugins": ["policy"], "pluginBudgetMs": 50 } }),
        |_| {},
    )
    .await;
    let started = Instant::now();
    let (status, body) = s.rt.execute(json!({ "toolId": "svc:getLoopMe" })).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body.trim(), "policy_error");
    assert!(
        elapsed < Duration::from_millis(2_000),
        "cut off after {elapsed:?}, not at the 50 ms budget"
    );
}

// Multi-threaded, as the server runs: secret and auth calls then run in place
// (`block_in_place`); the current-thread tests here cover the `spawn_blocking` fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_profile_plugin_authenticates_rejects_and_fails_closed() {
    let s = setup(
        json!({}),
        json!({ "auth": { "path": plugin_component("test-auth"), "limits": { "timeoutMs": 50 } } }),
        json!({ "runtime": { "server": { "auth": {
            "validationProfile": "plugin", "plugin": "auth", "audience": "portcullis-test"
        } } } }),
        |_| {},
    )
    .await;
    let call = |token: &'static str| {
        let rt = &s.rt;
        async move {
            let response = rt
                .client
                .post(format!("{}/v1/tools/execute", rt.url))
                .header("Authorization", format!("Bearer {token}"))
                .json(&json!({ "toolId": "svc:getPlain" }))
                .send()
                .await
                .unwrap();
            let retry = response.headers().get("retry-after").is_some();
            (response.status().as_u16(), retry)
        }
    };
    assert_eq!(call("good-alice").await.0, 200);
    assert_eq!(call("nonsense").await.0, 401);
    assert_eq!(call("expired-bob").await.0, 401);
    assert_eq!(call("down").await, (503, true));
    let started = Instant::now();
    assert_eq!(call("loop").await, (503, true));
    assert!(started.elapsed() < Duration::from_secs(2));
    let audit = s.rt.audit_file().await;
    let executed: Vec<_> = audit
        .iter()
        .filter(|e| e["eventType"] == "tool_execution")
        .collect();
    assert_eq!(executed.len(), 1);
    assert_eq!(executed[0]["principal"], "alice");
}
