//! Request-header limits, checked before any handler runs (security case J20).
//!
//! hyper accepts header blocks of several hundred KiB; nothing legitimate sends that much. A
//! bearer token of 100 KiB would otherwise be base64-decoded and parsed before it is refused, and
//! a flood of such requests is cheap for an attacker and expensive for us. Both limits answer
//! 431 Request Header Fields Too Large (RFC 6585) without looking inside the headers.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

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
