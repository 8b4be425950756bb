//! The example plugins in `plugins/` (built by the `portcullis-test-artifacts` build script) working together in a real
//! runtime, as an operator would deploy them:
//!
//! - `apikey-auth` authenticates callers (runtime auth `validationProfile: "plugin"`);
//! - `rego-policy` runs `plugins/rego-policy/examples/portcullis.rego` on every call;
//! - `age-secrets` decrypts an `age` file written by the real `age` CLI and supplies the
//!   upstream API key.

use super::support;

use std::process::{Command, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};
use support::*;

const UPSTREAM_KEY: &str = "tk_live_upstream_0123456789";
const READER_KEY: &str = "reader-key-6f1d2c0a9b8e7d6c5b4a";
const OPERATOR_KEY: &str = "operator-key-0a1b2c3d4e5f60718293";
const WRITER_KEY: &str = "writer-key-99887766554433221100";

/// `age-keygen` + `age -r`: an encrypted `KEY=value` file and the identity, both in `dir`.
fn encrypt_with_age_cli(dir: &std::path::Path) {
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(dir.join("identity.txt"))
        .stderr(Stdio::piped())
        .output()
        .expect("the age CLI is installed (./tests/run installs it)");
    assert!(keygen.status.success());
    // age-keygen prints "Public key: age1..." on stderr.
    let stderr = String::from_utf8(keygen.stderr).unwrap();
    let recipient = stderr
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .expect("age-keygen prints the recipient");
    let mut age = Command::new("age")
        .args(["-r", recipient, "-o"])
        .arg(dir.join("secrets.env.age"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    age.stdin
        .take()
        .unwrap()
        .write_all(format!("# upstream keys\nTICKETS_API_KEY={UPSTREAM_KEY}\n").as_bytes())
        .unwrap();
    assert!(age.wait().unwrap().success());
}

fn key_entry(id: &str, key: &str, scopes: &[&str]) -> serde_json::Value {
    let salt = format!("salt-for-the-{id}-key");
    let digest = Sha256::digest(format!("{salt}{key}").as_bytes());
    json!({
        "id": id, "salt": salt, "sha256": hex(&digest),
        "principal": format!("svc:{id}"), "scopes": scopes,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn document(upstream: &str) -> String {
    let secured = json!([{ "apiKey": [] }]);
    openapi(
        upstream,
        json!({
            "/tickets": {
                "get": { "operationId": "listTickets", "security": secured },
                "post": { "operationId": "createTicket", "security": secured }
            },
            "/tickets/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "delete": { "operationId": "deleteTicket", "security": secured }
            }
        }),
        json!({ "securitySchemes": {
            "apiKey": { "type": "apiKey", "in": "header", "name": "X-Api-Key" }
        } }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apikey_auth_rego_policy_and_age_secrets_serve_calls_together() {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    encrypt_with_age_cli(&keys);
    std::fs::write(dir.path().join("api.json"), document(&upstream.url)).unwrap();
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/rego-policy/examples/portcullis.rego"
    ))
    .unwrap();

    let mut config = config_for(
        "api.json",
        json!({
            "runtime": { "server": { "auth": {
                "validationProfile": "plugin", "plugin": "keys", "audience": "portcullis"
            } } },
            "policy": { "plugins": ["rego"] },
        }),
    );
    config["plugins"] = json!({
        "keys": {
            "path": plugin_component("apikey-auth"),
            "config": { "keys": [
                key_entry("reader", READER_KEY, &["bundle:svc"]),
                key_entry("operator", OPERATOR_KEY, &["bundle:svc", "bundle:operators"]),
                key_entry("writer", WRITER_KEY, &["bundle:svc", "bundle:writers"]),
            ] }
        },
        "rego": {
            "path": plugin_component("rego-policy"),
            "config": { "policies": { "portcullis.rego": policy }, "data": { "frozen_services": [] } }
        },
        "age": {
            "path": plugin_component("age-secrets"),
            "grants": { "files": [keys.to_str().unwrap()] },
            "config": {
                "secretsFile": keys.join("secrets.env.age"),
                "identityFile": keys.join("identity.txt")
            }
        }
    });
    config["secrets"] = json!({
        "apiKey": { "type": "plugin", "plugin": "age", "value": "TICKETS_API_KEY" }
    });
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let rt = start_runtime_in(dir).await;

    let call = |key: &'static str, body: serde_json::Value| {
        let rt = &rt;
        async move {
            let response = rt
                .client
                .post(format!("{}/v1/tools/execute", rt.url))
                .header("Authorization", format!("Bearer {key}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // apikey-auth: an unknown key is a 401 before policy or secrets run.
    assert_eq!(
        call("not-a-key", json!({ "toolId": "svc:listTickets" }))
            .await
            .0,
        401
    );
    // Read-only calls are allowed by the Rego policy; age supplies the upstream key.
    let (status, body) = call(READER_KEY, json!({ "toolId": "svc:listTickets" })).await;
    assert_eq!(status, 200, "{body}");
    // A reader may not write: the policy's default decision denies.
    let (status, body) = call(READER_KEY, json!({ "toolId": "svc:createTicket" })).await;
    assert_eq!((status, body.trim()), (403, "plugin_deny"));
    // A writer may.
    let (status, body) = call(WRITER_KEY, json!({ "toolId": "svc:createTicket" })).await;
    assert_eq!(status, 200, "{body}");
    // An operator's destructive call needs approval, and runs with it.
    let delete = json!({ "toolId": "svc:deleteTicket", "pathArgs": ["42"] });
    let (status, body) = call(OPERATOR_KEY, delete.clone()).await;
    assert_eq!((status, body.trim()), (403, "approval_required"));
    let mut approved = delete;
    approved["approval"] = json!(true);
    let (status, body) = call(OPERATOR_KEY, approved).await;
    assert_eq!(status, 200, "{body}");

    let seen = upstream.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path_and_query.as_str()).collect();
    assert_eq!(paths, ["/tickets", "/tickets", "/tickets/42"]);
    assert!(seen.iter().all(|r| r.headers["x-api-key"] == UPSTREAM_KEY));

    // The audit names the principals the auth plugin returned and the policy plugin's denial,
    // and never contains an API key or the decrypted upstream key.
    let audit = rt.audit_file().await;
    assert!(audit
        .iter()
        .any(|e| e["principal"] == "svc:reader" && e["reasonCode"] == "plugin_deny"));
    let text = serde_json::to_string(&audit).unwrap();
    for secret in [UPSTREAM_KEY, READER_KEY, OPERATOR_KEY, WRITER_KEY] {
        assert!(!text.contains(secret), "a secret reached the audit log");
    }
}
