//! Per-call store data: the WASI context (only the granted env vars and read-only directories),
//! the memory limiter, the call's [`Budget`] (deadline, random and resource caps, see
//! [`super::wasi`]) and the host side of `log`, `clock` and `outbound-http`.
//!
//! `log` is bounded per event and per call, counting the escaped bytes written (message and
//! every field key and value after Debug-escaping, so control characters cannot multiply them):
//!
//! | limit | value | on hit |
//! |---|---|---|
//! | one event | [`LOG_EVENT_MAX`] bytes, escaped | cut, ending in `[cut]` |
//! | fields per event | [`LOG_FIELDS_MAX`] | the rest are not written |
//! | events per call | [`LOG_EVENTS_MAX`] | dropped, one warning per call |
//! | bytes per call | [`LOG_CALL_MAX`], escaped | dropped, one warning per call |

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::secret::portcullis::plugin::{clock, log, outbound_http, types};
use super::grants::Grants;
use super::wasi::{Bounded, Budget};

/// Largest escaped log event written (message and fields; longer ones are cut).
pub const LOG_EVENT_MAX: usize = 2048;
/// Fields written per log event.
pub const LOG_FIELDS_MAX: usize = 16;
/// Log events accepted per call; the rest are counted and dropped.
pub const LOG_EVENTS_MAX: u32 = 64;
/// Escaped log bytes accepted per call; events past it are dropped.
pub const LOG_CALL_MAX: usize = 16 * 1024;

/// [`StoreLimits`] plus a record of whether a memory request was refused, so a guest that
/// aborts on allocation failure is reported as a memory-limit hit, not as a generic trap.
pub struct Limiter {
    inner: StoreLimits,
    /// Set when growth beyond the limit was refused.
    pub memory_denied: bool,
}

impl Limiter {
    /// Limits for one call: memory as configured, small counts of everything else.
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .table_elements(20_000)
                .instances(32)
                .tables(32)
                .memories(4)
                .build(),
            memory_denied: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory limiter (see [`Limiter`]).
    pub limiter: Limiter,
    plugin: Arc<str>,
    grants: Arc<Grants>,
    /// Deadline, caps and CPU slot of the current budget.
    pub budget: Budget,
    http: Option<reqwest::Client>,
    logged: u32,
    logged_bytes: usize,
    log_dropped: bool,
    /// Request id for log lines.
    request_id: String,
}

impl CallState {
    /// State for one instance of `plugin`; [`Self::arm`] starts each budget (`init`, the call).
    pub fn new(
        plugin: Arc<str>,
        grants: Arc<Grants>,
        memory_bytes: usize,
        http: Option<reqwest::Client>,
    ) -> Self {
        let budget = Budget::new(memory_bytes);
        let mut table = ResourceTable::new();
        table.set_max_capacity(budget.resources);
        Self {
            wasi: grants.wasi_ctx(budget.random_max),
            table,
            limiter: Limiter::new(memory_bytes),
            plugin,
            grants,
            budget,
            http,
            logged: 0,
            logged_bytes: 0,
            log_dropped: false,
            request_id: String::new(),
        }
    }

    /// What the bounded WASI imports see ([`super::wasi`]).
    pub fn bounded(&mut self) -> Bounded<'_> {
        Bounded::new(&mut self.table, self.wasi.random(), &mut self.budget)
    }

    /// Let guest code of this call run only while holding `permit` of `gate` (the process-wide
    /// CPU gate); host waits give it back meanwhile. `None` ends that (the call is over).
    pub(crate) fn hold_cpu(&mut self, held: Option<(OwnedSemaphorePermit, Arc<Semaphore>)>) {
        let (cpu, gate) = held.map_or((None, None), |(p, g)| (Some(p), Some(g)));
        self.budget.cpu = cpu;
        self.budget.cpu_gate = gate;
    }

    /// Start a budget: host waits must end by `deadline`; log lines carry `request_id`; the log
    /// and memory-hit counters restart (a prepared instance's `init` does not use up its call's).
    pub fn arm(&mut self, request_id: &str, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        self.budget.deadline = deadline;
        self.budget.budget_ms = super::error::budget_ms(left);
        self.logged = 0;
        self.logged_bytes = 0;
        self.log_dropped = false;
        self.limiter.memory_denied = false;
        self.request_id.clear();
        self.request_id.push_str(request_id);
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

/// `message` and `fields` as one line, Debug-escaped (no newline or control character survives),
/// at most `max` bytes: whatever does not fit is cut and the line ends in `[cut]`.
pub fn escape_event(message: &str, fields: &[(String, String)], max: usize) -> String {
    const CUT: &str = " [cut]";
    let mut line = String::new();
    let budget = max.saturating_sub(CUT.len());
    let parts = std::iter::once(("", message)).chain(
        fields
            .iter()
            .take(LOG_FIELDS_MAX)
            .flat_map(|(k, v)| [(" ", k.as_str()), ("=", v.as_str())]),
    );
    for (sep, text) in parts {
        if line.len() + sep.len() > budget {
            line.push_str(CUT);
            return line;
        }
        line.push_str(sep);
        for c in text.chars().flat_map(char::escape_debug) {
            if line.len() + c.len_utf8() > budget {
                line.push_str(CUT);
                return line;
            }
            line.push(c);
        }
    }
    line
}

impl CallState {
    /// The escaped line to write for one `log` event, or `None` when this call's event or byte
    /// allowance is spent (one warning the first time).
    fn admit_log(&mut self, message: &str, fields: &[(String, String)]) -> Option<String> {
        self.logged = self.logged.saturating_add(1);
        if self.logged > LOG_EVENTS_MAX || self.logged_bytes >= LOG_CALL_MAX {
            if !self.log_dropped {
                self.log_dropped = true;
                tracing::warn!(plugin = %self.plugin, request_id = %self.request_id,
                    "plugin log limit of {LOG_EVENTS_MAX} events or {LOG_CALL_MAX} bytes per call reached; dropping the rest");
            }
            return None;
        }
        let text = escape_event(
            message,
            fields,
            LOG_EVENT_MAX.min(LOG_CALL_MAX - self.logged_bytes),
        );
        self.logged_bytes += text.len().max(1);
        Some(text)
    }
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        let Some(text) = self.admit_log(&message, &fields) else {
            return;
        };
        let plugin = &*self.plugin;
        let request_id = self.request_id.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, request_id, "{text}"),
            log::Level::Debug => tracing::debug!(plugin, request_id, "{text}"),
            log::Level::Info => tracing::info!(plugin, request_id, "{text}"),
            log::Level::Warn => tracing::warn!(plugin, request_id, "{text}"),
            log::Level::Error => tracing::error!(plugin, request_id, "{text}"),
        }
    }
}

impl clock::Host for CallState {
    fn now_unix_ms(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

impl outbound_http::Host for CallState {
    fn fetch(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, outbound_http::HttpError> {
        let Some(http) = &self.http else {
            return Err(outbound_http::HttpError::Transport(
                "the host's HTTP client could not be built".into(),
            ));
        };
        super::http::fetch(&self.plugin, &self.grants, http, &mut self.budget, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_event_is_bounded_after_escaping_with_every_field() {
        let control = "\u{1}".repeat(10_000);
        let fields: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{i}{control}"), control.clone()))
            .collect();
        let line = escape_event(&control, &fields, LOG_EVENT_MAX);
        assert!(line.len() <= LOG_EVENT_MAX, "{}", line.len());
        assert!(line.ends_with(" [cut]"));
        assert!(!line.contains('\n') && !line.contains('\u{1}'));
        let line = escape_event("a\nb", &[("k".into(), "v\r".into())], LOG_EVENT_MAX);
        assert_eq!(line, "a\\nb k=v\\r");
    }

    #[test]
    fn a_call_writes_at_most_its_log_bytes_however_it_logs() {
        let mut state = CallState::new("flood".into(), Arc::new(Grants::default()), 1 << 20, None);
        let big = "\u{7}".repeat(100_000);
        let fields: Vec<(String, String)> = (0..64).map(|_| (big.clone(), big.clone())).collect();
        let written: usize = (0..10_000)
            .filter_map(|_| state.admit_log(&big, &fields))
            .map(|line| line.len())
            .sum();
        assert!(written <= LOG_CALL_MAX, "{written}");
        assert!(written >= LOG_CALL_MAX / 2, "{written}");
        // Small events stop at the event count.
        state.arm("next", Instant::now());
        let events = (0..10_000)
            .filter_map(|_| state.admit_log("x", &[]))
            .count();
        assert_eq!(events, LOG_EVENTS_MAX as usize);
    }
}
