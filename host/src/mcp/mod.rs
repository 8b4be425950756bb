//! MCP sources: pooled client sessions to MCP servers over stdio, streamable HTTP and the
//! legacy HTTP+SSE transport.
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | what a source needs to connect, read from the validated config |
//! | `lister` | the pool as the catalog's [`crate::catalog::McpLister`] (settings, sync, tool lists) |
//! | [`session`] | one live session per source: connect, reuse, reconnect with backoff |
//! | [`remote`] | the two HTTP transports (rmcp provides stdio and the JSON-RPC engine) |
//! | `revision` | the stateless revision 2026-07-28 on the HTTP wire; older servers recognised at `server/discover` |
//! | [`outbox`] | which requests may have reached the server (decides whether a resend is safe) |
//! | [`relay`] | what a server sends during a call (progress, log messages), relayed to that call's caller |
//! | [`oauth`] | transport OAuth: client credentials, single-flight refresh, fail closed |
//! | [`pins`] | tool-definition pinning: a changed definition is withheld until accepted |
//! | [`sse`] | the `text/event-stream` decoder both HTTP transports use |
//! | [`stdio`] | supervised stdio children: spawn, restart after a crash, stop on close |
//!
//! The [`McpPool`] belongs to the running instance, not to a snapshot: a rebuild keeps the
//! session of every source whose settings did not change and closes the others (a stdio child
//! is killed), so a catalog rebuild triggered by `notifications/tools/list_changed` does not
//! restart the server that sent it. Catalog builds and tool calls share the same sessions.

mod lister;
pub mod oauth;
pub mod outbox;
pub mod pins;
pub mod relay;
pub mod remote;
mod revision;
pub mod session;
pub mod settings;
pub mod sse;
pub mod stdio;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::net::{self, NetError, Purpose};
use crate::oauth::OAuthClients;

pub use session::Session;
pub use settings::SourceSettings;

/// Why an MCP request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    /// No session could be established (the server is down, failed to start, or refused us).
    #[error("MCP server unavailable: {0}")]
    Unavailable(String),
    /// The session broke during the request.
    #[error("MCP transport failed: {0}")]
    Transport(String),
    /// The server answered with a JSON-RPC error.
    #[error("MCP server error: {0}")]
    Protocol(String),
    /// The request took longer than the limit.
    #[error("MCP request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Transport OAuth used its one refresh for this expiry and it failed: fail closed.
    #[error("MCP transport oauth: reauthorization required")]
    ReauthorizationRequired,
    /// The source is not an MCP source of this snapshot.
    #[error("no MCP session for source {0:?}")]
    UnknownSource(String),
}

impl McpError {
    /// The contract reason code for audit and error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::Unavailable(_) | Self::UnknownSource(_) => "upstream_unavailable",
            Self::Transport(_) | Self::Protocol(_) => "upstream_error",
            Self::Timeout(_) => "upstream_timeout",
        }
    }
}

/// The live MCP sessions of a running instance, keyed by source id.
pub struct McpPool {
    http: reqwest::Client,
    sessions: std::sync::Mutex<HashMap<String, Arc<Session>>>,
    changes_tx: mpsc::UnboundedSender<String>,
    changes_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    oauth: Arc<OAuthClients>,
    pins: pins::Pins,
}

impl std::fmt::Debug for McpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpPool").finish_non_exhaustive()
    }
}

impl McpPool {
    /// An empty pool whose transport OAuth tokens live in memory only. Fails only when an
    /// HTTP client cannot be built.
    pub fn new() -> Result<Self, NetError> {
        Self::with_oauth(Arc::new(OAuthClients::in_memory()?))
    }

    /// An empty pool whose transport OAuth uses the instance's shared OAuth cache and store.
    /// Fails only when the HTTP client cannot be built (never a default client: that one would
    /// follow redirects with credentials).
    pub fn with_oauth(oauth: Arc<OAuthClients>) -> Result<Self, NetError> {
        // Credentials are attached per request: this client follows no redirect.
        let http = net::client(Purpose::McpRemote)?;
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        Ok(Self {
            http,
            sessions: std::sync::Mutex::new(HashMap::new()),
            changes_tx,
            changes_rx: tokio::sync::Mutex::new(changes_rx),
            oauth,
            pins: pins::Pins::default(),
        })
    }

    /// Keep tool pins in files under `dir` (normally `<stateDir>/mcp-pins`) instead of memory.
    pub fn with_pin_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.pins = pins::Pins::new(Some(dir));
        self
    }

    /// The instance's tool-definition pins.
    pub fn pins(&self) -> &pins::Pins {
        &self.pins
    }

    /// Make the pool match `sources`: unchanged sources keep their live session, changed ones
    /// get a new one, and sessions of sources no longer configured are closed.
    pub async fn sync(&self, sources: Vec<SourceSettings>) {
        let mut retired = Vec::new();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = HashMap::new();
            for settings in sources {
                let id = settings.id.clone();
                let session = match sessions.remove(&id) {
                    Some(existing) if *existing.settings() == settings => existing,
                    old => {
                        retired.extend(old);
                        Session::new(
                            settings,
                            self.http.clone(),
                            self.changes_tx.clone(),
                            self.oauth.clone(),
                        )
                    }
                };
                next.insert(id, session);
            }
            retired.extend(sessions.drain().map(|(_, s)| s));
            *sessions = next;
        }
        futures_util::future::join_all(retired.iter().map(|s| s.close())).await;
    }

    /// The instance's OAuth clients (shared with `oauth2` secrets).
    pub fn oauth(&self) -> Arc<OAuthClients> {
        self.oauth.clone()
    }

    /// The session of one source.
    pub fn session(&self, source_id: &str) -> Result<Arc<Session>, McpError> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(source_id)
            .cloned()
            .ok_or_else(|| McpError::UnknownSource(source_id.to_owned()))
    }

    /// Wait for a server to announce a changed tool list; yields its source id.
    pub async fn next_change(&self) -> Option<String> {
        self.changes_rx.lock().await.recv().await
    }

    /// Close every session at once (runtime shutdown); returns when every stdio child has
    /// exited or been killed, so none outlives the runtime.
    pub async fn shutdown(&self) {
        let all: Vec<_> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        futures_util::future::join_all(all.iter().map(|s| s.close())).await;
    }
}

/// The first error of type `T` in `error`'s source chain.
pub(crate) fn find_cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}
