//! The two failure kinds of an upstream call, split by whose fault it is.
//!
//! | type | meaning | edge mapping |
//! |---|---|---|
//! | [`RequestError`] | the caller's arguments do not fit the tool | 400 |
//! | [`UpstreamError`] | no upstream response was obtained | 502, with [`UpstreamError::reason`] as the code |
//!
//! Rule: no message ever contains a header value, a flag value, a query string or URL userinfo,
//! since any of them may carry a credential. URLs are printed through `redact::redact_url`
//! and `reqwest` errors are stored `without_url()`.

use crate::redact::redact_url;

/// The caller's arguments do not fit the tool (the server maps this to 400).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The number of path arguments is not the number of the tool's path parameters.
    #[error("tool `{tool}` takes {expected} path argument(s) [{params}], got {got}")]
    PathArgCount {
        /// Tool id.
        tool: String,
        /// Path parameters of the tool.
        expected: usize,
        /// Arguments given.
        got: usize,
        /// Their names, in the order the arguments bind to them.
        params: String,
    },
    /// An empty path argument would collapse a path segment.
    #[error("tool `{tool}`: path parameter `{param}` must not be empty")]
    EmptyPathArg {
        /// Tool id.
        tool: String,
        /// The placeholder name.
        param: String,
    },
    /// A path argument would form a `.` or `..` segment, which URL parsing would resolve away.
    #[error("tool `{tool}`: path arguments must not form a `.` or `..` path segment")]
    DotSegment {
        /// Tool id.
        tool: String,
    },
    /// Flag keys that match no parameter of the tool.
    #[error("tool `{tool}` has no flag(s) {unknown}")]
    UnknownFlags {
        /// Tool id.
        tool: String,
        /// The unknown keys, quoted and comma-separated.
        unknown: String,
    },
    /// The same parameter was given under its name and its original name.
    #[error("tool `{tool}`: flag `{flag}` given twice (by name and by original name)")]
    DuplicateFlag {
        /// Tool id.
        tool: String,
        /// The parameter's name.
        flag: String,
    },
    /// A flag that is a path parameter; those go in `pathArgs`.
    #[error("tool `{tool}`: `{flag}` is a path parameter; pass it in pathArgs")]
    PathParamAsFlag {
        /// Tool id.
        tool: String,
        /// The parameter's name.
        flag: String,
    },
    /// A required flag is missing.
    #[error("tool `{tool}`: required flag `{flag}` is missing")]
    MissingFlag {
        /// Tool id.
        tool: String,
        /// The parameter's name.
        flag: String,
    },
    /// A header flag value contains a forbidden byte (CR, LF, NUL or another control character).
    #[error("tool `{tool}`: value of header flag `{flag}` contains a forbidden character (CR, LF, NUL or other control)")]
    InvalidHeaderValue {
        /// Tool id.
        tool: String,
        /// The parameter's name.
        flag: String,
    },
    /// A header parameter whose name is not a valid HTTP header name.
    #[error("tool `{tool}`: header parameter `{flag}` is not a valid header name")]
    InvalidHeaderName {
        /// Tool id.
        tool: String,
        /// The parameter's name.
        flag: String,
    },
    /// The tool requires a request body and none was given.
    #[error("tool `{tool}` requires a request body")]
    MissingBody {
        /// Tool id.
        tool: String,
    },
    /// The tool's method is not a valid HTTP method.
    #[error("tool `{tool}` has an invalid HTTP method")]
    InvalidMethod {
        /// Tool id.
        tool: String,
    },
}

/// No upstream response was obtained (the server maps this to 502 with [`Self::reason`]).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The tool has no server URL.
    #[error("tool `{tool}` has no server URL")]
    MissingBaseUrl {
        /// Tool id.
        tool: String,
    },
    /// The server URL plus path is not an absolute http(s) URL.
    #[error("tool `{tool}`: upstream URL is invalid: {detail}")]
    InvalidUrl {
        /// Tool id.
        tool: String,
        /// What is wrong (never the URL's query).
        detail: String,
    },
    /// TCP or TLS connection could not be established.
    #[error("could not connect to upstream {url}: {source}")]
    Connect {
        /// The URL without userinfo, query and fragment.
        url: String,
        /// The cause, stored without its URL.
        source: reqwest::Error,
    },
    /// The attempt did not complete within the per-attempt timeout.
    #[error("upstream {url} did not complete within {timeout_ms} ms")]
    Timeout {
        /// The URL without userinfo, query and fragment.
        url: String,
        /// The per-attempt timeout.
        timeout_ms: u64,
    },
    /// The response body is larger than `maxResponseBytes`.
    #[error("upstream {url} response exceeds the {limit}-byte limit")]
    TooLarge {
        /// The URL without userinfo, query and fragment.
        url: String,
        /// `maxResponseBytes`.
        limit: u64,
    },
    /// A redirect was refused: https to http, a non-http scheme, too many hops, or an
    /// allowed origin that resolves into a private network ([`super::redirect`]).
    #[error("upstream redirect to {url} not followed: {why}")]
    RedirectBlocked {
        /// The redirect target without userinfo, query and fragment.
        url: String,
        /// Which rule refused it.
        why: String,
    },
    /// Any other transport failure (bad response, connection reset mid-exchange, ...).
    #[error("upstream {url} protocol error: {source}")]
    Protocol {
        /// The URL without userinfo, query and fragment.
        url: String,
        /// The cause, stored without its URL.
        source: reqwest::Error,
    },
    /// The HTTP clients could not be built (startup only).
    #[error("upstream HTTP client could not be built: {source}")]
    Init {
        /// The cause.
        source: crate::net::NetError,
    },
}

impl UpstreamError {
    /// The classified reason code reported to callers and audit.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingBaseUrl { .. } => "missing_base_url",
            Self::InvalidUrl { .. } => "invalid_upstream_url",
            Self::Connect { .. } => "upstream_connect_failed",
            Self::Timeout { .. } => "upstream_timeout",
            Self::TooLarge { .. } => "upstream_response_too_large",
            Self::RedirectBlocked { .. } => "upstream_redirect_blocked",
            Self::Protocol { .. } => "upstream_protocol_error",
            Self::Init { .. } => "upstream_init_failed",
        }
    }

    /// Classify a `reqwest` error from one attempt; the URL is redacted and dropped from `err`.
    pub(crate) fn from_reqwest(err: reqwest::Error, timeout_ms: u64) -> Self {
        let url = err.url().map(redact_url).unwrap_or_default();
        let source = err.without_url();
        if source.is_connect() {
            Self::Connect { url, source }
        } else if source.is_timeout() {
            Self::Timeout { url, timeout_ms }
        } else {
            Self::Protocol { url, source }
        }
    }
}
