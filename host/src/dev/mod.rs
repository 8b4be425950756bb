//! Dev mode, the embedded default: `portcullis serve --dev` needs no config.
//!
//! It starts the demo tickets API (a real HTTP server on an ephemeral loopback port), writes an
//! OpenAPI document and a `.cli.json` for it into the instance state dir, and serves that config
//! like any other. The demo upstream requires an `X-Demo-Key` header; the generated config
//! supplies a random key through `secrets`, so every call shows credential injection end to end.
//! Runtime auth is on, against an in-process development issuer ([`issuer`]): the banner prints
//! a token scoped to the demo service, and a call without it is refused like in production.
//! Dev mode only binds to loopback.

pub mod issuer;
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
    /// The development identity provider the runtime trusts.
    pub issuer: issuer::DevIssuer,
    /// A token for [`issuer::DEFAULT_SUBJECT`] with [`issuer::DEFAULT_SCOPE`].
    pub token: String,
}

/// Why dev mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Writing the generated files or binding a listener failed.
    #[error("dev mode: {0}")]
    Io(#[from] std::io::Error),
    /// The development issuer did not start.
    #[error(transparent)]
    Issuer(#[from] issuer::IssuerError),
}

/// Start the demo upstream and the dev issuer, and write the config that serves them.
pub async fn prepare(dir: &Path) -> Result<DevSetup, DevError> {
    std::fs::create_dir_all(dir)?;
    let key = uuid::Uuid::new_v4().simple().to_string();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let upstream_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(upstream::serve(listener, Some(key.clone())));
    let issuer = issuer::DevIssuer::start().await?;

    std::fs::write(
        dir.join("tickets.openapi.yaml"),
        TICKETS_OPENAPI.replace(PLACEHOLDER_SERVER, &upstream_url),
    )?;
    let config = serde_json::json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "runtime": { "mode": "remote", "server": { "auth": issuer.auth_config() } },
        "sources": { "ticketsSource": { "type": "openapi", "uri": "tickets.openapi.yaml" } },
        "services": { "tickets": { "source": "ticketsSource" } },
        "secrets": { "demoKey": { "type": "literal", "value": key } }
    });
    let config_path = dir.join(".cli.json");
    std::fs::write(
        &config_path,
        serde_json::to_vec_pretty(&config).unwrap_or_default(),
    )?;
    let token = issuer.mint(issuer::DEFAULT_SUBJECT, issuer::DEFAULT_SCOPE);
    Ok(DevSetup {
        config_path,
        upstream_url,
        issuer,
        token,
    })
}

/// Ready-to-paste commands for the dev banner.
pub fn banner(url: &str, setup: &DevSetup) -> String {
    let auth = "-H \"Authorization: Bearer $PORTCULLIS_TOKEN\"";
    let exec = |body: &str| {
        format!("  curl -s -X POST {url}/v1/tools/execute {auth} -H 'Content-Type: application/json' -d '{body}'")
    };
    [
        format!("Portcullis dev server on {url} (loopback only)"),
        format!("  demo upstream: {}   config: {}", setup.upstream_url, setup.config_path.display()),
        format!(
            "  dev issuer: {} (audience {}; token for {:?} with scope {:?}, valid 8 h)",
            setup.issuer.url(),
            issuer::AUDIENCE,
            issuer::DEFAULT_SUBJECT,
            issuer::DEFAULT_SCOPE
        ),
        String::new(),
        format!("export PORTCULLIS_TOKEN={}", setup.token),
        String::new(),
        "Try:".to_owned(),
        format!("  curl -s {url}/v1/runtime/info {auth}"),
        format!("  curl -s {url}/v1/catalog/effective {auth} | head -c 600; echo"),
        exec(r#"{"toolId":"tickets:createTicket","body":{"title":"Printer jam"}}"#),
        exec(r#"{"toolId":"tickets:listTickets","flags":{"status":"open"}}"#),
        exec(r#"{"toolId":"tickets:getTicket","pathArgs":["1"]}"#),
        exec(r#"{"toolId":"tickets:deleteTicket","pathArgs":["1"]}"#) + "   # 403 approval_required",
        exec(r#"{"toolId":"tickets:deleteTicket","pathArgs":["1"],"approval":true}"#),
        format!("  curl -s '{url}/v1/audit/events?limit=5' {auth}"),
        format!("  curl -si {url}/v1/catalog/effective | head -n 1   # no token: 401"),
        String::new(),
        "A token with other scopes (here: one tool only):".to_owned(),
        format!(
            "  curl -s -u {}:{} -d grant_type=client_credentials -d scope=tool:tickets:getTicket {}/token",
            issuer::CLIENT_ID,
            setup.issuer.client_secret(),
            setup.issuer.url()
        ),
    ]
    .join("\n")
}
