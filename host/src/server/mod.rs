//! The HTTP edge: the open-cli runtime contract, routed to thin handlers.
//!
//! | route | handler |
//! |---|---|
//! | `GET /v1/runtime/info` | [`routes::info`] |
//! | `POST /v1/runtime/heartbeat` | [`routes::heartbeat`] |
//! | `POST /v1/runtime/session-close` | [`routes::session_close`] |
//! | `POST /v1/runtime/stop` | [`routes::stop`] |
//! | `GET /v1/catalog/effective` | [`routes::catalog`] |
//! | `POST /v1/tools/execute` | [`routes::execute`] |
//! | `POST /v1/policy/explain` | [`routes::explain`] |
//! | `POST /v1/approvals` | [`routes::approve`] |
//! | `POST /v1/refresh` | [`routes::refresh`] |
//! | `GET /v1/audit/events` | [`routes::audit`] |
//! | `GET /v1/auth/browser-config` | [`routes::browser_config`] |
//! | `GET /v1/oauth/callback` | [`routes::oauth_callback`] |
//! | `POST /v1/oauth/confirm` | [`routes::oauth_confirm`] |
//! | `GET /.well-known/oauth-protected-resource` | [`routes::protected_resource`] |
//! | `POST`, `DELETE`, `GET /mcp` | [`mcp_door`]: the MCP door onto the same call pipeline |
//! | `GET /.well-known/oauth-protected-resource/mcp` | [`mcp_door::protected_resource`] |
//!
//! Before any route: the browser boundary (`Host`, `Origin`, `Sec-Fetch-Site`, CORS, JSON bodies;
//! [`edge`]) and the connection limits (header-read and idle timeouts, connection caps;
//! [`listen`]). A runtime without auth refuses to listen on a non-loopback address unless
//! [`ServeOptions::allow_unauthenticated_network`] is set.
//!
//! Limits: request bodies over 10 MiB are refused (413), header blocks over 64 KiB or an
//! `Authorization` header over 16 KiB with 431, and an address over its failed-authentication
//! budget with 429 ([`limits`]); a handler panic becomes a generic 500
//! and the server keeps serving; shutdown on SIGINT/SIGTERM, `POST /v1/runtime/stop` or the end
//! of the last lease ([`lifecycle`]) lets in-flight requests finish for up to [`SHUTDOWN_GRACE`],
//! then closes the audit log.

pub mod binding;
pub mod edge;
pub mod error;
pub mod lifecycle;
pub mod limits;
pub mod listen;
pub mod mcp_door;
pub mod refusal;
pub mod request_id;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::app::Runtime;
pub use edge::ALLOW_UNAUTHENTICATED_NETWORK_FLAG;

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Largest request body accepted.
pub const MAX_REQUEST_BODY: usize = 10 << 20;

/// How the server is run.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve on a non-loopback address although runtime auth is off (the operator's explicit
    /// `--allow-unauthenticated-network`); a warning is logged at each start.
    pub allow_unauthenticated_network: bool,
    /// Session leases and when they stop the runtime.
    pub lifecycle: lifecycle::LifecycleOptions,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Runtime auth is off and the listener is reachable from the network.
    #[error(
        "runtime auth is off and {addr} is not a loopback address, so anyone who can reach it could call every tool; \
         configure runtime.server.auth, listen on 127.0.0.1, or pass {ALLOW_UNAUTHENTICATED_NETWORK_FLAG} \
         if something in front of the runtime authenticates callers"
    )]
    UnauthenticatedNetwork {
        /// The listen address.
        addr: SocketAddr,
    },
    /// The listener failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The router with every route and middleware, for a runtime behind `edge`.
///
/// The middleware wraps the whole router once (outermost first: request id, error
/// negotiation, panic → 500, header size, edge guard, failed-auth limiter, body limit), not
/// each route: `Router::layer` would box the stack into every route, and each request would
/// then clone it box by box (about thirty allocations per request, issue #16). Unmatched paths
/// and methods go through the same stack.
pub fn router(
    runtime: Arc<Runtime>,
    edge: Arc<edge::Edge>,
    lifecycle: Arc<lifecycle::Lifecycle>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Router {
    let panic_to_500 = tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        error::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the runtime hit an internal error; see the server log for this request id",
        )
        .into_response()
    });
    let routes = Router::new()
        .route("/v1/runtime/info", get(routes::info))
        .route("/v1/runtime/heartbeat", post(routes::heartbeat))
        .route("/v1/runtime/session-close", post(routes::session_close))
        .route("/v1/runtime/stop", post(routes::stop))
        .route("/v1/catalog/effective", get(routes::catalog))
        .route("/v1/tools/execute", post(routes::execute))
        .route("/v1/policy/explain", post(routes::explain))
        .route("/v1/approvals", post(routes::approve))
        .route("/v1/workflows/run", post(routes::run_workflow))
        .route("/v1/refresh", post(routes::refresh))
        .route("/v1/audit/events", get(routes::audit))
        .route("/v1/auth/browser-config", get(routes::browser_config))
        .route("/v1/oauth/callback", get(routes::oauth_callback))
        .route("/v1/oauth/confirm", post(routes::oauth_confirm))
        .route(
            "/.well-known/oauth-protected-resource",
            get(routes::protected_resource),
        )
        .route(
            mcp_door::PATH,
            post(mcp_door::post)
                .delete(mcp_door::delete)
                .get(mcp_door::get),
        )
        .route(mcp_door::METADATA_PATH, get(mcp_door::protected_resource))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(runtime.clone());
    let stack = tower::ServiceBuilder::new()
        .layer(axum::Extension(lifecycle))
        .layer(axum::Extension(Arc::new(mcp_door::McpDoor::new(stopping))))
        .layer(axum::middleware::from_fn(request_id::assign))
        .layer(axum::middleware::from_fn(error::negotiate))
        .layer(panic_to_500)
        .layer(axum::middleware::from_fn(limits::header_size))
        .layer(axum::middleware::from_fn_with_state(edge, edge::guard))
        .layer(axum::middleware::from_fn_with_state(
            (runtime, Arc::new(limits::FailedAuthLimiter::default())),
            limits::failed_auth,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .service(routes);
    Router::new().fallback_service(stack)
}

/// [`serve_with`] with default options (a runtime without auth serves on loopback only).
pub async fn serve(listener: TcpListener, runtime: Arc<Runtime>) -> Result<(), ServeError> {
    serve_with(listener, runtime, ServeOptions::default()).await
}

/// Serve until SIGINT/SIGTERM, then drain in-flight requests for at most [`SHUTDOWN_GRACE`].
pub async fn serve_with(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    options: ServeOptions,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    let snapshot = runtime.snapshot();
    let edge = Arc::new(edge::Edge::new(
        runtime.clone(),
        addr,
        options.allow_unauthenticated_network,
    ));
    if !addr.ip().to_canonical().is_loopback() && !snapshot.authenticator.required() {
        if !options.allow_unauthenticated_network {
            drop(snapshot);
            runtime.mcp.shutdown().await;
            runtime.shutdown();
            return Err(ServeError::UnauthenticatedNetwork { addr });
        }
        tracing::warn!(
            %addr,
            "runtime auth is off on a non-loopback address ({ALLOW_UNAUTHENTICATED_NETWORK_FLAG}): every caller that can reach it can call every tool"
        );
    }
    let settings = listen::ConnectionSettings::from_config(
        snapshot
            .loaded
            .config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.connections.as_ref()),
    );
    drop(snapshot);
    listen::fit_open_file_limit(&settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let lifecycle = lifecycle::Lifecycle::new(options.lifecycle, Arc::downgrade(&runtime));
    let app = router(runtime.clone(), edge, lifecycle.clone(), stopped.clone());
    let mut serving = Box::pin(listen::serve(listener, app, settings, stopped));
    let watcher = tokio::spawn(runtime.clone().watch_sources());
    let mcp_follower = tokio::spawn(runtime.clone().follow_mcp_changes());
    let reason = tokio::select! {
        () = &mut serving => None,
        () = shutdown_signal() => Some(None),
        reason = lifecycle.stopped() => Some(Some(reason)),
    };
    let reason = match reason {
        None => None,
        Some(reason) => {
            tracing::info!(
                ?reason,
                "shutting down; waiting up to {}s for in-flight requests",
                SHUTDOWN_GRACE.as_secs()
            );
            let _ = stop.send(true);
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut serving)
                .await
                .is_err()
            {
                tracing::warn!(
                    "in-flight requests did not finish within the grace period; exiting"
                );
            }
            reason
        }
    };
    drop(serving);
    lifecycle.finish(reason).await;
    watcher.abort();
    mcp_follower.abort();
    let _ = watcher.await;
    let _ = mcp_follower.await;
    runtime.mcp.shutdown().await;
    runtime.shutdown();
    close_audit(runtime).await;
    Ok(())
}

/// Flush the audit log; when nothing else holds the runtime (the binary), also close it, so
/// the writer finishes its queue and writes its final checkpoint before the process exits.
/// Connection tasks that just finished may still be dropping their handles, so ownership is
/// retried briefly (bounded: at most one second) before settling for a flush.
async fn close_audit(mut runtime: Arc<Runtime>) {
    for _ in 0..100 {
        match Arc::try_unwrap(runtime) {
            Ok(owned) => {
                let audit = owned.audit;
                let _ = tokio::task::spawn_blocking(move || audit.close()).await;
                tracing::info!("audit log closed");
                return;
            }
            Err(shared) => runtime = shared,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match runtime.audit.sync().await {
        Ok(_) => tracing::info!("audit log flushed (still shared, so not closed)"),
        Err(error) => tracing::error!("the audit log could not be flushed at shutdown: {error}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
}
