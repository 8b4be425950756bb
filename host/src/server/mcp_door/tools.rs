//! Catalog tools as MCP tools: names, input schemas, annotations, arguments and results.
//! Built once per catalog ([`ToolTable::build`]) and shared by every caller of that snapshot;
//! each `tools/list` only filters it by the caller's envelope.
//!
//! | catalog | MCP |
//! |---|---|
//! | id `service:operation` | `name`: the first `:` and every `/` become `.`, every other character outside `[A-Za-z0-9_.-]` becomes `_`; a name longer than 128 is cut and ends in `-` and 8 hex digits of sha256(id). A name is a function of the id alone, so it is stable across rebuilds and never depends on which other tools exist |
//! | a tool of an MCP source with `toolNamePrefix` | `name`: the prefix and the upstream tool's own name (`""` + `read_file` = `read_file`), with the same character rule and cut; a function of the config and the upstream name |
//! | two tools with the same name (`a/b` and `a.b` of one service; two sources with the prefix `""` listing the same tool) | both left out of the MCP door (fail closed: neither shadows the other); the table keeps why, naming both tools and their sources, for the log and for a `tools/call` of that name; the HTTP API still has them |
//! | `summary` / `description` | `title` / `description` (the summary when there is no description, else `<METHOD> <path> (<id>)`) |
//! | `safety` | `annotations.{readOnlyHint, destructiveHint, idempotentHint}` |
//! | `id` | `_meta["dev.portcullis/toolId"]` (what grants, scopes, policy and audit name) |
//! | OpenAPI path parameters, flags, JSON request body | `inputSchema` properties named as the CLI names them (required when the document says so); the body under `body` (`requestBody` if a parameter is already named `body`), its schema as written but for `$ref`s into the document, each replaced by an open schema naming it; `additionalProperties: false` |
//! | an MCP source's tool | its own input schema (the catalog's request body schema) |
//! | OpenAPI success responses with a JSON schema (`200`..`299`, `2XX`) | `outputSchema`: the answer's envelope below (`statusCode` required), whose `body` must match the schema of the declared status answered (`if`/`then` per status, `$ref`s detached as in `inputSchema`); no JSON success schema: no `outputSchema` |
//! | an MCP source's tool's `outputSchema` | as the server listed it when its root is `type: object`; otherwise none (MCP allows only object roots) |
//!
//! Arguments: path parameters and flags are declared as strings (the catalog keeps no parameter
//! types) and also take numbers and booleans (sent as text, as the HTTP API does); the body any JSON value. An unknown argument or a missing required one is a
//! tool error (`isError: true`) the model can correct, never a protocol error.
//!
//! Results: an HTTP tool's answer (`{"statusCode", "body"|"text"|"bodyBase64", "contentType"}`)
//! is `structuredContent` and, serialized, the text content; `isError` when the upstream
//! answered 4xx or 5xx. An MCP tool's result is passed through as its server sent it.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::catalog::{Backend, Catalog, ParamLocation, ResultSchema, Tool};
use crate::config::Config;

/// The `_meta` key of a tool's catalog id.
pub(crate) const TOOL_ID_META: &str = "dev.portcullis/toolId";

/// Longest tool name MCP clients accept.
pub(crate) const MAX_NAME_LEN: usize = 128;

/// How a tool's MCP arguments become a call.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// An OpenAPI operation: path parameters in order, flags, the body's argument name.
    Http {
        path: Vec<String>,
        flags: Vec<String>,
        required: Vec<String>,
        body: Option<String>,
    },
    /// An MCP tool: the arguments are the body.
    Mcp,
}

/// One tool as the MCP door serves it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The catalog id.
    pub(crate) id: String,
    /// The `tools/list` entry (without revision-specific fields).
    pub(crate) definition: Value,
    shape: Shape,
}

/// The decoded arguments of one call.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Arguments {
    pub(crate) path_args: Vec<String>,
    pub(crate) flags: BTreeMap<String, String>,
    pub(crate) body: Option<Bytes>,
}

/// `sources.<id>.toolNamePrefix` of every MCP source that sets one, by source id.
pub(crate) type NamePrefixes = HashMap<String, String>;

/// The name prefixes `config` sets.
pub(crate) fn name_prefixes(config: &Config) -> NamePrefixes {
    config
        .sources
        .iter()
        .flatten()
        .filter_map(|(id, s)| Some((id.clone(), s.tool_name_prefix.clone()?)))
        .collect()
}

/// Every tool of one catalog, named for MCP.
#[derive(Debug, Default)]
pub(crate) struct ToolTable {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// Names two or more tools claim, with why none of them is served.
    conflicts: HashMap<String, String>,
}

impl ToolTable {
    /// Name and describe every tool of `catalog`; colliding names are left out (logged).
    pub(crate) fn build(catalog: &Catalog, prefixes: &NamePrefixes) -> Self {
        let mut named: BTreeMap<String, Vec<&Tool>> = BTreeMap::new();
        for tool in &catalog.tools {
            named
                .entry(door_name(tool, prefixes))
                .or_default()
                .push(tool);
        }
        let mut table = Self::default();
        for (name, tools) in named {
            if let [tool] = tools.as_slice() {
                table.by_name.insert(name.clone(), table.entries.len());
                table.entries.push(entry(tool, name));
            } else {
                let why = conflict(&name, &tools);
                tracing::warn!("{why}");
                table.conflicts.insert(name, why);
            }
        }
        table
    }

    /// The entry named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Why no tool is served under `name`, when several claim it.
    pub(crate) fn conflict(&self, name: &str) -> Option<&str> {
        self.conflicts.get(name).map(String::as_str)
    }

    /// The definitions of the tools `permits` lets through, in catalog-name order.
    pub(crate) fn list<'t>(
        &'t self,
        permits: impl Fn(&str) -> bool + 't,
    ) -> impl Iterator<Item = &'t Value> + 't {
        self.entries
            .iter()
            .filter(move |e| permits(&e.id))
            .map(|e| &e.definition)
    }
}

/// The MCP name of a tool id (module header).
pub(crate) fn mcp_name(id: &str) -> String {
    let first_colon = id.find(':');
    let name: String = id
        .char_indices()
        .map(|(i, c)| match c {
            ':' if Some(i) == first_colon => '.',
            c => name_char(c),
        })
        .collect();
    fit(name, id)
}

/// The name `tool` is served under: [`mcp_name`] of its id, or for a tool of an MCP source
/// with a `toolNamePrefix`, the prefix and the upstream tool's name.
fn door_name(tool: &Tool, prefixes: &NamePrefixes) -> String {
    let prefixed = match &tool.backend {
        Backend::Mcp(binding) => prefixes.get(&binding.source_id).map(|prefix| {
            let name: String = prefix
                .chars()
                .chain(binding.tool_name.chars())
                .map(name_char)
                .collect();
            fit(name, &tool.id)
        }),
        Backend::Http => None,
    };
    prefixed.unwrap_or_else(|| mcp_name(&tool.id))
}

/// A character of an MCP tool name: `[A-Za-z0-9_.-]` as is, `/` as `.`, any other as `_`.
fn name_char(c: char) -> char {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' | '.' => c,
        '/' => '.',
        _ => '_',
    }
}

/// `name` within [`MAX_NAME_LEN`]: a longer (or empty) one is cut and ends in `-` and 8 hex
/// digits of sha256(`id`), since a bare cut would collide with its neighbours; the digest
/// keeps it a function of the id.
fn fit(mut name: String, id: &str) -> String {
    if name.len() > MAX_NAME_LEN || name.is_empty() {
        let digest = hex::encode(&Sha256::digest(id.as_bytes())[..4]);
        name.truncate(MAX_NAME_LEN - digest.len() - 1);
        name = format!("{name}-{digest}");
    }
    name
}

/// Why `name` is served for none of `tools` (each named with its source or service).
fn conflict(name: &str, tools: &[&Tool]) -> String {
    let claims: Vec<String> = tools
        .iter()
        .map(|t| match &t.backend {
            Backend::Mcp(b) => format!("tool {} of MCP source {:?}", t.id, b.source_id),
            Backend::Http => format!("tool {} of service {:?}", t.id, t.service_id),
        })
        .collect();
    format!(
        "MCP tool name {name:?} is claimed by {}; none of them is served at /mcp (each stays in the HTTP API). Give the sources different sources.<id>.toolNamePrefix values, or rename a tool with an overlay",
        claims.join(" and ")
    )
}

fn entry(tool: &Tool, name: String) -> Entry {
    let (schema, shape) = match &tool.backend {
        Backend::Mcp(_) => (mcp_schema(tool), Shape::Mcp),
        Backend::Http => http_schema(tool),
    };
    // The catalog id travels along: approval grants, policy patterns, scopes and audit records
    // name tools by id, not by their MCP name.
    let mut definition = json!({
        "name": name,
        "inputSchema": schema,
        "_meta": { TOOL_ID_META: tool.id },
    });
    if !tool.summary.is_empty() {
        definition["title"] = tool.summary.clone().into();
    }
    // Clients and the conformance suite expect a description on every tool; an operation the
    // document leaves undescribed is described by what it calls.
    let description = match (&tool.description, &tool.summary) {
        (d, _) if !d.is_empty() => d.clone(),
        (_, s) if !s.is_empty() => s.clone(),
        _ => format!("{} {} ({})", tool.method, tool.path, tool.id),
    };
    definition["description"] = description.into();
    if let Some(schema) = output_schema(tool) {
        definition["outputSchema"] = schema;
    }
    definition["annotations"] = json!({
        "readOnlyHint": tool.safety.read_only,
        "destructiveHint": tool.safety.destructive,
        "idempotentHint": tool.safety.idempotent,
    });
    Entry {
        id: tool.id.clone(),
        definition,
        shape,
    }
}

/// The `outputSchema` of a tool whose result schema the catalog knows (module header): an MCP
/// tool's own (the catalog keeps only object roots, as MCP requires); for an OpenAPI operation,
/// the answer's envelope, whose `body` must match the declared schema of the status answered.
fn output_schema(tool: &Tool) -> Option<Value> {
    let responses = match tool.result_schema.as_ref()? {
        ResultSchema::Mcp(schema) => return Some(Value::Object(Map::clone(schema))),
        ResultSchema::Responses(responses) => responses,
    };
    let explicit: Vec<u16> = responses
        .iter()
        .filter_map(|(status, _)| status.parse().ok())
        .collect();
    // One condition per declared status, so a 4xx/5xx answer (or an undeclared 2xx) still
    // matches the schema with whatever body it has: MCP wants every result to conform.
    let conditions: Vec<Value> = responses
        .iter()
        .map(|(status, schema)| {
            let mut body = schema.clone();
            detach_refs(&mut body);
            let status = match status.parse::<u16>() {
                Ok(code) => json!({ "const": code }),
                Err(_) if explicit.is_empty() => json!({ "minimum": 200, "maximum": 299 }),
                Err(_) => json!({ "minimum": 200, "maximum": 299, "not": { "enum": explicit } }),
            };
            json!({
                "if": { "properties": { "statusCode": status }, "required": ["statusCode"] },
                "then": { "properties": { "body": body } },
            })
        })
        .collect();
    Some(json!({
        "type": "object",
        "properties": {
            "statusCode": { "type": "integer", "description": "the upstream's HTTP status" },
            "body": { "description": "the upstream's answer, when it is JSON (the schema of the status answered)" },
            "text": { "type": "string", "description": "the upstream's answer, when it is other text" },
            "bodyBase64": { "type": "string", "description": "the upstream's answer, when it is binary" },
            "contentType": { "type": "string", "description": "the upstream's Content-Type" },
        },
        "required": ["statusCode"],
        "allOf": conditions,
    }))
}

/// An MCP tool's own schema, kept in the catalog as its request body schema.
fn mcp_schema(tool: &Tool) -> Value {
    tool.request_body
        .as_ref()
        .and_then(|b| b.content_types.first())
        .and_then(|c| c.schema.clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object"}))
}

fn http_schema(tool: &Tool) -> (Value, Shape) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut path = Vec::new();
    let mut flags = Vec::new();
    for param in tool.path_params.iter().chain(&tool.flags) {
        let place = match param.location {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        };
        properties.insert(
            param.name.clone(),
            json!({
                // The catalog keeps no parameter types; numbers and booleans are accepted too.
                "type": "string",
                "description": format!("{place} parameter {:?}", param.original_name),
            }),
        );
        if param.required || param.location == ParamLocation::Path {
            required.push(param.name.clone());
        }
        if param.location == ParamLocation::Path {
            path.push(param.name.clone());
        } else {
            flags.push(param.name.clone());
        }
    }
    let body = tool.request_body.as_ref().map(|body| {
        let key = ["body", "requestBody", "_body"]
            .into_iter()
            .find(|k| !properties.contains_key(*k))
            .unwrap_or("_body")
            .to_owned();
        let json_schema = body
            .content_types
            .iter()
            .find(|c| c.media_type.contains("json"))
            .or(body.content_types.first())
            .and_then(|c| c.schema.clone());
        let mut schema = json_schema.unwrap_or_else(|| json!({}));
        detach_refs(&mut schema);
        if let Value::Object(map) = &mut schema {
            let media: Vec<&str> = body
                .content_types
                .iter()
                .map(|c| c.media_type.as_str())
                .collect();
            map.entry("description")
                .or_insert_with(|| format!("request body ({})", media.join(", ")).into());
        }
        properties.insert(key.clone(), schema);
        if body.required {
            required.push(key.clone());
        }
        key
    });
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = required.clone().into();
    }
    (
        schema,
        Shape::Http {
            path,
            flags,
            required,
            body,
        },
    )
}

/// Replace every `$ref` of an OpenAPI body schema by an open schema that names it: the
/// catalog keeps body schemas as written, and their references point into the API document
/// (`#/components/schemas/...`), which an MCP client resolving against `inputSchema` cannot
/// reach; a dangling reference can make a client or model API refuse the whole tool list.
fn detach_refs(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let described = map.get("description").and_then(Value::as_str).map_or_else(
                    || format!("{reference} of the API document"),
                    |d| format!("{d} ({reference} of the API document)"),
                );
                *schema = json!({ "description": described });
                return;
            }
            map.values_mut().for_each(detach_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(detach_refs),
        _ => {}
    }
}

impl Entry {
    /// Decode `arguments` into the call's path arguments, flags and body; the message says
    /// what to fix.
    pub(crate) fn arguments(&self, arguments: Map<String, Value>) -> Result<Arguments, String> {
        let Shape::Http {
            path,
            flags,
            required,
            body,
        } = &self.shape
        else {
            return Ok(Arguments {
                body: Some(Bytes::from(
                    serde_json::to_vec(&arguments).unwrap_or_default(),
                )),
                ..Arguments::default()
            });
        };
        if let Some(unknown) = arguments
            .keys()
            .find(|k| !path.contains(k) && !flags.contains(k) && body.as_ref() != Some(*k))
        {
            return Err(format!(
                "unknown argument {unknown:?}; see the tool's inputSchema"
            ));
        }
        if let Some(missing) = required
            .iter()
            .find(|r| arguments.get(*r).is_none_or(Value::is_null))
        {
            return Err(format!("missing required argument {missing:?}"));
        }
        let scalar = |name: &str, value: &Value| match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(format!(
                "argument {name:?} must be a string, number or boolean"
            )),
        };
        let mut out = Arguments::default();
        for name in path {
            out.path_args.push(scalar(name, &arguments[name])?);
        }
        for name in flags {
            if let Some(value) = arguments.get(name).filter(|v| !v.is_null()) {
                out.flags.insert(name.clone(), scalar(name, value)?);
            }
        }
        if let Some(value) = body
            .as_ref()
            .and_then(|k| arguments.get(k))
            .filter(|v| !v.is_null())
        {
            out.body = Some(Bytes::from(serde_json::to_vec(value).unwrap_or_default()));
        }
        Ok(out)
    }

    /// The `tools/call` result of the call's answer (module header).
    pub(crate) fn result(&self, answer: &[u8]) -> Value {
        let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
        if self.shape == Shape::Mcp {
            return match answer.get("body") {
                Some(result @ Value::Object(_)) => result.clone(),
                _ => text_result("the MCP tool returned no result", true),
            };
        }
        let failed = answer
            .get("statusCode")
            .and_then(Value::as_u64)
            .is_none_or(|status| status >= 400);
        json!({
            "content": [{"type": "text", "text": answer.to_string()}],
            "structuredContent": answer,
            "isError": failed,
        })
    }
}

/// A result carrying only `text`.
pub(crate) fn text_result(text: &str, is_error: bool) -> Value {
    json!({ "content": [{"type": "text", "text": text}], "isError": is_error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ContentType, McpBinding, Parameter, RequestBody, Safety};

    fn table_of(catalog: &Catalog) -> ToolTable {
        ToolTable::build(catalog, &NamePrefixes::new())
    }

    fn param(name: &str, location: ParamLocation, required: bool) -> Parameter {
        Parameter {
            name: name.into(),
            original_name: name.into(),
            location,
            required,
        }
    }

    fn http_tool(id: &str) -> Tool {
        Tool {
            id: id.into(),
            service_id: id.split(':').next().unwrap_or_default().into(),
            method: "POST".into(),
            path: "/t/{ticket}".into(),
            summary: "Update a ticket".into(),
            path_params: vec![param("ticket", ParamLocation::Path, true)],
            flags: vec![param("notify", ParamLocation::Query, false)],
            request_body: Some(RequestBody {
                required: true,
                content_types: vec![ContentType {
                    media_type: "application/json".into(),
                    schema: Some(
                        json!({"type": "object", "properties": {"title": {"type": "string"}}}),
                    ),
                }],
            }),
            safety: Safety {
                destructive: true,
                read_only: false,
                requires_approval: false,
                idempotent: true,
            },
            ..Tool::default()
        }
    }

    #[test]
    fn names_are_valid_stable_and_functions_of_the_id() {
        let valid = |n: &str| {
            !n.is_empty()
                && n.len() <= MAX_NAME_LEN
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        };
        assert_eq!(mcp_name("tickets:getHealth"), "tickets.getHealth");
        assert_eq!(mcp_name("github:repos/get"), "github.repos.get");
        assert_eq!(mcp_name("svc:get:/repos/{owner}"), "svc.get_.repos._owner_");
        for id in [
            "tickets:getHealth",
            "a:b:c",
            "github:repos/get",
            "svc:naïve",
            "svc:get:/repos/{owner}",
            &format!("svc:{}", "x".repeat(300)),
        ] {
            let name = mcp_name(id);
            assert!(valid(&name), "{id} -> {name}");
            assert_eq!(name, mcp_name(id), "stable");
        }
        // Long ids are cut with a digest, so two long ids sharing a prefix stay apart.
        let long = |tail: &str| mcp_name(&format!("svc:{}{tail}", "x".repeat(200)));
        assert_eq!(long("a").len(), MAX_NAME_LEN);
        assert_ne!(long("a"), long("b"));
    }

    #[test]
    fn colliding_names_are_left_out() {
        let catalog = Catalog {
            tools: vec![
                http_tool("a.b:c"),
                http_tool("a:b.c"),
                http_tool("t:x/y"),
                http_tool("t:x.y"),
                http_tool("t:ok"),
            ],
            ..Catalog::default()
        };
        let table = table_of(&catalog);
        assert!(table.get("a.b.c").is_none());
        assert!(table.get("t.x.y").is_none());
        assert_eq!(table.get("t.ok").unwrap().id, "t:ok");
        assert_eq!(table.list(|_| true).count(), 1);
    }

    fn mcp_tool(source: &str, name: &str) -> Tool {
        Tool {
            id: format!("{source}:{name}"),
            service_id: source.into(),
            backend: Backend::Mcp(McpBinding {
                source_id: source.into(),
                tool_name: name.into(),
                transport: "stdio".into(),
                input_wrapped: false,
            }),
            ..Tool::default()
        }
    }

    #[test]
    fn a_name_prefix_serves_mcp_tools_under_their_own_names_and_collisions_fail_closed() {
        let catalog = Catalog {
            tools: vec![
                mcp_tool("fs", "read_file"),
                mcp_tool("fs", "search"),
                mcp_tool("web", "search"),
                mcp_tool("web", "fetch/url"),
                mcp_tool("git", "status"),
                mcp_tool("plain", "status"),
                mcp_tool("long", &"y".repeat(200)),
                http_tool("svc:getItem"),
                mcp_tool("named", "getItem"),
            ],
            ..Catalog::default()
        };
        let prefixes: NamePrefixes = [
            ("fs", ""),
            ("web", ""),
            ("git", "git_"),
            ("long", ""),
            ("named", "svc."),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let table = ToolTable::build(&catalog, &prefixes);
        let id_of = |name: &str| table.get(name).map(|e| e.id.as_str());
        // The bare upstream name; the catalog id (what policy, grants and audit see) is kept.
        assert_eq!(id_of("read_file"), Some("fs:read_file"));
        assert_eq!(
            table.get("read_file").unwrap().definition["_meta"][TOOL_ID_META],
            "fs:read_file"
        );
        assert_eq!(id_of("fetch.url"), Some("web:fetch/url"));
        assert_eq!(id_of("git_status"), Some("git:status"));
        // A source without a prefix keeps the default name.
        assert_eq!(id_of("plain.status"), Some("plain:status"));
        // Over 128 characters: cut with the id's digest, still valid.
        let long = table.list(|id| id.starts_with("long:")).next().unwrap();
        assert_eq!(long["name"].as_str().unwrap().len(), MAX_NAME_LEN);
        // Two sources claiming one name: neither is served, and the reason names both.
        assert!(table.get("search").is_none());
        let why = table.conflict("search").unwrap();
        assert!(why.contains("tool fs:search of MCP source \"fs\""), "{why}");
        assert!(
            why.contains("tool web:search of MCP source \"web\""),
            "{why}"
        );
        assert!(why.contains("toolNamePrefix"), "{why}");
        // An MCP tool whose prefixed name is an OpenAPI tool's name: neither shadows the other.
        assert!(table.get("svc.getItem").is_none());
        let why = table.conflict("svc.getItem").unwrap();
        assert!(why.contains("tool svc:getItem of service \"svc\""), "{why}");
        assert!(
            why.contains("tool named:getItem of MCP source \"named\""),
            "{why}"
        );
        assert!(table.conflict("read_file").is_none());
        assert_eq!(table.list(|_| true).count(), 5);
    }

    #[test]
    fn http_tools_get_a_schema_annotations_and_argument_decoding() {
        let table = table_of(&Catalog {
            tools: vec![http_tool("t:update")],
            ..Catalog::default()
        });
        let entry = table.get("t.update").unwrap();
        let d = &entry.definition;
        assert_eq!(d["title"], "Update a ticket");
        assert_eq!(d["_meta"][TOOL_ID_META], "t:update");
        assert_eq!(d["description"], "Update a ticket");
        assert_eq!(d["annotations"]["destructiveHint"], true);
        assert_eq!(d["annotations"]["readOnlyHint"], false);
        assert_eq!(d["inputSchema"]["required"], json!(["ticket", "body"]));
        assert_eq!(
            d["inputSchema"]["properties"]["body"]["properties"]["title"]["type"],
            "string"
        );
        let args = |v: Value| entry.arguments(v.as_object().cloned().unwrap());
        let decoded = args(json!({"ticket": 7, "notify": true, "body": {"title": "x"}})).unwrap();
        assert_eq!(decoded.path_args, ["7"]);
        assert_eq!(decoded.flags["notify"], "true");
        assert_eq!(&decoded.body.unwrap()[..], br#"{"title":"x"}"#);
        assert!(args(json!({"ticket": 7, "body": {}, "extra": 1}))
            .unwrap_err()
            .contains("unknown argument"));
        assert!(args(json!({"body": {}}))
            .unwrap_err()
            .contains("missing required argument \"ticket\""));
        assert!(args(json!({"ticket": [1], "body": {}}))
            .unwrap_err()
            .contains("string, number or boolean"));
    }

    #[test]
    fn references_into_the_api_document_become_open_schemas_naming_them() {
        let mut tool = http_tool("t:refs");
        tool.request_body = Some(RequestBody {
            required: false,
            content_types: vec![ContentType {
                media_type: "application/json".into(),
                schema: Some(json!({ "type": "object", "properties": {
                    "owner": { "$ref": "#/components/schemas/User" },
                    "tags": { "type": "array", "items": { "$ref": "#/components/schemas/Tag", "description": "a tag" } }
                } })),
            }],
        });
        let table = table_of(&Catalog {
            tools: vec![tool],
            ..Catalog::default()
        });
        let body = &table.get("t.refs").unwrap().definition["inputSchema"]["properties"]["body"];
        assert!(!body.to_string().contains("$ref"), "{body}");
        assert_eq!(
            body["properties"]["owner"]["description"],
            "#/components/schemas/User of the API document"
        );
        assert_eq!(
            body["properties"]["tags"]["items"]["description"],
            "a tag (#/components/schemas/Tag of the API document)"
        );
        assert_eq!(body["properties"]["tags"]["type"], "array");
    }

    #[test]
    fn an_undescribed_operation_is_described_by_what_it_calls() {
        let mut tool = http_tool("t:bare");
        tool.summary.clear();
        let table = table_of(&Catalog {
            tools: vec![tool],
            ..Catalog::default()
        });
        let d = &table.get("t.bare").unwrap().definition;
        assert_eq!(d["description"], "POST /t/{ticket} (t:bare)");
        assert!(d.get("title").is_none());
    }

    #[test]
    fn results_carry_structured_content_and_upstream_errors_are_tool_errors() {
        let table = table_of(&Catalog {
            tools: vec![http_tool("t:update")],
            ..Catalog::default()
        });
        let entry = table.get("t.update").unwrap();
        let ok = entry.result(br#"{"statusCode":200,"body":{"id":1}}"#);
        assert_eq!(ok["isError"], false);
        assert_eq!(ok["structuredContent"]["body"]["id"], 1);
        assert_eq!(
            entry.result(br#"{"statusCode":404,"text":"no"}"#)["isError"],
            true
        );
        assert_eq!(entry.result(br#"{"statusCode":503}"#)["isError"], true);
    }

    #[test]
    fn known_success_schemas_become_an_output_schema_every_answer_conforms_to() {
        let mut tool = http_tool("t:get");
        tool.result_schema = Some(ResultSchema::Responses(std::sync::Arc::from(vec![
            (
                "200".to_owned(),
                json!({"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "integer"}, "owner": {"$ref": "#/components/schemas/User"}}}),
            ),
            ("2XX".to_owned(), json!({"type": "array"})),
        ])));
        let table = table_of(&Catalog {
            tools: vec![tool, http_tool("t:unknown")],
            ..Catalog::default()
        });
        assert!(table
            .get("t.unknown")
            .unwrap()
            .definition
            .get("outputSchema")
            .is_none());
        let entry = table.get("t.get").unwrap();
        let schema = &entry.definition["outputSchema"];
        assert_eq!(schema["type"], "object");
        assert!(!schema.to_string().contains("$ref"), "{schema}");
        let validator = jsonschema::validator_for(schema).unwrap();
        let conforms = |answer: &str| {
            let result = entry.result(answer.as_bytes());
            validator.is_valid(&result["structuredContent"])
        };
        assert!(conforms(
            r#"{"statusCode":200,"body":{"id":1,"owner":{"login":"a"}},"contentType":"application/json"}"#
        ));
        assert!(conforms(r#"{"statusCode":201,"body":[1,2]}"#), "2XX");
        assert!(conforms(r#"{"statusCode":204}"#), "no body");
        assert!(conforms(r#"{"statusCode":200,"text":"not json"}"#));
        assert!(
            conforms(r#"{"statusCode":404,"body":{"message":"Not Found"}}"#),
            "errors keep their body"
        );
        assert!(
            !conforms(r#"{"statusCode":200,"body":{"id":"one"}}"#),
            "the 200 schema applies"
        );
        assert!(
            !conforms(r#"{"statusCode":202,"body":{"id":1}}"#),
            "the 2XX schema applies"
        );
        assert!(!conforms(r#"{"body":{"id":1}}"#), "statusCode is required");
    }

    #[test]
    fn an_mcp_tools_output_schema_is_served_as_listed() {
        let mut tool = http_tool("m:sum");
        tool.backend = Backend::Mcp(McpBinding {
            source_id: "m".into(),
            tool_name: "sum".into(),
            transport: "stdio".into(),
            input_wrapped: false,
        });
        let schema = json!({"type": "object", "properties": {"n": {"type": "number"}}});
        tool.result_schema = Some(ResultSchema::Mcp(std::sync::Arc::new(
            schema.as_object().cloned().unwrap(),
        )));
        let table = table_of(&Catalog {
            tools: vec![tool],
            ..Catalog::default()
        });
        assert_eq!(
            table.get("m.sum").unwrap().definition["outputSchema"],
            schema
        );
    }

    #[test]
    fn mcp_tools_keep_their_schema_and_pass_results_through() {
        let mut tool = http_tool("m:echo");
        tool.path_params.clear();
        tool.flags.clear();
        tool.backend = Backend::Mcp(McpBinding {
            source_id: "m".into(),
            tool_name: "echo".into(),
            transport: "stdio".into(),
            input_wrapped: false,
        });
        let table = table_of(&Catalog {
            tools: vec![tool],
            ..Catalog::default()
        });
        let entry = table.get("m.echo").unwrap();
        assert_eq!(
            entry.definition["inputSchema"]["properties"]["title"]["type"],
            "string"
        );
        let decoded = entry
            .arguments(json!({"message": "hi"}).as_object().cloned().unwrap())
            .unwrap();
        assert_eq!(&decoded.body.unwrap()[..], br#"{"message":"hi"}"#);
        let result =
            entry.result(br#"{"statusCode":200,"body":{"content":[{"type":"text","text":"hi"}]}}"#);
        assert_eq!(result["content"][0]["text"], "hi");
    }
}
