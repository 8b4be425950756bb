//! `GET /mcp`: a session's SSE stream and `notifications/tools/list_changed`. The official
//! TypeScript SDK client (its own GET stream and `setNotificationHandler`) learns of a real
//! config reload; raw requests check who may open a stream, one stream per session, and that
//! a stream ends with its session.

use std::time::Duration;

use serde_json::{json, Value};

use super::support;
use super::support::door::*;

/// The SDK client's handler for `ToolListChangedNotification` fires when the runtime reloads
/// an edited OpenAPI document, and the list it then fetches has the new tool.
#[tokio::test]
async fn the_sdk_client_is_told_the_tool_list_changed_on_a_config_reload() {
    let d = door().await;
    let token = d.token("alice", "bundle:other");
    told_of_a_reload(&d, &["http", &d.mcp()], &[("TOKEN", &token)]).await;
}

/// The same through `portcullis mcp stdio` (the real binary): the relay opens the session's
/// stream and writes its notifications to the SDK's stdio client.
#[tokio::test]
async fn the_stdio_relay_passes_the_list_changed_notification_on() {
    let d = door().await;
    let token = d.token("alice", "bundle:other");
    told_of_a_reload(
        &d,
        &["stdio", env!("CARGO_BIN_EXE_portcullis")],
        &[
            ("PORTCULLIS_MCP_URL", &d.rt.url),
            ("PORTCULLIS_MCP_TOKEN", &token),
        ],
    )
    .await;
}

async fn told_of_a_reload(d: &Door, args: &[&str], env: &[(&str, &str)]) {
    let script = support::peer_scripts_dir().join("mcp/list-changed-client.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let ready = next_json(&mut lines).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(ready["tools"], json!(["other.getOther"]));
    // Give the SDK a moment to open its GET stream, then edit the document: the runtime's
    // file watcher rebuilds the catalog.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paths = json!({
        "/other": { "get": { "operationId": "getOther", "security": [] } },
        "/added": { "get": { "operationId": "getAdded", "security": [] } }
    });
    std::fs::write(
        d.rt.dir.path().join("b.json"),
        support::openapi(&d.upstream.url, paths, json!({})),
    )
    .unwrap();
    let after = next_json(&mut lines).await;
    assert_eq!(after["notified"], true, "{after}");
    assert_eq!(after["tools"], json!(["other.getAdded", "other.getOther"]));
}

async fn next_json(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(40), lines.next_line())
        .await
        .expect("the SDK client answered within 40 s")
        .unwrap()
        .expect("the SDK client printed a line");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"))
}

/// Reads one SSE stream's frames as text.
struct Sse(reqwest::Response);

impl Sse {
    /// The stream's next data line, or `None` when it ended; keep-alive comments are skipped.
    async fn next_data(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buffer = String::new();
        loop {
            if let Some(line) = buffer.lines().find_map(|l| l.strip_prefix("data:")) {
                return Some(line.trim().to_owned());
            }
            let chunk = tokio::time::timeout_at(deadline, self.0.chunk())
                .await
                .expect("an event or the end of the stream in time");
            match chunk {
                Ok(Some(bytes)) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

async fn open(d: &Door, token: &str, session: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request =
        d.rt.client
            .get(d.mcp())
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Who may open a session's stream, and what the others get: the session's principal only,
/// with the same token checks and Origin rule as `POST`; none without a session or at the
/// stateless revision (405), none without `Accept: text/event-stream` (406).
#[tokio::test]
async fn only_the_sessions_principal_opens_its_stream() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let session = initialize(&d.rt, &alice).await;

    let status = |r: reqwest::Response| r.status().as_u16();
    let anonymous =
        d.rt.client
            .get(d.mcp())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("oauth-protected-resource/mcp"));
    let mallory = d.token("mallory", "bundle:svc");
    assert_eq!(status(open(&d, &mallory, &session, &[]).await), 404);
    assert_eq!(status(open(&d, &alice, "not-a-session", &[]).await), 404);
    assert_eq!(
        status(open(&d, &alice, &session, &[("origin", "https://evil.example")]).await),
        403
    );
    let stateless = open(
        &d,
        &alice,
        &session,
        &[("mcp-protocol-version", "2026-07-28")],
    )
    .await;
    assert_eq!(stateless.status(), 405);
    let no_session =
        d.rt.client
            .get(d.mcp())
            .bearer_auth(&alice)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
    assert_eq!(no_session.status(), 405);
    let json_only =
        d.rt.client
            .get(d.mcp())
            .bearer_auth(&alice)
            .header("accept", "application/json")
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
    assert_eq!(json_only.status(), 406);

    let stream = open(&d, &alice, &session, &[]).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
}

/// A rebuild reaches the open stream as `notifications/tools/list_changed`; a second `GET` of
/// the session replaces the first stream (which ends); `DELETE` ends the session and its
/// stream.
#[tokio::test]
async fn a_rebuild_is_announced_on_the_one_stream_of_a_session_which_ends_with_it() {
    let d = door().await;
    let alice = d.token("alice", "bundle:svc");
    let session = initialize(&d.rt, &alice).await;
    let mut first = Sse(open(&d, &alice, &session, &[]).await);
    d.rt.runtime.rebuild(false).await.unwrap();
    let event = first.next_data(Duration::from_secs(10)).await.unwrap();
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(
        event,
        json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    );

    let mut second = Sse(open(&d, &alice, &session, &[]).await);
    assert_eq!(
        first.next_data(Duration::from_secs(10)).await,
        None,
        "the replaced stream ended"
    );
    d.rt.runtime.rebuild(false).await.unwrap();
    assert!(second
        .next_data(Duration::from_secs(10))
        .await
        .unwrap()
        .contains("list_changed"));

    let deleted =
        d.rt.client
            .delete(d.mcp())
            .bearer_auth(&alice)
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        second.next_data(Duration::from_secs(10)).await,
        None,
        "the session's stream ended with it"
    );
    assert_eq!(open(&d, &alice, &session, &[]).await.status(), 404);
}
