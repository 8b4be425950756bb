//! Test-only helpers, in one place: every integration-test module takes what it needs from here
//! (`use super::support::...`). The general pieces live in this file; each peer or area has a
//! submodule.
//!
//! | module | what |
//! |--------|------|
//! | `server` | a recording upstream, a runtime on loopback serving a config from a temp dir, requests to it |
//! | `auth` | the real identity provider (npm `oidc-provider`), test keys, a JWKS server, authenticated calls |
//! | `mcp` | MCP peers (`server-everything` over its three transports, the bearer-token server) |
//! | `catalog` | catalog builds from one OpenAPI file and the corpora in `tests/peers` |
//! | `door` | the MCP door's fixture: a runtime behind auth, tokens, the SDK client, raw JSON-RPC |
//!
//! Peers are real processes on free loopback ports, waited for with bounded timeouts and killed
//! by their own process id when dropped; a missing peer fails the test with the command to fix it.
#![allow(dead_code)]

pub mod auth;
pub mod catalog;
pub mod door;
pub mod mcp;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use server::*;

/// A free loopback port, for peers that must be told their port before they listen.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Wait until `check` passes or `timeout` elapses.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `tests/peers` of this checkout: the peer scripts this repository owns (`idp/`, `mcp/`).
/// Not `peers_dir().join("..")`: `node_modules` may be a symlink into another checkout.
pub fn peer_scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers")
}

/// `tests/peers/node_modules` (installed by `./tests/run`), or `$PORTCULLIS_PEERS_DIR`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("PORTCULLIS_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/node_modules")
        })
}

/// The guest component built from crate `crate_name` (`test-secret`, `age-secrets`, ...) by the
/// `portcullis-test-artifacts` build script; plain `cargo test` builds it.
pub fn plugin_component(crate_name: &str) -> PathBuf {
    let path = portcullis_test_artifacts::component(crate_name).unwrap_or_else(|| {
        panic!("no guest crate named {crate_name} in plugins/ or tests/plugins/")
    });
    PathBuf::from(path)
}

/// Kills a spawned server when the test ends, whatever happens.
pub struct Guard(pub std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
