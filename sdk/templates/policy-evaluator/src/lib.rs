//! `{{name}}`: a Portcullis policy evaluator.
//!
//! Starting point: read-only and other non-destructive tools are allowed; a destructive tool
//! needs an approval when the caller has the approver scope and is denied otherwise. Policy
//! evaluators get no network: decide from the input and the config only.

use portcullis_sdk::{Decision, InitError, Metadata, Plugin, PolicyEvaluator, PolicyInput};
use serde::Deserialize;

/// The `plugins.{{name}}.config` object; keep `config.schema.json` in step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_approver_scope")]
    approver_scope: String,
}

fn default_approver_scope() -> String {
    "bundle:operators".to_owned()
}

pub struct {{type_name}} {
    approver_scope: String,
}

impl Plugin for {{type_name}} {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), "Destructive tools need an approver")
            .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        if config.approver_scope.is_empty() {
            return Err(InitError::InvalidConfig("`approverScope` must not be empty".to_owned()));
        }
        Ok(Self { approver_scope: config.approver_scope })
    }
}

impl PolicyEvaluator for {{type_name}} {
    fn evaluate(&self, input: &PolicyInput) -> Result<Decision, String> {
        if !input.tool.safety.destructive {
            return Ok(Decision::Allow);
        }
        if input.scopes.iter().any(|scope| *scope == self.approver_scope) {
            Ok(Decision::RequireApproval(format!("{} is destructive", input.tool.id)))
        } else {
            Ok(Decision::Deny(format!("{} is destructive", input.tool.id)))
        }
    }
}

portcullis_sdk::export_policy_evaluator!({{type_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_tools_need_the_approver_scope() {
        let plugin: {{type_name}} = portcullis_sdk::init_from_json("{}").unwrap();
        let mut input = PolicyInput::default();
        input.tool.id = "tickets:deleteTicket".to_owned();
        assert_eq!(plugin.evaluate(&input), Ok(Decision::Allow));

        input.tool.safety.destructive = true;
        assert!(matches!(plugin.evaluate(&input), Ok(Decision::Deny(_))));
        input.scopes.push("bundle:operators".to_owned());
        assert!(matches!(plugin.evaluate(&input), Ok(Decision::RequireApproval(_))));
    }
}
