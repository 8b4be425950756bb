//! Runtime lifecycle: session leases kept alive by heartbeats, and when the runtime stops.
//!
//! An open-cli client that finds `lifecycle` in `GET /v1/runtime/info` attaches a session with
//! `POST /v1/runtime/heartbeat` and renews it every `heartbeatSeconds`; `POST
//! /v1/runtime/session-close` ends it and `POST /v1/runtime/stop` stops the runtime.
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | leases exist only when `--heartbeat-seconds` and `--missed-heartbeat-limit` are both > 0 | off: a heartbeat answers `renewed: true` and stores nothing (as the reference) | one of the two without the other, or another lifecycle flag without them, refuses to start |
//! | a lease lives `heartbeatSeconds × missedHeartbeatLimit`; each heartbeat restarts it (one tokio timer per lease, no polling) | — | expiry is audited (`session_expiry`) |
//! | `--share exclusive`: one session at a time; `group`: several | `exclusive` | a second session is 409 `runtime_attach_conflict` |
//! | a lease belongs to the principal that attached it; only that principal renews or closes it | — | 409 `runtime_attach_conflict` |
//! | a heartbeat's `configFingerprint`, when both sides have one, equals `--config-fingerprint` | — | 409 `runtime_attach_mismatch` |
//! | `--shutdown when-owner-exits`: when the last lease expires or is closed, the runtime stops; `manual`: it keeps running | `manual` | — |
//! | at most [`MAX_SESSIONS`] leases; a session id is 1–[`MAX_SESSION_ID`] bytes without control characters | — | 429 `too_many_sessions`; 400 `invalid_request` |
//!
//! Stopping, for any reason, is graceful: the listener stops accepting, in-flight requests
//! finish (up to [`super::SHUTDOWN_GRACE`]), a lease-driven stop is audited
//! (`lease_expiry_shutdown`), the audit log is flushed and closed, and the process exits 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::error::ApiError;
use crate::app::runtime::Runtime;
use crate::audit::{AuditDecision, AuditEvent};

/// Most leases held at once (a `group` runtime cannot be made to keep unbounded state).
pub const MAX_SESSIONS: usize = 256;

/// Longest session id, in bytes.
pub const MAX_SESSION_ID: usize = 256;

/// `--shutdown`: what the runtime does when its last lease ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShutdownMode {
    /// Stop when the last lease expires or is closed.
    WhenOwnerExits,
    /// Keep running until `POST /v1/runtime/stop` or a signal.
    #[default]
    Manual,
}

/// `--share`: whether several sessions may hold leases at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShareMode {
    /// One session at a time.
    #[default]
    Exclusive,
    /// Several sessions; the runtime lives while any of them does.
    Group,
}

/// `--session-scope`: whom the runtime's sessions belong to (echoed for the client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SessionScope {
    /// One terminal.
    #[default]
    Terminal,
    /// One agent.
    Agent,
    /// A group of sessions sharing one runtime.
    SharedGroup,
}

fn flag_value(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// The lifecycle flags of `serve`.
#[derive(Debug, Clone, Default)]
pub struct LifecycleOptions {
    /// Seconds between the client's heartbeats (0 = no leases).
    pub heartbeat_seconds: u64,
    /// Heartbeats a lease survives missing (0 = no leases).
    pub missed_heartbeat_limit: u32,
    /// What happens when the last lease ends (`None` = [`ShutdownMode::Manual`]).
    pub shutdown: Option<ShutdownMode>,
    /// Echoed session scope (`None` = [`SessionScope::Terminal`]).
    pub session_scope: Option<SessionScope>,
    /// Share mode (`None` = [`ShareMode::Exclusive`]).
    pub share: Option<ShareMode>,
    /// Echoed: the shared group's session was derived from a configured share key.
    pub share_key_present: bool,
    /// The config fingerprint heartbeats must match when they send one.
    pub config_fingerprint: Option<String>,
}

/// Why the lifecycle flags cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleOptionsError {
    /// Only one of the two lease flags is set.
    #[error("--heartbeat-seconds and --missed-heartbeat-limit enable leases together; set both above 0 or neither")]
    HalfEnabled,
    /// A lifecycle flag without leases would silently do nothing.
    #[error("{flag} needs leases: set --heartbeat-seconds and --missed-heartbeat-limit too")]
    NeedsLeases {
        /// The flag given.
        flag: &'static str,
    },
    /// The lease would outlive any useful timer.
    #[error("--heartbeat-seconds × --missed-heartbeat-limit must be at most one day")]
    TooLong,
}

impl LifecycleOptions {
    /// Check the flags as a whole.
    pub fn validate(&self) -> Result<(), LifecycleOptionsError> {
        match (self.heartbeat_seconds > 0, self.missed_heartbeat_limit > 0) {
            (true, true) => {
                if self.ttl() > Duration::from_secs(24 * 3600) {
                    return Err(LifecycleOptionsError::TooLong);
                }
                Ok(())
            }
            (false, false) => {
                let given = [
                    ("--shutdown", self.shutdown.is_some()),
                    ("--session-scope", self.session_scope.is_some()),
                    ("--share", self.share.is_some()),
                    ("--share-key-present", self.share_key_present),
                    ("--config-fingerprint", self.config_fingerprint.is_some()),
                ];
                match given.into_iter().find(|(_, set)| *set) {
                    Some((flag, _)) => Err(LifecycleOptionsError::NeedsLeases { flag }),
                    None => Ok(()),
                }
            }
            _ => Err(LifecycleOptionsError::HalfEnabled),
        }
    }

    fn enabled(&self) -> bool {
        self.heartbeat_seconds > 0 && self.missed_heartbeat_limit > 0
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds).saturating_mul(self.missed_heartbeat_limit)
    }

    fn shutdown(&self) -> ShutdownMode {
        self.shutdown.unwrap_or_default()
    }
}

/// A lifecycle request refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    /// No or a malformed session id.
    #[error("sessionId is required: 1-{MAX_SESSION_ID} bytes without control characters")]
    InvalidSessionId,
    /// The heartbeat's config fingerprint is not the runtime's.
    #[error("the heartbeat's configFingerprint is not this runtime's")]
    FingerprintMismatch,
    /// Another session holds the exclusive runtime, or the lease belongs to another principal.
    #[error("{0}")]
    Conflict(&'static str),
    /// [`MAX_SESSIONS`] leases are held.
    #[error("the runtime holds {MAX_SESSIONS} sessions; close one first")]
    TooManySessions,
}

impl From<LifecycleError> for ApiError {
    fn from(error: LifecycleError) -> Self {
        let detail = error.to_string();
        match error {
            LifecycleError::InvalidSessionId => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
                    .with_plain("sessionId is required")
            }
            LifecycleError::FingerprintMismatch => {
                ApiError::new(StatusCode::CONFLICT, "runtime_attach_mismatch", detail)
            }
            LifecycleError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "runtime_attach_conflict", detail)
            }
            LifecycleError::TooManySessions => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_sessions", detail)
                    .with_retry_after(5)
            }
        }
    }
}

/// Why the runtime is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `POST /v1/runtime/stop`.
    Requested,
    /// The last lease expired under `when-owner-exits`.
    LeaseExpiry,
    /// The last lease was closed under `when-owner-exits`.
    LastSessionClosed,
}

struct Lease {
    owner: Option<String>,
    generation: u64,
    timer: AbortHandle,
}

#[derive(Default)]
struct Leases {
    by_session: HashMap<String, Lease>,
    generation: u64,
}

/// The leases and the stop signal of one serving runtime.
pub struct Lifecycle {
    options: LifecycleOptions,
    leases: Mutex<Leases>,
    stop: watch::Sender<Option<StopReason>>,
    runtime: Weak<Runtime>,
    this: Weak<Lifecycle>,
}

impl Lifecycle {
    /// The lifecycle of `runtime` (which it audits into) under `options`.
    pub fn new(options: LifecycleOptions, runtime: Weak<Runtime>) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            options,
            leases: Mutex::default(),
            stop: watch::channel(None).0,
            runtime,
            this: this.clone(),
        })
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases held now.
    pub fn active_sessions(&self) -> usize {
        self.leases().by_session.len()
    }

    /// `runtime/info.lifecycle`, present only when leases are on.
    pub fn info(&self) -> Option<serde_json::Value> {
        let o = &self.options;
        o.enabled().then(|| {
            serde_json::json!({
                "capabilities": ["heartbeat", "session-close"],
                "heartbeatSeconds": o.heartbeat_seconds,
                "missedHeartbeatLimit": o.missed_heartbeat_limit,
                "shutdown": flag_value(o.shutdown()),
                "sessionScope": flag_value(o.session_scope.unwrap_or_default()),
                "shareMode": flag_value(o.share.unwrap_or_default()),
                "shareKeyPresent": o.share_key_present,
                "configFingerprint": o.config_fingerprint.clone().unwrap_or_default(),
                "activeSessions": self.active_sessions(),
            })
        })
    }

    /// Attach or renew `session` for `owner`; the number of leases afterwards.
    pub fn heartbeat(
        &self,
        session: &str,
        fingerprint: Option<&str>,
        owner: Option<&str>,
    ) -> Result<usize, LifecycleError> {
        check_session_id(session)?;
        if let (Some(ours), Some(theirs)) = (
            self.options.config_fingerprint.as_deref(),
            fingerprint.filter(|f| !f.is_empty()),
        ) {
            if ours != theirs {
                return Err(LifecycleError::FingerprintMismatch);
            }
        }
        if !self.options.enabled() {
            return Ok(0);
        }
        let mut leases = self.leases();
        match leases.by_session.get(session) {
            Some(lease) if lease.owner.as_deref() != owner => {
                return Err(LifecycleError::Conflict(
                    "this session belongs to another principal",
                ));
            }
            Some(_) => {}
            None => {
                let others = !leases.by_session.is_empty();
                if others && self.options.share.unwrap_or_default() == ShareMode::Exclusive {
                    return Err(LifecycleError::Conflict(
                        "another session holds this exclusive runtime",
                    ));
                }
                if leases.by_session.len() >= MAX_SESSIONS {
                    return Err(LifecycleError::TooManySessions);
                }
            }
        }
        leases.generation += 1;
        let generation = leases.generation;
        let (this, id, ttl) = (self.this.clone(), session.to_owned(), self.options.ttl());
        let timer = tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(lifecycle) = this.upgrade() {
                lifecycle.expire(&id, generation).await;
            }
        })
        .abort_handle();
        let renewed = Lease {
            owner: owner.map(str::to_owned),
            generation,
            timer,
        };
        if let Some(previous) = leases.by_session.insert(session.to_owned(), renewed) {
            previous.timer.abort();
        }
        Ok(leases.by_session.len())
    }

    /// Whether `owner` may close `session` (a session it does not hold is no one's to refuse).
    pub fn may_close(
        &self,
        session: Option<&str>,
        owner: Option<&str>,
    ) -> Result<(), LifecycleError> {
        let Some(session) = session else {
            return Ok(());
        };
        check_session_id(session)?;
        match self.leases().by_session.get(session) {
            Some(lease) if lease.owner.as_deref() != owner => Err(LifecycleError::Conflict(
                "this session belongs to another principal",
            )),
            _ => Ok(()),
        }
    }

    /// End `session`'s lease; the leases left. Closing the last one under `when-owner-exits`
    /// stops the runtime.
    pub fn close(&self, session: Option<&str>) -> usize {
        let (removed, left) = {
            let mut leases = self.leases();
            let removed = session.and_then(|s| leases.by_session.remove(s));
            (removed, leases.by_session.len())
        };
        if let Some(lease) = removed {
            lease.timer.abort();
            if left == 0 && self.options.shutdown() == ShutdownMode::WhenOwnerExits {
                self.request_stop(StopReason::LastSessionClosed);
            }
        }
        left
    }

    async fn expire(&self, session: &str, generation: u64) {
        let left = {
            let mut leases = self.leases();
            if leases.by_session.get(session).map(|l| l.generation) != Some(generation) {
                return; // renewed or closed meanwhile
            }
            leases.by_session.remove(session);
            leases.by_session.len()
        };
        let mut event = AuditEvent::new(
            "session_expiry",
            "runtime.session",
            AuditDecision::Allowed,
            "session_expiry",
        );
        event.detail = Some(serde_json::json!({ "sessionId": session }).into());
        self.record(event).await;
        if left == 0 && self.options.shutdown() == ShutdownMode::WhenOwnerExits {
            self.request_stop(StopReason::LeaseExpiry);
        }
    }

    /// Ask the server to stop (the first reason wins).
    pub fn request_stop(&self, reason: StopReason) {
        self.stop.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    /// Resolves once a stop is requested, with its reason.
    pub async fn stopped(&self) -> StopReason {
        let mut watching = self.stop.subscribe();
        loop {
            if let Some(reason) = *watching.borrow_and_update() {
                return reason;
            }
            if watching.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// After the listener has drained: audit a lease-driven stop and cancel every lease timer.
    pub async fn finish(&self, reason: Option<StopReason>) {
        let outcome = match reason {
            Some(StopReason::LeaseExpiry) => Some("lease_expiry_shutdown:expiry"),
            Some(StopReason::LastSessionClosed) => Some("lease_expiry_shutdown:close"),
            Some(StopReason::Requested) | None => None,
        };
        if let Some(reason_code) = outcome {
            let event = AuditEvent::new(
                "lease_expiry_shutdown",
                "runtime.lease_expiry_shutdown",
                AuditDecision::Allowed,
                reason_code,
            );
            self.record(event).await;
        }
        for (_, lease) in self.leases().by_session.drain() {
            lease.timer.abort();
        }
    }

    async fn record(&self, mut event: AuditEvent) {
        let Some(runtime) = self.runtime.upgrade() else {
            return;
        };
        if event.request_id.is_none() {
            event.request_id = crate::server::request_id::current();
        }
        if let Err(error) = runtime.audit.record(event).await {
            tracing::error!("a lifecycle event could not be audited: {error}");
        }
    }
}

fn check_session_id(session: &str) -> Result<(), LifecycleError> {
    if session.is_empty() || session.len() > MAX_SESSION_ID || session.chars().any(char::is_control)
    {
        return Err(LifecycleError::InvalidSessionId);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(share: ShareMode, shutdown: ShutdownMode) -> Arc<Lifecycle> {
        let options = LifecycleOptions {
            heartbeat_seconds: 1,
            missed_heartbeat_limit: 1,
            shutdown: Some(shutdown),
            share: Some(share),
            config_fingerprint: Some("fp".into()),
            ..LifecycleOptions::default()
        };
        Lifecycle::new(options, Weak::new())
    }

    async fn stopped_within(lifecycle: &Lifecycle, wait: Duration) -> Option<StopReason> {
        tokio::time::timeout(wait, lifecycle.stopped()).await.ok()
    }

    #[tokio::test]
    async fn an_exclusive_runtime_refuses_a_second_session_and_a_group_one_keeps_both() {
        let exclusive = leases(ShareMode::Exclusive, ShutdownMode::Manual);
        assert_eq!(exclusive.heartbeat("a", None, None), Ok(1));
        assert_eq!(exclusive.heartbeat("a", Some("fp"), None), Ok(1));
        assert!(matches!(
            exclusive.heartbeat("b", None, None),
            Err(LifecycleError::Conflict(_))
        ));
        let group = leases(ShareMode::Group, ShutdownMode::Manual);
        assert_eq!(group.heartbeat("a", None, None), Ok(1));
        assert_eq!(group.heartbeat("b", None, None), Ok(2));
        assert_eq!(group.info().unwrap()["activeSessions"], 2);
    }

    #[tokio::test]
    async fn a_lease_is_renewed_and_closed_only_by_its_principal() {
        let group = leases(ShareMode::Group, ShutdownMode::Manual);
        assert_eq!(group.heartbeat("s", None, Some("alice")), Ok(1));
        for owner in [Some("mallory"), None] {
            assert!(matches!(
                group.heartbeat("s", None, owner),
                Err(LifecycleError::Conflict(_))
            ));
            assert!(group.may_close(Some("s"), owner).is_err());
        }
        assert!(group.may_close(Some("s"), Some("alice")).is_ok());
        assert!(group.may_close(Some("unknown"), Some("mallory")).is_ok());
    }

    #[tokio::test]
    async fn bad_session_ids_and_fingerprints_are_refused() {
        let lifecycle = leases(ShareMode::Group, ShutdownMode::Manual);
        let long = "x".repeat(MAX_SESSION_ID + 1);
        for id in ["", "a\nb", "a\u{7f}", long.as_str()] {
            assert_eq!(
                lifecycle.heartbeat(id, None, None),
                Err(LifecycleError::InvalidSessionId),
                "{id:?}"
            );
        }
        assert_eq!(
            lifecycle.heartbeat("a", Some("other"), None),
            Err(LifecycleError::FingerprintMismatch)
        );
        assert_eq!(lifecycle.active_sessions(), 0);
    }

    #[tokio::test]
    async fn a_group_runtime_holds_at_most_max_sessions() {
        let lifecycle = leases(ShareMode::Group, ShutdownMode::Manual);
        for i in 0..MAX_SESSIONS {
            lifecycle.heartbeat(&format!("s{i}"), None, None).unwrap();
        }
        assert_eq!(
            lifecycle.heartbeat("one-more", None, None),
            Err(LifecycleError::TooManySessions)
        );
        // Renewing a held lease is still fine.
        assert_eq!(lifecycle.heartbeat("s0", None, None), Ok(MAX_SESSIONS));
    }

    #[tokio::test]
    async fn the_last_lease_expiring_stops_only_a_when_owner_exits_runtime() {
        let owned = leases(ShareMode::Exclusive, ShutdownMode::WhenOwnerExits);
        owned.heartbeat("a", None, None).unwrap();
        // Renewed before it expires: still held after the first TTL.
        tokio::time::sleep(Duration::from_millis(600)).await;
        owned.heartbeat("a", None, None).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            owned.active_sessions(),
            1,
            "the renewal restarted the lease"
        );
        assert_eq!(
            stopped_within(&owned, Duration::from_secs(3)).await,
            Some(StopReason::LeaseExpiry)
        );
        assert_eq!(owned.active_sessions(), 0);

        let manual = leases(ShareMode::Exclusive, ShutdownMode::Manual);
        manual.heartbeat("a", None, None).unwrap();
        assert_eq!(
            stopped_within(&manual, Duration::from_millis(2500)).await,
            None
        );
        assert_eq!(
            manual.active_sessions(),
            0,
            "the lease expired all the same"
        );
    }

    #[tokio::test]
    async fn closing_the_last_of_two_group_sessions_stops_the_runtime() {
        let group = leases(ShareMode::Group, ShutdownMode::WhenOwnerExits);
        group.heartbeat("a", None, None).unwrap();
        group.heartbeat("b", None, None).unwrap();
        assert_eq!(group.close(Some("a")), 1);
        assert_eq!(
            stopped_within(&group, Duration::from_millis(50)).await,
            None
        );
        assert_eq!(group.close(None), 1, "no session named: nothing ends");
        assert_eq!(group.close(Some("b")), 0);
        assert_eq!(
            stopped_within(&group, Duration::from_millis(50)).await,
            Some(StopReason::LastSessionClosed)
        );
    }

    #[test]
    fn lease_flags_are_all_or_nothing() {
        let mut options = LifecycleOptions::default();
        assert_eq!(options.validate(), Ok(()));
        options.heartbeat_seconds = 15;
        assert_eq!(options.validate(), Err(LifecycleOptionsError::HalfEnabled));
        options.missed_heartbeat_limit = 3;
        assert_eq!(options.validate(), Ok(()));
        options.missed_heartbeat_limit = u32::MAX;
        assert_eq!(options.validate(), Err(LifecycleOptionsError::TooLong));
        let off = LifecycleOptions {
            shutdown: Some(ShutdownMode::WhenOwnerExits),
            ..LifecycleOptions::default()
        };
        assert_eq!(
            off.validate(),
            Err(LifecycleOptionsError::NeedsLeases { flag: "--shutdown" })
        );
        assert!(LifecycleOptions::default()
            .enabled()
            .then_some(())
            .is_none());
    }

    /// Every lifecycle refusal is answered with a status and code the lifecycle table of
    /// `docs/http-api.md` lists.
    #[test]
    fn every_lifecycle_refusal_is_in_docs_http_api() {
        let doc = include_str!("../../../docs/http-api.md");
        let table = doc
            .split("### Runtime lifecycle")
            .nth(1)
            .expect("a Runtime lifecycle section in docs/http-api.md");
        for error in [
            LifecycleError::InvalidSessionId,
            LifecycleError::FingerprintMismatch,
            LifecycleError::Conflict("x"),
            LifecycleError::TooManySessions,
        ] {
            let api = ApiError::from(error);
            let row = format!("| {} | ", api.status().as_u16());
            assert!(
                table
                    .lines()
                    .any(|l| l.starts_with(&row) && l.contains(&format!("`{}`", api.code()))),
                "{} `{}` is answered but not in the lifecycle table",
                api.status(),
                api.code()
            );
        }
    }
}
