//! RFC 9727: an API catalog (`application/linkset+json`) in, the services it lists out.
//!
//! Catalogs are read breadth-first from the source's URL: `item` targets are service roots,
//! an RFC 9264 entry's `service-desc` targets are OpenAPI documents (the first with an OpenAPI
//! media type, or none declared, per entry), `api-catalog` targets are further catalogs.
//! Services are de-duplicated by URL. Bounds and failure modes: see [`super`].

use std::collections::{BTreeSet, VecDeque};

use portcullis_net::redact::redact_url;
use url::Url;

use super::links::{parse_linkset, Link};
use super::{
    is_openapi_media_type, linkset_ask, resolve, skipped, DiscoveryError, Fetcher, MAX_CATALOGS,
    MAX_SERVICES,
};

/// One service a catalog lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// A service root (RFC 8631) to read for its `service-desc`.
    Root(Url),
    /// An OpenAPI document named directly by a `service-desc` in the catalog.
    Document(Url),
}

impl Found {
    pub(crate) fn url(&self) -> &Url {
        match self {
            Self::Root(u) | Self::Document(u) => u,
        }
    }
}

/// What a catalog source lists.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    pub(crate) services: Vec<Found>,
    pub(crate) warnings: Vec<String>,
}

/// Read the catalog at `root` and every catalog it links to.
pub(crate) async fn discover(f: &mut Fetcher<'_>, root: &Url) -> Result<Listed, DiscoveryError> {
    let mut listed = Listed::default();
    let mut queue = VecDeque::from([root.clone()]);
    let mut read = BTreeSet::from([root.clone()]);
    let mut seen = BTreeSet::new();
    while let Some(current) = queue.pop_front() {
        let body = f.fetch(&current, linkset_ask()).await?;
        let links = parse_linkset(&body).map_err(|source| DiscoveryError::Links {
            url: redact_url(&current),
            source,
        })?;
        for found in services(&current, &links, &mut listed.warnings) {
            if seen.insert(found.url().clone()) {
                listed.services.push(found);
            }
            if listed.services.len() > MAX_SERVICES {
                return Err(too_many(root, "services", MAX_SERVICES));
            }
        }
        for link in links.iter().filter(|l| l.has_rel("api-catalog")) {
            let Some(next) = resolve(&current, &link.href) else {
                listed
                    .warnings
                    .push(skipped(&current, link, "not a URL reference"));
                continue;
            };
            if next == current
                && link
                    .anchor
                    .as_deref()
                    .and_then(|a| resolve(&current, a))
                    .as_ref()
                    == Some(&current)
            {
                // RFC 9727 §4: a catalog may describe itself; that is not a nested catalog.
                continue;
            }
            if !read.insert(next.clone()) {
                listed.warnings.push(format!(
                    "api catalog {} links to api catalog {}, which was already read (a cycle or a repeat); not read again",
                    redact_url(&current),
                    redact_url(&next)
                ));
                continue;
            }
            if read.len() > MAX_CATALOGS {
                return Err(too_many(root, "nested api catalogs", MAX_CATALOGS));
            }
            queue.push_back(next);
        }
    }
    Ok(listed)
}

/// The services one catalog document lists, in document order.
fn services(base: &Url, links: &[Link], warnings: &mut Vec<String>) -> Vec<Found> {
    let mut found = Vec::new();
    let mut described = BTreeSet::new();
    for link in links {
        if link.has_rel("item") {
            match resolve(base, &link.href) {
                Some(url) => found.push(Found::Root(url)),
                None => warnings.push(skipped(base, link, "not a URL reference")),
            }
        } else if link.has_rel("service-desc") {
            if let Some(media_type) = link
                .media_type
                .as_deref()
                .filter(|t| !is_openapi_media_type(t))
            {
                warnings.push(skipped(
                    base,
                    link,
                    &format!("media type {media_type:?} is not an OpenAPI description"),
                ));
                continue;
            }
            // One document per described service (its anchor).
            if !described.insert(link.anchor.clone()) {
                continue;
            }
            match resolve(base, &link.href) {
                Some(url) => found.push(Found::Document(url)),
                None => warnings.push(skipped(base, link, "not a URL reference")),
            }
        }
    }
    found
}

fn too_many(root: &Url, what: &'static str, limit: usize) -> DiscoveryError {
    DiscoveryError::TooMany {
        url: redact_url(root),
        what,
        limit,
    }
}
