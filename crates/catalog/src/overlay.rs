//! OpenAPI Overlay 1.0 (`services.*.overlays`): edits applied to a source document before it
//! is normalized, so an overlay's `x-cli-*` extensions follow exactly the rules of inline ones.
//!
//! | part | rule |
//! |---|---|
//! | document | YAML or JSON; `overlay` (a `1.x` version) and a non-empty `actions` list are required; `info` and `extends` are read but unused (an overlay applies to its service's source) |
//! | `target` | an RFC 9535 JSONPath (`$.paths['/a'].delete`, `$.paths.*.get`, `$..parameters[?@.name=='x']`) |
//! | `update` on an object | deep merge: objects merge key by key, recursively; any other value replaces |
//! | `update` on an array | the update's elements (or the update itself, when not an array) are appended |
//! | `remove: true` | every selected node is removed from its parent (`$` itself cannot be) |
//! | order | overlays in config order; in each, actions in document order; each sees the previous result |
//! | target matching nothing | not an error: reported as an [`Unmatched`] warning (`portcullis check`) |
//!
//! Failure mode (fail closed): an unreadable or unparsable document, an unknown field (only
//! `x-` extensions may be added, so a typo such as `updte:` cannot silently drop an
//! `x-cli-ignore`), an invalid JSONPath, an action with both or neither of `update` and
//! `remove`, or an `update` of a scalar node or with a non-object for an object node is an
//! [`OverlayError`] naming the overlay and the action; the caller fails the whole source, never
//! serving the document without the overlay.

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// A parsed overlay document.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// Where it came from (as written in the config), for messages.
    pub uri: String,
    actions: Vec<Action>,
}

#[derive(Debug, Clone)]
struct Action {
    target: String,
    path: JsonPath,
    change: Change,
}

#[derive(Debug, Clone)]
enum Change {
    Update(Value),
    Remove,
}

/// The document as written; unknown non-`x-` fields are refused by hand (below), so
/// extensions stay allowed.
#[derive(Deserialize)]
struct RawOverlay {
    overlay: Option<Value>,
    actions: Option<Vec<Map<String, Value>>>,
}

const DOCUMENT_FIELDS: [&str; 4] = ["overlay", "info", "extends", "actions"];
const ACTION_FIELDS: [&str; 4] = ["target", "description", "update", "remove"];

/// Why an overlay could not be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// Not YAML/JSON, or not an overlay document.
    #[error("overlay {uri:?}: {message}")]
    Document {
        /// The overlay as written in the config.
        uri: String,
        /// What is wrong.
        message: String,
    },
    /// One action is malformed or cannot be applied.
    #[error("overlay {uri:?} actions[{index}]: {message}")]
    Action {
        /// The overlay as written in the config.
        uri: String,
        /// Position in `actions`.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// An action whose target selected nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The overlay as written in the config.
    pub uri: String,
    /// Position in `actions`.
    pub index: usize,
    /// The target as written.
    pub target: String,
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "overlay {:?} actions[{}].target {:?} matches nothing in the document",
            self.uri, self.index, self.target
        )
    }
}

impl Overlay {
    /// Parse an overlay document (YAML 1.2 is a superset of JSON, so one parser reads both).
    pub fn parse(uri: &str, bytes: &[u8]) -> Result<Self, OverlayError> {
        let doc_error = |message: String| OverlayError::Document {
            uri: uri.to_owned(),
            message,
        };
        let value: Value = serde_yaml_ng::from_slice(bytes)
            .map_err(|e| doc_error(format!("not valid YAML or JSON: {e}")))?;
        let Value::Object(fields) = &value else {
            return Err(doc_error("the document is not an object".to_owned()));
        };
        if let Some(unknown) = unknown_field(fields, &DOCUMENT_FIELDS) {
            return Err(doc_error(format!("unknown field {unknown:?}")));
        }
        let raw: RawOverlay = serde_json::from_value(value)
            .map_err(|e| doc_error(format!("not an overlay document: {e}")))?;
        match raw.overlay.as_ref().and_then(Value::as_str) {
            Some(v) if v.starts_with("1.") => {}
            Some(v) => return Err(doc_error(format!("unsupported overlay version {v:?}"))),
            None => {
                return Err(doc_error(
                    "`overlay` (the version, e.g. 1.0.0) is required".to_owned(),
                ))
            }
        }
        let raw_actions = raw
            .actions
            .filter(|a| !a.is_empty())
            .ok_or_else(|| doc_error("`actions` must be a non-empty list".to_owned()))?;
        let mut actions = Vec::with_capacity(raw_actions.len());
        for (index, fields) in raw_actions.into_iter().enumerate() {
            actions.push(
                parse_action(fields).map_err(|message| OverlayError::Action {
                    uri: uri.to_owned(),
                    index,
                    message,
                })?,
            );
        }
        Ok(Self {
            uri: uri.to_owned(),
            actions,
        })
    }

    /// Apply every action to `doc` in order; returns the actions that selected nothing.
    pub fn apply(&self, doc: &mut Value) -> Result<Vec<Unmatched>, OverlayError> {
        let mut unmatched = Vec::new();
        for (index, action) in self.actions.iter().enumerate() {
            let fail = |message: String| OverlayError::Action {
                uri: self.uri.clone(),
                index,
                message: format!("target {:?}: {message}", action.target),
            };
            // `dedup`: `$.tags[0,0]` selects one node once, so it is removed or appended to once.
            let selected = action.path.query_located(doc).dedup();
            let locations: Vec<Vec<Step>> = selected
                .locations()
                .map(|path| {
                    path.iter()
                        .map(|e| match e.as_index() {
                            Some(i) => Step::Index(i),
                            None => Step::Name(e.as_name().unwrap_or_default().to_owned()),
                        })
                        .collect()
                })
                .collect();
            if locations.is_empty() {
                unmatched.push(Unmatched {
                    uri: self.uri.clone(),
                    index,
                    target: action.target.clone(),
                });
                continue;
            }
            match &action.change {
                Change::Update(update) => {
                    for location in &locations {
                        if let Some(node) = resolve_mut(doc, location) {
                            update_node(node, update).map_err(fail)?;
                        }
                    }
                }
                Change::Remove => {
                    // Deepest and last first, so earlier removals never shift a later index
                    // and a descendant is gone before its ancestor.
                    let mut ordered = locations;
                    ordered.sort();
                    for location in ordered.iter().rev() {
                        let Some((last, parent)) = location.split_last() else {
                            return Err(fail("the document root cannot be removed".to_owned()));
                        };
                        match (resolve_mut(doc, parent), last) {
                            (Some(Value::Object(map)), Step::Name(name)) => {
                                map.shift_remove(name);
                            }
                            (Some(Value::Array(items)), Step::Index(i)) if *i < items.len() => {
                                items.remove(*i);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(unmatched)
    }
}

/// A service's overlay documents as read: `(uri as written in the config, bytes)`, in order.
pub type Loaded = [(String, Vec<u8>)];

/// Parse and apply `overlays` to `tree` in order. Errors and warnings (targets matching
/// nothing) name the config path: `services.<id>.overlays[<n>]: overlay "<uri>" actions[<i>]...`.
pub fn apply_all(
    tree: &mut Value,
    service_id: &str,
    overlays: &Loaded,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (i, (uri, bytes)) in overlays.iter().enumerate() {
        let at = |e: OverlayError| format!("services.{service_id}.overlays[{i}]: {e}");
        let overlay = Overlay::parse(uri, bytes).map_err(at)?;
        let missed = overlay.apply(tree).map_err(at)?;
        warnings.extend(
            missed
                .iter()
                .map(|u| format!("services.{service_id}.overlays[{i}]: {u}")),
        );
    }
    Ok(warnings)
}

/// One step of a normalized path; ordered so that array indices compare numerically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Index(usize),
    Name(String),
}

fn unknown_field<'a>(fields: &'a Map<String, Value>, known: &[&str]) -> Option<&'a str> {
    fields
        .keys()
        .map(String::as_str)
        .find(|k| !k.starts_with("x-") && !known.contains(k))
}

fn parse_action(fields: Map<String, Value>) -> Result<Action, String> {
    if let Some(unknown) = unknown_field(&fields, &ACTION_FIELDS) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let target = match fields.get("target") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err("`target` must be a string".to_owned()),
        None => return Err("`target` is required".to_owned()),
    };
    let path = JsonPath::parse(&target)
        .map_err(|e| format!("target {target:?} is not a valid JSONPath (RFC 9535): {e}"))?;
    let remove = match fields.get("remove") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`remove` must be true or false".to_owned()),
    };
    let change = match (fields.get("update"), remove) {
        (Some(_), true) => {
            return Err("an action has either `update` or `remove: true`, not both".to_owned())
        }
        (Some(update), false) => Change::Update(update.clone()),
        (None, true) => Change::Remove,
        (None, false) => return Err("an action needs `update` or `remove: true`".to_owned()),
    };
    Ok(Action {
        target,
        path,
        change,
    })
}

fn resolve_mut<'a>(mut node: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    for step in steps {
        node = match (node, step) {
            (Value::Object(map), Step::Name(name)) => map.get_mut(name)?,
            (Value::Array(items), Step::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn update_node(node: &mut Value, update: &Value) -> Result<(), String> {
    match node {
        Value::Object(target) => match update {
            Value::Object(changes) => {
                merge(target, changes);
                Ok(())
            }
            _ => Err("the target is an object, so `update` must be an object".to_owned()),
        },
        Value::Array(items) => {
            match update {
                Value::Array(more) => items.extend(more.iter().cloned()),
                one => items.push(one.clone()),
            }
            Ok(())
        }
        _ => Err("`update` can only target objects and arrays".to_owned()),
    }
}

/// Deep merge: nested objects merge, anything else (arrays included) replaces.
fn merge(target: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (key, change) in changes {
        match (target.get_mut(key), change) {
            (Some(Value::Object(inner)), Value::Object(more)) => merge(inner, more),
            _ => {
                target.insert(key.clone(), change.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"openapi": "3.1.0", "paths": {
            "/tickets": {"get": {"operationId": "list", "x-cli-safety": {"readOnly": true},
                "parameters": [{"name": "status", "in": "query"}, {"name": "debug", "in": "query"}]}},
            "/admin/tickets": {"get": {"operationId": "adminList"}, "delete": {"operationId": "purge"}}
        }})
    }

    fn overlay(yaml: &str) -> Result<Overlay, OverlayError> {
        Overlay::parse("o.yaml", yaml.as_bytes())
    }

    #[test]
    fn updates_deep_merge_and_wildcards_and_filters_select_every_match() {
        let o = overlay(
            "overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions:
  - target: \"$.paths.*.get\"
    update: {x-cli-safety: {requiresApproval: true}}
  - target: \"$.paths['/tickets'].get.parameters[?(@.name=='status')]\"
    update: {x-cli-name: state}
  - target: \"$.paths['/tickets'].get.parameters\"
    update: {name: extra, in: header}
",
        )
        .unwrap();
        let mut d = doc();
        assert!(o.apply(&mut d).unwrap().is_empty());
        let get = &d["paths"]["/tickets"]["get"];
        assert_eq!(
            get["x-cli-safety"],
            json!({"readOnly": true, "requiresApproval": true})
        );
        assert_eq!(
            d["paths"]["/admin/tickets"]["get"]["x-cli-safety"]["requiresApproval"],
            true
        );
        assert_eq!(get["parameters"][0]["x-cli-name"], "state");
        assert_eq!(get["parameters"][2]["name"], "extra");
    }

    #[test]
    fn remove_deletes_every_match_without_shifting_later_ones() {
        let o = overlay(
            "overlay: 1.0.0\nactions:
  - target: \"$.paths['/admin/tickets'].delete\"
    remove: true
  - target: \"$.paths['/tickets'].get.parameters[*]\"
    remove: true
",
        )
        .unwrap();
        let mut d = doc();
        o.apply(&mut d).unwrap();
        assert_eq!(
            d["paths"]["/admin/tickets"],
            json!({"get": {"operationId": "adminList"}})
        );
        assert_eq!(d["paths"]["/tickets"]["get"]["parameters"], json!([]));
    }

    #[test]
    fn a_target_matching_nothing_is_reported_with_its_action_index() {
        let o = overlay(
            "overlay: 1.0.0\nactions:\n  - {target: '$.info', update: {x-a: 1}}\n  - {target: \"$.paths['/nope'].get\", update: {x-cli-ignore: true}}\n",
        )
        .unwrap();
        let mut d = doc();
        d["info"] = json!({});
        let unmatched = o.apply(&mut d).unwrap();
        assert_eq!(
            unmatched,
            [Unmatched {
                uri: "o.yaml".into(),
                index: 1,
                target: "$.paths['/nope'].get".into()
            }]
        );
        assert!(unmatched[0].to_string().contains("actions[1].target"));
    }

    #[test]
    fn malformed_overlays_are_errors_naming_the_action() {
        for (text, expect) in [
            ("actions: []", "`overlay`"),
            (
                "overlay: 2.0.0\nactions: [{target: $, remove: true}]",
                "unsupported overlay version",
            ),
            ("overlay: 1.0.0\nactions: []", "non-empty"),
            ("overlay: 1.0.0\nactoins: []", "unknown field \"actoins\""),
            (
                "overlay: 1.0.0\nactions: [{target: '$.paths[', remove: true}]",
                "actions[0]: target \"$.paths[\" is not a valid JSONPath",
            ),
            (
                "overlay: 1.0.0\nactions: [{target: $.info, updte: {x-cli-ignore: true}}]",
                "actions[0]: unknown field \"updte\"",
            ),
            (
                "overlay: 1.0.0\nactions: [{target: $.info, update: {}, remove: true}]",
                "not both",
            ),
            (
                "overlay: 1.0.0\nactions: [{target: $.info}]",
                "needs `update`",
            ),
            (
                "overlay: 1.0.0\nactions: [{target: $.info, remove: 'yes'}]",
                "true or false",
            ),
            ("[1, 2", "not valid YAML or JSON"),
        ] {
            let err = overlay(text)
                .err()
                .unwrap_or_else(|| panic!("{text} parsed"))
                .to_string();
            assert!(
                err.starts_with("overlay \"o.yaml\"") && err.contains(expect),
                "{text}: {err}"
            );
        }
        let scalar =
            overlay("overlay: 1.0.0\nactions: [{target: $.openapi, update: {a: 1}}]").unwrap();
        let err = scalar.apply(&mut doc()).unwrap_err().to_string();
        assert!(
            err.contains("actions[0]: target \"$.openapi\": `update` can only target"),
            "{err}"
        );
        let root = overlay("overlay: 1.0.0\nactions: [{target: $, remove: true}]").unwrap();
        assert!(root.apply(&mut doc()).is_err());
    }

    #[test]
    fn json_overlays_and_extensions_are_accepted() {
        let o = overlay(r#"{"overlay":"1.0.0","x-note":1,"actions":[{"target":"$.paths['/tickets'].get","update":{"x-cli-name":"ls"},"x-why":"short"}]}"#).unwrap();
        let mut d = doc();
        o.apply(&mut d).unwrap();
        assert_eq!(d["paths"]["/tickets"]["get"]["x-cli-name"], "ls");
    }
}
