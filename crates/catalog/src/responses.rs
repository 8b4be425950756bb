//! An operation's success responses -> [`ResultSchema::Responses`] (what the MCP door offers as
//! `outputSchema`).
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | responses kept | `200`..`299` and `2XX`, in the document's order; `default`, 1xx, 3xx-5xx are not | - |
//! | a response `$ref` (`#/components/responses/...`) | resolved as request bodies are ([`Document::resolve`]) | a reference that cannot be followed leaves the tool without a result schema (the operation still loads: responses were never read before, and a broken one must not take a working tool away) |
//! | media type | the first whose name contains `json` (`application/json`, `application/vnd.github+json`, `application/problem+json`) that has a schema | a response without one is left out |
//! | the schema | kept as written, `$ref`s inside it included (as request-body schemas are) | - |
//! | size | at most [`MAX_NODES`] JSON values over all of an operation's kept schemas | a larger set is dropped whole: no result schema, rather than a partial one that would refuse valid answers |
//!
//! Nothing is cloned unless it is kept, so a document's responses cost the build only a walk.

use std::sync::Arc;

use serde_json::Value;

use super::model::ResultSchema;
use super::openapi::Document;

/// Most JSON values (objects, arrays, scalars) kept over one operation's success schemas.
pub const MAX_NODES: usize = 2_000;

/// The success responses' JSON schemas of the operation `raw_op` (module header).
pub fn success_schemas(doc: &Document, raw_op: &Value) -> Option<ResultSchema> {
    let responses = raw_op.get("responses")?.as_object()?;
    let mut kept: Vec<(&str, &Value)> = Vec::new();
    let mut budget = MAX_NODES;
    for (status, response) in responses {
        if !is_success(status) {
            continue;
        }
        let Ok(response) = doc.resolve(response) else {
            return None;
        };
        let schema = response
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(media, _)| media.to_ascii_lowercase().contains("json"))
            .find_map(|(_, media)| media.get("schema"));
        let Some(schema) = schema else {
            continue;
        };
        budget = within(schema, budget)?;
        kept.push((status, schema));
    }
    if kept.is_empty() {
        return None;
    }
    let kept: Vec<(String, Value)> = kept
        .into_iter()
        .map(|(status, schema)| (status.to_ascii_uppercase(), schema.clone()))
        .collect();
    Some(ResultSchema::Responses(Arc::from(kept)))
}

/// `200`..`299` or `2XX` (any case).
fn is_success(status: &str) -> bool {
    let bytes = status.as_bytes();
    bytes.len() == 3
        && bytes[0] == b'2'
        && (bytes[1..].iter().all(u8::is_ascii_digit) || bytes[1..].eq_ignore_ascii_case(b"xx"))
}

/// What is left of `budget` after counting `value`'s nodes; `None` once it runs out.
fn within(value: &Value, budget: usize) -> Option<usize> {
    let mut left = budget.checked_sub(1)?;
    match value {
        Value::Object(map) => {
            for v in map.values() {
                left = within(v, left)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                left = within(v, left)?;
            }
        }
        _ => {}
    }
    Some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas(op: Value, components: Value) -> Option<Vec<(String, Value)>> {
        let doc = Document::new(json!({"openapi": "3.1.0", "components": components})).unwrap();
        match success_schemas(&doc, &op)? {
            ResultSchema::Responses(kept) => Some(kept.to_vec()),
            ResultSchema::Mcp(_) => unreachable!("OpenAPI operations have responses"),
        }
    }

    #[test]
    fn json_success_responses_are_kept_as_written_and_others_are_not() {
        let kept = schemas(
            json!({"responses": {
                "200": {"content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/vnd.github+json": {"schema": {"$ref": "#/components/schemas/Repo"}}}},
                "2xx": {"$ref": "#/components/responses/Accepted"},
                "204": {"description": "no content"},
                "404": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "default": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "20": {"content": {"application/json": {"schema": {}}}}}}),
            json!({"responses": {"Accepted": {"content": {"application/json": {"schema": {"type": "array"}}}}}}),
        )
        .unwrap();
        assert_eq!(
            kept,
            vec![
                (
                    "200".to_owned(),
                    json!({"$ref": "#/components/schemas/Repo"})
                ),
                ("2XX".to_owned(), json!({"type": "array"})),
            ]
        );
    }

    #[test]
    fn no_schema_a_broken_reference_or_an_oversized_schema_means_no_result_schema() {
        assert!(schemas(json!({}), json!({})).is_none());
        assert!(schemas(json!({"responses": {"204": {}}}), json!({})).is_none());
        assert!(schemas(
            json!({"responses": {"200": {"$ref": "#/components/responses/Missing"}}}),
            json!({})
        )
        .is_none());
        let wide: serde_json::Map<String, Value> = (0..MAX_NODES)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let op = |schema: Value| json!({"responses": {"200": {"content": {"application/json": {"schema": schema}}}}});
        assert!(schemas(op(json!({"properties": wide})), json!({})).is_none());
        let fits: serde_json::Map<String, Value> = wide.into_iter().take(900).collect();
        assert!(schemas(op(json!({"properties": fits})), json!({})).is_some());
    }
}
