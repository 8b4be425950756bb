//! What an upstream MCP server sends during one `tools/call`, relayed to the caller of that
//! call (the `/mcp` door streams it on the POST's SSE answer).
//!
//! | upstream sends | relayed when | as |
//! |---|---|---|
//! | `notifications/progress` on the call's own SSE answer (streamable HTTP) | the caller's request named a `progressToken` | `notifications/progress` with the caller's token |
//! | `notifications/message` on the call's own SSE answer (streamable HTTP) | its level is at least the one the caller set (`logging/setLevel`; all by default) | `notifications/message` (`level`, `logger`, `data`) |
//! | either anywhere else (the `GET` stream, stdio, legacy SSE) | never: which call (if any) it belongs to cannot be told from a pooled session shared by many callers | - |
//!
//! Every relayed call gets a relay token of its own (`portcullis-<n>`, unique in the process),
//! sent as `_meta["dev.portcullis/relay"]` and registered in the session's [`Relays`] for the
//! call's lifetime only; the streamable HTTP transport marks each notification on the answer
//! of the request carrying it ([`RelatedCall`]), so a notification reaches the one call it
//! came with, never another session's or principal's.
//! Bounds: at most [`MAX_NOTIFICATIONS`] per call, each at most [`MAX_NOTIFICATION_BYTES`]
//! serialized, at most [`BUFFERED`] waiting for the caller; past any of them notifications are
//! dropped (they are advisory; the result is never held back). Credentials the transport
//! carries are scrubbed from each one, as from results. The call's deadline is unchanged: the
//! relay ends with the call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::upstream::AppliedCredentials;

/// Most notifications relayed for one call.
pub const MAX_NOTIFICATIONS: usize = 1000;
/// Largest notification relayed (serialized JSON).
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;
/// Notifications waiting for a slow caller before newer ones are dropped.
pub const BUFFERED: usize = 64;

/// The `_meta` key of a relayed call's token.
pub const RELAY_META: &str = "dev.portcullis/relay";

/// Relay tokens this process hands out (one per relayed call).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The caller's side of one call's relay: serialized JSON-RPC notifications, in order.
pub type Notifications = mpsc::Receiver<Bytes>;

/// The MCP log levels, least severe first (RFC 5424 severities).
pub const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The rank of a log level in [`LEVELS`].
pub fn level_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// Where one request's notifications go, and the caller's side of it.
pub fn channel() -> (mpsc::Sender<Bytes>, Notifications) {
    mpsc::channel(BUFFERED)
}

/// One call's relay to its caller.
#[derive(Debug, Clone)]
pub struct Relay {
    sender: mpsc::Sender<Bytes>,
    /// The caller's own progress token (relayed progress names it).
    caller_token: Option<Value>,
    /// The least severe log level the caller wants (`logging/setLevel`); all when unset.
    min_level: usize,
    sent: Arc<AtomicUsize>,
}

impl Relay {
    /// A relay into `sender` (from [`channel`]) for a call whose request named `caller_token`
    /// (if any), passing log messages of `min_level` and above.
    pub fn new(sender: mpsc::Sender<Bytes>, caller_token: Option<Value>, min_level: usize) -> Self {
        Self {
            sender,
            caller_token,
            min_level,
            sent: Arc::default(),
        }
    }

    /// Send `notification` (scrubbed of `carried`) to the caller, within the bounds.
    fn forward(&self, notification: &Value, carried: &AppliedCredentials) {
        let bytes = Bytes::from(serde_json::to_vec(notification).unwrap_or_default());
        if bytes.len() > MAX_NOTIFICATION_BYTES
            || self.sent.fetch_add(1, Ordering::Relaxed) >= MAX_NOTIFICATIONS
        {
            return;
        }
        // A full buffer drops this one: the caller is slow, and the call must not wait on it.
        let _ = self
            .sender
            .try_send(crate::secrets::scrub::scrub(bytes, carried));
    }
}

/// The relays of a session's calls in flight, by the relay token each was given.
#[derive(Debug, Default)]
pub struct Relays {
    calls: Mutex<HashMap<String, (Relay, AppliedCredentials)>>,
}

/// Marks a message that arrived on the SSE answer of the request carrying this relay token
/// (set by the streamable HTTP transport, read by the session's handler).
#[derive(Debug, Clone)]
pub struct RelatedCall(pub String);

/// Keeps one call registered; unregisters it when dropped (the call ended, or was dropped).
pub struct Registration<'r> {
    relays: &'r Relays,
    token: String,
}

impl Registration<'_> {
    /// The relay token the call is sent with.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.relays.lock().remove(&self.token);
    }
}

impl Relays {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Relay, AppliedCredentials)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a call's relay under a fresh relay token.
    pub fn register(&self, relay: Relay, carried: AppliedCredentials) -> Registration<'_> {
        let token = format!("portcullis-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        self.lock().insert(token.clone(), (relay, carried));
        Registration {
            relays: self,
            token,
        }
    }

    fn with(&self, token: &str, f: impl FnOnce(&Relay, &AppliedCredentials)) {
        if let Some((relay, carried)) = self.lock().get(token) {
            f(relay, carried);
        }
    }

    /// A progress notification of the call registered as `token`: relayed under the caller's
    /// progress token, if it gave one.
    pub fn progress(&self, token: &str, progress: f64, total: Option<f64>, message: Option<&str>) {
        self.with(token, |relay, carried| {
            let Some(caller_token) = &relay.caller_token else {
                return;
            };
            let mut params = json!({ "progressToken": caller_token, "progress": progress });
            if let Some(total) = total {
                params["total"] = total.into();
            }
            if let Some(message) = message {
                params["message"] = message.into();
            }
            let notification =
                json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": params });
            relay.forward(&notification, carried);
        });
    }

    /// A log message that arrived on the answer of the call registered as `token`.
    pub fn log(&self, token: &str, level: Value, logger: Option<&str>, data: &Value) {
        self.with(token, |relay, carried| {
            let rank = level.as_str().and_then(level_rank).unwrap_or(0);
            if rank < relay.min_level {
                return;
            }
            let mut params = json!({ "level": level, "data": data });
            if let Some(logger) = logger {
                params["logger"] = logger.into();
            }
            let notification =
                json!({ "jsonrpc": "2.0", "method": "notifications/message", "params": params });
            relay.forward(&notification, carried);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;

    #[tokio::test]
    async fn notifications_reach_only_their_call_under_the_callers_token_and_are_bounded() {
        let relays = Relays::default();
        let carried = AppliedCredentials {
            values: vec![SecretValue::new("s3cr3t-upstream-key".into())],
            ..Default::default()
        };
        let (sender, mut my_rx) = channel();
        let mine = Relay::new(sender, Some(json!("caller-7")), 0);
        let (sender, mut their_rx) = channel();
        // This caller asked for warnings and above only.
        let theirs = Relay::new(sender, None, level_rank("warning").unwrap());
        let me = relays.register(mine, carried.clone());
        let them = relays.register(theirs, carried);
        assert_ne!(me.token(), them.token());

        relays.progress(me.token(), 50.0, Some(100.0), None);
        relays.log(
            me.token(),
            json!("info"),
            Some("x"),
            &json!("key s3cr3t-upstream-key"),
        );
        // No caller token: progress is not relayed; a log is.
        relays.progress(them.token(), 1.0, None, None);
        relays.log(
            them.token(),
            json!("info"),
            None,
            &json!("below their level"),
        );
        relays.log(them.token(), json!("error"), None, &json!("theirs"));
        // An unknown token reaches nobody.
        relays.progress("portcullis-0", 1.0, None, None);

        let next = |rx: &mut Notifications| -> Value {
            serde_json::from_slice(&rx.try_recv().unwrap()).unwrap()
        };
        let progress = next(&mut my_rx);
        assert_eq!(progress["params"]["progressToken"], "caller-7");
        assert_eq!(progress["params"]["progress"], 50.0);
        let log = next(&mut my_rx);
        assert_eq!(log["method"], "notifications/message");
        assert_eq!(log["params"]["data"], "key [REDACTED]");
        assert!(my_rx.try_recv().is_err());
        assert_eq!(next(&mut their_rx)["params"]["data"], "theirs");
        assert!(their_rx.try_recv().is_err());

        // Oversized notifications are dropped; at most BUFFERED wait.
        relays.log(
            me.token(),
            json!("info"),
            None,
            &json!("x".repeat(MAX_NOTIFICATION_BYTES)),
        );
        assert!(my_rx.try_recv().is_err());
        for _ in 0..BUFFERED + 10 {
            relays.progress(me.token(), 1.0, None, None);
        }
        let mut waiting = 0;
        while my_rx.try_recv().is_ok() {
            waiting += 1;
        }
        assert_eq!(waiting, BUFFERED);

        // Once the call ends, its token reaches nobody and the caller's stream ends.
        drop(me);
        relays.progress("portcullis-1", 1.0, None, None);
        assert!(relays.lock().len() == 1);
        drop(them);
        assert!(relays.lock().is_empty());
    }
}
