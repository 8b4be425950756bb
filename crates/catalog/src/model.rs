//! The Normalized Tool Catalog (NTC): the JSON shape served by `GET /v1/catalog/effective`.
//!
//! Field names and order follow the open-cli runtime contract (catalog version `1.0.0`) so its
//! client keeps working. The catalog is immutable once built and shared behind an `Arc`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the NTC format.
pub const CATALOG_VERSION: &str = "1.0.0";

/// The whole catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Always [`CATALOG_VERSION`].
    pub catalog_version: String,
    /// RFC 3339 build time.
    pub generated_at: String,
    /// sha256 over the per-document fingerprints.
    pub source_fingerprint: String,
    /// Sources that contributed (or tried to).
    pub sources: Vec<CatalogSource>,
    /// Services, sorted by id.
    pub services: Vec<CatalogService>,
    /// Tools, sorted by id.
    pub tools: Vec<Tool>,
    /// Workflows (omitted when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<Workflow>,
    /// `discover` plus one view per agent profile.
    pub effective_views: Vec<EffectiveView>,
    /// MCP tools held back from the catalog (a definition changed since it was pinned), by
    /// tool id; never served, so a call by id can say why it is refused.
    #[serde(skip)]
    pub withheld: Vec<WithheldTool>,
}

/// A tool left out of the catalog until an operator accepts its definition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WithheldTool {
    /// The tool as it would be served (id, binding), built from the withheld definition.
    pub tool: Tool,
    /// Why it is held back.
    pub why: String,
}

/// A source entry with its provenance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSource {
    /// Source id (config key).
    pub id: String,
    /// Source type as written in config (`openapi`, `mcp`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was loaded from; always present (empty for an MCP source, which has a
    /// transport instead), as the NTC schema requires.
    #[serde(default)]
    pub uri: String,
    /// How it was found.
    pub provenance: Provenance,
}

/// How a source was found and fetched.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `explicit`, `rfc8631` or `rfc9727`.
    pub method: String,
    /// RFC 3339 time of the load (the first fetch's `fetchedAt` when there is one).
    pub at: String,
    /// Every remote document fetched for the source, in fetch order (omitted when none:
    /// local files are not fetches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetches: Vec<FetchRecord>,
}

/// One remote document fetched for a source, with the cache metadata that decided it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchRecord {
    /// Document URL, without userinfo or query.
    pub url: String,
    /// RFC 3339 time the body was fetched or last revalidated.
    pub fetched_at: String,
    /// The source's provenance method (`explicit`, `rfc8631`, `rfc9727`).
    pub method: String,
    /// `GET` or `HEAD`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_method: String,
    /// Status of the fetch that produced the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// `miss`, `fresh_hit`, `revalidated_hit`, `refreshed` or `stale_hit` (omitted without a
    /// cache directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_outcome: Option<String>,
    /// `ETag` of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `Cache-Control` as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// RFC 3339 time after which the body is revalidated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Served from the cache after the origin failed (or a `manualOnly` entry past its age).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// A service: a named group of tools from one source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogService {
    /// Service id (the tool id prefix).
    pub id: String,
    /// Display alias (defaults to the id).
    pub alias: String,
    /// The source id.
    pub source_id: String,
    /// `info.title` of the document.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Document-level servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

/// One executable tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// `<serviceId>:<operationId>`.
    pub id: String,
    /// Owning service.
    pub service_id: String,
    /// The OpenAPI operationId, or the fallback `<method>:<path>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation_id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template, e.g. `/repos/{owner}/{repo}`.
    pub path: String,
    /// CLI group.
    pub group: String,
    /// CLI command.
    pub command: String,
    /// `x-cli-aliases`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Operation summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Operation description (or `x-cli-description`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `x-cli-hidden`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Path parameters, in the order they appear in the path template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_params: Vec<Parameter>,
    /// Query, header and cookie parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Parameter>,
    /// Request body, if the operation takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<RequestBody>,
    /// Security: ordered OR-alternatives of AND-requirements. An alternative with no
    /// requirements means "no credentials needed" (the OpenAPI `{}` entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_alternatives: Vec<AuthAlternative>,
    /// Legacy flattened, deduplicated list of every requirement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<AuthRequirement>,
    /// Safety flags.
    pub safety: Safety,
    /// `x-cli-output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// `x-cli-pagination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<serde_json::Value>,
    /// `x-cli-retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<serde_json::Value>,
    /// Guidance from skill manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<serde_json::Value>,
    /// Effective servers (operation > path item > document), variables substituted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// What runs the tool: its HTTP operation (the default, not served) or an MCP tool.
    #[serde(default, skip_serializing_if = "Backend::is_http")]
    pub backend: Backend,
    /// What a successful call answers with, where the source says so: kept for the MCP door's
    /// `outputSchema`, not served by the catalog routes (it would add to every rendered view).
    #[serde(skip)]
    pub result_schema: Option<ResultSchema>,
}

/// The schema of what a tool answers on success (shared, so cloning a tool stays cheap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultSchema {
    /// An OpenAPI operation's JSON success responses: `(status key, schema as written)`, the
    /// key `200`..`299` or `2XX`, in the document's order ([`crate::normalize`]).
    Responses(std::sync::Arc<[(String, serde_json::Value)]>),
    /// An MCP tool's own `outputSchema` (its root is `type: object`, as MCP requires).
    Mcp(std::sync::Arc<serde_json::Map<String, serde_json::Value>>),
}

/// What runs a tool. Served as `backend` only for MCP tools, as
/// `{"kind":"mcp","sourceId","toolName","transport","inputWrapped"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Backend {
    /// The tool's OpenAPI operation, called over HTTP.
    #[default]
    Http,
    /// A tool of an MCP source, called on the source's pooled session.
    Mcp(McpBinding),
}

impl Backend {
    /// Whether the tool is an HTTP operation (then `backend` is not served).
    pub fn is_http(&self) -> bool {
        matches!(self, Self::Http)
    }
}

/// An MCP tool's binding to its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpBinding {
    /// The MCP source whose session runs the tool.
    pub source_id: String,
    /// The tool's name on the server.
    pub tool_name: String,
    /// The source's transport (`stdio`, `streamable-http`, `sse`), for the reader.
    pub transport: String,
    /// The input schema was not an object, so the request body is `{"input": ...}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_wrapped: bool,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    /// Substituted into the path template.
    Path,
    /// Query string.
    Query,
    /// Request header.
    Header,
    /// Cookie.
    Cookie,
}

/// A path parameter or flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// CLI name (slug of `x-cli-name` or the parameter name).
    pub name: String,
    /// Name as written in the document (used on the wire).
    pub original_name: String,
    /// Location.
    pub location: ParamLocation,
    /// Required by the document.
    pub required: bool,
}

/// Request body description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestBody {
    /// Whether the body is required.
    pub required: bool,
    /// Accepted media types, sorted.
    pub content_types: Vec<ContentType>,
}

/// One accepted media type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentType {
    /// e.g. `application/json`.
    pub media_type: String,
    /// The schema as written (references inside it are kept as references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// One OR-alternative: every requirement in it must be satisfied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthAlternative {
    /// AND-requirements, sorted by scheme name so application order is deterministic.
    pub requirements: Vec<AuthRequirement>,
}

/// One security requirement, resolved from `components.securitySchemes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRequirement {
    /// Scheme name (the key in `securitySchemes`).
    pub name: String,
    /// `apiKey`, `http`, `oauth2`, `openIdConnect`, `mutualTLS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `http` scheme (`bearer`, `basic`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    /// `apiKey` location.
    #[serde(rename = "in", default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// `apiKey` parameter name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub param_name: String,
    /// Scopes the operation requires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// OAuth flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oauth_flows: Vec<OAuthFlow>,
    /// OIDC discovery URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub open_id_connect_url: String,
}

/// An OAuth flow declared by a scheme.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthFlow {
    /// `authorizationCode`, `clientCredentials`, `implicit` or `password`.
    pub mode: String,
    /// Authorization endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authorization_url: String,
    /// Token endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_url: String,
    /// Refresh endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_url: String,
}

/// Safety flags used by policy and clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Safety {
    /// Deletes or irreversibly changes state (DELETE by default).
    pub destructive: bool,
    /// Changes nothing (GET by default).
    pub read_only: bool,
    /// Needs approval before it runs.
    pub requires_approval: bool,
    /// Safe to retry (GET, PUT, DELETE by default).
    pub idempotent: bool,
}

/// An Arazzo workflow bound to catalog tools ([`crate::workflows`]). `workflowId` and
/// `steps[].{stepId, toolId}` are the contract's shape; the other members appear only when the
/// document uses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Workflow id.
    pub workflow_id: String,
    /// The JSON Schema of the workflow's inputs, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<serde_json::Value>,
    /// Steps in order.
    pub steps: Vec<WorkflowStep>,
    /// Workflow outputs: name -> runtime expression.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// One workflow step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    /// Step id.
    pub step_id: String,
    /// Bound tool.
    pub tool_id: String,
    /// Arguments of the call: literals or runtime expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<StepParameter>,
    /// The JSON request body (strings in it may be runtime expressions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<serde_json::Value>,
    /// Conditions that must all hold for the step to succeed (default: a 2xx status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_criteria: Vec<SuccessCriterion>,
    /// Step outputs: name -> runtime expression.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// One argument of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepParameter {
    /// The parameter's name as the document declares it.
    pub name: String,
    /// Where it goes.
    #[serde(rename = "in")]
    pub location: ParamLocation,
    /// A literal, a runtime expression (`$inputs.id`) or a template (`"T-{$inputs.id}"`).
    pub value: serde_json::Value,
}

/// A `simple` Arazzo criterion: `<expression> <op> <literal>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuccessCriterion {
    /// The condition as written.
    pub condition: String,
}

/// A named subset of the catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveView {
    /// `discover` or a profile name.
    pub name: String,
    /// The profile's mode (empty for profiles without one).
    pub mode: String,
    /// Tools in the view.
    pub tools: Vec<Tool>,
}
