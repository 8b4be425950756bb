//! Derive a plugin's config JSON Schema from its `Config` type (feature `schema`, via `schemars`).
//!
//! The host validates the operator's `plugins.<name>.config` against [`crate::Metadata`]'s
//! `config_schema` before `init`, so that schema and the `Config` type serde reads must agree. Written
//! by hand they drift; derived, they cannot: `#[derive(JsonSchema)]` reads the same serde attributes
//! (`rename_all`, `deny_unknown_fields` → `additionalProperties: false`, `default` → not required)
//! and the doc comments become `description`s.
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | the schema is draft 2020-12, what the host validates with | off: feature `schema` not enabled, nothing compiled | a type without `JsonSchema` does not compile |
//!
//! Two ways to use it:
//! - at run time: `Metadata::new(..).with_config_schema_of::<Config>()`;
//! - at build time (the component then carries no `schemars` code): derive only under `cfg(test)`,
//!   write [`config_schema`] to the `config.schema.json` the plugin ships and `include_str!`s, and
//!   keep a test that fails when the file is stale (`plugins/apikey-auth` does this).
//!
//! In the plugin, derive with the SDK's re-export:
//! `#[derive(portcullis_sdk::schemars::JsonSchema)] #[schemars(crate = "portcullis_sdk::schemars")]`.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;

/// The JSON Schema (draft 2020-12) of `C`, pretty-printed with a trailing newline: the content of
/// a `config.schema.json`, or the value of [`crate::Metadata::config_schema`].
pub fn config_schema<C: JsonSchema>() -> String {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<C>();
    // `{:#}` is serde_json's pretty, infallible rendering of a `Value`.
    format!("{:#}\n", schema.as_value())
}

impl crate::Metadata {
    /// Set the config schema to the one derived from `C` (usually the plugin's `Config`).
    pub fn with_config_schema_of<C: JsonSchema>(self) -> Self {
        self.with_config_schema(&config_schema::<C>())
    }
}
