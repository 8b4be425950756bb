//! Portcullis: the security boundary between callers and the APIs they use.
//!
//! A tool call flows one way, and the module tree says the same thing:
//!
//! | step | module | job |
//! |---|---|---|
//! | 1 | [`config`] | load and merge `.cli.json` scopes, validate, report every problem |
//! | 2 | [`catalog`] | turn OpenAPI documents into the normalized tool catalog (built once, swapped on refresh) |
//! | 3 | [`authn`] | who is calling (bearer-token validation) |
//! | 4 | [`authz`] | the scope envelope: which tools the caller may see and run |
//! | 5 | [`policy`] | deny lists, curated mode, approval |
//! | 6 | [`secrets`] | which credentials the upstream call carries |
//! | 6 | [`oauth`] | OAuth 2.0 client: tokens for `oauth2` secrets and MCP transports (cache, store, PKCE flow) |
//! | 7 | [`upstream`] | the HTTP call itself: timeouts, size caps, retries, no credentialed redirects |
//! | 7 | [`mcp`] | the MCP call: pooled sessions over stdio, streamable HTTP and SSE, transport OAuth |
//! | 8 | [`audit`] | one record per decision |
//! | 9 | [`server`] | the HTTP contract at the edge: routing, errors, status codes |
//!
//! [`app`] composes the capabilities for the server and the CLI: a fully validated config is
//! `config`'s document checks plus each capability's `settings` checks ([`app::load`]).
//!
//! [`plugins`] hosts the WebAssembly components that steps 3, 5 and 6 may delegate to.
//!
//! Two leaves hold what several steps share and import nothing from the crate: [`net`] (every
//! outbound HTTP client, by purpose, and the URL rules) and [`redact`] (redacted URLs and
//! secret values). An import only ever points to an earlier step or a leaf
//! (`tests/it/module_graph.rs`).
//!
//! [`dev`] is the embedded demo (`portcullis serve --dev`); [`plugins_scaffold`] writes new plugin
//! crates (`portcullis plugin new`). `fuzzing` (hidden) holds the fuzz targets' entry points.
#![deny(missing_docs)]

pub mod app;
pub use portcullis_audit as audit;

pub mod authn;
pub mod authz;
pub mod call;
pub use portcullis_catalog as catalog;
pub use portcullis_config as config;
pub mod dev;
#[doc(hidden)]
pub mod fuzzing;
pub mod mcp;
pub use portcullis_net as net;
pub mod oauth;
pub use portcullis_plugin_host as plugins;
pub mod plugins_scaffold;
pub mod policy;
pub use portcullis_net::redact;
pub mod secret_sources;
pub mod secrets;
pub mod server;
pub mod upstream;
