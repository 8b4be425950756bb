//! The composition root: where the capabilities are put together for both the server and the
//! CLI.
//!
//! `config` sits at the bottom of the module graph and knows only the document; the
//! capabilities sit above it and each knows its own settings. Whatever needs both is assembled
//! here, so that no capability reaches back into `config`, `config` reaches into none of them,
//! and no door assembles anything itself:
//!
//! | what | module | used by |
//! |---|---|---|
//! | a fully validated config: `config`'s document checks + every capability's rules | [`settings`] ([`load`], [`check`], [`Settings`]), [`server_settings`] (the HTTP edge's part) | every door |
//! | a snapshot: config, catalog, compiled policy, plugins, secrets, authenticator, upstream client | [`snapshot`] | the runtime |
//! | the running instance: current snapshot (swapped on rebuild), audit log, MCP sessions, approvals, `runtime.json` | [`runtime`] ([`Runtime`], [`RuntimeOptions`]) | `server` (`portcullis serve`) |
//! | returning freed memory to the OS | [`memory`] | the runtime after each build; the binary's tokio workers when they park |
//! | the catalog of a loaded config, without an instance | [`offline`] ([`build_catalog`]) | `portcullis check`, `policy explain` |
//!
//! `app` sits above every pipeline stage and `call`, and below the doors (`server`, the CLI),
//! which never reach into the stages to build them (`tests/it/module_graph.rs`).

pub mod memory; // binary: the tokio worker park hook
pub mod offline;
pub mod runtime;
pub mod server_settings;
pub mod settings;
pub mod snapshot;

pub use offline::{build_catalog, explain, ExplainError, OfflineCall};
pub use runtime::{Runtime, RuntimeOptions};
pub use settings::{check, load, Settings};
