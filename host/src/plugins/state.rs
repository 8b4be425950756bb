//! Per-call store data: the WASI context (only the granted env vars and read-only directories),
//! the memory limiter and the host side of `log`, `clock` and `outbound-http`.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::secret::portcullis::plugin::{clock, log, outbound_http, types};
use super::grants::Grants;

/// Largest log message kept (longer ones are cut).
pub const LOG_MESSAGE_MAX: usize = 1024;
/// Log events accepted per call; the rest are counted and dropped.
pub const LOG_EVENTS_MAX: u32 = 64;

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
    deadline: Instant,
    http: Option<reqwest::Client>,
    logged: u32,
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
        Self {
            wasi: grants.wasi_ctx(),
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_bytes),
            plugin,
            grants,
            deadline: Instant::now(),
            http,
            logged: 0,
            request_id: String::new(),
        }
    }

    /// Start a budget: host waits must end by `deadline`; log lines carry `request_id`; the log
    /// and memory-hit counters restart (a prepared instance's `init` does not use up its call's).
    pub fn arm(&mut self, request_id: &str, deadline: Instant) {
        self.deadline = deadline;
        self.logged = 0;
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

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        self.logged = self.logged.saturating_add(1);
        if self.logged > LOG_EVENTS_MAX {
            if self.logged == LOG_EVENTS_MAX + 1 {
                tracing::warn!(plugin = %self.plugin, request_id = %self.request_id,
                    "plugin log limit of {LOG_EVENTS_MAX} events per call reached; dropping the rest");
            }
            return;
        }
        let mut text = truncate(&message, LOG_MESSAGE_MAX).to_owned();
        for (key, value) in fields.iter().take(16) {
            text.push(' ');
            text.push_str(truncate(key, 64));
            text.push('=');
            text.push_str(truncate(value, 256));
        }
        // Debug-escape so a plugin cannot forge log lines with embedded newlines.
        let plugin = &*self.plugin;
        let request_id = self.request_id.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, request_id, "{text:?}"),
            log::Level::Debug => tracing::debug!(plugin, request_id, "{text:?}"),
            log::Level::Info => tracing::info!(plugin, request_id, "{text:?}"),
            log::Level::Warn => tracing::warn!(plugin, request_id, "{text:?}"),
            log::Level::Error => tracing::error!(plugin, request_id, "{text:?}"),
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
        super::http::fetch(&self.plugin, &self.grants, http, self.deadline, request)
    }
}
