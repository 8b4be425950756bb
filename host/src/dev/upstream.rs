//! The demo tickets API: a small in-memory HTTP service behind the dev-mode catalog.
//!
//! Also runnable on its own (`portcullis demo-upstream`) as a benchmark upstream. When a key is
//! set, every route but `/health` requires `X-Demo-Key` to match it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
struct Ticket {
    id: u64,
    title: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct TicketInput {
    title: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
}

#[derive(Default)]
struct Store {
    next_id: u64,
    tickets: BTreeMap<u64, Ticket>,
}

#[derive(Clone)]
struct AppState {
    key: Option<Arc<str>>,
    store: Arc<Mutex<Store>>,
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = &state.key else {
        return next.run(request).await;
    };
    let presented = request.headers().get("x-demo-key").map(|v| v.as_bytes());
    if presented == Some(key.as_bytes()) || request.uri().path() == "/health" {
        next.run(request).await
    } else {
        problem(StatusCode::UNAUTHORIZED, "missing or wrong X-Demo-Key")
    }
}

fn valid_status(status: &Option<String>) -> bool {
    status
        .as_deref()
        .is_none_or(|s| s == "open" || s == "closed")
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Response {
    let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
    let tickets: Vec<&Ticket> = store
        .tickets
        .values()
        .filter(|t| query.status.as_deref().is_none_or(|s| s == t.status))
        .collect();
    Json(tickets).into_response()
}

async fn create(State(state): State<AppState>, Json(input): Json<TicketInput>) -> Response {
    let Some(title) = input.title.filter(|t| !t.trim().is_empty()) else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "title is required");
    };
    if !valid_status(&input.status) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "status must be open or closed",
        );
    }
    let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
    store.next_id += 1;
    let ticket = Ticket {
        id: store.next_id,
        title,
        status: input.status.unwrap_or_else(|| "open".into()),
    };
    store.tickets.insert(ticket.id, ticket.clone());
    (StatusCode::CREATED, Json(ticket)).into_response()
}

async fn fetch(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
    match store.tickets.get(&id) {
        Some(ticket) => Json(ticket).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such ticket"),
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Json(input): Json<TicketInput>,
) -> Response {
    if !valid_status(&input.status) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "status must be open or closed",
        );
    }
    let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ticket) = store.tickets.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such ticket");
    };
    if let Some(title) = input.title {
        ticket.title = title;
    }
    if let Some(status) = input.status {
        ticket.status = status;
    }
    Json(ticket.clone()).into_response()
}

async fn remove(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
    match store.tickets.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such ticket"),
    }
}

/// The demo API's routes.
pub fn router(key: Option<String>) -> Router {
    let state = AppState {
        key: key.map(Arc::from),
        store: Arc::default(),
    };
    Router::new()
        .route("/health", get(health))
        .route("/tickets", get(list).post(create))
        .route("/tickets/{id}", get(fetch).patch(update).delete(remove))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ))
        .with_state(state)
}

/// Serve the demo API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, key: Option<String>) {
    if let Err(error) = axum::serve(listener, router(key)).await {
        tracing::error!("demo upstream stopped: {error}");
    }
}
