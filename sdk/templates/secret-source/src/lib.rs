//! `{{name}}`: a Portcullis secret source.
//!
//! Starting point: resolves a reference `X` to the env var `<envPrefix>X`, which the operator
//! grants with `plugins.{{name}}.grants.env`. Replace `resolve` with your backend (a vault over
//! `portcullis_sdk::http::fetch`, a granted file, ...).

use portcullis_sdk::{InitError, Metadata, Plugin, SecretError, SecretRequest, SecretSource};
use serde::Deserialize;

/// The `plugins.{{name}}.config` object; keep `config.schema.json` in step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    env_prefix: String,
}

pub struct {{type_name}} {
    env_prefix: String,
}

impl Plugin for {{type_name}} {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), "Secret values from granted env vars")
            .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        Ok(Self { env_prefix: config.env_prefix })
    }
}

impl SecretSource for {{type_name}} {
    fn resolve(&self, request: &SecretRequest) -> Result<String, SecretError> {
        if request.reference.is_empty() {
            return Err(SecretError::InvalidReference("the reference is empty".to_owned()));
        }
        let var = format!("{}{}", self.env_prefix, request.reference);
        // Never put the value in an error or a log line: only the variable's name.
        std::env::var(&var)
            .map_err(|_| SecretError::NotFound(format!("env var `{var}` is not set or not granted")))
    }
}

portcullis_sdk::export_secret_source!({{type_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_a_prefixed_env_var() {
        std::env::set_var("{{type_name}}_TEST_TOKEN", "s3cret");
        let plugin: {{type_name}} =
            portcullis_sdk::init_from_json(r#"{"envPrefix": "{{type_name}}_TEST_"}"#).unwrap();
        assert_eq!(plugin.resolve(&SecretRequest::for_reference("TOKEN")).unwrap(), "s3cret");
        assert!(matches!(
            plugin.resolve(&SecretRequest::for_reference("MISSING")),
            Err(SecretError::NotFound(_))
        ));
    }
}
