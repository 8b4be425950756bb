//! The config JSON Schema, generated from the model in [`super::model`].
//!
//! Rule: the published schema (`docs/config.schema.json`) is exactly [`config_schema`]; a test
//! fails when they differ. Each scope file is checked against the *relaxed* variant
//! ([`scope_schema`]: every `required` removed, since one scope may set only part of a config);
//! what the merged config must contain is enforced by [`super::validate`] with specific messages.
//! `null` is never a value: omit the key instead.
//!
//! Failure mode: every schema violation becomes one [`Diagnostic`](super::Diagnostic) with the JSON path of the
//! offending value (for an unknown key, the path of that key). Messages never quote the
//! offending value, which may be a secret.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::Validator;
use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::model::Config;
use super::path::JsonPath;

/// `$id` of the published schema.
pub const SCHEMA_ID: &str = "urn:portcullis:config-schema:1";

/// The full config schema, as published in `docs/config.schema.json`.
pub fn config_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Config>().to_value();
    strip_null(&mut schema);
    if let Value::Object(map) = &mut schema {
        let mut ordered = serde_json::Map::new();
        ordered.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        ordered.insert("$id".into(), json!(SCHEMA_ID));
        ordered.insert("title".into(), json!("open-cli configuration (.cli.json)"));
        ordered.insert(
            "description".into(),
            json!(
                "One scope of a .cli.json config as read by Portcullis. See docs/configuration.md."
            ),
        );
        for (k, v) in std::mem::take(map) {
            if !ordered.contains_key(&k) {
                ordered.insert(k, v);
            }
        }
        *map = ordered;
    }
    schema
}

/// The per-scope schema: [`config_schema`] with every `required` (and the root `anyOf` built
/// from `required`) removed.
pub fn scope_schema() -> Value {
    let mut schema = config_schema();
    strip_required(&mut schema);
    if let Some(map) = schema.as_object_mut() {
        map.remove("anyOf");
    }
    schema
}

/// Pretty-printed [`config_schema`] with a trailing newline: the content of `docs/config.schema.json`.
pub fn published_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&config_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// schemars describes `Option<T>` as "T or null"; the loader treats an absent key as unset and
/// has no use for `null`, so drop the null alternative everywhere.
fn strip_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = map.get_mut(key) {
                    branches.retain(|b| b != &json!({"type": "null"}));
                    if branches.len() == 1 {
                        let only = branches.remove(0);
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("enum") {
                options.retain(|o| !o.is_null());
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

fn strip_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("required");
            map.values_mut().for_each(strip_required);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_required),
        _ => {}
    }
}

/// The compiled per-scope validator, built once per process.
fn scope_validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| jsonschema::validator_for(&scope_schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Every schema violation in one scope document, as `(path, message)` pairs.
pub fn scope_problems(doc: &Value) -> Vec<(JsonPath, String)> {
    let validator = match scope_validator() {
        Ok(v) => v,
        Err(e) => {
            return vec![(
                JsonPath::root(),
                format!("internal: config schema does not compile: {e}"),
            )]
        }
    };
    let mut problems = Vec::new();
    for error in validator.iter_errors(doc) {
        let path = JsonPath(
            error
                .instance_path()
                .iter()
                .map(|s| match s {
                    LocationSegment::Property(p) => super::path::Segment::Key(p.to_string()),
                    LocationSegment::Index(i) => super::path::Segment::Index(i),
                })
                .collect(),
        );
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    problems.push((path.key(key), "unknown field".to_owned()));
                }
            }
            kind => problems.push((path, describe(kind))),
        }
    }
    problems
}

fn describe(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("must be of type {expected}")
        }
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Required { property } => format!("{property} is required"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} character(s) long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} item(s)"),
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} entr(y/ies)")
        }
        other => format!("does not match the schema ({})", other.keyword()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_schema_has_no_required_keys_and_full_schema_does() {
        let full = config_schema().to_string();
        assert!(full.contains("\"required\""));
        assert!(!scope_schema().to_string().contains("\"required\""));
    }

    #[test]
    fn null_is_not_accepted_for_optional_keys() {
        let problems = scope_problems(&json!({"cli": null}));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0.to_string(), "cli");
    }

    #[test]
    fn schema_messages_never_quote_the_offending_value() {
        let doc = json!({"secrets": {"k": {"type": "literal", "value": 424242}}});
        let problems = scope_problems(&doc);
        assert_eq!(problems[0].0.to_string(), "secrets.k.value");
        assert!(!problems[0].1.contains("424242"), "{}", problems[0].1);
    }
}
