//! Step 7: the HTTP call to the upstream API.
//!
//! | part | module | rule |
//! |---|---|---|
//! | request building | [`request`] | path args bound to the declared path parameters in order and fully percent-encoded; unknown or missing flags refused; credentials applied last |
//! | sending | [`client`] | per-attempt connect and total timeouts, response size cap |
//! | redirects | [`redirect`] | credentialed requests follow none; others follow same-origin hops, and hops to origins the source allows unless they lead into a private network; https→http never |
//! | retries | [`retry`] | idempotent tools only, 429/503 (honouring `Retry-After`) and connect failures only |
//! | errors | [`error`] | caller's fault → [`RequestError`] (400); no response → [`UpstreamError`] (502, [`UpstreamError::reason`]) |
//!
//! Upstream 4xx/5xx are not errors: they come back as an [`UpstreamResponse`] with that status.
//! Nothing here ever prints a header value, a query string or URL userinfo.

use std::collections::BTreeMap;

use bytes::Bytes;

pub mod client;
pub mod error;
pub mod redirect;
pub mod request;
pub mod retry;
pub mod settings;

pub use client::{Upstream, UpstreamResponse};
pub use error::{RequestError, UpstreamError};
pub use request::{build_request, path_arg_names, UpstreamRequest};
// Produced by the secrets stage (step 6), applied here (step 7): upstream imports secrets, never
// the other way round.
pub use crate::secrets::AppliedCredentials;

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

#[cfg(test)]
mod tests;
