//! The host side of `outbound-http`: granted origins only, no redirects, a timeout no longer
//! than what is left of the call's budget, capped response bodies.
//!
//! The guest is blocked in this import while the request runs; epochs cannot interrupt host
//! code, so the request itself carries the deadline. Calls run on a blocking thread (see
//! [`super::call`]), where waiting on the tokio runtime's handle is allowed. While it waits the
//! call gives back its slot of the CPU gate ([`super::wasi`]).

use std::time::{Duration, Instant};

use super::wasi::Budget;

use super::bindings::http::{HttpError, Request, Response};
use super::grants::Grants;

/// Largest response body handed to a plugin.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Headers that the host sets itself or that make no sense on a single buffered request.
const HOST_OWNED: [&str; 8] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// Perform one request for `plugin`.
pub fn fetch(
    plugin: &str,
    grants: &Grants,
    client: &reqwest::Client,
    budget: &mut Budget,
    request: Request,
) -> Result<Response, HttpError> {
    let deadline = budget.deadline;
    let url = url::Url::parse(&request.url)
        .map_err(|_| HttpError::NotAllowed("the URL is malformed".into()))?;
    if !grants.allows(&url) {
        let origin = super::grants::Origin::of(&url)
            .map(|o| o.to_string())
            .unwrap_or_else(|| "(none)".into());
        tracing::warn!(plugin, %origin, "plugin outbound request to an ungranted origin refused");
        return Err(HttpError::NotAllowed(format!(
            "origin {origin} is not granted"
        )));
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| HttpError::NotAllowed("invalid method".into()))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let wanted = request
        .timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)))
        .unwrap_or(remaining);
    let timeout = wanted.min(remaining);
    if timeout.is_zero() {
        return Err(HttpError::Timeout);
    }
    let mut builder = client.request(method, url).timeout(timeout);
    for (name, value) in &request.headers {
        if HOST_OWNED.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(HttpError::Transport(
            "no async runtime for outbound HTTP".into(),
        ));
    }
    let exchange = async move {
        let send = async {
            let mut response = builder.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, send)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    };
    budget.idle(exchange).unwrap_or(Err(HttpError::Timeout))
}

fn classify(error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        HttpError::Timeout
    } else {
        // Without the URL: it may carry query parameters the plugin considers secret.
        HttpError::Transport(error.without_url().to_string())
    }
}
