//! MCP tools -> catalog tools (contract 6.4, plus annotations).
//!
//! | MCP | catalog tool |
//! |---|---|
//! | `name` | id `<serviceId>:<name>`, operationId `<name>`, command `slug(name)` |
//! | — | method `POST`, path `/_mcp/<slug(service)>/<slug(name)>` (`-<8 hex of sha256(name)>` on collision) |
//! | `description` | summary and description |
//! | `inputSchema` of type object | request body schema as is (an empty schema becomes `{type: object}`) |
//! | `outputSchema` of type object | `result_schema` (kept, not served by the catalog routes; any other root is dropped) |
//! | any other `inputSchema` | wrapped as `{type: object, properties: {input: S}, required: [input]}`, `inputWrapped: true` |
//! | no hint at all (no `annotations`, or none of the three hints below) | the reference runtime's `POST` defaults: `readOnly`, `destructive`, `idempotent` all false |
//! | `annotations.readOnlyHint` | `safety.readOnly` (default false) |
//! | `annotations.destructiveHint` | `safety.destructive` = not read-only and the hint (MCP default true) |
//! | `annotations.idempotentHint` | `safety.idempotent` = read-only or the hint (default false) |
//!
//! A tool whose name is not a valid tool id ([`valid_tool_name`]: whitespace, control or
//! invisible formatting characters, `*`) is left out with a warning naming the source and the
//! escaped name; the other tools of the server still load.
//!
//! Annotations are hints from the server. A tool that gives none gets the reference runtime's
//! safety (as any `POST`: nothing read-only, destructive or idempotent), so catalogs match it;
//! once a server gives any hint, the missing ones take the MCP defaults (destructive unless
//! said otherwise). Names are assigned to surviving tools
//! first, so a disabled tool never claims a name a surviving tool would have had. Failure
//! mode (fail closed): a tool without a name, or an approval/managed-deny/tool-set pattern, an
//! overlay target or a workflow step ([`super::mcp_refs`]) that matches only disabled tools of
//! the source, makes the whole source fail.

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::mcp_refs::{Reference, Target};
use super::model::{Backend, ContentType, McpBinding, RequestBody, ResultSchema, Safety, Tool};
use super::normalize::{valid_tool_id, ServiceTools};
use super::pattern::Pattern;
use super::slug::slugify;
use portcullis_config::Config;

/// Map the tools a server listed into catalog tools of `service_id`.
pub fn map_tools(
    service_id: &str,
    source_id: &str,
    transport: &str,
    listed: &[rmcp::model::Tool],
    disabled: &[String],
    config: &Config,
    refs: &[Reference],
) -> Result<ServiceTools, String> {
    let is_disabled = |t: &&rmcp::model::Tool| disabled.iter().any(|d| d == t.name.as_ref());
    if listed.iter().any(|t| t.name.is_empty()) {
        return Err(format!(
            "service {service_id:?}: an MCP tool has an empty name"
        ));
    }
    // A name that would break ids, scopes or patterns is dropped (only that tool): the server
    // chose it, and one hostile name must not take the operator's other tools down.
    let mut warnings = Vec::new();
    let listed: Vec<&rmcp::model::Tool> = listed
        .iter()
        .filter(|t| {
            let ok = valid_tool_name(&t.name);
            if !ok {
                warnings.push(format!(
                    "service {service_id:?}: the MCP server of source {source_id:?} lists a tool named \"{}\", which is not a valid tool name (whitespace, control or invisible formatting characters, or '*'); it is left out of the catalog",
                    t.name.escape_default()
                ));
            }
            ok
        })
        .collect();
    let listed = listed.as_slice();
    let mut names = Names::default();
    let mut tools = Vec::new();
    for tool in listed.iter().copied().filter(|t| !is_disabled(t)) {
        tools.push(map_tool(service_id, source_id, transport, tool, &mut names));
    }
    // Disabled tools are named after every survivor; only their ids are kept, to check
    // the config's patterns against.
    let disabled: Vec<(String, String)> = listed
        .iter()
        .copied()
        .filter(is_disabled)
        .map(|t| (names.operation(&t.name), names.path(service_id, &t.name)))
        .collect();
    let disabled_ids: Vec<String> = disabled
        .iter()
        .map(|(op, _)| format!("{service_id}:{op}"))
        .collect();
    check_patterns(service_id, source_id, config, &tools, &disabled_ids)?;
    check_references(service_id, source_id, refs, &tools, &disabled)?;
    Ok(ServiceTools {
        title: service_id.to_owned(),
        servers: Vec::new(),
        tools,
        warnings,
        withheld: Vec::new(),
    })
}

/// Whether an MCP tool name can become part of a tool id: the OpenAPI id rule
/// ([`valid_tool_id`]: no whitespace, control characters or `*`), and no invisible Unicode
/// formatting characters (bidirectional overrides, zero-width characters), which would make
/// an id read differently in a log or a policy file from what it is. `:` and `/` are allowed;
/// in patterns they end a `*` segment (`svc:*` does not match `svc:a/b`; `svc:**` does).
pub fn valid_tool_name(name: &str) -> bool {
    let invisible = |c: char| matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}');
    valid_tool_id(name) && !name.chars().any(invisible)
}

#[derive(Default)]
struct Names {
    operations: HashSet<String>,
    paths: HashSet<String>,
}

fn hash8(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))[..8].to_owned()
}

impl Names {
    fn unique(taken: &mut HashSet<String>, base: String, name: &str) -> String {
        let mut candidate = base.clone();
        let mut n = 1;
        while taken.contains(&candidate) {
            candidate = if n == 1 {
                format!("{base}-{}", hash8(name))
            } else {
                format!("{base}-{}-{n}", hash8(name))
            };
            n += 1;
        }
        taken.insert(candidate.clone());
        candidate
    }

    fn operation(&mut self, name: &str) -> String {
        Self::unique(&mut self.operations, name.to_owned(), name)
    }

    fn path(&mut self, service_id: &str, name: &str) -> String {
        let service = Some(slugify(service_id)).filter(|s| !s.is_empty());
        let tool = Some(slugify(name)).filter(|s| !s.is_empty());
        let base = format!(
            "/_mcp/{}/{}",
            service.as_deref().unwrap_or("service"),
            tool.as_deref().unwrap_or("tool")
        );
        Self::unique(&mut self.paths, base, name)
    }
}

fn map_tool(
    service_id: &str,
    source_id: &str,
    transport: &str,
    tool: &rmcp::model::Tool,
    names: &mut Names,
) -> Tool {
    let operation_id = names.operation(&tool.name);
    let path = names.path(service_id, &tool.name);
    let (schema, wrapped) = input_schema(&tool.input_schema);
    let hints = tool.annotations.as_ref().filter(|a| {
        a.read_only_hint.is_some() || a.destructive_hint.is_some() || a.idempotent_hint.is_some()
    });
    let safety = match hints {
        None => Safety::default(),
        Some(hints) => {
            let read_only = hints.read_only_hint.unwrap_or(false);
            Safety {
                read_only,
                destructive: !read_only && hints.destructive_hint.unwrap_or(true),
                idempotent: read_only || hints.idempotent_hint.unwrap_or(false),
                requires_approval: false,
            }
        }
    };
    let description = tool.description.as_deref().unwrap_or_default().to_owned();
    let backend = Backend::Mcp(McpBinding {
        source_id: source_id.to_owned(),
        tool_name: tool.name.to_string(),
        transport: transport.to_owned(),
        input_wrapped: wrapped,
    });
    Tool {
        id: format!("{service_id}:{operation_id}"),
        service_id: service_id.to_owned(),
        operation_id,
        method: "POST".to_owned(),
        path,
        group: slugify(service_id),
        command: slugify(&tool.name),
        summary: description.clone(),
        description,
        request_body: Some(RequestBody {
            required: true,
            content_types: vec![ContentType {
                media_type: "application/json".to_owned(),
                schema: Some(schema),
            }],
        }),
        safety,
        backend,
        // MCP requires an object at the root; a server that sends anything else gets none
        // served rather than a schema clients would reject.
        result_schema: tool
            .output_schema
            .clone()
            .filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
            .map(ResultSchema::Mcp),
        ..Tool::default()
    }
}

/// The request-body schema for an MCP input schema, and whether it was wrapped.
fn input_schema(schema: &Map<String, Value>) -> (Value, bool) {
    if schema.is_empty() {
        return (json!({"type": "object"}), false);
    }
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        return (Value::Object(schema.clone()), false);
    }
    let wrapped = json!({
        "type": "object",
        "properties": { "input": Value::Object(schema.clone()) },
        "required": ["input"],
    });
    (wrapped, true)
}

/// Fail closed when a pattern that must mean something matches only disabled tools.
fn check_patterns(
    service_id: &str,
    source_id: &str,
    config: &Config,
    surviving: &[Tool],
    disabled_ids: &[String],
) -> Result<(), String> {
    if disabled_ids.is_empty() {
        return Ok(());
    }
    let policy = config.policy.as_ref();
    let mut artifacts: Vec<(String, &String)> = Vec::new();
    for p in policy
        .and_then(|p| p.approval_required.as_ref())
        .into_iter()
        .flatten()
    {
        artifacts.push(("policy.approvalRequired".to_owned(), p));
    }
    for p in policy.map(|p| &p.managed_deny).into_iter().flatten() {
        artifacts.push(("managed policy.deny".to_owned(), p));
    }
    let sets = config.curation.as_ref().and_then(|c| c.tool_sets.as_ref());
    for (name, set) in sets.into_iter().flatten() {
        for p in set.allow.iter().flatten() {
            artifacts.push((format!("curation.toolSets.{name}.allow"), p));
        }
        for p in set.deny.iter().flatten() {
            artifacts.push((format!("curation.toolSets.{name}.deny"), p));
        }
    }
    for (artifact, raw) in artifacts {
        let Ok(pattern) = Pattern::parse(raw) else {
            continue;
        };
        let Some(hit) = disabled_ids.iter().find(|id| pattern.matches(id)) else {
            continue;
        };
        if !surviving.iter().any(|t| pattern.matches(&t.id)) {
            let name = hit.split_once(':').map_or(hit.as_str(), |(_, n)| n);
            return Err(format!(
                "source {source_id:?} service {service_id:?}: {artifact} pattern {raw:?} references disabled MCP tool {name:?}"
            ));
        }
    }
    Ok(())
}

/// Fail closed when an overlay target or workflow step names only a disabled tool.
/// `disabled` holds the (operation id, path) each disabled tool would have had.
fn check_references(
    service_id: &str,
    source_id: &str,
    refs: &[Reference],
    surviving: &[Tool],
    disabled: &[(String, String)],
) -> Result<(), String> {
    for r in refs {
        let names = |op: &str, path: &str| match &r.target {
            Target::Path(p) => p == path,
            Target::OperationId(id) => id == op,
        };
        let Some((op, _)) = disabled.iter().find(|(op, path)| names(op, path)) else {
            continue;
        };
        if !surviving.iter().any(|t| names(&t.operation_id, &t.path)) {
            return Err(format!(
                "source {source_id:?} service {service_id:?}: {} target {:?} references disabled MCP tool {op:?}",
                r.artifact, r.raw
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, schema: Value, annotations: Value) -> rmcp::model::Tool {
        serde_json::from_value(json!({
            "name": name, "description": format!("{name} tool"),
            "inputSchema": schema, "annotations": annotations,
        }))
        .unwrap()
    }

    fn config(json: Value) -> Config {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn tools_map_to_post_operations_with_wrapped_non_object_inputs() {
        let listed = [
            tool(
                "read_file",
                json!({"type": "object", "properties": {"path": {"type": "string"}}}),
                json!({}),
            ),
            tool("echo", json!({"type": "string"}), json!({})),
            tool("noop", json!({}), json!({})),
        ];
        let out = map_tools("fs", "fs", "stdio", &listed, &[], &Config::default(), &[]).unwrap();
        let by_id = |id: &str| out.tools.iter().find(|t| t.id == id).unwrap();
        let read = by_id("fs:read_file");
        assert_eq!(
            (
                read.method.as_str(),
                read.path.as_str(),
                read.command.as_str()
            ),
            ("POST", "/_mcp/fs/read-file", "read-file")
        );
        // The served form of the binding, byte for byte.
        assert_eq!(
            serde_json::to_string(&read.backend).unwrap(),
            r#"{"kind":"mcp","sourceId":"fs","toolName":"read_file","transport":"stdio"}"#
        );
        let echo = by_id("fs:echo");
        let schema = echo.request_body.as_ref().unwrap().content_types[0]
            .schema
            .clone()
            .unwrap();
        assert_eq!(schema["properties"]["input"]["type"], "string");
        assert_eq!(
            serde_json::to_value(&echo.backend).unwrap()["inputWrapped"],
            true
        );
        let noop = by_id("fs:noop");
        assert_eq!(
            noop.request_body.as_ref().unwrap().content_types[0].schema,
            Some(json!({"type": "object"}))
        );
    }

    #[test]
    fn an_object_output_schema_is_kept_and_any_other_is_dropped() {
        let with_output = |name: &str, output: Value| -> rmcp::model::Tool {
            let mut t = tool(name, json!({"type": "object"}), json!({}));
            t.output_schema = output.as_object().cloned().map(std::sync::Arc::new);
            t
        };
        let listed = [
            with_output(
                "sum",
                json!({"type": "object", "properties": {"n": {"type": "number"}}}),
            ),
            with_output("list", json!({"type": "array"})),
            tool("plain", json!({"type": "object"}), json!({})),
        ];
        let out = map_tools("m", "m", "stdio", &listed, &[], &Config::default(), &[]).unwrap();
        let by_id = |id: &str| out.tools.iter().find(|t| t.id == id).unwrap();
        match &by_id("m:sum").result_schema {
            Some(ResultSchema::Mcp(schema)) => {
                assert_eq!(schema["properties"]["n"]["type"], "number")
            }
            other => panic!("{other:?}"),
        }
        assert!(by_id("m:list").result_schema.is_none());
        assert!(by_id("m:plain").result_schema.is_none());
    }

    #[test]
    fn annotations_set_safety_and_unannotated_tools_get_the_reference_defaults() {
        let listed = [
            tool(
                "get",
                json!({"type": "object"}),
                json!({"readOnlyHint": true}),
            ),
            tool(
                "put",
                json!({"type": "object"}),
                json!({"destructiveHint": false, "idempotentHint": true}),
            ),
            tool("plain", json!({"type": "object"}), json!({})),
            tool("titled", json!({"type": "object"}), json!({"title": "T"})),
            tool(
                "open",
                json!({"type": "object"}),
                json!({"openWorldHint": true}),
            ),
            tool(
                "partial",
                json!({"type": "object"}),
                json!({"idempotentHint": true}),
            ),
        ];
        let mut listed = listed.to_vec();
        listed.push(
            serde_json::from_value(json!({"name": "bare", "inputSchema": {"type": "object"}}))
                .unwrap(),
        );
        let out = map_tools("s", "s", "stdio", &listed, &[], &Config::default(), &[]).unwrap();
        let safety: Vec<(bool, bool, bool)> = out
            .tools
            .iter()
            .map(|t| {
                (
                    t.safety.read_only,
                    t.safety.destructive,
                    t.safety.idempotent,
                )
            })
            .collect();
        assert_eq!(
            safety,
            [
                (true, false, true),
                (false, false, true),
                // No safety hint: the reference runtime's POST defaults.
                (false, false, false),
                (false, false, false),
                (false, false, false),
                // Some hint: the missing ones take the MCP defaults.
                (false, true, true),
                (false, false, false),
            ]
        );
    }

    #[test]
    fn colliding_slugs_get_a_hash_suffix_and_disabled_tools_never_claim_a_name() {
        // "a-b" is disabled and listed first; the surviving "a_b" still gets the plain path.
        let listed = [
            tool("a-b", json!({"type": "object"}), json!({})),
            tool("a_b", json!({"type": "object"}), json!({})),
            tool("a.b", json!({"type": "object"}), json!({})),
        ];
        let out = map_tools(
            "s",
            "s",
            "stdio",
            &listed,
            &["a-b".into()],
            &Config::default(),
            &[],
        )
        .unwrap();
        let paths: Vec<&str> = out.tools.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/_mcp/s/a-b", &format!("/_mcp/s/a-b-{}", hash8("a.b"))]
        );
    }

    #[test]
    fn hostile_tool_names_are_dropped_with_an_escaped_warning_and_the_rest_survive() {
        let hostile = [
            "evil*",
            "two words",
            "tab\there",
            "nl\nx",
            "rtl\u{202e}txt",
            "zero\u{200b}width",
            "\u{7f}del",
        ];
        let mut listed: Vec<_> = hostile
            .iter()
            .map(|n| tool(n, json!({"type": "object"}), json!({})))
            .collect();
        listed.push(tool("fs:read/file", json!({"type": "object"}), json!({})));
        listed.push(tool("ok", json!({"type": "object"}), json!({})));
        let out = map_tools("s", "src", "stdio", &listed, &[], &Config::default(), &[]).unwrap();
        let ids: Vec<&str> = out.tools.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["s:fs:read/file", "s:ok"]);
        assert_eq!(out.warnings.len(), hostile.len(), "{:?}", out.warnings);
        for (warning, name) in out.warnings.iter().zip(hostile) {
            assert!(
                warning.contains("source \"src\"")
                    && warning.contains(&format!("\"{}\"", name.escape_default())),
                "{warning}"
            );
            assert!(
                !warning.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{warning:?}"
            );
        }
        // The same rule as OpenAPI ids, plus invisible formatting characters.
        assert!(valid_tool_name("read_file") && valid_tool_name("a.b-c:d/e"));
        assert!(!valid_tool_name("a\u{2066}b") && !valid_tool_name("a\u{feff}"));
    }

    #[test]
    fn a_pattern_naming_only_a_disabled_tool_fails_the_source() {
        let listed = [
            tool("keep", json!({"type": "object"}), json!({})),
            tool("drop", json!({"type": "object"}), json!({})),
        ];
        let strict = config(json!({"policy": {"approvalRequired": ["s:drop"]}}));
        let err =
            map_tools("s", "src", "stdio", &listed, &["drop".into()], &strict, &[]).unwrap_err();
        assert!(
            err.contains(
                "policy.approvalRequired pattern \"s:drop\" references disabled MCP tool \"drop\""
            ),
            "{err}"
        );
        let set = config(json!({"curation": {"toolSets": {"t": {"allow": ["s:d*"]}}}}));
        assert!(map_tools("s", "src", "stdio", &listed, &["drop".into()], &set, &[]).is_err());
        // A pattern that still matches a surviving tool is fine.
        let broad = config(json!({"policy": {"approvalRequired": ["s:*"]}}));
        assert!(map_tools("s", "src", "stdio", &listed, &["drop".into()], &broad, &[]).is_ok());
    }

    #[test]
    fn an_overlay_or_workflow_naming_only_a_disabled_tool_fails_the_source() {
        let listed = [
            tool("keep", json!({"type": "object"}), json!({})),
            tool("drop", json!({"type": "object"}), json!({})),
        ];
        let reference = |target: Target| Reference {
            artifact: "overlay \"o.yaml\"".into(),
            raw: "raw".into(),
            target,
        };
        let run = |refs: &[Reference]| {
            map_tools(
                "s",
                "src",
                "stdio",
                &listed,
                &["drop".into()],
                &Config::default(),
                refs,
            )
        };
        let err = run(&[reference(Target::Path("/_mcp/s/drop".into()))]).unwrap_err();
        assert!(
            err.contains("overlay \"o.yaml\" target \"raw\" references disabled MCP tool \"drop\""),
            "{err}"
        );
        assert!(run(&[reference(Target::OperationId("drop".into()))]).is_err());
        assert!(run(&[reference(Target::Path("/_mcp/s/keep".into()))]).is_ok());
        assert!(run(&[reference(Target::OperationId("missing".into()))]).is_ok());
    }
}
