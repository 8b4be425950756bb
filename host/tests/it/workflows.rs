//! Workflows and skills (issue 17 items 2 and 3): `catalog.workflows` and tool `guidance` in
//! the reference's shape, and `POST /v1/workflows/run` end to end through the HTTP door against
//! the real demo tickets upstream (`portcullis::dev::upstream`, with its key injected as a
//! credential), every step through the tool-call pipeline.

use std::path::Path;

use serde_json::{json, Value};

use super::support;
use portcullis::dev::issuer::DevIssuer;

const KEY: &str = "demo-key-for-workflow-tests";

fn fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/workflows");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// The demo tickets API on loopback (it requires `X-Demo-Key`).
async fn demo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(portcullis::dev::upstream::serve(listener, Some(KEY.into())));
    url
}

/// The demo document pointed at `upstream`.
fn tickets_document(upstream: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dev/tickets.openapi.yaml");
    std::fs::read_to_string(path)
        .unwrap()
        .replace("http://127.0.0.1:9000", upstream)
}

/// A runtime serving the demo API as service `tickets` with the given workflow documents,
/// skill manifests and extra top-level config.
async fn runtime(
    upstream: &str,
    workflows: &[&str],
    skills: &[&str],
    extra: Value,
) -> support::TestRuntime {
    let mut config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "ticketsSource": { "type": "openapi", "uri": "tickets.openapi.yaml" } },
        "services": { "tickets": {
            "source": "ticketsSource", "workflows": workflows, "skills": skills
        } },
        "secrets": { "demoKey": { "type": "literal", "value": KEY } }
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let mut files = vec![("tickets.openapi.yaml", tickets_document(upstream))];
    for name in workflows.iter().chain(skills) {
        files.push((name, fixture(name)));
    }
    support::start_runtime(config, &files).await
}

async fn run(rt: &support::TestRuntime, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = rt
        .client
        .post(format!("{}/v1/workflows/run", rt.url))
        .header("accept", "application/json")
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The tickets the upstream holds, asked directly (not through the runtime).
async fn tickets(upstream: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{upstream}/tickets"))
        .header("x-demo-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Audit records of one run.
fn of_run<'a>(records: &'a [Value], run_id: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["workflow"]["runId"] == run_id)
        .collect()
}

#[tokio::test]
async fn catalog_has_workflows_in_the_reference_shape_and_skills_become_guidance() {
    let upstream = demo_upstream().await;
    let rt = runtime(
        &upstream,
        &["triage.arazzo.yaml"],
        &["tickets.skill.json"],
        json!({}),
    )
    .await;
    let (status, body) = rt.get("/v1/catalog/effective").await;
    assert_eq!(status, 200, "{body}");
    let catalog: Value = serde_json::from_str(&body).unwrap();
    let expected: Value = serde_json::from_str(&fixture("expected.catalog.json")).unwrap();
    assert_eq!(
        catalog["catalog"]["workflows"],
        expected["workflowsReferenceShape"]
    );
    let tools = catalog["catalog"]["tools"].as_array().unwrap();
    for tool in tools {
        let id = tool["id"].as_str().unwrap();
        let want = expected["guidance"].get(id).cloned().unwrap_or(Value::Null);
        assert_eq!(tool["guidance"], want, "guidance of {id}");
    }
    // The effective view serves the same guidance.
    let view = catalog["view"]["tools"].as_array().unwrap();
    assert!(view
        .iter()
        .any(|t| t["id"] == "tickets:listTickets" && t["guidance"]["whenToUse"][0].is_string()));
}

#[tokio::test]
async fn check_reports_a_step_without_a_tool_a_malformed_document_and_a_stale_skill() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tickets.openapi.yaml"),
        tickets_document("http://127.0.0.1:9"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.arazzo.yaml"),
        "arazzo: 1.0.0\nworkflows:\n  - workflowId: w\n    steps:\n      - stepId: a\n        operationId: listTickets\n        onFailure: [{name: retry, type: retry}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("unbound.arazzo.yaml"),
        "arazzo: 1.0.0\nworkflows:\n  - workflowId: purge\n    steps:\n      - stepId: wipe\n        operationId: purgeTickets\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tickets.skill.json"),
        fixture("tickets.skill.json"),
    )
    .unwrap();
    let check = |workflow: &str| {
        let config = json!({
            "cli": "1.0.0",
            "mode": { "default": "discover" },
            "sources": { "s": { "type": "openapi", "uri": "tickets.openapi.yaml" } },
            "services": { "tickets": { "source": "s", "workflows": [workflow],
                "skills": ["tickets.skill.json"] } }
        });
        std::fs::write(
            dir.path().join(".cli.json"),
            serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("check")
            .arg("--config")
            .arg(dir.path().join(".cli.json"))
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = check("bad.arazzo.yaml");
    assert!(!ok, "{text}");
    assert!(
        text.contains("services.tickets.workflows[0] (\"bad.arazzo.yaml\"): $.workflows[0].steps[0].onFailure: is not supported"),
        "{text}"
    );
    let (ok, text) = check("unbound.arazzo.yaml");
    assert!(!ok, "{text}");
    assert!(
        text.contains("workflow \"purge\" step \"wipe\" references operationId \"purgeTickets\", but no matching tool is available in the catalog"),
        "{text}"
    );
    std::fs::write(
        dir.path().join("ok.arazzo.yaml"),
        fixture("triage.arazzo.yaml"),
    )
    .unwrap();
    let (ok, text) = check("ok.arazzo.yaml");
    assert!(ok, "{text}");
    assert!(
        text.contains("tickets:archiveTicket") && text.contains("skills[0]"),
        "a skill naming an unknown tool is a warning: {text}"
    );
}

#[tokio::test]
async fn a_three_step_run_passes_outputs_forward_and_audits_every_step() {
    let upstream = demo_upstream().await;
    let rt = runtime(&upstream, &["tickets.arazzo.yaml"], &[], json!({})).await;
    let (status, body) = run(
        &rt,
        json!({ "workflowId": "openAndClose", "inputs": { "title": "Printer jam" } }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workflowId"], "openAndClose");
    assert_eq!(body["steps"], json!(["open", "fetch", "close"]));
    let id = body["outputs"]["ticket"].as_u64().unwrap();
    assert_eq!(body["outputs"]["status"], "closed");
    assert_eq!(body["results"][0]["response"]["statusCode"], 201);
    assert_eq!(body["results"][1]["outputs"]["title"], "Printer jam");
    assert_eq!(body["results"][2]["toolId"], "tickets:updateTicket");
    // The upstream holds what the three calls did: created, then closed with the fetched title.
    let held = tickets(&upstream).await;
    assert_eq!(
        held,
        [json!({"id": id, "title": "Printer jam (closed)", "status": "closed"})]
    );

    let run_id = body["runId"].as_str().unwrap();
    let records = rt.audit_file().await;
    let run_records = of_run(&records, run_id);
    for step in ["open", "fetch", "close"] {
        for kind in ["tool_execution_intent", "tool_execution"] {
            assert_eq!(
                run_records
                    .iter()
                    .filter(|r| r["eventType"] == kind && r["workflow"]["stepId"] == step)
                    .count(),
                1,
                "{kind} of step {step}: {run_records:?}"
            );
        }
    }
    assert!(run_records
        .iter()
        .all(|r| r["workflow"]["workflowId"] == "openAndClose"));

    // A missing required input refuses the run before anything is called.
    let (status, body) = run(&rt, json!({ "workflowId": "openAndClose" }), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("\"title\""),
        "{body}"
    );
    assert_eq!(tickets(&upstream).await.len(), 1);
}

#[tokio::test]
async fn a_step_denied_by_policy_stops_the_run_and_names_the_step() {
    let upstream = demo_upstream().await;
    let rt = runtime(
        &upstream,
        &["tickets.arazzo.yaml"],
        &[],
        json!({ "policy": { "deny": ["tickets:updateTicket"] } }),
    )
    .await;
    let (status, body) = run(
        &rt,
        json!({ "workflowId": "openAndClose", "inputs": { "title": "Stuck" } }),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        ["policy_deny", "managed_deny"].contains(&body["code"].as_str().unwrap()),
        "{body}"
    );
    assert_eq!(body["stepId"], "close", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("stopped at step \"close\" (completed: open, fetch)"),
        "{detail}"
    );
    // The first two steps ran; the denied one never reached the upstream.
    let held = tickets(&upstream).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["status"], "open");
    let records = rt.audit_file().await;
    let denied: Vec<&Value> = records
        .iter()
        .filter(|r| r["workflow"]["stepId"] == "close")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["eventType"], "authz_denial");
    assert_eq!(denied[0]["toolId"], "tickets:updateTicket");
    assert!(!records.iter().any(
        |r| r["toolId"] == "tickets:updateTicket" && r["eventType"] == "tool_execution_intent"
    ));

    // The plain-text answer stays the contract's code, as the reference's client reads it.
    let response = rt
        .client
        .post(format!("{}/v1/workflows/run", rt.url))
        .json(&json!({ "workflowId": "openAndClose", "inputs": { "title": "x" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let text = response.text().await.unwrap();
    assert!(
        text.trim() == "policy_deny" || text.trim() == "managed_deny",
        "{text}"
    );
}

#[tokio::test]
async fn an_approval_gated_step_needs_approval_and_a_failed_step_stops_the_run() {
    let upstream = demo_upstream().await;
    let rt = runtime(&upstream, &["tickets.arazzo.yaml"], &[], json!({})).await;
    // deleteTicket is x-cli-safety.requiresApproval in the demo document.
    let (status, body) = run(&rt, json!({ "workflowId": "openAndDelete" }), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "approval_required");
    assert_eq!(body["stepId"], "remove");
    assert_eq!(
        tickets(&upstream).await.len(),
        1,
        "open ran, remove did not"
    );

    let (status, body) = run(
        &rt,
        json!({ "workflowId": "openAndDelete", "approval": true }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][1]["response"]["statusCode"], 204);
    assert_eq!(
        tickets(&upstream).await.len(),
        1,
        "the second ticket was removed"
    );

    // A 404 without success criteria fails the step (default: 2xx); the next step is not run.
    let (status, body) = run(&rt, json!({ "workflowId": "fetchMissing" }), None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "workflow_step_failed");
    assert_eq!(body["stepId"], "fetch");
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");
    let records = rt.audit_file().await;
    assert!(records
        .iter()
        .any(|r| r["eventType"] == "workflow_step_failed" && r["workflow"]["stepId"] == "fetch"));
    assert!(!records.iter().any(
        |r| r["workflow"]["workflowId"] == "fetchMissing" && r["workflow"]["stepId"] == "list"
    ));

    // Unknown workflow: 404, plain text as the reference's.
    let response = rt
        .client
        .post(format!("{}/v1/workflows/run", rt.url))
        .json(&json!({ "workflowId": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.text().await.unwrap(), "workflow not found\n");
    let (status, body) = run(&rt, json!({ "workflowId": 7 }), None).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn runs_need_a_token_their_own_config_and_a_scope_for_every_step() {
    let upstream = demo_upstream().await;
    let issuer = DevIssuer::start().await.unwrap();
    let rt = runtime(
        &upstream,
        &["tickets.arazzo.yaml"],
        &[],
        json!({ "runtime": { "server": { "auth": issuer.auth_config() } } }),
    )
    .await;
    let body = json!({ "workflowId": "openAndClose", "inputs": { "title": "t" } });
    let (status, _) = run(&rt, body.clone(), None).await;
    assert_eq!(status, 401);

    let token = issuer.mint("agent", "bundle:tickets");
    let mut foreign = body.clone();
    foreign["configPath"] = json!("/elsewhere/.cli.json");
    let (status, reply) = run(&rt, foreign, Some(&token)).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["code"], "runtime_attach_mismatch");
    let mut own = body.clone();
    own["configPath"] = json!(rt.config_path());
    let (status, reply) = run(&rt, own, Some(&token)).await;
    assert_eq!(status, 200, "{reply}");

    // A token that does not grant the last step refuses the run before the first step runs.
    let narrow = issuer.mint("agent", "tool:tickets:createTicket tool:tickets:getTicket");
    let (status, reply) = run(&rt, body, Some(&narrow)).await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["code"], "authz_denied");
    assert_eq!(reply["stepId"], "close");
    assert!(reply["detail"]
        .as_str()
        .unwrap()
        .contains("(no step completed)"));
    assert_eq!(
        tickets(&upstream).await.len(),
        1,
        "only the authorised run created one"
    );
}

#[tokio::test]
async fn approval_looking_headers_and_inputs_grant_nothing_and_every_step_names_them() {
    let upstream = demo_upstream().await;
    let rt = runtime(&upstream, &["tickets.arazzo.yaml"], &[], json!({})).await;
    let response = rt
        .client
        .post(format!("{}/v1/workflows/run", rt.url))
        .header("x-approval", "granted")
        .header("accept", "application/json")
        .json(&json!({ "workflowId": "openAndDelete", "inputs": { "approved": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        403,
        "a header is not an approval"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "approval_required");
    assert_eq!(body["stepId"], "remove");
    let records = rt.audit_file().await;
    let named = |step: &str| {
        records.iter().any(|r| {
            r["workflow"]["workflowId"] == "openAndDelete"
                && r["workflow"]["stepId"] == step
                && r["detail"]["ignoredApprovalClaims"]
                    == json!(["header:x-approval", "input:approved"])
        })
    };
    assert!(named("open"), "the allowed step's record names the claims");
    assert!(
        named("remove"),
        "the refused step's record names the claims"
    );
}
