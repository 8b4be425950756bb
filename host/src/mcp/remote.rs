//! The two HTTP transports, written once over the runtime's `reqwest` client: MCP streamable
//! HTTP and the legacy HTTP+SSE transport (which rmcp does not provide).
//!
//! Both implement rmcp's [`Transport`], so JSON-RPC id matching, notifications and server
//! requests (`ping`) are handled by rmcp's service loop exactly as for stdio. Rules:
//! - Every request carries the static `headers`, the resolved `headerSecrets` and, when
//!   transport OAuth is configured, `Authorization: Bearer` from the source's token cache.
//! - Streamable HTTP: a response is JSON or an SSE stream; every message in it is delivered.
//!   `Mcp-Session-Id` is kept and sent back. A `404` or `400` to a `POST` that carried a session
//!   id is [`TransportError::SessionExpired`]: the server refused the message before processing
//!   it (a processed request is always answered `200`, even a failed tool call), and the cause is
//!   almost always a restarted server that no longer knows the session — the spec says `404`,
//!   the official SDK's example servers (server-everything among them) answer `400`. The error
//!   is reported through the pending request, never by ending the transport, so the session
//!   layer can tell "not delivered" from "connection lost" and resend on a new session. After
//!   initialization a `GET` stream carries server
//!   notifications such as `notifications/tools/list_changed` (a `405` means the server offers
//!   none). Closing sends `DELETE`.
//! - Streamable HTTP speaks the stateless revision 2026-07-28 too (routing headers, no session,
//!   protocol errors in 4xx bodies, older servers recognised at `server/discover`): see
//!   [`super::revision`].
//! - Legacy SSE: the `endpoint` event names where to `POST`; it must be on the same origin as
//!   the stream, so configured credentials never travel to a host the config did not name.
//! - A message that does not parse is logged and skipped; it never fails an unrelated call.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use rmcp::model::{GetExtensions as _, JsonRpcMessage};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::{mpsc, watch};
use url::Url;

use super::oauth::{OAuthError, TokenSource};
use super::outbox::Outbox;
use super::relay::RelatedCall;
use super::revision::{self, Outgoing};
use super::settings::Remote;
use super::sse;
use crate::secrets::resolve_secret;

/// How long the legacy SSE server may take to announce its message endpoint.
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// A transport failure. [`TransportError::not_delivered`] tells whether the server can have
/// seen the message, which decides whether a call may be retried on a new session.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing reached the server (connection refused, DNS, TLS).
    #[error("cannot reach the MCP server: {0}")]
    Connect(String),
    /// The server refused the message for this session before processing it (it restarted).
    #[error("the MCP server no longer knows this session")]
    SessionExpired,
    /// Transport OAuth could not supply a token.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The server refused the request.
    #[error("the MCP server answered HTTP {0}")]
    Status(u16),
    /// The exchange failed after the request was sent.
    #[error("MCP server exchange failed: {0}")]
    Exchange(String),
    /// A configured header could not be built.
    #[error("transport header {0}: {1}")]
    Header(String, String),
}

impl TransportError {
    /// True when the server cannot have acted on the message.
    pub fn not_delivered(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::SessionExpired | Self::OAuth(_) | Self::Status(401)
        )
    }
}

fn classify(error: reqwest::Error) -> TransportError {
    let error = error.without_url();
    if error.is_connect() {
        TransportError::Connect(error.to_string())
    } else {
        TransportError::Exchange(error.to_string())
    }
}

/// What both transports add to every request.
pub struct RemoteBase {
    http: reqwest::Client,
    headers: HeaderMap,
    oauth: Option<Arc<TokenSource>>,
    /// The resolved `headerSecrets` values, scrubbed from tool results.
    pub(crate) secret_values: Vec<crate::secrets::SecretValue>,
}

impl RemoteBase {
    /// Resolve the configured headers (secrets are read now, once per connection).
    pub async fn new(
        remote: &Remote,
        http: reqwest::Client,
        oauth: Option<Arc<TokenSource>>,
    ) -> Result<Self, TransportError> {
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &str| {
            let bad = |why: &str| TransportError::Header(name.to_owned(), why.to_owned());
            let name_parsed =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("invalid name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| bad("invalid value"))?;
            value.set_sensitive(true);
            headers.insert(name_parsed, value);
            Ok::<_, TransportError>(())
        };
        for (name, value) in &remote.headers {
            add(name, value)?;
        }
        let mut secret_values = Vec::new();
        for (name, secret) in &remote.header_secrets {
            let value = resolve_secret(secret)
                .await
                .map_err(|e| TransportError::Header(name.clone(), e.to_string()))?;
            add(name, value.expose())?;
            secret_values.push(value);
        }
        Ok(Self {
            http,
            headers,
            oauth,
            secret_values,
        })
    }

    async fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let mut builder = self
            .http
            .request(method, url.clone())
            .headers(self.headers.clone());
        if let Some(oauth) = &self.oauth {
            let token = oauth.bearer().await?;
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    TransportError::Header("Authorization".into(), "invalid token".into())
                })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        Ok(builder)
    }

    /// A 401 means the token was revoked or expired early: the next request gets a new one.
    async fn unauthorized(&self) -> TransportError {
        if let Some(oauth) = &self.oauth {
            oauth.invalidate().await;
        }
        TransportError::Status(401)
    }
}

type Inbox = mpsc::UnboundedSender<RxJsonRpcMessage<RoleClient>>;

/// Deliver one JSON-RPC message (or batch) from the server; a notification that arrived on
/// the answer of a relayed call is marked with it (`related`, see [`super::relay`]).
fn deliver(inbox: &Inbox, data: &str, related: Option<&str>) {
    let value: serde_json::Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(_) => {
            tracing::debug!("ignoring a non-JSON message from an MCP server");
            return;
        }
    };
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    for item in items {
        match serde_json::from_value::<RxJsonRpcMessage<RoleClient>>(item) {
            Ok(mut message) => {
                if let (Some(token), JsonRpcMessage::Notification(n)) = (related, &mut message) {
                    let mark = RelatedCall(token.to_owned());
                    n.notification.extensions_mut().insert(mark);
                }
                let _ = inbox.send(message);
            }
            Err(e) => tracing::debug!("ignoring an unrecognized message from an MCP server: {e}"),
        }
    }
}

/// Read an SSE body to its end, delivering every message event.
async fn pump_events(
    response: reqwest::Response,
    inbox: &Inbox,
    related: Option<&str>,
    mut on_endpoint: impl FnMut(&str),
) -> Result<(), TransportError> {
    let mut decoder = sse::Decoder::default();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(classify)?;
        let events = decoder
            .feed(&chunk)
            .map_err(|e| TransportError::Exchange(e.to_string()))?;
        for event in events {
            match event.name.as_str() {
                "" | "message" => deliver(inbox, &event.data, related),
                "endpoint" => on_endpoint(&event.data),
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// MCP streamable HTTP.
pub struct StreamableHttp {
    shared: Arc<HttpShared>,
    inbox: mpsc::UnboundedReceiver<RxJsonRpcMessage<RoleClient>>,
    outbox: Arc<Outbox>,
}

struct HttpShared {
    base: RemoteBase,
    url: Url,
    session: std::sync::Mutex<Option<String>>,
    inbox: Inbox,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl StreamableHttp {
    /// A transport for `url`; nothing is sent until rmcp initializes the session.
    pub fn new(base: RemoteBase, url: Url, outbox: Arc<Outbox>) -> Self {
        let (tx, inbox) = mpsc::unbounded_channel();
        Self {
            shared: Arc::new(HttpShared {
                base,
                url,
                session: std::sync::Mutex::new(None),
                inbox: tx,
                listener: std::sync::Mutex::new(None),
            }),
            inbox,
            outbox,
        }
    }
}

impl HttpShared {
    fn session_id(&self) -> Option<String> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// POST one message; `writing` runs just before the request goes out (see [`Outbox`]).
    async fn post(
        self: Arc<Self>,
        body: Vec<u8>,
        outgoing: Outgoing,
        writing: impl FnOnce(),
    ) -> Result<(), TransportError> {
        let initialized = outgoing.method.as_deref() == Some("notifications/initialized");
        // The stateless revision has no session: its requests never carry one.
        let session = self.session_id().filter(|_| outgoing.routing.is_none());
        let mut request = self
            .base
            .request(reqwest::Method::POST, &self.url)
            .await?
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json");
        if let Some(id) = &session {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in outgoing.routing.iter().flatten() {
            request = request.header(*name, value.clone());
        }
        writing();
        let response = request.body(body).send().await.map_err(classify)?;
        if let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_owned());
        }
        let status = response.status();
        // The transport stays open: ending it here would race this error to rmcp's service
        // loop, which would then report a bare "transport closed" to the caller — a state that
        // cannot be told apart from a lost reply, so the call could not be resent.
        let refused = matches!(
            status,
            reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::BAD_REQUEST
        );
        if refused && session.is_some() {
            return Err(TransportError::SessionExpired);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(self.base.unauthorized().await);
        }
        if status.is_client_error() {
            if let Some(id) = &outgoing.id {
                // See `revision`: a protocol error of the request is delivered as itself, and a
                // refused `server/discover` marks an older server (rmcp then falls back).
                let bytes = response.bytes().await.map_err(classify)?;
                if revision::correlated_error(&bytes, id) {
                    deliver(&self.inbox, &String::from_utf8_lossy(&bytes), None);
                    return Ok(());
                }
                if outgoing.is_discover() {
                    let refused = revision::discover_unsupported(id, status.as_u16());
                    deliver(&self.inbox, &refused, None);
                    return Ok(());
                }
            }
            return Err(TransportError::Status(status.as_u16()));
        }
        if !status.is_success() {
            return Err(TransportError::Status(status.as_u16()));
        }
        if initialized {
            self.clone().listen();
        }
        if is_event_stream(&response) {
            let related = outgoing.relayed_call.as_deref();
            pump_events(response, &self.inbox, related, |_| {}).await
        } else {
            let bytes = response.bytes().await.map_err(classify)?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                deliver(&self.inbox, &String::from_utf8_lossy(&bytes), None);
            }
            Ok(())
        }
    }

    /// Open the server-notification stream (`GET`), once per session.
    fn listen(self: Arc<Self>) {
        let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let shared = self.clone();
        *slot = Some(tokio::spawn(async move {
            let request = match shared.base.request(reqwest::Method::GET, &shared.url).await {
                Ok(r) => r.header(ACCEPT, "text/event-stream"),
                Err(_) => return,
            };
            let request = match shared.session_id() {
                Some(id) => request.header("mcp-session-id", id),
                None => request,
            };
            match request.send().await {
                Ok(response) if response.status().is_success() && is_event_stream(&response) => {
                    let _ = pump_events(response, &shared.inbox, None, |_| {}).await;
                }
                _ => {} // 405: the server sends no unsolicited messages.
            }
        }));
    }

    fn stop_listening(&self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for StreamableHttp {
    fn drop(&mut self) {
        self.shared.stop_listening();
    }
}

impl Transport<RoleClient> for StreamableHttp {
    type Error = TransportError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let shared = self.shared.clone();
        let counted = Outbox::counts(&item);
        let outbox = self.outbox.clone();
        let body = serde_json::to_value(&item).and_then(|value| {
            let outgoing = Outgoing::of(&value);
            serde_json::to_vec(&value).map(|body| (body, outgoing))
        });
        async move {
            let result = match body {
                Ok((body, outgoing)) => {
                    let writing = || outbox.sending(counted);
                    shared.post(body, outgoing, writing).await
                }
                Err(e) => Err(TransportError::Exchange(e.to_string())),
            };
            if result.as_ref().is_err_and(TransportError::not_delivered) {
                outbox.not_delivered(counted);
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        // The shared state holds a sender, so this ends only when the session is closed.
        self.inbox.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.shared.stop_listening();
        let Some(id) = self.shared.session_id() else {
            return Ok(());
        };
        let request = self
            .shared
            .base
            .request(reqwest::Method::DELETE, &self.shared.url)
            .await?;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            request.header("mcp-session-id", id).send(),
        )
        .await;
        Ok(())
    }
}

/// The legacy HTTP+SSE transport.
pub struct LegacySse {
    base: Arc<RemoteBase>,
    endpoint: watch::Receiver<Option<Url>>,
    inbox: mpsc::UnboundedReceiver<RxJsonRpcMessage<RoleClient>>,
    reader: tokio::task::JoinHandle<()>,
    dead: watch::Receiver<bool>,
    outbox: Arc<Outbox>,
}

impl LegacySse {
    /// Open the event stream and wait for the message endpoint.
    pub async fn connect(
        base: RemoteBase,
        url: Url,
        outbox: Arc<Outbox>,
    ) -> Result<Self, TransportError> {
        let response = base
            .request(reqwest::Method::GET, &url)
            .await?
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(classify)?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(base.unauthorized().await);
        }
        if !response.status().is_success() {
            return Err(TransportError::Status(response.status().as_u16()));
        }
        let (tx, inbox) = mpsc::unbounded_channel();
        let (endpoint_tx, mut endpoint) = watch::channel(None);
        let (dead_tx, dead) = watch::channel(false);
        let stream_url = url.clone();
        let reader = tokio::spawn(async move {
            let on_endpoint = |data: &str| match stream_url.join(data.trim()) {
                Ok(target) if target.origin() == stream_url.origin() => {
                    let _ = endpoint_tx.send(Some(target));
                }
                _ => tracing::warn!("ignoring an MCP SSE endpoint on another origin"),
            };
            let _ = pump_events(response, &tx, None, on_endpoint).await;
            let _ = dead_tx.send(true);
        });
        let announced = tokio::time::timeout(ENDPOINT_TIMEOUT, endpoint.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok());
        if !announced {
            reader.abort();
            return Err(TransportError::Exchange(
                "the SSE stream announced no message endpoint".into(),
            ));
        }
        Ok(Self {
            base: Arc::new(base),
            endpoint,
            inbox,
            reader,
            dead,
            outbox,
        })
    }
}

impl Drop for LegacySse {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Transport<RoleClient> for LegacySse {
    type Error = TransportError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let base = self.base.clone();
        let endpoint = self.endpoint.borrow().clone();
        let counted = Outbox::counts(&item);
        let outbox = self.outbox.clone();
        let body = serde_json::to_vec(&item);
        async move {
            let writing = || outbox.sending(counted);
            let result = post_message(&base, endpoint, body, writing).await;
            if result.as_ref().is_err_and(TransportError::not_delivered) {
                outbox.not_delivered(counted);
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        // Messages already received are delivered before the end of the stream is reported.
        tokio::select! {
            biased;
            message = self.inbox.recv() => message,
            _ = self.dead.wait_for(|dead| *dead) => None,
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        Ok(())
    }
}

/// POST one message to the legacy SSE endpoint; the reply arrives on the event stream.
async fn post_message(
    base: &RemoteBase,
    endpoint: Option<Url>,
    body: Result<Vec<u8>, serde_json::Error>,
    writing: impl FnOnce(),
) -> Result<(), TransportError> {
    let body = body.map_err(|e| TransportError::Exchange(e.to_string()))?;
    let endpoint = endpoint.ok_or(TransportError::SessionExpired)?;
    let request = base
        .request(reqwest::Method::POST, &endpoint)
        .await?
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    writing();
    let response = request.send().await.map_err(classify)?;
    match response.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED => Err(base.unauthorized().await),
        reqwest::StatusCode::NOT_FOUND => Err(TransportError::SessionExpired),
        s => Err(TransportError::Status(s.as_u16())),
    }
}
