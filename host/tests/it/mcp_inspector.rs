//! The official MCP Inspector (`@modelcontextprotocol/inspector` 2.12, `--cli` mode, on Node
//! 24) lists and calls tools through `/mcp` with a bearer token passed as a header: the same
//! filtered list, the same pipeline, audited with the Inspector's client info.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::support;
use super::support::door::*;

/// Run the Inspector's CLI against `/mcp` with `token`; the first JSON value it prints (else
/// its output as a string), and whether it exited 0.
async fn inspector(d: &Door, token: &str, args: &[&str]) -> (Value, bool) {
    let launcher = support::peers_dir()
        .join("@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(support::mcp::node24());
    command
        .arg(&launcher)
        .args(["--cli", &d.mcp(), "--transport", "http"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(args)
        // The Inspector keeps a catalog and storage under the home directory: not the user's.
        .env("HOME", home.path())
        .env("MCP_CATALOG_PATH", home.path().join("mcp.json"))
        .current_dir(home.path())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the Inspector finished within 60 s")
        .expect("Node 24 runs the Inspector");
    assert!(Path::new(&launcher).exists());
    // Its output when it printed no JSON (a failure): stdout and stderr as text.
    let first = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            Value::String(format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        });
    (first, output.status.success())
}

#[tokio::test]
async fn the_inspector_cli_lists_and_calls_tools_with_a_bearer_token() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");

    let (listed, ok) = inspector(&d, &alice, &["--method", "tools/list"]).await;
    assert!(ok, "{listed}");
    assert_eq!(
        names(&listed["tools"]),
        ["svc.createItem", "svc.getItem", "svc.getStatus"]
    );

    let (called, ok) = inspector(
        &d,
        &alice,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "svc.getItem",
            "--tool-arg",
            "id=42",
        ],
    )
    .await;
    assert!(ok, "{called}");
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(called["structuredContent"]["body"]["path"], "/items/42");

    // A call that needs approval is a tool error saying how to get it (the CLI exits non-zero
    // on a tool error, after printing the result).
    let (approval, ok) = inspector(
        &d,
        &alice,
        &["--method", "tools/call", "--tool-name", "svc.createItem"],
    )
    .await;
    assert!(!ok);
    assert_eq!(approval["isError"], true, "{approval}");
    assert!(text(&approval).contains("needs approval"), "{approval}");

    // A bad token is refused with the 401 challenge, which the Inspector reads as "this server
    // needs OAuth" (and, without a terminal, stops there); nothing ran.
    let (refused, ok) = inspector(&d, "not-a-token", &["--method", "tools/list"]).await;
    assert!(!ok, "{refused}");
    assert!(refused.to_string().contains("auth_required"), "{refused}");

    let requests = d.upstream.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path_and_query, "/items/42");
    let audit = d.rt.audit_file().await;
    let record = audit
        .iter()
        .find(|r| r["toolId"] == "svc:getItem" && r["eventType"] == "tool_execution")
        .unwrap();
    assert_eq!(record["mcp"]["clientName"], "inspector-cli");
    assert_eq!(record["principal"], "alice");
}
