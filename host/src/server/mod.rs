//! The HTTP edge: the open-cli runtime contract, routed to thin handlers.
//!
//! | route | handler |
//! |---|---|
//! | `GET /v1/runtime/info` | [`routes::info`] |
//! | `GET /v1/catalog/effective` | [`routes::catalog`] |
//! | `POST /v1/tools/execute` | [`routes::execute`] |
//! | `POST /v1/policy/explain` | [`routes::explain`] |
//! | `POST /v1/approvals` | [`routes::approve`] |
//! | `GET, POST /v1/refresh` | [`routes::refresh`] |
//! | `GET /v1/audit/events` | [`routes::audit`] |
//! | `GET /v1/auth/browser-config` | [`routes::browser_config`] |
//! | `GET /v1/oauth/callback` | [`routes::oauth_callback`] |
//! | `POST /v1/oauth/confirm` | [`routes::oauth_confirm`] |
//! | `GET /.well-known/oauth-protected-resource` | [`routes::protected_resource`] |
//!
//! Limits: request bodies over 10 MiB are refused (413), header blocks over 64 KiB or an
//! `Authorization` header over 16 KiB with 431, and an address over its failed-authentication
//! budget with 429 ([`limits`]); a handler panic becomes a generic 500
//! and the server keeps serving; shutdown on SIGINT/SIGTERM lets in-flight requests finish for
//! up to [`SHUTDOWN_GRACE`].

pub mod binding;
pub mod error;
pub mod limits;
pub mod request_id;
pub mod routes;
pub mod runtime;
pub mod snapshot;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use runtime::{Runtime, RuntimeOptions};

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Largest request body accepted.
pub const MAX_REQUEST_BODY: usize = 10 << 20;

/// The router with every route and middleware.
pub fn router(runtime: Arc<Runtime>) -> Router {
    let panic_to_500 = tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        error::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the runtime hit an internal error; see the server log for this request id",
        )
        .into_response()
    });
    Router::new()
        .route("/v1/runtime/info", get(routes::info))
        .route("/v1/catalog/effective", get(routes::catalog))
        .route("/v1/tools/execute", post(routes::execute))
        .route("/v1/policy/explain", post(routes::explain))
        .route("/v1/approvals", post(routes::approve))
        .route("/v1/refresh", get(routes::refresh).post(routes::refresh))
        .route("/v1/audit/events", get(routes::audit))
        .route("/v1/auth/browser-config", get(routes::browser_config))
        .route("/v1/oauth/callback", get(routes::oauth_callback))
        .route("/v1/oauth/confirm", post(routes::oauth_confirm))
        .route(
            "/.well-known/oauth-protected-resource",
            get(routes::protected_resource),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(axum::middleware::from_fn_with_state(
            (
                runtime.clone(),
                Arc::new(limits::FailedAuthLimiter::default()),
            ),
            limits::failed_auth,
        ))
        .layer(axum::middleware::from_fn(limits::header_size))
        .layer(panic_to_500)
        .layer(axum::middleware::from_fn(error::negotiate))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(runtime)
}

/// Serve until SIGINT/SIGTERM, then drain in-flight requests for at most [`SHUTDOWN_GRACE`].
pub async fn serve(listener: TcpListener, runtime: Arc<Runtime>) -> std::io::Result<()> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let app = router(runtime.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let graceful = {
        let stop = stop.clone();
        axum::serve(listener, app).with_graceful_shutdown(async move { stop.notified().await })
    };
    let watcher = tokio::spawn(runtime.clone().watch_sources());
    let mcp_follower = tokio::spawn(runtime.clone().follow_mcp_changes());
    let serving = graceful.into_future();
    tokio::pin!(serving);
    let result = tokio::select! {
        result = &mut serving => result,
        () = shutdown_signal() => {
            tracing::info!("shutting down; waiting up to {}s for in-flight requests", SHUTDOWN_GRACE.as_secs());
            stop.notify_one();
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("in-flight requests did not finish within the grace period; exiting");
                    Ok(())
                }
            }
        }
    };
    watcher.abort();
    mcp_follower.abort();
    runtime.mcp.shutdown().await;
    runtime.shutdown();
    result
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
