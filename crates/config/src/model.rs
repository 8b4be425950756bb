//! The `.cli.json` data model, shared by every scope (managed, user, project, local).
//!
//! Every field is optional here because one scope may set only part of a config; the merge in
//! [`super::merge`] combines scopes field by field and [`super::validate`] enforces what the
//! merged result must contain. Unknown fields are rejected (`deny_unknown_fields`), and the JSON
//! Schema published in `docs/config.schema.json` is generated from these types, so the schema
//! and the loader cannot drift apart.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `.cli.json` document (a single scope, or the merged effective config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("anyOf" = [
    { "required": ["sources"] },
    { "required": ["mcpServers"] },
    { "required": ["runtime"] }
]))]
pub struct Config {
    /// Optional JSON Schema reference for editors; ignored by the loader.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Config format version, e.g. `"1.0.0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub cli: Option<String>,
    /// Default catalog mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub mode: Option<ModeConfig>,
    /// Runtime server and client settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeConfig>,
    /// Where tools come from, keyed by source id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<BTreeMap<String, Source>>,
    /// `.mcp.json`-compatible MCP server shorthand, normalized into `sources` + `services`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<BTreeMap<String, McpServer>>,
    /// Binds a source to a service id, the prefix of every tool id it contributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<BTreeMap<String, Service>>,
    /// Curated tool sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curation: Option<Curation>,
    /// Agent profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Agents>,
    /// Deny lists, approval rules and switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Upstream credentials keyed `<serviceId>.<schemeName>` or `<schemeName>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, Secret>>,
    /// WebAssembly component plugins (secret sources, policy evaluators, auth profiles),
    /// keyed by the name that `secrets.*.plugin`, `policy.plugins` and
    /// `runtime.server.auth.plugin` use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<BTreeMap<String, PluginConfig>>,
}

/// `plugins.<name>`: one WebAssembly component and what it may reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginConfig {
    /// The `.wasm` component, relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub path: Option<String>,
    /// Expected sha256 of the file (64 hex digits); a different file refuses to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<String>,
    /// What the plugin may reach. Nothing is granted by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<PluginGrants>,
    /// Per-call limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PluginLimits>,
    /// Instances prepared ahead of calls (each still serves exactly one call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<PluginPrewarm>,
    /// The plugin's own configuration, passed to its `init` as JSON and checked against the
    /// JSON Schema the plugin declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `plugins.<name>.grants`: capabilities, deny by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginGrants {
    /// Environment variables the plugin may read (their host values at load time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Directories (relative to the config file) the plugin may read, never write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// Origins (`https://host:port`, exact) `outbound-http` may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<String>>,
}

/// `plugins.<name>.limits`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory per call, in MiB (default 16, at most 256).
    #[serde(default, rename = "memoryMiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub memory_mib: Option<u64>,
    /// Wall-clock budget of `init`, and again of the kind's function, in milliseconds (default 100,
    /// at most 60000).
    #[serde(default, rename = "timeoutMs", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: Option<u64>,
    /// Calls of this plugin running at once (default 16, at most 128, the instance pool's
    /// size); more wait within their budget, then fail closed (`plugin_busy`).
    #[serde(
        default,
        rename = "maxConcurrent",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 128))]
    pub max_concurrent: Option<u32>,
}

/// `plugins.<name>.prewarm`: fresh instances instantiated and `init`-ed off the request path.
///
/// Each prepared instance still serves exactly one call and is then dropped, so callers share
/// nothing; what changes is *when* `init(config)` runs: up to `maxAgeMs` before the call instead
/// of during it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginPrewarm {
    /// Instances kept ready (default 2, at most 16; 0 runs `init` inside every call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub instances: Option<u32>,
    /// Oldest prepared instance a call may use, in milliseconds (default 5000, 1..=600000):
    /// the most that state read in `init` (a rotated secrets file, say) can lag behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub max_age_ms: Option<u64>,
}

/// Catalog mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every tool is visible.
    Discover,
    /// Only tools allowed by the active profile's tool set are visible and executable.
    Curated,
}

/// `mode` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModeConfig {
    /// The mode used when a request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub default: Option<Mode>,
}

/// `runtime` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// Must be `"remote"` when present (the only runtime mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Client-side settings (used by the open-cli client; validated, otherwise ignored here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<serde_json::Value>,
    /// Removed local-daemon settings; rejected with a message when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("deprecated" = true))]
    pub local: Option<serde_json::Value>,
    /// Server-side settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerConfig>,
}

/// `runtime.server` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    /// Caller authentication (bearer tokens). Kept as JSON here so scopes merge key by key;
    /// its shape is [`super::auth::ServerAuthConfig`]; it is typed and validated by `authn::settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<super::auth::ServerAuthConfig>")]
    pub auth: Option<serde_json::Value>,
    /// Upstream execution limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamLimits>,
    /// URLs callers use to reach this runtime besides its listen address and the loopback names
    /// (a DNS name, a reverse proxy's `https://portcullis.example.com`). A request whose `Host`
    /// names none of them is refused with 421 (DNS rebinding defence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_urls: Option<Vec<String>>,
    /// Browser origins allowed to call the runtime (CORS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// Connection timeouts and caps, applied before any request is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionLimits>,
}

/// `runtime.server.cors`: the only browser origins that may call the runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`, `http://localhost:3000`); no wildcards, no
    /// `null`. Every other `Origin` is refused with 403 (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
}

/// `runtime.server.connections`: limits that hold before authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionLimits {
    /// Time a client has to send a whole request head, in milliseconds (default 10000); also
    /// how long an idle keep-alive connection waits for its next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_ms: Option<u64>,
    /// A connection on which no byte moves for this long while no request is being answered
    /// is closed, and a request body that stalls this long is refused (default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// Open connections at once (default 1024); more are refused with 503 and closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Open connections at once from one client IP address (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<u32>,
}

/// `runtime.server.upstream`: limits applied to every upstream HTTP call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamLimits {
    /// TCP+TLS connect timeout in milliseconds (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Whole-call timeout in milliseconds, body included (default 30000). Also bounds each
    /// request to an MCP server (default 60000 there when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Largest upstream response body accepted, in bytes (default 10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Attempts for idempotent methods answered with 429/503 (default 3, 1 disables retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Longest `Retry-After` honoured, in milliseconds (default 5000); longer waits are not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_after_ms: Option<u64>,
}

/// Kind of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SourceType {
    /// An OpenAPI 3.0/3.1 document (JSON or YAML) at `uri`.
    Openapi,
    /// An RFC 8631 service root advertising its description by `Link` headers.
    ServiceRoot,
    /// An RFC 9727 API catalog.
    ApiCatalog,
    /// An MCP server.
    Mcp,
}

/// `sources.<id>`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// Source kind.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub kind: Option<SourceType>,
    /// Document location: a path relative to the config, `file://`, or `http(s)://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Disabled sources contribute no tools (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Remote document caching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshConfig>,
    /// MCP transport (MCP sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<McpTransport>,
    /// MCP tools hidden from the catalog (MCP sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_tools: Option<Vec<String>>,
    /// MCP transport OAuth (MCP sources with streamable-http only). Kept as JSON so every
    /// problem is reported with its path by the MCP rules; typed as [`McpOAuth`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<McpOAuth>")]
    pub oauth: Option<serde_json::Value>,
    /// Cross-origin redirects calls of this source may follow (OpenAPI sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirects: Option<SourceRedirects>,
    /// MCP sources only: accepted tool definitions, tool name -> `sha256:<64 lowercase hex>`
    /// (the digest `portcullis mcp accept` prints). A pin here overrides the one the runtime
    /// recorded: a listed definition with another digest is withheld from the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_pins: Option<BTreeMap<String, String>>,
    /// MCP sources only: what this source's tool names start with at Portcullis's own MCP
    /// server (`/mcp`), followed by the upstream tool's name. Default: the source id and `.`
    /// (`fs.read_file`); `""` serves the tools under their upstream names (`read_file`). Only
    /// `A-Z a-z 0-9 _ . -`, at most 64 characters. Catalog ids, scopes, policy patterns,
    /// approval grants and audit records keep naming the tool `<source id>:<tool>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name_prefix: Option<String>,
    /// `openapi` sources fetched by URL only: pin the document's digest on first fetch; a
    /// changed document keeps the last accepted one in the catalog until an operator accepts it
    /// (`portcullis openapi accept`). Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<bool>,
}

/// `sources.<id>.redirects`: which upstream redirects calls of this source may follow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceRedirects {
    /// Origins (`scheme://host[:port]`) an uncredentialed call may be redirected to, besides
    /// the tool's own origin (default: none). Never followed into a loopback, private or
    /// link-local network unless the tool's server is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
}

/// `sources.<id>.oauth`: client-credentials OAuth for an MCP transport. The runtime obtains
/// the access token and owns the `Authorization` header of every request to the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpOAuth {
    /// Must be `clientCredentials` (checked by the MCP rules, which name the problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Issuer whose OIDC discovery document names the token endpoint (when `tokenURL` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Token endpoint.
    #[serde(default, rename = "tokenURL", skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Client id reference (a secret: `env`, `file`, `literal`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Secret>,
    /// Client secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Audience, also sent as the RFC 8707 `resource` indicator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `instance` (default: files under `<stateDir>/oauth`, mode 0600) or `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["instance", "memory"]))]
    pub token_storage: Option<String>,
    /// Client authentication at the token endpoint, `client_secret_basic` or
    /// `client_secret_post`; when unset, chosen from the discovered
    /// `token_endpoint_auth_methods_supported` (post if listed, else basic if listed), else post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["client_secret_basic", "client_secret_post"]))]
    pub client_auth_method: Option<String>,
    /// Not allowed (interactive flows are not offered for MCP transports); rejected by name.
    #[serde(
        default,
        rename = "authorizationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_url: Option<String>,
    /// Not allowed; rejected by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Not allowed; rejected by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_port: Option<u16>,
    /// Not allowed; rejected by name.
    #[serde(
        default,
        rename = "redirectURI",
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_uri: Option<String>,
}

/// `sources.<id>.refresh`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshConfig {
    /// Seconds a fetched document is considered fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
    /// Only refetch on an explicit `/v1/refresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_only: Option<bool>,
}

/// MCP transport settings.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpTransport {
    /// `stdio`, `sse` or `streamable-http`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["stdio", "sse", "streamable-http"]))]
    pub kind: Option<String>,
    /// stdio: program to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// stdio: variables set for the child. The child starts with a cleared environment: only
    /// `PATH`, `HOME`, `TMPDIR`, `TZ`, the locale (`LANG`, `LANGUAGE`, `LC_*`), `passEnv` and these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// stdio: names of the runtime's own environment variables passed to the child (opt-in; the
    /// child sees no other variable of the runtime, so no other service's credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_env: Option<Vec<String>>,
    /// sse / streamable-http: endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Static request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Headers whose values come from `secrets` (header name -> secret key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_secrets: Option<BTreeMap<String, String>>,
}

/// `mcpServers.<name>` shorthand.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpServer {
    /// `stdio`, `sse` or `streamable-http` (default `stdio`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["stdio", "sse", "streamable-http"]))]
    pub kind: Option<String>,
    /// stdio: program to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// stdio: variables set for the child. The child starts with a cleared environment: only
    /// `PATH`, `HOME`, `TMPDIR`, `TZ`, the locale (`LANG`, `LANGUAGE`, `LC_*`), `passEnv` and these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// stdio: names of the runtime's own environment variables passed to the child (opt-in; the
    /// child sees no other variable of the runtime, so no other service's credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_env: Option<Vec<String>>,
    /// sse / streamable-http: endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Static request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Headers whose values come from `secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_secrets: Option<BTreeMap<String, String>>,
    /// MCP tools hidden from the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_tools: Option<Vec<String>>,
    /// Transport OAuth (streamable-http only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<McpOAuth>")]
    pub oauth: Option<serde_json::Value>,
}

/// `services.<id>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    /// The source this service exposes (a key of `sources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub source: Option<String>,
    /// Display alias (defaults to the service id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// OpenAPI overlay documents applied before normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlays: Option<Vec<String>>,
    /// Skill manifests (tool guidance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<String>>,
    /// Arazzo workflow documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<Vec<String>>,
}

/// `curation` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Curation {
    /// Named tool sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_sets: Option<BTreeMap<String, ToolSet>>,
}

/// A curated tool set: tool-id patterns to allow and deny.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolSet {
    /// Patterns a tool must match (when non-empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Patterns that remove a tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
}

/// `agents` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Agents {
    /// Named profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<BTreeMap<String, AgentProfile>>,
    /// Profile used in curated mode when a request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
}

/// `agents.profiles.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentProfile {
    /// Mode this profile runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The tool set (a key of `curation.toolSets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_set: Option<String>,
}

/// `policy` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Tool-id patterns that are never executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    /// Tool-id patterns that need approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<Vec<String>>,
    /// Allow `exec` secret sources (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_exec_secrets: Option<bool>,
    /// Policy-evaluator plugins (keys of `plugins`) all asked after the built-in rules and
    /// before approval; any deny wins, and a plugin failure denies (`policy_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
    /// Time budget, in milliseconds, for all policy-evaluator plugins of one request together
    /// (default 50). Running out of it denies the call (`policy_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub plugin_budget_ms: Option<u64>,
    /// How approval is given: the request's `approval: true` flag (default), or single-use
    /// grants issued through `POST /v1/approvals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Approvals>,
    /// Deny patterns contributed by the managed scope. Not serializable: set by the merge only.
    #[serde(skip)]
    #[schemars(skip)]
    pub managed_deny: Vec<String>,
}

/// How approval is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalMode {
    /// The request's `approval: true` flag (the open-cli contract).
    #[default]
    Flag,
    /// A single-use grant issued by an approver through `POST /v1/approvals`; the flag alone
    /// is not enough.
    Grant,
}

/// `policy.approvals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approvals {
    /// `flag` (default) or `grant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ApprovalMode>,
    /// The scope an approver's token must hold to issue grants (default `approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_scope: Option<String>,
    /// How long a grant stays usable, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl_seconds: Option<u64>,
    /// Refuse a grant whose approver is the principal it is for (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_self_approval: Option<bool>,
}

/// Where a secret value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SecretType {
    /// `value` is the secret itself (for development; prefer any other source).
    Literal,
    /// `value` names an environment variable; unset or empty is an error.
    Env,
    /// `value` is a file path; one trailing newline is trimmed.
    File,
    /// `value` names an OS keychain item: `service=<s> account=<a>` (any `attribute=value`
    /// pairs on Linux; `service` and `account` on macOS), or the legacy `service/account`.
    OsKeychain,
    /// `command` (argv, no shell) prints the secret on stdout; one trailing newline is
    /// trimmed. Refused at load unless `policy.allowExecSecrets` is true.
    Exec,
    /// An OAuth 2.0 access token acquired by the runtime.
    Oauth2,
    /// A WebAssembly secret-source plugin named by `plugin`; `value` is its reference.
    Plugin,
}

/// A `secrets.<key>` entry: a static secret reference or an OAuth 2.0 client.
///
/// `Debug` is written by hand: for `literal` secrets `value` *is* the secret, so it is never
/// printed (nested `clientId`/`clientSecret` entries redact the same way).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Secret {
    /// Source kind.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub kind: Option<SecretType>,
    /// Source-specific reference (variable name, path, keychain item, plugin reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `exec`: argv to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `exec` and `osKeychain`: how long the helper program may run, in milliseconds
    /// (default 5000); it is killed when the time is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: Option<u64>,
    /// `plugin`: the plugin name (a key of `plugins`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `oauth2`: `clientCredentials` or `authorizationCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `oauth2`: issuer for OIDC discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `oauth2`: authorization endpoint.
    #[serde(
        default,
        rename = "authorizationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_url: Option<String>,
    /// `oauth2`: token endpoint.
    #[serde(default, rename = "tokenURL", skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// `oauth2`: client id reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Box<Secret>>,
    /// `oauth2`: client secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Box<Secret>>,
    /// `oauth2`: scopes requested in addition to the operation's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `oauth2`: audience / resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `oauth2`: allow interactive (authorization-code) acquisition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// `oauth2`: loopback callback port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_port: Option<u16>,
    /// `oauth2`: redirect URI.
    #[serde(
        default,
        rename = "redirectURI",
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_uri: Option<String>,
    /// `oauth2`: `instance` (default: files under `<stateDir>/oauth`, mode 0600) or `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["instance", "memory"]))]
    pub token_storage: Option<String>,
    /// `oauth2`: client authentication at the token endpoint, `client_secret_basic` or
    /// `client_secret_post`; when unset, chosen from the discovered
    /// `token_endpoint_auth_methods_supported` (post if listed, else basic if listed), else post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["client_secret_basic", "client_secret_post"]))]
    pub client_auth_method: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match (&self.kind, &self.value) {
            (_, None) => None,
            (Some(SecretType::Literal) | None, Some(_)) => Some("<redacted>"),
            (_, Some(reference)) => Some(reference.as_str()),
        };
        f.debug_struct("Secret")
            .field("kind", &self.kind)
            .field("value", &value)
            .field("command", &self.command)
            .field("timeout_ms", &self.timeout_ms)
            .field("plugin", &self.plugin)
            .field("mode", &self.mode)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

/// Debug output for config that may hold credentials as plain values: MCP `env` overrides,
/// static `headers` and source-local `oauth` (whose `clientSecret` may be a literal) show their
/// keys only, so `{:?}` of a config never prints a value an operator may consider secret.
fn keys_only(map: &Option<BTreeMap<String, String>>) -> Option<Vec<&str>> {
    map.as_ref().map(|m| m.keys().map(String::as_str).collect())
}

/// Keys of a JSON object kept as raw `Value` (see [`keys_only`]).
fn object_keys_only(value: &Option<serde_json::Value>) -> Option<Vec<&str>> {
    value.as_ref().map(|v| {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    })
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("kind", &self.kind)
            .field("uri", &self.uri)
            .field("enabled", &self.enabled)
            .field("refresh", &self.refresh)
            .field("transport", &self.transport)
            .field("disabled_tools", &self.disabled_tools)
            .field("oauth_keys", &object_keys_only(&self.oauth))
            .field("redirects", &self.redirects)
            .field("tool_pins", &self.tool_pins)
            .field("tool_name_prefix", &self.tool_name_prefix)
            .field("pin", &self.pin)
            .finish()
    }
}

impl std::fmt::Debug for McpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTransport")
            .field("kind", &self.kind)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env_keys", &keys_only(&self.env))
            .field("pass_env", &self.pass_env)
            .field("url", &self.url)
            .field("header_names", &keys_only(&self.headers))
            .field("header_secrets", &self.header_secrets)
            .finish()
    }
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("kind", &self.kind)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env_keys", &keys_only(&self.env))
            .field("pass_env", &self.pass_env)
            .field("url", &self.url)
            .field("header_names", &keys_only(&self.headers))
            .field("header_secrets", &self.header_secrets)
            .field("disabled_tools", &self.disabled_tools)
            .field("oauth_keys", &object_keys_only(&self.oauth))
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_of_a_config_never_shows_a_literal_secret() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "secrets": {
                "key": { "type": "literal", "value": "CANARY-1" },
                "oauth": { "type": "oauth2", "mode": "clientCredentials",
                           "clientId": { "type": "env", "value": "CLIENT_ID_VAR" },
                           "clientSecret": { "type": "literal", "value": "CANARY-2" } }
            }
        }))
        .expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains("CANARY"), "{printed}");
        let mcp: Config = serde_json::from_value(serde_json::json!({
            "sources": { "m": { "type": "mcp",
                "transport": { "type": "streamable-http", "url": "https://mcp.test/mcp",
                               "env": { "API_TOKEN": "CANARY-3" },
                               "headers": { "Authorization": "Bearer CANARY-4" } },
                "oauth": { "tokenURL": "https://idp.test/token",
                           "clientSecret": { "type": "literal", "value": "CANARY-5" } } } },
            "mcpServers": { "s": { "command": "srv", "env": { "TOKEN": "CANARY-6" },
                                   "headers": { "X-Key": "CANARY-7" } } }
        }))
        .expect("valid");
        let mcp_printed = format!("{mcp:?}");
        assert!(!mcp_printed.contains("CANARY"), "{mcp_printed}");
        assert!(
            mcp_printed.contains("API_TOKEN") && mcp_printed.contains("Authorization"),
            "names stay visible: {mcp_printed}"
        );
        assert!(
            printed.contains("CLIENT_ID_VAR"),
            "references stay visible: {printed}"
        );
    }
}
