//! Skill manifests (`services.<id>.skills`) -> `guidance` on the catalog's tools.
//!
//! Rule (as the reference): a manifest is JSON; only `toolGuidance` is used, keyed by tool id,
//! each entry `{whenToUse: [string], avoidWhen: [string], examples: [{goal, command}]}` becoming
//! the tool's `guidance` (other members are documentation for people and are not copied).
//! Manifests apply in config order; a later one replaces an earlier one's guidance for the
//! same tool. Failure mode: a manifest that is not JSON, or whose `toolGuidance` entries have
//! the wrong types, fails the service's source, naming the file and JSON path. A manifest
//! naming a tool the service does not have is not an error (the reference ignores it) but a
//! warning `portcullis check` prints, so a renamed or ignored operation does not lose its
//! guidance silently.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::Tool;

/// Parse one manifest into tool id -> guidance.
pub(crate) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let root = doc
        .as_object()
        .ok_or_else(|| "$: expected an object".to_owned())?;
    let guidance = match root.get("toolGuidance") {
        Some(Value::Object(map)) => map,
        Some(_) => return Err("$.toolGuidance: expected an object keyed by tool id".into()),
        None => return Err("$.toolGuidance: is required".into()),
    };
    let mut out = BTreeMap::new();
    for (tool_id, entry) in guidance {
        let at = format!("$.toolGuidance[{tool_id:?}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object"))?;
        let mut kept = Map::new();
        for key in ["whenToUse", "avoidWhen"] {
            if let Some(value) = entry.get(key) {
                let ok = value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string));
                if !ok {
                    return Err(format!("{at}.{key}: expected an array of strings"));
                }
                kept.insert(key.to_owned(), value.clone());
            }
        }
        if let Some(value) = entry.get("examples") {
            let items = value
                .as_array()
                .ok_or_else(|| format!("{at}.examples: expected an array of objects"))?;
            let mut examples = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item = item
                    .as_object()
                    .ok_or_else(|| format!("{at}.examples[{i}]: expected an object"))?;
                let mut example = Map::new();
                for key in ["goal", "command"] {
                    match item.get(key) {
                        None => {}
                        Some(Value::String(s)) => {
                            example.insert(key.to_owned(), Value::String(s.clone()));
                        }
                        Some(_) => {
                            return Err(format!("{at}.examples[{i}].{key}: expected a string"))
                        }
                    }
                }
                examples.push(Value::Object(example));
            }
            kept.insert("examples".to_owned(), Value::Array(examples));
        }
        out.insert(tool_id.clone(), Value::Object(kept));
    }
    Ok(out)
}

/// Put each entry's guidance on its tool; the warnings name the entries that match no tool.
pub(crate) fn apply(guidance: BTreeMap<String, Value>, tools: &mut [Tool]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (tool_id, value) in guidance {
        match tools.iter_mut().find(|t| t.id == tool_id) {
            Some(tool) => tool.guidance = Some(value),
            None => warnings.push(format!(
                "guidance for tool {tool_id:?}, which this service does not have"
            )),
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tool_guidance_is_kept_and_unknown_tools_are_warned_about() {
        let manifest = br#"{"oasCliSkill":"1.0.0","serviceId":"t","summary":"s",
            "toolGuidance":{"t:list":{"whenToUse":["a"],"avoidWhen":["b"],
              "examples":[{"goal":"g","command":"c","extra":1}],"note":"dropped"},
              "t:gone":{"whenToUse":["x"]}}}"#;
        let mut tools = vec![Tool {
            id: "t:list".into(),
            ..Tool::default()
        }];
        let warnings = apply(parse(manifest).unwrap(), &mut tools);
        assert_eq!(
            tools[0].guidance,
            Some(serde_json::json!({"whenToUse":["a"],"avoidWhen":["b"],
                "examples":[{"goal":"g","command":"c"}]}))
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("\"t:gone\""), "{warnings:?}");
    }

    #[test]
    fn malformed_manifests_name_the_json_path() {
        for (text, expected) in [
            ("whenToUse: [a]", "not JSON"),
            ("{}", "$.toolGuidance: is required"),
            (
                r#"{"toolGuidance":[]}"#,
                "$.toolGuidance: expected an object",
            ),
            (
                r#"{"toolGuidance":{"t:x":{"whenToUse":"a"}}}"#,
                "$.toolGuidance[\"t:x\"].whenToUse: expected an array of strings",
            ),
            (
                r#"{"toolGuidance":{"t:x":{"examples":[{"goal":1}]}}}"#,
                "$.toolGuidance[\"t:x\"].examples[0].goal: expected a string",
            ),
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(err.starts_with(expected), "{text}: {err}");
        }
    }
}
