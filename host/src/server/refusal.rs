//! The one mapping of a [`Refusal`] to an HTTP answer: every status and contract code of
//! `POST /v1/tools/execute`, `POST /v1/policy/explain` and `POST /v1/approvals` is here, and a
//! test holds it to the error tables of `docs/http-api.md`.
//!
//! The contract code is [`Refusal::reason`] (also the audit record's reason). Credential
//! refusals answer 409, not 401: a 401 from the runtime means the caller's *own* bearer token
//! is bad, and clients react by refreshing it; here the upstream grant is missing, and retrying
//! after the person authorized succeeds. A `WWW-Authenticate` challenge needs the runtime's URL,
//! so the routes add it (`challenge` says which).

use axum::http::StatusCode;

use super::error::ApiError;
use crate::call::Refusal;
use crate::oauth::OAuthError;
use crate::policy::approvals::GrantError;

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let error = |detail: String| ApiError::new(status(&refusal), refusal.reason(), detail);
        match &refusal {
            Refusal::ToolNotFound { tool_id } => {
                error(format!("no tool {tool_id:?} in the catalog")).with_plain("tool not found")
            }
            Refusal::DefinitionChanged { tool_id, why } => {
                error(format!("tool {tool_id:?} is withheld: {why}"))
            }
            Refusal::InvalidRequest(message) => error(message.clone()).with_plain(message.clone()),
            Refusal::OutsideEnvelope => error("the caller's scopes do not grant this tool".into()),
            Refusal::Policy(explanation) => error(Refusal::policy_message(explanation)),
            Refusal::Credentials(credentials) => match &credentials.oauth {
                Some(OAuthError::InteractiveRequired { authorization_url }) => error(format!(
                    "tool {} needs a person to authorize its upstream first: open authorizationUrl, then retry",
                    credentials.tool_id
                ))
                .with_plain(format!("interactive_required {authorization_url}"))
                .with_extension("authorizationUrl", authorization_url.clone()),
                _ => error(credentials.to_string()),
            },
            Refusal::Upstream(upstream) => error(upstream.to_string()),
            Refusal::Withheld(scrub) => error(scrub.to_string()),
            Refusal::Mcp(mcp) => error(mcp.to_string()),
            Refusal::ToolError { tool_name, text } => error(format!(
                "MCP tool {tool_name:?} reported an error: {text}"
            )),
            Refusal::ApprovalsNotEnabled => error(
                "approval grants are off (policy.approvals.mode is not \"grant\")".into(),
            ),
            Refusal::ApproverScopeMissing { scope } => {
                error(format!("issuing approval grants needs the {scope} scope"))
            }
            Refusal::Grant(grant) => {
                let answer = error(grant.to_string());
                match grant {
                    GrantError::Full => answer.with_retry_after(5),
                    GrantError::SelfApproval => answer,
                }
            }
            Refusal::AuditUnavailable(_) => {
                error("the audit log cannot be written; request refused".into())
                    .with_retry_after(5)
            }
            Refusal::WorkflowNotFound { workflow_id } => {
                error(format!("no workflow {workflow_id:?} in the catalog"))
                    .with_plain("workflow not found")
            }
            Refusal::StepFailed { why } => error(why.clone()),
        }
    }
}

/// The status of each refusal: the table `docs/http-api.md` documents.
fn status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::ToolNotFound { .. } | Refusal::WorkflowNotFound { .. } => StatusCode::NOT_FOUND,
        Refusal::InvalidRequest(_) | Refusal::ApprovalsNotEnabled => StatusCode::BAD_REQUEST,
        Refusal::OutsideEnvelope
        | Refusal::Policy(_)
        | Refusal::ApproverScopeMissing { .. }
        | Refusal::Grant(GrantError::SelfApproval) => StatusCode::FORBIDDEN,
        Refusal::Credentials(error)
            if matches!(error.oauth, Some(OAuthError::InteractiveRequired { .. })) =>
        {
            StatusCode::CONFLICT
        }
        Refusal::DefinitionChanged { .. } => StatusCode::CONFLICT,
        Refusal::Credentials(_)
        | Refusal::Upstream(_)
        | Refusal::Withheld(_)
        | Refusal::Mcp(_)
        | Refusal::ToolError { .. }
        | Refusal::StepFailed { .. } => StatusCode::BAD_GATEWAY,
        Refusal::Grant(GrantError::Full) | Refusal::AuditUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The status a refusal is answered with, for the refusal's audit record.
pub(crate) fn status_of(refusal: &Refusal) -> u16 {
    status(refusal).as_u16()
}

/// The RFC 6750 `error` and required scope of the challenge a refusal carries, if any.
pub(crate) fn challenge(refusal: &Refusal) -> Option<(&'static str, Option<&str>)> {
    match refusal {
        Refusal::OutsideEnvelope => Some(("insufficient_scope", None)),
        Refusal::ApproverScopeMissing { scope } => Some(("insufficient_scope", Some(scope))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::audit::AuditError;
    use crate::mcp::McpError;
    use crate::policy::{Decision, Explanation};
    use crate::secrets::scrub::ScrubError;
    use crate::secrets::CredentialError;
    use crate::upstream::UpstreamError;

    /// A transport error to carry (a request that cannot be built fails without the network).
    fn reqwest_error() -> reqwest::Error {
        let client = crate::net::client(crate::net::Purpose::CatalogFetch).unwrap();
        client.get("not a url").build().unwrap_err()
    }

    fn credentials(oauth: Option<OAuthError>) -> Refusal {
        Refusal::Credentials(CredentialError {
            tool_id: "t:x".into(),
            reasons: vec![],
            oauth,
        })
    }

    /// One refusal of every kind the call can answer with.
    fn every_refusal() -> Vec<Refusal> {
        let url = || "http://127.0.0.1".to_owned();
        let mut all = vec![
            Refusal::ToolNotFound {
                tool_id: "t:x".into(),
            },
            Refusal::InvalidRequest("bad".into()),
            Refusal::OutsideEnvelope,
            credentials(None),
            credentials(Some(OAuthError::ReauthorizationRequired)),
            credentials(Some(OAuthError::InteractiveRequired {
                authorization_url: "https://idp/authorize".into(),
            })),
            Refusal::ToolError {
                tool_name: "echo".into(),
                text: "no".into(),
            },
            Refusal::ApprovalsNotEnabled,
            Refusal::ApproverScopeMissing {
                scope: "approve".into(),
            },
            Refusal::Grant(GrantError::SelfApproval),
            Refusal::Grant(GrantError::Full),
            Refusal::AuditUnavailable(AuditError::Unavailable {
                path: PathBuf::from("audit.jsonl"),
                reason: "disk full".into(),
            }),
            Refusal::WorkflowNotFound {
                workflow_id: "w".into(),
            },
            Refusal::StepFailed { why: "w".into() },
            Refusal::DefinitionChanged {
                tool_id: "t:x".into(),
                why: "changed".into(),
            },
        ];
        for reason in [
            "managed_deny",
            "policy_deny",
            "curated_deny",
            "policy_error",
            "plugin_deny",
            "approval_required",
        ] {
            all.push(Refusal::Policy(Box::new(Explanation {
                decision: Decision::Deny {
                    reason,
                    rule: "r".into(),
                },
                steps: vec![],
                grant: None,
            })));
        }
        all.extend(
            [
                UpstreamError::MissingBaseUrl { tool: "t:x".into() },
                UpstreamError::InvalidUrl {
                    tool: "t:x".into(),
                    detail: "d".into(),
                },
                UpstreamError::Connect {
                    url: url(),
                    source: reqwest_error(),
                },
                UpstreamError::Timeout {
                    url: url(),
                    timeout_ms: 1,
                },
                UpstreamError::TooLarge {
                    url: url(),
                    limit: 1,
                },
                UpstreamError::RedirectBlocked {
                    url: url(),
                    why: "w".into(),
                },
                UpstreamError::Protocol {
                    url: url(),
                    source: reqwest_error(),
                },
                UpstreamError::Init {
                    source: reqwest_error().into(),
                },
            ]
            .map(Refusal::Upstream),
        );
        all.extend(
            [
                ScrubError::UnsupportedEncoding { coding: "br" },
                ScrubError::Corrupt { coding: "gzip" },
                ScrubError::TooLarge { limit: 1 },
                ScrubError::Echo,
            ]
            .map(Refusal::Withheld),
        );
        all.extend(
            [
                McpError::Unavailable("down".into()),
                McpError::Transport("t".into()),
                McpError::Protocol("p".into()),
                McpError::Timeout(std::time::Duration::from_secs(1)),
                McpError::ReauthorizationRequired,
                McpError::UnknownSource("s".into()),
            ]
            .map(Refusal::Mcp),
        );
        all
    }

    /// `(status, codes)` of each row of the error tables under `heading`s of the HTTP API doc.
    fn documented() -> Vec<(u16, Vec<String>)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let mut rows = Vec::new();
        let mut in_section = false;
        for line in doc.lines() {
            if line.starts_with("### ") {
                in_section = line.contains("POST /v1/tools/execute")
                    || line.contains("POST /v1/approvals")
                    || line.contains("POST /v1/workflows/run");
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(status) = cells.get(1).and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            if !in_section {
                continue;
            }
            // Contract codes are the snake_case words in backticks of the second column.
            let codes = cells[2]
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .map(str::to_owned)
                .collect();
            rows.push((status, codes));
        }
        rows
    }

    #[test]
    fn every_refusal_is_answered_as_docs_http_api_says() {
        let rows = documented();
        assert!(!rows.is_empty(), "no error table found in docs/http-api.md");
        let mut answered = Vec::new();
        for refusal in every_refusal() {
            let audited = status_of(&refusal);
            let error = ApiError::from(refusal);
            let (status, code) = (error.status().as_u16(), error.code());
            assert_eq!(
                audited, status,
                "{code}: the audit record must name the status answered"
            );
            assert!(
                rows.iter()
                    .any(|(s, codes)| *s == status && codes.iter().any(|c| c == code)),
                "{status} `{code}` is answered but not in the error tables of docs/http-api.md \
                 (POST /v1/tools/execute or POST /v1/approvals): add a row, or fix \
                 server/refusal.rs"
            );
            answered.push((status, code));
        }
        for (status, codes) in &rows {
            for code in codes {
                assert!(
                    answered.iter().any(|(s, c)| s == status && c == code),
                    "docs/http-api.md documents {status} `{code}`, but no refusal is answered so: \
                     fix the table or server/refusal.rs"
                );
            }
        }
    }
}
