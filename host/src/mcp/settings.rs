//! What one MCP source needs to connect, read from the validated config.
//!
//! The config was validated before this runs ([`check()`], the MCP rules), so a shape problem
//! here is reported as a source error rather than a panic. Secret *references* are kept, never
//! values: `headerSecrets` and OAuth client credentials are resolved at connect time, so a
//! rotated secret is picked up by the next connection.

mod check;

pub use check::check;

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use crate::config::{Config, Secret, Source, SourceType};

/// How to reach the server. `Debug` shows env and header names, never their values.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// A supervised child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Variables set for the child (its environment starts cleared, see [`super::stdio`]).
        env: BTreeMap<String, String>,
        /// Names of the runtime's own variables passed through (`passEnv`).
        pass_env: Vec<String>,
    },
    /// MCP streamable HTTP (`POST`/`GET`/`DELETE` on one URL).
    StreamableHttp(Remote),
    /// The legacy HTTP+SSE transport (`GET` event stream, `POST` to the announced endpoint).
    Sse(Remote),
}

/// Settings shared by the two HTTP transports.
#[derive(Clone, PartialEq)]
pub struct Remote {
    /// Endpoint.
    pub url: Url,
    /// Static headers.
    pub headers: BTreeMap<String, String>,
    /// Header name -> key of `secrets`.
    pub header_secrets: BTreeMap<String, Secret>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdio {
                command,
                args,
                env,
                pass_env,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env_keys", &env.keys().collect::<Vec<_>>())
                .field("pass_env", pass_env)
                .finish(),
            Self::StreamableHttp(remote) => f.debug_tuple("StreamableHttp").field(remote).finish(),
            Self::Sse(remote) => f.debug_tuple("Sse").field(remote).finish(),
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url.as_str())
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("header_secrets", &self.header_secrets)
            .finish()
    }
}

/// Transport OAuth: a client-credentials client of the shared [`crate::oauth`] cache.
pub type OAuth = crate::oauth::ClientSpec;

/// Everything needed to open a session with one MCP source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSettings {
    /// Source id (= service id).
    pub id: String,
    /// Transport.
    pub transport: Transport,
    /// Transport OAuth (streamable-http only).
    pub oauth: Option<OAuth>,
    /// Tool names hidden from the catalog.
    pub disabled_tools: Vec<String>,
    /// Longest one request on the session may take: `runtime.server.upstream.timeoutMs` when
    /// set (the same bound as an HTTP tool call), else [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Duration,
}

/// The MCP request bound when the config sets none: MCP tools often run longer than an HTTP
/// call, so this is longer than the HTTP default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl SourceSettings {
    /// The transport's name as written in config.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Stdio { .. } => "stdio",
            Transport::StreamableHttp(_) => "streamable-http",
            Transport::Sse(_) => "sse",
        }
    }

    /// Read an MCP source from the merged config.
    pub fn from_config(id: &str, source: &Source, config: &Config) -> Result<Self, String> {
        if source.kind != Some(SourceType::Mcp) {
            return Err(format!("source {id:?} is not an mcp source"));
        }
        let t = source
            .transport
            .as_ref()
            .ok_or("mcp source has no transport")?;
        let url = || -> Result<Url, String> {
            let raw = t.url.as_deref().ok_or("transport.url is required")?;
            let url = Url::parse(raw).map_err(|e| format!("transport.url: {e}"))?;
            match url.scheme() {
                "http" | "https" => Ok(url),
                other => Err(format!("transport.url: unsupported scheme {other:?}")),
            }
        };
        let remote = || -> Result<Remote, String> {
            let mut header_secrets = BTreeMap::new();
            for (header, key) in t.header_secrets.iter().flatten() {
                let secret = config
                    .secrets
                    .as_ref()
                    .and_then(|s| s.get(key))
                    .ok_or_else(|| format!("transport header secret {key:?} not found"))?;
                header_secrets.insert(header.clone(), secret.clone());
            }
            Ok(Remote {
                url: url()?,
                headers: t.headers.clone().unwrap_or_default(),
                header_secrets,
            })
        };
        let transport = match t.kind.as_deref() {
            Some("stdio") => Transport::Stdio {
                command: t.command.clone().ok_or("transport.command is required")?,
                args: t.args.clone().unwrap_or_default(),
                env: t.env.clone().unwrap_or_default(),
                pass_env: t.pass_env.clone().unwrap_or_default(),
            },
            Some("streamable-http") => Transport::StreamableHttp(remote()?),
            Some("sse") => Transport::Sse(remote()?),
            other => return Err(format!("unsupported mcp transport {other:?}")),
        };
        let oauth = match &source.oauth {
            None => None,
            Some(value) => Some(oauth(value)?),
        };
        let call_timeout = config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.upstream.as_ref())
            .and_then(|u| u.timeout_ms)
            .map_or(DEFAULT_CALL_TIMEOUT, Duration::from_millis);
        Ok(Self {
            id: id.to_owned(),
            transport,
            oauth,
            disabled_tools: source.disabled_tools.clone().unwrap_or_default(),
            call_timeout,
        })
    }
}

fn oauth(value: &serde_json::Value) -> Result<OAuth, String> {
    use crate::oauth::{AuthMethod, Mode, Storage};
    let typed: crate::config::McpOAuth =
        serde_json::from_value(value.clone()).map_err(|e| format!("oauth: {e}"))?;
    let parse = |field: &str, raw: Option<String>| -> Result<Option<Url>, String> {
        raw.map(|r| Url::parse(&r).map_err(|e| format!("oauth.{field}: {e}")))
            .transpose()
    };
    let mut scopes = typed.scopes.unwrap_or_default();
    scopes.sort();
    scopes.dedup();
    Ok(OAuth {
        mode: Mode::ClientCredentials,
        token_url: parse("tokenURL", typed.token_url)?,
        authorization_url: None,
        issuer: parse("issuer", typed.issuer)?,
        client_id: typed.client_id.ok_or("oauth.clientId is required")?,
        client_secret: Some(
            typed
                .client_secret
                .ok_or("oauth.clientSecret is required")?,
        ),
        scopes,
        audience: typed.audience,
        auth_method: AuthMethod::parse(typed.client_auth_method.as_deref())?,
        storage: match typed.token_storage.as_deref() {
            Some("memory") => Storage::Memory,
            _ => Storage::Instance,
        },
        redirect_uri: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_env_and_header_names_but_never_their_values() {
        let stdio = Transport::Stdio {
            command: "srv".into(),
            args: vec![],
            env: BTreeMap::from([("API_TOKEN".to_owned(), "CANARY-1".to_owned())]),
            pass_env: vec!["GITHUB_TOKEN".into()],
        };
        let remote = Transport::StreamableHttp(Remote {
            url: Url::parse("https://mcp.test/mcp").unwrap(),
            headers: BTreeMap::from([("Authorization".to_owned(), "Bearer CANARY-2".to_owned())]),
            header_secrets: BTreeMap::new(),
        });
        let printed = format!("{stdio:?} {remote:?}");
        assert!(!printed.contains("CANARY"), "{printed}");
        assert!(printed.contains("API_TOKEN") && printed.contains("Authorization"));
    }
}
