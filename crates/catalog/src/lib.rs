//! The catalog: OpenAPI documents in, the normalized tool catalog out.
//!
//! The catalog is built once (at startup, on `/v1/refresh`, and when a watched source file
//! changes), never per request. A source that fails to load is reported with its id and reason
//! and does not take the other sources down.
//!
//! | module | job |
//! |---|---|
//! | [`mod@build`] | build order, derived service ids, collisions, fingerprint |
//! | `fetch`, `cache` | reading documents: files, HTTP, on-disk revalidating cache |
//! | `discovery` | `apiCatalog` (RFC 9727) and `serviceRoot` (RFC 8631) sources resolved to OpenAPI documents, with provenance |
//! | `openapi` | parsing 3.0/3.1 JSON or YAML, local `$ref` resolution |
//! | [`overlay`] | OpenAPI Overlay 1.0 documents applied before normalization |
//! | `normalize`, `security`, `servers`, `slug` | operations -> tools |
//! | `responses` | an operation's success response schemas (the MCP door's `outputSchema`) |
//! | [`lister`] | the trait MCP sessions are injected through ([`McpLister`]), so the catalog does not import `mcp` |
//! | [`mcp`] | MCP tools -> catalog tools, annotations, disabled-tool checks |
//! | `mcp_overlay` | overlays on an MCP service, through a synthetic OpenAPI document |
//! | [`mcp_refs`] | the tools an MCP service's overlays and workflows reference |
//! | `skills` | skill manifests -> `guidance` on tools |
//! | [`workflows`] | Arazzo documents -> `catalog.workflows` (steps bound to tools), runtime expressions |
//! | `views` | `discover` and per-profile effective views |
//! | [`pattern`] | tool-id patterns (`*`, `**`), shared by curated sets, `policy.deny` and approvals |
#![deny(missing_docs)]

mod build;
mod cache;
mod discovery;
pub mod doc_pins;
mod fetch;
mod lister;
mod mcp;
mod mcp_overlay;
mod mcp_refs;
mod model;
pub mod normalize;
pub mod openapi;
mod overlay;
pub mod pattern;
pub mod pin_diff;
mod responses;
mod security;
pub mod servers;
pub mod settings;
mod skills;
mod slug;
mod views;
pub mod workflows;

pub use build::{
    build, BuildOptions, BuildOutcome, SharedCatalog, SourceError, SourceFetch, SourceWarning,
};
pub use lister::{McpLister, McpListing, McpSource};
pub use model::*;
