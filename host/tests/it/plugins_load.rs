//! Plugin load errors: each names the plugin and the reason, and refuses the config.

use super::support;

use std::path::Path;

use portcullis::config::Config;
use portcullis::plugins::{LoadErrorKind, PluginError, PluginSet};
use serde_json::json;
use support::plugin_component;

fn load(config: serde_json::Value) -> Result<PluginSet, PluginError> {
    let config: Config = serde_json::from_value(config).unwrap();
    PluginSet::load(&config, Path::new("/"))
}

fn load_kind(config: serde_json::Value) -> (String, LoadErrorKind) {
    match load(config) {
        Err(PluginError::Load { plugin, kind }) => (plugin, kind),
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn a_pinned_sha256_that_does_not_match_refuses_the_plugin() {
    let path = plugin_component("test-secret");
    let actual = portcullis::plugins::sha256_hex(&std::fs::read(&path).unwrap());
    let ok = load(json!({ "plugins": { "s": { "path": path, "sha256": actual.to_uppercase() } } }));
    assert!(ok.is_ok(), "{ok:?}");
    let (plugin, kind) =
        load_kind(json!({ "plugins": { "pinned": { "path": path, "sha256": "0".repeat(64) } } }));
    assert_eq!(plugin, "pinned");
    assert!(matches!(kind, LoadErrorKind::ShaMismatch { ref actual, .. } if actual.len() == 64));
    let text = PluginError::Load { plugin, kind }.to_string();
    assert!(
        text.starts_with("plugin \"pinned\": sha256 mismatch"),
        "{text}"
    );
}

#[test]
fn a_plugin_used_as_the_wrong_kind_is_a_load_error() {
    let (plugin, kind) = load_kind(json!({
        "plugins": { "pol": { "path": plugin_component("test-policy") } },
        "secrets": { "k": { "type": "plugin", "plugin": "pol", "value": "x" } }
    }));
    assert_eq!(plugin, "pol");
    assert_eq!(
        kind,
        LoadErrorKind::WrongKind {
            expected: "secret source",
            actual: "policy evaluator"
        }
    );
    let (plugin, _) = load_kind(json!({
        "plugins": { "sec": { "path": plugin_component("test-secret") } },
        "policy": { "plugins": ["sec"] }
    }));
    assert_eq!(plugin, "sec");
}

#[test]
fn an_import_outside_the_world_is_a_load_error_naming_it() {
    let (plugin, kind) =
        load_kind(json!({ "plugins": { "net": { "path": plugin_component("bad-import") } } }));
    assert_eq!(plugin, "net");
    match kind {
        LoadErrorKind::UngrantedImport(name) => {
            assert!(name.contains("portcullis:plugin/outbound-http"), "{name}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_bytes_and_missing_files_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0truncated").unwrap();
    let (plugin, kind) = load_kind(json!({ "plugins": { "junk": { "path": junk } } }));
    assert_eq!(plugin, "junk");
    assert!(
        matches!(
            kind,
            LoadErrorKind::Compile(_) | LoadErrorKind::UnknownKind(_)
        ),
        "{kind:?}"
    );
    let (_, kind) =
        load_kind(json!({ "plugins": { "gone": { "path": dir.path().join("gone.wasm") } } }));
    assert!(matches!(kind, LoadErrorKind::Read(_)), "{kind:?}");
}

#[test]
fn config_that_fails_the_plugins_schema_or_init_is_a_load_error() {
    let path = plugin_component("test-secret");
    let (plugin, kind) =
        load_kind(json!({ "plugins": { "cfg": { "path": path, "config": { "unknown": 1 } } } }));
    assert_eq!(plugin, "cfg");
    assert!(
        matches!(&kind, LoadErrorKind::Init(m) if m.contains("schema")),
        "{kind:?}"
    );
}

#[test]
fn inspect_reports_kind_world_imports_and_digest() {
    let path = plugin_component("test-policy");
    let inspection = portcullis::plugins::inspect(&path).unwrap();
    assert_eq!(
        inspection.kind,
        portcullis::plugins::PluginKind::PolicyEvaluator
    );
    assert_eq!(
        inspection.world,
        "portcullis:plugin/policy-evaluator-plugin@0.1.0"
    );
    assert_eq!(inspection.metadata.name, "test-policy");
    assert!(inspection
        .imports
        .iter()
        .all(|i| i.starts_with("wasi:") || i.starts_with("portcullis:plugin/")));
    assert_eq!(inspection.sha256.len(), 64);
}

#[test]
fn unknown_plugin_names_are_config_errors_with_their_json_path() {
    let config = json!({
        "cli": "1.0.0", "mode": { "default": "discover" }, "runtime": {},
        "plugins": { "bad-path": { "path": "x.txt" } },
        "secrets": { "k": { "type": "plugin", "plugin": "nope", "value": "r" } },
        "policy": { "plugins": ["missing"] }
    });
    let error = support::config_load_error(&config);
    for expected in [
        "secrets.k.plugin: names plugin \"nope\"",
        "policy.plugins[0]: names plugin \"missing\"",
        "must name a .wasm component",
    ] {
        assert!(error.contains(expected), "{expected} not in {error}");
    }
}
