//! Outbound HTTP: the one factory every capability gets its `reqwest::Client` from, the URL
//! rules several settings share ([`https_or_loopback`], [`parse_origin`], [`BrowserOrigin`]),
//! the network classes of addresses ([`address`]), and [`redact`]: what a log line, an error or
//! a `Debug` may show of a credential-bearing value. The leaf of the workspace: it depends on no
//! other Portcullis crate.
//!
//! Each purpose's client, in one table (`—` = `reqwest`'s default: no timeout, proxy from the
//! `HTTP(S)_PROXY`/`NO_PROXY` environment, default pool):
//!
//! | [`Purpose`] | used by | connect | total | redirects | proxy | other |
//! |---|---|---|---|---|---|---|
//! | `CatalogFetch` | `catalog::fetch` (remote OpenAPI and overlay documents) | 5 s | 30 s | at most 5 | environment | — |
//! | `CatalogDiscovered` | `catalog::discovery` (a document whose URL a discovery document named) | 5 s | 30 s | at most 5, same origin only | environment | pinned to the addresses the caller checked |
//! | `IdentityProvider` | `authn` (OIDC discovery, JWKS, token introspection) | 3 s | 5 s | none | environment | — |
//! | `OAuth` | `oauth` (authorization-server discovery, token endpoint) | 5 s | 30 s | none: client secrets go to the token endpoint only | environment | — |
//! | `McpRemote` | `mcp` (streamable HTTP and SSE transports) | 5 s | — (streams stay open) | none: credentials are attached per request | environment | — |
//! | `PluginOutbound` | `plugins` (a plugin's granted `outbound-http`) | 5 s | — (the plugin's call budget bounds it) | none | environment | — |
//! | `Upstream` | `upstream` (the tool call itself) | `connectTimeoutMs` (5 s) | `timeoutMs` (30 s), per attempt | none: followed by hand, hop by hop, under `upstream::redirect` | none (`no_proxy`) | 64 idle connections per host, `TCP_NODELAY`, no `Referer`, `User-Agent: portcullis/<version>` |
//!
//! Failure mode: a client that cannot be built is a [`NetError`] for the caller to report, never
//! a silent fallback to `reqwest`'s default client (that one follows up to 10 redirects,
//! carrying whatever credential the request had); a test below searches every crate's `src/`
//! for such a fallback.
#![deny(missing_docs)]

pub mod address;
pub mod redact;
mod url_rules;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::redirect::Policy;

pub use url_rules::{https_or_loopback, parse_origin, BrowserOrigin};

/// What a client is for; each has one fixed configuration (the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Remote source documents for the catalog.
    CatalogFetch,
    /// Documents whose URL a remote discovery document chose (RFC 9727 / RFC 8631): a
    /// redirect may not leave the origin whose addresses the caller checked.
    CatalogDiscovered,
    /// The identity provider that validates callers' tokens.
    IdentityProvider,
    /// OAuth authorization servers the runtime is a client of.
    OAuth,
    /// Remote MCP servers.
    McpRemote,
    /// A plugin's granted outbound HTTP.
    PluginOutbound,
    /// Upstream APIs, with the operator's `runtime.server.upstream` timeouts.
    Upstream {
        /// Connect timeout.
        connect: Duration,
        /// Per-attempt timeout, body included.
        timeout: Duration,
    },
}

/// Redirect hops a catalog document fetch follows.
const CATALOG_MAX_REDIRECTS: usize = 5;
/// Idle keep-alive connections kept per upstream host.
const UPSTREAM_POOL_MAX_IDLE_PER_HOST: usize = 64;

/// A client could not be built (TLS backend or resolver initialization). `Display` is the
/// cause's, so callers' messages read as before.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NetError(#[from] reqwest::Error);

/// The client for `purpose`.
pub fn client(purpose: Purpose) -> Result<reqwest::Client, NetError> {
    Ok(builder(purpose).build()?)
}

/// The client for `purpose` that resolves `domain` to `addrs` only (an upstream redirect hop
/// whose addresses were checked before connecting).
pub fn pinned_client(
    purpose: Purpose,
    domain: &str,
    addrs: &[SocketAddr],
) -> Result<reqwest::Client, NetError> {
    Ok(builder(purpose).resolve_to_addrs(domain, addrs).build()?)
}

/// The table above, as code.
fn builder(purpose: Purpose) -> reqwest::ClientBuilder {
    let b = reqwest::Client::builder();
    match purpose {
        Purpose::CatalogFetch => b
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(Policy::limited(CATALOG_MAX_REDIRECTS)),
        Purpose::CatalogDiscovered => b
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if attempt.previous().len() > CATALOG_MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if same_origin {
                    attempt.follow()
                } else {
                    attempt.error("redirect to another origin refused for a discovered document")
                }
            })),
        Purpose::IdentityProvider => b
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(Policy::none()),
        Purpose::OAuth => b
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(Policy::none()),
        Purpose::McpRemote | Purpose::PluginOutbound => b
            .connect_timeout(Duration::from_secs(5))
            .redirect(Policy::none()),
        Purpose::Upstream { connect, timeout } => b
            .connect_timeout(connect)
            .timeout(timeout)
            .pool_max_idle_per_host(UPSTREAM_POOL_MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            .referer(false)
            .no_proxy()
            .redirect(Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Every Rust source of every workspace crate (path relative to the workspace root, text),
    /// except `host/src/dev/` (local development helpers).
    fn workspace_sources() -> Vec<(PathBuf, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let root = root.canonicalize().unwrap();
        let mut stack = vec![root.join("host/src")];
        for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
            stack.push(entry.path().join("src"));
        }
        let mut sources = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if path != root.join("host/src/dev") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    sources.push((path.strip_prefix(&root).unwrap().to_owned(), text));
                }
            }
        }
        sources
    }

    #[test]
    fn every_purpose_builds_a_client() {
        let upstream = Purpose::Upstream {
            connect: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        };
        for purpose in [
            Purpose::CatalogFetch,
            Purpose::CatalogDiscovered,
            Purpose::IdentityProvider,
            Purpose::OAuth,
            Purpose::McpRemote,
            Purpose::PluginOutbound,
            upstream,
        ] {
            client(purpose).unwrap_or_else(|e| panic!("{purpose:?}: {e}"));
        }
        let pinned = pinned_client(upstream, "api.example", &["127.0.0.1:9".parse().unwrap()]);
        assert!(pinned.is_ok());
    }

    /// A failed `ClientBuilder::build()` must be an error: `reqwest`'s default client follows
    /// ten redirects (with custom credential headers) and reads proxy settings from the
    /// environment. `host/src/dev/` (local development helpers) is exempt.
    #[test]
    fn no_http_client_builder_falls_back_to_a_default_client() {
        // Spelled in pieces so this file does not match itself.
        let fallback = [
            [".build()", ".unwrap_or_default()"].concat(),
            ["reqwest::Client::", "default()"].concat(),
            ["reqwest::Client::", "new()"].concat(),
        ];
        let offenders: Vec<_> = workspace_sources()
            .into_iter()
            .filter(|(_, text)| {
                let squashed: String = text.split_whitespace().collect();
                fallback.iter().any(|f| squashed.contains(f))
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert!(offenders.is_empty(), "{offenders:?}");
    }

    /// Every outbound client comes from [`client`] or [`pinned_client`], so the table above is
    /// the whole truth. `host/src/dev/` (local development helpers) is exempt.
    #[test]
    fn clients_are_built_only_by_the_net_factory() {
        let offenders: Vec<_> = workspace_sources()
            .into_iter()
            .filter(|(path, text)| {
                path != std::path::Path::new("crates/net/src/lib.rs")
                    && (text.contains("Client::builder(") || text.contains("ClientBuilder"))
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "build HTTP clients with net::client(Purpose) (add a Purpose and its row to the \
             table in crates/net/src/lib.rs): {offenders:?}"
        );
    }
}
