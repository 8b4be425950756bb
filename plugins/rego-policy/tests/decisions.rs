//! The example policy (`examples/portcullis.rego`) evaluated natively through the plugin.

use portcullis_sdk::{init_from_json, Decision, InitError, PolicyEvaluator, PolicyInput, Safety};
use rego_policy::RegoPolicy;

fn plugin() -> RegoPolicy {
    let config = serde_json::json!({
        "policies": { "portcullis.rego": include_str!("../examples/portcullis.rego") },
        "data": { "frozen_services": ["billing"] },
    });
    init_from_json(&config.to_string()).unwrap()
}

fn input(service: &str, safety: Safety, scopes: &[&str]) -> PolicyInput {
    let mut input = PolicyInput {
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        mode: "curated".to_owned(),
        arguments_json: r#"{"pathArgs":["42"],"flags":{},"body":null}"#.to_owned(),
        ..PolicyInput::default()
    };
    input.context.request_id = "req-1".to_owned();
    input.context.principal = Some("alice".to_owned());
    input.tool.id = format!("{service}:op");
    input.tool.service = service.to_owned();
    input.tool.method = Some("POST".to_owned());
    input.tool.safety = safety;
    input
}

const READ_ONLY: Safety = Safety {
    read_only: true,
    destructive: false,
    idempotent: true,
    requires_approval: false,
};
const DESTRUCTIVE: Safety = Safety {
    read_only: false,
    destructive: true,
    idempotent: false,
    requires_approval: false,
};
const WRITE: Safety = Safety {
    read_only: false,
    destructive: false,
    idempotent: false,
    requires_approval: false,
};

#[test]
fn read_only_tools_are_allowed() {
    assert_eq!(
        plugin().evaluate(&input("tickets", READ_ONLY, &[])),
        Ok(Decision::Allow)
    );
}

#[test]
fn frozen_service_from_data_is_denied_with_a_reason() {
    assert_eq!(
        plugin().evaluate(&input("billing", READ_ONLY, &[])),
        Ok(Decision::Deny("service billing is frozen".to_owned()))
    );
}

#[test]
fn destructive_call_by_an_operator_requires_approval() {
    assert_eq!(
        plugin().evaluate(&input("tickets", DESTRUCTIVE, &["bundle:operators"])),
        Ok(Decision::RequireApproval(
            "destructive call by an operator".to_owned()
        ))
    );
}

#[test]
fn default_rule_denies_what_nothing_allows() {
    assert_eq!(
        plugin().evaluate(&input("tickets", DESTRUCTIVE, &["bundle:writers"])),
        Ok(Decision::Deny("no rule allows this call".to_owned()))
    );
    assert_eq!(
        plugin().evaluate(&input("tickets", WRITE, &["bundle:writers"])),
        Ok(Decision::Allow)
    );
}

#[test]
fn policies_see_the_parsed_arguments_and_principal() {
    let config = serde_json::json!({ "policies": { "p.rego": r#"
        package portcullis
        import rego.v1
        default decision := {"effect": "deny", "reason": "not ticket 42"}
        decision := {"effect": "allow"} if {
            input.arguments.pathArgs[0] == "42"
            input.principal == "alice"
            input.tool.method == "POST"
        }
    "# } });
    let plugin: RegoPolicy = init_from_json(&config.to_string()).unwrap();
    assert_eq!(
        plugin.evaluate(&input("tickets", WRITE, &[])),
        Ok(Decision::Allow)
    );
}

#[test]
fn undefined_or_malformed_decisions_are_errors_so_the_call_is_denied() {
    let undefined = serde_json::json!({ "policies": { "p.rego": "package portcullis\nimport rego.v1\ndecision := {\"effect\": \"allow\"} if { false }" } });
    let plugin: RegoPolicy = init_from_json(&undefined.to_string()).unwrap();
    assert!(plugin.evaluate(&input("tickets", READ_ONLY, &[])).is_err());

    let malformed =
        serde_json::json!({ "policies": { "p.rego": "package portcullis\ndecision := \"yes\"" } });
    let plugin: RegoPolicy = init_from_json(&malformed.to_string()).unwrap();
    assert!(plugin.evaluate(&input("tickets", READ_ONLY, &[])).is_err());

    let no_reason = serde_json::json!({ "policies": { "p.rego": "package portcullis\ndecision := {\"effect\": \"deny\"}" } });
    let plugin: RegoPolicy = init_from_json(&no_reason.to_string()).unwrap();
    assert!(plugin.evaluate(&input("tickets", READ_ONLY, &[])).is_err());

    let mut bad_arguments = input("tickets", READ_ONLY, &[]);
    bad_arguments.arguments_json = "{not json".to_owned();
    assert!(plugin
        .evaluate(&bad_arguments)
        .unwrap_err()
        .contains("not JSON"));
}

#[test]
fn a_policy_that_does_not_compile_is_an_invalid_config_naming_the_module() {
    let config =
        serde_json::json!({ "policies": { "broken.rego": "package portcullis\ndecision := {" } });
    let error = init_from_json::<RegoPolicy>(&config.to_string())
        .err()
        .unwrap();
    assert!(
        matches!(&error, InitError::InvalidConfig(m) if m.contains("policies.broken.rego")),
        "{error:?}"
    );

    let error = init_from_json::<RegoPolicy>(r#"{"policies": {}}"#)
        .err()
        .unwrap();
    assert!(matches!(error, InitError::InvalidConfig(_)));
}
