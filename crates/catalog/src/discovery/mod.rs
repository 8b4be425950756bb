//! Discovery sources: `apiCatalog` (RFC 9727) and `serviceRoot` (RFC 8631) resolved to the
//! OpenAPI documents they advertise, which are then built exactly like an `openapi` source's.
//!
//! | source | what is read | what it yields |
//! |---|---|---|
//! | `serviceRoot` | `HEAD <uri>`, then `GET <uri>` if that fails, is 4xx/5xx or has no links: the `Link` headers | the first `service-desc` with an OpenAPI media type (or none given) is the document; `service-meta` names a linkset whose `schema-overlay` links are applied after the service's own overlays; `service-doc` is for people and ignored |
//! | `apiCatalog` | `GET <uri>` with `Accept: application/linkset+json` | every `item` is a service root (as above); an RFC 9264 entry with a `service-desc` is that document directly; `api-catalog` links are read too (nested catalogs) |
//!
//! Service ids: a `serviceRoot` bound under `services` takes that id; an unbound one, and every
//! service of an `apiCatalog`, gets the derived id of contract 4.1 (first path segment, else
//! `info.title`, else the URL's file name). An `apiCatalog` cannot be bound to one service.
//! Relative targets resolve against the URL of the document that holds them (RFC 8288 §3.2).
//! Provenance: the source's `provenance.method` is `rfc9727` / `rfc8631`, and every fetch
//! (linksets, headers, documents) is a `fetches` record; everything goes through the document
//! cache (contract 9.1) with ETag revalidation.
//!
//! Limits (errors, never truncation, so a catalog is never half-read):
//!
//! | limit | value |
//! |---|---|
//! | linkset document or `Link` headers | [`MAX_LINKSET_BYTES`] (1 MiB) |
//! | links in one linkset or one response's headers | [`MAX_LINKS`] (1000) |
//! | catalogs read for one source (nested ones included) | [`MAX_CATALOGS`] (16) |
//! | services of one `apiCatalog` source | [`MAX_SERVICES`] (64) |
//! | an OpenAPI or overlay document | [`super::fetch::MAX_BODY_BYTES`] (64 MiB), as for `openapi` sources |
//!
//! Failure modes: a catalog that cannot be read fails its source; one listed service that
//! cannot be resolved or built fails alone (reported under the catalog's source id with its
//! URL) and the others load. URLs a remote document chose obey [`guard`]. A nested catalog
//! already read (a cycle, or a catalog listing itself) is not read again and is reported as a
//! warning, as is a link skipped for its media type or its shape.

mod api_catalog;
mod assemble;
mod guard;
mod links;
mod service_root;

pub(crate) use api_catalog::Found;
pub(crate) use assemble::{attach_fetches, build_discovered, expand_catalogs, provenance_method};

use portcullis_config::Source;
use portcullis_net::address::AddressClass;
use url::Url;

use super::build::SourceFetch;
use super::cache::Cache;
use super::fetch::{self, Ask, FetchError};

/// Largest linkset document (or set of `Link` header values) read.
pub(crate) const MAX_LINKSET_BYTES: usize = 1024 * 1024;
/// Most links read from one linkset document or one response's `Link` headers.
pub(crate) const MAX_LINKS: usize = 1000;
/// Most catalogs read for one `apiCatalog` source, nested ones included.
pub(crate) const MAX_CATALOGS: usize = 16;
/// Most services one `apiCatalog` source may list.
pub(crate) const MAX_SERVICES: usize = 64;

/// The media type RFC 9727 catalogs are served as.
const LINKSET: &str = "application/linkset+json";

/// Why discovery failed. Every URL in a message is redacted (no userinfo, no query).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiscoveryError {
    /// Fetching failed (transport, status, size).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A URL a remote document chose breaks a [`guard`] rule.
    #[error("{url}: {reason}")]
    Refused {
        /// URL.
        url: String,
        /// Which rule.
        reason: String,
    },
    /// A discovered host did not resolve.
    #[error("resolving {url}: {message}")]
    Resolve {
        /// URL.
        url: String,
        /// Resolver error.
        message: String,
    },
    /// A linkset could not be read.
    #[error("{url} {source}")]
    Links {
        /// URL.
        url: String,
        /// Why.
        source: links::LinksError,
    },
    /// A catalog reaches too far.
    #[error("{url}: more than {limit} {what}")]
    TooMany {
        /// The catalog's URL.
        url: String,
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A service root without a usable `service-desc`.
    #[error(
        "service root {url} advertises no OpenAPI description (a `Link` with \
         rel=\"service-desc\" and an OpenAPI media type, or none){skipped}"
    )]
    NoServiceDesc {
        /// URL.
        url: String,
        /// `; <link skipped and why>` for each link passed over, or empty.
        skipped: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// Fetches for one source's discovery: the source's own URL with the ordinary document
/// client, every other URL checked by [`guard`] and fetched pinned; each fetch's report kept
/// for the build outcome (and the catalog's provenance).
pub(crate) struct Fetcher<'a> {
    source_id: &'a str,
    source: &'a Source,
    cache: Option<&'a Cache>,
    force: bool,
    own: Url,
    own_class: AddressClass,
    own_client: Option<reqwest::Client>,
    /// Every fetch made, in order.
    pub(crate) reports: Vec<SourceFetch>,
}

impl<'a> Fetcher<'a> {
    /// A fetcher for the source whose configured URL is `own`.
    pub(crate) async fn new(
        source_id: &'a str,
        source: &'a Source,
        own: Url,
        cache: Option<&'a Cache>,
        force: bool,
    ) -> Self {
        let own_class = guard::own_class(&own).await;
        Self {
            source_id,
            source,
            cache,
            force,
            own,
            own_class,
            own_client: None,
            reports: Vec::new(),
        }
    }

    /// Fetch `url` as `ask` says, under the rules of its origin (the configured URL or one a
    /// document chose).
    pub(crate) async fn fetch(&mut self, url: &Url, ask: Ask) -> Result<Vec<u8>, DiscoveryError> {
        let client = if *url == self.own {
            if self.own_client.is_none() {
                let built = fetch::client().map_err(|e| DiscoveryError::Client(e.to_string()))?;
                self.own_client = Some(built);
            }
            self.own_client
                .clone()
                .ok_or(DiscoveryError::Client(String::new()))?
        } else {
            let addrs = guard::check(url, self.own_class).await?;
            guard::client(url, &addrs)?
        };
        let (body, report) = fetch::fetch_with(
            &client,
            self.source_id,
            url,
            ask,
            self.cache,
            self.source.refresh.as_ref(),
            self.force,
        )
        .await?;
        self.reports.push(report);
        Ok(body)
    }

    /// Whether `url` (chosen by a remote document) may be reached at all.
    pub(crate) async fn check(&self, url: &Url) -> Result<(), DiscoveryError> {
        guard::check(url, self.own_class).await.map(drop)
    }
}

/// An [`Ask`] for a linkset document.
const fn linkset_ask() -> Ask {
    Ask {
        head: false,
        accept: Some(LINKSET),
        link_header: false,
        max_bytes: MAX_LINKSET_BYTES,
    }
}

/// Media types a `service-desc` may declare for an OpenAPI document (none declared is
/// accepted too; the document must then parse as OpenAPI).
fn is_openapi_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/openapi+json"
            | "application/openapi+yaml"
            | "application/vnd.oai.openapi"
            | "application/vnd.oai.openapi+json"
            | "application/vnd.oai.openapi+yaml"
            | "application/json"
            | "application/yaml"
            | "application/x-yaml"
            | "text/yaml"
    )
}

/// Resolve `href` against `base` (RFC 3986 §5); `None` when it is not a reference at all.
fn resolve(base: &Url, href: &str) -> Option<Url> {
    base.join(href).ok()
}

/// The warning for a link that is not followed.
fn skipped(base: &Url, link: &links::Link, why: &str) -> String {
    use portcullis_net::redact::redact_url;
    let target =
        resolve(base, &link.href).map_or_else(|| "(not a URL)".to_owned(), |u| redact_url(&u));
    format!(
        "{}: link {target} ({}) skipped: {why}",
        redact_url(base),
        link.rels.join(" ")
    )
}
