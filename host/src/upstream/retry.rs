//! When to try an upstream call again, and how long to wait first.
//!
//! | situation | retried? | wait |
//! |---|---|---|
//! | non-idempotent tool (`safety.idempotent = false`) | never | — |
//! | 429 / 503 with `Retry-After` ≤ `maxRetryAfterMs` | yes | `Retry-After` (delta-seconds or HTTP-date) |
//! | 429 / 503 with a longer or unparseable `Retry-After` | no, that response is returned | — |
//! | 429 / 503 without `Retry-After` | yes | 100 ms, 200 ms, 400 ms, … (capped at `maxRetryAfterMs`) |
//! | connect failure (request never reached the server) | yes | same backoff |
//! | any other error (the server may have seen the request) | never | — |
//!
//! At most `maxAttempts` attempts in total (default 3; 1 disables retries).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// First backoff step; doubled per attempt.
const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// Whether `status` is one worth retrying at all.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
}

/// Backoff before attempt `attempt + 1`, where `attempt` (1-based) just failed.
pub(crate) fn backoff(attempt: u32, max: Duration) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    BASE_BACKOFF.saturating_mul(factor).min(max)
}

/// Wait before retrying a 429/503 answer, or `None` when it must not be retried.
pub(crate) fn delay_for(headers: &HeaderMap, attempt: u32, max: Duration) -> Option<Duration> {
    let Some(value) = headers.get(RETRY_AFTER) else {
        return Some(backoff(attempt, max));
    };
    let wait = parse_retry_after(value.to_str().ok()?.trim(), SystemTime::now())?;
    (wait <= max).then_some(wait)
}

/// `Retry-After` as delta-seconds or an HTTP-date (a date in the past means no wait).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn backoff_doubles_from_100ms_and_is_capped() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(1, max), Duration::from_millis(100));
        assert_eq!(backoff(2, max), Duration::from_millis(200));
        assert_eq!(backoff(3, max), Duration::from_millis(400));
        assert_eq!(backoff(40, max), max);
    }

    #[test]
    fn retry_after_seconds_within_limit_is_used() {
        let d = delay_for(&with_retry_after("1"), 1, Duration::from_secs(5));
        assert_eq!(d, Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_beyond_limit_is_not_retried() {
        assert_eq!(
            delay_for(&with_retry_after("60"), 1, Duration::from_secs(5)),
            None
        );
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let now = SystemTime::now();
        let at = httpdate::fmt_http_date(now + Duration::from_secs(3));
        let d = parse_retry_after(&at, now).unwrap();
        assert!(
            d <= Duration::from_secs(3) && d >= Duration::from_secs(2),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn garbage_retry_after_is_not_retried() {
        assert_eq!(
            delay_for(&with_retry_after("soon"), 1, Duration::from_secs(5)),
            None
        );
    }
}
