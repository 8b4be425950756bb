//! The edge of the OAuth client: how credential failures are answered, and the
//! authorization-code callback (`GET /v1/oauth/callback`).
//!
//! | outcome | status | code |
//! |---|---|---|
//! | a person must authorize first | 409 | `interactive_required` (+ `authorizationUrl`) |
//! | the refresh token was refused | 502 | `reauthorization_required` |
//! | anything else | 502 | `credential_unavailable` |
//!
//! 409, not 401: a 401 from the runtime means the caller's *own* bearer token is bad, and
//! clients react by refreshing it. Here the caller is fine; the upstream grant is missing, and
//! retrying after the person authorized succeeds (the RFC 9110 meaning of 409: a conflict
//! with the current state that the user can resolve, then resubmit).
//!
//! The callback is reached by the person's browser, which carries no runtime token, so it is
//! not behind runtime auth: the single-use `state` is its only credential (see
//! [`crate::oauth::flow`]).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::oauth::{CallbackFailure, OAuthError};
use crate::secrets::CredentialError;
use crate::server::error::ApiError;
use crate::server::runtime::Runtime;

/// The error response for a call whose credentials could not be resolved.
pub(super) fn credential_error(error: &CredentialError) -> ApiError {
    match &error.oauth {
        Some(OAuthError::InteractiveRequired { authorization_url }) => ApiError::new(
            StatusCode::CONFLICT,
            "interactive_required",
            format!(
                "tool {} needs a person to authorize its upstream first: open authorizationUrl, then retry",
                error.tool_id
            ),
        )
        .with_plain(format!("interactive_required {authorization_url}"))
        .with_extension("authorizationUrl", authorization_url.clone()),
        Some(OAuthError::ReauthorizationRequired) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "reauthorization_required",
            error.to_string(),
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "credential_unavailable",
            error.to_string(),
        ),
    }
}

/// The authorization server's redirect (RFC 6749 4.1.2, RFC 9207).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /v1/oauth/callback`: finish an authorization started by `interactive_required`.
pub async fn oauth_callback(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oauth = runtime.mcp.oauth();
    let state = params.state.as_deref().unwrap_or_default();
    match oauth
        .complete(
            state,
            params.code.as_deref(),
            params.iss.as_deref(),
            params.error.as_deref(),
        )
        .await
    {
        Ok(()) => Ok((
            [("cache-control", "no-store")],
            "authorized: you can close this window and retry the call\n",
        )
            .into_response()),
        Err(CallbackFailure::Callback(e)) => {
            Err(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_callback", e.to_string())
                    .with_plain(format!("invalid_callback: {e}")),
            )
        }
        Err(e @ CallbackFailure::Exchange(_)) => {
            tracing::warn!("oauth callback: {e}");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_auth_failed",
                e.to_string(),
            ))
        }
    }
}
