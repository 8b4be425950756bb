//! Configuration: the `.cli.json` model, scope discovery and merge, validation.
//!
//! Scopes are read in precedence order managed -> user -> project -> local (later wins, see
//! [`merge`]). Every problem in every scope is collected and reported at once with the JSON path
//! where it occurs; a config with any problem is refused as a whole.

pub mod load;
pub mod merge;
pub mod model;
pub mod schema;
pub mod validate;

pub use load::{load, LoadedConfig, ScopePaths};
pub use model::*;
pub use validate::{ConfigError, Diagnostic};
