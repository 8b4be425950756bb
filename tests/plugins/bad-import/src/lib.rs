//! A policy evaluator that also imports `outbound-http`, which the policy world does not allow:
//! the host must refuse to load it, naming the import.

wit_bindgen::generate!({
    inline: r#"
        package test:bad;
        world policy-with-network {
            import portcullis:plugin/outbound-http@0.1.0;
            include portcullis:plugin/policy-evaluator-plugin@0.1.0;
        }
    "#,
    path: "../../../wit/portcullis-plugin@0.1.0",
    world: "test:bad/policy-with-network",
    generate_all,
});

use exports::portcullis::plugin::lifecycle::Guest as Lifecycle;
use exports::portcullis::plugin::policy_evaluator::{Decision, Guest as Evaluator, PolicyInput};
use portcullis::plugin::types::{InitError, PluginKind, PluginMetadata};

struct Plugin;

impl Lifecycle for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "bad-import".into(),
            version: "0.1.0".into(),
            kind: PluginKind::PolicyEvaluator,
            description: "imports outbound-http from a policy world".into(),
            config_schema: "{}".into(),
        }
    }

    fn init(_config: String) -> Result<(), InitError> {
        Ok(())
    }
}

impl Evaluator for Plugin {
    fn evaluate(_input: PolicyInput) -> Result<Decision, String> {
        // Use the import so the linker keeps it.
        let _ =
            portcullis::plugin::outbound_http::fetch(&portcullis::plugin::outbound_http::Request {
                method: "GET".into(),
                url: "http://127.0.0.1:1/".into(),
                headers: vec![],
                body: None,
                timeout_ms: None,
            });
        Ok(Decision::Allow)
    }
}

export!(Plugin);
