//! Errors at the HTTP edge: one place maps failures to status and contract code.
//!
//! By default an error body is the open-cli contract's plain text (`authn_failed\n`, ...), so
//! the existing client keeps working. A request with `Accept: application/json` (or
//! `application/problem+json`) gets an RFC 9457 problem document with the same code, a human
//! message and the request id. Messages are built from typed errors that never carry secrets,
//! tokens or stack traces.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request_id::RequestId;

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    plain: Option<String>,
    retry_after_secs: Option<u64>,
    challenge: Option<String>,
    /// Boxed: rare, and it keeps `Result<_, ApiError>` small.
    extension: Option<Box<(&'static str, String)>>,
}

impl ApiError {
    /// An error whose plain-text body is its code.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            plain: None,
            retry_after_secs: None,
            challenge: None,
            extension: None,
        }
    }

    /// Use `text` as the plain-text body instead of the code (the contract does this for
    /// config errors and a few messages such as `tool not found`).
    pub fn with_plain(mut self, text: impl Into<String>) -> Self {
        self.plain = Some(text.into());
        self
    }

    /// Ask the caller to retry after `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Add an RFC 6750 `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    /// Add one member to the problem document (e.g. `authorizationUrl`); never a secret.
    pub fn with_extension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extension = Some(Box::new((name, value.into())));
        self
    }

    /// Say where the error happened (a workflow run's step) before the detail; the plain-text
    /// body stays the contract's.
    pub fn with_context(mut self, context: &str) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }

    /// Name the workflow step that was refused as the problem document's `stepId` (unless the
    /// error already carries a member, e.g. `authorizationUrl`; the detail names it anyway).
    pub fn with_step(self, step_id: String) -> Self {
        if self.extension.is_some() {
            return self;
        }
        self.with_extension("stepId", step_id)
    }

    /// 400 for a request the runtime cannot parse.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail.clone()).with_plain(detail)
    }

    /// The contract code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn problem_json(&self, request_id: &str) -> Vec<u8> {
        let mut body = serde_json::json!({
            "type": format!("urn:portcullis:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
            "requestId": request_id,
        });
        if let Some((name, value)) = self.extension.as_deref() {
            body[*name] = serde_json::Value::String(value.clone());
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = format!("{}\n", self.plain.as_deref().unwrap_or(self.code));
        let mut response = (self.status, text).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(value) = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

fn wants_problem_json(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|media| {
            media.eq_ignore_ascii_case("application/json")
                || media.eq_ignore_ascii_case("application/problem+json")
        })
}

/// Middleware: re-render [`ApiError`] responses as problem documents when asked to.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let json = wants_problem_json(&request);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_default();
    let mut response = next.run(request).await;
    if json {
        if let Some(error) = response.extensions_mut().remove::<ApiError>() {
            let mut rendered = Response::new(error.problem_json(request_id.as_str()).into());
            *rendered.status_mut() = error.status;
            let headers = rendered.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW] {
                if let Some(v) = response.headers().get(&name) {
                    headers.insert(name, v.clone());
                }
            }
            return rendered;
        }
    }
    response
}
