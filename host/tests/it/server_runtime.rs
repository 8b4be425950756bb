//! Runtime-level behaviour: handshake, binding, catalog caching, refresh, file watching.

use super::support;

use std::time::Duration;

use serde_json::json;
use support::*;

fn one_tool(server: &str, operation_id: &str) -> String {
    openapi(
        server,
        json!({ format!("/{operation_id}"): { "get": { "operationId": operation_id } } }),
        json!({}),
    )
}

#[tokio::test]
async fn handshake_reports_contract_version_and_capabilities() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    let (status, body) = rt.get("/v1/runtime/info").await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["contractVersion"], "1.1");
    // Everything the reference runtime announces, which its client may require.
    let capabilities = info["capabilities"].as_array().unwrap();
    for wanted in [
        "catalog",
        "execute",
        "refresh",
        "audit",
        "brokered-auth",
        "authorization-envelope",
    ] {
        assert!(capabilities.contains(&json!(wanted)), "{wanted}: {info}");
    }
    assert_eq!(info["auth"]["required"], false);
    let response = rt
        .client
        .post(format!("{}/v1/runtime/info", rt.url))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn requests_naming_another_config_are_refused_with_409() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    let own = rt.config_path();
    let (status, _) = rt
        .get(&format!("/v1/catalog/effective?config={}", own.display()))
        .await;
    assert_eq!(status, 200);
    for path in [
        "/v1/catalog/effective",
        "/v1/audit/events",
        "/v1/runtime/info",
    ] {
        let (status, body) = rt
            .get(&format!("{path}?config=/somewhere/else/.cli.json"))
            .await;
        assert_eq!(
            (status, body.trim()),
            (409, "runtime_attach_mismatch"),
            "{path}"
        );
    }
    let (status, body) = rt.refresh("?config=/somewhere/else/.cli.json").await;
    assert_eq!((status, body.trim()), (409, "runtime_attach_mismatch"));
    let (status, _) = rt
        .execute(json!({ "configPath": "/elsewhere/.cli.json", "toolId": "svc:a" }))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn catalog_is_served_from_memory_until_refresh_rebuilds_it() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    let generated = |body: String| -> String {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["catalog"]["generatedAt"].as_str().unwrap().to_owned()
    };
    let first = generated(rt.get("/v1/catalog/effective").await.1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = generated(rt.get("/v1/catalog/effective").await.1);
    assert_eq!(
        first, second,
        "a catalog request must not rebuild the catalog"
    );
    let (status, body) = rt.refresh("").await;
    assert_eq!(status, 200, "{body}");
    let refreshed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(refreshed["refreshedAt"].is_string());
    let third = generated(rt.get("/v1/catalog/effective").await.1);
    assert_ne!(first, third);
}

#[tokio::test]
async fn editing_a_source_document_rebuilds_the_catalog() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    std::fs::write(
        rt.dir.path().join("a.json"),
        one_tool("http://127.0.0.1:1", "renamed"),
    )
    .unwrap();
    let rebuilt = eventually(Duration::from_secs(10), || async {
        rt.get("/v1/catalog/effective")
            .await
            .1
            .contains("svc:renamed")
    })
    .await;
    assert!(rebuilt, "the watcher should pick up the edited document");
}

#[tokio::test]
async fn a_broken_config_edit_keeps_the_previous_catalog_serving() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    std::fs::write(rt.config_path(), r#"{"cli": "1.0.0", "bogus": true}"#).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = rt.get("/v1/catalog/effective").await;
    assert_eq!(status, 200);
    assert!(body.contains("svc:a"));
    let (status, body) = rt.refresh("").await;
    assert_eq!(status, 400);
    assert!(body.contains("bogus"), "{body}");
}

#[tokio::test]
async fn a_source_that_fails_does_not_take_the_others_down() {
    let config = json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": {
            "good": { "type": "openapi", "uri": "good.json" },
            "bad": { "type": "openapi", "uri": "missing.json" }
        },
        "services": { "good": { "source": "good" }, "bad": { "source": "bad" } }
    });
    let rt = start_runtime(
        config,
        &[("good.json", one_tool("http://127.0.0.1:1", "ok"))],
    )
    .await;
    let (_, body) = rt.get("/v1/catalog/effective").await;
    assert!(body.contains("good:ok"));
    let (_, refresh) = rt.refresh("").await;
    let refresh: serde_json::Value = serde_json::from_str(&refresh).unwrap();
    let errors = refresh["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], "bad");
}

#[tokio::test]
async fn curated_mode_selects_the_default_profile_view() {
    let extra = json!({
        "curation": { "toolSets": { "only-a": { "allow": ["svc:a"] } } },
        "agents": { "profiles": { "reader": { "mode": "curated", "toolSet": "only-a" } }, "defaultProfile": "reader" }
    });
    let doc = openapi(
        "http://127.0.0.1:1",
        json!({ "/a": { "get": { "operationId": "a" } }, "/b": { "get": { "operationId": "b" } } }),
        json!({}),
    );
    let rt = start_runtime(config_for("a.json", extra), &[("a.json", doc)]).await;
    let view = |body: String| -> (String, usize) {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            v["view"]["name"].as_str().unwrap().to_owned(),
            v["view"]["tools"].as_array().map_or(0, Vec::len),
        )
    };
    assert_eq!(
        view(rt.get("/v1/catalog/effective").await.1),
        ("discover".into(), 2)
    );
    assert_eq!(
        view(rt.get("/v1/catalog/effective?mode=curated").await.1),
        ("reader".into(), 1)
    );
    assert_eq!(
        view(rt.get("/v1/catalog/effective?agentProfile=reader").await.1),
        ("reader".into(), 1)
    );
    let (status, _) = rt.get("/v1/catalog/effective?mode=sideways").await;
    assert_eq!(status, 400);
    let (status, body) = rt
        .execute(json!({ "toolId": "svc:b", "mode": "curated" }))
        .await;
    assert_eq!((status, body.trim()), (403, "curated_deny"));
}

#[tokio::test]
async fn unknown_routes_are_404_and_browser_config_is_404_without_auth() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    assert_eq!(rt.get("/v1/nope").await.0, 404);
    let (status, body) = rt.get("/v1/auth/browser-config").await;
    assert_eq!(
        (status, body.trim()),
        (404, "browser login is not configured")
    );
}

#[tokio::test]
async fn catalog_is_gzip_encoded_only_for_clients_that_accept_it() {
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    let url = format!("{}/v1/catalog/effective", rt.url);
    let plain = rt.client.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let zipped = rt
        .client
        .get(&url)
        .header("Accept-Encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let zipped = zipped.bytes().await.unwrap();
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    let refused = rt
        .client
        .get(&url)
        .header("Accept-Encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn audit_events_on_an_empty_log_are_an_empty_array() {
    // Issue #17: this used to be a 500 (a panic in the audit index); the reference runtime's
    // test asserts the body is exactly `[]`.
    let rt = start_runtime(
        config_for("a.json", json!({})),
        &[("a.json", one_tool("http://127.0.0.1:1", "a"))],
    )
    .await;
    let (status, body) = rt.get("/v1/audit/events").await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = rt.get("/v1/audit/events?cursor=").await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["events"], json!([]), "{body}");
}
