//! `GET /mcp`: the server-to-client SSE stream of a handshake-revision session, which carries
//! `notifications/tools/list_changed` whenever the runtime rebuilds its catalog.
//!
//! | rule | default | failure |
//! |---|---|---|
//! | only a session's own principal opens its stream (the session id is checked as for `POST`) | - | 404 (400 without `Mcp-Session-Id`, 405 at 2026-07-28, which has no stream) |
//! | one stream per session: a second `GET` replaces the first, which ends (MCP forbids sending one message on two streams; a client whose old stream silently died reconnects at once) | - | - |
//! | at most [`MAX_PER_PRINCIPAL`] streams per principal | 8 | 429 |
//! | at most [`MAX_STREAMS`] streams in all | 1,024 | 503 |
//! | a keep-alive comment every [`KEEP_ALIVE`], and then the session must still exist (it is marked used: an open stream keeps its session alive) | 15 s | the stream ends when the session ended (idle, evicted) |
//! | `DELETE /mcp` ends the session's stream at once | - | - |
//! | every catalog rebuild (config reload, `POST /v1/refresh`, an MCP source's `list_changed`, an accepted pin) sends `notifications/tools/list_changed` | - | a client that missed one (its stream was down) re-lists on reconnect |
//!
//! No resumption: events carry no ids and `Last-Event-ID` is ignored; the only message is
//! "list again", which a reconnecting client loses nothing by missing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::Event;
use futures_util::Stream;
use tokio::sync::{oneshot, watch};

use super::sessions::Sessions;

/// Most streams one principal holds open.
pub(crate) const MAX_PER_PRINCIPAL: usize = 8;
/// Most streams open at once.
pub(crate) const MAX_STREAMS: usize = 1024;
/// How often an idle stream gets a comment (and its session is checked).
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Why a stream was not opened.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamRefused {
    /// The principal already holds [`MAX_PER_PRINCIPAL`].
    #[error("this caller already has {MAX_PER_PRINCIPAL} MCP streams open; close one first")]
    PerPrincipal,
    /// [`MAX_STREAMS`] are open.
    #[error("the runtime has {MAX_STREAMS} MCP streams open; retry later")]
    Total,
}

struct Open {
    principal: Option<String>,
    serial: u64,
    /// Dropped (or sent) to end the stream.
    _end: oneshot::Sender<()>,
}

/// The open streams, by session id.
#[derive(Default)]
pub(crate) struct Streams {
    open: Mutex<(u64, HashMap<String, Open>)>,
}

/// Frees a stream's slot when its response is dropped (the client went away), unless a newer
/// stream of the session took the slot.
pub(crate) struct Slot {
    streams: Arc<Streams>,
    session: String,
    serial: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if open
            .1
            .get(&self.session)
            .is_some_and(|o| o.serial == self.serial)
        {
            open.1.remove(&self.session);
        }
    }
}

impl Streams {
    /// Take the stream slot of `session` for `principal`, ending the session's previous stream.
    pub(crate) fn open(
        self: &Arc<Self>,
        session: &str,
        principal: Option<&str>,
    ) -> Result<(Slot, oneshot::Receiver<()>), StreamRefused> {
        let mut guard = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (serial, open) = &mut *guard;
        let replacing = open.contains_key(session);
        if !replacing {
            let theirs = open
                .values()
                .filter(|o| o.principal.as_deref() == principal)
                .count();
            if theirs >= MAX_PER_PRINCIPAL {
                return Err(StreamRefused::PerPrincipal);
            }
            if open.len() >= MAX_STREAMS {
                return Err(StreamRefused::Total);
            }
        }
        *serial += 1;
        let (end, ended) = oneshot::channel();
        open.insert(
            session.to_owned(),
            Open {
                principal: principal.map(str::to_owned),
                serial: *serial,
                _end: end,
            },
        );
        let slot = Slot {
            streams: self.clone(),
            session: session.to_owned(),
            serial: *serial,
        };
        Ok((slot, ended))
    }

    /// End the stream of `session`, if one is open.
    pub(crate) fn end(&self, session: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.1.remove(session);
    }
}

/// What one stream watches.
pub(crate) struct Watch {
    pub(crate) slot: Slot,
    pub(crate) ended: oneshot::Receiver<()>,
    pub(crate) catalog: watch::Receiver<u64>,
    pub(crate) stopping: watch::Receiver<bool>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) principal: Option<String>,
}

const LIST_CHANGED: &str = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;

/// The SSE events of one stream (module header), ending when the session or the stream does.
pub(crate) fn events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures_util::stream::unfold((watch, tick), |(mut w, mut tick)| async move {
        let event = tokio::select! {
            _ = &mut w.ended => return None,
            _ = w.stopping.wait_for(|stopping| *stopping) => return None,
            changed = w.catalog.changed() => {
                // The runtime is going away: end the stream.
                changed.ok()?;
                Event::default().data(LIST_CHANGED)
            }
            _ = tick.tick() => {
                w.sessions.touch(&w.slot.session, w.principal.as_deref())?;
                Event::default().comment("keep-alive")
            }
        };
        Some((Ok(event), (w, tick)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_stream_replaces_the_first_and_limits_hold() {
        let streams = Arc::new(Streams::default());
        let (first, mut first_ended) = streams.open("s1", Some("alice")).unwrap();
        let (_second, mut second_ended) = streams.open("s1", Some("alice")).unwrap();
        assert!(first_ended
            .try_recv()
            .is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
        // The replaced stream's slot going away does not free the new one's.
        drop(first);
        assert_eq!(streams.open.lock().unwrap().1.len(), 1);
        assert_eq!(
            second_ended.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );

        let mut slots = Vec::new();
        for i in 1..MAX_PER_PRINCIPAL {
            slots.push(streams.open(&format!("a{i}"), Some("alice")).unwrap());
        }
        assert_eq!(
            streams.open("one-more", Some("alice")).err(),
            Some(StreamRefused::PerPrincipal)
        );
        // Replacing a session's own stream is never refused.
        assert!(streams.open("s1", Some("alice")).is_ok());
        assert!(streams.open("bob-1", Some("bob")).is_ok());
        // A dropped slot frees its place.
        slots.pop();
        assert!(streams.open("again", Some("alice")).is_ok());

        streams.end("s1");
        assert!(!streams.open.lock().unwrap().1.contains_key("s1"));
    }

    #[test]
    fn streams_are_bounded_in_all() {
        let streams = Arc::new(Streams::default());
        let slots: Vec<_> = (0..MAX_STREAMS)
            .map(|i| {
                streams
                    .open(&format!("s{i}"), Some(&format!("p{i}")))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            streams.open("late", Some("late")).err(),
            Some(StreamRefused::Total)
        );
        drop(slots);
        assert!(streams.open("late", Some("late")).is_ok());
    }
}
