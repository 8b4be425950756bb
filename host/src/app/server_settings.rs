//! Server settings: the HTTP edge's part of `runtime.server` (`publicUrls`,
//! `cors.allowedOrigins`, `connections`).
//!
//! Rule: what the edge matches against must be exact, so anything it could not match precisely
//! is refused: a public URL is http(s) with a host and no credentials, a CORS origin is
//! `scheme://host[:port]` ([`BrowserOrigin`]), a connection limit is greater than 0.
//! Failure mode: one problem per bad entry, at its index.
//!
//! The HTTP edge (`server`) is a door above this composition root, so its config rules live
//! here, beside the other capabilities' rules, rather than in `server/` (which would make
//! `app` import `server` while `server` runs the runtime `app` builds).

use crate::config::{Config, JsonPath, Problems, ServerConfig};
use crate::net::BrowserOrigin;

/// Check the edge settings of `runtime.server`.
pub fn check(config: &Config, p: &mut Problems) {
    let Some(server) = config.runtime.as_ref().and_then(|r| r.server.as_ref()) else {
        return;
    };
    edge_rules(server, &JsonPath::of(&["runtime", "server"]), p);
}

/// `publicUrls`, `cors.allowedOrigins` and `connections`: what the HTTP edge matches against
/// must be exact, so anything it could not match precisely is refused here.
fn edge_rules(server: &ServerConfig, path: &JsonPath, p: &mut Problems) {
    for (i, raw) in server.public_urls.iter().flatten().enumerate() {
        let ok = url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
        if !ok {
            p.push(
                path.key("publicUrls").index(i),
                "must be an http or https URL with a host (https://portcullis.example.com)",
            );
        }
    }
    let origins = server
        .cors
        .as_ref()
        .and_then(|c| c.allowed_origins.as_ref());
    for (i, raw) in origins.into_iter().flatten().enumerate() {
        if BrowserOrigin::parse(raw).is_none() {
            p.push(
                path.key("cors").key("allowedOrigins").index(i),
                "must be an exact origin: scheme://host[:port] with http or https, no path, no wildcard, not null",
            );
        }
    }
    if let Some(c) = &server.connections {
        let at = path.key("connections");
        let fields = [
            ("headerReadTimeoutMs", c.header_read_timeout_ms),
            ("idleTimeoutMs", c.idle_timeout_ms),
            ("maxConnections", c.max_connections.map(u64::from)),
            (
                "maxConnectionsPerIp",
                c.max_connections_per_ip.map(u64::from),
            ),
        ];
        for (name, value) in fields {
            if value == Some(0) {
                p.push(at.key(name), "must be greater than 0");
            }
        }
    }
}
