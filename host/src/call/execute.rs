//! The tool call: lookup → envelope → policy → (backend), shared steps of execute, explain
//! and approve.
//!
//! The policy decision (`detail`: deciding rule, steps, grant, ignored approval-looking
//! fields) is in the one record that answers the call's decision: the refusal when policy
//! denies, the write-ahead intent when it allows, or the `execution_error` of a failure
//! between the two (bad body, credentials).

use bytes::Bytes;

use super::audit_trail::AuditTrail;
use super::{http_backend, mcp_backend, Admitted, CallRequest, Refusal};
use crate::audit::Detail;
use crate::catalog::{Backend, Tool};
use crate::policy::{Call, Decision, Explanation};

/// Look a tool up (not audited: there is no tool to name). A tool withheld for a changed
/// definition is refused as such, not as unknown.
pub(super) fn lookup<'a>(admitted: &Admitted<'a>, tool_id: &str) -> Result<&'a Tool, Refusal> {
    let tools = admitted.stages.tools;
    tools
        .tool(tool_id)
        .ok_or_else(|| match tools.withheld(tool_id) {
            Some(held) => Refusal::DefinitionChanged {
                tool_id: tool_id.to_owned(),
                why: held.why.clone(),
            },
            None => Refusal::ToolNotFound {
                tool_id: tool_id.to_owned(),
            },
        })
}

/// The scope envelope: refused (audited) when the caller's scopes do not grant `tool`.
pub(super) async fn check_envelope(trail: &AuditTrail<'_, '_>, tool: &Tool) -> Result<(), Refusal> {
    let admitted = trail.admitted();
    let stages = &admitted.stages;
    if crate::authz::grants(admitted.caller, stages.authenticator, tool, stages.policy) {
        return Ok(());
    }
    Err(trail.refuse(tool, Refusal::OutsideEnvelope).await)
}

/// Run the policy pipeline for one call. `consume` takes a grant that approves it
/// (execution); explain only looks.
pub(super) async fn decide(
    admitted: &Admitted<'_>,
    tool: &Tool,
    request: &CallRequest,
    consume: bool,
) -> Explanation {
    let stages = &admitted.stages;
    let call = Call {
        tool,
        mode: request.mode,
        agent_profile: admitted.agent_profile,
        principal: admitted.caller.principal.as_deref(),
        scopes: &admitted.caller.scopes,
        request_id: admitted.request_id,
        arguments: &request.args.canonical,
    };
    super::explain::policy(
        stages.policy,
        stages.approvals,
        &call,
        request.approval,
        consume,
    )
    .await
}

/// The audit `detail` of a policy decision: `{"ruleId", "steps", "grantId"?,
/// "ignoredApprovalClaims"?}`, serialised once for every record of the call.
fn policy_detail(explanation: &Explanation, request: &CallRequest, grant_mode: bool) -> Detail {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PolicyDetail<'a> {
        rule_id: Option<String>,
        steps: &'a [crate::policy::Step],
        #[serde(skip_serializing_if = "Option::is_none")]
        grant_id: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        ignored_approval_claims: &'a [String],
    }
    let flagged = grant_mode && request.approval;
    let claims = &request.args.approval_claims;
    let ignored: std::borrow::Cow<'_, [String]> = if flagged {
        let mut all = Vec::with_capacity(claims.len() + 1);
        all.push("request:approval".to_owned());
        all.extend(claims.iter().cloned());
        all.into()
    } else {
        claims.as_slice().into()
    };
    Detail::new(&PolicyDetail {
        rule_id: explanation.rule(),
        steps: &explanation.steps,
        grant_id: explanation.grant.as_ref().map(|g| g.id.as_str()),
        ignored_approval_claims: &ignored,
    })
}

/// Execute one call; the answer is the response body (`{"statusCode", ...}`).
pub async fn execute(admitted: &Admitted<'_>, request: CallRequest) -> Result<Bytes, Refusal> {
    let mut trail = AuditTrail::new(admitted);
    let tool = match lookup(admitted, &request.tool_id) {
        Ok(tool) => tool,
        // An attempt to run a withheld tool is audited under the withheld definition.
        Err(refusal) => match admitted.stages.tools.withheld(&request.tool_id) {
            Some(held) => return Err(trail.refuse(&held.tool, refusal).await),
            None => return Err(refusal),
        },
    };
    check_envelope(&trail, tool).await?;
    let explanation = decide(admitted, tool, &request, true).await;
    let grant_mode = admitted.stages.policy.approvals().grants();
    let detail = policy_detail(&explanation, &request, grant_mode);
    if let Decision::Deny { .. } = &explanation.decision {
        let refusal = Refusal::Policy(Box::new(explanation));
        return Err(trail.refuse_with(tool, refusal, Some(detail), |_| {}).await);
    }
    trail.allowed(detail);
    let args = request.args;
    let body = match args.body {
        Ok(body) => body,
        Err(message) => {
            return Err(trail.refuse(tool, Refusal::InvalidRequest(message)).await);
        }
    };
    match &tool.backend {
        Backend::Http => {
            http_backend::execute(&trail, tool, args.path_args, args.flags, body).await
        }
        Backend::Mcp(binding) => mcp_backend::execute(&trail, tool, binding, body).await,
    }
}
