//! The export adapters, called natively the way the component ABI calls them: `metadata` carries
//! the kind of the macro used, `init` parses the config, and the kind's function reaches the
//! plugin `init` built — or fails closed when `init` never succeeded.

use portcullis_sdk::bindings::base::exports::portcullis::plugin::lifecycle::{
    self, Guest as Lifecycle,
};
use portcullis_sdk::bindings::base::portcullis::plugin::types::{PluginKind, RequestContext};
use portcullis_sdk::bindings::secret_source::exports::portcullis::plugin::secret_source::{
    self as wit, Guest as _,
};
use portcullis_sdk::secret::SecretSourceExport;
use portcullis_sdk::{
    testing, InitError, Metadata, Plugin, SecretError, SecretRequest, SecretSource,
};

struct Echo {
    prefix: String,
}

impl Plugin for Echo {
    type Config = serde_json::Value;

    fn metadata() -> Metadata {
        Metadata::new("echo", "1.2.3", "echoes").with_config_schema(r#"{"type":"object"}"#)
    }

    fn init(config: serde_json::Value) -> Result<Self, InitError> {
        let prefix = config["prefix"]
            .as_str()
            .ok_or_else(|| InitError::InvalidConfig("`prefix` must be a string".to_owned()))?;
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }
}

impl SecretSource for Echo {
    fn resolve(&self, request: &SecretRequest) -> Result<String, SecretError> {
        portcullis_sdk::log::info("resolving");
        Ok(format!(
            "{}{}:{}",
            self.prefix, request.reference, request.context.request_id
        ))
    }
}

type Export = SecretSourceExport<Echo>;

fn request(reference: &str) -> wit::SecretRequest {
    wit::SecretRequest {
        reference: reference.to_owned(),
        service: "tickets".to_owned(),
        scheme: "apiKey".to_owned(),
        tool_id: "tickets:create".to_owned(),
        context: RequestContext {
            request_id: "req-7".to_owned(),
            principal: None,
        },
    }
}

#[test]
fn metadata_carries_the_kind_of_the_export_macro() {
    let metadata = <Export as Lifecycle>::metadata();
    assert_eq!(metadata.name, "echo");
    assert_eq!(metadata.version, "1.2.3");
    assert_eq!(metadata.kind, PluginKind::SecretSource);
    assert_eq!(metadata.config_schema, r#"{"type":"object"}"#);
}

#[test]
fn a_call_after_a_failed_init_fails_closed() {
    assert!(matches!(
        Export::resolve(request("x")),
        Err(wit::SecretError::Unavailable(_))
    ));
    <Export as lifecycle::Guest>::init(r#"{"prefix": "v-"}"#.to_owned()).unwrap();
    let error = <Export as lifecycle::Guest>::init("{\"prefix\": 3}".to_owned()).unwrap_err();
    assert!(matches!(error, lifecycle::InitError::InvalidConfig(m) if m.contains("prefix")));
    assert!(matches!(
        Export::resolve(request("x")),
        Err(wit::SecretError::Unavailable(_))
    ));
    let error = <Export as lifecycle::Guest>::init("not json".to_owned()).unwrap_err();
    assert!(matches!(error, lifecycle::InitError::InvalidConfig(_)));
}

#[test]
fn init_then_resolve_reaches_the_plugin_with_converted_types() {
    <Export as lifecycle::Guest>::init(r#"{"prefix": "v-"}"#.to_owned()).unwrap();
    assert_eq!(Export::resolve(request("db")).unwrap(), "v-db:req-7");
    let logs = testing::take_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "resolving");
}
