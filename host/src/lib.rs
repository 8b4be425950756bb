//! Portcullis: the security boundary between callers and the APIs they use.
//!
//! A tool call flows one way, and the module tree says the same thing:
//!
//! | step | module | job |
//! |---|---|---|
//! | 1 | [`config`] | load and merge `.cli.json` scopes, validate, report every problem |
//! | 2 | [`catalog`] | turn OpenAPI documents into the normalized tool catalog (built once, swapped on refresh) |
//! | 3 | [`authn`] | who is calling (bearer-token validation) |
//! | 4 | `authz` | the scope envelope: which tools the caller may see and run |
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
//! Two leaves hold what several steps share and import nothing from the crate: `net` (every
//! outbound HTTP client, by purpose, and the URL rules) and `redact` (redacted URLs and
//! secret values). An import only ever points to an earlier step or a leaf
//! (`tests/it/module_graph.rs`).
//!
//! [`dev`] is the embedded demo (`portcullis serve --dev`); [`plugins_scaffold`] writes new plugin
//! crates (`portcullis plugin new`). `fuzzing` (hidden) holds the fuzz targets' entry points.
//!
//! ## Public surface
//!
//! A module is `pub(crate)` unless something outside this crate needs it: the binary
//! (`main.rs` and its `cli`), the integration tests (`tests/it`), the benches (`benches/`) or the
//! fuzz targets (`fuzz/`). Each `pub` line below says which of them needs it (a test in
//! `tests/it/module_graph.rs` refuses a `pub mod` or `pub use` without that reason); where only
//! one item is needed, the module stays `pub(crate)` and the item is re-exported by name.
#![deny(missing_docs)]

// The composition root and the doors.
pub mod app; // binary: every command; tests/it, benches: start runtimes, load configs
pub mod dev; // binary: `serve --dev`, `demo-upstream`
#[doc(hidden)]
pub mod fuzzing; // fuzz targets and tests/it/fuzz_smoke.rs
pub mod plugins_scaffold; // binary: `plugin new`; tests/it/plugin_scaffold.rs
pub mod server; // binary: `serve`; tests/it: routers on loopback listeners

// The crates below, under the names the modules use.
pub use portcullis_audit as audit; // binary: `audit verify`/`tail`; tests/it: the log itself
pub use portcullis_catalog as catalog; // tests/it, benches: catalog builds
pub use portcullis_config as config; // binary, tests/it: scopes, schema, the document model
pub use portcullis_plugin_host as plugins; // binary: `plugin inspect`/`check`; tests/it, benches

// Pipeline stages driven directly by tests and benches (each through its own API).
pub mod authn; // tests/it/auth_*.rs, benches/auth_validation.rs: Authenticator, ServerAuth
pub mod mcp; // tests/it/catalog_sources.rs, benches/mcp_call.rs: McpPool, transport settings
pub mod oauth; // benches/oauth.rs, benches/secrets.rs: OAuthClients
pub mod policy; // binary: `check` (unmatched patterns); tests/it/plugins_budget.rs, benches/policy.rs
pub mod secrets; // benches/secrets.rs, benches/oauth.rs: SecretResolver
pub mod upstream; // tests/it/upstream_exec.rs: the bounded HTTP call

// Nothing outside needs these whole.
pub(crate) mod authz;
pub(crate) mod call;
pub(crate) mod secret_sources;
pub(crate) use portcullis_net as net;
pub(crate) use portcullis_net::redact;
