//! Build-level behaviour: build order, derived service ids, per-source failure isolation,
//! cross-service collisions, YAML files, views and the fingerprint.

use std::path::Path;
use std::sync::Arc;

use portcullis::catalog::{build, BuildOptions, BuildOutcome};
use portcullis::config::{Config, LoadedConfig};
use portcullis::mcp::McpPool;

const PETS_YAML: &str = "openapi: 3.1.0
info: {title: Pet Store}
servers: [{url: 'https://pets.example.com/v1'}]
paths:
  /pets:
    get: {operationId: listPets, tags: [pets]}
  /pets/{id}:
    delete: {operationId: deletePet}
";

const TICKETS_JSON: &str = r#"{"openapi":"3.0.3","info":{"title":"Tickets"},
  "paths":{"/tickets":{"get":{"operationId":"listTickets"}},"/tickets/{id}":{"get":{"operationId":"getTicket"}}}}"#;

async fn run(dir: &Path, config: serde_json::Value) -> BuildOutcome {
    let config: Config = serde_json::from_value(config).expect("valid test config");
    let loaded = LoadedConfig {
        config,
        base_dir: dir.to_path_buf(),
        project_path: dir.join(".cli.json"),
        files: Vec::new(),
    };
    // MCP sources are listed through sessions the caller provides (as the CLI does).
    let pool = Arc::new(McpPool::new().expect("MCP HTTP client"));
    let options = BuildOptions {
        mcp: Some(pool.clone()),
        ..BuildOptions::default()
    };
    let outcome = build(&loaded, &options).await;
    pool.shutdown().await;
    outcome
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

#[tokio::test]
async fn services_and_unreferenced_sources_load_with_derived_ids_and_failures_stay_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pets.yaml", PETS_YAML);
    write(dir.path(), "tickets.json", TICKETS_JSON);
    write(dir.path(), "broken.json", "{ not json");
    let outcome = run(
        dir.path(),
        serde_json::json!({
            "sources": {
                "petsSrc": {"type": "openapi", "uri": "pets.yaml"},
                "ticketsSrc": {"type": "openapi", "uri": format!("file://{}", dir.path().join("tickets.json").display())},
                "broken": {"type": "openapi", "uri": "broken.json"},
                "off": {"type": "openapi", "uri": "missing.json", "enabled": false},
                "tools": {"type": "mcp"},
            },
            "services": {"pets": {"source": "petsSrc", "alias": "animals"}},
            "curation": {"toolSets": {"readers": {"allow": ["**"], "deny": ["pets:deletePet"]}}},
            "agents": {"profiles": {"reader": {"mode": "curated", "toolSet": "readers"}}},
        }),
    )
    .await;
    let ids: Vec<_> = outcome
        .catalog
        .tools
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "pets:deletePet",
            "pets:listPets",
            "tickets:getTicket",
            "tickets:listTickets"
        ]
    );
    let services: Vec<_> = outcome
        .catalog
        .services
        .iter()
        .map(|s| (s.id.as_str(), s.alias.as_str(), s.title.as_str()))
        .collect();
    assert_eq!(
        services,
        [
            ("pets", "animals", "Pet Store"),
            ("tickets", "tickets", "Tickets")
        ]
    );
    assert_eq!(
        outcome.catalog.services[0].servers,
        ["https://pets.example.com/v1"]
    );

    let errors: Vec<_> = outcome
        .errors
        .iter()
        .map(|e| e.source_id.as_str())
        .collect();
    assert_eq!(errors, ["broken", "tools"]);
    assert!(
        outcome.errors[0].message.contains("not valid JSON"),
        "{:?}",
        outcome.errors
    );
    // An MCP source without a transport fails alone, with the config rule's message.
    assert!(
        outcome.errors[1].message.contains("transport"),
        "{:?}",
        outcome.errors
    );
    assert_eq!(outcome.watched_files.len(), 3);

    let views: Vec<_> = outcome
        .catalog
        .effective_views
        .iter()
        .map(|v| (v.name.as_str(), v.tools.len()))
        .collect();
    assert_eq!(views, [("discover", 4), ("reader", 3)]);
    assert_eq!(outcome.catalog.catalog_version, "1.0.0");
    assert_eq!(outcome.catalog.source_fingerprint.len(), 64);
    assert!(outcome.catalog.generated_at.ends_with('Z'));
}

#[tokio::test]
async fn a_tool_id_collision_across_services_fails_the_later_source_naming_both_operations() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.json", TICKETS_JSON);
    write(dir.path(), "b.json", TICKETS_JSON);
    let outcome = run(
        dir.path(),
        serde_json::json!({"sources": {"a": {"type": "openapi", "uri": "a.json"}, "b": {"type": "openapi", "uri": "b.json"}}}),
    )
    .await;
    assert_eq!(
        outcome.catalog.tools.len(),
        2,
        "the first source still loads"
    );
    assert_eq!(outcome.errors.len(), 1);
    let message = &outcome.errors[0].message;
    assert_eq!(outcome.errors[0].source_id, "b");
    assert!(
        message.contains("tickets:")
            && message.contains("source a")
            && message.contains("GET /tickets"),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_variable_without_default_fails_only_that_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "bad.json",
        r#"{"openapi":"3.0.0","servers":[{"url":"https://{region}.x.com"}],"paths":{"/a":{"get":{}}}}"#,
    );
    write(dir.path(), "good.json", TICKETS_JSON);
    let outcome = run(
        dir.path(),
        serde_json::json!({"sources": {"bad": {"type": "openapi", "uri": "bad.json"}, "good": {"type": "openapi", "uri": "good.json"}}}),
    )
    .await;
    assert_eq!(outcome.catalog.tools.len(), 2);
    assert_eq!(outcome.errors.len(), 1);
    assert!(
        outcome.errors[0].message.contains("has no default"),
        "{:?}",
        outcome.errors
    );
}

#[tokio::test]
async fn operation_ids_that_would_read_as_scope_or_pattern_syntax_fail_their_source() {
    // S09: a tool id becomes `tool:<id>` in scopes and is matched by `*` patterns, so an id with
    // `*` or control characters could widen a grant or a deny: the source fails to load, naming
    // the operation, and other sources are unaffected. Whitespace is escaped instead (runs become
    // `_`), so `a\tb` can never be two scope tokens.
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "ok.json", TICKETS_JSON);
    for (i, op_id) in ["a:*", "a\tb", "a\u{7}b", "**"].iter().enumerate() {
        let doc = serde_json::json!({"openapi": "3.0.3", "info": {"title": "bad"},
            "paths": {"/x": {"get": {"operationId": op_id}}}});
        write(dir.path(), &format!("bad{i}.json"), &doc.to_string());
    }
    let outcome = run(
        dir.path(),
        serde_json::json!({"sources": {
            "ok": {"type": "openapi", "uri": "ok.json"},
            "bad0": {"type": "openapi", "uri": "bad0.json"},
            "bad1": {"type": "openapi", "uri": "bad1.json"},
            "bad2": {"type": "openapi", "uri": "bad2.json"},
            "bad3": {"type": "openapi", "uri": "bad3.json"}
        }}),
    )
    .await;
    let ids: Vec<&str> = outcome
        .catalog
        .tools
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids.iter().any(|id| id.ends_with(":a_b")),
        "whitespace escaped: {ids:?}"
    );
    assert_eq!(outcome.errors.len(), 3, "{:?}", outcome.errors);
    for error in &outcome.errors {
        assert!(
            error.message.contains("invalid tool id") && error.message.contains("GET /x"),
            "{}",
            error.message
        );
    }
}
