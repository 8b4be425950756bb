//! One OpenAPI document -> the tools of one service (contract 4.2, with the fixes below).
//!
//! | field | rule |
//! |---|---|
//! | methods | all eight (`get put post delete patch head options trace`); HEAD/OPTIONS/TRACE are read-only and idempotent |
//! | operationId | the document's, else `lower(method):rawPath` |
//! | id | `<serviceId>:<operationId>`, except that each whitespace run inside the operationId becomes `_` (`Get account` -> `svc:Get_account`; about 1% of real documents use prose as operationIds, and scopes are space-separated); `operationId` keeps the original. Control characters and `*` are refused (they collide with pattern syntax); a repeated id is an error naming both operations |
//! | group | `x-cli-group` -> slug(first tag) -> slug(first non-`{}` path segment) -> `misc` |
//! | command | `x-cli-name` -> slug(operationId) -> inferred verb |
//! | pathParams | in declaration order (path-item, then operation), as the reference runtime binds positional `pathArgs`; a template variable nobody declared is appended as a required parameter so the tool stays callable |
//! | flags | query, header, cookie; an operation parameter replaces the path-item one with the same `(name, in)`; `Accept`, `Content-Type` and `Authorization` headers are ignored (OpenAPI says so) |
//! | safety | method defaults, overlaid field by field by `x-cli-safety` |
//! | result schema | the JSON schemas of the success responses (module `responses`) |
//!
//! `x-open-cli-backend` is never read from real documents (only MCP builds set `backend`).

use std::collections::HashMap;

use serde_json::Value;
use url::Url;

use super::model::{ContentType, ParamLocation, Parameter, RequestBody, Safety, Tool};
use super::openapi::{
    Document, Operation, ParameterObject, PathItem, RequestBodyObject, Server, METHODS,
};
use super::responses;
use super::security::{self, SchemeCache};
use super::servers;
use super::slug::slugify;

/// What one document contributes.
#[derive(Debug, Default)]
pub struct ServiceTools {
    /// `info.title`.
    pub title: String,
    /// Document-level servers.
    pub servers: Vec<String>,
    /// Tools, in document order.
    pub tools: Vec<Tool>,
    /// Things the operator should look at (overlay targets matching nothing, MCP tools dropped).
    pub warnings: Vec<String>,
    /// MCP tools mapped but held back ([`crate::McpListing::withheld`]).
    pub withheld: Vec<crate::WithheldTool>,
}

/// Reasons a document yields no tools.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// Reading the document failed.
    #[error(transparent)]
    Document(#[from] super::openapi::DocumentError),
    /// Bad servers.
    #[error(transparent)]
    Server(#[from] super::servers::ServerError),
    /// Two operations produce the same tool id.
    #[error("duplicate tool id {id:?}: {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// First operation (`METHOD path`).
        first: String,
        /// Second operation.
        second: String,
    },
    /// A tool id that would break pattern matching.
    #[error("invalid tool id {id:?} ({operation}): ids must not contain whitespace, control characters or '*'")]
    InvalidId {
        /// The id.
        id: String,
        /// The operation (`METHOD path`).
        operation: String,
    },
}

/// Whether `id` is acceptable as a tool id.
pub fn valid_tool_id(id: &str) -> bool {
    !id.is_empty()
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*')
}

/// Normalize a whole document for `service_id`. `spec_url` is set for remote documents.
pub fn normalize(
    doc: &Document,
    service_id: &str,
    spec_url: Option<&Url>,
) -> Result<ServiceTools, NormalizeError> {
    let doc_servers: Vec<Server> = match doc.root.get("servers") {
        Some(v) => doc.read(v, &|| "servers".into())?,
        None => Vec::new(),
    };
    let document_servers = servers::document_servers(&doc_servers, spec_url)?;
    let doc_security: Option<Vec<super::openapi::SecurityRequirement>> =
        match doc.root.get("security") {
            Some(v) => Some(doc.read(v, &|| "security".into())?),
            None => None,
        };
    let mut schemes = SchemeCache::default();
    let mut tools = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();

    for (path, raw_item) in doc.paths() {
        let item_value = doc.resolve(raw_item)?;
        let item: PathItem = doc.read(item_value, &|| format!("paths.{path}"))?;
        let item_servers = match &item.servers {
            Some(s) if !s.is_empty() => Some(servers::resolve(s, spec_url)?),
            _ => None,
        };
        let item_params = read_params(doc, &item.parameters, &|| {
            format!("paths.{path}.parameters")
        })?;
        for method in METHODS {
            let Some(raw_op) = item_value.get(method) else {
                continue;
            };
            let at = || format!("paths.{path}.{method}");
            let op: Operation = doc.read(raw_op, &at)?;
            if op.cli_ignore {
                continue;
            }
            let operation = format!("{} {path}", method.to_ascii_uppercase());
            let mut tool = tool_for(doc, service_id, method, path, &op, &item_params, &at)?;
            tool.result_schema = responses::success_schemas(doc, raw_op);
            if !valid_tool_id(&tool.id) {
                return Err(NormalizeError::InvalidId {
                    id: tool.id,
                    operation,
                });
            }
            if let Some(first) = seen.insert(tool.id.clone(), operation.clone()) {
                return Err(NormalizeError::DuplicateId {
                    id: tool.id,
                    first,
                    second: operation,
                });
            }
            let security = op.security.as_ref().or(doc_security.as_ref());
            if let Some(security) = security {
                (tool.auth_alternatives, tool.auth) =
                    security::extract(doc, &mut schemes, security)?;
            }
            tool.servers = match &op.servers {
                Some(s) if !s.is_empty() => servers::resolve(s, spec_url)?,
                _ => item_servers
                    .clone()
                    .unwrap_or_else(|| document_servers.clone()),
            };
            tools.push(tool);
        }
    }
    Ok(ServiceTools {
        title: doc.title().to_owned(),
        servers: document_servers,
        tools,
        warnings: Vec::new(),
        withheld: Vec::new(),
    })
}

fn tool_for(
    doc: &Document,
    service_id: &str,
    method: &str,
    path: &str,
    op: &Operation,
    item_params: &[ParameterObject],
    at: &dyn Fn() -> String,
) -> Result<Tool, NormalizeError> {
    let operation_id = match op.operation_id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("{method}:{path}"),
    };
    let op_params = read_params(doc, &op.parameters, &|| format!("{}.parameters", at()))?;
    let (path_params, flags) = split_params(path, item_params, op_params);
    let request_body = match &op.request_body {
        Some(raw) => {
            let body: RequestBodyObject = doc.read(raw, &|| format!("{}.requestBody", at()))?;
            Some(RequestBody {
                required: body.required,
                content_types: body
                    .content
                    .into_iter()
                    .map(|(media_type, m)| ContentType {
                        media_type,
                        schema: m.schema,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let first_tag = op
        .tags
        .first()
        .and_then(Value::as_str)
        .map(slugify)
        .filter(|s| !s.is_empty());
    let group = op
        .cli_group
        .clone()
        .filter(|g| !g.is_empty())
        .or(first_tag)
        .or_else(|| {
            path.split('/')
                .find(|s| !s.is_empty() && !s.starts_with('{'))
                .map(slugify)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "misc".to_owned());
    let command = op
        .cli_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| Some(slugify(&operation_id)).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| inferred_verb(method, path).to_owned());
    Ok(Tool {
        id: format!("{service_id}:{}", id_safe(&operation_id)),
        service_id: service_id.to_owned(),
        operation_id,
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        group,
        command,
        aliases: op.cli_aliases.clone(),
        summary: op.summary.clone().unwrap_or_default(),
        description: op
            .cli_description
            .clone()
            .or_else(|| op.description.clone())
            .unwrap_or_default(),
        hidden: op.cli_hidden,
        path_params,
        flags,
        request_body,
        safety: safety(method, op),
        output: op.cli_output.clone(),
        pagination: op.cli_pagination.clone(),
        retry: op.cli_retry.clone(),
        ..Tool::default()
    })
}

/// The operationId with surrounding whitespace trimmed and inner whitespace runs turned into `_`.
fn id_safe(operation_id: &str) -> String {
    operation_id
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

fn inferred_verb(method: &str, path: &str) -> &'static str {
    match method {
        "get" if path.contains('{') => "get",
        "get" => "list",
        "post" => "create",
        "put" => "update",
        "patch" => "patch",
        "delete" => "delete",
        "head" => "head",
        "options" => "options",
        _ => "trace",
    }
}

fn safety(method: &str, op: &Operation) -> Safety {
    let read_only = matches!(method, "get" | "head" | "options" | "trace");
    let base = Safety {
        destructive: method == "delete",
        read_only,
        requires_approval: false,
        idempotent: read_only || matches!(method, "put" | "delete"),
    };
    op.cli_safety.map_or(base, |o| o.apply(base))
}

fn read_params(
    doc: &Document,
    raw: &[Value],
    at: &dyn Fn() -> String,
) -> Result<Vec<ParameterObject>, NormalizeError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        out.push(doc.read(value, &|| format!("{}[{i}]", at()))?);
    }
    Ok(out)
}

/// Merge path-item and operation parameters and split them into path params and flags.
fn split_params(
    path: &str,
    item: &[ParameterObject],
    op: Vec<ParameterObject>,
) -> (Vec<Parameter>, Vec<Parameter>) {
    let overridden = |p: &ParameterObject| {
        op.iter()
            .any(|o| o.name == p.name && o.location == p.location)
    };
    let mut merged: Vec<&ParameterObject> = item.iter().filter(|p| !overridden(p)).collect();
    for p in &op {
        if !merged
            .iter()
            .any(|m| m.name == p.name && m.location == p.location)
        {
            merged.push(p);
        }
    }
    let mut declared_path = Vec::new();
    let mut flags = Vec::new();
    for p in merged {
        let location = match p.location.as_str() {
            "path" => ParamLocation::Path,
            "query" => ParamLocation::Query,
            "header" => ParamLocation::Header,
            "cookie" => ParamLocation::Cookie,
            _ => continue,
        };
        if location == ParamLocation::Header
            && ["accept", "content-type", "authorization"]
                .contains(&p.name.to_ascii_lowercase().as_str())
        {
            continue;
        }
        let slug = slugify(p.cli_name.as_deref().unwrap_or(&p.name));
        let param = Parameter {
            name: if slug.is_empty() {
                p.name.clone()
            } else {
                slug
            },
            original_name: p.name.clone(),
            location,
            required: p.required || location == ParamLocation::Path,
        };
        if location == ParamLocation::Path {
            declared_path.push(param);
        } else {
            flags.push(param);
        }
    }
    // Declaration order, as the reference runtime and its client bind positional `pathArgs`;
    // a template variable nobody declared is appended (template order) so the tool stays callable.
    let mut path_params = declared_path;
    for var in template_vars(path) {
        if path_params.iter().any(|p| p.original_name == var) {
            continue;
        }
        let slug = slugify(var);
        path_params.push(Parameter {
            name: if slug.is_empty() {
                var.to_owned()
            } else {
                slug
            },
            original_name: var.to_owned(),
            location: ParamLocation::Path,
            required: true,
        });
    }
    (path_params, flags)
}

fn template_vars(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
