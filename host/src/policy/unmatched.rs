//! `portcullis check`: policy patterns that match no tool of the built catalog.
//!
//! Such a pattern loads fine but does nothing today, which is usually a typo (`tickets:delete`
//! for `tickets:deleteTicket`) or a tool that was renamed or disabled. Each one is a warning,
//! never an error: a deny written ahead of a tool that does not exist yet is legitimate.
//! Managed-scope denies are part of the merged `policy.deny` and are reported there. A
//! `deny: ["**"]` that closes an allow-list is not reported.

use crate::config::path::JsonPath;
use crate::config::{Config, Diagnostic};

use crate::catalog::pattern::Pattern;

/// One warning per pattern (deny, managed deny, approvalRequired, tool sets) that matches none
/// of `tool_ids`. Invalid patterns are left to the config errors.
pub fn unmatched_patterns<'a>(
    config: &Config,
    tool_ids: impl Iterator<Item = &'a str> + Clone,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut check = |path: JsonPath, patterns: Option<&Vec<String>>, skip_double_star: bool| {
        for (i, raw) in patterns.into_iter().flatten().enumerate() {
            let Ok(pattern) = Pattern::parse(raw) else {
                continue;
            };
            if (skip_double_star && raw == "**") || tool_ids.clone().any(|id| pattern.matches(id)) {
                continue;
            }
            out.push(Diagnostic {
                file: None,
                path: path.index(i).to_string(),
                message: format!("pattern {raw:?} matches no tool in the catalog"),
            });
        }
    };
    if let Some(policy) = &config.policy {
        check(
            JsonPath::of(&["policy", "deny"]),
            policy.deny.as_ref(),
            false,
        );
        check(
            JsonPath::of(&["policy", "approvalRequired"]),
            policy.approval_required.as_ref(),
            false,
        );
    }
    let sets = config.curation.as_ref().and_then(|c| c.tool_sets.as_ref());
    for (name, set) in sets.into_iter().flatten() {
        let base = JsonPath::of(&["curation", "toolSets", name]);
        let has_allow = set.allow.as_ref().is_some_and(|a| !a.is_empty());
        check(base.key("allow"), set.allow.as_ref(), false);
        check(base.key("deny"), set.deny.as_ref(), has_allow);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_patterns_matching_nothing_are_reported_with_their_path() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "policy": {"deny": ["t:a", "t:nope"], "approvalRequired": ["x:**"]},
            "curation": {"toolSets": {"s": {"allow": ["t:*"], "deny": ["**", "t:zz*"]}}}
        }))
        .unwrap();
        let ids = ["t:a", "t:b"];
        let warnings = unmatched_patterns(&config, ids.iter().copied());
        let paths: Vec<_> = warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "policy.deny[1]",
                "policy.approvalRequired[0]",
                "curation.toolSets.s.deny[1]"
            ]
        );
        assert!(warnings[0].message.contains("\"t:nope\""));
    }
}
