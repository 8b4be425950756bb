//! `portcullis mcp stdio`: an MCP server on stdin/stdout for clients that only launch local
//! processes, relaying every message to a running runtime's `/mcp` door. It decides nothing:
//! the runtime authenticates the token, filters `tools/list` and runs every call, so a relayed
//! client sees exactly what the same token sees over HTTP.
//!
//! | rule | default | failure |
//! |---|---|---|
//! | one JSON-RPC message per line in, one per line out (the stdio transport) | - | a line over [`MAX_LINE`] ends the relay with an error |
//! | the token: `PORTCULLIS_MCP_TOKEN`, else the file `PORTCULLIS_MCP_TOKEN_FILE` names, read again for every message (a rotated file takes effect at once) | no token: the runtime must have auth off | the runtime's 401 comes back as a JSON-RPC error naming the status; a token file that cannot be read stops the relay with an error naming the file |
//! | `Mcp-Session-Id` and `MCP-Protocol-Version` from the runtime's `initialize` answer are sent with every later message; the session is ended (`DELETE`) when stdin closes | - | - |
//! | an HTTP answer without a JSON-RPC body (401, 403, 5xx) | - | a JSON-RPC error for the request's id: `-32000`, the status and the challenge |
//! | an SSE answer (a call's relayed progress and log messages, then its response) | each message is written as it arrives | a stream that ends before the response: a `-32000` error for the request's id |
//! | requests run concurrently; answers are written as they come, whole lines | - | - |
//! | after `initialize`, the session's `GET /mcp` stream is opened and every message on it (`notifications/tools/list_changed`) written to stdout | - | a stream the runtime refuses or ends is not reopened (logged); the client still gets every answer |
//!
//! Logs go to stderr; stdout carries only protocol messages. The token never reaches a log.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, RwLock};

use crate::net::{client, Purpose};
use crate::redact::SecretValue;

/// Longest line accepted on stdin (the runtime's body limit).
pub const MAX_LINE: usize = crate::server::MAX_REQUEST_BODY;

/// The error code of a relayed HTTP failure (the JSON-RPC range for implementation errors).
const RELAY_ERROR: i64 = -32000;

/// Where to relay to (no `Debug`: it holds the token).
pub struct RelayOptions {
    /// The runtime's base URL or its `/mcp` URL.
    pub url: String,
    /// A bearer token.
    pub token: Option<String>,
    /// A file holding the bearer token (read for every message).
    pub token_file: Option<PathBuf>,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The URL cannot be used.
    #[error("the runtime URL {0:?} is not an http(s) URL")]
    Url(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::net::NetError),
    /// stdin or stdout failed, or a line was too long.
    #[error("stdio: {0}")]
    Io(#[from] std::io::Error),
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {error}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

#[derive(Default)]
struct SessionState {
    session_id: Option<String>,
    protocol_version: Option<String>,
}

struct Relay {
    http: reqwest::Client,
    url: String,
    token: Option<SecretValue>,
    token_file: Option<PathBuf>,
    state: RwLock<SessionState>,
    stdout: Mutex<tokio::io::Stdout>,
}

/// Relay stdin to the runtime until stdin closes.
pub async fn run(options: RelayOptions) -> Result<(), RelayError> {
    let url = mcp_url(&options.url)?;
    tracing::info!(%url, "relaying MCP over stdio");
    let relay = Arc::new(Relay {
        http: client(Purpose::McpRemote)?,
        url,
        token: options.token.map(SecretValue::new),
        token_file: options.token_file,
        state: RwLock::default(),
        stdout: Mutex::new(tokio::io::stdout()),
    });
    let mut lines = BufReader::new(tokio::io::stdin());
    let mut tasks = tokio::task::JoinSet::new();
    let mut listener = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            break;
        }
        if line.len() > MAX_LINE {
            return Err(RelayError::Io(std::io::Error::other(format!(
                "a message is longer than {MAX_LINE} bytes"
            ))));
        }
        let message = String::from_utf8_lossy(&line).trim().to_owned();
        if message.is_empty() {
            continue;
        }
        let initialize = serde_json::from_str::<Value>(&message)
            .ok()
            .and_then(|m| {
                m.get("method")
                    .and_then(Value::as_str)
                    .map(|m| m == "initialize")
            })
            .unwrap_or(false);
        let relay = relay.clone();
        // `initialize` settles the session every later message names, so it is awaited.
        if initialize {
            relay.forward(message).await?;
            if listener.is_none() && relay.state.read().await.session_id.is_some() {
                listener = Some(tokio::spawn(relay.clone().listen()));
            }
        } else {
            tasks.spawn(async move { relay.forward(message).await });
        }
        while let Some(done) = tasks.try_join_next() {
            done.map_err(std::io::Error::other)??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(std::io::Error::other)??;
    }
    relay.end_session().await;
    // Ending the session ends its stream.
    if let Some(listener) = listener {
        listener.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// `<base>/mcp`, or the URL as given when it already names `/mcp`.
fn mcp_url(raw: &str) -> Result<String, RelayError> {
    let parsed = url::Url::parse(raw).map_err(|_| RelayError::Url(raw.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(RelayError::Url(raw.to_owned()));
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(if trimmed.ends_with(super::PATH) {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{}", super::PATH)
    })
}

impl Relay {
    fn token(&self) -> Result<Option<String>, RelayError> {
        if let Some(token) = &self.token {
            return Ok(Some(token.expose().to_owned()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| RelayError::TokenFile {
            path: path.clone(),
            error,
        })?;
        Ok(Some(text.trim().to_owned()))
    }

    async fn request(
        &self,
        method: reqwest::Method,
    ) -> Result<reqwest::RequestBuilder, RelayError> {
        let mut request = self
            .http
            .request(method, &self.url)
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = self.token()? {
            request = request.bearer_auth(token);
        }
        let state = self.state.read().await;
        if let Some(id) = &state.session_id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = &state.protocol_version {
            request = request.header("mcp-protocol-version", version);
        }
        Ok(request)
    }

    /// Send one message; write the answer (or an error for a request that got none).
    async fn forward(&self, message: String) -> Result<(), RelayError> {
        let parsed: Option<Value> = serde_json::from_str(&message).ok();
        let id = parsed.as_ref().and_then(|m| m.get("id")).cloned();
        let is_initialize = parsed
            .as_ref()
            .and_then(|m| m.get("method"))
            .and_then(Value::as_str)
            == Some("initialize");
        let sent = self
            .request(reqwest::Method::POST)
            .await?
            .header("content-type", "application/json")
            .body(message)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("the runtime cannot be reached: {error}");
                return self
                    .answer_error(id, format!("the runtime cannot be reached: {error}"))
                    .await;
            }
        };
        let status = response.status();
        let session = header(&response, "mcp-session-id");
        let challenge = header(&response, "www-authenticate");
        let streamed =
            header(&response, "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        if status.is_success() && streamed {
            return self.forward_events(response, id).await;
        }
        let body = response.bytes().await.unwrap_or_default();
        let answer: Option<Value> = serde_json::from_slice(&body)
            .ok()
            .filter(|v: &Value| v.get("jsonrpc").is_some());
        if is_initialize && status.is_success() {
            let mut state = self.state.write().await;
            state.session_id = session;
            state.protocol_version = answer
                .as_ref()
                .and_then(|a| a.pointer("/result/protocolVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        match answer {
            Some(answer) => self.write(&answer).await,
            None if status.is_success() => Ok(()),
            None => {
                let mut message = format!("the runtime answered HTTP {status}");
                if let Some(challenge) = challenge {
                    message.push_str(&format!(" ({challenge})"));
                }
                self.answer_error(id, message).await
            }
        }
    }

    /// Relay the session's server-to-client stream to stdout until it ends.
    async fn listen(self: Arc<Self>) -> Result<(), RelayError> {
        use futures_util::StreamExt as _;
        let sent = self.request(reqwest::Method::GET).await?.send().await;
        let response = match sent {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::info!(status = %response.status(), "the runtime offers no MCP stream; tool list changes are not relayed");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!("the MCP stream could not be opened: {error}");
                return Ok(());
            }
        };
        let mut decoder = crate::mcp::sse::Decoder::default();
        let mut body = response.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            let Ok(events) = decoder.feed(&chunk) else {
                break;
            };
            for event in events
                .iter()
                .filter(|e| matches!(e.name.as_str(), "" | "message"))
            {
                if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                    self.write(&message).await?;
                }
            }
        }
        tracing::debug!("the MCP stream ended");
        Ok(())
    }

    /// An SSE answer (a call's relayed progress and log messages, then its response): each
    /// message is written as it arrives; a stream that breaks before the response is answered
    /// with an error for `id`.
    async fn forward_events(
        &self,
        response: reqwest::Response,
        id: Option<Value>,
    ) -> Result<(), RelayError> {
        use futures_util::StreamExt as _;
        let mut decoder = crate::mcp::sse::Decoder::default();
        let mut body = response.bytes_stream();
        let mut answered = false;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            let Ok(events) = decoder.feed(&chunk) else {
                break;
            };
            for event in events
                .iter()
                .filter(|e| matches!(e.name.as_str(), "" | "message"))
            {
                let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                    continue;
                };
                answered |= message.get("id").is_some() && message.get("method").is_none();
                self.write(&message).await?;
            }
        }
        if answered {
            return Ok(());
        }
        let message = "the runtime's answer stream ended before the response".to_owned();
        self.answer_error(id, message).await
    }

    /// A JSON-RPC error for the request `id` (nothing for a notification).
    async fn answer_error(&self, id: Option<Value>, message: String) -> Result<(), RelayError> {
        let Some(id) = id else { return Ok(()) };
        let error = serde_json::json!({
            "jsonrpc": "2.0", "id": id, "error": { "code": RELAY_ERROR, "message": message }
        });
        self.write(&error).await
    }

    async fn write(&self, message: &Value) -> Result<(), RelayError> {
        let mut line = serde_json::to_vec(message).unwrap_or_default();
        line.push(b'\n');
        let mut stdout = self.stdout.lock().await;
        stdout.write_all(&line).await?;
        stdout.flush().await?;
        Ok(())
    }

    async fn end_session(&self) {
        if self.state.read().await.session_id.is_none() {
            return;
        }
        if let Ok(request) = self.request(reqwest::Method::DELETE).await {
            let _ = request.send().await;
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_mcp_door() {
        assert_eq!(
            mcp_url("http://127.0.0.1:8787").unwrap(),
            "http://127.0.0.1:8787/mcp"
        );
        assert_eq!(
            mcp_url("http://127.0.0.1:8787/").unwrap(),
            "http://127.0.0.1:8787/mcp"
        );
        assert_eq!(
            mcp_url("https://p.example/mcp").unwrap(),
            "https://p.example/mcp"
        );
        assert!(mcp_url("file:///tmp/x").is_err());
        assert!(mcp_url("not a url").is_err());
    }
}
