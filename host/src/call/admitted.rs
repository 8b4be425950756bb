//! What a door hands to the call: an admitted caller with the stages of one snapshot
//! ([`Admitted`]), and the parsed request ([`CallRequest`]).
//!
//! A door (the HTTP routes today) binds the config and authenticates before anything here
//! runs; `Admitted` is the proof. It borrows one snapshot's stages, so a call sees one
//! consistent config from lookup to outcome even if the config is swapped meanwhile.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Refusal;
use crate::audit::{AuditLog, AuditMcp, AuditWorkflow};
use crate::authn::{Authenticator, Caller};
use crate::catalog::{Catalog, Tool, WithheldTool};
use crate::config::Mode;
use crate::mcp::McpPool;
use crate::policy::{ApprovalStore, PolicySet};
use crate::secrets::SecretResolver;
use crate::upstream::Upstream;

/// Finds a tool by id (the snapshot keeps an index).
pub trait ToolIndex: Sync {
    /// The tool with this id, if the catalog has one.
    fn tool(&self, id: &str) -> Option<&Tool>;

    /// The tool with this id held back from the catalog (its MCP definition changed since it
    /// was pinned), if any.
    fn withheld(&self, _id: &str) -> Option<&WithheldTool> {
        None
    }
}

/// The stages of one config snapshot a call runs through (copied into each step of a
/// workflow run).
#[derive(Clone, Copy)]
pub struct Stages<'a> {
    /// Tool lookup.
    pub tools: &'a dyn ToolIndex,
    /// The catalog (a tool's service and source).
    pub catalog: &'a Catalog,
    /// The runtime authenticator (whether auth is on, scope prefixes).
    pub authenticator: &'a Authenticator,
    /// The compiled policy.
    pub policy: &'a PolicySet,
    /// Credential resolution for HTTP tools.
    pub secrets: &'a SecretResolver,
    /// The HTTP upstream client.
    pub upstream: &'a Upstream,
    /// Pooled MCP sessions.
    pub mcp: &'a McpPool,
    /// Approval grants (grant mode).
    pub approvals: &'a ApprovalStore,
    /// The audit log.
    pub audit: &'a AuditLog,
}

/// An authenticated caller, admitted against one snapshot.
pub struct Admitted<'a> {
    /// The snapshot's stages.
    pub stages: Stages<'a>,
    /// Who is calling.
    pub caller: &'a Caller,
    /// The runtime's request id (in every record).
    pub request_id: &'a str,
    /// The keyed hash of the caller's bearer token, if any (never the token).
    pub token_hash: Option<String>,
    /// The requested agent profile.
    pub agent_profile: Option<&'a str>,
    /// The status the door answers a refusal with; audit records name it.
    pub status_of: fn(&Refusal) -> u16,
    /// The workflow run and step this call is part of (every record names it).
    pub workflow: Option<AuditWorkflow>,
    /// The MCP session and client the call arrived through (the `/mcp` door; every record
    /// names it).
    pub mcp: Option<AuditMcp>,
    /// Where what an MCP tool's server sends during the call goes (the `/mcp` door's
    /// caller, when it can receive it).
    pub relay: Option<crate::mcp::relay::Relay>,
}

/// One parsed request of execute, explain or approve.
pub struct CallRequest {
    /// The tool id.
    pub tool_id: String,
    /// The requested mode.
    pub mode: Option<Mode>,
    /// The contract's `approval: true` (flag mode only).
    pub approval: bool,
    /// Approve only: the principal the grant is for.
    pub principal: Option<String>,
    /// The arguments.
    pub args: CallArgs,
}

/// A call's arguments, decoded once.
pub struct CallArgs {
    /// Positional path arguments.
    pub path_args: Vec<String>,
    /// Named flags.
    pub flags: BTreeMap<String, String>,
    /// The decoded body, or why it does not decode (reported after policy, so a refused call
    /// is refused for its policy reason whatever its body).
    pub body: Result<Option<Bytes>, String>,
    /// [`crate::policy::approvals::canonical_arguments`] of the above.
    pub canonical: serde_json::Value,
    /// Approval-looking fields the caller sent (never honoured; audited).
    pub approval_claims: Vec<String>,
}
