//! Policy-evaluator plugins: asked after the built-in rules allowed a call.
//!
//! Every plugin in `policy.plugins` is asked (in order, each in its own isolated instance) and
//! the verdicts are combined so that a plugin can only make the decision stricter:
//!
//! | any plugin says | outcome |
//! |---|---|
//! | fails (trap, timeout, memory, invalid answer, its own `err`) | deny `policy_error` |
//! | `deny(reason)` | deny `plugin_deny` |
//! | `require-approval(reason)` and the request has no `approval: true` | deny `approval_required` |
//! | otherwise | allow |
//!
//! A failure is checked first: a broken evaluator never lets a call through, even when another
//! evaluator would have denied it for a different reason.

use std::sync::Arc;

use crate::plugins::{LoadedPlugin, PolicyQuery, PolicyVerdict};

/// The combined verdict of the policy plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginDecision {
    /// Every plugin allowed (or approval was given).
    Allow,
    /// Refused.
    Deny {
        /// `policy_error`, `plugin_deny` or `approval_required`.
        reason: &'static str,
        /// The deciding plugin.
        plugin: String,
        /// Its explanation (a plugin's own reason, or the failure).
        detail: String,
    },
}

/// Ask every plugin about one call.
pub async fn evaluate(
    plugins: &[Arc<LoadedPlugin>],
    query: &PolicyQuery,
    approval: bool,
) -> PluginDecision {
    let mut deny = None;
    let mut needs_approval = None;
    for plugin in plugins {
        match plugin.evaluate_policy_async(query.clone()).await {
            Err(error) => {
                tracing::warn!("{error}");
                return PluginDecision::Deny {
                    reason: "policy_error",
                    plugin: plugin.name().to_owned(),
                    detail: error.to_string(),
                };
            }
            Ok(PolicyVerdict::Allow) => {}
            Ok(PolicyVerdict::Deny(reason)) => {
                deny.get_or_insert((plugin.name().to_owned(), reason));
            }
            Ok(PolicyVerdict::RequireApproval(reason)) => {
                needs_approval.get_or_insert((plugin.name().to_owned(), reason));
            }
        }
    }
    if let Some((plugin, detail)) = deny {
        return PluginDecision::Deny {
            reason: "plugin_deny",
            plugin,
            detail,
        };
    }
    match needs_approval {
        Some((plugin, detail)) if !approval => PluginDecision::Deny {
            reason: "approval_required",
            plugin,
            detail,
        },
        _ => PluginDecision::Allow,
    }
}
