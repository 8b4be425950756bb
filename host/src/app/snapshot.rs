//! A snapshot: everything a request needs, built once from config and swapped atomically.
//!
//! Requests read the current snapshot with one atomic load and never rebuild anything; a
//! rebuild (startup, `/v1/refresh`, a watched file changing) produces a new snapshot and swaps
//! it in. A config that fails to load or compile keeps the previous snapshot serving.
//!
//! This is where the runtime is assembled from the effective config: plugins, authenticator,
//! policy (with its evaluator plugins), upstream client, secret resolver and catalog, in that
//! order; the first that fails is the [`SnapshotError`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::authn::{Authenticator, AuthnSetupError};
use crate::catalog::pattern::PatternError;
use crate::catalog::{self, BuildOptions, Catalog, SourceError, SourceFetch, Tool};
use crate::config::{ConfigError, LoadedConfig, Rules, ScopePaths, UpstreamLimits};
use crate::mcp::McpPool;
use crate::plugins::{PluginError, PluginSet};
use crate::policy::PolicySet;
use crate::secrets::SecretResolver;
use crate::upstream::{Upstream, UpstreamError};

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Runtime auth cannot be enforced as configured.
    #[error(transparent)]
    Authn(#[from] AuthnSetupError),
    /// A policy pattern does not compile.
    #[error("policy: {0}")]
    Policy(#[from] PatternError),
    /// The upstream client could not be built.
    #[error("upstream client: {0}")]
    Upstream(#[from] UpstreamError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// How a snapshot's authenticator is built.
#[derive(Clone, Copy)]
enum Authn {
    /// For serving: validates tokens (may contact the identity provider while building).
    Online,
    /// For explaining offline: the envelope only ([`Authenticator::offline`]).
    Offline,
}

/// Modification stamp of a watched file (`None` = absent).
pub type FileStamp = Option<(SystemTime, u64)>;

/// Read a file's stamp.
pub fn stamp(path: &PathBuf) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// One immutable view of config + catalog.
pub struct Snapshot {
    /// The effective config.
    pub loaded: LoadedConfig,
    /// The catalog.
    pub catalog: Catalog,
    /// Tool id -> index in `catalog.tools`.
    tool_index: HashMap<String, usize>,
    /// Compiled policy.
    pub policy: PolicySet,
    /// Upstream credentials.
    pub secrets: SecretResolver,
    /// Caller authentication.
    pub authenticator: Authenticator,
    /// Loaded WebAssembly plugins.
    pub plugins: PluginSet,
    /// Upstream HTTP client.
    pub upstream: Upstream,
    /// The instance's MCP sessions (shared by every snapshot).
    pub mcp: Arc<McpPool>,
    /// Sources that failed to load.
    pub source_errors: Vec<SourceError>,
    /// Per-source fetch report of the build.
    pub fetches: Vec<SourceFetch>,
    /// Files whose change triggers a rebuild, with their stamps at build time.
    pub watched: Vec<(PathBuf, FileStamp)>,
    /// Document pin events of the build, taken once by the runtime for the audit log.
    pub(crate) document_pin_events: Mutex<Vec<crate::catalog::doc_pins::DocumentPinEvent>>,
    /// Pre-rendered `/v1/catalog/effective` bodies, one per effective view.
    rendered: Vec<OnceLock<RenderedView>>,
    /// Bodies rendered for restricted callers (see [`Snapshot::filtered_view`]).
    filtered: Mutex<FilteredRenders>,
}

/// Most bytes kept in filtered renders before the cache starts over.
const FILTERED_RENDER_BUDGET: usize = 64 << 20;

/// Catalog bodies rendered for restricted callers, keyed by view and the caller's scopes.
#[derive(Default)]
struct FilteredRenders {
    entries: HashMap<(usize, Vec<String>), RenderedView>,
    bytes: usize,
}

/// A catalog response rendered once: as is, and gzip-compressed for clients that accept it
/// (the open-cli Go client does by default). The GitHub catalog renders to about 5 MB.
#[derive(Debug, Clone)]
pub struct RenderedView {
    /// The JSON body.
    pub identity: Bytes,
    /// The same body, gzip-compressed.
    pub gzip: Bytes,
}

fn gzip(bytes: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Load (compile, link, `init`) every configured plugin off the async workers: compiling a
/// component takes from milliseconds to seconds.
async fn load_plugins(loaded: &LoadedConfig) -> Result<PluginSet, PluginError> {
    if loaded.config.plugins.as_ref().is_none_or(|p| p.is_empty()) {
        return Ok(PluginSet::default());
    }
    let config = loaded.config.clone();
    let base_dir = loaded.base_dir.clone();
    tokio::task::spawn_blocking(move || PluginSet::load(&config, &base_dir))
        .await
        .unwrap_or_else(|e| {
            Err(PluginError::load(
                "*",
                crate::plugins::LoadErrorKind::Init(format!("plugin loading failed: {e}")),
            ))
        })
}

impl Snapshot {
    /// Load config and build the catalog; MCP sources are listed through `mcp`, which is
    /// synced to the new config (sessions of changed or removed sources are closed), and the
    /// documents of `pin: true` sources are pinned under `document_pins`.
    pub async fn build(
        paths: &ScopePaths,
        settings: &dyn Rules,
        cache_dir: Option<PathBuf>,
        document_pins: Option<PathBuf>,
        force_refresh: bool,
        mcp: Arc<McpPool>,
    ) -> Result<Self, SnapshotError> {
        Self::assemble(
            paths,
            settings,
            (cache_dir, document_pins),
            force_refresh,
            mcp,
            Authn::Online,
        )
        .await
    }

    /// [`Snapshot::build`] for a door that explains calls without serving them (`portcullis
    /// policy explain`): the same assembly (plugins, policy with its evaluators, catalog), but
    /// the authenticator knows only the configured envelope ([`Authenticator::offline`]), so no
    /// identity provider is contacted; no document cache is used.
    pub async fn build_offline(
        paths: &ScopePaths,
        settings: &dyn Rules,
        mcp: Arc<McpPool>,
    ) -> Result<Self, SnapshotError> {
        Self::assemble(paths, settings, (None, None), false, mcp, Authn::Offline).await
    }

    async fn assemble(
        paths: &ScopePaths,
        settings: &dyn Rules,
        (cache_dir, document_pins): (Option<PathBuf>, Option<PathBuf>),
        force_refresh: bool,
        mcp: Arc<McpPool>,
        authn: Authn,
    ) -> Result<Self, SnapshotError> {
        let loaded = crate::config::load(paths, settings)?;
        let plugins = load_plugins(&loaded).await?;
        let authenticator = match authn {
            Authn::Online => Authenticator::from_config(&loaded.config, &plugins).await?,
            Authn::Offline => Authenticator::offline(&loaded.config)?,
        };
        let evaluators = loaded
            .config
            .policy
            .iter()
            .flat_map(|p| p.plugins.iter().flatten())
            .filter_map(|name| plugins.get(name))
            .map(|plugin| {
                Arc::new(crate::policy::wasm::PolicyPlugin(plugin.clone()))
                    as Arc<dyn crate::policy::PolicyEvaluator>
            })
            .collect();
        let policy = PolicySet::compile(&loaded.config)?.with_evaluators(evaluators);
        let limits = loaded
            .config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.upstream.clone())
            .unwrap_or_else(UpstreamLimits::default);
        let upstream =
            Upstream::new(&limits)?.with_redirect_origins(loaded.config.sources.iter().flatten());
        let secrets = SecretResolver::with_oauth(loaded.config.secrets.as_ref(), mcp.oauth())
            .with_plugins(plugins.clone());
        // Tell the operator now, not at the first call, about references this host cannot
        // resolve (names and reasons only; see `secrets::preflight`).
        for warning in crate::secrets::preflight::check(&loaded.config) {
            tracing::warn!(secret = %warning.path, "{}", warning.message);
        }
        let outcome = catalog::build(
            &loaded,
            &BuildOptions {
                cache_dir,
                force_refresh,
                mcp: Some(mcp.clone()),
                document_pins: document_pins.clone(),
            },
        )
        .await;
        for error in &outcome.errors {
            tracing::warn!(source = %error.source_id, "source failed to load: {}", error.message);
        }
        for warning in &outcome.warnings {
            tracing::warn!(source = %warning.source_id, "{}", warning.message);
        }
        let mut watch_paths: Vec<PathBuf> = paths
            .managed
            .iter()
            .chain(paths.user.iter())
            .chain(std::iter::once(&paths.project))
            .chain(paths.local.iter())
            .cloned()
            .collect();
        watch_paths.extend(outcome.watched_files.iter().cloned());
        // `portcullis mcp accept` writes a pin file: watching them makes an accept take effect.
        watch_paths.extend(
            outcome
                .catalog
                .sources
                .iter()
                .filter(|s| s.kind == "mcp")
                .filter_map(|s| mcp.pins().file(&s.id)),
        );
        watch_paths.sort();
        watch_paths.dedup();
        let watched = watch_paths.into_iter().map(|p| {
            let s = stamp(&p);
            (p, s)
        });
        let catalog = outcome.catalog;
        let tool_index = catalog
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let rendered = catalog
            .effective_views
            .iter()
            .map(|_| OnceLock::new())
            .collect();
        Ok(Self {
            loaded,
            catalog,
            tool_index,
            policy,
            secrets,
            authenticator,
            plugins,
            upstream,
            mcp,
            source_errors: outcome.errors,
            fetches: outcome.fetches,
            watched: watched.collect(),
            document_pin_events: Mutex::new(outcome.pin_events),
            rendered,
            filtered: Mutex::default(),
        })
    }

    /// Look a tool up by id.
    pub fn tool(&self, id: &str) -> Option<&Tool> {
        self.tool_index.get(id).map(|&i| &self.catalog.tools[i])
    }

    /// Render the views requests land on by default, so no request pays for rendering.
    pub fn prerender(&self) {
        for index in 0..self.rendered.len() {
            self.rendered_view(index);
        }
    }

    /// The catalog body for a restricted caller: rendered by `render` the first time a view is
    /// asked for with this set of scopes, then served from memory (plain and gzip) until the
    /// snapshot is replaced. Sound because the envelope is a pure function of the scopes and the
    /// snapshot; the audit events of each request are still recorded by the caller. At most
    /// 64 MiB of bodies are kept; beyond that the cache starts over.
    pub fn filtered_view(
        &self,
        index: usize,
        scopes: &[String],
        render: impl FnOnce() -> Vec<u8>,
    ) -> RenderedView {
        let mut key_scopes = scopes.to_vec();
        key_scopes.sort_unstable();
        key_scopes.dedup();
        let key = (index, key_scopes);
        let lock = || self.filtered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = lock().entries.get(&key) {
            return hit.clone();
        }
        let identity = render();
        let view = RenderedView {
            gzip: gzip(&identity),
            identity: Bytes::from(identity),
        };
        let size = view.identity.len() + view.gzip.len();
        let mut cache = lock();
        if cache.bytes + size > FILTERED_RENDER_BUDGET {
            cache.entries.clear();
            cache.bytes = 0;
        }
        if size <= FILTERED_RENDER_BUDGET && cache.entries.insert(key, view.clone()).is_none() {
            cache.bytes += size;
        }
        view
    }

    /// The `{"catalog":...,"view":...}` body for the view at `index`, rendered once.
    pub fn rendered_view(&self, index: usize) -> Option<RenderedView> {
        let view = self.catalog.effective_views.get(index)?;
        let cell = self.rendered.get(index)?;
        Some(
            cell.get_or_init(|| {
                #[derive(serde::Serialize)]
                struct Body<'a> {
                    catalog: &'a Catalog,
                    view: &'a crate::catalog::EffectiveView,
                }
                let body = Body {
                    catalog: &self.catalog,
                    view,
                };
                let identity = serde_json::to_vec(&body).unwrap_or_default();
                RenderedView {
                    gzip: gzip(&identity),
                    identity: Bytes::from(identity),
                }
            })
            .clone(),
        )
    }
}

impl crate::call::ToolIndex for Snapshot {
    fn tool(&self, id: &str) -> Option<&Tool> {
        Snapshot::tool(self, id)
    }

    fn withheld(&self, id: &str) -> Option<&crate::catalog::WithheldTool> {
        self.catalog.withheld.iter().find(|w| w.tool.id == id)
    }
}
