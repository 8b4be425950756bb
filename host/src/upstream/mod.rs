//! Step 7: the HTTP call to the upstream API.
//!
//! | part | module | rule |
//! |---|---|---|
//! | request building | [`request`] | path args in template order and fully percent-encoded; unknown or missing flags refused; credentials applied last |
//! | sending | [`client`] | per-attempt connect and total timeouts, response size cap |
//! | redirects | [`redirect`] | credentialed requests follow none; others follow same-origin hops, and hops to origins the source allows unless they lead into a private network; https→http never |
//! | retries | [`retry`] | idempotent tools only, 429/503 (honouring `Retry-After`) and connect failures only |
//! | errors | [`error`] | caller's fault → [`RequestError`] (400); no response → [`UpstreamError`] (502, [`UpstreamError::reason`]) |
//!
//! Upstream 4xx/5xx are not errors: they come back as an [`UpstreamResponse`] with that status.
//! Nothing here ever prints a header value, a query string or URL userinfo.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};

pub mod client;
pub mod error;
pub mod redirect;
pub mod request;
pub mod retry;
pub mod settings;

pub use client::{Upstream, UpstreamResponse};
pub use error::{RequestError, UpstreamError};
pub use request::{build_request, UpstreamRequest};

/// Caller-supplied arguments of one execution (already decoded by the server).
#[derive(Debug, Clone, Default)]
pub struct ExecuteArgs {
    /// Positional path arguments, matched to the path template's placeholders in order.
    pub path_args: Vec<String>,
    /// Flags keyed by parameter `name` or `originalName`.
    pub flags: BTreeMap<String, String>,
    /// Request body, sent as-is.
    pub body: Option<Bytes>,
}

/// Credentials to apply, produced by the secrets stage. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct AppliedCredentials {
    /// Headers set on the request (replacing caller headers of the same name).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Query parameters (replacing caller query flags of the same name).
    pub query: Vec<(String, String)>,
    /// Cookies (replacing caller cookie flags of the same name).
    pub cookies: Vec<(String, String)>,
    /// The raw secret values behind the above, so echoes of them can be scrubbed from the
    /// upstream's response ([`crate::secrets::scrub`]).
    pub values: Vec<crate::secrets::SecretValue>,
}

impl AppliedCredentials {
    /// True when no credential of any kind is applied.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.cookies.is_empty()
    }
}

impl std::fmt::Debug for AppliedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedCredentials")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "query",
                &self
                    .query
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "cookies",
                &self
                    .cookies
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests;
