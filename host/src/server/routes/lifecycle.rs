//! `POST /v1/runtime/heartbeat`, `/v1/runtime/stop`, `/v1/runtime/session-close`: bind the
//! config, authenticate, then hand the session to [`crate::server::lifecycle`].
//!
//! | route | needs (runtime auth on) | audited |
//! |---|---|---|
//! | heartbeat | a valid token (as the reference) | no (as the reference; it repeats every few seconds) |
//! | session-close | a valid token; a lease can only be closed by the principal that holds it | `session_close` (before the lease ends) |
//! | stop | the `runtime:stop` scope (the reference needs only a valid token) | `runtime_stop` (before answering), or `authz_denial` |
//!
//! A refusal to audit is a refusal to act (503 `audit_unavailable`). Bodies are strict:
//! unknown fields are 400; session-close and stop accept an empty body.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{admit, caller_event, record_or_refuse, require_scope, GetParams};
use crate::app::runtime::Runtime;
use crate::server::error::ApiError;
use crate::server::lifecycle::{Lifecycle, StopReason};

/// The scope that lets a caller stop the runtime when runtime auth is on.
pub const STOP_SCOPE: &str = "runtime:stop";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionBody {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    config_fingerprint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopBody {}

/// An empty (or all-whitespace) body is the default value.
fn parse<T: DeserializeOwned + Default>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid {what} request: {e}")))
}

fn session_of(body: &SessionBody) -> Option<&str> {
    body.session_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `POST /v1/runtime/heartbeat` `{"sessionId", "configFingerprint"?}`: attach or renew a lease.
pub async fn heartbeat(
    State(runtime): State<Arc<Runtime>>,
    Extension(lifecycle): Extension<Arc<Lifecycle>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (_snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers).await?;
    let request: SessionBody = parse(&body, "heartbeat")?;
    let session = session_of(&request).unwrap_or_default();
    let active = lifecycle.heartbeat(
        session,
        request.config_fingerprint.as_deref(),
        caller.principal.as_deref(),
    )?;
    Ok(Json(serde_json::json!({
        "renewed": true,
        "sessionId": session,
        "activeSessions": active,
    }))
    .into_response())
}

/// `POST /v1/runtime/session-close` `{"sessionId"?}`: end the caller's lease.
pub async fn session_close(
    State(runtime): State<Arc<Runtime>>,
    Extension(lifecycle): Extension<Arc<Lifecycle>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (_snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers).await?;
    let request: SessionBody = parse(&body, "session-close")?;
    let session = session_of(&request);
    lifecycle.may_close(session, caller.principal.as_deref())?;
    let mut event = caller_event(
        &runtime,
        &headers,
        &caller,
        "session_close",
        "runtime.session",
        "session_close",
    );
    event.status_code = Some(200);
    event.detail = session.map(|s| serde_json::json!({ "sessionId": s }).into());
    record_or_refuse(&runtime, event).await?;
    let active = lifecycle.close(session);
    Ok(Json(serde_json::json!({ "closed": true, "activeSessions": active })).into_response())
}

/// `POST /v1/runtime/stop`: answer `{"stopped": true}`, then stop gracefully (in-flight
/// requests finish, the audit log is closed, the process exits 0).
pub async fn stop(
    State(runtime): State<Arc<Runtime>>,
    Extension(lifecycle): Extension<Arc<Lifecycle>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers).await?;
    require_scope(
        &runtime,
        &snapshot,
        &caller,
        &headers,
        STOP_SCOPE,
        "runtime.stop",
        "stopping the runtime",
    )
    .await?;
    let _: StopBody = parse(&body, "stop")?;
    let mut event = caller_event(
        &runtime,
        &headers,
        &caller,
        "runtime_stop",
        "runtime.stop",
        "runtime_stop",
    );
    event.status_code = Some(200);
    record_or_refuse(&runtime, event).await?;
    // The server stops accepting now; this response is in flight, so it is still delivered.
    lifecycle.request_stop(StopReason::Requested);
    Ok(Json(serde_json::json!({ "stopped": true })).into_response())
}
