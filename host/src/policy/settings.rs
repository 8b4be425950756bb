//! Policy settings: every tool-id pattern (`policy.deny`, `policy.approvalRequired`,
//! `curation.toolSets.*.allow|deny`) and the approval mode's prerequisite.
//!
//! Rule: a pattern is checked per scope file, where it is written ([`check_patterns`]), so the
//! index in a diagnostic is the index in that file; it runs on the raw JSON, next to the schema,
//! and leaves non-string entries to the schema. Grant approvals without `runtime.server.auth` load
//! but cannot work, so they are a warning ([`warnings`]), not an error.

use serde_json::Value;

use crate::catalog::pattern::Pattern;
use crate::config::{ApprovalMode, Config, Diagnostic, JsonPath, Problems};

/// Every tool-id pattern in one scope document, checked where it is written (so the index in a
/// diagnostic is the index in that file). Runs on the raw JSON, so pattern problems are reported
/// alongside schema problems; non-string entries are left to the schema.
pub fn check_patterns(doc: &Value) -> Problems {
    let mut p = Problems::default();
    let mut check = |path: JsonPath| {
        let Some(Value::Array(items)) = path.lookup(doc) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(Err(e)) = item.as_str().map(Pattern::parse) {
                p.push(path.index(i), e.to_string());
            }
        }
    };
    check(JsonPath::of(&["policy", "deny"]));
    check(JsonPath::of(&["policy", "approvalRequired"]));
    let sets = JsonPath::of(&["curation", "toolSets"]);
    if let Some(Value::Object(map)) = sets.lookup(doc) {
        for name in map.keys() {
            check(sets.key(name).key("allow"));
            check(sets.key(name).key("deny"));
        }
    }
    p
}

/// Problems that do not make the config unusable: grant approvals without runtime auth.
pub fn warnings(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let grant_mode = config
        .policy
        .as_ref()
        .and_then(|p| p.approvals.as_ref())
        .and_then(|a| a.mode)
        == Some(ApprovalMode::Grant);
    let auth_on = config
        .runtime
        .as_ref()
        .and_then(|r| r.server.as_ref())
        .is_some_and(|s| s.auth.is_some());
    if grant_mode && !auth_on {
        out.push(Diagnostic {
            file: None,
            path: JsonPath::of(&["policy", "approvals", "mode"]).to_string(),
            message: "grants need runtime auth (an approver is an authenticated principal); \
                      without runtime.server.auth no approval-required tool can run"
                .into(),
        });
    }
    out
}
