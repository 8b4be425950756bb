//! Remote documents go through the on-disk cache: miss, revalidation by ETag, freshness by
//! max-age, forced refresh, stale fallback when the origin fails, and corrupt-entry recovery.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use portcullis::catalog::{build, BuildOptions, BuildOutcome};
use portcullis::config::{Config, LoadedConfig};

const DOC: &str = r#"{"openapi":"3.1.0","info":{"title":"Remote"},"paths":{"/items":{"get":{"operationId":"listItems"}}}}"#;

#[derive(Default)]
struct Origin {
    requests: AtomicUsize,
    failing: AtomicBool,
}

async fn serve(origin: Arc<Origin>) -> String {
    let handler = move |headers: HeaderMap| {
        let origin = origin.clone();
        async move {
            origin.requests.fetch_add(1, Ordering::SeqCst);
            if origin.failing.load(Ordering::SeqCst) {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            if headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
                return (StatusCode::NOT_MODIFIED, [("etag", "\"v1\"")]).into_response();
            }
            (
                [("etag", "\"v1\""), ("content-type", "application/json")],
                DOC,
            )
                .into_response()
        }
    };
    let app = axum::Router::new().route("/openapi.json", get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/openapi.json")
}

async fn run(url: &str, cache: &Path, max_age: Option<u64>, force: bool) -> BuildOutcome {
    let mut source = serde_json::json!({"type": "openapi", "uri": url});
    if let Some(age) = max_age {
        source["refresh"] = serde_json::json!({"maxAgeSeconds": age});
    }
    let config: Config = serde_json::from_value(
        serde_json::json!({"sources": {"remote": source}, "services": {"r": {"source": "remote"}}}),
    )
    .expect("valid config");
    let loaded = LoadedConfig {
        config,
        base_dir: cache.to_path_buf(),
        project_path: cache.join(".cli.json"),
        files: Vec::new(),
    };
    build(
        &loaded,
        &BuildOptions {
            cache_dir: Some(cache.to_path_buf()),
            force_refresh: force,
            ..BuildOptions::default()
        },
    )
    .await
}

fn outcome(b: &BuildOutcome) -> (&str, Option<bool>, usize) {
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let fetch = &b.fetches[0];
    (
        fetch.cache_outcome.as_deref().unwrap_or("none"),
        fetch.stale,
        b.catalog.tools.len(),
    )
}

#[tokio::test]
async fn remote_documents_are_cached_revalidated_and_served_stale_when_the_origin_fails() {
    let origin = Arc::new(Origin::default());
    let url = serve(origin.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");

    let first = run(&url, dir.path(), None, false).await;
    assert_eq!(outcome(&first), ("miss", None, 1));
    assert_eq!(
        first.catalog.services[0].servers,
        [url.trim_end_matches("/openapi.json")],
        "origin fallback"
    );
    assert!(
        first.watched_files.is_empty(),
        "remote documents are not watched files"
    );

    assert_eq!(
        outcome(&run(&url, dir.path(), None, false).await),
        ("revalidated_hit", None, 1)
    );

    let before = origin.requests.load(Ordering::SeqCst);
    assert_eq!(
        outcome(&run(&url, dir.path(), Some(60), false).await).0,
        "revalidated_hit"
    );
    assert_eq!(
        outcome(&run(&url, dir.path(), Some(60), false).await),
        ("fresh_hit", None, 1)
    );
    assert_eq!(
        origin.requests.load(Ordering::SeqCst),
        before + 1,
        "a fresh hit sends no request"
    );
    assert_eq!(
        outcome(&run(&url, dir.path(), Some(60), true).await).0,
        "revalidated_hit",
        "force skips freshness"
    );

    origin.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        outcome(&run(&url, dir.path(), None, true).await),
        ("stale_hit", Some(true), 1)
    );

    origin.failing.store(false, Ordering::SeqCst);
    for entry in std::fs::read_dir(dir.path()).expect("cache dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "body") {
            std::fs::write(entry.path(), b"tampered").expect("corrupt body");
        }
    }
    assert_eq!(
        outcome(&run(&url, dir.path(), None, false).await),
        ("refreshed", None, 1)
    );
}

#[tokio::test]
async fn an_unreachable_origin_without_a_cached_copy_is_a_source_error() {
    let origin = Arc::new(Origin {
        failing: AtomicBool::new(true),
        ..Origin::default()
    });
    let url = serve(origin).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = run(&url, dir.path(), None, false).await;
    assert!(b.catalog.tools.is_empty());
    assert!(
        b.errors[0].message.contains("unexpected status 500"),
        "{:?}",
        b.errors
    );
}
