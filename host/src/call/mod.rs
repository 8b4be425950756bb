//! The tool call, transport-free: one pipeline behind every door (HTTP today; MCP, CLI and
//! workflows call the same functions).
//!
//! A door parses its request into a [`CallRequest`], binds the config and authenticates into
//! an [`Admitted`], calls [`execute()`], [`explain()`] or [`approve()`], and maps the answer or the
//! [`Refusal`] to its own terms (the HTTP edge: `server::refusal`, the only place that knows
//! status codes). Nothing here names a transport.
//!
//! ```text
//!  lookup ──► envelope ──► policy ──► credentials ──► request ──► intent ──► backend ──► outcome
//!  execute.rs execute.rs   execute.rs http_backend.rs http_backend audit_trail http_backend audit_trail
//!                          explain.rs                              .rs        or mcp_backend .rs
//! ```
//!
//! | step | file | refusal |
//! |---|---|---|
//! | lookup | `execute.rs` | `ToolNotFound` (not audited) |
//! | envelope (scopes) | `execute.rs` | `OutsideEnvelope` |
//! | policy | `execute.rs`, [`explain::policy`] | `Policy` |
//! | credentials (HTTP only) | `http_backend.rs` | `Credentials` |
//! | request building | `http_backend.rs` | `InvalidRequest` |
//! | intent (write-ahead record) | `audit_trail.rs` | `AuditUnavailable` |
//! | backend: HTTP upstream or MCP session | `http_backend.rs`, `mcp_backend.rs` | `Upstream`, `Withheld`, `Mcp`, `ToolError` |
//! | outcome record | `audit_trail.rs` | `AuditUnavailable` |
//!
//! A workflow run (`workflow.rs`) calls [`execute()`] once per step, after checking every
//! step's envelope, and stops at the first refused or unsuccessful step.
//!
//! [`explain()`] stops after policy and takes no grant; [`approve()`] runs lookup, the approver
//! scope and the envelope, then issues a grant (`approve.rs`). Every record goes through one
//! `AuditTrail` (`audit_trail.rs`); how a refusal is recorded follows from its variant
//! ([`Refusal::audit`]).

mod admitted;
mod approve;
mod audit_trail;
mod execute;
mod explain;
mod http_backend;
mod mcp_backend;
mod refusal;
mod workflow;

// Crate-internal: the doors reach the call through the composition root or `server`.
pub(crate) use admitted::{Admitted, CallArgs, CallRequest, Stages, ToolIndex};
pub(crate) use approve::approve;
pub(crate) use execute::execute;
pub(crate) use explain::explain;
pub(crate) use refusal::Refusal;
pub(crate) use workflow::{run as run_workflow, RunRefusal, RunRequest};

#[cfg(test)]
mod tests {
    /// The call stays transport-free: no file here may name the HTTP framework or its status
    /// type. A door maps a [`super::Refusal`] itself (`server::refusal` for HTTP).
    #[test]
    fn call_module_names_no_transport() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/call");
        let banned = ["axum", "StatusCode", "crate::server"];
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let own = path.file_name().is_some_and(|n| n == "mod.rs");
            for word in banned {
                // This test names the words it bans; the rest of mod.rs may not.
                let text = if own {
                    text.split("mod tests").next().unwrap_or_default()
                } else {
                    &text
                };
                if text.contains(word) {
                    found.push(format!("{} mentions {word}", path.display()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "call/ must stay transport-free: {found:?}. Keep HTTP types in server/ and map a \
             Refusal to a response in server/refusal.rs"
        );
    }
}
