//! The SDK's integration tests: one binary (one link), a module per area.

mod adapters;
// Feature `schema`: the SDK dev-depends on itself with the feature on, so plain `cargo test`
// runs these (the published package drops that dev-dependency, hence the `cfg`).
#[cfg(feature = "schema")]
mod schema;
mod worlds;
