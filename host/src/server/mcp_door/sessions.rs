//! MCP sessions of the handshake revisions (`Mcp-Session-Id`), bounded.
//!
//! | rule | default | failure |
//! |---|---|---|
//! | a session id is 128 random bits (a UUID v4, visible ASCII as the spec requires), issued by `initialize` | - | - |
//! | a session belongs to the principal that opened it; another caller naming it is told it does not exist | - | 404 |
//! | at most [`MAX_PER_PRINCIPAL`] sessions per principal: a new one ends that principal's least recently used | 32 | the ended session's next request gets 404, and the client opens a new one |
//! | at most [`MAX_SESSIONS`] in all: a new one ends the least recently used | 4,096 | as above |
//! | a session unused for [`IDLE`] is ended | 1 hour | as above |
//! | `DELETE /mcp` ends a session | - | 404 when unknown |
//!
//! A session holds no authority: every request is authenticated on its own, and the session
//! only carries the negotiated revision and the client's `clientInfo` for the audit record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::revision::ClientInfo;

/// Most sessions open at once.
pub(crate) const MAX_SESSIONS: usize = 4096;
/// Most sessions one principal holds at once.
pub(crate) const MAX_PER_PRINCIPAL: usize = 32;
/// A session unused this long is ended.
pub(crate) const IDLE: Duration = Duration::from_secs(3600);

/// What a session remembers.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The revision `initialize` negotiated.
    pub(crate) protocol_version: &'static str,
    /// What the client said it is.
    pub(crate) client: ClientInfo,
    /// The rank of the least severe log level it wants relayed (`logging/setLevel`; 0 = all).
    pub(crate) log_level: usize,
    principal: Option<String>,
    used: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Open a session for `principal`; its id.
    pub(crate) fn open(
        &self,
        principal: Option<&str>,
        protocol_version: &'static str,
        client: ClientInfo,
    ) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| now.duration_since(s.used) < IDLE);
        let theirs = open
            .values()
            .filter(|s| s.principal.as_deref() == principal)
            .count();
        if theirs >= MAX_PER_PRINCIPAL {
            evict_oldest(&mut open, |s| s.principal.as_deref() == principal);
        }
        if open.len() >= MAX_SESSIONS {
            evict_oldest(&mut open, |_| true);
        }
        open.insert(
            id.clone(),
            Session {
                protocol_version,
                client,
                log_level: 0,
                principal: principal.map(str::to_owned),
                used: now,
            },
        );
        id
    }

    /// The session `id` of `principal`, marked used; `None` when unknown, ended, idle too long
    /// or another principal's.
    pub(crate) fn touch(&self, id: &str, principal: Option<&str>) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let session = open.get_mut(id)?;
        if session.principal.as_deref() != principal || now.duration_since(session.used) >= IDLE {
            return None;
        }
        session.used = now;
        Some(session.clone())
    }

    /// Set the log level of the session `id` of `principal`; whether there was one.
    pub(crate) fn set_log_level(&self, id: &str, principal: Option<&str>, rank: usize) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(id) {
            Some(s) if s.principal.as_deref() == principal => {
                s.log_level = rank;
                true
            }
            _ => false,
        }
    }

    /// End the session `id` of `principal`; whether there was one.
    pub(crate) fn end(&self, id: &str, principal: Option<&str>) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open
            .get(id)
            .is_some_and(|s| s.principal.as_deref() == principal)
        {
            open.remove(id);
            return true;
        }
        false
    }
}

fn evict_oldest(open: &mut HashMap<String, Session>, which: impl Fn(&Session) -> bool) {
    let oldest = open
        .iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.used)
        .map(|(id, _)| id.clone());
    if let Some(id) = oldest {
        open.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_its_principals_alone_and_ends_on_delete() {
        let sessions = Sessions::default();
        let id = sessions.open(Some("alice"), "2025-11-25", ClientInfo::default());
        assert_eq!(id.len(), 32);
        assert!(sessions.touch(&id, Some("alice")).is_some());
        assert!(sessions.touch(&id, Some("mallory")).is_none());
        assert!(sessions.touch(&id, None).is_none());
        assert!(!sessions.end(&id, Some("mallory")));
        assert!(sessions.end(&id, Some("alice")));
        assert!(sessions.touch(&id, Some("alice")).is_none());
        assert!(!sessions.end(&id, Some("alice")));
    }

    #[test]
    fn sessions_are_bounded_per_principal_and_in_all() {
        let sessions = Sessions::default();
        let first = sessions.open(Some("alice"), "2025-11-25", ClientInfo::default());
        for _ in 0..MAX_PER_PRINCIPAL {
            sessions.open(Some("alice"), "2025-11-25", ClientInfo::default());
        }
        assert!(
            sessions.touch(&first, Some("alice")).is_none(),
            "the oldest was ended"
        );
        let bob = sessions.open(Some("bob"), "2025-11-25", ClientInfo::default());
        assert!(
            sessions.touch(&bob, Some("bob")).is_some(),
            "one principal never ends another's"
        );
        for i in 0..MAX_SESSIONS {
            sessions.open(Some(&format!("p{i}")), "2025-11-25", ClientInfo::default());
        }
        let open = sessions.open.lock().unwrap().len();
        assert!(open <= MAX_SESSIONS, "{open}");
    }
}
