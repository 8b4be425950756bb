//! The composition root: where the capabilities are put together for both the server and the
//! CLI.
//!
//! `config` sits at the bottom of the module graph and knows only the document; the
//! capabilities sit above it and each knows its own settings. Whatever needs both — a fully
//! validated config — is assembled here, so that no capability reaches back into `config` and
//! `config` reaches into none of them.

pub mod runtime;
pub mod server_settings;
pub mod settings;
pub mod snapshot;

pub use runtime::{Runtime, RuntimeOptions};
pub use settings::{check, load, Settings};
