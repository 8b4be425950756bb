//! Route handlers. Each one is thin: bind config, authenticate, then call into the pipeline.

mod execute;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;

pub use execute::execute;

use super::binding;
use super::error::ApiError;
use super::runtime::Runtime;
use super::snapshot::Snapshot;
use crate::audit::AuditQuery;
use crate::authn::Caller;
use crate::config::Mode;

/// The open-cli contract version we implement.
pub const CONTRACT_VERSION: &str = "1.1";

/// Scope prefixes of the authorization envelope.
pub const SCOPE_PREFIXES: [&str; 3] = ["bundle:", "profile:", "tool:"];

/// Query parameters shared by GET routes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    config: Option<String>,
    mode: Option<String>,
    agent_profile: Option<String>,
    limit: Option<String>,
    since: Option<String>,
    tool_id: Option<String>,
    event_type: Option<String>,
}

/// Bind the config, then authenticate: nothing expensive happens before both pass.
fn admit(
    runtime: &Runtime,
    selector: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Arc<Snapshot>, Caller), ApiError> {
    let snapshot = runtime.snapshot();
    binding::check(selector, &snapshot.loaded.project_path)?;
    let caller = snapshot.authenticator.authenticate(headers);
    Ok((snapshot, caller))
}

fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn parse_mode(raw: Option<&str>) -> Result<Option<Mode>, ApiError> {
    match raw.filter(|m| !m.is_empty()) {
        None => Ok(None),
        Some("discover") => Ok(Some(Mode::Discover)),
        Some("curated") => Ok(Some(Mode::Curated)),
        Some(_) => Err(ApiError::bad_request("mode must be discover or curated")),
    }
}

/// `GET /v1/runtime/info`: the handshake. Works without a token.
pub async fn info(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers)?;
    let options = &runtime.options;
    let mut auth = serde_json::json!({
        "required": snapshot.authenticator.required(),
        "scopePrefixes": SCOPE_PREFIXES,
        "tokenValidationProfiles": [],
        "browserLogin": { "configured": false, "configEndpoint": "/v1/auth/browser-config" },
        "authorizationEnvelope": { "version": "1.0", "scopePrefixes": SCOPE_PREFIXES },
    });
    if let Some(principal) = caller.principal {
        auth["principal"] = principal.into();
    }
    let body = serde_json::json!({
        "contractVersion": CONTRACT_VERSION,
        "capabilities": ["catalog", "execute", "refresh", "audit", "authorization-envelope", "problem-json"],
        "instanceId": options.instance_id,
        "url": options.url,
        "runtimeMode": "remote",
        "auditPath": options.audit_path,
        "stateDir": options.state_dir,
        "cacheDir": options.cache_dir,
        "auth": auth,
    });
    Ok(Json(body).into_response())
}

/// `GET /v1/catalog/effective`: the catalog and the selected view, pre-rendered per view.
pub async fn catalog(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, _caller) = admit(&runtime, params.config.as_deref(), &headers)?;
    let mode = parse_mode(params.mode.as_deref())?;
    let index = select_view(&snapshot, mode, params.agent_profile.as_deref());
    let rendered = snapshot.rendered_view(index).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "catalog has no views",
        )
    })?;
    if accepts_gzip(&headers) {
        let mut response = json_response(rendered.gzip);
        let response_headers = response.headers_mut();
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return Ok(response);
    }
    Ok(json_response(rendered.identity))
}

/// Whether the client accepts a gzip body (`gzip` or `*` listed without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                matches!(
                    p.replace(' ', "").as_str(),
                    "q=0" | "q=0.0" | "q=0.00" | "q=0.000"
                )
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// View selection (contract 4.4): the named profile's view, else the default profile's view in
/// curated mode, else `discover`.
fn select_view(snapshot: &Snapshot, mode: Option<Mode>, agent_profile: Option<&str>) -> usize {
    let views = &snapshot.catalog.effective_views;
    let position = |name: &str| views.iter().position(|v| v.name == name);
    if let Some(index) = agent_profile.and_then(position) {
        return index;
    }
    let config = &snapshot.loaded.config;
    let mode = mode
        .or(config.mode.as_ref().and_then(|m| m.default))
        .unwrap_or(Mode::Discover);
    if mode == Mode::Curated {
        let default_profile = config
            .agents
            .as_ref()
            .and_then(|a| a.default_profile.as_deref());
        if let Some(index) = default_profile.and_then(position) {
            return index;
        }
    }
    position("discover").unwrap_or(0)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    config_path: Option<String>,
}

/// `GET|POST /v1/refresh`: reload config, revalidate remote documents, rebuild the catalog.
pub async fn refresh(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let from_body: RefreshBody = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid refresh request: {e}")))?
    };
    let selector = from_body.config_path.or(params.config);
    admit(&runtime, selector.as_deref(), &headers)?;
    let snapshot = runtime.rebuild(true).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "config_invalid", e.to_string())
            .with_plain(e.to_string())
    })?;
    let errors: Vec<_> = snapshot
        .source_errors
        .iter()
        .map(|e| serde_json::json!({ "id": e.source_id, "message": e.message }))
        .collect();
    let body = serde_json::json!({
        "refreshedAt": crate::audit::now_rfc3339(),
        "sources": snapshot.fetches,
        "errors": errors,
        "toolCount": snapshot.catalog.tools.len(),
    });
    Ok(Json(body).into_response())
}

/// `GET /v1/audit/events`: filtered records (`limit`, `since`, `toolId`, `eventType`).
pub async fn audit(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admit(&runtime, params.config.as_deref(), &headers)?;
    let query = AuditQuery::parse(
        params.limit.as_deref(),
        params.since.as_deref(),
        params.tool_id.as_deref(),
        params.event_type.as_deref(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let audit = runtime.clone();
    let events = tokio::task::spawn_blocking(move || audit.audit.read(&query))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "audit read failed",
            )
        })?
        .map_err(|e| {
            tracing::error!("{e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be read",
            )
            .with_retry_after(5)
        })?;
    Ok(Json(events).into_response())
}

/// `GET /v1/auth/browser-config`: browser login metadata (404 until runtime auth is configured).
pub async fn browser_config(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
) -> Result<Response, ApiError> {
    let snapshot = runtime.snapshot();
    binding::check(params.config.as_deref(), &snapshot.loaded.project_path)?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "browser_login_not_configured",
        "browser login is not configured",
    )
    .with_plain("browser login is not configured"))
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
        .with_plain("404 page not found")
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
    .with_plain("method not allowed")
}
