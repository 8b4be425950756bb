//! `tools/call` through the door: decode the MCP arguments into the same `CallRequest` an
//! execute body becomes ([`super::routes::decoded_call`]), run [`crate::call::execute`], and
//! answer in MCP terms (the refusal table of the module header of [`super`]).

use serde_json::{json, Map, Value};

use super::jsonrpc::{self, RpcError};
use super::params;
use super::tools::text_result;
use super::{audit_unavailable, routes, Answer, Exchange, METADATA_PATH};
use crate::authz::ToolRules;
use crate::call::Refusal;
use crate::mcp::relay::{level_rank, Relay};
use crate::oauth::OAuthError;
use crate::policy::Decision;
use crate::server::error::ApiError;

impl Exchange<'_> {
    /// `tools/call`: the pipeline, its answer or refusal in MCP terms (module header).
    pub(super) async fn call(&self, id: &Value, mut params: Map<String, Value>) -> Answer {
        let invalid = |message: &str| {
            Answer::Error(RpcError::new(id.clone(), jsonrpc::INVALID_PARAMS, message))
        };
        let relay = self.relay(&params);
        let Some(Value::String(name)) = params.remove("name") else {
            return invalid("Invalid params: tools/call needs a tool name");
        };
        let arguments = match params.remove("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments,
            Some(_) => return invalid("Invalid params: arguments must be an object"),
        };
        let table = self.door.table(self.snapshot);
        let Some(entry) = table.get(&name) else {
            return match table.conflict(&name) {
                Some(why) => invalid(why),
                None => invalid(&format!("Unknown tool: {name}")),
            };
        };
        if self.stateless {
            let headers = |name: &str| {
                self.headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_owned))
                    .collect()
            };
            let schema = &entry.definition["inputSchema"];
            if let Err(error) = params::check(id, schema, &arguments, &headers) {
                return Answer::Error(error);
            }
        }
        let (path_args, flags, body) = match entry.arguments(arguments) {
            Ok(a) => (a.path_args, a.flags, Ok(a.body)),
            Err(message) => (Vec::new(), Default::default(), Err(message)),
        };
        let call = routes::decoded_call(entry.id.clone(), path_args, flags, body, self.headers);
        let canonical = call.args.canonical.clone();
        let mut admitted = routes::admitted(
            self.runtime,
            self.snapshot,
            self.caller,
            self.request_id,
            self.headers,
            None,
        );
        admitted.status_of = status_of;
        admitted.mcp = Some(self.mcp.clone());
        admitted.relay = relay;
        match crate::call::execute(&admitted, call).await {
            Ok(answer) => Answer::Result(entry.result(&answer)),
            Err(refusal) => self.refused(id, &entry.id, refusal, canonical),
        }
    }

    /// The relay of this call, when the client can receive one: relayed progress names the
    /// request's `_meta.progressToken` (a string or integer); log messages pass from the
    /// session's level, or the stateless request's `_meta` log level.
    fn relay(&self, params: &Map<String, Value>) -> Option<Relay> {
        let sender = self.relay.clone()?;
        let meta = params.get("_meta");
        let token = meta
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
            .cloned();
        let level = meta
            .and_then(|m| m.get(LOG_LEVEL_META))
            .and_then(Value::as_str)
            .and_then(level_rank)
            .unwrap_or(self.log_level);
        Some(Relay::new(sender, token, level))
    }

    fn refused(&self, id: &Value, tool_id: &str, refusal: Refusal, canonical: Value) -> Answer {
        let tool_error = |text: String| Answer::Result(text_result(&text, true));
        match refusal {
            // A tool that `policy.deny` or a managed deny removes is outside every envelope:
            // no scope would help, so the client is told it is denied, not asked to step up.
            Refusal::OutsideEnvelope if ToolRules::denies(&self.snapshot.policy, tool_id) => {
                tool_error(format!("tool {tool_id} is denied by policy (policy.deny)"))
            }
            Refusal::OutsideEnvelope => {
                let [_, _, tool_prefix] = self.snapshot.authenticator.prefixes();
                let scope = format!("{tool_prefix}{tool_id}");
                let challenge = routes::challenge_at(
                    self.runtime,
                    METADATA_PATH,
                    Some("insufficient_scope"),
                );
                Answer::Http(
                    ApiError::from(refusal)
                        .with_challenge(format!("{challenge}, scope=\"{scope}\"")),
                )
            }
            Refusal::AuditUnavailable(_) => Answer::Error(audit_unavailable(id)),
            Refusal::ToolNotFound { tool_id } => Answer::Error(RpcError::new(
                id.clone(),
                jsonrpc::INVALID_PARAMS,
                format!("Unknown tool: {tool_id}"),
            )),
            Refusal::Policy(explanation) => match &explanation.decision {
                Decision::Deny { reason, .. } if *reason == "approval_required" => {
                    tool_error(self.approval_help(tool_id, canonical))
                }
                _ => tool_error(Refusal::policy_message(&explanation)),
            },
            Refusal::Credentials(error) => match &error.oauth {
                Some(OAuthError::InteractiveRequired { authorization_url }) => tool_error(format!(
                    "tool {tool_id} needs a person to authorize its upstream first: open {authorization_url} in a browser, then call the tool again"
                )),
                _ => tool_error(error.to_string()),
            },
            Refusal::InvalidRequest(message) => tool_error(format!("invalid arguments: {message}")),
            Refusal::Upstream(error) => tool_error(error.to_string()),
            Refusal::Withheld(error) => tool_error(error.to_string()),
            Refusal::Mcp(error) => tool_error(error.to_string()),
            Refusal::ToolError { text, .. } => tool_error(text),
            other => tool_error(format!("refused: {}", other.reason())),
        }
    }

    /// How to get this exact call approved (the text of an `approval_required` tool error).
    fn approval_help(&self, tool_id: &str, canonical: Value) -> String {
        let approvals = self.snapshot.policy.approvals();
        if !approvals.grants() {
            return format!(
                "tool {tool_id} needs approval before it runs. This runtime takes approval as the `approval` flag of POST /v1/tools/execute (policy.approvals.mode \"flag\"), which an MCP call cannot set: run the call through the HTTP API with approval, or ask the operator to turn on approval grants (policy.approvals.mode \"grant\") so an approver can approve this exact call."
            );
        }
        let mut request = json!({ "toolId": tool_id });
        if let Some(principal) = &self.caller.principal {
            request["principal"] = principal.clone().into();
        }
        if let Value::Object(arguments) = canonical {
            for (key, value) in arguments {
                request[key] = value;
            }
        }
        format!(
            "tool {tool_id} needs approval before it runs, and no approval grant matches this call. Ask an approver (a caller holding the {scope} scope, not you) to POST {url}/v1/approvals with {request}; the grant binds these exact arguments. Then call the tool again with the same arguments within {ttl} seconds.",
            scope = approvals.approver_scope,
            url = self.runtime.options.url.trim_end_matches('/'),
            ttl = approvals.ttl.as_secs(),
        )
    }
}

/// Where a stateless request names the log level it wants.
const LOG_LEVEL_META: &str = "io.modelcontextprotocol/logLevel";

/// The status the door answers a refusal with (named in its audit record): HTTP 403 for the
/// envelope, -32603 (HTTP 200) for the audit log, otherwise a tool result (HTTP 200).
fn status_of(refusal: &Refusal) -> u16 {
    match refusal {
        Refusal::OutsideEnvelope => 403,
        _ => 200,
    }
}
