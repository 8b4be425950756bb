//! `services.*.overlays`: OpenAPI Overlay 1.0 documents edit the source before normalization,
//! with exactly the rules of inline extensions; a broken overlay fails its source closed.
//! Fixtures: `tests/fixtures/overlays/`.

use super::support;

use std::path::{Path, PathBuf};

use portcullis::catalog::{build, BuildOptions, BuildOutcome, Tool};
use portcullis::config::{Config, LoadedConfig};
use serde_json::json;
use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/overlays")
        .join(name)
}

/// A fixture's text with `UPSTREAM` replaced.
fn read_fixture(name: &str, upstream: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .replace("UPSTREAM", upstream)
}

/// Service `svc` over `tickets.openapi.yaml` with `overlays`.
fn config_with(overlays: serde_json::Value) -> serde_json::Value {
    let mut config = config_for("tickets.openapi.yaml", json!({}));
    config["services"]["svc"]["overlays"] = overlays;
    config
}

/// Copy the named fixtures into `dir` (with `UPSTREAM` replaced).
fn copy_fixtures(dir: &Path, upstream: &str, names: &[&str]) {
    for name in names {
        std::fs::write(dir.join(name), read_fixture(name, upstream)).unwrap();
    }
}

async fn build_in(dir: &Path, config: serde_json::Value) -> BuildOutcome {
    let config: Config = serde_json::from_value(config).unwrap();
    let loaded = LoadedConfig {
        config,
        base_dir: dir.to_path_buf(),
        project_path: dir.join(".cli.json"),
        files: Vec::new(),
    };
    build(&loaded, &BuildOptions::default()).await
}

async fn overlaid_runtime() -> (RecordingUpstream, TestRuntime) {
    let upstream = start_upstream().await;
    let files: Vec<(&str, String)> = ["tickets.openapi.yaml", "tickets.overlay.yaml"]
        .into_iter()
        .map(|name| (name, read_fixture(name, &upstream.url)))
        .collect();
    let rt = start_runtime(config_with(json!(["tickets.overlay.yaml"])), &files).await;
    (upstream, rt)
}

fn tool_ids(catalog: &serde_json::Value) -> Vec<String> {
    catalog["catalog"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tool_ignored_by_an_overlay_is_absent_from_the_catalog_and_refused_like_an_unknown_tool()
{
    let (upstream, rt) = overlaid_runtime().await;
    let (status, body) = rt.get("/v1/catalog/effective").await;
    assert_eq!(status, 200, "{body}");
    let ids = tool_ids(&serde_json::from_str(&body).unwrap());
    assert!(ids.contains(&"svc:listTickets".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"svc:purgeTickets".to_owned()), "{ids:?}");
    let (status, body) = rt
        .execute(json!({ "toolId": "svc:purgeTickets", "approval": true }))
        .await;
    assert_eq!((status, body.as_str()), (404, "tool not found\n"));
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn a_tool_an_overlay_marks_requires_approval_is_refused_until_the_request_carries_it() {
    let (upstream, rt) = overlaid_runtime().await;
    let (status, body) = rt.execute(json!({ "toolId": "svc:archiveTickets" })).await;
    assert_eq!((status, body.trim()), (403, "approval_required"));
    assert!(upstream.requests().is_empty());
    let (status, _) = rt
        .execute(json!({ "toolId": "svc:archiveTickets", "approval": true }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn an_operation_an_overlay_removes_is_neither_catalogued_nor_callable() {
    let (upstream, rt) = overlaid_runtime().await;
    let (_, body) = rt.get("/v1/catalog/effective").await;
    let ids = tool_ids(&serde_json::from_str(&body).unwrap());
    assert!(!ids.contains(&"svc:deleteTicket".to_owned()), "{ids:?}");
    let (status, _) = rt
        .execute(json!({ "toolId": "svc:deleteTicket", "pathArgs": ["T-1"] }))
        .await;
    assert_eq!(status, 404);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn names_descriptions_and_hints_from_an_overlay_match_the_same_extensions_inline() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "tickets.openapi.yaml",
        "tickets.overlay.yaml",
        "tickets.inline.yaml",
    ];
    copy_fixtures(dir.path(), "http://127.0.0.1:1", &names);
    let overlaid = build_in(dir.path(), config_with(json!(["tickets.overlay.yaml"]))).await;
    let inline = build_in(dir.path(), config_for("tickets.inline.yaml", json!({}))).await;
    assert!(overlaid.errors.is_empty(), "{:?}", overlaid.errors);
    assert!(inline.errors.is_empty(), "{:?}", inline.errors);
    assert!(overlaid.warnings.is_empty(), "{:?}", overlaid.warnings);
    let tools = |o: &BuildOutcome| -> Vec<Tool> { o.catalog.tools.clone() };
    assert_eq!(
        serde_json::to_value(tools(&overlaid)).unwrap(),
        serde_json::to_value(tools(&inline)).unwrap()
    );
    let list = overlaid
        .catalog
        .tools
        .iter()
        .find(|t| t.id == "svc:listTickets")
        .unwrap();
    assert_eq!(list.command, "list");
    assert_eq!(list.description, "List open tickets from the overlay.");
    assert_eq!(list.aliases, ["ls"]);
    assert_eq!(list.flags[0].name, "state");
    assert!(list.output.is_some() && list.pagination.is_some() && list.retry.is_some());
    let archive = overlaid
        .catalog
        .tools
        .iter()
        .find(|t| t.id == "svc:archiveTickets")
        .unwrap();
    assert!(archive.hidden && archive.safety.requires_approval);
}

#[tokio::test]
async fn a_broken_or_missing_overlay_fails_its_source_closed_and_names_the_action() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(
        dir.path(),
        "http://127.0.0.1:1",
        &[
            "tickets.openapi.yaml",
            "typo.overlay.yaml",
            "bad-path.overlay.yaml",
        ],
    );
    for (overlay, expect) in [
        (
            "typo.overlay.yaml",
            "services.svc.overlays[0]: overlay \"typo.overlay.yaml\" actions[0]: unknown field \"updte\"",
        ),
        (
            "bad-path.overlay.yaml",
            "overlay \"bad-path.overlay.yaml\" actions[0]: target \"$.paths['/admin/tickets'\" is not a valid JSONPath",
        ),
        ("missing.overlay.yaml", "services.svc.overlays[0] (\"missing.overlay.yaml\"): reading"),
    ] {
        let outcome = build_in(dir.path(), config_with(json!([overlay]))).await;
        assert!(outcome.catalog.tools.is_empty(), "{overlay}: served anyway");
        assert_eq!(outcome.errors.len(), 1, "{overlay}");
        assert_eq!(outcome.errors[0].source_id, "src");
        assert!(
            outcome.errors[0].message.contains(expect),
            "{overlay}: {}",
            outcome.errors[0].message
        );
    }
}

#[tokio::test]
async fn an_overlay_is_watched_and_part_of_the_fingerprint_so_editing_it_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(
        dir.path(),
        "http://127.0.0.1:1",
        &["tickets.openapi.yaml", "tickets.overlay.yaml"],
    );
    let config = config_with(json!(["tickets.overlay.yaml"]));
    let before = build_in(dir.path(), config.clone()).await;
    assert!(before
        .watched_files
        .contains(&dir.path().join("tickets.overlay.yaml")));
    let edited = read_fixture("tickets.overlay.yaml", "").replace("purge", "wipe");
    std::fs::write(dir.path().join("tickets.overlay.yaml"), edited).unwrap();
    let after = build_in(dir.path(), config).await;
    assert_ne!(
        before.catalog.source_fingerprint,
        after.catalog.source_fingerprint
    );
}

#[tokio::test]
async fn the_served_catalog_follows_an_edited_overlay() {
    let (_upstream, rt) = overlaid_runtime().await;
    let served = || async {
        let (_, body) = rt.get("/v1/catalog/effective").await;
        tool_ids(&serde_json::from_str(&body).unwrap()).contains(&"svc:purgeTickets".to_owned())
    };
    assert!(!served().await, "the overlay ignores the purge tool");
    let overlay = rt.dir.path().join("tickets.overlay.yaml");
    // Un-ignore the purge tool: the runtime must notice the overlay file changed.
    let text = std::fs::read_to_string(&overlay)
        .unwrap()
        .replace("x-cli-ignore: true", "x-cli-ignore: false");
    std::fs::write(&overlay, text).unwrap();
    let seen = eventually(std::time::Duration::from_secs(30), served).await;
    assert!(
        seen,
        "the catalog was not rebuilt after the overlay changed"
    );
}
