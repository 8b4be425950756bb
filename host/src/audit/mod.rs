//! Audit: one NDJSON record per decision.
//!
//! Every execution and every denial appends exactly one [`AuditEvent`] to the audit file
//! (default `<instance dir>/audit.log`). Field names follow the open-cli contract so existing
//! tooling can read the file. Records never carry tokens, secrets or argument values.
//!
//! Durability: each record is written with one `write` call on an `O_APPEND` file under a lock,
//! so concurrent writers never interleave bytes. A failed write is returned to the caller, which
//! refuses the request (503) instead of serving unaudited.

mod query;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use query::{AuditQuery, QueryError};

/// Outcome recorded for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    /// The call was allowed (an upstream 4xx/5xx still counts as allowed).
    Allowed,
    /// The call was refused before anything ran.
    Denied,
    /// The call was allowed but no upstream response was obtained.
    Error,
}

/// One audit record. `toolId`, `decision` and `reasonCode` are always present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// UTC RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// `tool_execution`, `authz_denial`, `execution_error`, ...
    pub event_type: String,
    /// Who called (absent when runtime auth is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Delegation lineage from the caller's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<serde_json::Value>,
    /// Agent profile named by the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_profile: Option<String>,
    /// The tool, or a `runtime.*` pseudo-id for runtime events.
    pub tool_id: String,
    /// The tool's service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// `servers[0]` of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_base_url: Option<String>,
    /// Outcome.
    pub decision: AuditDecision,
    /// Why (`allowed`, `authz_denied`, `managed_deny`, `upstream_timeout`, ...).
    pub reason_code: String,
    /// HTTP method of the upstream call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path template of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bytes of request body sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_size: Option<u64>,
    /// Upstream status (or the runtime's own status for refusals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Upstream latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Attempts beyond the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// Request id echoed to the caller in `X-Request-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl AuditEvent {
    /// A record stamped now with the mandatory fields set.
    pub fn new(
        event_type: &str,
        tool_id: &str,
        decision: AuditDecision,
        reason_code: &str,
    ) -> Self {
        Self {
            timestamp: now_rfc3339(),
            event_type: event_type.to_owned(),
            principal: None,
            lineage: None,
            agent_profile: None,
            tool_id: tool_id.to_owned(),
            service_id: None,
            target_base_url: None,
            decision,
            reason_code: reason_code.to_owned(),
            method: None,
            path: None,
            request_size: None,
            status_code: None,
            latency_ms: None,
            retry_count: None,
            request_id: None,
        }
    }
}

/// Current UTC time in RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Audit writing failed; the request that needed the record must be refused.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path} is not writable: {source}")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The append-only audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Open (creating parents and the file, mode 0600) for appending.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let fail = |source| AuditError {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(fail)?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Where records go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record as a single line.
    pub fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(event).map_err(|e| AuditError {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        // A poisoned lock only means another writer panicked mid-call; the file itself is fine.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line).map_err(|source| AuditError {
            path: self.path.clone(),
            source,
        })
    }

    /// Read records matching `query` (see [`AuditQuery`] for the semantics).
    pub fn read(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, AuditError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(AuditError {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        Ok(query.apply(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok()),
        ))
    }
}
