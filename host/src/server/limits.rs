//! Limits checked before any handler runs.
//!
//! **Header size (security case J20).** hyper accepts header blocks of several hundred KiB; nothing legitimate sends that much. A
//! bearer token of 100 KiB would otherwise be base64-decoded and parsed before it is refused, and
//! a flood of such requests is cheap for an attacker and expensive for us. Both limits answer
//! 431 Request Header Fields Too Large (RFC 6585) without looking inside the headers.
//!
//! **Failed authentications (security case I11).** Each client IP address may fail
//! authentication `maxFailedAuthPerMinute` times (default 120) in a fixed one-minute window;
//! after that its requests get 429 with `Retry-After` until the window ends, before any token is
//! parsed or sent to the identity provider. Successful requests never count. The address is the
//! TCP peer: behind a reverse proxy every client shares the proxy's address, so set the limit
//! with that in mind (or to 0 and limit at the proxy). Refusals are logged, not audited, so a
//! flood cannot fill the audit disk.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::runtime::Runtime;

/// Largest `Authorization` header value accepted, in bytes. Real access tokens are 1-4 KiB;
/// large RS512 tokens with many claims stay well under this.
pub const MAX_AUTHORIZATION_BYTES: usize = 16 << 10;

/// Largest sum of all header names and values accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Middleware: refuse oversized header blocks with 431.
pub async fn header_size(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let authorization: usize = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.len())
        .sum();
    let total: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if authorization > MAX_AUTHORIZATION_BYTES || total > MAX_HEADER_BYTES {
        tracing::info!(
            authorization_bytes = authorization,
            header_bytes = total,
            "request headers too large"
        );
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "request headers are too large",
        )
        .into_response();
    }
    next.run(request).await
}

/// Length of a failed-authentication window.
const WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at once before finished windows are swept.
const MAX_TRACKED: usize = 10_000;

/// One address's current window.
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed authentications per client address, per router (so tests and instances never share).
#[derive(Default)]
pub struct FailedAuthLimiter {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl FailedAuthLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds until `ip` may try again, when it is over `limit` in its current window.
    fn blocked_for(&self, ip: IpAddr, limit: u32, now: Instant) -> Option<u64> {
        let windows = self.lock();
        let window = windows.get(&ip)?;
        let elapsed = now.duration_since(window.started);
        (elapsed < WINDOW && window.failures >= limit).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut windows = self.lock();
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&ip) {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

/// Middleware: 429 for addresses over their failed-authentication budget; count new failures.
pub async fn failed_auth(
    State((runtime, limiter)): State<(Arc<Runtime>, Arc<FailedAuthLimiter>)>,
    request: Request,
    next: Next,
) -> Response {
    let limit = runtime
        .snapshot()
        .authenticator
        .settings()
        .map_or(0, |s| s.failed_auth_limit());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (Some(ip), true) = (peer, limit > 0) else {
        return next.run(request).await;
    };
    if let Some(retry_after) = limiter.blocked_for(ip, limit, Instant::now()) {
        tracing::info!(%ip, "too many failed authentications; refusing until the window ends");
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_authentications",
            "too many failed authentications from this address; retry later",
        )
        .with_retry_after(retry_after)
        .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        limiter.record_failure(ip, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_budget_until_the_window_ends() {
        let limiter = FailedAuthLimiter::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(ip, 3, t0), None);
            limiter.record_failure(ip, t0);
        }
        assert_eq!(limiter.blocked_for(ip, 3, t0), Some(60));
        assert_eq!(limiter.blocked_for(other, 3, t0), None, "per address");
        let later = t0 + Duration::from_secs(45);
        assert_eq!(limiter.blocked_for(ip, 3, later), Some(15));
        let next_window = t0 + WINDOW;
        assert_eq!(limiter.blocked_for(ip, 3, next_window), None);
        limiter.record_failure(ip, next_window);
        assert_eq!(
            limiter.blocked_for(ip, 3, next_window),
            None,
            "a fresh window"
        );
    }
}
