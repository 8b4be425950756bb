//! The WebAssembly adapter of the policy slot: a policy-evaluator component as a
//! [`PolicyEvaluator`].
//!
//! | step | rule |
//! |---|---|
//! | [`PolicyQuery`] → WIT `policy-input` | field for field; the safety facts become the `safety` flags; `deadline` stays host-side (it bounds the call, it is never sent) |
//! | WIT `decision` → [`PolicyVerdict`] | `allow`, `deny(reason)`, `require-approval(reason)`; the plugin host has already checked the reasons |
//! | failure | any [`PluginError`] (guest error, trap, timeout, busy, invalid reason) is the evaluator's `Err`, which the pipeline turns into a deny (`policy_error`) |

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{PolicyEvaluator, PolicyQuery, PolicyVerdict};
use crate::plugins::wit::{Decision, PolicyInput, RequestContext, Safety, ToolInfo};
use crate::plugins::{LoadedPlugin, PluginError};

/// A policy-evaluator plugin in the policy pipeline's plugin slot.
#[derive(Debug, Clone)]
pub struct PolicyPlugin(pub Arc<LoadedPlugin>);

impl PolicyPlugin {
    /// Ask the plugin about one call, within `query.deadline` (if any) and its own
    /// `limits.timeoutMs`; the error keeps its type (for tests and benches of the plugin host).
    pub async fn ask(&self, query: &PolicyQuery) -> Result<PolicyVerdict, PluginError> {
        let decision = self
            .0
            .evaluate_policy_async(input(query), query.deadline)
            .await?;
        Ok(verdict(decision))
    }
}

impl PolicyEvaluator for PolicyPlugin {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn evaluate<'a>(
        &'a self,
        query: &'a PolicyQuery,
    ) -> BoxFuture<'a, Result<PolicyVerdict, String>> {
        Box::pin(async move { self.ask(query).await.map_err(|error| error.to_string()) })
    }
}

/// The WIT record for `query`.
pub fn input(query: &PolicyQuery) -> PolicyInput {
    let mut safety = Safety::empty();
    for (on, flag) in [
        (query.read_only, Safety::READ_ONLY),
        (query.destructive, Safety::DESTRUCTIVE),
        (query.idempotent, Safety::IDEMPOTENT),
        (query.requires_approval, Safety::REQUIRES_APPROVAL),
    ] {
        if on {
            safety |= flag;
        }
    }
    PolicyInput {
        context: RequestContext {
            request_id: query.request_id.clone(),
            principal: query.principal.clone(),
        },
        scopes: query.scopes.clone(),
        tool: ToolInfo {
            id: query.tool_id.clone(),
            service: query.service.clone(),
            method: query.method.clone(),
            path: query.path.clone(),
            safety,
        },
        mode: query.mode.clone(),
        profile: query.profile.clone(),
        arguments_json: query.arguments_json.clone(),
    }
}

fn verdict(decision: Decision) -> PolicyVerdict {
    match decision {
        Decision::Allow => PolicyVerdict::Allow,
        Decision::Deny(reason) => PolicyVerdict::Deny(reason),
        Decision::RequireApproval(reason) => PolicyVerdict::RequireApproval(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_facts_become_the_wit_flags() {
        let query = PolicyQuery {
            request_id: "r1".into(),
            tool_id: "svc:op".into(),
            destructive: true,
            requires_approval: true,
            ..PolicyQuery::default()
        };
        let input = input(&query);
        assert_eq!(
            input.tool.safety,
            Safety::DESTRUCTIVE | Safety::REQUIRES_APPROVAL
        );
        assert_eq!(input.context.request_id, "r1");
        assert_eq!(input.tool.id, "svc:op");
    }
}
