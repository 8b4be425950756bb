//! The running instance: options, the current snapshot, the audit log, rebuilds.
//!
//! Part of the composition root: a door (`server`) starts it and reads its current snapshot;
//! nothing here names the door. Failure mode: a config that does not load at start is a
//! [`StartError`]; on a rebuild the previous snapshot keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::snapshot::{stamp, FileStamp, Snapshot, SnapshotError};
use crate::audit::{AuditDecision, AuditError, AuditEvent, AuditLog, AuditOptions};
use crate::catalog::Backend;
use crate::config::{Rules, ScopePaths};
use crate::mcp::pins::PinEventKind;
use crate::mcp::McpPool;
use crate::oauth::OAuthClients;
use crate::policy::ApprovalStore;

/// How often watched files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the instance keeps its state and what it serves.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Config scopes.
    pub scopes: ScopePaths,
    /// Instance id.
    pub instance_id: String,
    /// Instance state directory (`<state root>/instances/<id>`).
    pub state_dir: PathBuf,
    /// Audit file.
    pub audit_path: PathBuf,
    /// Remote document cache.
    pub cache_dir: PathBuf,
    /// The URL the server is reachable at (for `runtime/info` and `runtime.json`).
    pub url: String,
    /// Every capability's config checks, run on each (re)load: `app::Settings` for every door
    /// (a test may narrow them).
    pub settings: Arc<dyn Rules>,
}

/// A running Portcullis instance.
pub struct Runtime {
    /// Options it was started with.
    pub options: RuntimeOptions,
    snapshot: ArcSwap<Snapshot>,
    /// The audit log.
    pub audit: AuditLog,
    rebuild: tokio::sync::Mutex<()>,
    /// MCP sessions, kept across snapshots.
    pub mcp: Arc<McpPool>,
    /// Outstanding approval grants, kept across snapshots.
    pub approvals: ApprovalStore,
    last_seen: std::sync::Mutex<Vec<(PathBuf, FileStamp)>>,
    /// Counts the catalogs swapped in since start; a door that pushes change notifications
    /// watches it.
    rebuilt: tokio::sync::watch::Sender<u64>,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Config or catalog problem.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// An HTTP client (OAuth, MCP) could not be built; a default client is never used instead.
    #[error("HTTP client could not be built: {source}")]
    HttpClient {
        /// Cause.
        source: crate::net::NetError,
    },
    /// State directory problem.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl Runtime {
    /// Load config, build the catalog, open the audit log and write `runtime.json`.
    pub async fn start(options: RuntimeOptions) -> Result<Arc<Self>, StartError> {
        let audit = AuditOptions::for_instance(options.audit_path.clone(), &options.state_dir);
        Self::start_with_audit(options, audit).await
    }

    /// [`Runtime::start`] with explicit audit options (key file, checkpoints, durability).
    pub async fn start_with_audit(
        options: RuntimeOptions,
        audit: AuditOptions,
    ) -> Result<Arc<Self>, StartError> {
        std::fs::create_dir_all(&options.state_dir).map_err(|source| StartError::StateDir {
            path: options.state_dir.clone(),
            source,
        })?;
        // One OAuth cache per instance, shared by `oauth2` secrets and MCP transports and kept
        // across config reloads, with tokens stored under `<stateDir>/oauth`.
        let oauth = Arc::new(
            OAuthClients::new(Some(options.state_dir.clone()), Some(&options.url))
                .map_err(|source| StartError::HttpClient { source })?,
        );
        // Tool pins are kept across restarts, beside the OAuth tokens.
        let mcp = Arc::new(
            McpPool::with_oauth(oauth)
                .map_err(|source| StartError::HttpClient { source })?
                .with_pin_dir(options.state_dir.join(crate::mcp::pins::PIN_DIR)),
        );
        let snapshot = Snapshot::build(
            &options.scopes,
            &*options.settings,
            Some(options.cache_dir.clone()),
            Some(
                options
                    .state_dir
                    .join(crate::catalog::doc_pins::DOCUMENT_PIN_DIR),
            ),
            false,
            mcp.clone(),
        )
        .await?;
        let audit = AuditLog::open_with(audit)?;
        let last_seen = std::sync::Mutex::new(snapshot.watched.clone());
        let runtime = Arc::new(Self {
            options,
            snapshot: ArcSwap::from_pointee(snapshot),
            audit,
            rebuild: tokio::sync::Mutex::new(()),
            mcp,
            approvals: ApprovalStore::default(),
            last_seen,
            rebuilt: tokio::sync::watch::Sender::new(0),
        });
        runtime.write_runtime_file();
        runtime.audit_pin_events().await;
        super::memory::release_after_build().await;
        Ok(runtime)
    }

    /// The snapshot requests should use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Changes each time a rebuilt catalog is swapped in (the value counts rebuilds); the
    /// receiver sees an error once the runtime is gone.
    pub fn catalog_rebuilds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rebuilt.subscribe()
    }

    /// Rebuild config + catalog and swap it in; on failure the current snapshot keeps serving.
    pub async fn rebuild(&self, force_refresh: bool) -> Result<Arc<Snapshot>, SnapshotError> {
        let _one_at_a_time = self.rebuild.lock().await;
        let fresh = Snapshot::build(
            &self.options.scopes,
            &*self.options.settings,
            Some(self.options.cache_dir.clone()),
            Some(
                self.options
                    .state_dir
                    .join(crate::catalog::doc_pins::DOCUMENT_PIN_DIR),
            ),
            force_refresh,
            self.mcp.clone(),
        )
        .await?;
        let fresh = Arc::new(fresh);
        let rendering = fresh.clone();
        // Render off the async workers; a large catalog takes tens of milliseconds.
        let _ = tokio::task::spawn_blocking(move || rendering.prerender()).await;
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = fresh.watched.clone();
        self.snapshot.store(fresh.clone());
        self.rebuilt.send_modify(|n| *n += 1);
        self.audit_pin_events().await;
        super::memory::release_after_build().await;
        tracing::info!(tools = fresh.catalog.tools.len(), "catalog rebuilt");
        Ok(fresh)
    }

    /// Rebuild whenever a config scope or a local source document changes.
    ///
    /// Stamps are remembered before the rebuild, so a broken edit is reported once and retried
    /// only when the files change again.
    pub async fn watch_sources(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let seen = self
                .last_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let now = tokio::task::spawn_blocking(move || {
                seen.into_iter()
                    .map(|(path, _)| {
                        let s = stamp(&path);
                        (path, s)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let changed = {
                let mut seen = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
                let changed = *seen != now;
                if changed {
                    *seen = now;
                }
                changed
            };
            if changed {
                if let Err(error) = self.rebuild(false).await {
                    tracing::error!("a watched file changed but the new config does not load; still serving the previous one: {error}");
                }
            }
        }
    }

    /// Rebuild the catalog whenever an MCP server sends `notifications/tools/list_changed`.
    /// Bursts are coalesced: one rebuild covers every change announced before it starts.
    pub async fn follow_mcp_changes(self: Arc<Self>) {
        while let Some(source) = self.mcp.next_change().await {
            // Let a burst of announcements settle into one rebuild.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::ZERO, self.mcp.next_change()).await
            {}
            if let Err(error) = self.rebuild(false).await {
                tracing::error!(source = %source, "MCP tool list changed but the rebuild failed; still serving the previous catalog: {error}");
            }
        }
    }

    /// Audit what the last listings did to tool pins (first use, change with its diff,
    /// acceptance), each named by its catalog tool id when the catalog has one.
    async fn audit_pin_events(&self) {
        let snapshot = self.snapshot();
        let documents = std::mem::take(
            &mut *snapshot
                .document_pin_events
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let events = self.mcp.pins().take_events();
        if events.is_empty() && documents.is_empty() {
            return;
        }
        let catalog = &snapshot.catalog;
        let documents = documents.into_iter().map(|pin| {
            let (decision, reason) = match pin.kind {
                "changed" => (AuditDecision::Denied, "document_changed"),
                "pinned" => (AuditDecision::Allowed, "first_use"),
                _ => (AuditDecision::Allowed, "accepted"),
            };
            let event_type = format!("document_{}", pin.kind);
            let tool_id = format!("source:{}", pin.source_id);
            let mut event = AuditEvent::new(&event_type, &tool_id, decision, reason);
            event.detail = Some(pin.detail.into());
            event
        });
        let records = events
            .into_iter()
            .map(|pin| {
                let known = catalog
                    .tools
                    .iter()
                    .chain(catalog.withheld.iter().map(|w| &w.tool))
                    .find(|tool| match &tool.backend {
                        Backend::Mcp(b) => {
                            b.source_id == pin.source_id && b.tool_name == pin.tool_name
                        }
                        Backend::Http => false,
                    });
                let tool_id = known.map_or_else(
                    || format!("{}:{}", pin.source_id, pin.tool_name),
                    |tool| tool.id.clone(),
                );
                let (decision, reason) = match pin.kind {
                    PinEventKind::Changed => (AuditDecision::Denied, "tool_definition_changed"),
                    PinEventKind::Pinned => (AuditDecision::Allowed, "first_use"),
                    PinEventKind::Accepted => (AuditDecision::Allowed, "accepted"),
                };
                let mut event = AuditEvent::new(pin.kind.event_type(), &tool_id, decision, reason);
                event.service_id = Some(pin.source_id);
                event.detail = Some(pin.detail.into());
                event
            })
            .chain(documents)
            .collect();
        if let Err(error) = self.audit.record_all(records).await {
            tracing::error!("tool pin events could not be audited: {error}");
        }
    }

    fn runtime_file(&self) -> PathBuf {
        self.options.state_dir.join("runtime.json")
    }

    fn write_runtime_file(&self) {
        let info = serde_json::json!({
            "instanceId": self.options.instance_id,
            "url": self.options.url,
            "pid": std::process::id(),
            "auditPath": self.options.audit_path,
            "cacheDir": self.options.cache_dir,
        });
        let path = self.runtime_file();
        if let Err(error) =
            write_atomically(&path, &serde_json::to_vec_pretty(&info).unwrap_or_default())
        {
            tracing::warn!("could not write {}: {error}", path.display());
        }
    }

    /// Remove `runtime.json` on the way out.
    pub fn shutdown(&self) {
        let _ = std::fs::remove_file(self.runtime_file());
    }
}

/// Write a file by writing a temporary sibling and renaming it over the target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
