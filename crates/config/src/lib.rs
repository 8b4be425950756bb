//! Configuration: the `.cli.json` document model, scope discovery and merge, JSON paths, schema
//! and diagnostics.
//!
//! Scopes are read in precedence order managed -> user -> project -> local (later wins, see
//! [`merge`]). Every problem in every scope is collected and reported at once with the JSON path
//! where it occurs; a config with any problem is refused as a whole.
//!
//! Rule: this crate depends on no other Portcullis crate; it is the bottom of the pipeline. What
//! a value *means* — limits, URL rules, secret shapes, plugin references — is checked by the
//! capability that reads it (`<capability>/settings.rs` in the crate that owns it); those checks
//! reach [`load()`] through the [`Rules`] trait, composed by `portcullis::app`.
#![deny(missing_docs)]

mod auth;
mod check;
mod load;
mod managed;
mod merge;
mod model;
pub mod path;
pub mod schema;
mod validate;

pub use auth::{RevocationConfig, ServerAuthConfig};
pub use check::{check, CheckReport};
pub use load::{absolute_clean, load, LoadedConfig, ScopePaths};
pub use model::*;
pub use path::JsonPath;
pub use validate::{ConfigError, Diagnostic, Problems, Rules};
