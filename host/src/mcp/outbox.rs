//! Which requests may have reached the server, per session.
//!
//! When a session ends while a call waits for its reply, rmcp reports a bare "transport closed":
//! it does not say whether the request was written before the end (the tool may have run) or
//! was still queued (nothing was sent). Each transport counts the requests it *started* to
//! send, minus those whose send failed in a way that proves nothing arrived (connection refused,
//! session refused, a pipe with no reader). A call that sees the count unchanged across its
//! lifetime knows no request of this session can have reached the server, so it may be resent.
//! Concurrent calls make the count move for each other; that only ever forbids a resend.

use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::JsonRpcMessage;
use rmcp::service::{RoleClient, TxJsonRpcMessage};

/// The per-session count of requests that may have been delivered.
#[derive(Debug, Default)]
pub struct Outbox {
    maybe_delivered: AtomicU64,
}

impl Outbox {
    /// Requests that may have reached the server so far.
    pub fn maybe_delivered(&self) -> u64 {
        self.maybe_delivered.load(Ordering::SeqCst)
    }

    /// Whether `message` is counted (requests are; notifications and responses are not).
    pub fn counts(message: &TxJsonRpcMessage<RoleClient>) -> bool {
        matches!(message, JsonRpcMessage::Request(_))
    }

    /// A counted message is about to be written. Call it inside the send future, right before
    /// the write: rmcp may drop a send future before it first runs (when the session ends),
    /// and such a message was never written.
    pub fn sending(&self, counted: bool) {
        if counted {
            self.maybe_delivered.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A counted message certainly did not reach the server.
    pub fn not_delivered(&self, counted: bool) {
        if counted {
            self.maybe_delivered.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
