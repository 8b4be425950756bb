//! The catalog: OpenAPI documents in, the normalized tool catalog out.
//!
//! The catalog is built once (at startup, on `/v1/refresh`, and when a watched source file
//! changes), never per request. A source that fails to load is reported with its id and reason
//! and does not take the other sources down.

pub mod model;

pub use model::*;
pub mod build;

pub use build::{build, BuildOptions, BuildOutcome, SourceError, SourceFetch};
