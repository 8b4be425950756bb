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

use std::path::{Path, PathBuf};

use url::Url;

use super::build::SourceFetch;
use super::cache::{Cache, Lookup, Meta};
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
    #[error("document at {0} exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge(String),
}

/// The HTTP client used for documents.
pub fn client() -> Result<reqwest::Client, NetError> {
    net::client(Purpose::CatalogFetch)
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
    prior: Option<&Meta>,
) -> Result<Response, FetchError> {
    // Document URLs may carry a token in their query: errors show them redacted.
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: redact_url(url),
        message: e.without_url().to_string(),
    };
    let mut request = client.get(url.clone());
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
    if status == 304 || !(200..300).contains(&status) {
        return Ok(Response {
            status,
            etag,
            last_modified,
            cache_control,
            body: Vec::new(),
        });
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(FetchError::TooLarge(redact_url(url)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(FetchError::TooLarge(redact_url(url)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        etag,
        last_modified,
        cache_control,
        body,
    })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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
    let mut report = SourceFetch {
        id: source_id.to_owned(),
        uri: redact_url(url),
        ..SourceFetch::default()
    };
    let key = format!("GET:{url}");
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
            report.cache_outcome = Some(if fresh { "fresh_hit" } else { "stale_hit" }.to_owned());
            report.status_code = Some(meta.status_code);
            report.stale = (!fresh).then_some(true);
            return Ok((body.clone(), report));
        }
    }
    let result = get(client, url, prior.as_ref().map(|(m, _)| m)).await;
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
        return Ok((body, report));
    }
    if let Some(c) = cache {
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
        if let Err(e) = c.store(&meta, Some(&response.body)).await {
            tracing::warn!(source = source_id, error = %e, "could not write the document cache");
        }
        report.cache_outcome = Some(if had_entry { "refreshed" } else { "miss" }.to_owned());
    }
    Ok((response.body, report))
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[tokio::test]
    async fn fetch_errors_never_show_the_query_or_userinfo() {
        let client = client().expect("client");
        let url = Url::parse("http://user:pw@127.0.0.1:1/doc.json?token=CANARY").expect("url");
        let error = get(&client, &url, None)
            .await
            .err()
            .expect("port 1 refuses");
        let text = error.to_string();
        assert!(!text.contains("CANARY") && !text.contains("pw"), "{text}");
        assert!(text.contains("http://127.0.0.1:1/doc.json"), "{text}");
    }
}
