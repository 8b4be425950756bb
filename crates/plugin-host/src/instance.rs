//! One fresh instance: its store (every limit set before the first guest instruction) and the
//! typed exports of its world. An instance serves exactly one call and is then dropped, so
//! nothing a call leaves in guest memory reaches another caller, and a trap poisons nothing.
//!
//! Preparing an instance (store, instantiate, `init(config)`) is the expensive part of a call.
//! It runs either inside the call or ahead of it in the plugin's warm queue ([`super::warm`]);
//! the call then only [`arm`]s the budget and runs the kind's function.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap};

use super::bindings::types::{InitError, PluginMetadata};
use super::bindings::{auth, policy, secret};
use super::engine::EPOCH_TICK;
use super::error::{CallErrorKind, PluginError};
use super::load::{LoadedPlugin, Pre};
use super::state::CallState;
use super::validate;
use super::wasi::HostLimit;

/// Data one guest→host call may copy (strings, lists): far more than any token or JSON input.
const HOSTCALL_FUEL: usize = 1 << 20;

/// A live instance of one of the three worlds.
pub(crate) enum Ready {
    Secret(secret::SecretSourcePlugin),
    Policy(policy::PolicyEvaluatorPlugin),
    Auth(auth::AuthProfilePlugin),
}

impl Ready {
    fn instantiate(pre: &Pre, store: &mut Store<CallState>) -> wasmtime::Result<Self> {
        Ok(match pre {
            Pre::Secret(p) => Self::Secret(p.instantiate(store)?),
            Pre::Policy(p) => Self::Policy(p.instantiate(store)?),
            Pre::Auth(p) => Self::Auth(p.instantiate(store)?),
        })
    }

    fn metadata(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginMetadata> {
        match self {
            Self::Secret(p) => p.portcullis_plugin_lifecycle().call_metadata(store),
            Self::Policy(p) => p.portcullis_plugin_lifecycle().call_metadata(store),
            Self::Auth(p) => p.portcullis_plugin_lifecycle().call_metadata(store),
        }
    }

    fn init(
        &self,
        store: &mut Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), InitError>> {
        match self {
            Self::Secret(p) => p.portcullis_plugin_lifecycle().call_init(store, config),
            Self::Policy(p) => p.portcullis_plugin_lifecycle().call_init(store, config),
            Self::Auth(p) => p.portcullis_plugin_lifecycle().call_init(store, config),
        }
    }
}

/// An instance that has run `init(config)` and not yet served its call.
pub(crate) struct Prepared {
    pub(crate) store: Store<CallState>,
    pub(crate) ready: Ready,
    /// When `init` finished (the warm queue's age check).
    pub(crate) made: Instant,
    /// The pool slot this instance holds until it is dropped (also after its call, while it
    /// waits on the worker to drop it), so live stores never outnumber the pool's slots.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Start one call's budget now: epoch deadline (guest code), wall-clock deadline (host waits such
/// as `outbound-http`), request id for log lines, fresh log and memory-hit counters.
pub(crate) fn arm(store: &mut Store<CallState>, request_id: &str, timeout: Duration) {
    let tick = EPOCH_TICK.as_millis().max(1);
    let ticks = timeout.as_millis().div_ceil(tick) as u64 + 1;
    store.set_epoch_deadline(ticks);
    store.data_mut().arm(request_id, Instant::now() + timeout);
}

pub(crate) fn init_error(error: InitError) -> CallErrorKind {
    let message = match error {
        InitError::InvalidConfig(m) => format!("init: invalid config: {m}"),
        InitError::Failed(m) => format!("init: {m}"),
    };
    CallErrorKind::Guest(validate::guest_message(&message))
}

impl LoadedPlugin {
    /// A store for one instance: memory limiter, trap on epoch deadline, hostcall fuel, and a
    /// budget of `timeout` armed for `request_id`.
    fn new_store(&self, request_id: &str, timeout: Duration) -> Store<CallState> {
        let state = CallState::new(
            self.name.clone(),
            self.grants.clone(),
            self.limits.memory_bytes,
            self.engine.http.clone(),
        );
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        let resources = store.data().budget.resources;
        store.set_max_component_handles(resources);
        arm(&mut store, request_id, timeout);
        store
    }

    /// Map a wasmtime error from `store`, whose budget was `timeout`, to what the operator is told.
    pub(crate) fn classify(
        &self,
        store: &Store<CallState>,
        error: &wasmtime::Error,
        timeout: Duration,
    ) -> CallErrorKind {
        if store.data().limiter.memory_denied {
            return CallErrorKind::Memory((self.limits.memory_bytes >> 20) as u64);
        }
        if let Some(limit) = error.downcast_ref::<HostLimit>() {
            return match limit {
                HostLimit::Waited { what, budget_ms } => CallErrorKind::Waited {
                    what,
                    ms: *budget_ms,
                },
                other => CallErrorKind::Limit(other.to_string()),
            };
        }
        if let Some(ResourceTableError::Full) = error.downcast_ref::<ResourceTableError>() {
            return CallErrorKind::Limit(format!(
                "held more than {} WASI resources at once",
                store.data().budget.resources
            ));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallErrorKind::Timeout(super::error::budget_ms(timeout)),
            Some(trap) => CallErrorKind::Trap(trap.to_string()),
            None => {
                let text = error.to_string();
                CallErrorKind::Trap(validate::guest_message(text.lines().next().unwrap_or("")))
            }
        }
    }

    /// A fresh instance with `init(config)` done within `timeout`.
    pub(crate) fn prepare(
        &self,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Prepared, PluginError> {
        let mut store = self.new_store(request_id, timeout);
        let ready = Ready::instantiate(&self.pre, &mut store)
            .and_then(|ready| Ok((ready.init(&mut store, &self.config_json)?, ready)));
        match ready {
            Ok((Ok(()), ready)) => Ok(Prepared {
                store,
                ready,
                made: Instant::now(),
                permit: None,
            }),
            Ok((Err(e), _)) => Err(PluginError::call(&self.name, init_error(e))),
            Err(e) => Err(PluginError::call(
                &self.name,
                self.classify(&store, &e, timeout),
            )),
        }
    }

    /// `lifecycle.metadata()` in a fresh instance, without `init` (load time).
    pub(crate) fn instance_metadata(&self) -> Result<PluginMetadata, PluginError> {
        let timeout = self.limits.timeout;
        let mut store = self.new_store("load", timeout);
        Ready::instantiate(&self.pre, &mut store)
            .and_then(|ready| ready.metadata(&mut store))
            .map_err(|e| PluginError::call(&self.name, self.classify(&store, &e, timeout)))
    }
}
