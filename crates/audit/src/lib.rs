//! Audit: one NDJSON record per decision, durable before the caller hears the outcome.
//!
//! Every execution and every refusal appends [`AuditEvent`]s to the audit file (default
//! `<instance dir>/audit.log`). Field names follow the open-cli contract so existing tooling can
//! read the file; `seq`, `chain`, `detail`, `tokenHash` and `arguments` are additions. Records
//! never carry tokens or secrets: arguments are recorded by the rule in [`redact`]. An allowed call writes a `tool_execution_intent` record before the
//! upstream call and a `tool_execution` record after it (same `requestId`).
//!
//! | module | rule |
//! |---|---|
//! | `writer` | one thread, bounded queue, group commit (`sync_data` per batch), fail closed, self-recovery with `audit_gap` |
//! | [`chain`] | `seq` + HMAC-SHA256 chain keyed from a file outside the audit directory |
//! | [`verify`] | first bad record for bit flips, deletions, insertions, reordering, truncation |
//! | `index` | in-memory `seq -> offset` index of durable records, built at open, extended per batch |
//! | [`redact`] | what of a call's arguments is recorded; tokens only as a short keyed hash |
//! | [`sanitize`] | control characters escaped in every line written or printed |
//! | [`tail`] | `portcullis audit tail [--follow]` |
//! | `query` | filters and cursor paging for `GET /v1/audit/events` and `audit tail` |
//!
//! Failure mode: [`AuditLog::record`] returns [`AuditError`] when the record is not durable; the
//! caller refuses the request (503 `audit_unavailable`). Nothing is dropped: a full queue waits.
#![deny(missing_docs)]

pub mod chain;
mod index;
mod query;
pub mod redact;
mod sanitize;
pub mod tail;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use query::{encode_cursor, AuditQuery, Page, QueryError, QueryParams, MAX_SCAN};

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
    /// Position in the log, contiguous from 1 (set by the writer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
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
    /// Outcome records of HTTP calls: `scheme://host[:port]` of the server that answered
    /// (another origin than `targetBaseUrl` only after a followed redirect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_origin: Option<String>,
    /// Outcome.
    pub decision: AuditDecision,
    /// Why (`allowed`, `authz_denied`, `managed_deny`, ...); every `execution_error` record
    /// says `execution_error`, as the reference runtime's consumers expect.
    pub reason_code: String,
    /// `execution_error` records: the precise code (`upstream_timeout`, `credential_unavailable`,
    /// `tool_error`, ...), the `code` the caller got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// HTTP method of the upstream call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path template of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bytes of request body sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_size: Option<u64>,
    /// Upstream status (or the runtime's own status for an `execution_error`; never on a
    /// denial, as in the reference runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Upstream latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Attempts beyond the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// `HMAC(audit key, token)` prefix of the caller's bearer token ([`redact::token_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// The call's arguments after redaction ([`redact::arguments`]; intent records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// Request id echoed to the caller in `X-Request-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The workflow run a step's records belong to (`POST /v1/workflows/run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<AuditWorkflow>,
    /// The MCP session and client a call arrived through (`/mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<AuditMcp>,
    /// Event-specific facts (`audit_gap` window, `recovery` bytes cut, a call's policy
    /// decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// `hex(HMAC(key, previous chain || this record without chain))` (set by the writer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
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
            seq: None,
            timestamp: now_rfc3339(),
            event_type: event_type.to_owned(),
            principal: None,
            lineage: None,
            agent_profile: None,
            tool_id: tool_id.to_owned(),
            service_id: None,
            target_base_url: None,
            final_origin: None,
            decision,
            reason_code: reason_code.to_owned(),
            error_code: None,
            method: None,
            path: None,
            request_size: None,
            status_code: None,
            latency_ms: None,
            retry_count: None,
            token_hash: None,
            arguments: None,
            request_id: None,
            workflow: None,
            mcp: None,
            detail: None,
            chain: None,
        }
    }
}

/// A record's `detail`, held as the JSON text it is written as. A call's policy decision is
/// serialised once and shared (not deep-copied) by every record of that call; the bytes
/// written are those of the value it was made from.
#[derive(Clone)]
pub struct Detail(Arc<serde_json::value::RawValue>);

impl Detail {
    /// Serialise `value` (the types recorded here always serialise; a type that cannot, such
    /// as a map with non-string keys, is recorded as `null` rather than failing the record).
    pub fn new(value: &impl Serialize) -> Self {
        let raw = serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
            serde_json::value::RawValue::from_string("null".to_owned()).expect("null is valid JSON")
        });
        Self(Arc::from(raw))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The detail as a JSON value (for readers).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for Detail {
    fn from(value: serde_json::Value) -> Self {
        Self::new(&value)
    }
}

impl std::fmt::Debug for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Detail {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(deserializer)
            .map(|raw| Self(Arc::from(raw)))
    }
}

/// Which workflow run, and which step of it, a record belongs to: every record of one run
/// carries the same `runId`, so an auditor can follow the run step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditWorkflow {
    /// The workflow's id.
    pub workflow_id: String,
    /// The run's id (random, one per `POST /v1/workflows/run`).
    pub run_id: String,
    /// The step's id.
    pub step_id: String,
}

/// The MCP door a call arrived through: its session (absent at the stateless revision), the
/// negotiated protocol revision and what the client said it is (`clientInfo`, bounded by the
/// door). Audit-only: nothing decides on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditMcp {
    /// `Mcp-Session-Id`, when the revision has sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The protocol revision of the exchange.
    pub protocol_version: String,
    /// `clientInfo.name`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `clientInfo.version`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
}

/// Current UTC time in RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An audit record could not be made durable; the request that needed it must be refused.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Opening, writing or syncing failed.
    #[error("audit log {path} is not writable: {source}")]
    Io {
        /// The audit file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The log is in the failed state (an earlier write or sync failed) and not yet recovered.
    #[error("audit log {path} is unavailable: {reason}")]
    Unavailable {
        /// The audit file.
        path: PathBuf,
        /// The error that put it in the failed state.
        reason: String,
    },
    /// The last record does not verify; resuming would hide tampering or corruption.
    #[error(
        "audit log {path} does not verify at its tail (run `portcullis audit verify`): {failure}"
    )]
    Tail {
        /// The audit file.
        path: PathBuf,
        /// What is wrong.
        failure: verify::VerifyFailure,
    },
    /// The HMAC key cannot be used.
    #[error(transparent)]
    Key(#[from] chain::KeyError),
    /// The writer thread is gone (shutdown).
    #[error("audit writer stopped")]
    Closed,
}

/// Proof that a record is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Its sequence number.
    pub seq: u64,
    /// Its chain value.
    pub chain: String,
}

/// Default rotation size: 256 MiB.
pub const DEFAULT_ROTATE_BYTES: u64 = 256 << 20;

/// Where and how the log is kept.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The audit file.
    pub path: PathBuf,
    /// HMAC key file; must be outside the audit file's directory.
    pub key_file: PathBuf,
    /// Signed checkpoints (default `<path>.checkpoints`).
    pub checkpoint_path: PathBuf,
    /// `sync_data` every batch. `false` exists only to benchmark and test the cost of durability.
    pub durable: bool,
    /// Most records per write + sync (1 = sync per record; capped at [`writer::MAX_BATCH`]).
    pub max_batch: usize,
    /// Checkpoint after this many records...
    pub checkpoint_every: u64,
    /// ...or after this long with new records.
    pub checkpoint_interval: Duration,
    /// How often a failed log retries.
    pub retry_interval: Duration,
    /// Records that may wait for the writer before callers block.
    pub queue_capacity: usize,
    /// Rotate when the current file reaches this many bytes (`--audit-rotate-size`).
    pub rotate_bytes: Option<u64>,
    /// Rotate when the current file is this old and not empty (`--audit-rotate-interval`).
    pub rotate_interval: Option<Duration>,
    /// Keep at most this many rotated files (`--audit-retain-files`; `None` keeps all).
    pub retain_files: Option<usize>,
    /// Remove rotated files older than this (`--audit-retain-age`; `None` keeps all).
    pub retain_age: Option<Duration>,
    /// Wait for the outcome record of an executed call to be durable before answering
    /// (`--audit-sync-outcomes`). Off by default: see [`AuditLog::record_outcome`].
    pub sync_outcomes: bool,
}

impl AuditOptions {
    /// Defaults for `path` with the key at `key_file`.
    pub fn new(path: PathBuf, key_file: PathBuf) -> Self {
        let mut checkpoints = path.clone().into_os_string();
        checkpoints.push(".checkpoints");
        Self {
            path,
            key_file,
            checkpoint_path: PathBuf::from(checkpoints),
            durable: true,
            max_batch: writer::MAX_BATCH,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(10),
            retry_interval: Duration::from_secs(1),
            queue_capacity: 8192,
            sync_outcomes: false,
            rotate_bytes: Some(DEFAULT_ROTATE_BYTES),
            rotate_interval: None,
            retain_files: None,
            retain_age: None,
        }
    }

    /// Defaults for an instance: the key lives in the state root (`<root>/audit.key` for a
    /// state dir `<root>/instances/<id>`, else next to the state dir).
    pub fn for_instance(path: PathBuf, state_dir: &Path) -> Self {
        let root = match state_dir.parent() {
            Some(parent) if parent.file_name().is_some_and(|n| n == "instances") => {
                parent.parent().unwrap_or(parent)
            }
            Some(parent) => parent,
            None => state_dir,
        };
        Self::new(path, root.join("audit.key"))
    }
}

/// The append-only audit log: a handle to its writer thread.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    queue: std::sync::mpsc::Sender<writer::Submission>,
    slots: Arc<tokio::sync::Semaphore>,
    shared: Arc<writer::Shared>,
    thread: std::thread::JoinHandle<()>,
    sync_outcomes: bool,
    key: chain::AuditKey,
}

impl AuditLog {
    /// Open with defaults, the key in the parent of the audit file's directory.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::open_with(AuditOptions::for_instance(path.to_owned(), dir))
    }

    /// Load the key, repair and verify the tail, start the writer.
    pub fn open_with(options: AuditOptions) -> Result<Self, AuditError> {
        let dir = options.path.parent().unwrap_or(Path::new(".")).to_owned();
        std::fs::create_dir_all(&dir).map_err(|source| AuditError::Io {
            path: options.path.clone(),
            source,
        })?;
        let key = chain::AuditKey::load_or_create(&options.key_file, &dir)?;
        let shared = Arc::new(writer::Shared::default());
        let path = options.path.clone();
        let capacity = options.queue_capacity.max(1);
        let sync_outcomes = options.sync_outcomes;
        let writer = writer::Writer::open(options, key.clone(), shared.clone())?;
        let (queue, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| AuditError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            queue,
            slots: Arc::new(tokio::sync::Semaphore::new(capacity)),
            shared,
            thread,
            sync_outcomes,
            key,
        })
    }

    /// Stop accepting records, let the writer finish its queue and final checkpoint, and wait.
    pub fn close(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }

    /// The short keyed hash that stands for `token` in records ([`redact::token_hash`]).
    pub fn token_hash(&self, token: &str) -> String {
        redact::token_hash(&self.key, token)
    }

    /// Where records go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the log is in the failed state (calls needing a record are refused).
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Append one record; resolves once it is durable (or with the reason it is not).
    pub async fn record(&self, event: AuditEvent) -> Result<Receipt, AuditError> {
        self.enqueue_waited(Some(event)).await
    }

    /// Append several records of one request; resolves once the last is durable, and so every
    /// one is: the writer handles the queue in order, and a batch that fails to write puts the
    /// log in the failed state, which fails every record queued after it. One wait for the disk
    /// instead of one per record, for a request that writes more than one decision record
    /// before it answers (an authenticated catalog read writes two).
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<(), AuditError> {
        let count = events.len();
        let mut last = None;
        for (i, event) in events.into_iter().enumerate() {
            if i + 1 == count {
                last = Some(self.enqueue(Some(event), true).await?);
            } else {
                self.enqueue(Some(event), false).await?;
            }
        }
        match last.flatten() {
            Some(done) => done.await.map_err(|_| AuditError::Closed)?.map(drop),
            None => Ok(()),
        }
    }

    /// Resolve once every record queued before this call is durable (readers call it so they
    /// see every outcome already answered); the receipt names the last durable record.
    pub async fn sync(&self) -> Result<Receipt, AuditError> {
        self.enqueue_waited(None).await
    }

    /// Append the outcome record of a call whose intent record is already durable.
    ///
    /// By default this resolves once the record is queued (waiting for a queue slot when the
    /// queue is full), not once it is synced: the writer handles the queue in order, so the
    /// record is written in the next batch (a `write`, the process can die after it) and is
    /// synced no later than any record queued after it (in particular the next call's intent)
    /// is acknowledged, or at the writer's next idle tick (at most 500 ms). A machine crash can
    /// therefore lose only outcomes answered since the last sync, never a decision: the intent
    /// shows the call was allowed and sent. A write or sync that fails puts the log in the
    /// failed state, and the `audit_gap` record counts the records possibly lost. With
    /// [`AuditOptions::sync_outcomes`] it waits like [`AuditLog::record`].
    pub async fn record_outcome(&self, event: AuditEvent) -> Result<(), AuditError> {
        let done = self.enqueue(Some(event), self.sync_outcomes).await?;
        if let Some(done) = done {
            done.await.map_err(|_| AuditError::Closed)??;
        }
        Ok(())
    }

    /// Queue `event` (or a barrier) and wait until it is durable.
    async fn enqueue_waited(&self, event: Option<AuditEvent>) -> Result<Receipt, AuditError> {
        match self.enqueue(event, true).await? {
            Some(done) => done.await.map_err(|_| AuditError::Closed)?,
            None => unreachable!("a waited-for submission has an acknowledgement"),
        }
    }

    /// Queue a record (waiting for a slot). When `wait`, the receiver resolves once it is
    /// durable; otherwise nobody is told and the writer may defer its sync (writer module rule).
    async fn enqueue(
        &self,
        event: Option<AuditEvent>,
        wait: bool,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<Result<Receipt, AuditError>>>, AuditError>
    {
        if self.is_failed() {
            if event.is_some() {
                self.shared.refused.fetch_add(1, Ordering::SeqCst);
            }
            return Err(self.shared.unavailable(&self.path));
        }
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuditError::Closed)?;
        let (ack, done) = if wait {
            let (ack, done) = tokio::sync::oneshot::channel();
            (Some(ack), Some(done))
        } else {
            (None, None)
        };
        self.queue
            .send(writer::Submission {
                event,
                ack,
                _permit: permit,
            })
            .map_err(|_| AuditError::Closed)?;
        Ok(done)
    }

    /// Read one page of records matching `query` (see [`AuditQuery`] for the semantics).
    /// Seeks through the in-memory index: the cost is the page, not the file.
    pub fn page(&self, query: &AuditQuery) -> Result<Page, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let file = std::fs::File::open(&self.path).map_err(io)?;
        query.page(&file, &self.shared.index).map_err(io)
    }
}
