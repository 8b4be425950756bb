//! Every integration test of the host, in one binary (one link instead of one per file).
//! Each module is one area; `support` holds every shared test helper.

mod support;

mod architecture_doc;
mod audit_bench;
mod audit_log;
mod audit_query;
mod audit_server;
mod auth_envelope;
mod auth_idp;
mod auth_introspection;
mod auth_jwt;
mod catalog_cache;
mod catalog_corpus;
mod catalog_discovery;
mod catalog_github;
mod catalog_openapi31;
mod catalog_overlays;
mod catalog_sources;
mod cli;
mod config_load;
mod config_rules;
mod fuzz_smoke;
mod mcp_oauth;
mod mcp_revisions;
mod mcp_sources;
mod module_graph;
mod oauth_client;
mod pins;
mod plugin_scaffold;
mod plugins_budget;
mod plugins_examples;
mod plugins_load;
mod plugins_prewarm;
mod plugins_server;
mod policy_cli;
mod policy_server;
mod secret_leaks;
mod server_edge;
mod server_execute;
mod server_hardening;
mod server_lifecycle;
mod server_runtime;
mod upstream_exec;
mod vendored_wit;
mod workflows;
