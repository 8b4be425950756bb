//! The kinds' calls: take a prepared instance (from the warm queue, or made here), arm the call's
//! budget, call the kind's function, validate what it returns, and retire the instance. Every
//! instance serves one call (`instance.rs`).
//!
//! Calls take and return the WIT records ([`super::wit`]); turning a pipeline value into one
//! (and a verdict back) is the job of the adapter beside each pipeline trait
//! (`secret_sources::wasm`, `policy::wasm`, `authn::wasm`), so this module names no pipeline
//! type.
//!
//! Calls are synchronous wasmtime calls. From async code use the `*_async` methods: they wait,
//! within the call's budget, for one of the plugin's call slots (`limits.maxConcurrent`), a pool
//! slot and a slot of the CPU gate ([`super::engine`]), then leave the executor for the call
//! (`Hop`): in place with
//! `block_in_place` on a multi-threaded runtime (a policy call is then cut off at the pipeline's
//! budget by its own epoch deadline), else on tokio's blocking pool. Sync was chosen over
//! wasmtime's async path because the reference lab measured an isolated call at about 20 µs
//! sync against 39-56 µs async on this class of machine (`shared/reference/plugin-hosts.md`
//! section 2.2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;

use super::bindings::auth::exports::portcullis::plugin::auth_profile as wit_auth;
use super::bindings::policy::exports::portcullis::plugin::policy_evaluator as wit_policy;
use super::bindings::secret::exports::portcullis::plugin::secret_source as wit_secret;
use super::bindings::types::PluginKind as WitKind;
use super::engine::POOL_INSTANCES;
use super::error::{CallErrorKind, PluginError};
use super::instance::{self, Ready};
use super::load::{LoadedPlugin, Metadata, Pre};
use super::state::CallState;
use super::validate;

type CallResult<R> = wasmtime::Result<Result<R, CallErrorKind>>;

/// The slots one call holds while it runs (all released when it ends).
pub(crate) struct Admission {
    /// A pool slot, handed to the instance made for the call (if one is made).
    pool: Option<OwnedSemaphorePermit>,
    /// A CPU-gate slot and its gate, handed to the call's store for the kind's function.
    cpu: Option<(OwnedSemaphorePermit, Arc<Semaphore>)>,
    /// One of the plugin's `limits.maxConcurrent` slots.
    _plugin: Option<OwnedSemaphorePermit>,
    /// How long the call waited for these.
    waited: Duration,
}

impl LoadedPlugin {
    /// Run `f` on a prepared instance (the warm queue's, or one made now) with the call's budget
    /// armed; map traps, timeouts and memory hits; retire the instance whatever happened.
    ///
    /// Each budget (`init` when the instance is made here, then the kind's function) is
    /// `limits.timeoutMs`, cut short at `deadline` when the caller has one (the policy
    /// pipeline's `pluginBudgetMs`).
    ///
    /// `admission.pool` is the caller's pool slot: released at once when a queued instance
    /// (which holds its own) is used, kept by an instance made here until that instance is
    /// dropped. The time spent waiting for the slots counts against the kind's function.
    fn run<R>(
        &self,
        request_id: &str,
        deadline: Option<Instant>,
        mut admission: Admission,
        f: impl FnOnce(&mut Store<CallState>, &Ready) -> CallResult<R>,
    ) -> Result<R, PluginError> {
        let mut prepared = match self.warm.take() {
            Some(prepared) => {
                drop(admission.pool.take());
                prepared
            }
            None => {
                let mut prepared = self.prepare(request_id, self.budget(deadline)?)?;
                prepared.permit = admission.pool.take();
                prepared
            }
        };
        // `init` had its own budget; the kind's function gets a whole one too (less what the
        // call waited for its slots), wherever and whenever the instance was prepared.
        let timeout = match self.budget(deadline) {
            Ok(timeout) if timeout > admission.waited => timeout - admission.waited,
            Ok(timeout) => {
                self.warm.retire(prepared);
                return Err(PluginError::call(
                    &self.name,
                    CallErrorKind::Busy(format!(
                        "it waited its whole budget of {} ms for a slot",
                        super::error::budget_ms(timeout)
                    )),
                ));
            }
            Err(error) => {
                self.warm.retire(prepared);
                return Err(error);
            }
        };
        instance::arm(&mut prepared.store, request_id, timeout);
        prepared.store.data_mut().hold_cpu(admission.cpu.take());
        let outcome = f(&mut prepared.store, &prepared.ready);
        prepared.store.data_mut().hold_cpu(None);
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kind)) => Err(PluginError::call(&self.name, kind)),
            Err(error) => Err(PluginError::call(
                &self.name,
                self.classify(&prepared.store, &error, timeout),
            )),
        };
        self.warm.retire(prepared);
        result
    }

    /// `limits.timeoutMs`, or what is left before `deadline` if that is less (nothing left is
    /// a timeout).
    fn budget(&self, deadline: Option<Instant>) -> Result<Duration, PluginError> {
        let Some(deadline) = deadline else {
            return Ok(self.limits.timeout);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PluginError::call(&self.name, CallErrorKind::Timeout(0)));
        }
        Ok(left.min(self.limits.timeout))
    }

    /// `lifecycle.metadata()` in a fresh instance, checked (load time).
    pub(crate) fn call_metadata(&self) -> Result<(Metadata, WitKind), PluginError> {
        let meta = self.instance_metadata()?;
        let invalid = |kind| PluginError::call(&self.name, kind);
        for (what, value, max) in [
            ("metadata.name", &meta.name, 128),
            ("metadata.version", &meta.version, 64),
            ("metadata.description", &meta.description, 1024),
        ] {
            validate::text(what, value, max).map_err(invalid)?;
        }
        if meta.config_schema.len() > 64 * 1024 {
            return Err(invalid(CallErrorKind::InvalidReturn(
                "metadata.config-schema is larger than 64 KiB".into(),
            )));
        }
        Ok((
            Metadata {
                name: meta.name,
                version: meta.version,
                description: meta.description,
                config_schema: meta.config_schema,
            },
            meta.kind,
        ))
    }

    /// `lifecycle.init(config)` in a fresh instance (the load-time check).
    pub(crate) fn call_init(&self) -> Result<(), PluginError> {
        self.prepare("load", self.limits.timeout).map(drop)
    }

    fn wrong_kind(&self, wanted: &'static str) -> PluginError {
        PluginError::call(
            &self.name,
            CallErrorKind::Host(format!("is not a {wanted} plugin")),
        )
    }

    /// Slots for a synchronous caller: one of the plugin's call slots (none free now is
    /// `busy`), and a pool slot if one is free now.
    fn admit_now(&self) -> Result<Admission, PluginError> {
        let plugin = self.calls.clone().try_acquire_owned().map_err(|_| {
            PluginError::call(
                &self.name,
                CallErrorKind::Busy(format!(
                    "all {} of its call slots (limits.maxConcurrent) are taken",
                    self.limits.max_concurrent
                )),
            )
        })?;
        Ok(Admission {
            pool: self.engine.permits.clone().try_acquire_owned().ok(),
            cpu: None,
            _plugin: Some(plugin),
            waited: Duration::ZERO,
        })
    }

    /// Slots for an async caller, waited for until `until` (the call's budget): the plugin's
    /// call slot, a pool slot, a CPU slot, in that order, so a plugin's excess callers wait
    /// without holding shared slots.
    async fn admit(&self, until: Instant) -> Result<Admission, PluginError> {
        let start = Instant::now();
        let budget_ms = super::error::budget_ms(until.saturating_duration_since(start));
        let plugin = self
            .slot(&self.calls, until, || {
                format!(
                    "all {} of its call slots (limits.maxConcurrent) stayed taken for its budget of {budget_ms} ms",
                    self.limits.max_concurrent
                )
            })
            .await?;
        let pool = self
            .slot(&self.engine.permits, until, || {
                format!("all {POOL_INSTANCES} plugin instance slots stayed taken for its budget of {budget_ms} ms")
            })
            .await?;
        let cpu = self
            .slot(&self.engine.cpu, until, || {
                format!(
                    "all {} CPU slots for plugin code stayed taken for its budget of {budget_ms} ms",
                    super::engine::cpu_slots()
                )
            })
            .await?;
        Ok(Admission {
            pool: Some(pool),
            cpu: Some((cpu, self.engine.cpu.clone())),
            _plugin: Some(plugin),
            waited: start.elapsed(),
        })
    }

    async fn slot(
        &self,
        gate: &Arc<Semaphore>,
        until: Instant,
        busy: impl FnOnce() -> String,
    ) -> Result<OwnedSemaphorePermit, PluginError> {
        if let Ok(permit) = gate.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let until = tokio::time::Instant::from_std(until);
        match tokio::time::timeout_at(until, gate.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(PluginError::call(
                &self.name,
                CallErrorKind::Host("shutting down".into()),
            )),
            Err(_) => Err(PluginError::call(&self.name, CallErrorKind::Busy(busy()))),
        }
    }

    /// Resolve a secret (blocking: call from a blocking thread, or use [`Self::resolve_secret_async`]).
    /// The value is checked ([`validate::secret`]); a guest error is [`CallErrorKind::Guest`]
    /// (`<kind>: <message>`, the message cut and escaped).
    pub fn resolve_secret(
        &self,
        request: &wit_secret::SecretRequest,
    ) -> Result<String, PluginError> {
        self.resolve_secret_with(request, self.admit_now()?)
    }

    fn resolve_secret_with(
        &self,
        request: &wit_secret::SecretRequest,
        admission: Admission,
    ) -> Result<String, PluginError> {
        let Pre::Secret(_) = &self.pre else {
            return Err(self.wrong_kind("secret source"));
        };
        self.run(
            &request.context.request_id,
            None,
            admission,
            |store, ready| {
                let Ready::Secret(plugin) = ready else {
                    unreachable!("checked above")
                };
                let value = match plugin
                    .portcullis_plugin_secret_source()
                    .call_resolve(&mut *store, request)?
                {
                    Ok(value) => value,
                    Err(error) => {
                        let (kind, message) = match error {
                            wit_secret::SecretError::NotFound(m) => ("not-found", m),
                            wit_secret::SecretError::Denied(m) => ("denied", m),
                            wit_secret::SecretError::Unavailable(m) => ("unavailable", m),
                            wit_secret::SecretError::InvalidReference(m) => {
                                ("invalid-reference", m)
                            }
                        };
                        return Ok(Err(CallErrorKind::Guest(format!(
                            "{kind}: {}",
                            validate::guest_message(&message)
                        ))));
                    }
                };
                Ok(validate::secret(&value).map(|()| value))
            },
        )
    }

    /// Evaluate policy (blocking), cut off at `deadline` if it comes before `limits.timeoutMs`.
    /// Deny and approval reasons are checked ([`validate::text`]); a guest error is
    /// [`CallErrorKind::Guest`].
    pub fn evaluate_policy(
        &self,
        input: &wit_policy::PolicyInput,
        deadline: Option<Instant>,
    ) -> Result<wit_policy::Decision, PluginError> {
        self.evaluate_policy_with(input, deadline, self.admit_now()?)
    }

    fn evaluate_policy_with(
        &self,
        input: &wit_policy::PolicyInput,
        deadline: Option<Instant>,
        admission: Admission,
    ) -> Result<wit_policy::Decision, PluginError> {
        let Pre::Policy(_) = &self.pre else {
            return Err(self.wrong_kind("policy evaluator"));
        };
        self.run(
            &input.context.request_id,
            deadline,
            admission,
            |store, ready| {
                let Ready::Policy(plugin) = ready else {
                    unreachable!("checked above")
                };
                let decision = match plugin
                    .portcullis_plugin_policy_evaluator()
                    .call_evaluate(&mut *store, input)?
                {
                    Ok(decision) => decision,
                    Err(message) => {
                        return Ok(Err(CallErrorKind::Guest(validate::guest_message(&message))))
                    }
                };
                let checked = match &decision {
                    wit_policy::Decision::Allow => Ok(()),
                    wit_policy::Decision::Deny(reason) => {
                        validate::text("deny reason", reason, validate::TEXT_MAX)
                    }
                    wit_policy::Decision::RequireApproval(reason) => {
                        validate::text("approval reason", reason, validate::TEXT_MAX)
                    }
                };
                Ok(checked.map(|()| decision))
            },
        )
    }

    /// Validate a bearer token (blocking). The guest's answer comes back as it said it, its
    /// error messages cut and escaped ([`validate::guest_message`]); checking the identity
    /// (lengths, expiry, scope prefixes) is the caller's (`authn::wasm`), which knows the
    /// configured prefixes.
    pub fn validate_token(
        &self,
        request: &wit_auth::AuthRequest,
    ) -> Result<Result<wit_auth::Identity, wit_auth::AuthError>, PluginError> {
        self.validate_token_with(request, self.admit_now()?)
    }

    fn validate_token_with(
        &self,
        request: &wit_auth::AuthRequest,
        admission: Admission,
    ) -> Result<Result<wit_auth::Identity, wit_auth::AuthError>, PluginError> {
        let Pre::Auth(_) = &self.pre else {
            return Err(self.wrong_kind("auth profile"));
        };
        self.run(&request.request_id, None, admission, |store, ready| {
            let Ready::Auth(plugin) = ready else {
                unreachable!("checked above")
            };
            Ok(Ok(
                match plugin
                    .portcullis_plugin_auth_profile()
                    .call_validate(&mut *store, request)?
                {
                    Ok(identity) => Ok(identity),
                    Err(wit_auth::AuthError::Rejected(m)) => {
                        Err(wit_auth::AuthError::Rejected(validate::guest_message(&m)))
                    }
                    Err(wit_auth::AuthError::Unavailable(m)) => Err(
                        wit_auth::AuthError::Unavailable(validate::guest_message(&m)),
                    ),
                },
            ))
        })
    }

    /// A call error of this plugin (for an adapter that finds the returned value unusable).
    pub fn call_error(&self, kind: CallErrorKind) -> PluginError {
        PluginError::call(&self.name, kind)
    }
}

/// How an async caller leaves its executor thread for a (synchronous) plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// `block_in_place` on a multi-threaded runtime: the call runs on this thread at once and
    /// the runtime hands this worker's other tasks to another thread. A prepared secret call
    /// measured 11-20 µs this way against 32-40 µs through `spawn_blocking` (its two thread
    /// hand-offs), but the caller's future cannot be cancelled or time out while the guest
    /// runs: only the call's epoch deadline bounds it (`limits.timeoutMs`, or a policy query's
    /// `deadline` if sooner).
    InPlace,
    /// `spawn_blocking`: the caller's future stays pollable, so a timeout around it can fire.
    /// Used for policy queries without a deadline of their own.
    Blocking,
}

impl LoadedPlugin {
    /// Wait for the call's slots until `deadline` or `limits.timeoutMs` from now, whichever is
    /// sooner, then run `f` off the executor.
    async fn off_executor<R: Send + 'static>(
        self: &Arc<Self>,
        hop: Hop,
        deadline: Option<Instant>,
        f: impl FnOnce(&LoadedPlugin, Admission) -> Result<R, PluginError> + Send + 'static,
    ) -> Result<R, PluginError> {
        let until = Instant::now() + self.limits.timeout;
        let permit = self.admit(deadline.map_or(until, |d| d.min(until))).await?;
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if hop == Hop::InPlace && multi_thread {
            return tokio::task::block_in_place(|| f(self, permit));
        }
        let plugin = self.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || f(&plugin, permit))
            .await
            .unwrap_or_else(|e| {
                Err(PluginError::call(
                    &name,
                    CallErrorKind::Host(format!("call task failed: {e}")),
                ))
            })
    }

    /// [`Self::resolve_secret`] from async code (in place on a multi-threaded runtime).
    pub async fn resolve_secret_async(
        self: &Arc<Self>,
        request: wit_secret::SecretRequest,
    ) -> Result<String, PluginError> {
        self.off_executor(Hop::InPlace, None, move |p, permit| {
            p.resolve_secret_with(&request, permit)
        })
        .await
    }

    /// [`Self::evaluate_policy`] from async code: in place on a multi-threaded runtime when the
    /// call has the pipeline's deadline (the call is then cut off there, so the budget holds
    /// without the caller's future being polled), else on the blocking pool.
    pub async fn evaluate_policy_async(
        self: &Arc<Self>,
        input: wit_policy::PolicyInput,
        deadline: Option<Instant>,
    ) -> Result<wit_policy::Decision, PluginError> {
        let hop = if deadline.is_some() {
            Hop::InPlace
        } else {
            Hop::Blocking
        };
        self.off_executor(hop, deadline, move |p, permit| {
            p.evaluate_policy_with(&input, deadline, permit)
        })
        .await
    }

    /// [`Self::validate_token`] from async code (in place on a multi-threaded runtime).
    pub async fn validate_token_async(
        self: &Arc<Self>,
        request: wit_auth::AuthRequest,
    ) -> Result<Result<wit_auth::Identity, wit_auth::AuthError>, PluginError> {
        self.off_executor(Hop::InPlace, None, move |p, permit| {
            p.validate_token_with(&request, permit)
        })
        .await
    }
}
