//! One isolated call: a fresh `Store` and instance from the plugin's `InstancePre`, every limit
//! set before the first guest instruction, `init(config)` then the kind's function, and the
//! store dropped at the end, so nothing a call leaves in guest memory reaches the next call,
//! and a trap cannot poison anything.
//!
//! Calls are synchronous wasmtime calls. From async code use the `*_async` methods: they wait
//! for a pool slot on a semaphore, then run the call on tokio's blocking pool so a guest can
//! never stall the runtime's worker threads. Sync was chosen over wasmtime's async path because
//! the reference lab measured an isolated call at about 20 µs sync against 39-56 µs async on
//! this class of machine (`shared/reference/plugin-hosts.md` section 2.2; not re-measured here),
//! and a blocking-pool hop costs a few µs.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap};

use super::bindings::auth::exports::portcullis::plugin::auth_profile as wit_auth;
use super::bindings::policy::exports::portcullis::plugin::policy_evaluator as wit_policy;
use super::bindings::secret::exports::portcullis::plugin::secret_source as wit_secret;
use super::bindings::types::{InitError, PluginKind as WitKind, RequestContext};
use super::engine::EPOCH_TICK;
use super::error::{CallErrorKind, PluginError};
use super::load::{LoadedPlugin, Metadata, Pre};
use super::state::CallState;
use super::validate;
use crate::policy::{PolicyEvaluator, PolicyQuery, PolicyVerdict};

/// Data one guest→host call may copy (strings, lists): far more than any token or JSON input.
const HOSTCALL_FUEL: usize = 1 << 20;

/// A secret-source request.
#[derive(Debug, Clone, Default)]
pub struct SecretQuery {
    /// The reference from `secrets.<key>.value`.
    pub reference: String,
    /// Service of the tool being called.
    pub service: String,
    /// Security scheme being satisfied.
    pub scheme: String,
    /// Tool id.
    pub tool_id: String,
    /// Request id.
    pub request_id: String,
    /// Caller principal.
    pub principal: Option<String>,
}

/// An auth-profile request. Its `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct AuthQuery {
    /// Bearer token (never logged).
    pub token: String,
    /// Request id.
    pub request_id: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Configured audience.
    pub audience: String,
}

impl std::fmt::Debug for AuthQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthQuery")
            .field("token", &"<redacted>")
            .field("request_id", &self.request_id)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("audience", &self.audience)
            .finish()
    }
}

/// A validated identity from an auth profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    /// Principal id.
    pub principal: String,
    /// Scopes with a configured prefix (others dropped).
    pub scopes: Vec<String>,
    /// Delegation chain.
    pub lineage: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub expires_at: Option<u64>,
}

/// An auth profile's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVerdict {
    /// Valid token.
    Authenticated(PluginIdentity),
    /// Not acceptable (401); the reason is for audit only.
    Rejected(String),
    /// Cannot decide now (503).
    Unavailable(String),
}

type CallResult<R> = wasmtime::Result<Result<R, CallErrorKind>>;

fn init_error(error: InitError) -> CallErrorKind {
    let message = match error {
        InitError::InvalidConfig(m) => format!("init: invalid config: {m}"),
        InitError::Failed(m) => format!("init: {m}"),
    };
    CallErrorKind::Guest(validate::guest_message(&message))
}

fn context(request_id: &str, principal: &Option<String>) -> RequestContext {
    RequestContext {
        request_id: request_id.to_owned(),
        principal: principal.clone(),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl LoadedPlugin {
    /// Run `f` in a fresh store with every limit set; map traps, timeouts and memory hits.
    fn run<R>(
        &self,
        request_id: &str,
        f: impl FnOnce(&mut Store<CallState>, &Pre) -> CallResult<R>,
    ) -> Result<R, PluginError> {
        let deadline = Instant::now() + self.limits.timeout;
        let state = CallState::new(
            self.name.clone(),
            self.grants.clone(),
            self.limits.memory_bytes,
            deadline,
            self.engine.http.clone(),
            request_id,
        );
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        let tick = EPOCH_TICK.as_millis().max(1);
        let ticks = self.limits.timeout.as_millis().div_ceil(tick) as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        let outcome = f(&mut store, &self.pre);
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kind)) => Err(PluginError::call(&self.name, kind)),
            Err(error) => Err(PluginError::call(&self.name, self.classify(&store, &error))),
        }
    }

    fn classify(&self, store: &Store<CallState>, error: &wasmtime::Error) -> CallErrorKind {
        if store.data().limiter.memory_denied {
            return CallErrorKind::Memory((self.limits.memory_bytes >> 20) as u64);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallErrorKind::Timeout(self.limits.timeout.as_millis() as u64),
            Some(trap) => CallErrorKind::Trap(trap.to_string()),
            None => {
                let text = error.to_string();
                CallErrorKind::Trap(validate::guest_message(text.lines().next().unwrap_or("")))
            }
        }
    }

    /// `lifecycle.metadata()` in an isolated instance.
    pub(crate) fn call_metadata(&self) -> Result<(Metadata, WitKind), PluginError> {
        self.run("load", |store, pre| {
            let meta = match pre {
                Pre::Secret(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_metadata(&mut *store)?,
                Pre::Policy(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_metadata(&mut *store)?,
                Pre::Auth(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_metadata(&mut *store)?,
            };
            for (what, value, max) in [
                ("metadata.name", &meta.name, 128),
                ("metadata.version", &meta.version, 64),
                ("metadata.description", &meta.description, 1024),
            ] {
                if let Err(e) = validate::text(what, value, max) {
                    return Ok(Err(e));
                }
            }
            if meta.config_schema.len() > 64 * 1024 {
                return Ok(Err(CallErrorKind::InvalidReturn(
                    "metadata.config-schema is larger than 64 KiB".into(),
                )));
            }
            Ok(Ok((
                Metadata {
                    name: meta.name,
                    version: meta.version,
                    description: meta.description,
                    config_schema: meta.config_schema,
                },
                meta.kind,
            )))
        })
    }

    /// `lifecycle.init(config)` in an isolated instance (the load-time check).
    pub(crate) fn call_init(&self) -> Result<(), PluginError> {
        let config = self.config_json.clone();
        self.run("load", move |store, pre| {
            let result = match pre {
                Pre::Secret(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_init(&mut *store, &config)?,
                Pre::Policy(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_init(&mut *store, &config)?,
                Pre::Auth(p) => p
                    .instantiate(&mut *store)?
                    .portcullis_plugin_lifecycle()
                    .call_init(&mut *store, &config)?,
            };
            Ok(result.map_err(init_error))
        })
    }

    fn wrong_kind(&self, wanted: &'static str) -> PluginError {
        PluginError::call(
            &self.name,
            CallErrorKind::Host(format!("is not a {wanted} plugin")),
        )
    }

    /// Resolve a secret (blocking: call from a blocking thread, or use [`Self::resolve_secret_async`]).
    pub fn resolve_secret(&self, query: &SecretQuery) -> Result<String, PluginError> {
        let Pre::Secret(_) = &self.pre else {
            return Err(self.wrong_kind("secret source"));
        };
        self.run(&query.request_id, |store, pre| {
            let Pre::Secret(pre) = pre else {
                unreachable!("checked above")
            };
            let plugin = pre.instantiate(&mut *store)?;
            if let Err(e) = plugin
                .portcullis_plugin_lifecycle()
                .call_init(&mut *store, &self.config_json)?
            {
                return Ok(Err(init_error(e)));
            }
            let request = wit_secret::SecretRequest {
                reference: query.reference.clone(),
                service: query.service.clone(),
                scheme: query.scheme.clone(),
                tool_id: query.tool_id.clone(),
                context: context(&query.request_id, &query.principal),
            };
            let value = match plugin
                .portcullis_plugin_secret_source()
                .call_resolve(&mut *store, &request)?
            {
                Ok(value) => value,
                Err(error) => {
                    let (kind, message) = match error {
                        wit_secret::SecretError::NotFound(m) => ("not-found", m),
                        wit_secret::SecretError::Denied(m) => ("denied", m),
                        wit_secret::SecretError::Unavailable(m) => ("unavailable", m),
                        wit_secret::SecretError::InvalidReference(m) => ("invalid-reference", m),
                    };
                    return Ok(Err(CallErrorKind::Guest(format!(
                        "{kind}: {}",
                        validate::guest_message(&message)
                    ))));
                }
            };
            Ok(validate::secret(&value).map(|()| value))
        })
    }

    /// Evaluate policy (blocking).
    pub fn evaluate_policy(&self, query: &PolicyQuery) -> Result<PolicyVerdict, PluginError> {
        let Pre::Policy(_) = &self.pre else {
            return Err(self.wrong_kind("policy evaluator"));
        };
        self.run(&query.request_id, |store, pre| {
            let Pre::Policy(pre) = pre else {
                unreachable!("checked above")
            };
            let plugin = pre.instantiate(&mut *store)?;
            if let Err(e) = plugin
                .portcullis_plugin_lifecycle()
                .call_init(&mut *store, &self.config_json)?
            {
                return Ok(Err(init_error(e)));
            }
            let mut safety = wit_policy::Safety::empty();
            for (on, flag) in [
                (query.read_only, wit_policy::Safety::READ_ONLY),
                (query.destructive, wit_policy::Safety::DESTRUCTIVE),
                (query.idempotent, wit_policy::Safety::IDEMPOTENT),
                (
                    query.requires_approval,
                    wit_policy::Safety::REQUIRES_APPROVAL,
                ),
            ] {
                if on {
                    safety |= flag;
                }
            }
            let input = wit_policy::PolicyInput {
                context: context(&query.request_id, &query.principal),
                scopes: query.scopes.clone(),
                tool: wit_policy::ToolInfo {
                    id: query.tool_id.clone(),
                    service: query.service.clone(),
                    method: query.method.clone(),
                    path: query.path.clone(),
                    safety,
                },
                mode: query.mode.clone(),
                profile: query.profile.clone(),
                arguments_json: query.arguments_json.clone(),
            };
            let decision = match plugin
                .portcullis_plugin_policy_evaluator()
                .call_evaluate(&mut *store, &input)?
            {
                Ok(decision) => decision,
                Err(message) => {
                    return Ok(Err(CallErrorKind::Guest(validate::guest_message(&message))))
                }
            };
            Ok(match decision {
                wit_policy::Decision::Allow => Ok(PolicyVerdict::Allow),
                wit_policy::Decision::Deny(reason) => {
                    validate::text("deny reason", &reason, validate::TEXT_MAX)
                        .map(|()| PolicyVerdict::Deny(reason))
                }
                wit_policy::Decision::RequireApproval(reason) => {
                    validate::text("approval reason", &reason, validate::TEXT_MAX)
                        .map(|()| PolicyVerdict::RequireApproval(reason))
                }
            })
        })
    }

    /// Validate a bearer token (blocking). `prefixes` are the configured scope prefixes: scopes
    /// without one are dropped.
    pub fn validate_token(
        &self,
        query: &AuthQuery,
        prefixes: &[String],
    ) -> Result<AuthVerdict, PluginError> {
        let Pre::Auth(_) = &self.pre else {
            return Err(self.wrong_kind("auth profile"));
        };
        self.run(&query.request_id, |store, pre| {
            let Pre::Auth(pre) = pre else {
                unreachable!("checked above")
            };
            let plugin = pre.instantiate(&mut *store)?;
            if let Err(e) = plugin
                .portcullis_plugin_lifecycle()
                .call_init(&mut *store, &self.config_json)?
            {
                return Ok(Err(init_error(e)));
            }
            let request = wit_auth::AuthRequest {
                token: query.token.clone(),
                request_id: query.request_id.clone(),
                method: query.method.clone(),
                path: query.path.clone(),
                audience: query.audience.clone(),
            };
            let identity = match plugin
                .portcullis_plugin_auth_profile()
                .call_validate(&mut *store, &request)?
            {
                Ok(identity) => identity,
                Err(wit_auth::AuthError::Rejected(m)) => {
                    return Ok(Ok(AuthVerdict::Rejected(validate::guest_message(&m))))
                }
                Err(wit_auth::AuthError::Unavailable(m)) => {
                    return Ok(Ok(AuthVerdict::Unavailable(validate::guest_message(&m))))
                }
            };
            Ok(check_identity(&self.name, identity, prefixes))
        })
    }
}

fn check_identity(
    plugin: &str,
    identity: wit_auth::Identity,
    prefixes: &[String],
) -> Result<AuthVerdict, CallErrorKind> {
    if identity.principal.is_empty() {
        return Err(CallErrorKind::InvalidReturn(
            "the principal is empty".into(),
        ));
    }
    validate::text("principal", &identity.principal, validate::PRINCIPAL_MAX)?;
    if identity.scopes.len() > validate::SCOPES_MAX {
        return Err(CallErrorKind::InvalidReturn(format!(
            "{} scopes, more than {}",
            identity.scopes.len(),
            validate::SCOPES_MAX
        )));
    }
    if identity.lineage.len() > validate::LINEAGE_MAX {
        return Err(CallErrorKind::InvalidReturn("lineage is too long".into()));
    }
    for actor in &identity.lineage {
        validate::text("lineage entry", actor, validate::PRINCIPAL_MAX)?;
    }
    if let Some(expires_at) = identity.expires_at {
        if expires_at <= unix_now() {
            return Ok(AuthVerdict::Rejected("the identity has expired".into()));
        }
    }
    let mut scopes = Vec::with_capacity(identity.scopes.len());
    for scope in identity.scopes {
        validate::text("scope", &scope, validate::PRINCIPAL_MAX)?;
        if prefixes.iter().any(|p| scope.starts_with(p.as_str())) {
            scopes.push(scope);
        } else {
            tracing::info!(
                plugin,
                "auth plugin scope without a configured prefix dropped"
            );
        }
    }
    Ok(AuthVerdict::Authenticated(PluginIdentity {
        principal: identity.principal,
        scopes,
        lineage: identity.lineage,
        expires_at: identity.expires_at,
    }))
}

impl LoadedPlugin {
    async fn blocking<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&LoadedPlugin) -> Result<R, PluginError> + Send + 'static,
    ) -> Result<R, PluginError> {
        let permit = self
            .engine
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                PluginError::call(&self.name, CallErrorKind::Host("shutting down".into()))
            })?;
        let plugin = self.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&plugin)
        })
        .await
        .unwrap_or_else(|e| {
            Err(PluginError::call(
                &name,
                CallErrorKind::Host(format!("call task failed: {e}")),
            ))
        })
    }

    /// [`Self::resolve_secret`] from async code.
    pub async fn resolve_secret_async(
        self: &Arc<Self>,
        query: SecretQuery,
    ) -> Result<String, PluginError> {
        self.blocking(move |p| p.resolve_secret(&query)).await
    }

    /// [`Self::evaluate_policy`] from async code.
    pub async fn evaluate_policy_async(
        self: &Arc<Self>,
        query: PolicyQuery,
    ) -> Result<PolicyVerdict, PluginError> {
        self.blocking(move |p| p.evaluate_policy(&query)).await
    }

    /// [`Self::validate_token`] from async code.
    pub async fn validate_token_async(
        self: &Arc<Self>,
        query: AuthQuery,
        prefixes: Vec<String>,
    ) -> Result<AuthVerdict, PluginError> {
        self.blocking(move |p| p.validate_token(&query, &prefixes))
            .await
    }
}

/// A policy-evaluator plugin in the policy pipeline's plugin slot.
#[derive(Debug, Clone)]
pub struct PolicyPlugin(pub Arc<LoadedPlugin>);

impl PolicyEvaluator for PolicyPlugin {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn evaluate<'a>(
        &'a self,
        query: &'a PolicyQuery,
    ) -> futures_util::future::BoxFuture<'a, Result<PolicyVerdict, String>> {
        Box::pin(async move {
            self.0
                .evaluate_policy_async(query.clone())
                .await
                .map_err(|error| error.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AuthQuery;

    #[test]
    fn auth_query_debug_never_shows_the_token() {
        let query = AuthQuery {
            token: "canary-bearer-token".into(),
            ..AuthQuery::default()
        };
        let shown = format!("{query:?}");
        assert!(!shown.contains("canary-bearer-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
