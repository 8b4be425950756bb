//! What an MCP service's overlay and workflow documents point at, for the disabled-tool check
//! (contract 6.4): an overlay action target or a workflow step that references only disabled
//! tools fails the source closed, exactly like a policy pattern does ([`super::mcp`]).
//!
//! | document | reference read | form |
//! |---|---|---|
//! | overlay | `actions[].target` | `$.paths['/_mcp/<svc>/<tool>']`, optionally `.post` / `['post']` |
//! | Arazzo workflow | `workflows[].steps[].operationId` | `<name>`, `$sourceDescriptions.<src>.<name>`, or `POST /_mcp/...` |
//! | Arazzo workflow | `workflows[].steps[].operationPath` | `...#/paths/~1_mcp~1<svc>~1<tool>/post` |
//!
//! Documents are read only when the source has disabled tools. Local files (JSON or YAML) are
//! read; a document that cannot be read or parsed, or is remote, fails the source: without it,
//! the check cannot show that nothing references a disabled tool. A target that names no
//! specific path (a wildcard) references nothing in particular and is not checked.

use std::path::Path;

use serde_json::Value;

use super::fetch::{locate, Location};

/// What a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An operation path (method ignored: every MCP tool is a `POST`).
    Path(String),
    /// An operation id.
    OperationId(String),
}

/// One reference to a tool from a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where it was found, for the error (`overlay "./o.yaml"`).
    pub artifact: String,
    /// The text as written.
    pub raw: String,
    /// What it names.
    pub target: Target,
}

/// Every reference in the service's `overlays` and `workflows` documents.
pub fn collect(
    overlays: &[String],
    workflows: &[String],
    base_dir: &Path,
) -> Result<Vec<Reference>, String> {
    let mut refs = Vec::new();
    for uri in overlays {
        let doc = read(uri, base_dir, "overlay")?;
        let actions = doc.get("actions").and_then(Value::as_array);
        for target in actions
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("target"))
        {
            let Some(raw) = target.as_str() else { continue };
            if let Some(path) = overlay_path(raw) {
                refs.push(Reference {
                    artifact: format!("overlay {uri:?}"),
                    raw: raw.to_owned(),
                    target: Target::Path(path),
                });
            }
        }
    }
    for uri in workflows {
        let doc = read(uri, base_dir, "workflow")?;
        let flows = doc.get("workflows").and_then(Value::as_array);
        for flow in flows.into_iter().flatten() {
            let name = flow
                .get("workflowId")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let steps = flow.get("steps").and_then(Value::as_array);
            for step in steps.into_iter().flatten() {
                let artifact = format!("workflow {uri:?} {name:?} step");
                if let Some(raw) = step.get("operationId").and_then(Value::as_str) {
                    refs.push(Reference {
                        artifact,
                        raw: raw.to_owned(),
                        target: operation_id(raw),
                    });
                } else if let Some(raw) = step.get("operationPath").and_then(Value::as_str) {
                    if let Some(path) = operation_path(raw) {
                        refs.push(Reference {
                            artifact,
                            raw: raw.to_owned(),
                            target: Target::Path(path),
                        });
                    }
                }
            }
        }
    }
    Ok(refs)
}

fn read(uri: &str, base_dir: &Path, what: &str) -> Result<Value, String> {
    let path = match locate(uri, base_dir)? {
        Location::File(path) => path,
        Location::Remote(_) => {
            return Err(format!(
            "{what} {uri:?} is remote; only local documents can be checked against disabledTools"
        ))
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{what} {uri:?}: {e}"))?;
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    serde_yaml_ng::from_slice(&bytes).map_err(|e| format!("{what} {uri:?}: {e}"))
}

/// `$.paths['/p']`, `$.paths["/p"].post`, `$.paths['/p']['post']` -> `/p`.
fn overlay_path(target: &str) -> Option<String> {
    let rest = target.trim().strip_prefix("$.paths[")?;
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = &rest[1..];
    let end = inner.find(quote)?;
    inner[end + 1..]
        .starts_with(']')
        .then(|| inner[..end].to_owned())
}

/// An Arazzo `operationId`: a plain id, one qualified by its source description, or the
/// `METHOD /path` form.
fn operation_id(raw: &str) -> Target {
    if let Some((method, path)) = raw.split_once(' ') {
        if method.chars().all(|c| c.is_ascii_alphabetic()) && path.starts_with('/') {
            return Target::Path(path.trim().to_owned());
        }
    }
    match raw.strip_prefix("$sourceDescriptions.") {
        Some(qualified) => Target::OperationId(
            qualified
                .split_once('.')
                .map_or(qualified, |(_, id)| id)
                .to_owned(),
        ),
        None => Target::OperationId(raw.to_owned()),
    }
}

/// An Arazzo `operationPath` (`<source url>#/paths/<escaped path>/<method>`) -> the path.
fn operation_path(raw: &str) -> Option<String> {
    let pointer = raw.split_once('#')?.1;
    let mut segments = pointer.strip_prefix("/paths/")?.split('/');
    let escaped = segments.next()?;
    Some(escaped.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_targets_name_a_path_in_either_quote_style_and_wildcards_name_none() {
        assert_eq!(
            overlay_path("$.paths['/_mcp/s/drop'].post").as_deref(),
            Some("/_mcp/s/drop")
        );
        assert_eq!(
            overlay_path("$.paths[\"/_mcp/s/drop\"]['post']").as_deref(),
            Some("/_mcp/s/drop")
        );
        assert_eq!(overlay_path("$.paths.*.post"), None);
        assert_eq!(overlay_path("$.info"), None);
    }

    #[test]
    fn workflow_steps_name_an_operation_id_or_a_path() {
        assert_eq!(operation_id("drop"), Target::OperationId("drop".into()));
        assert_eq!(
            operation_id("$sourceDescriptions.mcp.drop"),
            Target::OperationId("drop".into())
        );
        assert_eq!(
            operation_id("POST /_mcp/s/drop"),
            Target::Path("/_mcp/s/drop".into())
        );
        assert_eq!(
            operation_path("{$sourceDescriptions.mcp.url}#/paths/~1_mcp~1s~1drop/post").as_deref(),
            Some("/_mcp/s/drop")
        );
    }
}
