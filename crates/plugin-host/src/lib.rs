//! WebAssembly component plugins: secret sources, policy evaluators and auth profiles.
//!
//! Pipeline of one plugin, from config to call:
//!
//! 1. [`load`]: read `plugins.<name>.path` (relative to the config file), check the pinned
//!    `sha256`, compile (never `deserialize`: a precompiled artifact on disk is not trusted),
//!    find the kind and WIT version from the export names, refuse imports outside the kind's
//!    world, link a typed `InstancePre`, call `metadata` and `init(config)` once.
//! 2. `instance`: every call gets a fresh `Store` and instance: memory limit
//!    ([`state::Limiter`]), epoch deadline (`limits.timeoutMs`), wasm stack cap, hostcall fuel,
//!    then `init(config)`. [`warm`] prepares these ahead of time on a worker thread (each still
//!    serves one call) unless `prewarm.instances` is 0.
//! 3. [`call`]: arm the call's budget, run the kind's function, check the returned value
//!    ([`validate`]), retire the instance (dropped on the worker thread).
//! 4. Host imports ([`state`]): `log` (capped, into `tracing` with the plugin name), `clock`,
//!    `outbound-http` to granted origins only ([`http`], [`grants`]); WASI 0.2 with only the
//!    granted env vars and read-only directories, its waits cut at the call's deadline and its
//!    host allocations capped ([`wasi`]).
//! 5. Fair share: a plugin's calls wait within their budget for one of its `maxConcurrent`
//!    slots, a pool slot and a slot of the process-wide CPU gate ([`call`], [`engine`]).
//!
//! Failure mode: every failure is a typed [`PluginError`] naming the plugin. Load errors refuse
//! the config (startup fails, a reload keeps the previous snapshot); call errors fail the one
//! request closed (secret: 502, policy: deny `policy_error`, auth: 503) and the server goes on.
//! The engine is shared by the whole process ([`PluginEngine::shared`]).
//!
//! API: [`PluginSet::load`] loads a config's plugins; [`LoadedPlugin`]'s `resolve_secret`,
//! `evaluate_policy` and `validate_token` (and their `_async` forms) call an export within its
//! budget and return the WIT records of [`wit`] or a [`PluginError`]. This module names no
//! pipeline type: each pipeline trait has its WebAssembly adapter beside it
//! (`secret_sources::wasm`, `policy::wasm`, `authn::wasm`), which translates its values to and
//! from these records. This crate is the only one that names wasmtime; of Portcullis it depends
//! only on `portcullis-config` (the plugin's own part of the document) and `portcullis-net` (the
//! outbound HTTP client).
#![deny(missing_docs)]

mod bindings;
mod call;
mod engine;
mod error;
mod grants;
mod http;
pub(crate) mod instance;
mod load;
pub mod settings;
mod state;
pub mod validate;
mod warm;
mod wasi;

/// The WIT records the kinds' calls take and return: plain data, no wasmtime type.
pub mod wit {
    pub use super::bindings::auth::exports::portcullis::plugin::auth_profile::{
        AuthError, AuthRequest, Identity,
    };
    pub use super::bindings::policy::exports::portcullis::plugin::policy_evaluator::{
        Decision, PolicyInput, Safety, ToolInfo,
    };
    pub use super::bindings::secret::exports::portcullis::plugin::secret_source::{
        SecretError, SecretRequest,
    };
    pub use super::bindings::types::RequestContext;
}

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use engine::PluginEngine;
pub use error::{CallErrorKind, LoadErrorKind, PluginError};
pub use load::{inspect, sha256_hex, Inspection, Limits, LoadedPlugin, Metadata, PluginKind};

use portcullis_config::{Config, SecretType};

/// Every plugin of a config, loaded.
#[derive(Debug, Clone, Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl PluginSet {
    /// Load every `plugins.<name>` and check that each use names a plugin of the right kind
    /// (`secrets.*.plugin`: secret source; `policy.plugins`: policy evaluator;
    /// `runtime.server.auth.plugin`: auth profile).
    pub fn load(config: &Config, base_dir: &Path) -> Result<Self, PluginError> {
        let Some(entries) = config.plugins.as_ref().filter(|p| !p.is_empty()) else {
            return Ok(Self::default());
        };
        let engine = PluginEngine::shared();
        let mut plugins = BTreeMap::new();
        for (name, entry) in entries {
            let plugin = LoadedPlugin::load(&engine, name, entry, base_dir)?;
            tracing::info!(
                plugin = %name,
                kind = plugin.kind().label(),
                version = %plugin.metadata().version,
                sha256 = %plugin.sha256(),
                "plugin loaded"
            );
            let plugin = Arc::new(plugin);
            warm::Warm::start(&plugin);
            plugins.insert(name.clone(), plugin);
        }
        let set = Self { plugins };
        for secret in config.secrets.iter().flat_map(|s| s.values()) {
            if secret.kind == Some(SecretType::Plugin) {
                if let Some(name) = &secret.plugin {
                    set.expect_kind(name, PluginKind::SecretSource)?;
                }
            }
        }
        for name in config
            .policy
            .iter()
            .flat_map(|p| p.plugins.iter().flatten())
        {
            set.expect_kind(name, PluginKind::PolicyEvaluator)?;
        }
        let auth_plugin = config
            .runtime
            .as_ref()
            .and_then(|r| r.server.as_ref())
            .and_then(|s| s.auth.as_ref())
            .and_then(|a| a.get("plugin"))
            .and_then(|p| p.as_str());
        if let Some(name) = auth_plugin {
            set.expect_kind(name, PluginKind::AuthProfile)?;
        }
        Ok(set)
    }

    fn expect_kind(&self, name: &str, kind: PluginKind) -> Result<(), PluginError> {
        match self.plugins.get(name) {
            // Unknown names are config errors, reported by validation with their JSON path.
            None => Ok(()),
            Some(plugin) if plugin.kind() == kind => Ok(()),
            Some(plugin) => Err(PluginError::load(
                name,
                LoadErrorKind::WrongKind {
                    expected: kind.label(),
                    actual: plugin.kind().label(),
                },
            )),
        }
    }

    /// A loaded plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// Every loaded plugin.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// Whether no plugin is configured.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}
