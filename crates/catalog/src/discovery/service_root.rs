//! RFC 8631: a service root's `Link` headers in, the service's OpenAPI document (and the
//! overlays its `service-meta` linkset lists) out.
//!
//! `HEAD` first; `GET` when `HEAD` fails, answers 4xx/5xx or carries no links (the body is
//! never read, only the headers). The first `service-desc` whose `type` is an OpenAPI media
//! type (or absent) is the document; others are skipped with a warning. The first
//! `service-meta` is read as a linkset: `schema-overlay` links are overlays, applied after the
//! service's configured ones; `skill-manifest` and `workflows` links are reported as not
//! applied to discovered services. Relations match as the reference does (substring of the
//! relation URI, e.g. `https://open-cli.dev/rel/schema-overlay`).

use portcullis_net::redact::redact_url;
use url::Url;

use super::links::{parse_link_header, parse_linkset};
use super::{
    is_openapi_media_type, linkset_ask, resolve, skipped, DiscoveryError, Fetcher,
    MAX_LINKSET_BYTES,
};
use crate::fetch::Ask;

/// What a service root advertises.
#[derive(Debug)]
pub(crate) struct Described {
    /// The OpenAPI document.
    pub(crate) openapi: Url,
    /// Overlay documents from `service-meta`, in linkset order.
    pub(crate) overlays: Vec<Url>,
    /// Links skipped, and metadata not applied.
    pub(crate) warnings: Vec<String>,
}

/// Read the service root at `root`.
pub(crate) async fn discover(f: &mut Fetcher<'_>, root: &Url) -> Result<Described, DiscoveryError> {
    let mut last_error = None;
    let mut links = Vec::new();
    for head in [true, false] {
        let ask = Ask {
            head,
            accept: None,
            link_header: true,
            max_bytes: MAX_LINKSET_BYTES,
        };
        match f.fetch(root, ask).await {
            Ok(values) => {
                last_error = None;
                let text = String::from_utf8_lossy(&values);
                links = parse_link_header(&text).map_err(|source| DiscoveryError::Links {
                    url: redact_url(root),
                    source,
                })?;
                if !links.is_empty() {
                    break;
                }
            }
            // A refused URL or an over-long header is not retried with GET.
            Err(e @ (DiscoveryError::Refused { .. } | DiscoveryError::Links { .. })) => {
                return Err(e)
            }
            Err(e) => last_error = Some(e),
        }
    }
    if links.is_empty() {
        return Err(last_error.unwrap_or(DiscoveryError::NoServiceDesc {
            url: redact_url(root),
            skipped: String::new(),
        }));
    }
    let mut warnings = Vec::new();
    let openapi = links
        .iter()
        .filter(|l| l.has_rel("service-desc"))
        .find_map(|l| match l.media_type.as_deref() {
            Some(t) if !is_openapi_media_type(t) => {
                warnings.push(skipped(
                    root,
                    l,
                    &format!("media type {t:?} is not an OpenAPI description"),
                ));
                None
            }
            _ => resolve(root, &l.href),
        })
        .ok_or_else(|| DiscoveryError::NoServiceDesc {
            url: redact_url(root),
            skipped: warnings.iter().map(|w| format!("; {w}")).collect(),
        })?;
    let mut overlays = Vec::new();
    let meta = links
        .iter()
        .find(|l| l.has_rel("service-meta"))
        .and_then(|l| resolve(root, &l.href));
    if let Some(meta) = meta {
        let body = f.fetch(&meta, linkset_ask()).await?;
        let entries = parse_linkset(&body).map_err(|source| DiscoveryError::Links {
            url: redact_url(&meta),
            source,
        })?;
        for link in &entries {
            let rel = |needle: &str| link.rels.iter().any(|r| r.contains(needle));
            let target = resolve(&meta, &link.href);
            match target {
                Some(url) if rel("schema-overlay") => overlays.push(url),
                Some(url) if rel("skill-manifest") || rel("workflows") => warnings.push(format!(
                    "{}: {} {} is not applied to discovered services; list it under `services`",
                    redact_url(&meta),
                    link.rels.join(" "),
                    redact_url(&url)
                )),
                _ => {}
            }
        }
    }
    Ok(Described {
        openapi,
        overlays,
        warnings,
    })
}
