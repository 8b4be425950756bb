//! The plugin slot of the pipeline: a native trait every policy evaluator implements.
//!
//! The pipeline does not care where a verdict comes from: [`super::wasm::PolicyPlugin`] implements
//! [`PolicyEvaluator`] for policy-evaluator components (by calling the plugin host), tests
//! implement it with fakes. The built-in rules are not an evaluator: they run first, in
//! `pipeline`, and an evaluator is only asked what they allow. An
//! evaluator answers [`PolicyVerdict`] or fails with a message; the pipeline turns every failure
//! (and every overrun of the request's budget) into a deny, never an allow.

use futures_util::future::BoxFuture;

/// What an evaluator is told about one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyQuery {
    /// Request id.
    pub request_id: String,
    /// Caller principal.
    pub principal: Option<String>,
    /// Caller scopes.
    pub scopes: Vec<String>,
    /// Tool id.
    pub tool_id: String,
    /// Tool's service.
    pub service: String,
    /// HTTP method (OpenAPI tools).
    pub method: Option<String>,
    /// Path template (OpenAPI tools).
    pub path: Option<String>,
    /// Safety facts: read-only, destructive, idempotent, requires-approval.
    pub read_only: bool,
    /// See `read_only`.
    pub destructive: bool,
    /// See `read_only`.
    pub idempotent: bool,
    /// See `read_only`.
    pub requires_approval: bool,
    /// Effective mode (`discover` or `curated`).
    pub mode: String,
    /// Agent profile.
    pub profile: Option<String>,
    /// The call's canonical arguments, `{"body":...,"flags":{...},"pathArgs":[...]}` (see
    /// [`super::approvals::canonical_arguments`]).
    pub arguments_json: String,
    /// When the pipeline's plugin budget (`policy.pluginBudgetMs`) runs out. Host-side only
    /// (never sent to a plugin): a plugin call is cut off here, so it may run in place.
    pub deadline: Option<std::time::Instant>,
}

/// An evaluator's (validated) verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// No objection.
    Allow,
    /// Refuse, with the evaluator's reason.
    Deny(String),
    /// Allow only with approval, with the evaluator's reason.
    RequireApproval(String),
}

/// A policy evaluator asked by the pipeline after the built-in rules.
///
/// `evaluate` must not block the async worker: long or CPU-bound work belongs on the blocking
/// pool. The pipeline bounds every call by the request's budget and drops the future when it
/// runs out; an `Err` is a failure (logged, never shown to the caller) and denies the call.
pub trait PolicyEvaluator: Send + Sync {
    /// The name used in decisions and audit records (`plugin:<name>`).
    fn name(&self) -> &str;

    /// Judge one call.
    fn evaluate<'a>(
        &'a self,
        query: &'a PolicyQuery,
    ) -> BoxFuture<'a, Result<PolicyVerdict, String>>;
}

impl std::fmt::Debug for dyn PolicyEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyEvaluator({})", self.name())
    }
}
