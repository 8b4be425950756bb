//! What a plugin may reach, from `plugins.<name>.grants`. Deny by default: an empty grant set
//! gives a WASI context with no env vars, no directories, no stdio and no sockets.
//!
//! | grant | effect |
//! |---|---|
//! | `env: ["NAME"]` | the guest sees `NAME` with the host's value at load time (unset on the host = not passed) |
//! | `files: ["dir"]` | `dir` (relative to the config file) is preopened **read-only** at its absolute path |
//! | `http: ["https://host:port"]` | `outbound-http` may call that exact origin (scheme, host, port; no wildcards) |

use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// One granted origin, canonical (`https://example.com:443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parse `scheme://host[:port]` (no path beyond `/`, no query, no userinfo).
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?} must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} must be an origin (no path, query or fragment)"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?} must not carry credentials"));
        }
        Self::of(&url).ok_or_else(|| format!("{text:?} has no host"))
    }

    /// The origin of a request URL.
    pub fn of(url: &url::Url) -> Option<Self> {
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A plugin's resolved grants.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Env vars passed to the guest, with their values.
    pub env: Vec<(String, String)>,
    /// Directories preopened read-only (absolute host paths).
    pub dirs: Vec<PathBuf>,
    /// Origins `outbound-http` may reach.
    pub origins: Vec<Origin>,
}

impl Grants {
    /// Whether `url`'s origin is granted.
    pub fn allows(&self, url: &url::Url) -> bool {
        Origin::of(url).is_some_and(|o| self.origins.contains(&o))
    }

    /// A WASI context granting exactly these env vars and directories: no args, no stdio
    /// (stdin closed, output discarded), no sockets, no name lookups, random reads of at most
    /// `random_max` bytes.
    pub fn wasi_ctx(&self, random_max: u64) -> WasiCtx {
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_blocking_current_thread(true)
            .max_random_size(random_max);
        builder.envs(&self.env);
        for dir in &self.dirs {
            let guest = dir.to_string_lossy();
            if let Err(e) = builder.preopened_dir(dir, guest.as_ref(), FsPerms::ReadOnly) {
                // Checked at load; a directory removed since then is simply not visible.
                tracing::warn!("granted directory {} cannot be opened: {e}", dir.display());
            }
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_with_default_ports() {
        let grants = Grants {
            origins: vec![Origin::parse("https://vault.example:8200").unwrap()],
            ..Grants::default()
        };
        let ok = url::Url::parse("https://VAULT.example:8200/v1/secret").unwrap();
        assert!(grants.allows(&ok));
        for bad in [
            "http://vault.example:8200/",
            "https://vault.example/",
            "https://vault.example:8201/",
            "https://vault.example.evil:8200/",
            "https://evil/?https://vault.example:8200",
        ] {
            assert!(!grants.allows(&url::Url::parse(bad).unwrap()), "{bad}");
        }
        assert_eq!(
            Origin::parse("https://a.example").unwrap().to_string(),
            "https://a.example:443"
        );
        assert!(Origin::parse("https://a.example/path").is_err());
        assert!(Origin::parse("ftp://a.example").is_err());
        assert!(Origin::parse("https://user:pw@a.example").is_err());
    }

    #[test]
    fn no_grants_means_an_empty_grant_set() {
        let grants = Grants::default();
        assert!(!grants.allows(&url::Url::parse("http://127.0.0.1:80/").unwrap()));
    }
}
