//! Configuration: the `.cli.json` model, scope discovery and merge, validation.
//!
//! Scopes are read in precedence order managed -> user -> project -> local (later wins, see
//! [`merge`]). Every problem in every scope is collected and reported at once with the JSON path
//! where it occurs; a config with any problem is refused as a whole.

mod check;
pub mod load;
mod managed;
mod mcp_rules;
pub mod merge;
pub mod model;
pub mod path;
mod plugin_rules;
pub mod schema;
mod secret_rules;
pub mod validate;

pub use check::{check, CheckReport};
pub use load::{absolute_clean, load, LoadedConfig, ScopePaths};
pub use model::*;
pub use validate::{ConfigError, Diagnostic};
