//! `POST /v1/policy/explain` and `POST /v1/approvals`: parse, admit, call, map.
//!
//! Explain ([`crate::call::explain()`]) runs the same admission and policy as execute and
//! answers `{decision, reason, rule, steps, toolId}` without executing anything or taking a
//! grant. Approvals ([`crate::call::approve`]) issues a grant in `policy.approvals.mode:
//! grant` and answers 201; the caller must hold the approver scope. Refusals are mapped by
//! `server::refusal` (the table in `docs/http-api.md`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;

use super::request::ExecuteRequest;
use super::{admit, admitted, parse_mode, refused};
use crate::app::runtime::Runtime;
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;

/// `POST /v1/policy/explain`.
pub async fn explain(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "explain")?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let mode = parse_mode(request.mode.as_deref())?;
    let agent_profile = request.agent_profile.take();
    let call = request.into_call(mode, &headers);
    let admitted = admitted(
        &runtime,
        &snapshot,
        &caller,
        &request_id,
        &headers,
        agent_profile.as_deref(),
    );
    let body = crate::call::explain(&admitted, &call)
        .await
        .map_err(|refusal| refused(&runtime, refusal))?;
    Ok(Json(body).into_response())
}

/// `POST /v1/approvals`: body as execute's plus `principal`; 201 with the grant.
pub async fn approve(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "approval")?;
    let (snapshot, caller) = admit(&runtime, request.config_path.as_deref(), &headers).await?;
    let agent_profile = request.agent_profile.take();
    // Approvals take no mode: a grant binds the call, not how the catalog is viewed.
    let call = request.into_call(None, &headers);
    let admitted = admitted(
        &runtime,
        &snapshot,
        &caller,
        &request_id,
        &headers,
        agent_profile.as_deref(),
    );
    let body = crate::call::approve(&admitted, &call)
        .await
        .map_err(|refusal| refused(&runtime, refusal))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
