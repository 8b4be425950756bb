//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, `conformance server
//! --suite all`) against the door `/mcp` of a runtime that fronts
//! `tests/peers/mcp/conformance-server.mjs` (the suite's fixture tools) as the MCP source
//! `conformance`, served under the upstream's own tool names (`toolNamePrefix: ""`). Runtime
//! auth is off: the suite sends no token.
//!
//! [`EXPECTED`] names every scenario the suite runs: each one that passes, and each one that
//! does not with the reason. A scenario that starts passing, one that stops, and one the suite
//! adds all fail this test until the table (and the Conformance table of docs/mcp-gateway.md)
//! says so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support;
use crate::support::door;
use crate::support::mcp::{node24, NodeServer};

/// Whether a scenario passes, or why it does not.
enum Outcome {
    Pass,
    Fail(&'static str),
}
use Outcome::{Fail, Pass};

const NOT_PROXIED: &str = "the door serves tools only: resources, prompts and completion of MCP sources are not proxied yet (not built; the capabilities say so)";

const NO_SERVER_REQUESTS: &str = "an upstream's requests to the client (sampling/createMessage, elicitation/create) are not forwarded to the door's caller (not built): Portcullis declares neither capability upstream";
const NO_RESUMPTION: &str = "SEP-1699 resumable streams: the door sends no SSE event ids and ignores Last-Event-ID, so neither a call's answer stream nor the GET stream can be resumed (not built; checks only warn)";

/// Every scenario of `conformance server --suite all`, and what it does against the door.
const EXPECTED: &[(&str, Outcome)] = &[
    ("server-initialize", Pass),
    ("ping", Pass),
    ("tools-list", Pass),
    ("tools-call-simple-text", Pass),
    ("tools-call-image", Pass),
    ("tools-call-audio", Pass),
    ("tools-call-embedded-resource", Pass),
    ("tools-call-mixed-content", Pass),
    ("tools-call-error", Pass),
    ("json-schema-2020-12", Pass),
    ("server-sse-multiple-streams", Pass),
    ("dns-rebinding-protection", Pass),
    ("tools-call-with-logging", Pass),
    ("tools-call-with-progress", Pass),
    ("logging-set-level", Pass),
    ("tools-call-sampling", Fail(NO_SERVER_REQUESTS)),
    ("tools-call-elicitation", Fail(NO_SERVER_REQUESTS)),
    ("elicitation-sep1034-defaults", Fail(NO_SERVER_REQUESTS)),
    ("elicitation-sep1330-enums", Fail(NO_SERVER_REQUESTS)),
    ("server-sse-polling", Fail(NO_RESUMPTION)),
    ("completion-complete", Fail(NOT_PROXIED)),
    ("resources-list", Fail(NOT_PROXIED)),
    ("resources-read-text", Fail(NOT_PROXIED)),
    ("resources-read-binary", Fail(NOT_PROXIED)),
    ("resources-templates-read", Fail(NOT_PROXIED)),
    ("resources-subscribe", Fail(NOT_PROXIED)),
    ("resources-unsubscribe", Fail(NOT_PROXIED)),
    ("prompts-list", Fail(NOT_PROXIED)),
    ("prompts-get-simple", Fail(NOT_PROXIED)),
    ("prompts-get-with-args", Fail(NOT_PROXIED)),
    ("prompts-get-embedded-resource", Fail(NOT_PROXIED)),
    ("prompts-get-with-image", Fail(NOT_PROXIED)),
];

/// Run the suite against `url` and read, per scenario, whether it passed (no failed check and
/// at least one successful one, the suite's own rule) and the failed checks' messages.
async fn run_suite(url: &str) -> BTreeMap<String, (bool, Vec<String>)> {
    let out = tempfile::tempdir().unwrap();
    let suite = support::peers_dir().join("@modelcontextprotocol/conformance/dist/index.js");
    let mut command = tokio::process::Command::new(node24());
    command
        .arg(&suite)
        .args(["server", "--url", url, "--suite", "all", "-o"])
        .arg(out.path())
        .current_dir(out.path())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the conformance suite finished within 120 s")
        .expect("Node 24 runs the conformance suite");
    let mut results = BTreeMap::new();
    for dir in std::fs::read_dir(out.path()).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // `server-<scenario>-<ISO time with : and . as ->` (24 characters).
        let Some(scenario) = name
            .strip_prefix("server-")
            .and_then(|rest| rest.get(..rest.len().saturating_sub(25)))
        else {
            continue;
        };
        let checks: Vec<Value> =
            serde_json::from_slice(&std::fs::read(dir.join("checks.json")).unwrap()).unwrap();
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c["status"] == "FAILURE")
            .map(|c| format!("{}: {}", c["id"], c["errorMessage"]))
            .collect();
        let passed = failed.is_empty() && checks.iter().any(|c| c["status"] == "SUCCESS");
        results.insert(scenario.to_owned(), (passed, failed));
    }
    assert!(
        !results.is_empty(),
        "the suite wrote no results:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    results
}

#[tokio::test]
async fn the_official_conformance_suite_passes_every_scenario_a_gateway_can_serve() {
    let upstream = NodeServer::conformance();
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "conformance": {
            "type": "mcp",
            "transport": { "type": "streamable-http", "url": upstream.url("/mcp") },
            "toolNamePrefix": "",
        } },
    });
    let rt = support::start_runtime(config, &[]).await;
    let results = run_suite(&format!("{}/mcp", rt.url)).await;

    let mut wrong = Vec::new();
    for (scenario, (passed, failed)) in &results {
        match EXPECTED.iter().find(|(name, _)| name == scenario) {
            None => wrong.push(format!(
                "{scenario}: not in EXPECTED (passed: {passed}; {failed:?})"
            )),
            Some((_, Pass)) if !passed => {
                wrong.push(format!("{scenario}: expected to pass, failed {failed:?}"))
            }
            Some((_, Fail(why))) if *passed => wrong.push(format!(
                "{scenario}: passes now (expected to fail: {why}); update EXPECTED and docs/mcp-gateway.md"
            )),
            Some(_) => {}
        }
    }
    for (scenario, _) in EXPECTED {
        if !results.contains_key(*scenario) {
            wrong.push(format!(
                "{scenario}: in EXPECTED, but the suite did not run it"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn bare_names_never_shadow_each_other_and_policy_still_names_the_catalog_id() {
    let upstream = NodeServer::conformance();
    let source = |prefix: &str| {
        json!({ "type": "mcp", "toolNamePrefix": prefix,
            "transport": { "type": "streamable-http", "url": upstream.url("/mcp") } })
    };
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "a": source(""), "b": source(""), "c": source("c_") },
        "policy": { "deny": ["c:test_error_handling"] },
    });
    let rt = support::start_runtime(config, &[]).await;
    let init = door::post(
        &rt,
        None,
        &[],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    )
    .await;
    let session = init.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let rpc = |body: Value| {
        let (rt, session) = (&rt, session.clone());
        async move {
            let headers = [("mcp-session-id", session.as_str())];
            door::post(rt, None, &headers, &body.to_string()).await.body
        }
    };
    let list = rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    let names = door::names(&list["result"]["tools"]);
    // a and b both claim every bare name: none of theirs is served; c's prefixed names are.
    assert!(names.iter().all(|n| n.starts_with("c_")), "{names:?}");
    assert!(names.contains(&"c_test_simple_text".to_owned()));

    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": name, "arguments": {}}})
    };
    let clash = rpc(call("test_simple_text")).await;
    assert_eq!(clash["error"]["code"], -32602, "{clash}");
    let why = clash["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("tool a:test_simple_text of MCP source \"a\"")
            && why.contains("tool b:test_simple_text of MCP source \"b\""),
        "{why}"
    );

    let ok = rpc(call("c_test_simple_text")).await;
    assert_eq!(
        door::text(&ok["result"]),
        "This is a simple text response for testing.",
        "{ok}"
    );
    let denied = rpc(call("c_test_error_handling")).await;
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert!(
        door::text(&denied["result"]).contains("c:test_error_handling"),
        "{denied}"
    );
}

/// `initialize` without a token (auth off); the session id.
async fn open(rt: &support::TestRuntime) -> String {
    let init = door::post(
        rt,
        None,
        &[],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
    )
    .await;
    init.headers["mcp-session-id"].to_str().unwrap().to_owned()
}

/// One POST in `session` accepting `accept`; the content type and the raw body.
async fn exchange(
    rt: &support::TestRuntime,
    session: &str,
    accept: &str,
    body: Value,
) -> (String, String) {
    let response = rt
        .client
        .post(format!("{}/mcp", rt.url))
        .header("content-type", "application/json")
        .header("accept", accept)
        .header("mcp-session-id", session)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (kind, response.text().await.unwrap())
}

fn call(name: &str, meta: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": name, "arguments": {}, "_meta": meta}})
}

#[tokio::test]
async fn progress_and_logs_reach_only_their_caller_within_its_level() {
    let upstream = NodeServer::conformance();
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "conformance": { "type": "mcp", "toolNamePrefix": "",
            "transport": { "type": "streamable-http", "url": upstream.url("/mcp") } } },
    });
    let rt = support::start_runtime(config, &[]).await;
    let (alice, bob) = (open(&rt).await, open(&rt).await);
    let sse = "application/json, text/event-stream";

    // Two sessions at once: each stream carries its own call's notifications only, progress
    // under the caller's own token.
    let (progress, logs) = tokio::join!(
        exchange(
            &rt,
            &alice,
            sse,
            call("test_tool_with_progress", json!({"progressToken": 42}))
        ),
        exchange(&rt, &bob, sse, call("test_tool_with_logging", json!({}))),
    );
    assert_eq!(progress.0, "text/event-stream");
    assert_eq!(
        progress.1.matches("notifications/progress").count(),
        3,
        "{}",
        progress.1
    );
    assert!(
        progress.1.contains(r#""progressToken":42"#),
        "{}",
        progress.1
    );
    assert!(
        !progress.1.contains("notifications/message"),
        "{}",
        progress.1
    );
    assert!(progress.1.contains(r#""id":5,"result""#), "{}", progress.1);
    assert_eq!(
        logs.1.matches("notifications/message").count(),
        3,
        "{}",
        logs.1
    );
    assert!(!logs.1.contains("notifications/progress"), "{}", logs.1);

    // No progress token: progress is not relayed, and the answer is plain JSON.
    let quiet = exchange(&rt, &alice, sse, call("test_tool_with_progress", json!({}))).await;
    assert_eq!(quiet.0, "application/json", "{}", quiet.1);
    // A client that does not accept SSE gets JSON whatever the tool sends.
    let json_only = exchange(
        &rt,
        &bob,
        "application/json",
        call("test_tool_with_logging", json!({})),
    )
    .await;
    assert_eq!(json_only.0, "application/json", "{}", json_only.1);

    // logging/setLevel: an unknown level is refused; above info, bob's info logs stop.
    let set = |level: &str| json!({"jsonrpc": "2.0", "id": 6, "method": "logging/setLevel", "params": {"level": level}});
    let (_, refused) = exchange(&rt, &bob, sse, set("loud")).await;
    assert!(refused.contains("-32602"), "{refused}");
    let (_, accepted) = exchange(&rt, &bob, sse, set("warning")).await;
    assert!(accepted.contains(r#""result":{}"#), "{accepted}");
    let filtered = exchange(&rt, &bob, sse, call("test_tool_with_logging", json!({}))).await;
    assert_eq!(filtered.0, "application/json", "{}", filtered.1);
    // Alice's level is her own.
    let hers = exchange(&rt, &alice, sse, call("test_tool_with_logging", json!({}))).await;
    assert_eq!(
        hers.1.matches("notifications/message").count(),
        3,
        "{}",
        hers.1
    );
}

/// `portcullis mcp stdio` (the real binary) writes a relayed call's progress as it comes, then
/// the response: one JSON-RPC message per line.
#[tokio::test]
async fn the_stdio_relay_passes_progress_on_before_the_response() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let upstream = NodeServer::conformance();
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "conformance": { "type": "mcp", "toolNamePrefix": "",
            "transport": { "type": "streamable-http", "url": upstream.url("/mcp") } } },
    });
    let rt = support::start_runtime(config, &[]).await;
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["mcp", "stdio"])
        .env("PORTCULLIS_MCP_URL", &rt.url)
        .env_remove("PORTCULLIS_MCP_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = relay.stdin.take().unwrap();
    let mut lines = BufReader::new(relay.stdout.take().unwrap()).lines();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let progress = call("test_tool_with_progress", json!({"progressToken": "t"}));
    for line in [init.to_owned(), progress.to_string()] {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut read = Vec::new();
    while read.last().is_none_or(|m: &Value| m["id"] != 5) {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the relay answered within 30 s")
            .unwrap()
            .expect("the relay wrote the response");
        read.push(serde_json::from_str(&line).unwrap());
    }
    let methods: Vec<&str> = read.iter().filter_map(|m| m["method"].as_str()).collect();
    assert_eq!(methods, ["notifications/progress"; 3], "{read:?}");
    assert_eq!(read[1]["params"]["progressToken"], "t");
    assert!(
        read.last().unwrap()["result"]["content"].is_array(),
        "{read:?}"
    );
}
