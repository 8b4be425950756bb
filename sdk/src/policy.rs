//! Policy evaluators: one voice in the execution-time decision.
//!
//! Every configured evaluator is asked; any deny wins over any allow. An `Err` is a plugin failure
//! and denies the call (`policy_error`), as does a trap or a timeout: an evaluator never fails open.
//! Evaluators get no network (the world has no `outbound-http`): calling [`crate::http::fetch`]
//! from one makes the component fail to load.

use std::marker::PhantomData;

use crate::bindings::policy_evaluator::exports::portcullis::plugin::policy_evaluator as wit;
use crate::plugin::{self, Plugin, RequestContext};

/// A policy evaluator plugin.
pub trait PolicyEvaluator: Plugin {
    /// Decide. An `Err` (a message for the operator's log) denies the call with `policy_error`.
    fn evaluate(&self, input: &PolicyInput) -> Result<Decision, String>;
}

/// Everything the evaluator may base its decision on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyInput {
    /// Who is asking.
    pub context: RequestContext,
    /// The caller's scopes (empty when runtime auth is off).
    pub scopes: Vec<String>,
    /// The tool being called.
    pub tool: ToolInfo,
    /// The effective mode (`discover`, `curated`, ...).
    pub mode: String,
    /// The selected agent profile, if any.
    pub profile: Option<String>,
    /// The call's arguments as a JSON object: `{"pathArgs": [...], "flags": {...}, "body": ...}`.
    pub arguments_json: String,
}

/// The tool being called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolInfo {
    /// Catalog id, `<service>:<name>`.
    pub id: String,
    /// Service the tool belongs to.
    pub service: String,
    /// HTTP method for OpenAPI tools (uppercase); `None` for MCP tools.
    pub method: Option<String>,
    /// Path template for OpenAPI tools (`/tickets/{id}`); `None` for MCP tools.
    pub path: Option<String>,
    /// Safety facts from the catalog.
    pub safety: Safety,
}

/// Safety facts from the catalog (OpenAPI `x-cli-safety`, HTTP method defaults, MCP annotations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Safety {
    /// The tool only reads.
    pub read_only: bool,
    /// The tool may destroy data.
    pub destructive: bool,
    /// Repeating the call has no further effect.
    pub idempotent: bool,
    /// The catalog already asks for an approval.
    pub requires_approval: bool,
}

/// The evaluator's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No objection.
    Allow,
    /// Refuse the call; the reason is audited and returned as `plugin_deny`.
    Deny(String),
    /// Allow only with an approval; the reason is shown to the approver.
    RequireApproval(String),
}

impl From<wit::PolicyInput> for PolicyInput {
    fn from(input: wit::PolicyInput) -> Self {
        let safety = input.tool.safety;
        Self {
            context: input.context.into(),
            scopes: input.scopes,
            tool: ToolInfo {
                id: input.tool.id,
                service: input.tool.service,
                method: input.tool.method,
                path: input.tool.path,
                safety: Safety {
                    read_only: safety.contains(wit::Safety::READ_ONLY),
                    destructive: safety.contains(wit::Safety::DESTRUCTIVE),
                    idempotent: safety.contains(wit::Safety::IDEMPOTENT),
                    requires_approval: safety.contains(wit::Safety::REQUIRES_APPROVAL),
                },
            },
            mode: input.mode,
            profile: input.profile,
            arguments_json: input.arguments_json,
        }
    }
}

impl From<Decision> for wit::Decision {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Allow => Self::Allow,
            Decision::Deny(reason) => Self::Deny(reason),
            Decision::RequireApproval(reason) => Self::RequireApproval(reason),
        }
    }
}

/// The adapter the export macro hands to wit-bindgen. Not public API.
#[doc(hidden)]
pub struct PolicyEvaluatorExport<P>(PhantomData<P>);

impl<P: PolicyEvaluator> crate::lifecycle::Lifecycle for PolicyEvaluatorExport<P> {
    type Plugin = P;
    const KIND: crate::lifecycle::Kind = crate::lifecycle::Kind::PolicyEvaluator;
}

impl<P: PolicyEvaluator> wit::Guest for PolicyEvaluatorExport<P> {
    fn evaluate(input: wit::PolicyInput) -> Result<wit::Decision, String> {
        let input = PolicyInput::from(input);
        plugin::with_instance(|plugin: &P| plugin.evaluate(&input))
            .unwrap_or_else(|| Err(plugin::NOT_INITIALISED.to_owned()))
            .map(Into::into)
    }
}

/// Export a [`PolicyEvaluator`] as this crate's component. Call it once, at the crate root:
///
/// ```ignore
/// portcullis_sdk::export_policy_evaluator!(MyPolicy);
/// ```
#[macro_export]
macro_rules! export_policy_evaluator {
    ($plugin:ty) => {
        $crate::__export_plugin!(
            $crate::policy::PolicyEvaluatorExport<$plugin>,
            policy_evaluator,
            export_policy_evaluator_kind
        );
    };
}
