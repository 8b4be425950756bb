//! Sending a built request: the two shared HTTP clients, per-attempt timeouts, the response
//! size cap and the retry loop.
//!
//! | limit (`runtime.server.upstream`) | default | on breach |
//! |---|---|---|
//! | `connectTimeoutMs` | 5000 | `upstream_connect_failed` |
//! | `timeoutMs` (per attempt, body included) | 30000 | `upstream_timeout` |
//! | `maxResponseBytes` (`Content-Length` checked up front, then a running count) | 10 MiB | `upstream_response_too_large` |
//! | `maxAttempts` | 3 | last response returned / last error reported |
//! | `maxRetryAfterMs` | 5000 | response returned without retry |
//!
//! Redirects: a request carrying credentials goes through a client that follows **none**; a
//! 3xx is returned to the caller as the upstream status, so a credential can never be replayed
//! to another origin or over plain http. A request without credentials follows up to 5 redirects
//! that keep the scheme or upgrade http→https; https→http or a non-http scheme is refused with
//! `upstream_redirect_blocked`. Neither client sends `Referer` (it would leak the query) and
//! neither reads proxy settings from the environment.
//!
//! Both clients are built once, pool keep-alive connections (64 idle per host, `TCP_NODELAY`)
//! and do no content decoding: the body is passed through as received.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_TYPE;
use reqwest::redirect::{Attempt, Policy};

use super::error::{redact_url, UpstreamError};
use super::request::UpstreamRequest;
use super::retry;
use crate::config::UpstreamLimits;

const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_MAX_RETRY_AFTER_MS: u64 = 5_000;
/// Redirect hops the uncredentialed client follows.
const MAX_REDIRECTS: usize = 5;
/// Idle keep-alive connections kept per upstream host.
const POOL_MAX_IDLE_PER_HOST: usize = 64;

/// What one execution got back from the upstream. 4xx/5xx are responses, not errors.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status (a 3xx when a credentialed request was redirected).
    pub status: u16,
    /// The upstream `Content-Type`, if it was valid visible ASCII.
    pub content_type: Option<String>,
    /// The body as received (no decoding), at most `maxResponseBytes`.
    pub body: Bytes,
    /// Total attempts made (1 when not retried).
    pub attempts: u32,
    /// Time from the first attempt to the end of the body, waits included.
    pub latency: Duration,
}

/// The upstream HTTP capability: cheap to clone, shares the clients and their pools.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    /// Follows no redirects; used whenever credentials are attached.
    credentialed: reqwest::Client,
    /// Follows same-scheme-or-upgrade redirects.
    plain: reqwest::Client,
    timeout_ms: u64,
    max_response_bytes: u64,
    max_attempts: u32,
    max_retry_after: Duration,
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

impl Upstream {
    /// Build both clients from the limits (unset fields take the defaults above).
    pub fn new(limits: &UpstreamLimits) -> Result<Self, UpstreamError> {
        let connect = Duration::from_millis(
            limits
                .connect_timeout_ms
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        );
        let timeout_ms = limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let build = |policy: Policy| {
            reqwest::Client::builder()
                .connect_timeout(connect)
                .timeout(Duration::from_millis(timeout_ms))
                .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
                .tcp_nodelay(true)
                .referer(false)
                .no_proxy()
                .redirect(policy)
                .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|source| UpstreamError::Init { source })
        };
        Ok(Self {
            inner: Arc::new(Inner {
                credentialed: build(Policy::none())?,
                plain: build(Policy::custom(plain_redirect))?,
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
            }),
        })
    }

    /// Send `req`, retrying as [`super::retry`] allows, and read the capped body.
    pub async fn send(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let inner = &*self.inner;
        let url = req.target?;
        let client = if req.credentialed {
            &inner.credentialed
        } else {
            &inner.plain
        };
        let max_attempts = if req.idempotent {
            inner.max_attempts
        } else {
            1
        };

        let mut request = reqwest::Request::new(req.method, url);
        *request.headers_mut() = req.headers;
        *request.body_mut() = req.body.map(reqwest::Body::from);

        let mut attempt = 1;
        // Clone only while another attempt is still possible; the last attempt moves the request.
        while attempt < max_attempts {
            let Some(copy) = request.try_clone() else {
                break;
            };
            match self.attempt(client, copy, attempt, started).await {
                Step::Done(result) => return result,
                Step::RetryAfter(wait) => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
        let last = client.execute(request).await;
        self.finish(last, attempt, started).await
    }

    /// One attempt that may be followed by another: a final result or a wait before retrying.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        attempt: u32,
        started: Instant,
    ) -> Step {
        let result = client.execute(request).await;
        let max_wait = self.inner.max_retry_after;
        let wait = match &result {
            Ok(resp) if retry::retryable_status(resp.status()) => {
                retry::delay_for(resp.headers(), attempt, max_wait)
            }
            Err(err) if err.is_connect() => Some(retry::backoff(attempt, max_wait)),
            _ => None,
        };
        match wait {
            Some(wait) => {
                let status = result.as_ref().ok().map(|r| r.status().as_u16());
                tracing::debug!(?status, attempt, ?wait, "upstream attempt will be retried");
                Step::RetryAfter(wait)
            }
            None => Step::Done(self.finish(result, attempt, started).await),
        }
    }

    /// Turn the outcome of the attempt that counts into the caller's result.
    async fn finish(
        &self,
        result: reqwest::Result<reqwest::Response>,
        attempts: u32,
        started: Instant,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let inner = &*self.inner;
        let resp = result.map_err(|err| UpstreamError::from_reqwest(err, inner.timeout_ms))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(resp, inner.max_response_bytes, inner.timeout_ms).await?;
        Ok(UpstreamResponse {
            status,
            content_type,
            body,
            attempts,
            latency: started.elapsed(),
        })
    }
}

/// Outcome of one attempt.
enum Step {
    Done(Result<UpstreamResponse, UpstreamError>),
    RetryAfter(Duration),
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

/// Redirect rule of the uncredentialed client: ≤ 5 hops, http(s) only, never https→http.
fn plain_redirect(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    match redirect_refusal(attempt.previous(), attempt.url()) {
        Some(why) => attempt.error(why),
        None => attempt.follow(),
    }
}

/// Why a redirect from the chain `previous` to `next` is refused, or `None` to follow it.
pub(crate) fn redirect_refusal(previous: &[url::Url], next: &url::Url) -> Option<&'static str> {
    if previous.len() > MAX_REDIRECTS {
        return Some("too many redirects");
    }
    let downgrade = previous.iter().any(|u| u.scheme() == "https");
    match next.scheme() {
        "https" => None,
        "http" if downgrade => Some("redirect from https to http refused"),
        "http" => None,
        _ => Some("redirect to a non-http scheme refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_refusal;
    use url::Url;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn https_to_http_redirect_is_refused() {
        assert!(redirect_refusal(&[u("https://a.example/x")], &u("http://a.example/x")).is_some());
        // Once on https, a later hop may not drop back either.
        let chain = [u("http://a.example/"), u("https://a.example/")];
        assert!(redirect_refusal(&chain, &u("http://b.example/")).is_some());
    }

    #[test]
    fn same_scheme_and_upgrade_redirects_are_followed() {
        assert!(redirect_refusal(&[u("http://a.example/")], &u("http://b.example/")).is_none());
        assert!(redirect_refusal(&[u("http://a.example/")], &u("https://a.example/")).is_none());
        assert!(redirect_refusal(&[u("https://a.example/")], &u("https://b.example/")).is_none());
    }

    #[test]
    fn sixth_redirect_and_non_http_schemes_are_refused() {
        let five: Vec<Url> = (0..5)
            .map(|i| u(&format!("http://a.example/{i}")))
            .collect();
        assert!(redirect_refusal(&five, &u("http://a.example/next")).is_none());
        let six: Vec<Url> = (0..6)
            .map(|i| u(&format!("http://a.example/{i}")))
            .collect();
        assert!(redirect_refusal(&six, &u("http://a.example/next")).is_some());
        assert!(redirect_refusal(&[u("http://a.example/")], &u("file:///etc/passwd")).is_some());
    }
}
