//! Policy offline, through the binary: `portcullis check` warns about patterns that match no
//! tool, and `portcullis policy explain` decides across the managed, user and project scopes.

use super::support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A project with tools `svc:a`, `svc:b`, `svc:c` and `svc:get:/items/{id}` (no operationId),
/// plus optional managed and user scope files.
fn project(dir: &Path, project: Value, managed: Option<Value>, user: Option<Value>) {
    let doc = support::openapi(
        "http://127.0.0.1:1",
        json!({
            "/a": { "get": { "operationId": "a" } },
            "/b": { "post": { "operationId": "b" } },
            "/c": { "delete": { "operationId": "c" } },
            "/items/{id}": { "get": { "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }] } }
        }),
        json!({}),
    );
    std::fs::write(dir.join("a.json"), doc).unwrap();
    let config = support::config_for("a.json", project);
    std::fs::write(dir.join(".cli.json"), config.to_string()).unwrap();
    for (name, scope) in [("managed.json", managed), ("user.json", user)] {
        if let Some(scope) = scope {
            std::fs::write(dir.join(name), scope.to_string()).unwrap();
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join(".cli.json"))
        .env("PORTCULLIS_MANAGED_CONFIG", dir.join("managed.json"))
        .env("PORTCULLIS_USER_CONFIG", dir.join("user.json"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn explain(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["policy", "explain"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(dir, &args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn check_warns_about_every_pattern_that_matches_no_tool() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({
            "policy": { "deny": ["svc:a", "svc:typo"], "approvalRequired": ["svc:get:**", "other:*"] },
            "curation": { "toolSets": { "ro": { "allow": ["svc:a", "svc:zzz*"], "deny": ["**"] } } }
        }),
        Some(json!({ "policy": { "deny": ["svc:gone"] } })),
        None,
    );
    let (code, stdout, _) = run(dir.path(), &["check"]);
    assert_eq!(code, Some(0), "warnings never fail the check:\n{stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    // Managed denies come first in the merged `policy.deny`.
    for expected in [
        "policy.deny[0]: pattern \"svc:gone\" matches no tool",
        "policy.deny[2]: pattern \"svc:typo\" matches no tool",
        "policy.approvalRequired[1]: pattern \"other:*\" matches no tool",
        "curation.toolSets.ro.allow[1]: pattern \"svc:zzz*\" matches no tool",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert_eq!(warnings.len(), 4, "{stdout}");
}

#[test]
fn check_warns_that_grant_mode_without_runtime_auth_blocks_approval_required_tools() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({ "policy": { "approvalRequired": ["svc:b"], "approvals": { "mode": "grant" } } }),
        None,
        None,
    );
    let (code, stdout, _) = run(dir.path(), &["check"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warning:")
            && l.contains("policy.approvals.mode")
            && l.contains("runtime auth")),
        "{stdout}"
    );
}

#[test]
fn check_refuses_an_invalid_pattern_in_any_scope() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({}),
        Some(json!({ "policy": { "deny": ["svc:***"] } })),
        None,
    );
    let (code, stdout, _) = run(dir.path(), &["check"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("policy.deny[0]") && stdout.contains("more than two '*'"),
        "{stdout}"
    );
}

/// Each rule alone, then all of them together, each from a different scope.
#[test]
fn explain_decides_across_managed_user_and_project_scopes() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({
            "policy": { "approvalRequired": ["svc:b"] },
            "curation": { "toolSets": { "ro": { "allow": ["svc:a", "svc:b", "svc:get:**"], "deny": ["**"] } } },
            "agents": { "profiles": { "ro": { "mode": "curated", "toolSet": "ro" } } }
        }),
        Some(json!({ "policy": { "deny": ["svc:c"] } })),
        Some(json!({ "policy": { "deny": ["svc:get:/items/*"] } })),
    );
    let d = dir.path();
    let check = |extra: &[&str], reason: &str, rule: Value| {
        let out = explain(d, extra);
        assert_eq!(
            (out["reason"].as_str().unwrap(), &out["rule"]),
            (reason, &rule),
            "{extra:?}: {out}"
        );
        out
    };
    check(&["--tool", "svc:a"], "allowed", Value::Null);
    check(&["--tool", "svc:c"], "managed_deny", json!("svc:c"));
    // A user-scope deny on an id containing '/': `*` stops at the '/'-separated segment.
    check(
        &["--tool", "svc:get:/items/{id}"],
        "policy_deny",
        json!("svc:get:/items/*"),
    );
    check(&["--tool", "svc:b"], "approval_required", json!("svc:b"));
    let approved = check(
        &["--tool", "svc:b", "--approval"],
        "allowed",
        json!("request flag approval: true"),
    );
    assert_eq!(approved["steps"][3]["outcome"], "approved");
    check(
        &["--tool", "svc:c", "--profile", "ro"],
        "managed_deny",
        json!("svc:c"),
    );
    check(
        &["--tool", "svc:a", "--mode", "curated", "--profile", "ro"],
        "allowed",
        Value::Null,
    );
}

#[test]
fn a_project_cannot_turn_managed_grant_mode_back_into_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({ "policy": { "approvalRequired": ["svc:b"], "approvals": { "mode": "flag", "forbidSelfApproval": false } } }),
        Some(json!({ "policy": { "approvals": { "mode": "grant" } } })),
        None,
    );
    let out = explain(
        dir.path(),
        &["--tool", "svc:b", "--approval", "--principal", "alice"],
    );
    assert_eq!(out["reason"], "approval_required", "{out}");
    assert!(out["steps"][3]["detail"]
        .as_str()
        .unwrap()
        .contains("no unexpired grant"));
}

#[test]
fn explain_applies_the_scope_envelope_when_runtime_auth_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        json!({ "runtime": { "server": { "auth": { "validationProfile": "oidc_jwks",
            "issuer": "https://issuer.invalid", "jwksURL": "https://issuer.invalid/jwks", "audience": "api" } } } }),
        None,
        None,
    );
    let out = explain(dir.path(), &["--tool", "svc:a", "--scope", "tool:svc:b"]);
    assert_eq!(
        (out["reason"].as_str(), out["envelope"]["granted"].as_bool()),
        (Some("authz_denied"), Some(false))
    );
    let out = explain(dir.path(), &["--tool", "svc:a", "--scope", "bundle:svc"]);
    assert_eq!(out["reason"], "allowed", "{out}");
}

#[test]
fn check_names_every_attempt_of_a_later_scope_to_loosen_the_managed_scope() {
    let dir = tempfile::tempdir().unwrap();
    let managed_auth = json!({ "validationProfile": "oidc_jwks", "issuer": "https://idp.example",
        "jwksURL": "https://idp.example/jwks", "audience": "api" });
    project(
        dir.path(),
        json!({ "runtime": { "server": { "auth": { "audience": "anything" } } },
                "policy": { "pluginBudgetMs": 5000 } }),
        Some(json!({
            "runtime": { "server": { "auth": managed_auth } },
            "policy": { "allowExecSecrets": false, "pluginBudgetMs": 50 },
            "secrets": { "svc.token": { "type": "env", "value": "SVC_TOKEN" } }
        })),
        Some(
            json!({ "secrets": { "svc.token": { "type": "exec", "command": ["/bin/echo", "x"] } } }),
        ),
    );
    std::fs::write(
        dir.path().join(".cli.local.json"),
        json!({ "policy": { "allowExecSecrets": true } }).to_string(),
    )
    .unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["check"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let text = format!("{stdout}{stderr}");
    for (file, path) in [
        ("user.json", "secrets[\"svc.token\"]"),
        (".cli.json", "runtime.server.auth"),
        (".cli.json", "policy.pluginBudgetMs"),
        (".cli.local.json", "policy.allowExecSecrets"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(file) && l.contains(path) && l.contains("managed scope")),
            "no line names {path} in {file}:\n{text}"
        );
    }
    // The same scopes restating the managed values unchanged are fine.
    std::fs::write(dir.path().join("user.json"), "{}").unwrap();
    std::fs::write(
        dir.path().join(".cli.local.json"),
        json!({ "policy": { "allowExecSecrets": false } }).to_string(),
    )
    .unwrap();
    let config = support::config_for(
        "a.json",
        json!({ "runtime": { "server": { "auth": { "audience": "api" } } } }),
    );
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["check"]);
    assert!(
        !format!("{stdout}{stderr}").contains("managed scope"),
        "{code:?} {stdout}{stderr}"
    );
}
