//! The binary itself: the README's dev command, `check`, and graceful shutdown.

use super::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Read the dev banner: the server URL and the printed token.
fn read_dev_banner(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut url = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("Portcullis dev server on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(token) = line.strip_prefix("export PORTCULLIS_TOKEN=") {
            let token = token.trim().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (url.expect("the URL comes before the token"), token);
        }
    }
    panic!("the dev server did not print its URL and token");
}

#[tokio::test]
async fn dev_mode_serves_the_demo_api_with_no_config() {
    let state = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--dev", "--addr", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = support::Guard(child);
    let (url, token) = read_dev_banner(&mut guard.0);
    let client = reqwest::Client::new();

    // Auth is on: no token, no catalog; the printed token sees the demo service.
    let anonymous = client
        .get(format!("{url}/v1/catalog/effective"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let info: serde_json::Value = client
        .get(format!("{url}/v1/runtime/info"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["auth"]["principal"], "dev-user", "{info}");

    let execute = |body: serde_json::Value| {
        let client = client.clone();
        let url = url.clone();
        let token = token.clone();
        async move {
            let r = client
                .post(format!("{url}/v1/tools/execute"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) =
        execute(json!({ "toolId": "tickets:createTicket", "body": { "title": "Printer jam" } }))
            .await;
    assert_eq!(status, 200, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        created["statusCode"], 201,
        "the runtime must inject the demo key: {body}"
    );
    let (status, body) =
        execute(json!({ "toolId": "tickets:deleteTicket", "pathArgs": ["1"] })).await;
    assert_eq!((status, body.trim()), (403, "approval_required"));
}

#[tokio::test]
async fn dev_mode_refuses_a_non_loopback_address() {
    let output = Command::new(BIN)
        .args(["serve", "--dev", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[test]
fn check_exits_0_for_a_valid_config_and_1_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let doc = support::openapi(
        "http://127.0.0.1:1",
        json!({ "/a": { "get": { "operationId": "a" } } }),
        json!({}),
    );
    std::fs::write(dir.path().join("a.json"), doc).unwrap();
    let good = support::config_for("a.json", json!({}));
    std::fs::write(dir.path().join(".cli.json"), good.to_string()).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let run = || check_with_path(dir.path(), &path, &[]);
    let output = run();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let mut bad = good.clone();
    bad["sources"]["src"]["urii"] = json!("typo");
    bad["policy"] = json!({ "deny": ["a b"] });
    std::fs::write(dir.path().join(".cli.json"), bad.to_string()).unwrap();
    let output = run();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("urii") && text.contains("policy.deny"),
        "every problem must be listed:\n{text}"
    );
}

/// `portcullis check --config <dir>/.cli.json` with only `path_dirs` on `PATH`.
fn check_with_path(dir: &std::path::Path, path_dirs: &str, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(dir.join(".cli.json"))
        .args(extra)
        .env("PORTCULLIS_MANAGED_CONFIG", dir.join("none-managed.json"))
        .env("PORTCULLIS_USER_CONFIG", dir.join("none-user.json"))
        .env("PATH", path_dirs)
        .env_remove("PORTCULLIS_CHECK_UNSET")
        .env("PORTCULLIS_CHECK_EMPTY", "")
        .output()
        .unwrap()
}

#[test]
fn check_reports_every_unresolvable_secret_reference_by_key_and_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let doc = support::openapi(
        "http://127.0.0.1:1",
        json!({ "/a": { "get": { "operationId": "a" } } }),
        json!({}),
    );
    std::fs::write(dir.path().join("a.json"), doc).unwrap();
    std::fs::write(dir.path().join("token"), "CANARY-FILE\n").unwrap();
    // 0600: a group- or world-readable secret file is a warning of its own.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        dir.path().join("token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let empty_path = dir.path().join("bin-empty");
    std::fs::create_dir(&empty_path).unwrap();
    let secrets = json!({
        "unset": { "type": "env", "value": "PORTCULLIS_CHECK_UNSET" },
        "empty": { "type": "env", "value": "PORTCULLIS_CHECK_EMPTY" },
        "missing": { "type": "file", "value": dir.path().join("no-such-file").display().to_string() },
        "present": { "type": "file", "value": dir.path().join("token").display().to_string() },
        "kc": { "type": "osKeychain", "value": "service=api account=ci" },
        "prog": { "type": "exec", "command": ["portcullis-no-such-helper", "CANARY-ARG"] },
        "lit": { "type": "literal", "value": "CANARY-LITERAL" }
    });

    // exec without the policy switch: an error naming the secret, at load.
    let config = support::config_for("a.json", json!({ "secrets": secrets }));
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let output = check_with_path(dir.path(), &empty_path.display().to_string(), &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("secrets.prog.type: exec secrets run a program and are refused unless policy.allowExecSecrets is true"), "{text}");

    // Allowed: the config is valid; every reference this host cannot resolve is a warning.
    let config = support::config_for(
        "a.json",
        json!({ "secrets": secrets, "policy": { "allowExecSecrets": true } }),
    );
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let output = check_with_path(dir.path(), &empty_path.display().to_string(), &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for expected in [
        "secrets.empty: environment variable PORTCULLIS_CHECK_EMPTY is empty; calls that need this secret will fail",
        "secrets.unset: environment variable PORTCULLIS_CHECK_UNSET is not set",
        "secrets.missing: secret file ",
        "secrets.kc: keychain tool `secret-tool` is not installed or not on PATH",
        "secrets.prog: exec command `portcullis-no-such-helper` could not be started: entity not found",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("secrets.present") && !text.contains("secrets.lit"),
        "{text}"
    );
    assert!(!text.contains("CANARY"), "a value was printed:\n{text}");
    let strict = check_with_path(dir.path(), &empty_path.display().to_string(), &["--strict"]);
    assert_eq!(strict.status.code(), Some(1), "--strict fails on warnings");

    // With the keychain tool on PATH, its warning goes away (the keychain is not queried).
    let fake_bin = dir.path().join("bin-fake");
    std::fs::create_dir(&fake_bin).unwrap();
    write_fake_tool(&fake_bin.join("secret-tool"), "exit 99");
    let output = check_with_path(dir.path(), &fake_bin.display().to_string(), &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("secrets.kc"), "{text}");
}

/// An executable `#!/bin/sh` script standing in for an OS tool.
fn write_fake_tool(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_call_finish() {
    // A slow upstream: answers after one second.
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let doc = support::openapi(
        &upstream,
        json!({ "/slow": { "get": { "operationId": "slow" } } }),
        json!({}),
    );
    std::fs::write(dir.path().join("a.json"), doc).unwrap();
    std::fs::write(
        dir.path().join(".cli.json"),
        support::config_for("a.json", json!({})).to_string(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--config"])
        .arg(dir.path().join(".cli.json"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("PORTCULLIS_MANAGED_CONFIG", dir.path().join("none"))
        .env("PORTCULLIS_USER_CONFIG", dir.path().join("none"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = support::Guard(child);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert!(
        support::wait_until_serving(&client, &url).await,
        "server did not start"
    );
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/v1/tools/execute"))
                .json(&json!({ "toolId": "svc:slow" }))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = guard.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request must complete");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["text"], "done");
    let deadline = Instant::now() + Duration::from_secs(15);
    while guard.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !dir.path()
            .join("state/instances")
            .read_dir()
            .unwrap()
            .any(|d| {
                d.map(|d| d.path().join("runtime.json").exists())
                    .unwrap_or(false)
            }),
        "runtime.json is removed on shutdown"
    );
}

#[test]
fn check_warns_about_an_overlay_action_whose_target_matches_nothing_naming_its_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/overlays");
    for name in ["tickets.openapi.yaml", "unmatched.overlay.yaml"] {
        std::fs::copy(fixtures.join(name), dir.path().join(name)).unwrap();
    }
    let mut config = support::config_for("tickets.openapi.yaml", json!({}));
    config["services"]["svc"]["overlays"] = json!(["unmatched.overlay.yaml"]);
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let output = check_with_path(dir.path(), &path, &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "a warning is not an error:\n{text}"
    );
    assert!(
        text.contains(
            "warning: sources.src: services.svc.overlays[0]: overlay \"unmatched.overlay.yaml\" actions[1].target \"$.paths['/admin/ticket'].delete\" matches nothing"
        ),
        "{text}"
    );
    assert!(!text.contains("actions[0]"), "{text}");
    let strict = check_with_path(dir.path(), &path, &["--strict"]);
    assert_eq!(strict.status.code(), Some(1));
}
