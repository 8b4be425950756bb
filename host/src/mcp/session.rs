//! One pooled session per MCP source: connected on first use, reused by catalog builds and
//! executions, re-established after a failure with exponential backoff.
//!
//! | event | what happens |
//! |---|---|
//! | first use | connect: spawn the child (stdio) or open the HTTP session, then `initialize` |
//! | server gone (child exited, stream ended, session unknown) | the next use reconnects; a stdio child is respawned |
//! | connect fails | callers get the error; the next attempt waits [`backoff`] (100 ms doubling, at most 10 s) |
//! | message provably not delivered (connection refused, unknown session, 401) | reconnect once and resend |
//! | failure after sending `tools/call` | reported, never resent (the tool may have run) |
//! | session dropped (config reload, shutdown) | child killed, HTTP session deleted |
//!
//! Every request is bounded by [`CALL_TIMEOUT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, Implementation, ProtocolVersion,
    Tool,
};
use rmcp::service::{
    ClientLifecycleMode, NotificationContext, RoleClient, RunningService, ServiceError,
};
use rmcp::transport::TokioChildProcess;
use rmcp::ClientHandler;
use tokio::sync::mpsc;

use super::oauth::OAuthError;
use super::oauth::TokenSource;
use super::remote::{LegacySse, RemoteBase, StreamableHttp, TransportError};
use super::settings::{SourceSettings, Transport};
use super::{find_cause, McpError};

/// Longest a single MCP request may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Wait before reconnect attempt `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(10_000))
}

/// Receives server notifications for one source.
pub(crate) struct Handler {
    source_id: String,
    changes: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::info!(source = %self.source_id, "MCP server changed its tool list");
        let _ = self.changes.send(self.source_id.clone());
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("portcullis", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_06_18)
    }
}

type Running = RunningService<RoleClient, Handler>;

#[derive(Default)]
struct Connection {
    running: Option<Arc<Running>>,
    /// Process id of the stdio child serving `running`.
    pid: Option<u32>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<McpError>,
}

/// The pooled session of one source.
pub struct Session {
    settings: SourceSettings,
    http: reqwest::Client,
    oauth: Option<Arc<TokenSource>>,
    changes: mpsc::UnboundedSender<String>,
    connection: tokio::sync::Mutex<Connection>,
}

impl Session {
    pub(crate) fn new(
        settings: SourceSettings,
        http: reqwest::Client,
        changes: mpsc::UnboundedSender<String>,
        clients: Arc<crate::oauth::OAuthClients>,
    ) -> Self {
        let oauth = settings
            .oauth
            .clone()
            .map(|o| Arc::new(TokenSource::new(o, clients)));
        Self {
            settings,
            http,
            oauth,
            changes,
            connection: tokio::sync::Mutex::new(Connection::default()),
        }
    }

    /// The settings this session was opened with.
    pub fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    /// Every tool the server offers (all `tools/list` pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, McpError> {
        self.with_peer(true, |running| async move {
            running.peer().list_all_tools().await
        })
        .await
    }

    /// Call one tool.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CallToolResult, McpError> {
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        self.with_peer(false, move |running| {
            let params = params.clone();
            async move { running.peer().call_tool(params).await }
        })
        .await
    }

    /// Run `op` on a live session. `retry_any` allows one resend on a new session after any
    /// transport failure (safe for `tools/list`); otherwise only when nothing was delivered.
    async fn with_peer<T, F, Fut>(&self, retry_any: bool, op: F) -> Result<T, McpError>
    where
        F: Fn(Arc<Running>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let running = self.running().await?;
            let result = tokio::time::timeout(CALL_TIMEOUT, op(running.clone())).await;
            let error = match result {
                Ok(Ok(value)) => return Ok(value),
                Err(_) => return Err(McpError::Timeout(CALL_TIMEOUT)),
                Ok(Err(ServiceError::McpError(e))) => {
                    return Err(McpError::Protocol(e.message.to_string()))
                }
                Ok(Err(other)) => other,
            };
            let resend = retry_any || not_delivered(&error);
            self.forget(&running).await;
            if attempt >= 2 || !resend {
                return Err(failure(&error, McpError::Transport));
            }
            tracing::info!(source = %self.settings.id, "MCP session lost ({error}); reconnecting");
        }
    }

    /// The live session, connecting (within the backoff schedule) when there is none.
    async fn running(&self) -> Result<Arc<Running>, McpError> {
        let mut conn = self.connection.lock().await;
        if let Some(running) = &conn.running {
            if !running.is_closed() && !running.peer().is_transport_closed() {
                return Ok(running.clone());
            }
            conn.running = None;
        }
        if let Some(at) = conn.retry_at {
            if Instant::now() < at {
                return Err(match &conn.last_error {
                    Some(McpError::Unavailable(why)) => McpError::Unavailable(format!(
                        "{why} (next reconnect in {} ms)",
                        at.saturating_duration_since(Instant::now()).as_millis()
                    )),
                    Some(other) => other.clone(),
                    None => McpError::Unavailable("reconnecting".into()),
                });
            }
        }
        match tokio::time::timeout(CALL_TIMEOUT, self.connect()).await {
            Ok(Ok((running, pid))) => {
                let running = Arc::new(running);
                conn.running = Some(running.clone());
                conn.pid = pid;
                conn.failures = 0;
                conn.retry_at = None;
                Ok(running)
            }
            outcome => {
                let error = match outcome {
                    Ok(Err(e)) => e,
                    _ => McpError::Unavailable(format!(
                        "connecting took longer than {} s",
                        CALL_TIMEOUT.as_secs()
                    )),
                };
                conn.failures += 1;
                conn.retry_at = Some(Instant::now() + backoff(conn.failures));
                conn.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Drop a session that failed, unless another caller already replaced it.
    async fn forget(&self, failed: &Arc<Running>) {
        let mut conn = self.connection.lock().await;
        if conn
            .running
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, failed))
        {
            conn.running = None;
        }
    }

    /// Process id of the live stdio child, if one is running (for operators and tests).
    pub async fn child_pid(&self) -> Option<u32> {
        let conn = self.connection.lock().await;
        conn.running
            .as_ref()
            .filter(|r| !r.is_closed())
            .and(conn.pid)
    }

    async fn connect(&self) -> Result<(Running, Option<u32>), McpError> {
        let handler = Handler {
            source_id: self.settings.id.clone(),
            changes: self.changes.clone(),
        };
        let serve = |e: rmcp::service::ClientInitializeError| failure(&e, McpError::Unavailable);
        let mode = ClientLifecycleMode::Initialize;
        match &self.settings.transport {
            Transport::Stdio { command, args, env } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).envs(env).kill_on_drop(true);
                let (child, stderr) = TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| McpError::Unavailable(format!("spawning {command:?}: {e}")))?;
                if let Some(stderr) = stderr {
                    log_stderr(self.settings.id.clone(), stderr);
                }
                let pid = child.id();
                let running = rmcp::service::serve_client_with_lifecycle(handler, child, mode)
                    .await
                    .map_err(serve)?;
                Ok((running, pid))
            }
            Transport::StreamableHttp(remote) => {
                let base = RemoteBase::new(remote, self.http.clone(), self.oauth.clone())
                    .map_err(|e| McpError::Unavailable(e.to_string()))?;
                let transport = StreamableHttp::new(base, remote.url.clone());
                let running = rmcp::service::serve_client_with_lifecycle(handler, transport, mode)
                    .await
                    .map_err(serve)?;
                Ok((running, None))
            }
            Transport::Sse(remote) => {
                let base = RemoteBase::new(remote, self.http.clone(), self.oauth.clone())
                    .map_err(|e| McpError::Unavailable(e.to_string()))?;
                let transport = LegacySse::connect(base, remote.url.clone())
                    .await
                    .map_err(|e| failure(&e, McpError::Unavailable))?;
                let running = rmcp::service::serve_client_with_lifecycle(handler, transport, mode)
                    .await
                    .map_err(serve)?;
                Ok((running, None))
            }
        }
    }

    /// Close the session now (config reload or shutdown): kills a stdio child.
    pub async fn close(&self) {
        let running = self.connection.lock().await.running.take();
        if let Some(running) = running {
            match Arc::try_unwrap(running) {
                Ok(mut running) => {
                    let _ = running.close_with_timeout(Duration::from_secs(2)).await;
                }
                // In use by a call right now: it is closed when that call drops it.
                Err(shared) => shared.cancellation_token().cancel(),
            }
        }
    }
}

/// A transport error whose message cannot have reached the server.
fn not_delivered(error: &ServiceError) -> bool {
    match error {
        // Closed while a response was pending: the server may have acted on it.
        ServiceError::TransportSend(e) => {
            find_cause::<TransportError>(e).is_some_and(TransportError::not_delivered)
        }
        _ => false,
    }
}

/// Classify a failure, recognising the OAuth fail-closed state anywhere in its causes.
fn failure(error: &(dyn std::error::Error + 'static), wrap: fn(String) -> McpError) -> McpError {
    match find_cause::<OAuthError>(error) {
        Some(OAuthError::ReauthorizationRequired) => McpError::ReauthorizationRequired,
        _ => wrap(error.to_string()),
    }
}

/// A stdio server's stderr goes to the log (debug), line by line, never to the caller.
fn log_stderr(source: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt as _;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(source = %source, "mcp stderr: {line}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_and_caps_at_10s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(40), Duration::from_millis(10_000));
    }
}
