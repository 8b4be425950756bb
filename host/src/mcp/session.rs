//! One pooled session per MCP source: connected on first use, reused by catalog builds and
//! executions, re-established after a failure with exponential backoff.
//!
//! | event | what happens |
//! |---|---|
//! | first use | connect: spawn the child (stdio) or reach the server; `server/discover` for the stateless revision 2026-07-28, and when the server does not know it (a correlated JSON-RPC error), the `initialize` handshake at 2025-11-25 (the server may answer an older revision, e.g. 2025-06-18). The legacy SSE transport always initializes |
//! | a tool list with a `ttlMs` hint (2026-07-28) | rmcp serves it from its cache until then; when it expires a catalog rebuild is requested (at least 1 s, at most a day apart), so a stateless server, which has no stream to announce changes on, is re-listed |
//! | server gone (stream ended, session unknown) | the next use reconnects |
//! | stdio child exited | restarted in the background (see [`super::stdio`]), then a catalog rebuild is requested |
//! | connect fails | callers get the error; the next attempt waits [`backoff`] (100 ms doubling, at most 10 s) |
//! | message provably not delivered (connection refused, session refused, 401, stdio pipe closed) | reconnect once and resend |
//! | failure after sending `tools/call` | reported, never resent (the tool may have run) |
//! | session closed (config reload, shutdown) | stdio child stopped and reaped, HTTP session deleted |
//!
//! Every request is bounded by the source's `call_timeout` ([`SourceSettings`]); connecting
//! (spawn or HTTP, plus `initialize`) by [`CONNECT_TIMEOUT`].

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

// Logging is deprecated from 2026-07-28 (SEP-2577), but servers of the handshake revisions
// still send it, and the door's callers of those revisions still read it.
#[expect(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, Implementation,
    ProgressNotificationParam, ProtocolVersion, RequestMetaObject, Tool,
};
use rmcp::service::{
    ClientLifecycleMode, NotificationContext, RoleClient, RunningService, ServiceError,
};
use rmcp::ClientHandler;
use tokio::sync::{mpsc, watch};

use super::oauth::OAuthError;
use super::oauth::TokenSource;
use super::outbox::Outbox;
use super::relay::{RelatedCall, Relay, Relays, RELAY_META};
use super::remote::{LegacySse, RemoteBase, StreamableHttp, TransportError};
use super::settings::{SourceSettings, Transport};
use super::stdio::{self, Ended};
use super::{find_cause, McpError};
use crate::secrets::SecretValue;

/// Longest connecting may take (spawning or reaching the server, then `initialize`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// A stdio child that lived at least this long before exiting is restarted after the
/// shortest backoff; one that dies sooner counts as a crash loop and backs off further.
pub const STABLE_UPTIME: Duration = Duration::from_secs(10);

/// Wait before reconnect attempt `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(10_000))
}

/// Receives server notifications for one source.
pub(crate) struct Handler {
    source_id: String,
    changes: mpsc::UnboundedSender<String>,
    relays: Arc<Relays>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::info!(source = %self.source_id, "MCP server changed its tool list");
        let _ = self.changes.send(self.source_id.clone());
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        // Only progress that arrived on a call's own answer belongs to that call (`relay`).
        if let Some(RelatedCall(token)) = context.extensions.get::<RelatedCall>() {
            let message = params.message.as_deref();
            self.relays
                .progress(token, params.progress, params.total, message);
        }
    }

    #[expect(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        context: NotificationContext<RoleClient>,
    ) {
        // Only a message that arrived on a call's own answer belongs to that call (`relay`).
        if let Some(RelatedCall(token)) = context.extensions.get::<RelatedCall>() {
            let level = serde_json::to_value(params.level).unwrap_or_default();
            self.relays
                .log(token, level, params.logger.as_deref(), &params.data);
        }
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("portcullis", env!("CARGO_PKG_VERSION")),
        )
        // The handshake's version, when the server turns out not to know `server/discover`.
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

type Running = RunningService<RoleClient, Handler>;

/// A live session and the count of its requests that may have reached the server.
struct Live {
    service: Running,
    outbox: Arc<Outbox>,
}

impl std::ops::Deref for Live {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.service
    }
}

#[derive(Default)]
struct Connection {
    running: Option<Arc<Live>>,
    /// Process id of the stdio child serving `running`.
    pid: Option<u32>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<McpError>,
    /// Consecutive stdio children that died within [`STABLE_UPTIME`].
    crashes: u32,
    /// Supervisors of stdio children still running (awaited on close).
    supervisors: Vec<tokio::task::JoinHandle<()>>,
}

/// A new session, and for stdio the child process to supervise.
struct Connected {
    running: Live,
    child: Option<(tokio::process::Child, tokio::sync::oneshot::Receiver<()>)>,
}

/// The pooled session of one source.
pub struct Session {
    settings: SourceSettings,
    http: reqwest::Client,
    oauth: Option<Arc<TokenSource>>,
    changes: mpsc::UnboundedSender<String>,
    connection: tokio::sync::Mutex<Connection>,
    /// Turns true on close; supervisors then stop their child instead of restarting it.
    /// Dropping the session (and so the sender) means the same.
    stop: watch::Sender<bool>,
    me: Weak<Session>,
    /// Credentials the current connection carries (resolved `headerSecrets`, `passEnv`
    /// values), so that a server echoing one back never hands it to the caller.
    echoes: std::sync::Mutex<Vec<SecretValue>>,
    /// The rebuild requested when the last tool list's `ttlMs` expires.
    stale: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Calls in flight whose notifications are relayed to their caller.
    relays: Arc<Relays>,
}

/// The lifecycle a transport starts with: `server/discover`, falling back to `initialize`.
fn discover_then_initialize() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    }
}

/// The shortest and longest wait before a listing whose `ttlMs` expired is refreshed.
const MIN_RELIST: Duration = Duration::from_secs(1);
const MAX_RELIST: Duration = Duration::from_secs(24 * 60 * 60);

/// `passEnv` values shorter than this are not scrubbed from results: they are switches
/// (`1`, `debug`), and replacing them everywhere would garble ordinary text.
pub const MIN_SCRUBBED_ENV_VALUE: usize = 8;

impl Session {
    pub(crate) fn new(
        settings: SourceSettings,
        http: reqwest::Client,
        changes: mpsc::UnboundedSender<String>,
        clients: Arc<crate::oauth::OAuthClients>,
    ) -> Arc<Self> {
        let oauth = settings
            .oauth
            .clone()
            .map(|o| Arc::new(TokenSource::new(o, clients)));
        Arc::new_cyclic(|me| Self {
            settings,
            http,
            oauth,
            changes,
            connection: tokio::sync::Mutex::new(Connection::default()),
            stop: watch::Sender::new(false),
            me: me.clone(),
            echoes: std::sync::Mutex::new(Vec::new()),
            stale: std::sync::Mutex::new(None),
            relays: Arc::default(),
        })
    }

    /// The settings this session was opened with.
    pub fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    /// Every tool the server offers (all `tools/list` pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, McpError> {
        let listed = self
            .with_peer(true, |running| async move {
                running.peer().list_all_tools_with_cache_hint().await
            })
            .await?;
        if let Some(ttl) = listed.ttl_ms.filter(|&ms| ms > 0) {
            self.relist_after(Duration::from_millis(ttl).clamp(MIN_RELIST, MAX_RELIST));
        }
        Ok(listed.items)
    }

    /// Ask for a catalog rebuild (a new listing) once `ttl` has passed, unless the session
    /// closes first; a newer listing replaces the request.
    fn relist_after(&self, ttl: Duration) {
        let changes = self.changes.clone();
        let source = self.settings.id.clone();
        let mut stop = self.stop.subscribe();
        let timer = tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(ttl) => {
                    tracing::debug!(source = %source, "MCP tool list is stale (ttlMs); listing again");
                    let _ = changes.send(source);
                }
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
        let previous = self
            .stale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(timer);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Call one tool; with a `relay`, what the server sends during the call goes to its
    /// caller ([`super::relay`]).
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        relay: Option<Relay>,
    ) -> Result<CallToolResult, McpError> {
        let mut params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        let registration = match relay {
            Some(relay) => Some(
                self.relays
                    .register(relay, self.carried_credentials().await),
            ),
            None => None,
        };
        if let Some(registration) = &registration {
            // rmcp sets the request's progress token itself; this key lets the transport
            // recognise the call's own answer stream (`relay`). Servers ignore unknown `_meta`.
            let meta = serde_json::json!({ RELAY_META: registration.token() });
            params.meta = serde_json::from_value::<RequestMetaObject>(meta).ok();
        }
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
        F: Fn(Arc<Live>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let running = self.running().await?;
            let sent_before = running.outbox.maybe_delivered();
            let limit = self.settings.call_timeout;
            let result = tokio::time::timeout(limit, op(running.clone())).await;
            let error = match result {
                Ok(Ok(value)) => return Ok(value),
                Err(_) => return Err(McpError::Timeout(limit)),
                Ok(Err(ServiceError::McpError(e))) => {
                    return Err(McpError::Protocol(e.message.to_string()))
                }
                Ok(Err(other)) => other,
            };
            // The session ended with nothing of ours written (still queued): safe to resend.
            let unsent = matches!(error, ServiceError::TransportClosed)
                && running.outbox.maybe_delivered() == sent_before;
            let resend = !self.stopped() && (retry_any || unsent || not_delivered(&error));
            self.forget(&running).await;
            if attempt >= 2 || !resend {
                return Err(failure(&error, McpError::Transport));
            }
            tracing::info!(source = %self.settings.id, "MCP session lost ({error}); reconnecting");
        }
    }

    /// The live session, connecting (within the backoff schedule) when there is none.
    async fn running(&self) -> Result<Arc<Live>, McpError> {
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
        match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
            Ok(Ok(Connected { running, child })) => {
                let running = Arc::new(running);
                conn.running = Some(running.clone());
                conn.pid = child.as_ref().and_then(|(c, _)| c.id());
                conn.failures = 0;
                conn.retry_at = None;
                if let Some((child, released)) = child {
                    conn.supervisors.retain(|s| !s.is_finished());
                    conn.supervisors.push(tokio::spawn(supervise(
                        self.me.clone(),
                        child,
                        released,
                        self.stop.subscribe(),
                    )));
                }
                Ok(running)
            }
            outcome => {
                let error = match outcome {
                    Ok(Err(e)) => e,
                    _ => McpError::Unavailable(format!(
                        "connecting took longer than {} s",
                        CONNECT_TIMEOUT.as_secs()
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
    async fn forget(&self, failed: &Arc<Live>) {
        let mut conn = self.connection.lock().await;
        if conn
            .running
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, failed))
        {
            conn.running = None;
        }
    }

    fn set_echoes(&self, values: Vec<SecretValue>) {
        *self.echoes.lock().unwrap_or_else(|e| e.into_inner()) = values;
    }

    /// The credentials this session's transport carries: what [`crate::secrets::scrub`] must
    /// remove from its tool results (the transport OAuth token included, from its cache).
    pub async fn carried_credentials(&self) -> crate::upstream::AppliedCredentials {
        let mut values = self
            .echoes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(oauth) = &self.oauth {
            if let Ok(token) = oauth.bearer().await {
                values.push(token);
            }
        }
        crate::upstream::AppliedCredentials {
            values,
            ..Default::default()
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

    async fn connect(&self) -> Result<Connected, McpError> {
        let handler = Handler {
            source_id: self.settings.id.clone(),
            changes: self.changes.clone(),
            relays: self.relays.clone(),
        };
        let serve = |e: rmcp::service::ClientInitializeError| failure(&e, McpError::Unavailable);
        let outbox = Arc::new(Outbox::default());
        let (service, child) = match &self.settings.transport {
            Transport::Stdio {
                command,
                args,
                env,
                pass_env,
            } => {
                let env = stdio::child_env(env, pass_env);
                let passed = pass_env.iter().filter_map(|name| env.get(name));
                self.set_echoes(
                    passed
                        .filter(|v| v.len() >= MIN_SCRUBBED_ENV_VALUE)
                        .map(|v| SecretValue::new(v.clone()))
                        .collect(),
                );
                let spawned = stdio::spawn(&self.settings.id, command, args, &env, outbox.clone())?;
                // If initialization fails, dropping `spawned.child` kills it (kill_on_drop).
                let mode = discover_then_initialize();
                let running =
                    rmcp::service::serve_client_with_lifecycle(handler, spawned.pipes, mode)
                        .await
                        .map_err(serve)?;
                (running, Some((spawned.child, spawned.released)))
            }
            Transport::StreamableHttp(remote) => {
                let base = RemoteBase::new(remote, self.http.clone(), self.oauth.clone())
                    .await
                    .map_err(|e| McpError::Unavailable(e.to_string()))?;
                self.set_echoes(base.secret_values.clone());
                let transport = StreamableHttp::new(base, remote.url.clone(), outbox.clone());
                let mode = discover_then_initialize();
                let running = rmcp::service::serve_client_with_lifecycle(handler, transport, mode)
                    .await
                    .map_err(serve)?;
                (running, None)
            }
            Transport::Sse(remote) => {
                let base = RemoteBase::new(remote, self.http.clone(), self.oauth.clone())
                    .await
                    .map_err(|e| McpError::Unavailable(e.to_string()))?;
                self.set_echoes(base.secret_values.clone());
                let transport = LegacySse::connect(base, remote.url.clone(), outbox.clone())
                    .await
                    .map_err(|e| failure(&e, McpError::Unavailable))?;
                // The HTTP+SSE transport predates the stateless revision.
                let mode = ClientLifecycleMode::Initialize;
                let running = rmcp::service::serve_client_with_lifecycle(handler, transport, mode)
                    .await
                    .map_err(serve)?;
                (running, None)
            }
        };
        Ok(Connected {
            running: Live { service, outbox },
            child,
        })
    }

    /// Close the session now (config reload or shutdown): a stdio child is stopped, and this
    /// returns once it has exited (or was killed) and was reaped.
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let (running, supervisors) = {
            let mut conn = self.connection.lock().await;
            (conn.running.take(), std::mem::take(&mut conn.supervisors))
        };
        if let Some(running) = running {
            match Arc::try_unwrap(running) {
                Ok(mut live) => {
                    let _ = live
                        .service
                        .close_with_timeout(Duration::from_secs(2))
                        .await;
                }
                // In use by a call right now: it is closed when that call drops it.
                Err(shared) => shared.cancellation_token().cancel(),
            }
        }
        for supervisor in supervisors {
            let _ = tokio::time::timeout(stdio::STOP_GRACE * 4, supervisor).await;
        }
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A stdio child ended: decide how long to wait before its replacement. `None` when the
    /// session is closing or already has a live connection again.
    async fn restart_delay(
        &self,
        ended: Ended,
        uptime: Duration,
        pid: Option<u32>,
    ) -> Option<Duration> {
        let mut conn = self.connection.lock().await;
        if self.stopped() {
            return None;
        }
        // The session over the child that ended is dead, even if rmcp has not read the EOF yet.
        if pid.is_some() && conn.pid == pid {
            conn.running = None;
            conn.pid = None;
        }
        if ended == Ended::Crashed {
            conn.crashes = if uptime < STABLE_UPTIME {
                conn.crashes + 1
            } else {
                1
            };
        }
        let live = conn
            .running
            .as_ref()
            .is_some_and(|r| !r.is_closed() && !r.peer().is_transport_closed());
        (!live).then(|| backoff(conn.crashes.max(1)))
    }
}

/// Watch one stdio child; when it ends and the session has no live connection, start a new
/// child in the background (with backoff), and ask for a catalog rebuild once it is up,
/// since the new process may offer other tools.
fn supervise(
    session: Weak<Session>,
    mut child: tokio::process::Child,
    released: tokio::sync::oneshot::Receiver<()>,
    stop: watch::Receiver<bool>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    // Boxed with an explicit `Send`: this future reconnects through `Session::running`, which
    // spawns the next supervisor, and the compiler cannot infer `Send` through that cycle.
    Box::pin(async move {
        let started = Instant::now();
        let pid = child.id();
        let source_id = match session.upgrade() {
            Some(s) => s.settings.id.clone(),
            None => return,
        };
        let ended = stdio::watch(&source_id, &mut child, released, stop).await;
        drop(child);
        let mut delay = {
            let Some(session) = session.upgrade() else {
                return;
            };
            match session.restart_delay(ended, started.elapsed(), pid).await {
                Some(delay) => delay,
                None => return,
            }
        };
        loop {
            tokio::time::sleep(delay).await;
            let Some(session) = session.upgrade() else {
                return;
            };
            if session.stopped() {
                return;
            }
            match session.running().await {
                Ok(_) => {
                    tracing::info!(source = %source_id, "MCP stdio server restarted");
                    let _ = session.changes.send(source_id);
                    return;
                }
                Err(error) => {
                    tracing::warn!(source = %source_id, "restarting the MCP stdio server failed: {error}");
                    let conn = session.connection.lock().await;
                    delay = conn.retry_at.map_or(backoff(conn.failures.max(1)), |at| {
                        at.saturating_duration_since(Instant::now())
                    });
                }
            }
        }
    })
}

/// A transport error whose message cannot have reached the server.
fn not_delivered(error: &ServiceError) -> bool {
    match error {
        // Closed while a response was pending: the server may have acted on it.
        ServiceError::TransportSend(e) => {
            find_cause::<TransportError>(e).is_some_and(TransportError::not_delivered)
                // A stdio write to a pipe nobody reads: the child was already gone.
                || find_cause::<std::io::Error>(e).is_some_and(stdio::pipe_unread)
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
