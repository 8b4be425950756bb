//! Effective views (contract 4.4): `discover` plus one view per agent profile.
//!
//! | profile | tools in the view |
//! |---|---|
//! | no `toolSet` | every tool |
//! | `toolSet` names a set | tools matching an `allow` pattern (any tool when `allow` is empty), minus tools matching a `deny` pattern; `deny: ["**"]` is skipped when `allow` is non-empty (the allow list is the curation) |
//! | `toolSet` names no set | no tools (fail closed; config validation reports the dangling name) |
//!
//! Unparsable patterns are skipped here; config validation reports them.

use super::pattern::Pattern;
use portcullis_config::{Config, Mode, ToolSet};

use super::model::{EffectiveView, Tool};

/// Build `discover` and the profile views, profiles sorted by name.
pub fn effective_views(config: &Config, tools: &[Tool]) -> Vec<EffectiveView> {
    let mut views = vec![EffectiveView {
        name: "discover".to_owned(),
        // The reference runtime's `mode` for this view; its client reads it.
        mode: "discover".to_owned(),
        tools: tools.to_vec(),
    }];
    let profiles = config.agents.as_ref().and_then(|a| a.profiles.as_ref());
    let tool_sets = config.curation.as_ref().and_then(|c| c.tool_sets.as_ref());
    for (name, profile) in profiles.into_iter().flatten() {
        let mode = match profile.mode {
            Some(Mode::Discover) => "discover",
            Some(Mode::Curated) => "curated",
            None => "",
        };
        let selected = match &profile.tool_set {
            None => tools.to_vec(),
            Some(set_name) => match tool_sets.and_then(|s| s.get(set_name)) {
                Some(set) => select(set, tools),
                None => Vec::new(),
            },
        };
        views.push(EffectiveView {
            name: name.clone(),
            mode: mode.to_owned(),
            tools: selected,
        });
    }
    views
}

fn compile(patterns: Option<&Vec<String>>) -> Vec<Pattern> {
    patterns
        .into_iter()
        .flatten()
        .filter_map(|p| Pattern::parse(p).ok())
        .collect()
}

fn select(set: &ToolSet, tools: &[Tool]) -> Vec<Tool> {
    let allow = compile(set.allow.as_ref());
    let has_allow = set.allow.as_ref().is_some_and(|a| !a.is_empty());
    let deny: Vec<Pattern> = compile(set.deny.as_ref())
        .into_iter()
        .filter(|p| !(has_allow && p.as_str() == "**"))
        .collect();
    tools
        .iter()
        .filter(|t| !has_allow || allow.iter().any(|p| p.matches(&t.id)))
        .filter(|t| !deny.iter().any(|p| p.matches(&t.id)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(ids: &[&str]) -> Vec<Tool> {
        ids.iter()
            .map(|id| Tool {
                id: (*id).to_owned(),
                ..Tool::default()
            })
            .collect()
    }

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    fn ids(view: &EffectiveView) -> Vec<&str> {
        view.tools.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn discover_comes_first_and_profiles_follow_sorted() {
        let c = config(r#"{"agents":{"profiles":{"zed":{},"alpha":{"mode":"curated"}}}}"#);
        let views = effective_views(&c, &tools(&["a:x"]));
        let names: Vec<_> = views
            .iter()
            .map(|v| (v.name.as_str(), v.mode.as_str()))
            .collect();
        assert_eq!(
            names,
            [("discover", "discover"), ("alpha", "curated"), ("zed", "")]
        );
        assert_eq!(ids(&views[2]), ["a:x"]);
    }

    #[test]
    fn allow_then_deny_with_catch_all_deny_skipped_under_allow() {
        let c = config(
            r#"{"curation":{"toolSets":{"r":{"allow":["t:get*"],"deny":["**","t:getSecret"]},
                "d":{"deny":["t:*"]}}},
               "agents":{"profiles":{"reader":{"toolSet":"r"},"deny":{"toolSet":"d"},"ghost":{"toolSet":"nope"}}}}"#,
        );
        let views = effective_views(&c, &tools(&["t:getA", "t:getSecret", "t:delA", "u:x"]));
        let by = |n: &str| views.iter().find(|v| v.name == n).unwrap();
        assert_eq!(ids(by("reader")), ["t:getA"]);
        assert_eq!(ids(by("deny")), ["u:x"]);
        assert!(by("ghost").tools.is_empty());
    }
}
