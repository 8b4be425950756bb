//! Sending a built request: the shared HTTP client, per-attempt timeouts, the response size
//! cap, the redirect loop and the retry loop.
//!
//! | limit (`runtime.server.upstream`) | default | on breach |
//! |---|---|---|
//! | `connectTimeoutMs` | 5000 | `upstream_connect_failed` |
//! | `timeoutMs` (per attempt, body included) | 30000 | `upstream_timeout` |
//! | `maxResponseBytes` (`Content-Length` checked up front, then a running count) | 10 MiB | `upstream_response_too_large` |
//! | `maxAttempts` | 3 | last response returned / last error reported |
//! | `maxRetryAfterMs` | 5000 | response returned without retry |
//!
//! Redirects are followed by hand, hop by hop, under the rules of [`super::redirect`]:
//! credentialed requests follow none, others follow same-origin hops and, when the source
//! allows it (`sources.<id>.redirects.allowOrigins`), hops to listed origins that do not lead
//! into a private network. A redirect that is not followed comes back as the upstream's 3xx.
//! The per-attempt timeout covers the whole chain. No client sends `Referer` (it would leak
//! the query) or reads proxy settings from the environment.
//!
//! The client is built once (a one-off client, pinned to checked addresses, serves an allowed
//! cross-origin hop), pools keep-alive connections (64 idle per host, `TCP_NODELAY`) and does
//! no content decoding: the body is passed through as received, and
//! [`crate::secrets::scrub`] decodes a credentialed one before scrubbing it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    HeaderMap, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION,
    PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use reqwest::{Method, StatusCode};
use url::{Origin, Url};

use super::error::UpstreamError;
use super::redirect::{self, AddressClass};
use super::request::UpstreamRequest;
use super::retry;
use crate::config::{Source, UpstreamLimits};
use crate::net::{self, Purpose};
use crate::redact::redact_url;

const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_MAX_RETRY_AFTER_MS: u64 = 5_000;

/// What one execution got back from the upstream. 4xx/5xx are responses, not errors.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status (a 3xx when a redirect was not followed).
    pub status: u16,
    /// The upstream `Content-Type`, if it was valid visible ASCII.
    pub content_type: Option<String>,
    /// The upstream `Content-Encoding`, if any (the body is still encoded).
    pub content_encoding: Option<String>,
    /// The body as received (no decoding), at most `maxResponseBytes`.
    pub body: Bytes,
    /// Total attempts made (1 when not retried).
    pub attempts: u32,
    /// Time from the first attempt to the end of the body, waits included.
    pub latency: Duration,
    /// `scheme://host[:port]` of the server that gave this answer (differs from the tool's
    /// server only after a followed cross-origin redirect).
    pub final_origin: String,
}

/// The upstream HTTP capability: cheap to clone, shares the client and its pool.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    /// Follows no redirects by itself; every hop is decided in [`Upstream::exchange`].
    client: reqwest::Client,
    connect: Duration,
    timeout_ms: u64,
    max_response_bytes: u64,
    max_attempts: u32,
    max_retry_after: Duration,
    /// `sources.<id>.redirects.allowOrigins`, by source id.
    redirect_origins: HashMap<String, Arc<[Origin]>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout_ms", &self.inner.timeout_ms)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .field("max_attempts", &self.inner.max_attempts)
            .field("max_retry_after", &self.inner.max_retry_after)
            .finish_non_exhaustive()
    }
}

/// The parts of a request every hop is rebuilt from.
#[derive(Clone)]
struct Hop {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl Upstream {
    /// Build the client from the limits (unset fields take the defaults above).
    pub fn new(limits: &UpstreamLimits) -> Result<Self, UpstreamError> {
        let connect = Duration::from_millis(
            limits
                .connect_timeout_ms
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        );
        let timeout_ms = limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        Ok(Self {
            inner: Arc::new(Inner {
                client: net::client(purpose(connect, timeout_ms))
                    .map_err(|source| UpstreamError::Init { source })?,
                connect,
                timeout_ms,
                max_response_bytes: limits
                    .max_response_bytes
                    .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
                max_attempts: limits.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1),
                max_retry_after: Duration::from_millis(
                    limits
                        .max_retry_after_ms
                        .unwrap_or(DEFAULT_MAX_RETRY_AFTER_MS),
                ),
                redirect_origins: HashMap::new(),
            }),
        })
    }

    /// The same client with each source's `redirects.allowOrigins` (entries that do not parse
    /// are left out here; config validation refuses them before this point).
    pub fn with_redirect_origins<'a>(
        mut self,
        sources: impl IntoIterator<Item = (&'a String, &'a Source)>,
    ) -> Self {
        let map: HashMap<String, Arc<[Origin]>> = sources
            .into_iter()
            .filter_map(|(id, source)| {
                let list = source.redirects.as_ref()?.allow_origins.as_ref()?;
                let origins: Arc<[Origin]> = list
                    .iter()
                    .filter_map(|o| crate::net::parse_origin(o).ok())
                    .collect();
                Some((id.clone(), origins))
            })
            .collect();
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.redirect_origins = map;
        }
        self
    }

    /// `maxResponseBytes`: also the cap on a body once decoded.
    pub fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    /// Send `req` for a tool of no particular source (no cross-origin redirect is followed).
    pub async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        self.send_for(req, None).await
    }

    /// Send `req` for a tool of `source`, retrying as [`super::retry`] allows, following
    /// redirects as [`super::redirect`] allows, and read the capped body.
    pub async fn send_for(
        &self,
        req: UpstreamRequest,
        source: Option<&str>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let inner = &*self.inner;
        let hop = Hop {
            method: req.method,
            url: req.target?,
            headers: req.headers,
            body: req.body,
        };
        let allow: &[Origin] = source
            .and_then(|id| inner.redirect_origins.get(id))
            .map_or(&[], |a| a);
        let max_attempts = if req.idempotent {
            inner.max_attempts
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let result = self.exchange(&hop, req.credentialed, allow).await;
            let wait = if attempt >= max_attempts {
                None
            } else {
                let max_wait = inner.max_retry_after;
                match &result {
                    Ok(resp) if retry::retryable_status(resp.status()) => {
                        retry::delay_for(resp.headers(), attempt, max_wait)
                    }
                    Err(UpstreamError::Connect { .. }) => Some(retry::backoff(attempt, max_wait)),
                    _ => None,
                }
            };
            let Some(wait) = wait else {
                return self.finish(result, attempt, started).await;
            };
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            tracing::debug!(?status, attempt, ?wait, "upstream attempt will be retried");
            drop(result);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt: send `first` and follow the redirects [`super::redirect`] allows, all
    /// within one per-attempt timeout. Returns the last response (a 3xx when not followed).
    async fn exchange(
        &self,
        first: &Hop,
        credentialed: bool,
        allow: &[Origin],
    ) -> Result<reqwest::Response, UpstreamError> {
        let inner = &*self.inner;
        let deadline = Instant::now() + Duration::from_millis(inner.timeout_ms);
        let timeout = || UpstreamError::Timeout {
            url: redact_url(&first.url),
            timeout_ms: inner.timeout_ms,
        };
        let mut chain: Vec<Url> = Vec::new();
        let mut first_class: Option<AddressClass> = None;
        // A client pinned to the checked addresses of a cross-origin hop.
        let mut pinned: Option<reqwest::Client> = None;
        // Borrowed until a redirect is followed: the usual call copies its parts once, into
        // the request below.
        let mut hop = std::borrow::Cow::Borrowed(first);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timeout());
            }
            let mut request = reqwest::Request::new(hop.method.clone(), hop.url.clone());
            *request.headers_mut() = hop.headers.clone();
            *request.body_mut() = hop.body.clone().map(reqwest::Body::from);
            *request.timeout_mut() = Some(remaining);
            let client = pinned.as_ref().unwrap_or(&inner.client);
            let resp = client
                .execute(request)
                .await
                .map_err(|e| UpstreamError::from_reqwest(e, inner.timeout_ms))?;
            let class =
                *first_class.get_or_insert_with(|| peer_class(resp.remote_addr(), &hop.url));
            if credentialed {
                return Ok(resp);
            }
            let Some(next) = redirect_target(&resp, &hop.url) else {
                return Ok(resp);
            };
            let hop = hop.to_mut();
            chain.push(hop.url.clone());
            let blocked = |why: String| UpstreamError::RedirectBlocked {
                url: redact_url(&next),
                why,
            };
            if let Some(why) = redirect::refusal(&chain, &next) {
                return Err(blocked(why.to_owned()));
            }
            let (method, body) = rewrite_method(resp.status(), &hop.method, hop.body.take());
            if redirect::same_origin(&first.url, &next) {
                pinned = None;
            } else {
                let resends_body = body.as_ref().is_some_and(|b| !b.is_empty());
                if !redirect::allowed(allow, &next) || resends_body {
                    return Ok(resp);
                }
                let addrs = resolve_checked(&next, class, deadline)
                    .await
                    .map_err(blocked)?;
                pinned = Some(self.pinned_client(&next, &addrs)?);
                for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                    hop.headers.remove(name);
                }
            }
            if body.is_none() {
                for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
                    hop.headers.remove(name);
                }
            }
            hop.method = method;
            hop.body = body;
            hop.url = next;
        }
    }

    /// A client for one cross-origin hop whose host resolves only to `addrs`.
    fn pinned_client(
        &self,
        url: &Url,
        addrs: &[SocketAddr],
    ) -> Result<reqwest::Client, UpstreamError> {
        let inner = &*self.inner;
        let purpose = purpose(inner.connect, inner.timeout_ms);
        match url.host() {
            Some(url::Host::Domain(domain)) => net::pinned_client(purpose, domain, addrs),
            _ => net::client(purpose),
        }
        .map_err(|source| UpstreamError::Init { source })
    }

    /// Turn the outcome of the attempt that counts into the caller's result.
    async fn finish(
        &self,
        result: Result<reqwest::Response, UpstreamError>,
        attempts: u32,
        started: Instant,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let inner = &*self.inner;
        let resp = result?;
        let status = resp.status().as_u16();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let content_encoding = header(CONTENT_ENCODING);
        let final_origin = resp.url().origin().ascii_serialization();
        let body = read_capped(resp, inner.max_response_bytes, inner.timeout_ms).await?;
        Ok(UpstreamResponse {
            status,
            content_type,
            content_encoding,
            body,
            attempts,
            latency: started.elapsed(),
            final_origin,
        })
    }
}

/// The one upstream client configuration ([`Purpose::Upstream`]): no automatic redirects, no
/// proxy, no `Referer`.
fn purpose(connect: Duration, timeout_ms: u64) -> Purpose {
    Purpose::Upstream {
        connect,
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// The class of the server a call first reached (by its peer address; by the URL's host when
/// the peer is unknown, and public when that is a name).
fn peer_class(peer: Option<SocketAddr>, url: &Url) -> AddressClass {
    match (peer, url.host()) {
        (Some(addr), _) => redirect::classify(addr.ip()),
        (None, Some(url::Host::Ipv4(ip))) => redirect::classify(ip.into()),
        (None, Some(url::Host::Ipv6(ip))) => redirect::classify(ip.into()),
        _ => AddressClass::Public,
    }
}

/// The absolute URL a redirect response points to, or `None` when it is not a followable
/// redirect (other status, no or unparseable `Location`).
fn redirect_target(resp: &reqwest::Response, current: &Url) -> Option<Url> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp.headers().get(LOCATION)?.to_str().ok()?;
    current.join(location).ok()
}

/// Method and body of the next hop: 301/302 turn POST into GET, 303 turns all but HEAD into
/// GET (bodies dropped); 307/308 keep both.
fn rewrite_method(
    status: StatusCode,
    method: &Method,
    body: Option<Bytes>,
) -> (Method, Option<Bytes>) {
    let to_get = match status.as_u16() {
        301 | 302 => *method == Method::POST,
        303 => *method != Method::HEAD,
        _ => false,
    };
    if to_get {
        (Method::GET, None)
    } else {
        (method.clone(), body)
    }
}

/// Resolve `next`'s host once and check every address: each must be public or of the same
/// class as the first hop's server. The addresses are what the hop then connects to.
async fn resolve_checked(
    next: &Url,
    first: AddressClass,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, String> {
    let port = next.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match next.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Domain(domain)) => {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let lookup = tokio::net::lookup_host((domain, port));
            match tokio::time::timeout(remaining, lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(format!("redirect target did not resolve: {}", e.kind())),
                Err(_) => return Err("redirect target did not resolve in time".to_owned()),
            }
        }
        None => return Err("redirect target has no host".to_owned()),
    };
    if addrs.is_empty() {
        return Err("redirect target did not resolve".to_owned());
    }
    for addr in &addrs {
        let class = redirect::classify(addr.ip());
        if class != AddressClass::Public && class != first {
            return Err(format!(
                "redirect to a {} address refused (the tool's server is {})",
                class.name(),
                first.name()
            ));
        }
    }
    Ok(addrs)
}

/// Read the body with a running size cap; a single-chunk body is passed on without a copy.
async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
    timeout_ms: u64,
) -> Result<Bytes, UpstreamError> {
    let too_large = |resp: &reqwest::Response| UpstreamError::TooLarge {
        url: redact_url(resp.url()),
        limit,
    };
    let declared = resp.content_length();
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(&resp));
    }
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut total: u64 = 0;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| UpstreamError::from_reqwest(e, timeout_ms))?
    {
        total = total.saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(too_large(&resp));
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            prev => {
                if let Some(prev) = prev {
                    // `declared` is at most `limit` here, so the reservation is bounded.
                    let hint = declared.unwrap_or(0).max(total) as usize;
                    buf.reserve(hint.saturating_sub(buf.len()));
                    buf.extend_from_slice(&prev);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(only) => only,
        None => buf.freeze(),
    })
}
