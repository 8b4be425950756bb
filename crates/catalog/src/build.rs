//! Catalog build (contract 4.1): config sources in, one immutable [`Catalog`] out.
//!
//! Order: every `services` key (sorted) whose source exists and is enabled, then every enabled
//! source no service references, under a derived service id (slug of the first non-parameter
//! segment of the lexicographically first path, else of `info.title`, else of the URI's file
//! name). Failure mode: a source that cannot be read, parsed or normalized, or whose tool ids
//! collide with an earlier source's, is recorded as a [`SourceError`] and contributes nothing;
//! every other source still loads. `mcp` sources list their tools through the MCP sessions the
//! caller hands in ([`super::lister`]: the instance's pool, synced to the config first) and are mapped by
//! [`super::mcp`]; an MCP server that is down fails only its own source. `serviceRoot` and
//! `apiCatalog` sources are resolved by [`super::discovery`] (an `apiCatalog` becomes one
//! planned service per listed service). A bound service's skill manifests and workflow documents
//! are read after its tools are built (`skills`, `workflows`); a malformed one, or a workflow step
//! that binds to no tool, fails that source. Parsing and normalization run on the blocking pool.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::cache::Cache;
use super::fetch::{self, Location};
use super::lister::{McpLister, McpListing, McpSource, NO_LISTER};
use super::model::{
    Backend, Catalog, CatalogService, CatalogSource, Provenance, Tool, WithheldTool, Workflow,
    CATALOG_VERSION,
};
use super::normalize::{self, ServiceTools};
use super::openapi;
use super::overlay;
use super::slug::slugify;
use super::views::effective_views;
use super::{skills, workflows};
use portcullis_config::{LoadedConfig, Source, SourceType};

/// Options for one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Directory for cached remote documents (none = no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Revalidate every remote document instead of trusting fresh cache entries (`/v1/refresh`).
    pub force_refresh: bool,
    /// The MCP sessions `mcp` sources are listed through; `None` fails every `mcp` source.
    pub mcp: Option<Arc<dyn McpLister>>,
    /// Where the documents of `pin: true` sources are pinned ([`super::doc_pins`]); `None`
    /// builds them as fetched.
    pub document_pins: Option<PathBuf>,
}

/// A source that failed to load; the other sources are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// Source id (config key).
    pub source_id: String,
    /// Why it failed.
    pub message: String,
}

/// Something about a source that loaded but that the operator should look at (printed by
/// `portcullis check`, logged when the server builds its catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWarning {
    /// Source id (config key).
    pub source_id: String,
    /// What to look at.
    pub message: String,
}

/// How one remote document fetch went (reported by `/v1/refresh`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFetch {
    /// Source id.
    pub id: String,
    /// Document location.
    pub uri: String,
    /// `miss`, `fresh_hit`, `revalidated_hit`, `refreshed`, `stale_hit` (remote documents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_outcome: Option<String>,
    /// HTTP status of the last fetch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Served from cache after the origin failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// The catalog's provenance record of this fetch (served in `sources[].provenance`).
    #[serde(skip)]
    pub record: Option<super::model::FetchRecord>,
}

/// What a build produced.
#[derive(Debug, Clone, Default)]
pub struct BuildOutcome {
    /// The catalog of every source that loaded.
    pub catalog: Catalog,
    /// Sources that failed, with reasons.
    pub errors: Vec<SourceError>,
    /// Sources that loaded with something worth a look (an overlay target matching nothing).
    pub warnings: Vec<SourceWarning>,
    /// Local files the catalog depends on (watched for changes).
    pub watched_files: Vec<PathBuf>,
    /// Per-source fetch report.
    pub fetches: Vec<SourceFetch>,
    /// What the build did to document pins, for the audit log.
    pub pin_events: Vec<super::doc_pins::DocumentPinEvent>,
}

/// One planned service build.
pub(crate) struct Planned<'a> {
    /// Explicit service id and alias; `None` = derive from the document.
    pub(crate) service: Option<(&'a str, Option<&'a str>)>,
    /// The service's overlay documents, in config order (none for an unbound source).
    pub(crate) overlays: &'a [String],
    /// The service's skill manifests and workflow documents (none for an unbound source).
    pub(crate) guides: (&'a [String], &'a [String]),
    pub(crate) source_id: &'a str,
    pub(crate) source: &'a Source,
    /// For an `apiCatalog` source: the one listed service this entry builds.
    pub(crate) discovered: Option<super::discovery::Found>,
}

/// Build the catalog for a loaded config.
pub async fn build(config: &LoadedConfig, options: &BuildOptions) -> BuildOutcome {
    let at = time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut out = BuildOutcome::default();
    let cfg = &config.config;
    let empty = Default::default();
    let sources = cfg.sources.as_ref().unwrap_or(&empty);
    let mut plan = Vec::new();
    let mut referenced = BTreeSet::new();
    for (service_id, service) in cfg.services.iter().flatten() {
        let Some(source_id) = service.source.as_deref() else {
            continue;
        };
        referenced.insert(source_id);
        match sources.get(source_id) {
            Some(source) if source.enabled.unwrap_or(true) => plan.push(Planned {
                service: Some((service_id.as_str(), service.alias.as_deref())),
                overlays: service.overlays.as_deref().unwrap_or_default(),
                guides: (
                    service.skills.as_deref().unwrap_or_default(),
                    service.workflows.as_deref().unwrap_or_default(),
                ),
                source_id,
                source,
                discovered: None,
            }),
            Some(_) => {}
            None => out.errors.push(SourceError {
                source_id: source_id.to_owned(),
                message: format!(
                    "service {service_id:?} references source {source_id:?}, which is not defined"
                ),
            }),
        }
    }
    for (source_id, source) in sources {
        if source.enabled.unwrap_or(true) && !referenced.contains(source_id.as_str()) {
            plan.push(Planned {
                service: None,
                overlays: &[],
                guides: (&[], &[]),
                source_id,
                source,
                discovered: None,
            });
        }
    }

    let mcp_sources: Vec<(&str, &Source)> = plan
        .iter()
        .filter(|p| p.source.kind == Some(SourceType::Mcp))
        .map(|p| (p.source_id, p.source))
        .collect();
    let mcp_settings: HashMap<String, Result<McpSource, String>> = match &options.mcp {
        Some(lister) => lister.sync(&mcp_sources, cfg).await,
        None => mcp_sources
            .iter()
            .map(|(id, _)| ((*id).to_owned(), Err(NO_LISTER.to_owned())))
            .collect(),
    };

    let cache = options.cache_dir.as_deref().map(Cache::new);
    let mut client = None;
    let plan = super::discovery::expand_catalogs(plan, cache.as_ref(), options, &mut out).await;
    let mut digests = Vec::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut catalog = Catalog {
        catalog_version: CATALOG_VERSION.to_owned(),
        generated_at: at.clone(),
        ..Catalog::default()
    };
    for planned in plan {
        let kind = planned.source.kind.unwrap_or(SourceType::Openapi);
        let kind_name = match kind {
            SourceType::Openapi => "openapi",
            SourceType::ServiceRoot => "serviceRoot",
            SourceType::ApiCatalog => "apiCatalog",
            SourceType::Mcp => "mcp",
        };
        let uri = planned.source.uri.clone().unwrap_or_default();
        if !catalog.sources.iter().any(|s| s.id == planned.source_id) {
            catalog.sources.push(CatalogSource {
                id: planned.source_id.to_owned(),
                kind: kind_name.to_owned(),
                uri: uri.clone(),
                provenance: Provenance {
                    method: super::discovery::provenance_method(kind).to_owned(),
                    at: at.clone(),
                    fetches: Vec::new(),
                },
            });
        }
        let fail = |message: String| SourceError {
            source_id: planned.source_id.to_owned(),
            message,
        };
        let built = match kind {
            SourceType::Openapi => {
                build_openapi(
                    &planned,
                    &uri,
                    config,
                    options,
                    &cache,
                    &mut client,
                    &mut out,
                )
                .await
            }
            SourceType::Mcp => {
                let service_id = service_label(&planned);
                let mut digest = Sha256::new();
                let overlays = load_overlays(
                    &planned,
                    config,
                    options,
                    &cache,
                    &mut client,
                    &mut out,
                    &mut digest,
                )
                .await;
                match (mcp_settings.get(planned.source_id), overlays) {
                    (_, Err(message)) => Err(message),
                    (Some(Ok(settings)), Ok(overlays)) => {
                        let mcp = McpService {
                            source_id: planned.source_id,
                            settings,
                            service_id,
                            overlays: &overlays,
                        };
                        let lister = options.mcp.as_deref();
                        build_mcp(lister, &mcp, cfg, &config.base_dir, digest).await
                    }
                    (Some(Err(message)), _) => Err(message.clone()),
                    (None, _) => Err("mcp source has no settings".to_owned()),
                }
            }
            SourceType::ServiceRoot | SourceType::ApiCatalog => {
                let discovered = super::discovery::build_discovered(
                    &planned,
                    config,
                    options,
                    &cache,
                    &mut client,
                    &mut out,
                );
                discovered.await
            }
        };
        let (service_id, mut tools, digest) = match built {
            Ok(v) => v,
            Err(message) => {
                out.errors.push(fail(message));
                continue;
            }
        };
        let workflows = match load_guides(
            &planned,
            &service_id,
            &mut tools,
            config,
            options,
            &cache,
            &mut client,
            &mut out,
        )
        .await
        {
            Ok(workflows) => workflows,
            Err(message) => {
                out.errors.push(fail(message));
                continue;
            }
        };
        if let Some(taken) = workflows.iter().find(|w| {
            catalog
                .workflows
                .iter()
                .any(|c| c.workflow_id == w.workflow_id)
        }) {
            out.errors.push(fail(format!(
                "service {service_id:?}: workflow id {:?} is already defined by another service",
                taken.workflow_id
            )));
            continue;
        }
        digests.push(digest);
        out.warnings
            .extend(tools.warnings.drain(..).map(|message| SourceWarning {
                source_id: planned.source_id.to_owned(),
                message,
            }));
        if let Some(err) = collision(&owners, &service_id, &tools) {
            out.errors.push(fail(err));
            continue;
        }
        for tool in &tools.tools {
            owners.insert(
                tool.id.clone(),
                format!(
                    "{} {} (source {})",
                    tool.method, tool.path, planned.source_id
                ),
            );
        }
        let alias = planned
            .service
            .and_then(|(_, alias)| alias)
            .unwrap_or(&service_id)
            .to_owned();
        catalog.services.push(CatalogService {
            id: service_id.clone(),
            alias,
            source_id: planned.source_id.to_owned(),
            title: tools.title,
            servers: tools.servers,
        });
        catalog.tools.extend(tools.tools);
        catalog.withheld.extend(tools.withheld);
        catalog.workflows.extend(workflows);
    }
    catalog.services.sort_by(|a, b| a.id.cmp(&b.id));
    catalog.tools.sort_by(|a, b| a.id.cmp(&b.id));
    let mut fingerprint = Sha256::new();
    for digest in &digests {
        fingerprint.update(digest);
    }
    catalog.source_fingerprint = hex::encode(fingerprint.finalize());
    catalog.effective_views = effective_views(cfg, &catalog.tools);
    super::discovery::attach_fetches(&mut catalog.sources, &out.fetches);
    out.catalog = catalog;
    out
}

pub(crate) type Built = (String, ServiceTools, sha2::digest::Output<Sha256>);

/// Load, parse and normalize one OpenAPI source.
async fn build_openapi(
    planned: &Planned<'_>,
    uri: &str,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
) -> Result<Built, String> {
    let (bytes, spec_url) = load_bytes(
        planned.source_id,
        planned.source,
        uri,
        config,
        options,
        cache,
        client,
        out,
    )
    .await?;
    let bytes = match (&options.document_pins, planned.source.pin) {
        (Some(dir), Some(true)) => {
            out.watched_files
                .push(super::doc_pins::record_file(dir, planned.source_id));
            let checked = super::doc_pins::check(dir, planned.source_id, uri, bytes)?;
            out.pin_events.extend(checked.event);
            out.warnings
                .extend(checked.warning.map(|message| SourceWarning {
                    source_id: planned.source_id.to_owned(),
                    message,
                }));
            checked.bytes
        }
        _ => bytes,
    };
    let mut digest = Sha256::new();
    digest.update(Sha256::digest(&bytes));
    let overlays = load_overlays(planned, config, options, cache, client, out, &mut digest).await?;
    let digest = digest.finalize();
    let explicit = planned.service.map(|(id, _)| id.to_owned());
    let uri_for_id = uri.to_owned();
    let job = tokio::task::spawn_blocking(move || {
        build_service(&bytes, &overlays, explicit, spec_url.as_ref(), &uri_for_id)
    });
    match job.await {
        Ok(Ok((service_id, tools))) => Ok((service_id, tools, digest)),
        Ok(Err(message)) => Err(message),
        Err(e) => Err(format!("document processing failed: {e}")),
    }
}

/// Read a service's overlays like its document (relative to the config, local files watched,
/// remote ones through the cache), adding each to `digest`: editing one changes the fingerprint
/// and, being watched, rebuilds the catalog.
pub(crate) async fn load_overlays(
    planned: &Planned<'_>,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
    digest: &mut Sha256,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut overlays = Vec::with_capacity(planned.overlays.len());
    for (i, overlay_uri) in planned.overlays.iter().enumerate() {
        let at = |e: String| {
            format!(
                "services.{}.overlays[{i}] ({overlay_uri:?}): {e}",
                service_label(planned)
            )
        };
        let (overlay_bytes, _) = load_bytes(
            planned.source_id,
            planned.source,
            overlay_uri,
            config,
            options,
            cache,
            client,
            out,
        )
        .await
        .map_err(at)?;
        digest.update(Sha256::digest(&overlay_bytes));
        overlays.push((overlay_uri.clone(), overlay_bytes));
    }
    Ok(overlays)
}

/// A built service's skill manifests (guidance onto its tools; entries naming no tool become
/// warnings) and workflow documents (bound to its tools), read like its overlays.
#[allow(clippy::too_many_arguments)]
async fn load_guides(
    planned: &Planned<'_>,
    service_id: &str,
    tools: &mut ServiceTools,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
) -> Result<Vec<Workflow>, String> {
    let (skill_docs, workflow_docs) = planned.guides;
    let mut bound: Vec<Workflow> = Vec::new();
    for (kind, docs) in [("skills", skill_docs), ("workflows", workflow_docs)] {
        for (i, uri) in docs.iter().enumerate() {
            let at = |e: String| format!("services.{service_id}.{kind}[{i}] ({uri:?}): {e}");
            let (bytes, _) = load_bytes(
                planned.source_id,
                planned.source,
                uri,
                config,
                options,
                cache,
                client,
                out,
            )
            .await
            .map_err(at)?;
            if kind == "skills" {
                let guidance = skills::parse(&bytes).map_err(at)?;
                let unmatched = skills::apply(guidance, &mut tools.tools);
                tools.warnings.extend(unmatched.into_iter().map(at));
            } else {
                let loaded = workflows::load(&bytes, &tools.tools).map_err(at)?;
                bound.extend(loaded);
            }
        }
    }
    let mut seen = BTreeSet::new();
    match bound.iter().find(|w| !seen.insert(&w.workflow_id)) {
        Some(twice) => Err(format!(
            "services.{service_id}.workflows: workflow id {:?} is defined twice",
            twice.workflow_id
        )),
        None => Ok(bound),
    }
}

fn service_label<'a>(planned: &Planned<'a>) -> &'a str {
    planned.service.map_or(planned.source_id, |(id, _)| id)
}

/// One MCP service to build.
struct McpService<'a> {
    source_id: &'a str,
    settings: &'a McpSource,
    service_id: &'a str,
    overlays: &'a overlay::Loaded,
}

/// List an MCP source's tools through its pooled session, map them and apply the overlays.
/// `digest` already holds the overlays'.
async fn build_mcp(
    lister: Option<&dyn McpLister>,
    mcp: &McpService<'_>,
    config: &portcullis_config::Config,
    base_dir: &std::path::Path,
    mut digest: Sha256,
) -> Result<Built, String> {
    let (source_id, settings, service_id) = (mcp.source_id, mcp.settings, mcp.service_id);
    let McpListing {
        tools: listed,
        withheld,
    } = lister
        .ok_or_else(|| NO_LISTER.to_owned())?
        .list_tools(source_id)
        .await?;
    // Only needed (and only read) when some tool is disabled.
    let refs = match config.services.as_ref().and_then(|s| s.get(service_id)) {
        Some(service) if !settings.disabled_tools.is_empty() => super::mcp_refs::collect(
            service.overlays.as_deref().unwrap_or_default(),
            service.workflows.as_deref().unwrap_or_default(),
            base_dir,
        )
        .map_err(|e| format!("source {source_id:?} service {service_id:?}: {e}"))?,
        _ => Vec::new(),
    };
    digest.update(Sha256::digest(
        serde_json::to_vec(&listed).unwrap_or_default(),
    ));
    let mut tools = super::mcp::map_tools(
        service_id,
        source_id,
        settings.transport,
        &listed,
        &settings.disabled_tools,
        config,
        &refs,
    )?;
    let unmatched = super::mcp_overlay::apply(service_id, &mut tools.tools, mcp.overlays)?;
    tools.warnings.extend(unmatched);
    // Withheld tools are mapped with the rest (so they keep the id they will have once
    // accepted) and then set aside.
    if !withheld.is_empty() {
        let (kept, held): (Vec<Tool>, Vec<Tool>) =
            tools.tools.drain(..).partition(|tool| match &tool.backend {
                Backend::Mcp(binding) => !withheld.contains_key(&binding.tool_name),
                Backend::Http => true,
            });
        tools.tools = kept;
        for tool in held {
            let Backend::Mcp(binding) = &tool.backend else {
                continue;
            };
            let why = withheld
                .get(&binding.tool_name)
                .cloned()
                .unwrap_or_default();
            tools.warnings.push(format!(
                "tool {:?} is withheld from the catalog: {why}",
                tool.id
            ));
            tools.withheld.push(WithheldTool { tool, why });
        }
    }
    Ok((service_id.to_owned(), tools, digest.finalize()))
}

/// A tool-id collision with an earlier source, naming both operations.
fn collision(
    owners: &HashMap<String, String>,
    service_id: &str,
    tools: &ServiceTools,
) -> Option<String> {
    tools.tools.iter().find_map(|tool| {
        owners.get(&tool.id).map(|first| {
            format!(
                "service {service_id:?}: duplicate tool id {:?}: {first} and {} {}",
                tool.id, tool.method, tool.path
            )
        })
    })
}

#[allow(clippy::too_many_arguments)]
async fn load_bytes(
    source_id: &str,
    source: &Source,
    uri: &str,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
) -> Result<(Vec<u8>, Option<Url>), String> {
    if uri.is_empty() {
        return Err("source has no uri".to_owned());
    }
    match fetch::locate(uri, &config.base_dir)? {
        Location::File(path) => {
            out.watched_files.push(path.clone());
            out.fetches.push(SourceFetch {
                id: source_id.to_owned(),
                uri: uri.to_owned(),
                ..SourceFetch::default()
            });
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            Ok((bytes, None))
        }
        Location::Remote(url) => {
            if client.is_none() {
                *client =
                    Some(fetch::client().map_err(|e| format!("building the HTTP client: {e}"))?);
            }
            let http = client.as_ref().ok_or("no HTTP client")?;
            let (bytes, report) = fetch::fetch_remote(
                http,
                source_id,
                &url,
                cache.as_ref(),
                source.refresh.as_ref(),
                options.force_refresh,
            )
            .await
            .map_err(|e| e.to_string())?;
            out.fetches.push(report);
            Ok((bytes, Some(url)))
        }
    }
}

/// Parse, overlay and normalize one document; runs on the blocking pool.
pub(crate) fn build_service(
    bytes: &[u8],
    overlays: &overlay::Loaded,
    explicit: Option<String>,
    spec_url: Option<&Url>,
    uri: &str,
) -> Result<(String, ServiceTools), String> {
    let mut tree = openapi::parse_tree(bytes).map_err(|e| e.to_string())?;
    let service = explicit.as_deref().unwrap_or_default();
    let unmatched = overlay::apply_all(&mut tree, service, overlays)?;
    let doc = openapi::Document::new(tree).map_err(|e| e.to_string())?;
    let service_id = match explicit {
        Some(id) => id,
        None => derived_service_id(&doc, uri),
    };
    if service_id.is_empty() {
        return Err(format!(
            "cannot derive a service id for {uri:?}; bind it under `services`"
        ));
    }
    let mut tools = normalize::normalize(&doc, &service_id, spec_url)
        .map_err(|e| format!("service {service_id:?}: {e}"))?;
    tools.warnings = unmatched;
    Ok((service_id, tools))
}

/// Contract rule for sources without a `services` entry.
pub(crate) fn derived_service_id(doc: &openapi::Document, uri: &str) -> String {
    let first_path = doc.paths().map(|(p, _)| p.as_str()).min();
    let from_path = first_path
        .and_then(|p| p.split('/').find(|s| !s.is_empty() && !s.starts_with('{')))
        .map(slugify)
        .filter(|s| !s.is_empty());
    from_path
        .or_else(|| Some(slugify(doc.title())).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            let base = uri.rsplit('/').next().unwrap_or(uri);
            slugify(base.split('.').next().unwrap_or(base))
        })
}

/// Keep `Arc` in the public surface honest: the catalog is shared once built.
pub type SharedCatalog = Arc<Catalog>;
