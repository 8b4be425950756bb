//! The browser boundary (security cases R01, H09; DNS rebinding): one middleware that decides,
//! from headers alone and before authentication or body parsing, whether a request may reach a
//! handler at all.
//!
//! | check, in order | rule | refused with |
//! |---|---|---|
//! | `Host` | exactly one, naming this runtime: a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or the address the connection arrived on, with the listen port; or the host (and port) of a `runtime.server.publicUrls` entry | 400 `invalid_host` (missing, repeated, malformed); 421 `misdirected_request` |
//! | network without auth | runtime auth off on a non-loopback listen address only with `--allow-unauthenticated-network` (checked per request too, so a reload that turns auth off cannot open the network) | 503 `unauthenticated_network` |
//! | `Origin` | absent, an origin of this runtime itself, or exactly one of `runtime.server.cors.allowedOrigins`; `null` never matches | 403 `cross_origin_refused` |
//! | `Sec-Fetch-Site` | `cross-site` and `same-site` (another port on localhost is "same site") only from an allowed CORS origin; the one exception is the browser's top-level `GET /v1/oauth/callback`, whose single-use `state` is its credential | 403 `cross_origin_refused` |
//! | preflight | `OPTIONS` with `Access-Control-Request-Method` from an allowed origin is answered here (204) and never reaches a handler; the real request is authenticated as usual | 403 for other origins |
//! | body type | every method but `GET`, `HEAD`, `OPTIONS` and `DELETE` (which carries no body: MCP clients end a session with a bare `DELETE /mcp`) needs `Content-Type: application/json` (parameters such as `charset` allowed), also with an empty body | 415 `unsupported_media_type` |
//!
//! An allowed origin gets `Access-Control-Allow-Origin` with its own value (never `*`, never a
//! reflected unknown origin), `Vary: Origin`, and the headers a client reads exposed. No
//! `Access-Control-Allow-Credentials`: the runtime uses bearer tokens, not cookies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::runtime::Runtime;
use crate::app::snapshot::Snapshot;
use crate::net::BrowserOrigin;

/// The `serve` flag that lets a runtime without auth listen on a non-loopback address.
pub const ALLOW_UNAUTHENTICATED_NETWORK_FLAG: &str = "--allow-unauthenticated-network";

/// The address of the connection a request arrived on (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// What the edge matches against, derived once per config snapshot.
struct Rules {
    snapshot: Arc<Snapshot>,
    public: Vec<url::Url>,
    cors: Vec<BrowserOrigin>,
}

impl Rules {
    fn of(snapshot: Arc<Snapshot>) -> Self {
        let server = snapshot
            .loaded
            .config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref());
        let public = server
            .and_then(|s| s.public_urls.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(u).ok())
            .collect();
        let cors = server
            .and_then(|s| s.cors.as_ref())
            .and_then(|c| c.allowed_origins.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|o| BrowserOrigin::parse(o))
            .collect();
        Self {
            snapshot,
            public,
            cors,
        }
    }

    /// Whether `host[:port]` names this runtime for a connection that arrived on `local`.
    fn names_this_runtime(&self, host: &str, port: Option<u16>, local: SocketAddr) -> bool {
        let local_ip = match local.ip().to_canonical() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        if port.unwrap_or(80) == local.port()
            && (matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host == local_ip)
        {
            return true;
        }
        self.public.iter().any(|url| {
            url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                && match port {
                    Some(port) => url.port_or_known_default() == Some(port),
                    None => url.port().is_none(),
                }
        })
    }
}

/// State of the edge middleware.
pub struct Edge {
    runtime: Arc<Runtime>,
    bound: SocketAddr,
    allow_unauthenticated_network: bool,
    rules: ArcSwapOption<Rules>,
}

impl Edge {
    /// The edge of a runtime listening on `bound`.
    pub fn new(
        runtime: Arc<Runtime>,
        bound: SocketAddr,
        allow_unauthenticated_network: bool,
    ) -> Self {
        Self {
            runtime,
            bound,
            allow_unauthenticated_network,
            rules: ArcSwapOption::empty(),
        }
    }

    fn rules(&self) -> Arc<Rules> {
        let snapshot = self.runtime.snapshot();
        if let Some(rules) = self.rules.load_full() {
            if Arc::ptr_eq(&rules.snapshot, &snapshot) {
                return rules;
            }
        }
        let rules = Arc::new(Rules::of(snapshot));
        self.rules.store(Some(rules.clone()));
        rules
    }

    /// Whether the current config leaves a network-reachable listener without auth.
    pub fn unauthenticated_network(&self, snapshot: &Snapshot) -> bool {
        !self.bound.ip().to_canonical().is_loopback()
            && !snapshot.authenticator.required()
            && !self.allow_unauthenticated_network
    }
}

/// What the edge lets through.
enum Admit {
    /// Answer a CORS preflight from this allowed origin.
    Preflight(HeaderValue),
    /// Run the handler; add CORS headers for this allowed origin, if any.
    Pass(Option<HeaderValue>),
}

/// Middleware: the checks of the module header, in order.
pub async fn guard(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let local = request
        .extensions()
        .get::<LocalAddr>()
        .map_or(edge.bound, |l| l.0);
    match admit(&edge, &request, local) {
        Err(error) => {
            tracing::info!(code = error.code(), method = %request.method(), path = request.uri().path(), "request refused at the edge");
            error.into_response()
        }
        Ok(Admit::Preflight(origin)) => preflight(origin),
        Ok(Admit::Pass(cors)) => {
            let mut response = next.run(request).await;
            if let Some(origin) = cors {
                allow_origin(response.headers_mut(), origin);
            }
            response
        }
    }
}

fn admit(edge: &Edge, request: &Request, local: SocketAddr) -> Result<Admit, ApiError> {
    let rules = edge.rules();
    let headers = request.headers();
    check_host(&rules, request, local)?;
    if edge.unauthenticated_network(&rules.snapshot) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unauthenticated_network",
            format!(
                "runtime auth is off and this runtime listens on a non-loopback address; configure runtime.server.auth or restart with {ALLOW_UNAUTHENTICATED_NETWORK_FLAG}"
            ),
        )
        .with_plain(format!("unauthenticated_network: configure runtime.server.auth or restart with {ALLOW_UNAUTHENTICATED_NETWORK_FLAG}")));
    }
    let cors = check_origin(&rules, headers, local)?;
    let site = single(headers, &header::HeaderName::from_static("sec-fetch-site"))?;
    let cross_site = site.is_some_and(|s| {
        s.as_bytes().eq_ignore_ascii_case(b"cross-site")
            || s.as_bytes().eq_ignore_ascii_case(b"same-site")
    });
    let callback = request.method() == Method::GET && request.uri().path() == "/v1/oauth/callback";
    if cross_site && cors.is_none() && !callback {
        return Err(cross_origin());
    }
    if request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return cors.map(Admit::Preflight).ok_or_else(cross_origin);
    }
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    ) && !is_json(headers)
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send request bodies as Content-Type: application/json",
        ));
    }
    Ok(Admit::Pass(cors))
}

/// The value of a header that may appear at most once.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> Result<Option<&'a HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "send at most one {name} header"
        )));
    }
    Ok(first)
}

fn check_host(rules: &Rules, request: &Request, local: SocketAddr) -> Result<(), ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_host",
            "send exactly one valid Host header",
        )
    };
    let host = single(request.headers(), &header::HOST).map_err(|_| invalid())?;
    // HTTP/1.1 absolute-form targets carry the authority in the URI; both must name us.
    let mut authorities = Vec::with_capacity(2);
    if let Some(host) = host {
        authorities.push(host.to_str().map_err(|_| invalid())?);
    }
    if let Some(authority) = request.uri().authority() {
        authorities.push(authority.as_str());
    }
    if authorities.is_empty() {
        return Err(invalid());
    }
    for raw in authorities {
        let authority: http::uri::Authority = raw.parse().map_err(|_| invalid())?;
        if raw.contains('@') {
            return Err(invalid());
        }
        let name = authority.host().to_ascii_lowercase();
        if !rules.names_this_runtime(&name, authority.port_u16(), local) {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_request",
                "the Host header does not name this runtime; add the URL callers use to runtime.server.publicUrls",
            )
            .with_plain("misdirected_request: the Host header does not name this runtime; add the URL callers use to runtime.server.publicUrls"));
        }
    }
    Ok(())
}

/// `Ok(Some(origin))` for an allowed CORS origin, `Ok(None)` for no origin or one of ours.
fn check_origin(
    rules: &Rules,
    headers: &HeaderMap,
    local: SocketAddr,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(value) = single(headers, &header::ORIGIN)? else {
        return Ok(None);
    };
    let origin = value
        .to_str()
        .ok()
        .and_then(BrowserOrigin::parse)
        .ok_or_else(cross_origin)?;
    if rules.cors.contains(&origin) {
        return Ok(Some(value.clone()));
    }
    if rules.names_this_runtime(origin.host(), Some(origin.port()), local) {
        return Ok(None);
    }
    Err(cross_origin())
}

fn cross_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin_refused",
        "requests from other browser origins are refused; allow an origin in runtime.server.cors.allowedOrigins",
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "x-request-id, x-next-cursor, www-authenticate, retry-after, mcp-session-id",
        ),
    );
}

fn preflight(origin: HeaderValue) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow_origin(headers, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "authorization, content-type, accept, x-request-id, mcp-session-id, \
             mcp-protocol-version, mcp-method, mcp-name, last-event-id",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}
