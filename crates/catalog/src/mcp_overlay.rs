//! Overlays on an MCP service (contract 4.5): the service's surviving tools are laid out as a
//! synthetic OpenAPI document, one `post` operation per tool at its catalog path
//! (`$.paths['/_mcp/<service>/<tool>'].post`, with `operationId`, `summary` and `description`);
//! the overlays are applied to it exactly as to an OpenAPI source ([`super::overlay`]), and each
//! tool's operation is read back with the OpenAPI extension rules.
//!
//! | after the overlays | the tool |
//! |---|---|
//! | operation removed, or `x-cli-ignore: true` | dropped: not catalogued, not callable |
//! | `x-cli-name`, `x-cli-group` | command, group |
//! | `summary`; `x-cli-description`, else `description` | summary; description |
//! | `x-cli-aliases`, `x-cli-hidden`, `x-cli-output`, `x-cli-pagination`, `x-cli-retry` | as for OpenAPI |
//! | `x-cli-safety` | replaces the annotation-derived safety field by field |
//!
//! Identity never changes: id, operationId, method, path and backend stay what the MCP server
//! listed, so an overlay edits a tool's metadata but cannot point it at another tool. Failure
//! mode: an overlay error, or an operation an overlay gave the wrong shape (`x-cli-ignore: "yes"`),
//! fails the source, as it would for an OpenAPI document.

use serde_json::{json, Map};

use super::model::Tool;
use super::openapi::Operation;
use super::overlay;

/// Apply `overlays` to `tools` of `service_id`; returns warnings (targets matching nothing).
pub fn apply(
    service_id: &str,
    tools: &mut Vec<Tool>,
    overlays: &overlay::Loaded,
) -> Result<Vec<String>, String> {
    if overlays.is_empty() {
        return Ok(Vec::new());
    }
    let mut paths = Map::new();
    for tool in tools.iter() {
        paths.insert(
            tool.path.clone(),
            json!({ "post": {
                "operationId": tool.operation_id,
                "summary": tool.summary,
                "description": tool.description,
            }}),
        );
    }
    let mut tree = json!({
        "openapi": "3.1.0",
        "info": { "title": service_id, "version": "mcp" },
        "paths": paths,
    });
    let warnings = overlay::apply_all(&mut tree, service_id, overlays)?;
    let mut kept = Vec::with_capacity(tools.len());
    for mut tool in tools.drain(..) {
        let Some(raw) = tree
            .get("paths")
            .and_then(|p| p.get(&tool.path))
            .and_then(|item| item.get("post"))
        else {
            continue;
        };
        let op: Operation = serde_json::from_value(raw.clone()).map_err(|e| {
            format!(
                "service {service_id:?}: paths.{}.post after the overlays: {e}",
                tool.path
            )
        })?;
        if op.cli_ignore {
            continue;
        }
        overlaid(&mut tool, op);
        kept.push(tool);
    }
    *tools = kept;
    Ok(warnings)
}

fn overlaid(tool: &mut Tool, op: Operation) {
    if let Some(group) = op.cli_group.filter(|g| !g.is_empty()) {
        tool.group = group;
    }
    if let Some(name) = op.cli_name.filter(|n| !n.is_empty()) {
        tool.command = name;
    }
    tool.summary = op.summary.unwrap_or_default();
    tool.description = op.cli_description.or(op.description).unwrap_or_default();
    tool.aliases = op.cli_aliases;
    tool.hidden = op.cli_hidden;
    if let Some(safety) = op.cli_safety {
        tool.safety = safety.apply(tool.safety);
    }
    tool.output = op.cli_output;
    tool.pagination = op.cli_pagination;
    tool.retry = op.cli_retry;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Safety;

    fn tool(name: &str) -> Tool {
        Tool {
            id: format!("s:{name}"),
            operation_id: name.to_owned(),
            method: "POST".into(),
            path: format!("/_mcp/s/{name}"),
            command: name.to_owned(),
            description: format!("{name} tool"),
            summary: format!("{name} tool"),
            safety: Safety {
                destructive: true,
                ..Safety::default()
            },
            ..Tool::default()
        }
    }

    fn run(yaml: &str, tools: &mut Vec<Tool>) -> Result<Vec<String>, String> {
        apply(
            "s",
            tools,
            &[("o.yaml".to_owned(), yaml.as_bytes().to_vec())],
        )
    }

    #[test]
    fn overlays_hide_remove_rename_and_gate_mcp_tools_by_their_catalog_path() {
        let mut tools = vec![tool("keep"), tool("hide"), tool("drop"), tool("gate")];
        let warnings = run(
            "overlay: 1.0.0\nactions:
  - {target: \"$.paths['/_mcp/s/hide'].post\", update: {x-cli-ignore: true}}
  - {target: \"$.paths['/_mcp/s/drop']\", remove: true}
  - {target: \"$.paths['/_mcp/s/gate'].post\", update: {x-cli-safety: {requiresApproval: true}, x-cli-name: g, x-cli-description: Gated., operationId: keep}}
  - {target: \"$.paths['/_mcp/s/none'].post\", update: {x-cli-hidden: true}}
",
            &mut tools,
        )
        .unwrap();
        let ids: Vec<&str> = tools.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["s:keep", "s:gate"]);
        let gate = &tools[1];
        assert!(gate.safety.requires_approval && gate.safety.destructive);
        assert_eq!(
            (gate.command.as_str(), gate.description.as_str()),
            ("g", "Gated.")
        );
        // The overlay cannot change identity.
        assert_eq!(gate.operation_id, "gate");
        assert_eq!(tools[0].description, "keep tool");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("actions[3].target"), "{warnings:?}");
    }

    #[test]
    fn a_broken_overlay_or_a_badly_typed_extension_fails_the_source() {
        let mut tools = vec![tool("a")];
        let err = run(
            "overlay: 1.0.0\nactions: [{target: '$.paths[', remove: true}]",
            &mut tools,
        )
        .unwrap_err();
        assert!(
            err.starts_with("services.s.overlays[0]: overlay \"o.yaml\" actions[0]"),
            "{err}"
        );
        let err = run(
            "overlay: 1.0.0\nactions: [{target: '$.paths.*.post', update: {x-cli-ignore: 'yes'}}]",
            &mut tools,
        )
        .unwrap_err();
        assert!(err.contains("paths./_mcp/s/a.post"), "{err}");
    }
}
