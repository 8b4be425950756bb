//! The GitHub REST description (13 MB, 1,223 operations) loads completely and faithfully.

use super::support::catalog;

use std::collections::HashSet;

use catalog::{build_blocking, parse_json, peers_dir, raw_operations, single_source_config};

#[test]
fn github_description_yields_one_tool_per_operation_with_github_prefixed_ids() {
    let path = peers_dir().join("@octokit/openapi/generated/api.github.com.json");
    let raw: serde_json::Value =
        parse_json(&std::fs::read(&path).expect("read GitHub description")).expect("valid JSON");
    let operations = raw_operations(&raw);
    assert_eq!(
        operations.len(),
        1223,
        "the pinned GitHub description has 1,223 operations"
    );

    let outcome = build_blocking(&single_source_config("github", "gh", &path));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let tools = &outcome.catalog.tools;
    assert_eq!(tools.len(), operations.len());

    let ids: HashSet<&str> = tools.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), tools.len(), "tool ids are unique");
    for (method, path, operation_id) in &operations {
        let operation_id = operation_id
            .as_deref()
            .expect("every GitHub operation has an operationId");
        let id = format!("github:{operation_id}");
        let tool = tools
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("missing tool {id}"));
        assert_eq!(
            (tool.method.to_lowercase().as_str(), tool.path.as_str()),
            (method.as_str(), path.as_str())
        );
    }
    assert_eq!(outcome.catalog.services.len(), 1);
    assert_eq!(outcome.catalog.services[0].alias, "github");
    assert_eq!(outcome.catalog.effective_views[0].tools.len(), tools.len());
    assert_eq!(outcome.watched_files, [path]);
}
