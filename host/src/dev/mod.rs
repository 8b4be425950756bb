//! Dev mode, the embedded default: `portcullis serve --dev` needs no config.
//!
//! It starts the demo tickets API (a real HTTP server on an ephemeral loopback port), writes an
//! OpenAPI document and a `.cli.json` for it into the instance state dir, and serves that config
//! like any other. The demo upstream requires an `X-Demo-Key` header; the generated config
//! supplies a random key through `secrets`, so every call shows credential injection end to end.
//! Dev mode only binds to loopback.

pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The bundled OpenAPI document.
pub const TICKETS_OPENAPI: &str = include_str!("tickets.openapi.yaml");

/// The server URL written in the bundled document, replaced by the live upstream's.
const PLACEHOLDER_SERVER: &str = "http://127.0.0.1:9000";

/// A prepared dev environment.
#[derive(Debug)]
pub struct DevSetup {
    /// The generated project config.
    pub config_path: PathBuf,
    /// Where the demo upstream listens.
    pub upstream_url: String,
}

/// Start the demo upstream and write the config that serves it.
pub async fn prepare(dir: &Path) -> std::io::Result<DevSetup> {
    std::fs::create_dir_all(dir)?;
    let key = uuid::Uuid::new_v4().simple().to_string();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let upstream_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(upstream::serve(listener, Some(key.clone())));

    std::fs::write(
        dir.join("tickets.openapi.yaml"),
        TICKETS_OPENAPI.replace(PLACEHOLDER_SERVER, &upstream_url),
    )?;
    let config = serde_json::json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "runtime": { "mode": "remote" },
        "sources": { "ticketsSource": { "type": "openapi", "uri": "tickets.openapi.yaml" } },
        "services": { "tickets": { "source": "ticketsSource" } },
        "secrets": { "demoKey": { "type": "literal", "value": key } }
    });
    let config_path = dir.join(".cli.json");
    std::fs::write(
        &config_path,
        serde_json::to_vec_pretty(&config).unwrap_or_default(),
    )?;
    Ok(DevSetup {
        config_path,
        upstream_url,
    })
}

/// Ready-to-paste commands for the dev banner.
pub fn banner(url: &str, setup: &DevSetup) -> String {
    let exec = |body: &str| {
        format!("  curl -s -X POST {url}/v1/tools/execute -H 'Content-Type: application/json' -d '{body}'")
    };
    [
        format!("Portcullis dev server on {url} (loopback only)"),
        format!("  demo upstream: {}   config: {}", setup.upstream_url, setup.config_path.display()),
        String::new(),
        "Try:".to_owned(),
        format!("  curl -s {url}/v1/runtime/info"),
        format!("  curl -s {url}/v1/catalog/effective | head -c 600; echo"),
        exec(r#"{"toolId":"tickets:createTicket","body":{"title":"Printer jam"}}"#),
        exec(r#"{"toolId":"tickets:listTickets","flags":{"status":"open"}}"#),
        exec(r#"{"toolId":"tickets:getTicket","pathArgs":["1"]}"#),
        exec(r#"{"toolId":"tickets:deleteTicket","pathArgs":["1"]}"#) + "   # 403 approval_required",
        exec(r#"{"toolId":"tickets:deleteTicket","pathArgs":["1"],"approval":true}"#),
        format!("  curl -s '{url}/v1/audit/events?limit=5'"),
        format!("  curl -s -H 'Accept: application/json' -X POST {url}/v1/tools/execute -d '{{\"toolId\":\"nope:nope\"}}'"),
    ]
    .join("\n")
}
