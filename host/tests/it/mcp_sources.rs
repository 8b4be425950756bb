//! MCP sources against the real `@modelcontextprotocol/server-everything` over stdio,
//! streamable HTTP and legacy SSE: catalog mapping, execution through `/v1/tools/execute`,
//! `isError` results, notifications on the stream, and recovery after the server dies.

use super::support;
use super::support::mcp;

use std::time::Duration;

use mcp::*;
use serde_json::{json, Value};
use support::*;

fn tool<'a>(catalog: &'a Value, id: &str) -> &'a Value {
    catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no tool {id} in {catalog}"))
}

async fn catalog(rt: &TestRuntime) -> Value {
    let (status, body) = rt.get("/v1/catalog/effective").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn echo(rt: &TestRuntime, message: &str) -> (u16, Value) {
    rt.execute_json(json!({"toolId": "everything:echo", "body": {"message": message}}))
        .await
}

fn text_of(result: &Value) -> String {
    result["body"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// List, call and an `isError` result, the same on every transport.
async fn lists_calls_and_reports_tool_errors(rt: &TestRuntime) {
    let catalog = catalog(rt).await;
    // The NTC schema requires `uri` on every source (issue #17), and the discover view says
    // its mode.
    for source in catalog["catalog"]["sources"].as_array().unwrap() {
        assert!(source["uri"].is_string(), "{source}");
    }
    assert_eq!(catalog["view"]["name"], "discover");
    assert_eq!(catalog["view"]["mode"], "discover");
    let echo_tool = tool(&catalog, "everything:echo");
    assert_eq!(echo_tool["method"], "POST");
    assert_eq!(echo_tool["path"], "/_mcp/everything/echo");
    assert_eq!(echo_tool["backend"]["kind"], "mcp");
    assert_eq!(
        echo_tool["safety"]["readOnly"], true,
        "readOnlyHint maps to safety"
    );
    assert_eq!(echo_tool["safety"]["destructive"], false);
    let toggle = tool(&catalog, "everything:toggle-simulated-logging");
    assert_eq!(toggle["safety"]["idempotent"], false);

    let (status, result) = echo(rt, "hello").await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["statusCode"], 200);
    assert_eq!(result["contentType"], "application/json");
    assert!(text_of(&result).contains("hello"), "{result}");

    // Invalid arguments: the server answers with an `isError: true` result.
    let (status, error) = rt
        .execute_json(
            json!({"toolId": "everything:get-sum", "body": {"a": "not a number", "b": 1}}),
        )
        .await;
    assert_eq!(status, 502, "{error}");
    let events = rt.audit().await;
    let last = events.last().unwrap();
    assert_eq!(last["eventType"], "execution_error", "{last}");
    assert_eq!(last["reasonCode"], "execution_error", "{last}");
    assert_eq!(last["errorCode"], "tool_error", "{last}");
    assert!(
        events
            .iter()
            .any(|e| e["eventType"] == "tool_execution" && e["toolId"] == "everything:echo"),
        "the successful call is audited as tool_execution"
    );
    // The intent records the arguments under the same redaction rule as HTTP tools.
    let (_, intents) = rt
        .get("/v1/audit/events?eventType=tool_execution_intent")
        .await;
    let intents: Vec<serde_json::Value> = serde_json::from_str(&intents).unwrap();
    let sum = intents
        .iter()
        .find(|e| e["toolId"] == "everything:get-sum")
        .expect("an intent for get-sum");
    assert_eq!(sum["arguments"]["body"]["a"], "not a number", "{sum}");
}

#[tokio::test]
async fn stdio_server_is_listed_called_and_reused_through_one_process() {
    let rt = start_runtime(everything_config(stdio_transport()), &[]).await;
    lists_calls_and_reports_tool_errors(&rt).await;
    let session = rt.runtime.mcp.session("everything").unwrap();
    let pid = session.child_pid().await.expect("a live child");
    for i in 0..5 {
        assert_eq!(echo(&rt, &format!("again {i}")).await.0, 200);
    }
    assert_eq!(
        session.child_pid().await,
        Some(pid),
        "one process serves every call"
    );
}

#[tokio::test]
async fn stdio_child_sees_only_its_granted_environment_and_never_echoes_a_credential() {
    // The runtime's own environment holds another service's credential and one granted to
    // this server with `passEnv`.
    std::env::set_var(
        "PORTCULLIS_TEST_OTHER_SERVICE_KEY",
        "other-service-canary-4f1e",
    );
    std::env::set_var("PORTCULLIS_TEST_GRANTED_TOKEN", "granted-token-canary-9c2d");
    let mut transport = stdio_transport();
    transport["passEnv"] = json!(["PORTCULLIS_TEST_GRANTED_TOKEN"]);
    let rt = start_runtime(everything_config(transport), &[]).await;
    let (status, result) = rt
        .execute_json(json!({"toolId": "everything:get-env", "body": {}}))
        .await;
    assert_eq!(status, 200, "{result}");
    let env: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(env["PORTCULLIS_TEST_MARK"], "set-by-config");
    assert!(env["PATH"].is_string(), "PATH is passed: {env}");
    let granted = |name: &str| {
        ["PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE"].contains(&name)
            || name.starts_with("LC_")
            || name == "PORTCULLIS_TEST_MARK"
            || name == "PORTCULLIS_TEST_GRANTED_TOKEN"
    };
    let names: Vec<&String> = env.as_object().unwrap().keys().collect();
    assert!(
        names.iter().all(|n| granted(n)),
        "the child sees only granted variables: {names:?}"
    );
    assert_eq!(
        env["PORTCULLIS_TEST_GRANTED_TOKEN"], "[REDACTED]",
        "the child holds its credential; the caller never gets it back"
    );
    assert!(!result.to_string().contains("canary"), "{result}");
}

#[tokio::test]
async fn logging_notifications_on_the_stream_never_break_a_call() {
    let rt = start_runtime(everything_config(stdio_transport()), &[]).await;
    let (status, _) = rt
        .execute_json(json!({"toolId": "everything:toggle-simulated-logging", "body": {}}))
        .await;
    assert_eq!(status, 200);
    // The server now logs every few seconds; calls keep being answered by id.
    for i in 0..20 {
        let (status, result) = echo(&rt, &format!("while logging {i}")).await;
        assert_eq!(status, 200, "{result}");
        assert!(text_of(&result).contains(&format!("while logging {i}")));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn stdio_child_killed_mid_run_serves_the_very_next_call_from_a_new_child() {
    let rt = start_runtime(everything_config(stdio_transport()), &[]).await;
    assert_eq!(echo(&rt, "before").await.0, 200);
    let session = rt.runtime.mcp.session("everything").unwrap();
    for round in 0..2 {
        let pid = session.child_pid().await.expect("a live child");
        crash(pid).await;
        let (status, result) = echo(&rt, &format!("after crash {round}")).await;
        assert_eq!(status, 200, "the first call after the crash: {result}");
        let new_pid = session.child_pid().await.expect("a respawned child");
        assert_ne!(new_pid, pid);
        assert!(process_alive(new_pid));
    }
}

#[tokio::test]
async fn a_crashed_stdio_child_is_restarted_in_the_background_and_the_catalog_stays_whole() {
    let rt = start_runtime(everything_config(stdio_transport()), &[]).await;
    let tools_before = rt.runtime.snapshot().catalog.tools.len();
    assert!(tools_before > 0);
    let session = rt.runtime.mcp.session("everything").unwrap();
    let pid = session
        .child_pid()
        .await
        .expect("the catalog build started a child");
    crash(pid).await;
    // No call is made: the supervisor notices the exit and starts a new child by itself.
    let restarted = eventually(Duration::from_secs(20), || async {
        session
            .child_pid()
            .await
            .is_some_and(|p| p != pid && process_alive(p))
    })
    .await;
    assert!(restarted, "no new child within 20 s of the crash");
    let new_pid = session.child_pid().await.unwrap();
    // The restart asks for a rebuild; the catalog lists the new child's tools.
    let rebuilt = eventually(Duration::from_secs(10), || async {
        rt.runtime.snapshot().catalog.tools.len() == tools_before
    })
    .await;
    assert!(rebuilt);
    assert_eq!(echo(&rt, "served by the new child").await.0, 200);
    assert_eq!(session.child_pid().await, Some(new_pid), "the call used it");
}

#[tokio::test]
async fn no_stdio_child_outlives_the_runtime_process() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    // The wrapper records its pid, then becomes the server (exec keeps the pid).
    let config = everything_config(json!({
        "type": "stdio",
        "command": "/bin/sh",
        "args": ["-c", "echo $$ > \"$PID_FILE\"; exec \"$SERVER\" stdio"],
        "env": {
            "PID_FILE": pid_file.to_str().unwrap(),
            "SERVER": everything_bin().to_str().unwrap(),
        },
    }));
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let port = free_port();
    let mut runtime = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--config"])
        .arg(dir.path().join(".cli.json"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("PORTCULLIS_MANAGED_CONFIG", dir.path().join("none"))
        .env("PORTCULLIS_USER_CONFIG", dir.path().join("none"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(60), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/v1/runtime/info"))
            .await
            .is_ok()
    })
    .await;
    let child = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &runtime.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while runtime.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = runtime.try_wait().unwrap().is_some();
    if !exited {
        let _ = runtime.kill();
    }
    assert!(ready, "the runtime did not start");
    assert!(exited, "the runtime did not exit after SIGTERM");
    let child = child.expect("the runtime started the stdio server");
    let alive = process_alive(child);
    if alive {
        // Do not leak it from the test either.
        let _ = std::process::Command::new("kill")
            .args(["-9", &child.to_string()])
            .status();
    }
    assert!(!alive, "stdio child {child} outlived the runtime");
}

#[tokio::test]
async fn streamable_http_server_restarted_on_the_same_port_serves_the_very_next_call() {
    let mut server = NodeServer::everything("streamableHttp");
    let rt = start_runtime(
        everything_config(json!({"type": "streamable-http", "url": server.url("/mcp")})),
        &[],
    )
    .await;
    lists_calls_and_reports_tool_errors(&rt).await;
    for round in 0..2 {
        server.restart();
        // The new process answers the old session id with 400: the call was refused before
        // it was processed, so it is resent once on a new session.
        let (status, result) = echo(&rt, &format!("after restart {round}")).await;
        assert_eq!(status, 200, "the first call after the restart: {result}");
    }
    server.kill();
    let (status, _) = echo(&rt, "while down").await;
    assert_eq!(status, 502);
    server.restart();
    let recovered = eventually(Duration::from_secs(20), || async {
        echo(&rt, "back").await.0 == 200
    })
    .await;
    assert!(recovered);
}

#[tokio::test]
async fn legacy_sse_server_restarted_on_the_same_port_serves_the_very_next_call() {
    let mut server = NodeServer::everything("sse");
    let rt = start_runtime(
        everything_config(json!({"type": "sse", "url": server.url("/sse")})),
        &[],
    )
    .await;
    lists_calls_and_reports_tool_errors(&rt).await;
    for round in 0..2 {
        server.restart();
        let (status, result) = echo(&rt, &format!("after restart {round}")).await;
        assert_eq!(status, 200, "the first call after the restart: {result}");
    }
}

#[tokio::test]
async fn a_dead_mcp_source_fails_alone_and_disabled_tools_are_hidden() {
    let mut config = everything_config(stdio_transport());
    config["sources"]["everything"]["disabledTools"] = json!(["get-env"]);
    config["sources"]["down"] = json!({
        "type": "mcp",
        "transport": {"type": "streamable-http", "url": format!("http://127.0.0.1:{}/mcp", free_port())},
    });
    let rt = start_runtime(config, &[]).await;
    let catalog = catalog(&rt).await;
    let ids: Vec<&str> = catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"everything:echo"));
    assert!(
        !ids.contains(&"everything:get-env"),
        "disabled tool is not catalogued"
    );
    let errors = rt.runtime.snapshot().source_errors.clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].source_id, "down");
    let (status, _) = rt
        .execute_json(json!({"toolId": "everything:get-env", "body": {}}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_policy_pattern_naming_only_a_disabled_tool_fails_the_source_closed() {
    let mut config = everything_config(stdio_transport());
    config["sources"]["everything"]["disabledTools"] = json!(["get-env"]);
    config["policy"] = json!({"approvalRequired": ["everything:get-env"]});
    let rt = start_runtime(config, &[]).await;
    let errors = rt.runtime.snapshot().source_errors.clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .contains("references disabled MCP tool \"get-env\""),
        "{errors:?}"
    );
    assert!(rt.runtime.snapshot().catalog.tools.is_empty());
}

#[tokio::test]
async fn an_overlay_or_workflow_naming_only_a_disabled_tool_fails_the_source_closed() {
    let overlay = "overlay: 1.0.0\nactions:\n  - target: \"$.paths['/_mcp/everything/get-env'].post\"\n    update: {summary: x}\n";
    let workflow = json!({"arazzo": "1.0.0", "workflows": [{"workflowId": "env", "steps": [
        {"stepId": "one", "operationId": "get-env"}]}]});
    for (key, file, contents) in [
        ("overlays", "o.yaml", overlay.to_owned()),
        ("workflows", "w.json", workflow.to_string()),
    ] {
        let mut config = everything_config(stdio_transport());
        config["sources"]["everything"]["disabledTools"] = json!(["get-env"]);
        config["services"] = json!({"everything": {"source": "everything", key: [file]}});
        let rt = start_runtime(config, &[(file, contents)]).await;
        let errors = rt.runtime.snapshot().source_errors.clone();
        assert_eq!(errors.len(), 1, "{key}: {errors:?}");
        assert!(
            errors[0]
                .message
                .contains("references disabled MCP tool \"get-env\""),
            "{key}: {errors:?}"
        );
        assert!(rt.runtime.snapshot().catalog.tools.is_empty());
    }
}

#[tokio::test]
async fn an_overlay_ignores_and_gates_mcp_tools_by_their_catalog_path() {
    let overlay = "overlay: 1.0.0\nactions:
  - target: \"$.paths['/_mcp/everything/get-env'].post\"
    update: {x-cli-ignore: true}
  - target: \"$.paths['/_mcp/everything/echo'].post\"
    update: {x-cli-safety: {requiresApproval: true}, x-cli-name: say}
";
    let mut config = everything_config(stdio_transport());
    config["services"] = json!({"everything": {"source": "everything", "overlays": ["o.yaml"]}});
    let rt = start_runtime(config, &[("o.yaml", overlay.to_owned())]).await;
    assert!(rt.runtime.snapshot().source_errors.is_empty());
    let (_, body) = rt.get("/v1/catalog/effective").await;
    let catalog: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(!ids.contains(&"everything:get-env"), "{ids:?}");
    assert_eq!(tool(&catalog, "everything:echo")["command"], "say");
    let (status, _) = rt
        .execute_json(json!({"toolId": "everything:get-env", "body": {}}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = echo(&rt, "gated").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body.as_str().map(str::trim), Some("approval_required"));
    let (status, _) = rt
        .execute_json(
            json!({"toolId": "everything:echo", "body": {"message": "ok"}, "approval": true}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_slow_mcp_tool_call_is_cut_off_at_the_configured_upstream_timeout() {
    let mut config = everything_config(stdio_transport());
    config["runtime"] = json!({"server": {"upstream": {"timeoutMs": 700}}});
    let rt = start_runtime(config, &[]).await;
    let started = std::time::Instant::now();
    let (status, error) = rt
        .execute_json(
            json!({"toolId": "everything:trigger-long-running-operation",
            "body": {"duration": 5, "steps": 5}}),
        )
        .await;
    assert_eq!(status, 502, "{error}");
    assert!(started.elapsed() < Duration::from_secs(4), "not cut off");
    let last = rt.audit().await.last().cloned().unwrap();
    assert_eq!(last["eventType"], "execution_error", "{last}");
    assert_eq!(last["reasonCode"], "execution_error", "{last}");
    assert_eq!(last["errorCode"], "upstream_timeout", "{last}");
    // The session survives a timed-out call.
    assert_eq!(echo(&rt, "still here").await.0, 200);
}

#[tokio::test]
async fn mcp_calls_pass_through_the_same_policy_as_http_tools() {
    let mut config = everything_config(stdio_transport());
    config["policy"] =
        json!({"deny": ["everything:get-env"], "approvalRequired": ["everything:echo"]});
    let rt = start_runtime(config, &[]).await;
    let (status, _) = rt
        .execute_json(json!({"toolId": "everything:get-env", "body": {}}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(echo(&rt, "no approval").await.0, 403);
    let (status, _) = rt
        .execute_json(
            json!({"toolId": "everything:echo", "body": {"message": "ok"}, "approval": true}),
        )
        .await;
    assert_eq!(status, 200);
    // The allowing decision is in the MCP call's intent record, as for HTTP tools.
    let (_, intents) = rt
        .get("/v1/audit/events?eventType=tool_execution_intent")
        .await;
    let intents: Vec<Value> = serde_json::from_str(&intents).unwrap();
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(
        intents[0]["detail"]["ruleId"],
        "request flag approval: true"
    );
}

/// `node` from the test's PATH (the stdio child gets only the environment its config grants).
fn node_bin() -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .expect("node is required for the MCP tests")
}

/// Issue #17: a tool whose input schema is not `type: object` (here `["object", "null"]`, from a
/// server built with the official SDK) takes `{"input": ...}` and the server receives the
/// unwrapped value, as with the reference runtime; a tool without annotations gets the
/// reference's safety. An unwrapped value that is not an object is refused before the server
/// (MCP `arguments` must be an object).
#[tokio::test]
async fn a_non_object_input_schema_is_wrapped_and_unwrapped_on_the_way_to_a_real_server() {
    let server = support::peer_scripts_dir().join("mcp/wrapped-server.mjs");
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "wrapped": { "type": "mcp", "transport": {
            "type": "stdio", "command": node_bin(), "args": [server] } } },
    });
    let rt = start_runtime(config, &[]).await;
    let catalog = catalog(&rt).await;
    let echo = tool(&catalog, "wrapped:echo-arguments");
    assert_eq!(echo["backend"]["inputWrapped"], true, "{echo}");
    assert_eq!(
        echo["requestBody"]["contentTypes"][0]["schema"]["required"],
        json!(["input"])
    );
    assert_eq!(
        echo["safety"],
        json!({"destructive": false, "readOnly": false, "requiresApproval": false, "idempotent": false})
    );
    let (status, result) = rt
        .execute_json(
            json!({"toolId": "wrapped:echo-arguments", "body": {"input": {"text": "hi"}}}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(text_of(&result), r#"{"text":"hi"}"#, "{result}");
    for body in [json!({"text": "hi"}), json!({"input": "hi"}), json!("hi")] {
        let (status, error) = rt
            .execute_json(json!({"toolId": "wrapped:echo-arguments", "body": body}))
            .await;
        assert_eq!(status, 400, "{body}: {error}");
    }
}
