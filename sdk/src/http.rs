//! Outbound HTTP through the host, allowed only to the origins the operator granted this plugin
//! (`plugins.<name>.grants.http`, exact `scheme://host:port`). Bodies are buffered and capped,
//! redirects are never followed, and the host enforces its own timeout.
//!
//! Only secret sources and auth profiles may use it: a policy evaluator that calls [`fetch`]
//! imports `outbound-http`, which its world lacks, so the host refuses to load it.
//!
//! Natively (unit tests) requests go to the handler installed with
//! [`crate::testing::set_http_handler`]; without one they fail with [`HttpError::NotAllowed`].

use std::fmt;

/// One request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... (uppercase).
    pub method: String,
    /// Absolute `http`/`https` URL; its origin must be granted.
    pub url: String,
    /// Request headers, in order. `host`, `content-length` and hop-by-hop headers are set by the host.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<Vec<u8>>,
    /// Wanted timeout; the host uses the smaller of this and the plugin's remaining call budget.
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A `GET` of `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` of `body` to `url`.
    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: Some(body.into()),
            ..Self::new("POST", url)
        }
    }

    /// A request with `method` (uppercased) to `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            ..Self::default()
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Ask for a timeout.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

/// One response (any status: a 4xx or 5xx is a response, not an error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL's origin is not granted to this plugin, or the URL is malformed.
    NotAllowed(String),
    /// The timeout elapsed.
    Timeout,
    /// The response body exceeded the host's cap.
    TooLarge,
    /// Connection, TLS or protocol failure.
    Transport(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed(message) => write!(f, "not allowed: {message}"),
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge => f.write_str("response too large"),
            Self::Transport(message) => write!(f, "transport error: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Send a request and wait for the whole response.
pub fn fetch(request: &Request) -> Result<Response, HttpError> {
    crate::host::fetch(request)
}
