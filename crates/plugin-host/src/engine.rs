//! The process-wide wasmtime [`Engine`], its epoch ticker, the per-kind linkers and the
//! instance-pool gate.
//!
//! | setting | value | why |
//! |---|---|---|
//! | epoch interruption | on, tick [`EPOCH_TICK`] | pre-empts a guest that never yields (fuel is off: it costs a second compile and 5-15 % speed) |
//! | allocator | pooling, [`POOL_INSTANCES`] slots | ~2x cheaper instantiation; slots are finite, so calls wait on a semaphore of the same size |
//! | CPU gate | [`cpu_slots`] (the core count, at least 2) guest calls run guest code at once | async calls wait for a slot within their budget, then fail `busy`; a call parked in a host wait (poll, sleep, outbound HTTP) gives its slot back, so plugin-free requests keep their cores during a plugin storm |
//! | WASI | p2 sync, blocking imports shadowed by bounded ones ([`super::wasi`]) | a guest asleep in `poll` wakes at its deadline with a trap |
//! | pooling fallback | on-demand allocator | when the pool's virtual address space cannot be reserved (small `ulimit -v`, 39-bit VA) |
//! | `max_wasm_stack` | [`MAX_WASM_STACK`] | deep recursion traps instead of growing |
//! | `memory_init_cow` | default (on) | instantiation maps the image instead of copying it |
//! | keep-resident | 64 KiB | zeroing a larger resident prefix on every drop cost 18 µs per call (measured) |
//!
//! The ticker is a plain OS thread holding a `Weak<Engine>`, so it cannot be starved by a busy
//! tokio runtime and stops when the engine is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::state::CallState;

/// Epoch tick: the granularity of every plugin timeout.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Concurrent plugin instances (pool slots, and the semaphore in front of them).
pub const POOL_INSTANCES: u32 = 128;
/// Largest linear memory a plugin may be granted (`limits.memoryMiB` is capped to this).
pub const MAX_MEMORY_MIB: u64 = 256;
/// Wasm stack per call.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// Guest calls that may run guest code at once (the CPU gate's size): the core count, at
/// least 2 so one long call cannot serialize all the others.
pub fn cpu_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// The shared engine and everything built once per process.
pub struct PluginEngine {
    pub(crate) engine: Arc<Engine>,
    /// Whether the pooling allocator is in use (false = on-demand fallback).
    pub pooling: bool,
    pub(crate) permits: Arc<Semaphore>,
    /// The CPU gate (see the table above).
    pub(crate) cpu: Arc<Semaphore>,
    pub(crate) secret_linker: Linker<CallState>,
    pub(crate) policy_linker: Linker<CallState>,
    pub(crate) auth_linker: Linker<CallState>,
    /// Compiled components by sha256, so a reload does not recompile unchanged plugins.
    compiled: Mutex<HashMap<String, Component>>,
    /// `None` when the client could not be built: `outbound-http` then fails every call
    /// (a default client would follow redirects).
    pub(crate) http: Option<reqwest::Client>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(false);
    config.max_wasm_stack(MAX_WASM_STACK);
    config
}

fn pooling_config() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES);
    // A Rust wasip2 component instantiates a few core modules (main, shims, fixups).
    pool.total_core_instances(POOL_INSTANCES * 8);
    pool.total_memories(POOL_INSTANCES * 2);
    pool.total_tables(POOL_INSTANCES * 8);
    pool.total_stacks(POOL_INSTANCES);
    pool.max_memory_size((MAX_MEMORY_MIB as usize) << 20);
    pool.table_elements(20_000);
    pool.linear_memory_keep_resident(64 << 10);
    pool.table_keep_resident(64 << 10);
    pool.max_unused_warm_slots(32);
    pool
}

fn build_engine() -> (Engine, bool) {
    let disabled = std::env::var("PORTCULLIS_PLUGIN_POOLING").is_ok_and(|v| v == "0");
    if !disabled {
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config()));
        // Creating the engine reserves the pool's address space: this is the probe.
        match Engine::new(&config) {
            Ok(engine) => return (engine, true),
            Err(e) => tracing::warn!(
                "plugin pooling allocator unavailable ({e:#}); using on-demand instantiation"
            ),
        }
    }
    let engine = Engine::new(&base_config()).expect("the on-demand wasmtime engine always builds");
    (engine, false)
}

fn spawn_ticker(engine: Weak<Engine>) {
    let spawned = std::thread::Builder::new()
        .name("portcullis-plugin-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        });
    if let Err(e) = spawned {
        // Without a ticker no deadline ever fires; calls then fail at their wall-clock check.
        tracing::error!("cannot start the plugin epoch thread: {e}");
    }
}

fn linker<F>(engine: &Engine, add_world: F) -> Linker<CallState>
where
    F: FnOnce(&mut Linker<CallState>) -> wasmtime::Result<()>,
{
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI p2 links into an empty linker");
    super::wasi::shadow(&mut linker).expect("bounded WASI imports replace the blocking ones");
    add_world(&mut linker).expect("a plugin world links next to WASI");
    linker
}

impl PluginEngine {
    /// The process-wide engine, built on first use.
    pub fn shared() -> Arc<PluginEngine> {
        static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
        ENGINE.get_or_init(|| Arc::new(Self::new())).clone()
    }

    fn new() -> Self {
        let (engine, pooling) = build_engine();
        let engine = Arc::new(engine);
        spawn_ticker(Arc::downgrade(&engine));
        let secret_linker = linker(&engine, |l| {
            bindings::secret::SecretSourcePlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)
        });
        let policy_linker = linker(&engine, |l| {
            bindings::policy::PolicyEvaluatorPlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)
        });
        let auth_linker = linker(&engine, |l| {
            bindings::auth::AuthProfilePlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)
        });
        let http = portcullis_net::client(portcullis_net::Purpose::PluginOutbound)
            .inspect_err(|e| tracing::error!("plugin outbound-http client could not be built: {e}"))
            .ok();
        Self {
            engine,
            pooling,
            permits: Arc::new(Semaphore::new(POOL_INSTANCES as usize)),
            cpu: Arc::new(Semaphore::new(cpu_slots())),
            secret_linker,
            policy_linker,
            auth_linker,
            compiled: Mutex::new(HashMap::new()),
            http,
        }
    }

    /// Compile component bytes (never `deserialize`: precompiled artifacts from disk are not
    /// trusted), reusing an earlier compile of the same bytes.
    pub(crate) fn compile(&self, sha256: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some(component) = self.cache().get(sha256) {
            return Ok(component.clone());
        }
        let component = Component::new(&self.engine, bytes)?;
        self.cache().insert(sha256.to_owned(), component.clone());
        Ok(component)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        self.compiled.lock().unwrap_or_else(|e| e.into_inner())
    }
}
