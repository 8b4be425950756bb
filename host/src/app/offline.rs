//! What the one-shot commands (`portcullis check`, `policy explain`) build without a running
//! instance: the catalog of a loaded config ([`build_catalog`]), and the explanation of one
//! call ([`explain`]).
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | `policy explain` answers what `POST /v1/policy/explain` answers for the same config and caller: one snapshot ([`Snapshot::build_offline`]) and the same [`crate::call::explain()`] | the caller's principal and scopes come from the operator, not a token, so no identity provider is contacted; policy-evaluator plugins run | a tool outside the caller's envelope is a `deny` with reason `authz_denied` and no steps; an unknown tool is [`ExplainError::ToolNotFound`] |
//! | MCP sources are listed through sessions opened for this build only | closed again before returning, so no stdio child outlives the command | a pool that cannot be built is one `SourceError` for `*`, not a panic or a partial build |
//! | no on-disk document cache, no forced refresh | `BuildOptions::default()` | an unloadable source is a `SourceError` in the outcome; the caller reports it |
//!
//! The running instance builds its catalog inside its snapshot ([`super::snapshot`]), with
//! the instance's cache directory and MCP sessions kept across rebuilds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::snapshot::{Snapshot, SnapshotError};
use crate::audit::{AuditError, AuditLog, AuditOptions};
use crate::authn::Caller;
use crate::call::{Admitted, CallArgs, CallRequest, Refusal, Stages};
use crate::catalog::{BuildOptions, BuildOutcome, SourceError};
use crate::config::{LoadedConfig, Mode, ScopePaths};
use crate::mcp::McpPool;
use crate::policy::approvals::canonical_arguments;
use crate::policy::ApprovalStore;

/// Build the catalog of `loaded` with MCP sessions opened for this build only (closed again
/// before returning, so no stdio child outlives the command).
pub async fn build_catalog(loaded: &LoadedConfig) -> BuildOutcome {
    let pool = match McpPool::new() {
        Ok(pool) => Arc::new(pool),
        Err(e) => {
            return BuildOutcome {
                errors: vec![SourceError {
                    source_id: "*".to_owned(),
                    message: format!("the HTTP client for MCP sources could not be built: {e}"),
                }],
                ..BuildOutcome::default()
            }
        }
    };
    let options = BuildOptions {
        mcp: Some(pool.clone()),
        ..BuildOptions::default()
    };
    let outcome = crate::catalog::build(loaded, &options).await;
    pool.shutdown().await;
    outcome
}

/// One call to explain, as the operator describes it.
#[derive(Debug, Clone, Default)]
pub struct OfflineCall {
    /// The tool id.
    pub tool_id: String,
    /// The caller's principal.
    pub principal: Option<String>,
    /// The caller's scopes (what its token would carry).
    pub scopes: Vec<String>,
    /// The requested mode.
    pub mode: Option<Mode>,
    /// The requested agent profile.
    pub agent_profile: Option<String>,
    /// The contract's `approval: true` (flag mode only).
    pub approval: bool,
    /// The request body, as compact JSON text.
    pub body: Option<String>,
}

/// Why a call could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The config, a plugin or a client could not be set up.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The HTTP client for MCP sources could not be built.
    #[error("HTTP client could not be built: {0}")]
    HttpClient(crate::net::NetError),
    /// No tool has this id.
    #[error("no tool {0:?} in the catalog")]
    ToolNotFound(String),
    /// The scratch audit log (see [`explain`]) could not be kept.
    #[error("the scratch audit log of the explanation: {0}")]
    Audit(#[from] AuditError),
    /// A refusal `call::explain` does not make (its contract code), as an error, not a panic.
    #[error("the explanation was refused: {0}")]
    Refused(&'static str),
    /// Its directory could not be created.
    #[error("the scratch audit directory {path}: {source}")]
    ScratchDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// `portcullis policy explain`: the answer of `POST /v1/policy/explain` for `call` under the
/// config at `paths`, plus the `envelope` the caller's scopes give. `report` sees the sources
/// that failed to load (their tools are missing) before anything is explained.
///
/// `call::explain` records an envelope refusal as execute would; offline nobody acts on it, so
/// its records go to a scratch log in a temporary directory, removed before returning.
pub async fn explain(
    paths: &ScopePaths,
    call: &OfflineCall,
    report: impl FnOnce(&[SourceError]),
) -> Result<Value, ExplainError> {
    let mcp = Arc::new(McpPool::new().map_err(ExplainError::HttpClient)?);
    let built = Snapshot::build_offline(paths, &super::Settings, mcp.clone()).await;
    // Sessions were opened to list MCP tools only: nothing is executed.
    mcp.shutdown().await;
    let snapshot = built?;
    report(&snapshot.source_errors);
    let scratch = ScratchAudit::open()?;
    let answer = explain_in(&snapshot, &scratch.log, call).await;
    scratch.close();
    let granted = match answer {
        Ok(body) => Some(body),
        Err(Refusal::OutsideEnvelope) => None,
        Err(Refusal::ToolNotFound { tool_id }) => return Err(ExplainError::ToolNotFound(tool_id)),
        Err(Refusal::AuditUnavailable(e)) => return Err(ExplainError::Audit(e)),
        // Explain refuses nothing else (it neither resolves credentials nor calls upstream).
        Err(other) => return Err(ExplainError::Refused(other.reason())),
    };
    let detail: Value = if snapshot.authenticator.required() {
        format!("scopes {:?}", call.scopes).into()
    } else {
        "runtime auth is off: every tool".into()
    };
    let envelope = json!({ "granted": granted.is_some(), "detail": detail });
    let mut out = granted.unwrap_or_else(|| {
        let mut out =
            json!({ "decision": "deny", "reason": "authz_denied", "rule": null, "steps": [] });
        out["toolId"] = call.tool_id.clone().into();
        out
    });
    out["envelope"] = envelope;
    Ok(out)
}

/// The admitted call of `call` against `snapshot`, explained.
async fn explain_in(
    snapshot: &Snapshot,
    audit: &AuditLog,
    call: &OfflineCall,
) -> Result<Value, Refusal> {
    let approvals = ApprovalStore::default();
    let caller = Caller {
        principal: call.principal.clone(),
        scopes: call.scopes.clone(),
        lineage: None,
    };
    let admitted = Admitted {
        stages: Stages {
            tools: snapshot,
            catalog: &snapshot.catalog,
            authenticator: &snapshot.authenticator,
            policy: &snapshot.policy,
            secrets: &snapshot.secrets,
            upstream: &snapshot.upstream,
            mcp: &snapshot.mcp,
            approvals: &approvals,
            audit,
        },
        caller: &caller,
        request_id: "offline",
        token_hash: None,
        agent_profile: call.agent_profile.as_deref(),
        workflow: None,
        mcp: None,
        relay: None,
        // No transport answers offline; the scratch records carry no status.
        status_of: |_| 0,
    };
    let body = call.body.as_deref().map(str::as_bytes);
    let request = CallRequest {
        tool_id: call.tool_id.clone(),
        mode: call.mode,
        approval: call.approval,
        principal: None,
        args: CallArgs {
            path_args: Vec::new(),
            flags: BTreeMap::new(),
            body: Ok(body.map(Bytes::copy_from_slice)),
            canonical: canonical_arguments(&[], &BTreeMap::new(), body),
            approval_claims: Vec::new(),
        },
    };
    crate::call::explain(&admitted, &request).await
}

/// An audit log nobody reads, in its own temporary directory (the key outside the log's
/// directory, as the log requires), removed by [`ScratchAudit::close`].
struct ScratchAudit {
    log: AuditLog,
    dir: PathBuf,
}

impl ScratchAudit {
    fn open() -> Result<Self, ExplainError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "portcullis-explain-{}-{nanos:x}",
            std::process::id()
        ));
        let scratch = |source| ExplainError::ScratchDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir.join("log")).map_err(scratch)?;
        let mut options = AuditOptions::new(dir.join("log/audit.log"), dir.join("audit.key"));
        options.durable = false;
        match AuditLog::open_with(options) {
            Ok(log) => Ok(Self { log, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e.into())
            }
        }
    }

    fn close(self) {
        self.log.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
