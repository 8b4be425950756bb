//! The edge of the OAuth client: the authorization-code callback (`GET /v1/oauth/callback`)
//! and its confirmation. How a call's credential failure is answered (409
//! `interactive_required`, 502 `reauthorization_required` / `credential_unavailable`) is in
//! `server::refusal`.
//!
//! The callback is reached by the person's browser, which carries no runtime token, so it is
//! not behind runtime auth: the single-use `state` is its only credential, and it binds
//! nothing. It shows a one-time confirmation code; the principal who started the flow posts it
//! to `POST /v1/oauth/confirm` (behind runtime auth) and only then is the code exchanged and the
//! token stored for them (see [`crate::oauth::flow`]). Both steps are audited:
//!
//! | step | outcome | status | audit (`eventType`, `reasonCode`) |
//! |---|---|---|---|
//! | callback | accepted | 200 (text with the code) | `oauth_callback`, `callback_received` |
//! | callback | bad state, `iss`, error, no code | 400 `invalid_callback` | `oauth_callback`, `invalid_callback` |
//! | confirm | token stored | 200 | `oauth_authorized`, `authorized` |
//! | confirm | unknown or spent code | 400 `invalid_confirmation` | `oauth_authorized`, `invalid_confirmation` |
//! | confirm | another principal | 403 `oauth_principal_mismatch` | `oauth_authorized`, `oauth_principal_mismatch` |
//! | confirm | the code exchange failed | 502 `upstream_auth_failed` | `oauth_authorized`, `upstream_auth_failed` |

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use crate::app::runtime::Runtime;
use crate::audit::{AuditDecision, AuditEvent};
use crate::oauth::{CallbackFailure, ConfirmError};
use crate::server::error::ApiError;

/// The authorization server's redirect (RFC 6749 4.1.2, RFC 9207).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /v1/oauth/callback`: accept the authorization server's redirect and show the person
/// the code their client confirms with.
pub async fn oauth_callback(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oauth = runtime.mcp.oauth();
    let state = params.state.as_deref().unwrap_or_default();
    let received = oauth.receive(
        state,
        params.code.as_deref(),
        params.iss.as_deref(),
        params.error.as_deref(),
    );
    match received {
        Ok((confirmation, principal)) => {
            let mut event = event(
                "oauth_callback",
                AuditDecision::Allowed,
                "callback_received",
            );
            event.status_code = Some(200);
            event.detail = Some(serde_json::json!({ "for": principal }).into());
            super::record_or_refuse(&runtime, event).await?;
            let who = principal.as_deref().unwrap_or("(runtime auth off)");
            let page = format!(
                "Authorization received for runtime principal {who}.\n\n\
                 If you are {who}, finish it from your client within {} minutes:\n\n  \
                 POST {}/v1/oauth/confirm  {{\"confirmation\": \"{confirmation}\"}}\n\n\
                 If you did not start this as {who}, close this window: nothing has been stored.\n",
                crate::oauth::flow::STATE_TTL.as_secs() / 60,
                runtime.options.url.trim_end_matches('/'),
            );
            Ok(([("cache-control", "no-store")], page).into_response())
        }
        Err(e) => {
            let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_callback", e.to_string())
                .with_plain(format!("invalid_callback: {e}"));
            let mut event = event("oauth_callback", AuditDecision::Denied, "invalid_callback");
            event.status_code = Some(400);
            event.detail = Some(serde_json::json!({ "why": e.to_string() }).into());
            super::record_or_refuse(&runtime, event).await?;
            Err(error)
        }
    }
}

/// `POST /v1/oauth/confirm` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    confirmation: String,
}

/// `POST /v1/oauth/confirm`: the principal who started an authorization finishes it.
pub async fn oauth_confirm(
    State(runtime): State<Arc<Runtime>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let (_, caller) = super::admit(&runtime, None, &headers).await?;
    let request: ConfirmRequest = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid confirm request: {e}")))?;
    let oauth = runtime.mcp.oauth();
    let result = oauth
        .confirm(&request.confirmation, caller.principal.as_deref())
        .await;
    let (error, decision, reason) = match &result {
        Ok(()) => (None, AuditDecision::Allowed, "authorized"),
        Err(CallbackFailure::Confirm(ConfirmError::Unknown)) => (
            Some(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_confirmation",
                result_text(&result),
            )),
            AuditDecision::Denied,
            "invalid_confirmation",
        ),
        Err(CallbackFailure::Confirm(ConfirmError::PrincipalMismatch)) => (
            Some(ApiError::new(
                StatusCode::FORBIDDEN,
                "oauth_principal_mismatch",
                result_text(&result),
            )),
            AuditDecision::Denied,
            "oauth_principal_mismatch",
        ),
        Err(CallbackFailure::Exchange(_)) => {
            tracing::warn!("oauth confirm: {}", result_text(&result));
            (
                Some(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_auth_failed",
                    result_text(&result),
                )),
                AuditDecision::Error,
                "upstream_auth_failed",
            )
        }
    };
    let mut event = event("oauth_authorized", decision, reason);
    event.principal = caller.principal.clone();
    event.lineage = caller.lineage.clone();
    event.token_hash = super::token_hash(&runtime, &headers);
    event.status_code = Some(error.as_ref().map_or(200, |e| e.status().as_u16()));
    super::record_or_refuse(&runtime, event).await?;
    match error {
        Some(error) => Err(error),
        None => Ok((
            [("cache-control", "no-store")],
            axum::Json(serde_json::json!({ "status": "authorized" })),
        )
            .into_response()),
    }
}

fn result_text(result: &Result<(), CallbackFailure>) -> String {
    result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn event(event_type: &str, decision: AuditDecision, reason: &str) -> AuditEvent {
    AuditEvent::new(event_type, "runtime.oauth", decision, reason)
}
