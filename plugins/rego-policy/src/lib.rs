//! `rego-policy`: a Portcullis policy evaluator that runs [Rego](https://www.openpolicyagent.org/docs/latest/policy-language/)
//! policies with the [regorus](https://github.com/microsoft/regorus) interpreter.
//!
//! The operator supplies the policies (and optionally a `data` document) in the plugin config.
//! For every tool call the plugin evaluates one rule (default `data.portcullis.decision`) with
//! the input document built by [`input_document`], and maps its value to a decision:
//!
//! | rule value | decision |
//! |---|---|
//! | `{"effect": "allow"}` | allow |
//! | `{"effect": "deny", "reason": "..."}` | deny (`plugin_deny`, reason audited) |
//! | `{"effect": "require-approval", "reason": "..."}` | allow only with an approval |
//! | undefined, anything else, an evaluation error | plugin error: the call is denied (`policy_error`) |
//!
//! Write a `default decision := {"effect": "deny", "reason": "..."}` so every input has a value.

use portcullis_sdk::{Decision, InitError, Metadata, Plugin, PolicyEvaluator, PolicyInput};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The rule evaluated when the config names none.
pub const DEFAULT_RULE: &str = "data.portcullis.decision";

/// The plugin's `config` object (schema: `config.schema.json`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rego modules by file name.
    pub policies: Map<String, Value>,
    /// The `data` document.
    #[serde(default)]
    pub data: Option<Value>,
    /// The decision rule.
    #[serde(default)]
    pub rule: Option<String>,
}

/// Compiled policies.
pub struct RegoPolicy {
    engine: regorus::Engine,
    rule: String,
}

impl Plugin for RegoPolicy {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "rego-policy",
            env!("CARGO_PKG_VERSION"),
            "Rego policies (regorus) decide allow / deny / require-approval per tool call",
        )
        .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        let mut engine = regorus::Engine::new();
        if config.policies.is_empty() {
            return Err(InitError::InvalidConfig(
                "`policies` must hold at least one Rego module".to_owned(),
            ));
        }
        for (name, source) in config.policies {
            let Value::String(source) = source else {
                return Err(InitError::InvalidConfig(format!(
                    "`policies.{name}` must be a string of Rego source"
                )));
            };
            engine.add_policy(name.clone(), source).map_err(|error| {
                InitError::InvalidConfig(format!("`policies.{name}` does not compile: {error}"))
            })?;
        }
        if let Some(data) = config.data {
            if !data.is_object() {
                return Err(InitError::InvalidConfig(
                    "`data` must be an object".to_owned(),
                ));
            }
            let data = regorus::Value::from_json_str(&data.to_string())
                .map_err(|error| InitError::InvalidConfig(format!("`data`: {error}")))?;
            engine
                .add_data(data)
                .map_err(|error| InitError::InvalidConfig(format!("`data`: {error}")))?;
        }
        let rule = config.rule.unwrap_or_else(|| DEFAULT_RULE.to_owned());
        if !rule.starts_with("data.") {
            return Err(InitError::InvalidConfig(format!(
                "`rule` must be a rule path starting with `data.`, got `{rule}`"
            )));
        }
        Ok(Self { engine, rule })
    }
}

impl PolicyEvaluator for RegoPolicy {
    fn evaluate(&self, input: &PolicyInput) -> Result<Decision, String> {
        let input = input_document(input)?;
        // Evaluation mutates the engine's input; a clone keeps `evaluate` a pure `&self` call
        // (and costs little: the engine shares compiled modules behind `Arc`s).
        let mut engine = self.engine.clone();
        engine.set_input(
            regorus::Value::from_json_str(&input.to_string()).map_err(|error| error.to_string())?,
        );
        let value = engine
            .eval_rule(self.rule.clone())
            .map_err(|error| format!("evaluating `{}`: {error}", self.rule))?;
        if value == regorus::Value::Undefined {
            return Err(format!(
                "`{}` is undefined for this input (add a default rule)",
                self.rule
            ));
        }
        let value: Value = serde_json::from_str(&value.to_json_str().map_err(|e| e.to_string())?)
            .map_err(|error| error.to_string())?;
        decision_from(&self.rule, &value)
    }
}

portcullis_sdk::export_policy_evaluator!(RegoPolicy);

/// The Rego `input` document: the WIT `policy-input` in camelCase, with the arguments parsed.
///
/// ```json
/// {
///   "requestId": "req-1", "principal": "alice",
///   "scopes": ["bundle:tickets"],
///   "tool": { "id": "tickets:deleteTicket", "service": "tickets", "method": "DELETE",
///             "path": "/tickets/{id}",
///             "safety": { "readOnly": false, "destructive": true, "idempotent": true,
///                         "requiresApproval": false } },
///   "mode": "curated", "profile": null,
///   "arguments": { "pathArgs": ["42"], "flags": {}, "body": null }
/// }
/// ```
pub fn input_document(input: &PolicyInput) -> Result<Value, String> {
    let arguments: Value = if input.arguments_json.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&input.arguments_json)
            .map_err(|error| format!("the call's arguments are not JSON: {error}"))?
    };
    let safety = input.tool.safety;
    Ok(json!({
        "requestId": input.context.request_id,
        "principal": input.context.principal,
        "scopes": input.scopes,
        "tool": {
            "id": input.tool.id,
            "service": input.tool.service,
            "method": input.tool.method,
            "path": input.tool.path,
            "safety": {
                "readOnly": safety.read_only,
                "destructive": safety.destructive,
                "idempotent": safety.idempotent,
                "requiresApproval": safety.requires_approval,
            },
        },
        "mode": input.mode,
        "profile": input.profile,
        "arguments": arguments,
    }))
}

/// Map the rule's value to a decision; anything unexpected is an error (so the call is denied).
fn decision_from(rule: &str, value: &Value) -> Result<Decision, String> {
    let effect = value.get("effect").and_then(Value::as_str);
    let reason = || {
        value
            .get("reason")
            .and_then(Value::as_str)
            .filter(|reason| !reason.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("`{rule}` must give a non-empty string `reason` with that effect")
            })
    };
    match effect {
        Some("allow") => Ok(Decision::Allow),
        Some("deny") => Ok(Decision::Deny(reason()?)),
        Some("require-approval") => Ok(Decision::RequireApproval(reason()?)),
        _ => Err(format!(
            "`{rule}` must be an object with `effect` \"allow\", \"deny\" or \"require-approval\""
        )),
    }
}
