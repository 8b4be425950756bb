//! What of an MCP tool is pinned, its digest, and a readable diff between two definitions.
//!
//! | part | in the definition |
//! |---|---|
//! | `name`, `title`, `description` | as listed |
//! | `inputSchema`, `outputSchema` | as listed (absent = not in the definition) |
//! | `annotations` | as listed (every hint, `title` included) |
//! | `_meta`, `icons`, anything else | not pinned: neither changes what a caller or model is told the tool does |
//!
//! The digest is `sha256:<hex>` of the definition's canonical JSON (object keys sorted at every
//! level, no whitespace: `policy::approvals::canonical_json`), so key order in the server's
//! answer does not matter. The diff between two definitions is `catalog::pin_diff`'s (JSON
//! Pointers with the values before and after, bounded), shared with OpenAPI document pins.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub(crate) use crate::catalog::pin_diff::{changed_members, diff};
use crate::policy::approvals::canonical_json;

/// The members of a listed tool that make up its pinned definition.
const PINNED: [&str; 6] = [
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// The pinned part of a listed tool.
pub(crate) fn definition(tool: &rmcp::model::Tool) -> Value {
    let Ok(Value::Object(all)) = serde_json::to_value(tool) else {
        return Value::Null;
    };
    let kept: Map<String, Value> = all
        .into_iter()
        .filter(|(key, _)| PINNED.contains(&key.as_str()))
        .collect();
    Value::Object(kept)
}

/// `sha256:<hex>` of a definition's canonical JSON.
pub(crate) fn digest(definition: &Value) -> String {
    let hex = hex::encode(Sha256::digest(canonical_json(definition).as_bytes()));
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(value: Value) -> rmcp::model::Tool {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_digest_ignores_key_order_and_unpinned_members() {
        let a = tool(json!({"name": "t", "description": "d",
            "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {}}}}));
        let b = tool(
            json!({"inputSchema": {"properties": {"b": {}, "a": {"type": "string"}}, "type": "object"},
            "description": "d", "name": "t", "_meta": {"x": 1}}),
        );
        assert_eq!(digest(&definition(&a)), digest(&definition(&b)));
        let c = tool(json!({"name": "t", "description": "d.",
            "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {}}}}));
        assert_ne!(digest(&definition(&a)), digest(&definition(&c)));
        assert!(digest(&definition(&a)).starts_with("sha256:"));
        assert_eq!(digest(&definition(&a)).len(), 7 + 64);
    }

    #[test]
    fn every_pinned_member_changes_the_digest() {
        let base = json!({"name": "t", "title": "T", "description": "d",
            "inputSchema": {"type": "object"}, "outputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": true}});
        let pinned = digest(&definition(&tool(base.clone())));
        for (member, value) in [
            ("name", json!("u")),
            ("title", json!("U")),
            ("description", json!("e")),
            (
                "inputSchema",
                json!({"type": "object", "properties": {"x": {}}}),
            ),
            ("outputSchema", json!({"type": "object", "required": ["x"]})),
            ("annotations", json!({"readOnlyHint": false})),
        ] {
            let mut changed = base.clone();
            changed[member] = value;
            assert_ne!(
                pinned,
                digest(&definition(&tool(changed))),
                "{member} is not pinned"
            );
        }
    }
}
