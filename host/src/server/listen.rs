//! Accepting connections (security cases R09, H04, H05): what holds before a request is read.
//!
//! | limit (`runtime.server.connections`) | default | when exceeded |
//! |---|---|---|
//! | `headerReadTimeoutMs`: a whole request head must arrive within this, timed from when the server starts waiting for it (so an idle keep-alive connection also waits at most this long) | 10000 | connection closed |
//! | `idleTimeoutMs`: no byte read or written while no request is being answered (a client that stops reading its response) | 60000 | connection closed |
//! | `idleTimeoutMs` also between two parts of a request body | 60000 | the body read fails (400), connection closed |
//! | `maxConnections`: open connections at once | 1024 | `503` written without reading the request, connection closed |
//! | `maxConnectionsPerIp`: open connections from one client IP at once | 256 | same |
//!
//! HTTP/1.1 only: no HTTP/2 (h2c), so no stream multiplexing to bound (rapid reset,
//! CONTINUATION floods). Refusing an excess connection never waits on the client: the 503 is
//! one non-blocking write, then the socket is dropped, so the accept loop keeps going. Accept
//! errors such as descriptor exhaustion pause the loop briefly instead of spinning; at start the
//! soft open-file limit is raised to the hard one, with a warning when `maxConnections` does not
//! fit under it. The limits are read when the server starts. On shutdown the listener closes at once, idle connections are
//! closed and in-flight requests finish (bounded by the caller's grace period).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use super::edge::LocalAddr;
use crate::config::ConnectionLimits;

/// Connection limits in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// See the module header.
    pub header_read_timeout: Duration,
    /// See the module header.
    pub idle_timeout: Duration,
    /// See the module header.
    pub max_connections: usize,
    /// See the module header.
    pub max_connections_per_ip: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self::from_config(None)
    }
}

impl ConnectionSettings {
    /// The configured limits, defaults for what is unset.
    pub fn from_config(config: Option<&ConnectionLimits>) -> Self {
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default));
        let count = |v: Option<u32>, default: usize| v.map_or(default, |n| n as usize);
        Self {
            header_read_timeout: ms(config.and_then(|c| c.header_read_timeout_ms), 10_000),
            idle_timeout: ms(config.and_then(|c| c.idle_timeout_ms), 60_000),
            max_connections: count(config.and_then(|c| c.max_connections), 1024),
            max_connections_per_ip: count(config.and_then(|c| c.max_connections_per_ip), 256),
        }
    }
}

/// Descriptors kept free for everything but client connections (audit files, upstream and MCP
/// connections, plugin and config files).
const RESERVED_DESCRIPTORS: u64 = 128;

/// Raise the soft open-file limit to the hard one (as Go does at start), and warn when
/// `maxConnections` would not fit under it: descriptor exhaustion must hit the connection cap,
/// not `accept`.
pub fn fit_open_file_limit(settings: &ConnectionSettings) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!("could not raise the open-file limit: {e}");
            }
        }
        let wanted = settings.max_connections as u64 + RESERVED_DESCRIPTORS;
        if let Some(current) = getrlimit(Resource::Nofile).current.filter(|&c| c < wanted) {
            tracing::warn!(
                "runtime.server.connections.maxConnections is {} but the open-file limit is {current}; \
                 lower maxConnections or raise the limit (ulimit -n, LimitNOFILE) to at least {wanted}",
                settings.max_connections
            );
        }
    }
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Slots {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    drained: Notify,
}

/// One open connection; dropping it frees its slot.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(self: &Arc<Self>, ip: IpAddr, settings: &ConnectionSettings) -> Option<Slot> {
        let mut open = self.lock();
        let (total, per_ip) = &mut *open;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= settings.max_connections || mine >= settings.max_connections_per_ip {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().0 == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        if *total == 0 {
            self.slots.drained.notify_waiters();
        }
    }
}

/// Accept connections until `stop` fires, then wait for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::default());
    let (closing, closing_rx) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Descriptor exhaustion and the like: pause instead of spinning on the error.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.take(peer.ip(), &settings) else {
            tracing::info!(ip = %peer.ip(), "connection limit reached; refusing a connection");
            refuse(&stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            settings,
            slot,
            closing_rx.clone(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    slots.all_closed().await;
}

/// One non-blocking attempt to say why, then the socket is closed.
fn refuse(stream: &TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 22\r\n\r\ntoo_many_connections\r\n";
    let _ = stream.try_write(BUSY);
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    settings: ConnectionSettings,
    slot: Slot,
    mut closing: watch::Receiver<bool>,
) {
    let local = stream.local_addr().ok();
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::enter(activity.clone());
            let router = router.clone();
            let body_timeout = settings.idle_timeout;
            async move {
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                if let Some(local) = local {
                    parts.extensions.insert(LocalAddr(local));
                }
                let body = tower_http::timeout::TimeoutBody::new(body_timeout, body);
                let response = router
                    .oneshot(axum::http::Request::from_parts(parts, body))
                    .await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let idle = activity.idle_for(settings.idle_timeout);
    tokio::pin!(idle);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                break;
            }
            () = &mut idle => {
                tracing::debug!(%peer, "closing an idle connection");
                break;
            }
            _ = closing.changed(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(slot);
}

/// When bytes last moved on a connection and how many requests it is answering.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `limit` while no request was being answered.
    async fn idle_for(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            let wait = if self.busy.load(Ordering::Relaxed) > 0 {
                limit_ms
            } else {
                let quiet = self
                    .now_ms()
                    .saturating_sub(self.last_ms.load(Ordering::Relaxed));
                if quiet >= limit_ms {
                    return;
                }
                limit_ms - quiet
            };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }
}

/// A request being answered; the connection is not idle meanwhile.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that records when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_in_total_and_per_address_and_freed_on_drop() {
        let settings = ConnectionSettings {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..ConnectionSettings::default()
        };
        let slots = Arc::new(Slots::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = slots.take(a, &settings).unwrap();
        let _a2 = slots.take(a, &settings).unwrap();
        assert!(slots.take(a, &settings).is_none(), "per address");
        let _b1 = slots.take(b, &settings).unwrap();
        assert!(slots.take(b, &settings).is_none(), "in total");
        drop(a1);
        assert!(slots.take(b, &settings).is_some());
    }
}
