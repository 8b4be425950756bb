//! `POST /v1/tools/execute`: parse, admit, call, map.
//!
//! config binding (409) -> authenticate (401) -> [`crate::call::execute`] (lookup, envelope,
//! policy, credentials, request, intent, HTTP or MCP backend, outcome) -> the answer, or the
//! refusal mapped by `server::refusal`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;

use super::request::ExecuteRequest;
use super::{admit, admitted, json_response, parse_mode, refused};
use crate::app::runtime::Runtime;
use crate::server::error::ApiError;
use crate::server::request_id::RequestId;

/// `POST /v1/tools/execute`.
pub async fn execute(
    State(runtime): State<Arc<Runtime>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let mut request = ExecuteRequest::parse(&raw, "execute")?;
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
    let body = crate::call::execute(&admitted, call)
        .await
        .map_err(|refusal| refused(&runtime, refusal))?;
    Ok(json_response(body))
}
