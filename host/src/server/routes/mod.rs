//! Route handlers. Each one is thin: bind config, authenticate, then call into the pipeline.

mod execute;
mod lifecycle;
mod oauth_callback;
mod policy;
mod request;
mod workflows;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;

pub use execute::execute;
pub use lifecycle::{heartbeat, session_close, stop, STOP_SCOPE};
pub use oauth_callback::{oauth_callback, oauth_confirm};
pub use policy::{approve, explain};
pub use workflows::run_workflow;

pub(super) use request::decoded_call;

use super::binding;
use super::error::ApiError;
use super::request_id::RequestId;
use crate::app::runtime::Runtime;
use crate::app::snapshot::{RenderedView, Snapshot};
use crate::audit::{AuditDecision, AuditEvent, AuditQuery, QueryParams};
use crate::authn::{AuthnFailure, Caller};
use crate::authz::Envelope;
use crate::call::{Admitted, Refusal, Stages};
use crate::config::Mode;

/// The open-cli contract version we implement.
pub const CONTRACT_VERSION: &str = "1.1";

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
    from: Option<String>,
    to: Option<String>,
    principal: Option<String>,
    decision: Option<String>,
    cursor: Option<String>,
}

/// Bind the config, then authenticate: nothing expensive happens before both pass. A failure
/// is audited (`authn_failure`) on every endpoint and answered with an RFC 6750 challenge.
async fn admit(
    runtime: &Runtime,
    selector: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Arc<Snapshot>, Caller), ApiError> {
    let snapshot = runtime.snapshot();
    binding::check(selector, &snapshot.loaded.project_path)?;
    let caller = authenticate(runtime, &snapshot, headers, PROTECTED_RESOURCE_METADATA).await?;
    Ok((snapshot, caller))
}

/// The well-known path of the API's RFC 9728 metadata.
pub(super) const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

/// Authenticate against `snapshot`; a failure is audited and challenged with the metadata at
/// `metadata_path` (each protected resource names its own, RFC 9728 section 5.1).
pub(super) async fn authenticate(
    runtime: &Runtime,
    snapshot: &Snapshot,
    headers: &HeaderMap,
    metadata_path: &str,
) -> Result<Caller, ApiError> {
    match snapshot.authenticator.authenticate(headers).await {
        Ok(caller) => Ok(caller),
        Err(failure) => Err(reject(runtime, headers, &failure, metadata_path).await),
    }
}

/// The admitted call of one request: the snapshot's stages, the caller and the request.
pub(super) fn admitted<'a>(
    runtime: &'a Runtime,
    snapshot: &'a Snapshot,
    caller: &'a Caller,
    request_id: &'a RequestId,
    headers: &HeaderMap,
    agent_profile: Option<&'a str>,
) -> Admitted<'a> {
    Admitted {
        stages: Stages {
            tools: snapshot,
            catalog: &snapshot.catalog,
            authenticator: &snapshot.authenticator,
            policy: &snapshot.policy,
            secrets: &snapshot.secrets,
            upstream: &snapshot.upstream,
            mcp: &snapshot.mcp,
            approvals: &runtime.approvals,
            audit: &runtime.audit,
        },
        caller,
        request_id: request_id.as_str(),
        token_hash: token_hash(runtime, headers),
        agent_profile,
        status_of: super::refusal::status_of,
        workflow: None,
        mcp: None,
        relay: None,
    }
}

/// A refusal as the HTTP answer ([`super::refusal`]), with the challenge it calls for.
fn refused(runtime: &Runtime, refusal: Refusal) -> ApiError {
    let challenge = super::refusal::challenge(&refusal).map(|(error, scope)| {
        let challenge = challenge(runtime, Some(error));
        match scope {
            Some(scope) => format!("{challenge}, scope=\"{scope}\""),
            None => challenge,
        }
    });
    let error = ApiError::from(refusal);
    match challenge {
        Some(challenge) => error.with_challenge(challenge),
        None => error,
    }
}

/// `WWW-Authenticate` for this runtime (RFC 6750 section 3, RFC 9728 section 5.1).
pub(super) fn challenge(runtime: &Runtime, error: Option<&str>) -> String {
    challenge_at(runtime, PROTECTED_RESOURCE_METADATA, error)
}

/// [`challenge`] naming the metadata at `metadata_path`.
pub(super) fn challenge_at(runtime: &Runtime, metadata_path: &str, error: Option<&str>) -> String {
    let metadata = format!(
        "{}{metadata_path}",
        runtime.options.url.trim_end_matches('/')
    );
    match error {
        Some(error) => format!(
            "Bearer realm=\"portcullis\", error=\"{error}\", resource_metadata=\"{metadata}\""
        ),
        None => format!("Bearer realm=\"portcullis\", resource_metadata=\"{metadata}\""),
    }
}

/// The response to a failed authentication, after auditing it. The client sees only a generic
/// code; the reason is in the audit record and the log (with a token hash, never the token).
async fn reject(
    runtime: &Runtime,
    headers: &HeaderMap,
    failure: &AuthnFailure,
    metadata_path: &str,
) -> ApiError {
    let challenge = |error| challenge_at(runtime, metadata_path, error);
    let error = match failure {
        AuthnFailure::NoCredentials => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authn_failed",
            "a bearer token is required",
        )
        .with_challenge(challenge(None)),
        AuthnFailure::InvalidToken { .. } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authn_failed",
            "the bearer token is not valid",
        )
        .with_challenge(challenge(Some("invalid_token"))),
        AuthnFailure::InvalidRequest => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send exactly one Authorization header",
        )
        .with_challenge(challenge(Some("invalid_request"))),
        AuthnFailure::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "authn_unavailable",
            "the identity provider cannot be reached; retry later",
        )
        .with_retry_after(5),
    };
    let mut event = AuditEvent::new(
        "authn_failure",
        "runtime.authn_failure",
        AuditDecision::Denied,
        "authn_failed",
    );
    event.status_code = Some(error.status().as_u16());
    event.token_hash = token_hash(runtime, headers);
    record_or_refuse(runtime, event)
        .await
        .err()
        .unwrap_or(error)
}

/// Record an audit event (with the request's id unless it names one); if it cannot be
/// recorded, the request is refused (503).
async fn record_or_refuse(runtime: &Runtime, event: AuditEvent) -> Result<(), ApiError> {
    record_all_or_refuse(runtime, vec![event]).await
}

/// [`record_or_refuse`] for several records of one request, acknowledged together.
pub(super) async fn record_all_or_refuse(
    runtime: &Runtime,
    mut events: Vec<AuditEvent>,
) -> Result<(), ApiError> {
    let request_id = crate::server::request_id::current();
    for event in &mut events {
        if event.request_id.is_none() {
            event.request_id.clone_from(&request_id);
        }
    }
    runtime.audit.record_all(events).await.map_err(|e| {
        tracing::debug!("refusing request: {e}");
        Refusal::AuditUnavailable(e).into()
    })
}

/// The keyed hash of the request's bearer token for audit records (never the token itself).
pub(super) fn token_hash(runtime: &Runtime, headers: &HeaderMap) -> Option<String> {
    match crate::authn::credentials(headers) {
        crate::authn::Credentials::Bearer(token) => Some(runtime.audit.token_hash(token.expose())),
        _ => None,
    }
}

pub(super) fn caller_event(
    runtime: &Runtime,
    headers: &HeaderMap,
    caller: &Caller,
    event_type: &str,
    tool_id: &str,
    reason: &str,
) -> AuditEvent {
    let mut event = AuditEvent::new(event_type, tool_id, AuditDecision::Allowed, reason);
    event.principal = caller.principal.clone();
    event.lineage = caller.lineage.clone();
    event.token_hash = token_hash(runtime, headers);
    event
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

fn parse_mode(raw: Option<&str>) -> Result<Option<Mode>, Refusal> {
    match raw.filter(|m| !m.is_empty()) {
        None => Ok(None),
        Some("discover") => Ok(Some(Mode::Discover)),
        Some("curated") => Ok(Some(Mode::Curated)),
        Some(_) => Err(Refusal::InvalidRequest(
            "mode must be discover or curated".into(),
        )),
    }
}

/// `GET /v1/runtime/info`: the handshake. Works without a token.
pub async fn info(
    State(runtime): State<Arc<Runtime>>,
    axum::Extension(lifecycle): axum::Extension<Arc<super::lifecycle::Lifecycle>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The handshake works without a token; a token that is sent must be valid (contract 1.7).
    let authenticated = headers.contains_key(header::AUTHORIZATION);
    let (snapshot, caller) = if authenticated {
        admit(&runtime, params.config.as_deref(), &headers).await?
    } else {
        let snapshot = runtime.snapshot();
        binding::check(params.config.as_deref(), &snapshot.loaded.project_path)?;
        (snapshot, Caller::default())
    };
    let options = &runtime.options;
    let authenticator = &snapshot.authenticator;
    let prefixes = authenticator.prefixes();
    let settings = authenticator.settings();
    let mut auth = serde_json::json!({
        "required": authenticator.required(),
        "scopePrefixes": prefixes,
        "tokenValidationProfiles": authenticator.profile_name().into_iter().collect::<Vec<_>>(),
        "browserLogin": {
            "configured": settings.is_some_and(|s| s.browser_login()),
            "configEndpoint": "/v1/auth/browser-config",
        },
        "authorizationEnvelope": { "version": "1.0", "scopePrefixes": prefixes },
    });
    if let Some(audience) = settings.and_then(|s| s.audience.clone()) {
        auth["audience"] = audience.into();
    }
    if let Some(principal) = caller.principal {
        auth["principal"] = principal.into();
    }
    let mut body = serde_json::json!({
        "contractVersion": CONTRACT_VERSION,
        "capabilities": ["catalog", "execute", "refresh", "audit", "brokered-auth", "authorization-envelope", "problem-json"],
        "instanceId": options.instance_id,
        "url": options.url,
        "runtimeMode": "remote",
        "auth": auth,
    });
    // Filesystem paths tell an attacker where the audit log and state live: with runtime auth
    // on, only an authenticated caller sees them.
    if !authenticator.required() || authenticated {
        body["auditPath"] = serde_json::json!(options.audit_path);
        body["stateDir"] = serde_json::json!(options.state_dir);
        body["cacheDir"] = serde_json::json!(options.cache_dir);
    }
    if let Some(leases) = lifecycle.info() {
        body["lifecycle"] = leases;
    }
    Ok(Json(body).into_response())
}

/// `GET /v1/catalog/effective`: the catalog and the selected view, pre-rendered per view.
pub async fn catalog(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers).await?;
    let mode = parse_mode(params.mode.as_deref())?;
    let index = select_view(&snapshot, mode, params.agent_profile.as_deref());
    // A restricted caller never gets the pre-rendered (unfiltered) bytes. Its envelope is a pure
    // function of its scopes, so the filtered body is rendered once per scope set and snapshot.
    if snapshot.authenticator.required() {
        let connect = caller_event(
            &runtime,
            &headers,
            &caller,
            "authenticated_connect",
            "runtime.authenticated_connect",
            "authenticated_connect",
        );
        let mut event = connect;
        event.status_code = Some(200);
        let filtered_event = caller_event(
            &runtime,
            &headers,
            &caller,
            "catalog_filtered",
            "catalog.effective",
            "catalog_filtered",
        );
        // Both are durable before the answer, through one wait for the disk.
        record_all_or_refuse(&runtime, vec![event, filtered_event]).await?;
        #[derive(serde::Serialize)]
        struct Body<'a> {
            catalog: &'a crate::catalog::Catalog,
            view: Option<&'a crate::catalog::EffectiveView>,
        }
        let rendered = snapshot.filtered_view(index, &caller.scopes, || {
            let envelope = Envelope::for_caller(
                &caller,
                &snapshot.authenticator,
                &snapshot.catalog,
                &snapshot.policy,
            );
            let filtered = envelope.filter(&snapshot.catalog).unwrap_or_default();
            serde_json::to_vec(&Body {
                catalog: &filtered,
                view: filtered.effective_views.get(index),
            })
            .unwrap_or_default()
        });
        return Ok(rendered_response(rendered, &headers));
    }
    let rendered = snapshot.rendered_view(index).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "catalog has no views",
        )
    })?;
    Ok(rendered_response(rendered, &headers))
}

/// A rendered catalog body, gzip-encoded when the client accepts it.
fn rendered_response(rendered: RenderedView, headers: &HeaderMap) -> Response {
    if accepts_gzip(headers) {
        let mut response = json_response(rendered.gzip);
        let response_headers = response.headers_mut();
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return response;
    }
    json_response(rendered.identity)
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

/// The scope that lets a caller force a rebuild when runtime auth is on.
pub const REFRESH_SCOPE: &str = "runtime:refresh";

/// `POST /v1/refresh`: reload config, revalidate remote documents, rebuild the catalog. With
/// runtime auth on, the caller needs the `runtime:refresh` scope (403 `insufficient_scope`,
/// audited as `authz_denial` on `runtime.refresh`).
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
    let (snapshot, caller) = admit(&runtime, selector.as_deref(), &headers).await?;
    require_scope(
        &runtime,
        &snapshot,
        &caller,
        &headers,
        REFRESH_SCOPE,
        "runtime.refresh",
        "refreshing the catalog",
    )
    .await?;
    let authenticated = snapshot.authenticator.required();
    drop(snapshot);
    let snapshot = runtime.rebuild(true).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "config_invalid", e.to_string())
            .with_plain(e.to_string())
    })?;
    if authenticated {
        // The reference runtime's event for an authenticated refresh (its name says token, it
        // is a catalog refresh).
        let mut event = caller_event(
            &runtime,
            &headers,
            &caller,
            "token_refresh",
            "runtime.token_refresh",
            "token_refresh",
        );
        event.status_code = Some(200);
        record_or_refuse(&runtime, event).await?;
    }
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

/// The scope that lets a caller read the audit log when runtime auth is on.
pub const AUDIT_READ_SCOPE: &str = "audit:read";

/// `GET /v1/audit/events`: filtered records, paged by cursor (see [`AuditQuery`]).
///
/// With runtime auth on, the caller needs the `audit:read` scope (403 `insufficient_scope`,
/// audited as `authz_denial` on `runtime.audit`). Without `cursor` the body is the open-cli
/// array (most recent `limit` matches) and `X-Next-Cursor` resumes after the newest record;
/// with `cursor` (empty = from the start) it is `{"events","nextCursor","hasMore"}`.
pub async fn audit(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, caller) = admit(&runtime, params.config.as_deref(), &headers).await?;
    require_scope(
        &runtime,
        &snapshot,
        &caller,
        &headers,
        AUDIT_READ_SCOPE,
        "runtime.audit",
        "reading the audit log",
    )
    .await?;
    let query = AuditQuery::parse(QueryParams {
        limit: params.limit.as_deref(),
        since: params.since.as_deref(),
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        principal: params.principal.as_deref(),
        tool_id: params.tool_id.as_deref(),
        event_type: params.event_type.as_deref(),
        decision: params.decision.as_deref(),
        cursor: params.cursor.as_deref(),
    })
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Read-your-writes: outcomes answered before this read are queued, not yet synced.
    if let Err(e) = runtime.audit.sync().await {
        tracing::debug!("reading the audit log while it is failing: {e}");
    }
    let audit = runtime.clone();
    let paged = query.is_paged();
    let page = tokio::task::spawn_blocking(move || audit.audit.page(&query))
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
    if paged {
        return Ok(Json(page).into_response());
    }
    let mut response = Json(page.events).into_response();
    if let Ok(cursor) = HeaderValue::from_str(&page.next_cursor) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

/// With runtime auth on, refuse a caller without `scope` for a runtime operation (403
/// `insufficient_scope`, audited as `authz_denial` on `tool_id`).
async fn require_scope(
    runtime: &Runtime,
    snapshot: &Snapshot,
    caller: &Caller,
    headers: &HeaderMap,
    scope: &str,
    tool_id: &str,
    what: &str,
) -> Result<(), ApiError> {
    if !snapshot.authenticator.required() || caller.scopes.iter().any(|s| s == scope) {
        return Ok(());
    }
    let error = ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("{what} needs the {scope} scope"),
    )
    .with_challenge(format!(
        "{}, scope=\"{scope}\"",
        challenge(runtime, Some("insufficient_scope"))
    ));
    let mut event = caller_event(
        runtime,
        headers,
        caller,
        "authz_denial",
        tool_id,
        "insufficient_scope",
    );
    // No `statusCode` on a denial, as in the reference runtime.
    event.decision = AuditDecision::Denied;
    record_or_refuse(runtime, event).await?;
    Err(error)
}

/// `GET /v1/auth/browser-config`: browser login metadata (contract 1.6); 404 unless
/// `authorizationURL`, `tokenURL` and `browserClientId` are all configured.
pub async fn browser_config(
    State(runtime): State<Arc<Runtime>>,
    Query(params): Query<GetParams>,
) -> Result<Response, ApiError> {
    let snapshot = runtime.snapshot();
    binding::check(params.config.as_deref(), &snapshot.loaded.project_path)?;
    let authenticator = &snapshot.authenticator;
    if let Some(settings) = authenticator.settings().filter(|s| s.browser_login()) {
        let prefixes = authenticator.prefixes();
        let body = serde_json::json!({
            "authorizationURL": settings.authorization_url,
            "tokenURL": settings.token_url,
            "clientId": settings.browser_client_id,
            "audience": settings.audience.clone().unwrap_or_default(),
            "required": true,
            "scopePrefixes": prefixes,
            "tokenValidationProfiles": authenticator.profile_name().into_iter().collect::<Vec<_>>(),
            "authorizationEnvelope": { "version": "1.0", "scopePrefixes": prefixes },
        });
        return Ok(Json(body).into_response());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "browser_login_not_configured",
        "browser login is not configured",
    )
    .with_plain("browser login is not configured"))
}

/// `GET /.well-known/oauth-protected-resource`: RFC 9728 metadata (404 when auth is off).
pub async fn protected_resource(State(runtime): State<Arc<Runtime>>) -> Result<Response, ApiError> {
    let snapshot = runtime.snapshot();
    let Some(settings) = snapshot.authenticator.settings() else {
        return Err(not_found().await);
    };
    let mut body = serde_json::json!({
        "resource": runtime.options.url.trim_end_matches('/'),
        "bearer_methods_supported": ["header"],
        "resource_name": "Portcullis",
    });
    if let Some(issuer) = &settings.issuer {
        body["authorization_servers"] = serde_json::json!([issuer]);
    }
    Ok(Json(body).into_response())
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
