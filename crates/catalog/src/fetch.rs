//! Reading a source document: local path, `file://`, or `http(s)://` through the cache.
//!
//! | where | rule |
//! |---|---|
//! | relative path | resolved against the config's base directory |
//! | `file://` / absolute path | read as is; local files bypass the cache and are watched |
//! | `http(s)://` | body cap 64 MiB; the client is [`Purpose::CatalogFetch`] (connect timeout 5 s, total 30 s, at most 5 redirects) |
//!
//! Remote freshness (contract 9.1): an entry is fresh until `Cache-Control: max-age`, else
//! `refresh.maxAgeSeconds`, has passed; no expiry means "revalidate every time". Outcomes:
//! `fresh_hit` (fresh, not forced), `revalidated_hit` (304), `miss` (first fetch), `refreshed`
//! (replaced a prior or corrupt entry), `stale_hit` (the origin failed but a cached copy exists;
//! `stale: true`). `manualOnly` sources use any cached copy unless the build is forced.
//! `force_refresh` skips both shortcuts. Without a cache directory every build fetches.
//! Every remote fetch yields a provenance [`FetchRecord`] (contract 4.6) next to its report.

use std::path::{Path, PathBuf};

use url::Url;

use super::build::SourceFetch;
use super::cache::{Cache, Lookup, Meta};
use super::model::FetchRecord;
use portcullis_config::RefreshConfig;
use portcullis_net::redact::redact_url;
use portcullis_net::{self as net, NetError, Purpose};

/// Largest accepted document body.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Where a document lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local file.
    File(PathBuf),
    /// A remote URL.
    Remote(Url),
}

/// Turn a config `uri` into a location.
pub fn locate(uri: &str, base_dir: &Path) -> Result<Location, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Url::parse(uri)
            .map(Location::Remote)
            .map_err(|e| format!("invalid URL {uri:?}: {e}"));
    }
    if uri.starts_with("file:") {
        let url = Url::parse(uri).map_err(|e| format!("invalid file URL {uri:?}: {e}"))?;
        return url
            .to_file_path()
            .map(Location::File)
            .map_err(|()| format!("invalid file URL {uri:?}"));
    }
    if uri.contains("://") {
        return Err(format!("unsupported URI scheme in {uri:?}"));
    }
    Ok(Location::File(base_dir.join(uri)))
}

/// Why a remote document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transport failure.
    #[error("fetching {url}: {message}")]
    Transport {
        /// URL.
        url: String,
        /// Error text.
        message: String,
    },
    /// Non-2xx status.
    #[error("unexpected status {status} from {url}")]
    Status {
        /// URL.
        url: String,
        /// Status code.
        status: u16,
    },
    /// Body over the cap.
    #[error("document at {url} exceeds {limit} bytes")]
    TooLarge {
        /// URL.
        url: String,
        /// The cap that applied.
        limit: usize,
    },
}

/// The HTTP client used for documents.
pub fn client() -> Result<reqwest::Client, NetError> {
    net::client(Purpose::CatalogFetch)
}

/// What to ask a server for and what to keep of its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    /// `HEAD` instead of `GET`.
    pub(crate) head: bool,
    /// `Accept` header to send (also part of the cache key).
    pub(crate) accept: Option<&'static str>,
    /// Keep the `Link` header values (one per line) instead of the body, which is not read:
    /// a service root's links are in its headers (RFC 8631).
    pub(crate) link_header: bool,
    /// Largest body accepted.
    pub(crate) max_bytes: usize,
}

impl Ask {
    /// A source document: `GET`, body kept, [`MAX_BODY_BYTES`].
    pub(crate) const DOCUMENT: Ask = Ask {
        head: false,
        accept: None,
        link_header: false,
        max_bytes: MAX_BODY_BYTES,
    };

    fn method(self) -> &'static str {
        if self.head {
            "HEAD"
        } else {
            "GET"
        }
    }

    /// Contract 9.1: `METHOD:URL[:Accept]`, plus `:link` when the headers are what is kept
    /// (so a URL's body and its links never share an entry). Documents keep `GET:<url>`.
    fn cache_key(self, url: &Url) -> String {
        let mut key = format!("{}:{url}", self.method());
        if let Some(accept) = self.accept {
            key.push(':');
            key.push_str(accept);
        }
        if self.link_header {
            key.push_str(":link");
        }
        key
    }
}

struct Response {
    status: u16,
    etag: Option<String>,
    last_modified: Option<String>,
    cache_control: Option<String>,
    body: Vec<u8>,
}

async fn get(
    client: &reqwest::Client,
    url: &Url,
    ask: Ask,
    prior: Option<&Meta>,
) -> Result<Response, FetchError> {
    // Document URLs may carry a token in their query: errors show them redacted.
    // The causes say why (refused, too many redirects, another origin); none carries the URL.
    let transport = |e: reqwest::Error| {
        let e = e.without_url();
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message = format!("{message}: {c}");
            cause = c.source();
        }
        FetchError::Transport {
            url: redact_url(url),
            message,
        }
    };
    let too_large = || FetchError::TooLarge {
        url: redact_url(url),
        limit: ask.max_bytes,
    };
    let method = if ask.head {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let mut request = client.request(method, url.clone());
    if let Some(accept) = ask.accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    if let Some(meta) = prior {
        if let Some(etag) = &meta.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &meta.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
    }
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let cache_control = header(reqwest::header::CACHE_CONTROL);
    let mut answer = Response {
        status,
        etag,
        last_modified,
        cache_control,
        body: Vec::new(),
    };
    if status == 304 || !(200..300).contains(&status) {
        return Ok(answer);
    }
    if ask.link_header {
        let links: Vec<&str> = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        answer.body = links.join("\n").into_bytes();
        if answer.body.len() > ask.max_bytes {
            return Err(too_large());
        }
        return Ok(answer);
    }
    if response
        .content_length()
        .is_some_and(|n| n > ask.max_bytes as u64)
    {
        return Err(too_large());
    }
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if answer.body.len() + chunk.len() > ask.max_bytes {
            return Err(too_large());
        }
        answer.body.extend_from_slice(&chunk);
    }
    Ok(answer)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn max_age(cache_control: Option<&str>, refresh: Option<&RefreshConfig>) -> Option<i64> {
    let header = cache_control.and_then(|cc| {
        cc.split(',').find_map(|d| {
            d.trim()
                .strip_prefix("max-age=")
                .and_then(|n| n.trim_matches('"').parse::<i64>().ok())
        })
    });
    header.or_else(|| {
        refresh
            .and_then(|r| r.max_age_seconds)
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
    })
}

/// Fetch a remote document, through `cache` when given. Returns the body and the report.
pub async fn fetch_remote(
    client: &reqwest::Client,
    source_id: &str,
    url: &Url,
    cache: Option<&Cache>,
    refresh: Option<&RefreshConfig>,
    force: bool,
) -> Result<(Vec<u8>, SourceFetch), FetchError> {
    fetch_with(client, source_id, url, Ask::DOCUMENT, cache, refresh, force).await
}

/// The provenance record of a fetch answered from `meta` (the method is the source's, filled
/// in by the build).
fn record(ask: Ask, url: &Url, meta: &Meta, outcome: Option<&str>, stale: bool) -> FetchRecord {
    FetchRecord {
        url: redact_url(url),
        fetched_at: rfc3339(meta.validated_at),
        request_method: ask.method().to_owned(),
        status_code: Some(meta.status_code),
        cache_outcome: outcome.map(str::to_owned),
        etag: meta.etag.clone(),
        last_modified: meta.last_modified.clone(),
        cache_control: meta.cache_control.clone(),
        expires_at: meta.expires_at.map(rfc3339),
        stale,
        ..FetchRecord::default()
    }
}

/// [`fetch_remote`] for any [`Ask`]: the cache rules of the module header, one key per ask.
pub(crate) async fn fetch_with(
    client: &reqwest::Client,
    source_id: &str,
    url: &Url,
    ask: Ask,
    cache: Option<&Cache>,
    refresh: Option<&RefreshConfig>,
    force: bool,
) -> Result<(Vec<u8>, SourceFetch), FetchError> {
    let mut report = SourceFetch {
        id: source_id.to_owned(),
        uri: redact_url(url),
        ..SourceFetch::default()
    };
    let key = ask.cache_key(url);
    let lookup = match cache {
        Some(c) => c.load(&key).await,
        None => Lookup::Absent,
    };
    let had_entry = !matches!(lookup, Lookup::Absent);
    let prior = match lookup {
        Lookup::Hit(meta, body) => Some((meta, body)),
        _ => None,
    };
    if let Some((meta, body)) = &prior {
        let fresh = meta.expires_at.is_some_and(|at| now() < at);
        let manual = refresh.and_then(|r| r.manual_only).unwrap_or(false);
        if !force && (fresh || manual) {
            let outcome = if fresh { "fresh_hit" } else { "stale_hit" };
            report.cache_outcome = Some(outcome.to_owned());
            report.status_code = Some(meta.status_code);
            report.stale = (!fresh).then_some(true);
            report.record = Some(record(ask, url, meta, Some(outcome), !fresh));
            return Ok((body.clone(), report));
        }
    }
    let result = get(client, url, ask, prior.as_ref().map(|(m, _)| m)).await;
    let response = match result {
        Ok(r) if (r.status == 304 && prior.is_some()) || (200..300).contains(&r.status) => r,
        failed => {
            let Some((meta, body)) = prior else {
                return Err(match failed {
                    Ok(r) => FetchError::Status {
                        url: redact_url(url),
                        status: r.status,
                    },
                    Err(e) => e,
                });
            };
            tracing::warn!(source = source_id, url = %redact_url(url), "origin failed; serving the cached document");
            report.cache_outcome = Some("stale_hit".to_owned());
            report.status_code = Some(meta.status_code);
            report.stale = Some(true);
            report.record = Some(record(ask, url, &meta, Some("stale_hit"), true));
            return Ok((body, report));
        }
    };
    report.status_code = Some(response.status);
    let cache_control = response.cache_control.clone();
    let expires_at =
        max_age(cache_control.as_deref(), refresh).map(|age| now().saturating_add(age));
    if let (304, Some((mut meta, body))) = (response.status, prior) {
        meta.etag = response.etag.or(meta.etag);
        meta.last_modified = response.last_modified.or(meta.last_modified);
        meta.cache_control = cache_control.or(meta.cache_control);
        meta.validated_at = now();
        meta.expires_at = expires_at;
        if let Some(c) = cache {
            if let Err(e) = c.store(&meta, None).await {
                tracing::warn!(source = source_id, error = %e, "could not update the document cache");
            }
        }
        report.cache_outcome = Some("revalidated_hit".to_owned());
        let mut revalidated = record(ask, url, &meta, Some("revalidated_hit"), false);
        revalidated.status_code = Some(304);
        report.record = Some(revalidated);
        return Ok((body, report));
    }
    let meta = Meta {
        key,
        url: url.to_string(),
        etag: response.etag,
        last_modified: response.last_modified,
        cache_control,
        validated_at: now(),
        expires_at,
        status_code: response.status,
        body_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&response.body)),
    };
    let mut outcome = None;
    if let Some(c) = cache {
        if let Err(e) = c.store(&meta, Some(&response.body)).await {
            tracing::warn!(source = source_id, error = %e, "could not write the document cache");
        }
        outcome = Some(if had_entry { "refreshed" } else { "miss" });
        report.cache_outcome = outcome.map(str::to_owned);
    }
    report.record = Some(record(ask, url, &meta, outcome, false));
    Ok((response.body, report))
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[tokio::test]
    async fn fetch_errors_never_show_the_query_or_userinfo() {
        let client = client().expect("client");
        let url = Url::parse("http://user:pw@127.0.0.1:1/doc.json?token=CANARY").expect("url");
        let error = get(&client, &url, Ask::DOCUMENT, None)
            .await
            .err()
            .expect("port 1 refuses");
        let text = error.to_string();
        assert!(!text.contains("CANARY") && !text.contains("pw"), "{text}");
        assert!(text.contains("http://127.0.0.1:1/doc.json"), "{text}");
    }
}
