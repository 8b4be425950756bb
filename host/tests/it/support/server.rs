//! A real recording upstream and a real runtime, both on loopback, and the requests tests send
//! to them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use portcullis::app::{Runtime, RuntimeOptions};
use portcullis::config::ScopePaths;
use portcullis::server;

use super::eventually;

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A real HTTP upstream that records every request and answers by path.
pub struct RecordingUpstream {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl RecordingUpstream {
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Answers: `/text` -> text/plain, `/status/{n}` -> that status with a JSON body, `/empty` ->
/// 204, anything else -> 200 echoing method and path as JSON.
async fn answer(request: &Received) -> Response {
    let path = request
        .path_and_query
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    if path == "/text" {
        return ([("content-type", "text/plain")], "plain words").into_response();
    }
    if path == "/empty" {
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
        return (status, axum::Json(serde_json::json!({ "status": code }))).into_response();
    }
    axum::Json(serde_json::json!({ "method": request.method, "path": request.path_and_query }))
        .into_response()
}

pub async fn start_upstream() -> RecordingUpstream {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = received.clone();
    let app = Router::new().fallback(move |request: Request| {
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let seen = Received {
                method: parts.method.to_string(),
                path_and_query: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                headers: parts.headers,
                body,
            };
            let response = answer(&seen).await;
            log.lock().unwrap().push(seen);
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    RecordingUpstream { url, received }
}

/// A runtime serving a config written into a temp dir.
pub struct TestRuntime {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub runtime: Arc<Runtime>,
    pub client: reqwest::Client,
}

impl TestRuntime {
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(".cli.json")
    }

    pub async fn execute(&self, body: serde_json::Value) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}/v1/tools/execute", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn execute_json(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = self.execute(body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// `POST /v1/refresh{query}` as a JSON request with no body.
    pub async fn refresh(&self, query: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}/v1/refresh{query}", self.url))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn audit(&self) -> Vec<serde_json::Value> {
        let (_, text) = self.get("/v1/audit/events").await;
        serde_json::from_str(&text).unwrap()
    }

    /// Every record in the audit file, for runtimes whose audit API needs a token. Outcome
    /// records are queued, so this waits briefly for the writer to drain.
    pub async fn audit_file(&self) -> Vec<serde_json::Value> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read_to_string(self.dir.path().join("state/audit.log")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Write `files` (name -> contents) and `.cli.json` into a temp dir and start a runtime on it.
pub async fn start_runtime(config: serde_json::Value, files: &[(&str, String)]) -> TestRuntime {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    std::fs::write(
        dir.path().join(".cli.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    start_runtime_in(dir).await
}

pub async fn start_runtime_in(dir: tempfile::TempDir) -> TestRuntime {
    let state_dir = dir.path().join("state");
    start_runtime_at(dir, state_dir).await
}

/// [`start_runtime_in`] with the instance's state in `state_dir` (a `<root>/instances/<id>`
/// layout lets the CLI find it by `--state-dir <root> --instance-id <id>`).
pub async fn start_runtime_at(dir: tempfile::TempDir, state_dir: PathBuf) -> TestRuntime {
    let project = dir.path().join(".cli.json");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let options = RuntimeOptions {
        scopes: ScopePaths {
            project,
            ..ScopePaths::default()
        },
        instance_id: "test".into(),
        audit_path: state_dir.join("audit.log"),
        cache_dir: state_dir.join("cache"),
        state_dir,
        url: url.clone(),
        settings: std::sync::Arc::new(portcullis::app::Settings),
    };
    let runtime = Runtime::start(options).await.unwrap();
    tokio::spawn(server::serve(listener, runtime.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestRuntime {
        url,
        dir,
        runtime,
        client,
    }
}

/// A minimal config serving one OpenAPI file as service `svc`.
pub fn config_for(document: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut config = serde_json::json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "src": { "type": "openapi", "uri": document } },
        "services": { "svc": { "source": "src" } }
    });
    if let (Some(base), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    config
}

/// An OpenAPI 3.0 document with the given paths, served at `server`.
pub fn openapi(server: &str, paths: serde_json::Value, components: serde_json::Value) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "openapi": "3.0.3",
        "info": { "title": "Test API", "version": "1" },
        "servers": [{ "url": server }],
        "paths": paths,
        "components": components,
    }))
    .unwrap()
}

/// Wait (up to 30 s) until a server answers `GET {url}/v1/runtime/info`.
pub async fn wait_until_serving(client: &reqwest::Client, url: &str) -> bool {
    eventually(Duration::from_secs(30), || {
        let (client, url) = (client.clone(), url.to_owned());
        async move {
            client
                .get(format!("{url}/v1/runtime/info"))
                .send()
                .await
                .is_ok()
        }
    })
    .await
}

/// Load `config` as a project `.cli.json` and return the load error's text (panics if it loads).
pub fn config_load_error(config: &serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(".cli.json");
    std::fs::write(&project, config.to_string()).unwrap();
    let paths = ScopePaths {
        project,
        ..ScopePaths::default()
    };
    portcullis::app::load(&paths).unwrap_err().to_string()
}
