//! Feature `schema`: the config JSON Schema derived from a plugin's `Config` type is draft 2020-12,
//! follows the serde attributes serde itself reads, and is what `Metadata` hands the host.
//! The SDK dev-depends on itself with the feature on, so plain `cargo test` runs these (the
//! published package drops that dev-dependency, hence the `cfg`).

use portcullis_sdk::schemars::JsonSchema;
use portcullis_sdk::serde_json::{self, json, Value};
use portcullis_sdk::{schema, Metadata};
use serde::Deserialize;

/// The plugin's `config`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(crate = "portcullis_sdk::schemars", title = "example config")]
#[allow(dead_code)]
struct Config {
    /// Where the values come from.
    #[schemars(length(min = 1))]
    base_url: String,
    /// How long to wait, in milliseconds.
    #[serde(default)]
    #[schemars(with = "u32")]
    timeout_ms: Option<u32>,
}

#[test]
fn derived_schema_is_draft_2020_12_and_follows_serde() {
    let schema: Value = serde_json::from_str(&schema::config_schema::<Config>()).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "example config");
    assert_eq!(schema["type"], "object");
    // deny_unknown_fields: the host refuses a typo before `init` runs.
    assert_eq!(schema["additionalProperties"], false);
    // rename_all and serde(default): camelCase keys, only `baseUrl` required.
    assert_eq!(schema["required"], json!(["baseUrl"]));
    let base_url = &schema["properties"]["baseUrl"];
    assert_eq!(base_url["type"], "string");
    assert_eq!(base_url["minLength"], 1);
    assert_eq!(base_url["description"], "Where the values come from.");
    assert_eq!(schema["properties"]["timeoutMs"]["type"], "integer");
}

#[test]
fn metadata_carries_the_derived_schema_to_the_host() {
    let metadata =
        Metadata::new("example", "0.1.0", "derives its schema").with_config_schema_of::<Config>();
    assert_eq!(metadata.config_schema, schema::config_schema::<Config>());
}
