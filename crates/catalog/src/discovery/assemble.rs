//! Discovery sources inside the catalog build: `apiCatalog` sources expanded into one planned
//! service per listed service (before the build loop), each discovered service built like an
//! `openapi` source, and the sources' provenance filled in from the fetches (after it).

use sha2::{Digest, Sha256};
use url::Url;

use portcullis_config::{LoadedConfig, SourceType};
use portcullis_net::redact::redact_url;

use super::api_catalog::{self, Found};
use super::service_root::{self, Described};
use super::{DiscoveryError, Fetcher};
use crate::build::{
    build_service, load_overlays, BuildOptions, BuildOutcome, Built, Planned, SourceError,
    SourceFetch, SourceWarning,
};
use crate::cache::Cache;
use crate::fetch::Ask;
use crate::model::CatalogSource;

/// Contract 4.6: how a source of `kind` was found.
pub(crate) fn provenance_method(kind: SourceType) -> &'static str {
    match kind {
        SourceType::ApiCatalog => "rfc9727",
        SourceType::ServiceRoot => "rfc8631",
        SourceType::Openapi | SourceType::Mcp => "explicit",
    }
}

/// The configured `uri` of a discovery source, which must be an http(s) URL.
fn own_url(planned: &Planned<'_>) -> Result<Url, String> {
    let uri = planned.source.uri.as_deref().unwrap_or_default();
    match Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(format!(
            "a discovery source's uri must be an http(s) URL, not {uri:?}"
        )),
    }
}

/// Replace every unexpanded `apiCatalog` entry of `plan` by one entry per service it lists.
/// A catalog that cannot be read is an error of its source and contributes no entry.
pub(crate) async fn expand_catalogs<'a>(
    plan: Vec<Planned<'a>>,
    cache: Option<&Cache>,
    options: &BuildOptions,
    out: &mut BuildOutcome,
) -> Vec<Planned<'a>> {
    let mut expanded = Vec::with_capacity(plan.len());
    for planned in plan {
        if planned.source.kind != Some(SourceType::ApiCatalog) || planned.discovered.is_some() {
            expanded.push(planned);
            continue;
        }
        let fail = |message: String| SourceError {
            source_id: planned.source_id.to_owned(),
            message,
        };
        if let Some((service_id, _)) = planned.service {
            out.errors.push(fail(format!(
                "services.{service_id} binds an apiCatalog source, which lists many services; \
                 leave it unbound (each listed service gets a derived id) or bind a serviceRoot"
            )));
            continue;
        }
        let root = match own_url(&planned) {
            Ok(url) => url,
            Err(message) => {
                out.errors.push(fail(message));
                continue;
            }
        };
        let mut fetcher = Fetcher::new(
            planned.source_id,
            planned.source,
            root.clone(),
            cache,
            options.force_refresh,
        )
        .await;
        let listed = api_catalog::discover(&mut fetcher, &root).await;
        out.fetches.append(&mut fetcher.reports);
        match listed {
            Ok(listed) => {
                out.warnings
                    .extend(listed.warnings.into_iter().map(|message| SourceWarning {
                        source_id: planned.source_id.to_owned(),
                        message,
                    }));
                if listed.services.is_empty() {
                    out.warnings.push(SourceWarning {
                        source_id: planned.source_id.to_owned(),
                        message: format!("api catalog {} lists no services", redact_url(&root)),
                    });
                }
                for found in listed.services {
                    expanded.push(Planned {
                        discovered: Some(found),
                        ..planned
                    });
                }
            }
            Err(e) => out.errors.push(fail(format!("api catalog: {e}"))),
        }
    }
    expanded
}

/// Build one `serviceRoot` source, or one service an `apiCatalog` listed.
pub(crate) async fn build_discovered(
    planned: &Planned<'_>,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
) -> Result<Built, String> {
    let own = own_url(planned)?;
    let mut fetcher = Fetcher::new(
        planned.source_id,
        planned.source,
        own.clone(),
        cache.as_ref(),
        options.force_refresh,
    )
    .await;
    let built = discovered_service(
        planned,
        &own,
        &mut fetcher,
        config,
        options,
        cache,
        client,
        out,
    )
    .await;
    out.fetches.append(&mut fetcher.reports);
    let label = match &planned.discovered {
        Some(found) => format!("service {}", redact_url(found.url())),
        None => "service root".to_owned(),
    };
    built.map_err(|e| format!("{label}: {e}"))
}

#[allow(clippy::too_many_arguments)]
async fn discovered_service(
    planned: &Planned<'_>,
    own: &Url,
    fetcher: &mut Fetcher<'_>,
    config: &LoadedConfig,
    options: &BuildOptions,
    cache: &Option<Cache>,
    client: &mut Option<reqwest::Client>,
    out: &mut BuildOutcome,
) -> Result<Built, String> {
    let text = |e: DiscoveryError| e.to_string();
    let described = match &planned.discovered {
        None => service_root::discover(fetcher, own).await.map_err(text)?,
        Some(Found::Root(url)) => service_root::discover(fetcher, url).await.map_err(text)?,
        Some(Found::Document(url)) => Described {
            openapi: url.clone(),
            overlays: Vec::new(),
            warnings: Vec::new(),
        },
    };
    let bytes = fetcher
        .fetch(&described.openapi, Ask::DOCUMENT)
        .await
        .map_err(text)?;
    let mut digest = Sha256::new();
    digest.update(Sha256::digest(&bytes));
    let mut overlays =
        load_overlays(planned, config, options, cache, client, out, &mut digest).await?;
    for url in &described.overlays {
        let overlay = fetcher.fetch(url, Ask::DOCUMENT).await.map_err(text)?;
        digest.update(Sha256::digest(&overlay));
        overlays.push((redact_url(url), overlay));
    }
    let explicit = planned.service.map(|(id, _)| id.to_owned());
    let id_uri = planned
        .discovered
        .as_ref()
        .map_or(own, Found::url)
        .to_string();
    let spec_url = described.openapi.clone();
    let job = tokio::task::spawn_blocking(move || {
        build_service(&bytes, &overlays, explicit, Some(&spec_url), &id_uri)
    });
    let (service_id, mut tools) = match job.await {
        Ok(result) => result?,
        Err(e) => return Err(format!("document processing failed: {e}")),
    };
    // The servers tools will be called at were chosen by the document's publisher.
    let mut servers: Vec<&String> = tools.servers.iter().collect();
    servers.extend(tools.tools.iter().flat_map(|t| &t.servers));
    servers.sort();
    servers.dedup();
    for server in servers {
        if let Ok(url) = Url::parse(server) {
            fetcher
                .check(&url)
                .await
                .map_err(|e| format!("service {service_id:?}: server {e}"))?;
        }
    }
    tools.warnings.extend(described.warnings);
    Ok((service_id, tools, digest.finalize()))
}

/// Contract 4.6: each source's `provenance.fetches` (its remote fetches, in order, with the
/// source's method) and `provenance.at` (the first fetch's time).
pub(crate) fn attach_fetches(sources: &mut [CatalogSource], fetches: &[SourceFetch]) {
    for source in sources {
        let method = source.provenance.method.clone();
        source.provenance.fetches = fetches
            .iter()
            .filter(|f| f.id == source.id)
            .filter_map(|f| f.record.clone())
            .map(|mut record| {
                record.method.clone_from(&method);
                record
            })
            .collect();
        if let Some(first) = source.provenance.fetches.first() {
            source.provenance.at.clone_from(&first.fetched_at);
        }
    }
}
