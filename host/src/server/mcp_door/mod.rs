//! `/mcp`: Portcullis as a streamable HTTP MCP server, a second door onto the same call
//! pipeline as `POST /v1/tools/execute`. The door parses JSON-RPC ([`jsonrpc`]), admits the
//! caller exactly as the HTTP routes do (same edge, same authenticator, same audit of a failed
//! authentication), calls [`crate::call::execute`], and maps the answer ([`tools`]).
//!
//! | request | answer |
//! |---|---|
//! | `POST /mcp` `initialize` (2025-06-18, 2025-11-25; [`revision`]) | the negotiated revision, `capabilities.tools`, `serverInfo`; a new `Mcp-Session-Id` ([`sessions`]), recorded (`authenticated_connect` on `mcp.initialize`) when runtime auth is on |
//! | `POST /mcp` any other request of a handshake revision | needs `Mcp-Session-Id` (400 without, 404 unknown or another caller's); `MCP-Protocol-Version`, when sent, may name any handshake-era revision (an unknown one is 400 -32022) |
//! | `POST /mcp` with `MCP-Protocol-Version: 2026-07-28` | stateless: the ladder of [`revision`] (400 on a header mismatch), no session; `server/discover`; a `tools/call`'s `Mcp-Param-*` headers must mirror the arguments its tool's schema marks ([`params`]) |
//! | `tools/list` | the caller's tools: the catalog filtered by the caller's scope envelope, `policy.deny` and managed denies, as `GET /v1/catalog/effective` filters it (OpenAPI and MCP tools alike) |
//! | `tools/call` ([`call`]) | [`crate::call::execute`]: envelope, policy, approval, credentials, audit (every record names the MCP session and client), upstream; see the refusal table below. What an MCP tool's server sends meanwhile (progress, log messages; [`crate::mcp::relay`]) is streamed first when the client accepts SSE ([`stream`]) |
//! | `ping` | `{}` |
//! | `logging/setLevel` | `{}`; the session's log messages below that level are no longer relayed (an unknown level: -32602) |
//! | a notification or a response | 202, no body |
//! | another method | -32601 (HTTP 404 at 2026-07-28, 200 before, as the SDKs answer) |
//! | malformed JSON-RPC | the codes of [`jsonrpc`], HTTP 400 |
//! | `DELETE /mcp` | ends the session (200; 404 unknown; 400 without `Mcp-Session-Id`) |
//! | `GET /mcp` with `Accept: text/event-stream` and the caller's `Mcp-Session-Id` ([`streams`]) | an SSE stream carrying `notifications/tools/list_changed` after every catalog rebuild; 405 without a session id or at 2026-07-28 (no stream there), 404 unknown session, 406 without the `Accept`, 429/503 over the stream limits |
//! | `GET /.well-known/oauth-protected-resource/mcp` | RFC 9728 metadata of the `/mcp` resource, `scopes_supported` = `bundle:<service>` of every service (404 when runtime auth is off) |
//!
//! [`stdio`] is the same door for clients that only launch processes (`portcullis mcp stdio`):
//! a relay onto a running runtime's `/mcp`.
//!
//! A call's refusal, in MCP terms:
//!
//! | refusal | answer |
//! |---|---|
//! | denied by `policy.deny` or a managed deny (outside every envelope) | a tool result with `isError: true` saying so |
//! | outside the caller's envelope otherwise | HTTP 403, `WWW-Authenticate: Bearer error="insufficient_scope", scope="<tool scope>"` naming this resource's metadata (the client may step up) |
//! | policy (approval required included), credentials, bad arguments, upstream failures, the MCP tool's own error | a tool result with `isError: true` and text saying what happened and what to do (how to get approval, which URL to open) |
//! | the audit log cannot be written | -32603; nothing ran |
//!
//! Auth: the same bearer tokens as the HTTP API, validated by the same profile, so a token must
//! carry the runtime's `runtime.server.auth.audience` (an authorization server maps the
//! `/mcp` resource indicator to it); a 401 names this resource's metadata in
//! `resource_metadata`. The caller's token never leaves the runtime: upstream credentials come
//! from `secrets`, as for every call.

mod call;
// `pub(crate)` for the fuzz target (`crate::fuzzing::mcp_message`).
pub(crate) mod jsonrpc;
mod params;
pub(crate) mod revision;
mod sessions;
pub mod stdio;
mod stream;
mod streams;
pub(crate) mod tools;

use std::sync::{Arc, Mutex, Weak};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::sync::watch;

use self::jsonrpc::{Message, RpcError};
use self::revision::{ClientInfo, RoutingHeaders, STATELESS};
use self::sessions::Sessions;
use self::streams::{StreamRefused, Streams};
use self::tools::ToolTable;
use super::error::ApiError;
use super::request_id::RequestId;
use super::routes;
use crate::app::runtime::Runtime;
use crate::app::snapshot::Snapshot;
use crate::audit::AuditMcp;
use crate::authn::Caller;
use crate::authz::Envelope;

/// The door's path.
pub const PATH: &str = "/mcp";
/// Where the `/mcp` resource's RFC 9728 metadata is (the well-known path with the resource's
/// path appended, RFC 9728 section 3.1).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");

/// How long a stateless client may reuse a `tools/list` answer (`ttlMs`): the catalog can be
/// rebuilt at any time, and the stateless revision has no stream to announce it on.
const LIST_TTL_MS: u64 = 60_000;

/// The door's state: the open sessions and their streams, and the tool table of the current
/// catalog.
pub struct McpDoor {
    sessions: Arc<Sessions>,
    streams: Arc<Streams>,
    /// Turns true when the server shuts down: open streams end, so they do not hold the
    /// shutdown's grace period.
    stopping: watch::Receiver<bool>,
    table: Mutex<Option<(Weak<Snapshot>, Arc<ToolTable>)>>,
}

impl McpDoor {
    /// A door with no sessions yet; its streams end when `stopping` turns true.
    pub fn new(stopping: watch::Receiver<bool>) -> Self {
        Self {
            sessions: Arc::default(),
            streams: Arc::default(),
            stopping,
            table: Mutex::default(),
        }
    }

    /// The tool table of `snapshot`'s catalog, built once per snapshot.
    fn table(&self, snapshot: &Arc<Snapshot>) -> Arc<ToolTable> {
        let mut cached = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((of, table)) = cached.as_ref() {
            if std::ptr::eq(of.as_ptr(), Arc::as_ptr(snapshot)) {
                return table.clone();
            }
        }
        let prefixes = tools::name_prefixes(&snapshot.loaded.config);
        let table = Arc::new(ToolTable::build(&snapshot.catalog, &prefixes));
        *cached = Some((Arc::downgrade(snapshot), table.clone()));
        table
    }
}

/// One admitted exchange.
struct Exchange<'r> {
    runtime: &'r Runtime,
    snapshot: &'r Arc<Snapshot>,
    door: &'r McpDoor,
    caller: &'r Caller,
    request_id: &'r RequestId,
    headers: &'r HeaderMap,
    mcp: AuditMcp,
    stateless: bool,
    /// Where a relayed call's notifications go (the client accepts an SSE answer).
    relay: Option<mpsc::Sender<Bytes>>,
    /// The rank of the least severe log level the session wants (`logging/setLevel`).
    log_level: usize,
}

/// What a request is answered with.
enum Answer {
    /// A JSON-RPC result.
    Result(Value),
    /// A JSON-RPC error.
    Error(RpcError),
    /// An HTTP refusal (403 insufficient scope).
    Http(ApiError),
}

/// `POST /mcp`. A client that accepts `text/event-stream` may get what an MCP tool's server
/// sends during its call relayed ([`stream`]); the answer is then an SSE stream, else JSON.
pub async fn post(
    State(runtime): State<Arc<Runtime>>,
    Extension(door): Extension<Arc<McpDoor>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    if !stream::accepts_event_stream(&headers) {
        return handle(runtime, door, request_id, headers, raw, None).await;
    }
    let (sender, notifications) = crate::mcp::relay::channel();
    let answer = handle(runtime, door, request_id, headers, raw, Some(sender));
    stream::respond(Box::pin(answer), notifications).await
}

/// One `POST /mcp`, answered as JSON; `relay` receives the notifications of a relayed call.
async fn handle(
    runtime: Arc<Runtime>,
    door: Arc<McpDoor>,
    request_id: RequestId,
    headers: HeaderMap,
    raw: Bytes,
    relay: Option<mpsc::Sender<Bytes>>,
) -> Response {
    if !accepts_json(&headers) {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "an MCP client must accept application/json",
        )
        .into_response();
    }
    let snapshot = runtime.snapshot();
    let caller = match routes::authenticate(&runtime, &snapshot, &headers, METADATA_PATH).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let routing = routing_headers(&headers);
    let message = match jsonrpc::parse(&raw) {
        Ok(message) => message,
        Err(error) => return rpc_error(&error, false),
    };
    // A revision header that is not a handshake revision makes the request stateless (the
    // ladder then answers an unknown revision precisely).
    let stateless = routing
        .protocol_version
        .is_some_and(|v| !revision::is_handshake(v));
    let mut exchange = Exchange {
        runtime: &runtime,
        snapshot: &snapshot,
        door: &door,
        caller: &caller,
        request_id: &request_id,
        headers: &headers,
        mcp: AuditMcp {
            session_id: None,
            protocol_version: STATELESS.into(),
            client_name: None,
            client_version: None,
        },
        stateless,
        relay,
        log_level: 0,
    };
    let (id, method, params) = match message {
        Message::Request { id, method, params } => (id, method, params),
        Message::Notification { .. } | Message::Response if stateless => {
            if routing.protocol_version != Some(STATELESS) {
                let version = routing.protocol_version.unwrap_or_default();
                let error = RpcError::new(
                    Value::Null,
                    jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
                    "Unsupported protocol version",
                )
                .with_data(revision::unsupported(version));
                return rpc_error(&error, true);
            }
            return StatusCode::ACCEPTED.into_response();
        }
        Message::Notification { .. } | Message::Response => {
            return match exchange.session(&Value::Null) {
                Ok(()) => StatusCode::ACCEPTED.into_response(),
                Err(error) => rpc_error(&error, false),
            };
        }
    };
    if stateless {
        // A request that names a revision this door does not know, and is not shaped as a
        // stateless one, is told which revisions are served (not that its envelope is missing).
        let version = routing.protocol_version.unwrap_or_default();
        if version != STATELESS && !params.contains_key("_meta") {
            let error = RpcError::new(
                id,
                jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
            )
            .with_data(revision::unsupported(version));
            return rpc_error(&error, true);
        }
        match revision::check_stateless(&id, &method, &params, &routing) {
            Ok(client) => exchange.client(client),
            Err(error) => return rpc_error(&error, true),
        }
    } else if method == "initialize" {
        return exchange.initialize(&id, &params).await;
    } else if let Err(error) = exchange.session(&id) {
        return rpc_error(&error, false);
    }
    let answer = exchange.dispatch(&id, &method, params).await;
    match answer {
        Answer::Result(mut result) => {
            if stateless {
                result["resultType"] = "complete".into();
            }
            json_response(StatusCode::OK, &jsonrpc::success(&id, result))
        }
        Answer::Error(error) => rpc_error(&error, stateless),
        Answer::Http(error) => error.into_response(),
    }
}

/// `DELETE /mcp`: end the caller's session.
pub async fn delete(
    State(runtime): State<Arc<Runtime>>,
    Extension(door): Extension<Arc<McpDoor>>,
    headers: HeaderMap,
) -> Response {
    let snapshot = runtime.snapshot();
    let caller = match routes::authenticate(&runtime, &snapshot, &headers, METADATA_PATH).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let Some(id) = session_header(&headers) else {
        return rpc_error(&missing_session(), false);
    };
    if door.sessions.end(id, caller.principal.as_deref()) {
        door.streams.end(id);
        return StatusCode::OK.into_response();
    }
    rpc_error(&unknown_session(&Value::Null), false)
}

/// `GET /mcp`: the session's server-to-client stream ([`streams`]). Admitted as `POST` is
/// (the edge's Origin and Host checks, the same authentication); 405 where no stream is
/// offered: without a session id (the transport's answer a client probing before `initialize`
/// falls back on) and at 2026-07-28, which has none.
pub async fn get(
    State(runtime): State<Arc<Runtime>>,
    Extension(door): Extension<Arc<McpDoor>>,
    headers: HeaderMap,
) -> Response {
    let stateless = routing_headers(&headers)
        .protocol_version
        .is_some_and(|v| !revision::is_handshake(v));
    let Some(session) = session_header(&headers).filter(|_| !stateless) else {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST, DELETE"))],
        )
            .into_response();
    };
    let snapshot = runtime.snapshot();
    let caller = match routes::authenticate(&runtime, &snapshot, &headers, METADATA_PATH).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    drop(snapshot);
    if !accepts_event_stream(&headers) {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "GET /mcp opens an event stream: send Accept: text/event-stream",
        )
        .into_response();
    }
    let principal = caller.principal;
    if door.sessions.touch(session, principal.as_deref()).is_none() {
        return rpc_error(&unknown_session(&Value::Null), false);
    }
    let (slot, ended) = match door.streams.open(session, principal.as_deref()) {
        Ok(opened) => opened,
        Err(refused) => {
            let status = match refused {
                StreamRefused::PerPrincipal => StatusCode::TOO_MANY_REQUESTS,
                StreamRefused::Total => StatusCode::SERVICE_UNAVAILABLE,
            };
            return ApiError::new(status, "too_many_streams", refused.to_string()).into_response();
        }
    };
    let events = streams::events(streams::Watch {
        slot,
        ended,
        catalog: runtime.catalog_rebuilds(),
        stopping: door.stopping.clone(),
        sessions: door.sessions.clone(),
        principal,
    });
    axum::response::sse::Sse::new(events).into_response()
}

/// `GET /.well-known/oauth-protected-resource/mcp`: RFC 9728 metadata of the `/mcp` resource
/// (404 when runtime auth is off).
pub async fn protected_resource(State(runtime): State<Arc<Runtime>>) -> Response {
    let snapshot = runtime.snapshot();
    let Some(settings) = snapshot.authenticator.settings() else {
        return routes::not_found().await.into_response();
    };
    let mut body = json!({
        "resource": format!("{}{PATH}", runtime.options.url.trim_end_matches('/')),
        "bearer_methods_supported": ["header"],
        "resource_name": "Portcullis MCP gateway",
    });
    if let Some(issuer) = &settings.issuer {
        body["authorization_servers"] = json!([issuer]);
    }
    // The scopes that open tools here, one per service: MCP clients request these when the
    // 401 names none (the SDKs ignore a scope configured on their side then), and the
    // authorization server grants each client what it may have.
    let [bundle, _, _] = snapshot.authenticator.prefixes();
    let scopes: Vec<String> = snapshot
        .catalog
        .services
        .iter()
        .map(|service| format!("{bundle}{}", service.id))
        .collect();
    body["scopes_supported"] = scopes.into();
    Json(body).into_response()
}

impl Exchange<'_> {
    fn client(&mut self, client: ClientInfo) {
        self.mcp.client_name = client.name;
        self.mcp.client_version = client.version;
    }

    /// `initialize`: negotiate, open a session.
    /// With runtime auth on, the new session is recorded (`authenticated_connect` on
    /// `mcp.initialize`, naming the session and client), durably before it is answered.
    async fn initialize(&mut self, id: &Value, params: &Map<String, Value>) -> Response {
        let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
            let error = RpcError::new(
                id.clone(),
                jsonrpc::INVALID_PARAMS,
                "Invalid params: initialize needs protocolVersion",
            );
            return rpc_error(&error, false);
        };
        let version = revision::negotiate(Some(requested));
        let client = ClientInfo::from_value(params.get("clientInfo"));
        let session =
            self.door
                .sessions
                .open(self.caller.principal.as_deref(), version, client.clone());
        if self.snapshot.authenticator.required() {
            self.mcp.session_id = Some(session.clone());
            self.mcp.protocol_version = version.into();
            self.client(client);
            let mut event = routes::caller_event(
                self.runtime,
                self.headers,
                self.caller,
                "authenticated_connect",
                "mcp.initialize",
                "authenticated_connect",
            );
            event.mcp = Some(self.mcp.clone());
            if routes::record_all_or_refuse(self.runtime, vec![event])
                .await
                .is_err()
            {
                self.door
                    .sessions
                    .end(&session, self.caller.principal.as_deref());
                return rpc_error(&audit_unavailable(id), false);
            }
        }
        let result = json!({
            "protocolVersion": version,
            "capabilities": capabilities(false),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        });
        let mut response = json_response(StatusCode::OK, &jsonrpc::success(id, result));
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        response
    }

    /// A handshake-revision request's session: present and the caller's.
    fn session(&mut self, id: &Value) -> Result<(), RpcError> {
        let Some(session_id) = session_header(self.headers) else {
            return Err(missing_session());
        };
        let Some(session) = self
            .door
            .sessions
            .touch(session_id, self.caller.principal.as_deref())
        else {
            return Err(unknown_session(id));
        };
        self.mcp.session_id = Some(session_id.to_owned());
        self.mcp.protocol_version = session.protocol_version.into();
        self.log_level = session.log_level;
        self.client(session.client);
        Ok(())
    }

    async fn dispatch(&self, id: &Value, method: &str, params: Map<String, Value>) -> Answer {
        match method {
            "ping" => Answer::Result(json!({})),
            "tools/list" => self.list().await,
            "tools/call" => self.call(id, params).await,
            "logging/setLevel" => self.set_level(id, &params),
            "server/discover" if self.stateless => Answer::Result(json!({
                "supportedVersions": revision::SUPPORTED,
                "capabilities": capabilities(true),
                "instructions": INSTRUCTIONS,
                "_meta": { revision::META_SERVER_INFO: server_info() },
                "ttlMs": LIST_TTL_MS,
                "cacheScope": "public",
            })),
            _ => Answer::Error(RpcError::new(
                id.clone(),
                jsonrpc::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            )),
        }
    }

    /// `logging/setLevel`: the least severe level of the log messages relayed to this session
    /// from now on (stateless requests name theirs in `_meta`, so there is nothing to keep).
    fn set_level(&self, id: &Value, params: &Map<String, Value>) -> Answer {
        let level = params.get("level").and_then(Value::as_str);
        let Some(rank) = level.and_then(crate::mcp::relay::level_rank) else {
            return Answer::Error(RpcError::new(
                id.clone(),
                jsonrpc::INVALID_PARAMS,
                format!(
                    "Invalid params: level must be one of {}",
                    crate::mcp::relay::LEVELS.join(", ")
                ),
            ));
        };
        if let Some(session) = &self.mcp.session_id {
            let principal = self.caller.principal.as_deref();
            if !self.door.sessions.set_log_level(session, principal, rank) {
                return Answer::Error(unknown_session(id));
            }
        }
        Answer::Result(json!({}))
    }

    /// `tools/list`: the caller's envelope over the snapshot's table.
    async fn list(&self) -> Answer {
        let snapshot = self.snapshot;
        let table = self.door.table(snapshot);
        let envelope = Envelope::for_caller(
            self.caller,
            &snapshot.authenticator,
            &snapshot.catalog,
            &snapshot.policy,
        );
        if snapshot.authenticator.required() {
            let mut event = routes::caller_event(
                self.runtime,
                self.headers,
                self.caller,
                "catalog_filtered",
                "mcp.tools_list",
                "catalog_filtered",
            );
            event.mcp = Some(self.mcp.clone());
            if let Err(error) = routes::record_all_or_refuse(self.runtime, vec![event]).await {
                tracing::debug!("tools/list refused: {}", error.code());
                return Answer::Error(audit_unavailable(&Value::Null));
            }
        }
        let tools: Vec<&Value> = table.list(|id| envelope.permits(id)).collect();
        let mut result = json!({ "tools": tools });
        if self.stateless {
            result["ttlMs"] = LIST_TTL_MS.into();
            result["cacheScope"] = "private".into();
        }
        Answer::Result(result)
    }
}

const INSTRUCTIONS: &str = "Portcullis runs each tool call through its policy: the tools listed are the ones your token may call; a call may be refused by policy or need approval, and the tool result then says why and what to do.";

/// `listChanged`: a handshake-revision session can open the stream that carries the
/// notification; 2026-07-28 has no stream (stateless clients re-list after `ttlMs`).
/// `logging`: log messages an MCP tool's server sends during a call are relayed.
fn capabilities(stateless: bool) -> Value {
    json!({ "tools": { "listChanged": !stateless }, "logging": {} })
}

fn server_info() -> Value {
    json!({ "name": "portcullis", "title": "Portcullis", "version": env!("CARGO_PKG_VERSION") })
}

fn missing_session() -> RpcError {
    RpcError::new(
        Value::Null,
        jsonrpc::INVALID_REQUEST,
        "Bad Request: Mcp-Session-Id header is required (send initialize first)",
    )
}

fn unknown_session(id: &Value) -> RpcError {
    RpcError::new(
        id.clone(),
        jsonrpc::SESSION_NOT_FOUND,
        "Session not found: it ended or belongs to another caller; send initialize to open a new one",
    )
}

fn audit_unavailable(id: &Value) -> RpcError {
    RpcError::new(
        id.clone(),
        jsonrpc::INTERNAL_ERROR,
        "the audit log cannot be written; nothing was done, retry later",
    )
}

/// The HTTP status of a JSON-RPC error: the stateless revision's table (400 for a bad message
/// or header, 404 for an unknown method); before it, 400 for a bad message and 404 for an
/// unknown session, the rest with 200 as the SDKs answer.
fn rpc_error(error: &RpcError, stateless: bool) -> Response {
    use jsonrpc::*;
    let status = match error.code {
        PARSE_ERROR | INVALID_REQUEST => StatusCode::BAD_REQUEST,
        SESSION_NOT_FOUND => StatusCode::NOT_FOUND,
        INVALID_PARAMS | HEADER_MISMATCH | UNSUPPORTED_PROTOCOL_VERSION if stateless => {
            StatusCode::BAD_REQUEST
        }
        METHOD_NOT_FOUND if stateless => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    json_response(status, &error.to_json())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

/// Whether the client accepts a JSON answer (`application/json`, `application/*`, `*/*`, or
/// no `Accept` at all).
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|media| {
            media.eq_ignore_ascii_case("application/json")
                || media == "*/*"
                || media.eq_ignore_ascii_case("application/*")
        })
}

/// Whether the client accepts an event stream (`text/event-stream`, `text/*` or `*/*`).
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|media| {
            media.eq_ignore_ascii_case("text/event-stream")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
        })
}

fn routing_headers(headers: &HeaderMap) -> RoutingHeaders<'_> {
    let mut routing = RoutingHeaders::default();
    let mut read = |name: &HeaderName, label: &'static str| {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            routing.unreadable = Some(label);
            return None;
        }
        match first.map(|v| v.to_str()) {
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => {
                routing.unreadable = Some(label);
                None
            }
            None => None,
        }
    };
    let protocol_version = read(&VERSION_HEADER, "MCP-Protocol-Version");
    let method = read(&METHOD_HEADER, "Mcp-Method");
    let name = read(&NAME_HEADER, "Mcp-Name");
    routing.protocol_version = protocol_version;
    routing.method = method;
    routing.name = name;
    routing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_acceptable_unless_the_client_refuses_it() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, accept.parse().unwrap());
            accepts_json(&headers)
        };
        assert!(accepts_json(&HeaderMap::new()));
        assert!(with("application/json, text/event-stream"));
        assert!(with("*/*"));
        assert!(!with("text/event-stream"));
        assert!(!with("text/html"));
    }

    #[test]
    fn a_duplicated_routing_header_is_noticed() {
        let mut headers = HeaderMap::new();
        headers.append(METHOD_HEADER, "tools/list".parse().unwrap());
        headers.append(METHOD_HEADER, "tools/call".parse().unwrap());
        assert_eq!(routing_headers(&headers).unreadable, Some("Mcp-Method"));
    }
}
